"""The study file (``study.yaml``) parsed into a typed, frozen :class:`StudySpec`.

The study file is the single source of truth for file paths, column names, labels, units,
levels, reference categories, plausible ranges and analysis options.  Nothing else in the
package names a column of the cohort.

We parse with pydantic (``extra="forbid"``, frozen models) rather than by hand: it gives
typed, immutable objects and error messages that name the exact key that is wrong, which we
translate into :class:`~cementleak_stats.errors.Problem` rows.  YAML is read with
``yaml.safe_load`` so tags such as ``!!python/object`` are rejected, never executed.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .errors import InputError, Problem

Kind = Literal["continuous", "binary", "ordinal", "nominal"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Variable(_Frozen):
    """One column of the cohort table."""

    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    label: str
    kind: Kind
    unit: str | None = None
    description: str = ""
    levels: tuple[str, ...] = ()
    reference: str | None = None
    #: accepted spellings in the data -> canonical level (only those listed here are accepted)
    aliases: dict[str, str] = Field(default_factory=dict)
    #: how a level is printed in tables and figures (default: the level itself)
    level_labels: dict[str, str] = Field(default_factory=dict)
    range: tuple[float, float] | None = None
    #: an integer-valued continuous variable (e.g. days)
    integer: bool = False
    candidate: bool = False
    #: ordinal coding in a model: "score" = one term 0, 1, 2, ... ; "dummy" = one term per level
    coding: Literal["score", "dummy"] = "score"
    missing_allowed: bool = False
    #: free text or an identifier: never shown in any output
    identifying: bool = False
    #: a continuous variable's hazard ratio is reported per this many units (e.g. 10: "per 10
    #: HU"); coefficients stay per 1 unit.  Unset: per 1 unit, or a power of ten the analysis
    #: chooses and states when the HR per unit overflows
    per: float | None = Field(None, gt=0)
    #: describe the variable in Table 1.  Unset: every variable that is neither identifying nor
    #: one of ``outcome.event_details`` (a candidate predictor or not); ``false`` leaves one out,
    #: ``true`` shows an event detail too.  Identifying variables are never shown.
    table1: bool | None = None

    @model_validator(mode="after")
    def _check_levels(self) -> Variable:
        if self.per is not None and self.kind != "continuous":
            raise ValueError(f"variable '{self.name}': `per:` applies to continuous variables (this one is {self.kind})")
        if self.kind == "continuous":
            if self.levels or self.reference or self.aliases:
                raise ValueError(f"continuous variable '{self.name}' cannot have levels, reference or aliases")
        else:
            if len(self.levels) < 2:
                raise ValueError(f"{self.kind} variable '{self.name}' needs at least two levels")
            if len(set(self.levels)) != len(self.levels):
                raise ValueError(f"variable '{self.name}' lists a level twice")
            if self.kind == "binary" and len(self.levels) != 2:
                raise ValueError(f"binary variable '{self.name}' needs exactly two levels")
            if self.reference is not None and self.reference not in self.levels:
                raise ValueError(f"reference '{self.reference}' of '{self.name}' is not one of its levels {list(self.levels)}")
            bad = {a: t for a, t in self.aliases.items() if t not in self.levels}
            if bad:
                raise ValueError(f"aliases of '{self.name}' point at unknown levels: {bad}")
            unknown = [lv for lv in self.level_labels if lv not in self.levels]
            if unknown:
                raise ValueError(f"level_labels of '{self.name}' name unknown levels: {unknown}")
            if self.range is not None:
                raise ValueError(f"categorical variable '{self.name}' cannot have a range")
        if self.range is not None and self.range[0] > self.range[1]:
            raise ValueError(f"range of '{self.name}' is reversed: {self.range}")
        return self

    @property
    def ref_level(self) -> str | None:
        """Reference level: the one named, else the first level."""
        if self.kind == "continuous":
            return None
        return self.reference or self.levels[0]

    def level_label(self, level: object) -> str:
        """How a level is printed (``level_labels`` in the study file, else the level)."""
        return self.level_labels.get(str(level), str(level))

    @property
    def display(self) -> str:
        """Label with unit, for tables and axes: ``CT value (HU)``."""
        return f"{self.label} ({self.unit})" if self.unit else self.label


class Outcome(_Frozen):
    """Time-to-event outcome."""

    time: str
    event: str
    time_label: str = "Time"
    event_label: str = "Event"
    time_unit: str = "months"
    horizon: float = Field(gt=0)
    followup: float = Field(gt=0, description="maximum follow-up; no time may exceed it")
    #: variables that describe the event (e.g. its type and management), tabulated among the
    #: patients with the event; their reference level means "no event"
    event_details: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _horizon_within_followup(self) -> Outcome:
        if self.horizon > self.followup:
            raise ValueError(f"horizon {self.horizon} is beyond the follow-up {self.followup}")
        return self


class Timepoint(_Frozen):
    name: str
    label: str


class Measure(_Frozen):
    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    label: str
    unit: str | None = None
    range: tuple[float, float]

    @property
    def display(self) -> str:
        return f"{self.label} ({self.unit})" if self.unit else self.label


class Repeated(_Frozen):
    """Long-format repeated outcome table (e.g. VAS and ODI at three time points)."""

    file: str
    id: str
    timepoint: str
    timepoints: tuple[Timepoint, ...]
    measures: tuple[Measure, ...]
    population: str = ""


class Exclusion(_Frozen):
    """An exclusion rule: rows where ``column op value`` holds are excluded (and counted)."""

    column: str
    op: Literal["<", "<=", ">", ">=", "==", "!=", "missing"]
    value: float | str | None = None
    reason: str


class Analysis(_Frozen):
    selection: Literal["univariable_screen", "prespecified"] = "univariable_screen"
    screen_p_value: float = Field(0.05, gt=0, le=1)
    predictors: tuple[str, ...] = ()
    bootstrap_b: int = Field(1000, ge=0, le=100_000)
    seed: int = Field(20250427, ge=0)
    alpha: float = Field(0.05, gt=0, lt=1)
    calibration_group_size: int = Field(25, ge=5)
    decision_thresholds: tuple[float, float, float] = (0.01, 0.60, 0.01)
    missing_data: Literal["complete_case", "multiple_imputation"] = "complete_case"
    imputations: int = Field(20, ge=2, le=200)
    #: ridge penalizer of the multivariable Cox model (lifelines ``penalizer``); 0 = the
    #: ordinary partial likelihood.  Set it when the ordinary fit separates (a level without
    #: events); the report then says the model is penalized.
    penalizer: float = Field(0.0, ge=0, le=100)

    @field_validator("decision_thresholds")
    @classmethod
    def _thresholds(cls, v: tuple[float, float, float]) -> tuple[float, float, float]:
        lo, hi, step = v
        if not (0 < lo < hi < 1 and 0 < step < hi - lo + 1e-12):
            raise ValueError("decision_thresholds must be [low, high, step] with 0 < low < high < 1")
        return v


class Validation(_Frozen):
    """A validation cohort: another file (temporal or external) or a share held out of this one.

    ``validation: {cohort_file: ..., kind: temporal | external, label: ...}`` reads another
    cohort with the same variables (checked like the development cohort); ``validation:
    {split: 0.3, by: random | period, period_column: ..., seed: ...}`` holds out that share of
    the analysed patients (at random, or the latest by ``period_column``).
    """

    cohort_file: str | None = None
    kind: Literal["temporal", "external", "split"] | None = None
    label: str = ""
    split: float | None = Field(None, gt=0, lt=1)
    by: Literal["random", "period"] = "random"
    period_column: str | None = None
    #: seed of a random split (default ``analysis.seed``)
    seed: int | None = Field(None, ge=0)

    @model_validator(mode="after")
    def _one_source(self) -> Validation:
        if (self.cohort_file is None) == (self.split is None):
            raise ValueError("validation needs either `cohort_file:` (another cohort) or `split:` (a share of this "
                             "cohort held out), not both")
        if self.split is not None and self.kind not in (None, "split"):
            raise ValueError(f"validation.kind '{self.kind}' needs `cohort_file:`; a split is kind 'split'")
        if self.cohort_file is not None and self.kind == "split":
            raise ValueError("validation.kind 'split' needs `split:` (the share held out), not `cohort_file:`")
        if self.split is not None and self.by == "period" and self.period_column is None:
            raise ValueError("validation.by 'period' needs `period_column:` (the column that orders patients in time)")
        return self

    @property
    def cohort_kind(self) -> str:
        """temporal, external or split."""
        return "split" if self.split is not None else (self.kind or "external")

    @property
    def display_label(self) -> str:
        """The study file's label, else a name for the kind of cohort."""
        return self.label or {"temporal": "Temporal validation cohort", "external": "External validation cohort",
                              "split": "Held-out validation set"}[self.cohort_kind]


class StudyInfo(_Frozen):
    title: str
    short_title: str = ""
    id_column: str
    synthetic: bool = False
    centre: str = ""
    period: str = ""
    population: str = ""
    citation: str = ""
    authors: tuple[str, ...] = ()


class StudySpec(_Frozen):
    """The whole study, as written in the study file; see ``study.yaml`` for an example."""

    study: StudyInfo
    cohort_file: str
    outcome: Outcome
    variables: tuple[Variable, ...]
    analysis: Analysis = Analysis()
    exclusions: tuple[Exclusion, ...] = ()
    repeated: Repeated | None = None
    #: a validation cohort (another file, or a split of this one); None = internal validation only
    validation: Validation | None = None
    #: directory the study file lives in; relative data paths are resolved against it
    base_dir: Path = Path(".")
    #: path of the study file itself (for provenance)
    source: Path | None = None

    @model_validator(mode="after")
    def _cross_checks(self) -> StudySpec:
        names = [v.name for v in self.variables]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"variables listed twice: {dup}")
        reserved = {self.study.id_column, self.outcome.time, self.outcome.event}
        clash = reserved & set(names)
        if clash:
            raise ValueError(f"id/time/event columns must not be listed under variables: {sorted(clash)}")
        unknown = [p for p in self.analysis.predictors if p not in names]
        if unknown:
            raise ValueError(f"analysis.predictors names unknown variables: {unknown}")
        if self.analysis.selection == "prespecified" and not self.analysis.predictors:
            raise ValueError("analysis.selection is 'prespecified' but analysis.predictors is empty")
        if not any(v.candidate for v in self.variables) and not self.analysis.predictors:
            raise ValueError("no variable is marked 'candidate: true'")
        unknown_details = [d for d in self.outcome.event_details if d not in names]
        if unknown_details:
            raise ValueError(f"outcome.event_details names unknown variables: {unknown_details}")
        period = self.validation.period_column if self.validation is not None else None
        if period is not None and period not in names and period != self.study.id_column:
            raise ValueError(f"validation.period_column '{period}' is not a variable or the id column")
        for ex in self.exclusions:
            if ex.column not in names and ex.column not in reserved:
                raise ValueError(f"exclusion rule names unknown column '{ex.column}'")
        return self

    # --- convenience -------------------------------------------------------------------
    def variable(self, name: str) -> Variable:
        for v in self.variables:
            if v.name == name:
                return v
        raise KeyError(name)

    @property
    def candidates(self) -> tuple[Variable, ...]:
        return tuple(v for v in self.variables if v.candidate)

    @property
    def table1_variables(self) -> tuple[Variable, ...]:
        """The variables Table 1 describes (see :attr:`Variable.table1`), in study-file order."""
        details = set(self.outcome.event_details)
        return tuple(v for v in self.variables if not v.identifying
                     and (v.table1 if v.table1 is not None else v.name not in details))

    @property
    def cohort_path(self) -> Path:
        return (self.base_dir / self.cohort_file).resolve()

    @property
    def validation_path(self) -> Path | None:
        """The validation cohort's file (None without one, or for a split)."""
        v = self.validation
        return None if v is None or v.cohort_file is None else (self.base_dir / v.cohort_file).resolve()

    @property
    def repeated_path(self) -> Path | None:
        return None if self.repeated is None else (self.base_dir / self.repeated.file).resolve()

    @property
    def columns(self) -> tuple[str, ...]:
        """Every column the cohort table must have, in study-file order."""
        return (self.study.id_column, *(v.name for v in self.variables), self.outcome.time, self.outcome.event)

    @property
    def identifying_columns(self) -> tuple[str, ...]:
        return (self.study.id_column, *(v.name for v in self.variables if v.identifying))

    def label(self, name: str) -> str:
        if name == self.outcome.time:
            return self.outcome.time_label
        if name == self.outcome.event:
            return self.outcome.event_label
        return self.variable(name).label

    def digest(self) -> str:
        """SHA-256 of the study file's bytes (or of the parsed spec when built in code)."""
        if self.source is not None and self.source.exists():
            return hashlib.sha256(self.source.read_bytes()).hexdigest()
        return hashlib.sha256(self.model_dump_json(exclude={"base_dir", "source"}).encode()).hexdigest()


def _problems_from_pydantic(file: str, err: ValidationError) -> list[Problem]:
    out = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "(top level)"
        msg = e["msg"]
        if e["type"] == "extra_forbidden":
            msg = "unknown key (check the spelling; see study.yaml in the project for every allowed key)"
        elif e["type"] == "missing":
            msg = "required key is missing"
        val = e.get("input")
        sval = None if isinstance(val, dict) or val is None else repr(val)[:80]
        fix = ""
        if isinstance(val, bool) or (e["type"] == "string_type" and str(val) in ("True", "False")):
            fix = "YAML reads unquoted yes/no/on/off/y/n as true/false: put the value in quotes, e.g. \"no\""
        out.append(Problem(file=file, column=loc, value=sval, rule=f"study file: {msg}", fix=fix))
    return out


def parse_spec(data: object, *, base_dir: Path = Path("."), source: Path | None = None, file: str = "<study>") -> StudySpec:
    """Build a :class:`StudySpec` from an already-parsed mapping; raise :class:`InputError`."""
    if not isinstance(data, dict):
        raise InputError([Problem(file=file, rule="study file must be a YAML mapping of keys to values",
                                  fix="start from the project's study.yaml")], summary="Invalid study file")
    try:
        return StudySpec.model_validate({**data, "base_dir": base_dir, "source": source})
    except ValidationError as err:
        raise InputError(_problems_from_pydantic(file, err), summary="Invalid study file") from None


#: A study file holds a few hundred values; more than this once YAML aliases are expanded is an
#: alias bomb ("billion laughs"), refused before anything walks the expanded structure.
MAX_YAML_VALUES = 100_000


def _expanded_size(root: object, limit: int) -> int:
    """Number of values in ``root`` counting each YAML alias as a copy (> ``limit`` = too many).

    Shared containers are sized once (memo by identity) and the walk is iterative, so a bomb is
    measured in time proportional to its text; a container that contains itself counts as too many.
    """
    sizes: dict[int, int] = {}
    visiting: set[int] = set()
    stack: list[tuple[object, bool]] = [(root, False)]
    while stack:
        obj, finished = stack.pop()
        if not isinstance(obj, (dict, list)) or (not finished and id(obj) in sizes):
            continue
        kids = [*obj.keys(), *obj.values()] if isinstance(obj, dict) else obj
        if finished:
            visiting.discard(id(obj))
            total = 1 + sum(sizes.get(id(k), 1) if isinstance(k, (dict, list)) else 1 for k in kids)
            sizes[id(obj)] = min(total, limit + 1)
        elif id(obj) in visiting:
            return limit + 1
        else:
            visiting.add(id(obj))
            stack.append((obj, True))
            stack.extend((k, False) for k in kids if isinstance(k, (dict, list)))
    return sizes.get(id(root), 1)


def load_spec(path: str | Path = "study.yaml") -> StudySpec:
    """Read and check a study file.

    Raises
    ------
    InputError
        when the file is missing, is not valid YAML, uses YAML tags, or breaks any rule.
    """
    p = Path(path)
    name = str(path)
    if not p.is_file():
        raise InputError([Problem(file=name, rule="study file not found",
                                  fix="pass the path of a study file, e.g. `cementleak validate study.yaml`")],
                         summary="Invalid study file")
    raw = p.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError([Problem(file=name, row=None, rule=f"study file is not UTF-8 text ({exc.reason} at byte {exc.start})",
                                  fix="save the file as UTF-8")], summary="Invalid study file") from None
    if len(raw) > 1_000_000:
        raise InputError([Problem(file=name, rule="study file is larger than 1 MB", fix="a study file is a short YAML text")],
                         summary="Invalid study file")
    try:
        data = yaml.safe_load(text)
    except RecursionError:
        raise InputError([Problem(file=name, rule="not valid YAML: brackets or indentation nested too deeply",
                                  fix="a study file is a short YAML text; start from the project's study.yaml")],
                         summary="Invalid study file") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        row = None if mark is None else mark.line + 1
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise InputError([Problem(file=name, row=row, rule=f"not valid YAML: {problem}",
                                  fix="YAML tags (!!python/...) and anchors to code are not allowed; check indentation")],
                         summary="Invalid study file") from None
    if _expanded_size(data, MAX_YAML_VALUES) > MAX_YAML_VALUES:
        raise InputError([Problem(file=name, rule=f"study file expands to more than {MAX_YAML_VALUES:,} values: YAML "
                                  "anchors and aliases nested into each other (an alias bomb) or referring to themselves",
                                  fix="write the study file without nested aliases")], summary="Invalid study file")
    return parse_spec(data, base_dir=p.resolve().parent, source=p.resolve(), file=name)
