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

import difflib
import hashlib
import json
from pathlib import Path
from typing import Any, ClassVar, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .errors import InputError, Problem

Kind = Literal["continuous", "binary", "ordinal", "nominal"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


#: languages a study file may write its words in (``label: {en: CT value, zh: CT值}``)
TEXT_LANGUAGES: tuple[str, ...] = ("en", "zh")


class SpecRuleError(ValueError):
    """A broken study-file rule, with how to fix it (pydantic keeps it in the error's context)."""

    def __init__(self, rule: str, fix: str, *, at: tuple[str | int, ...] = ()) -> None:
        super().__init__(rule)
        self.fix = fix
        #: where in the study file, when the rule is checked above the key it is about
        self.at = at


class _Words(_Frozen):
    """A part of the study file whose words (``_TEXT`` fields) may be written per language.

    ``label: {en: CT value, zh: CT值}`` keeps the English text in ``label`` (what the package
    and the English report use) and the others in ``translations`` (``{zh: {label: CT值}}``),
    which :meth:`StudySpec.localized` puts in place for a report in that language.  A
    ``level_labels`` entry may be per language too: ``{mild: {en: Mild, zh: 轻度}}``.
    """

    _TEXT: ClassVar[tuple[str, ...]] = ()
    #: the words in other languages, by language and field (from ``field: {en: ..., zh: ...}``)
    translations: dict[Literal["zh"], dict[str, Any]] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _per_language(cls, data: object) -> object:
        if not isinstance(data, dict) or not any(isinstance(data.get(f), dict) for f in cls._TEXT):
            return data
        data = dict(data)
        other: dict[str, dict[str, Any]] = {k: dict(v) for k, v in (data.get("translations") or {}).items()
                                             if isinstance(v, dict)}

        def split(field: str, value: dict) -> object:
            unknown = [k for k in value if k not in TEXT_LANGUAGES]
            if unknown:
                raise SpecRuleError(f"{field}: unknown language {unknown} (languages: {', '.join(TEXT_LANGUAGES)})",
                                    f"write {field}: {{en: English text, zh: 中文}}")
            for lang, text in value.items():
                if lang != "en":
                    other.setdefault(lang, {})[field] = text
            return value.get("en")

        for f in cls._TEXT:
            value = data.get(f)
            if f == "level_labels" and isinstance(value, dict):
                english = {}
                for level, text in value.items():
                    if isinstance(text, dict):
                        unknown = [k for k in text if k not in TEXT_LANGUAGES]
                        if unknown:
                            raise SpecRuleError(f"level_labels: unknown language {unknown} for level '{level}'",
                                                f"write {level}: {{en: English text, zh: 中文}}")
                        for lang, t in text.items():
                            if lang != "en":
                                other.setdefault(lang, {}).setdefault("level_labels", {})[level] = t
                        if "en" in text:
                            english[level] = text["en"]
                    else:
                        english[level] = text
                data[f] = english
            elif isinstance(value, dict):
                english = split(f, value)
                if english is None:
                    if f in cls.model_fields and cls.model_fields[f].is_required():
                        raise SpecRuleError(f"{f}: the English text is missing (only {sorted(value)} given)",
                                            f"add `en:` to {f}, e.g. {f}: {{en: English text, zh: 中文}}")
                    del data[f]
                else:
                    data[f] = english
        data["translations"] = other
        return data

    def localized(self, lang: str) -> _Words:
        """This part with its words in ``lang`` where the study file gives them (English elsewhere)."""
        return _localize(self, lang)  # type: ignore[return-value]


def _localize(model: BaseModel, lang: str) -> BaseModel:
    """``model`` with the ``lang`` words of every :class:`_Words` inside it put in place."""
    update: dict[str, Any] = {}
    for name in type(model).model_fields:
        value = getattr(model, name)
        if isinstance(value, BaseModel):
            update[name] = _localize(value, lang)
        elif isinstance(value, tuple) and value and all(isinstance(v, BaseModel) for v in value):
            update[name] = tuple(_localize(v, lang) for v in value)
    if isinstance(model, _Words):
        words = dict(model.translations.get(lang, {}))  # type: ignore[call-overload]
        if "level_labels" in words:
            words["level_labels"] = {**getattr(model, "level_labels"), **words["level_labels"]}
        update.update(words)
    return model.model_copy(update=update) if update else model


#: what a ``name`` must look like: it is the identifier used in results, tables and model terms;
#: the column's header in the data file (any text) goes in ``column``
IDENTIFIER = r"^[A-Za-z_][A-Za-z0-9_]*$"


class Variable(_Words):
    """One column of the cohort table."""

    _TEXT = ("label", "unit", "description", "level_labels")

    name: str = Field(pattern=IDENTIFIER)
    label: str
    #: the column's header in the data file when it is not ``name`` (any text: "Age (y)")
    column: str | None = None
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
        v = f"variable '{self.name}'"
        if self.per is not None and self.kind != "continuous":
            raise SpecRuleError(f"{v}: `per:` applies to continuous variables (this one is {self.kind})",
                                "remove `per:`; a categorical variable's hazard ratio compares each level with the reference")
        if self.kind == "continuous":
            if self.levels or self.reference or self.aliases:
                raise SpecRuleError(f"{v}: a continuous variable cannot have levels, reference or aliases",
                                    "remove `levels:`/`reference:`/`aliases:`, or make it binary, ordinal or nominal")
        else:
            if len(self.levels) < 2:
                raise SpecRuleError(f"{v}: a {self.kind} variable needs at least two levels",
                                    "list the levels in order, e.g. levels: [\"no\", \"yes\"]")
            if len(set(self.levels)) != len(self.levels):
                raise SpecRuleError(f"{v}: a level is listed twice", "list each level once under `levels:`")
            if self.kind == "binary" and len(self.levels) != 2:
                raise SpecRuleError(f"{v}: a binary variable needs exactly two levels (got {len(self.levels)})",
                                    "list two levels, or make it `kind: nominal` (or ordinal)")
            if self.reference is not None and self.reference not in self.levels:
                raise SpecRuleError(f"{v}: reference '{self.reference}' is not one of its levels {list(self.levels)}",
                                    "make `reference:` one of the levels (spelled exactly)")
            bad = {a: t for a, t in self.aliases.items() if t not in self.levels}
            if bad:
                raise SpecRuleError(f"{v}: aliases of '{self.name}' point at unknown levels: {bad}",
                                    "write aliases as {spelling in the data: level}, with a level from `levels:`")
            unknown = [lv for lv in self.level_labels if lv not in self.levels]
            if unknown:
                raise SpecRuleError(f"{v}: level_labels of '{self.name}' name unknown levels: {unknown}",
                                    "write level_labels as {level: printed text}, with a level from `levels:`")
            if self.range is not None:
                raise SpecRuleError(f"{v}: a categorical variable cannot have a range",
                                    "remove `range:` (it applies to continuous variables)")
        if self.range is not None and self.range[0] > self.range[1]:
            raise SpecRuleError(f"{v}: range is reversed: {list(self.range)}", "write range: [low, high]")
        return self

    @property
    def header(self) -> str:
        """The column's header in the data file (``column``, else ``name``)."""
        return self.column or self.name

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
        from .i18n import T

        return T("{label} ({unit})", label=self.label, unit=self.unit) if self.unit else self.label


#: Days per time unit when follow-up times are computed from dates (``outcome.start``/``end``):
#: a month is 365.25 / 12 = 30.4375 days and a year 365.25 days (the Julian year, as R
#: ``lubridate``'s ``time_length`` and most survival texts use).
DAYS_PER_UNIT = {"days": 1.0, "weeks": 7.0, "months": 30.4375, "years": 365.25}

#: Event codes accepted without ``event_aliases`` (Excel and R write TRUE/FALSE).
DEFAULT_EVENT_CODES = {"0": 0, "1": 1, "false": 0, "true": 1, "False": 0, "True": 1, "FALSE": 0, "TRUE": 1}


class Outcome(_Words):
    """Time-to-event outcome.

    The follow-up time is either a column (``time``, header ``time_column``) or computed from two
    date columns, ``end - start``, in ``time_unit`` (see :data:`DAYS_PER_UNIT`); ``time`` is then
    the name the computed time carries in the analysis (default ``time``).
    """

    time: str = ""
    event: str
    #: headers of the time and event columns in the data file, when they are not ``time``/``event``
    time_column: str | None = None
    event_column: str | None = None
    #: spellings of the event in the data -> 1 (event) or 0 (censored), besides 0/1 and true/false
    event_aliases: dict[str, Literal[0, 1]] = Field(default_factory=dict)
    #: headers of the date columns that define the time: end - start (instead of a time column)
    start: str | None = None
    end: str | None = None
    #: how text dates are written, as a strftime pattern ("%d/%m/%Y"); needed only when the
    #: dates are ambiguous (03/04/2020) — ISO dates and spreadsheet date cells need none
    date_format: str | None = None
    time_label: str = "Time"
    event_label: str = "Event"
    time_unit: str = "months"
    horizon: float = Field(gt=0)
    followup: float = Field(gt=0, description="maximum follow-up; no time may exceed it")
    #: every horizon the performance is reported at, the first one the nomogram's main horizon
    #: (``horizons: [12, 6]``; default ``[horizon]``; ``horizon:`` may then be left out)
    horizons: tuple[float, ...] = ()
    #: one or two variables that describe the event (e.g. its type and how it was treated),
    #: tabulated among the patients with the event; their reference level means "no event"
    event_details: tuple[str, ...] = Field((), max_length=2)
    #: what time is measured from, for the report's prose ("surgery", "diagnosis"); optional
    time_origin: str = ""

    _TEXT = ("time_label", "event_label", "time_origin")

    @model_validator(mode="before")
    @classmethod
    def _default_time_name(cls, data: object) -> object:
        if isinstance(data, dict) and not data.get("time") and (data.get("start") or data.get("end")):
            return {**data, "time": "time"}
        return data

    @model_validator(mode="before")
    @classmethod
    def _main_horizon(cls, data: object) -> object:
        if isinstance(data, dict) and data.get("horizons") and data.get("horizon") is None:
            first = data["horizons"][0] if isinstance(data["horizons"], (list, tuple)) else None
            return {**data, "horizon": first} if isinstance(first, (int, float)) else data
        return data

    @model_validator(mode="after")
    def _horizon_within_followup(self) -> Outcome:
        if self.horizon > self.followup:
            raise SpecRuleError(f"horizon {self.horizon:g} is beyond the follow-up {self.followup:g}",
                                "make `horizon:` at most `followup:` (both in the time unit)")
        if self.horizons:
            if self.horizons[0] != self.horizon:
                raise SpecRuleError(f"the first of `horizons:` ({self.horizons[0]:g}) is the main horizon but "
                                    f"`horizon:` is {self.horizon:g}", "list the main horizon first, e.g. "
                                    f"horizons: [{self.horizon:g}, ...], or leave `horizon:` out")
            bad = [h for h in self.horizons if not 0 < h <= self.followup]
            if bad or len(set(self.horizons)) != len(self.horizons):
                raise SpecRuleError(f"horizons {list(self.horizons)} must be distinct times above 0 and at most the "
                                    f"follow-up {self.followup:g}", "list each horizon once, within the follow-up")
        dates = self.start is not None or self.end is not None
        if not self.time and not dates:
            raise SpecRuleError("the outcome has no time: give `time:` (a column of follow-up times) or `start:` and "
                                "`end:` (two date columns)", "add `time: <column>` under `outcome:`")
        if dates:
            if self.start is None or self.end is None:
                raise SpecRuleError("`start:` and `end:` go together: the time is end date - start date",
                                    "give both date columns' headers, e.g. start: \"Date of surgery\", end: \"Last contact\"")
            if self.time_column is not None:
                raise SpecRuleError("`time_column:` and `start:`/`end:` both define the time",
                                    "keep one: a column of times, or the two date columns")
            if self.start == self.end:
                raise SpecRuleError("`start:` and `end:` name the same column", "name the start date and the end date columns")
            if self.time_unit not in DAYS_PER_UNIT:
                raise SpecRuleError(f"time computed from dates needs `time_unit:` days, weeks, months or years "
                                    f"(got '{self.time_unit}')", "write `time_unit: days` (or weeks, months, years)")
        elif self.date_format is not None:
            raise SpecRuleError("`date_format:` applies to the date columns `start:`/`end:`, which are not given",
                                "remove `date_format:`, or give `start:` and `end:`")
        if self.date_format is not None:
            import datetime as _dt

            probe = _dt.datetime(2001, 2, 3, 4, 5, 6)
            try:
                ok = _dt.datetime.strptime(probe.strftime(self.date_format), self.date_format).date() == probe.date()
            except ValueError:
                ok = False
            if not ok:
                raise SpecRuleError(f"date_format '{self.date_format}' cannot read a date back (it needs %d, %m or %b, "
                                    "and %Y or %y)", "write e.g. \"%d/%m/%Y\" (31/01/2020) or \"%m/%d/%Y\" (01/31/2020)")
        return self

    @property
    def all_horizons(self) -> tuple[float, ...]:
        """Every reporting horizon, the main one first (``horizons``, else ``(horizon,)``)."""
        return self.horizons or (self.horizon,)

    @property
    def time_header(self) -> str | None:
        """Header of the time column in the data file (None when the time comes from dates)."""
        return None if self.start is not None else (self.time_column or self.time)

    @property
    def event_header(self) -> str:
        """Header of the event column in the data file."""
        return self.event_column or self.event

    @property
    def event_codes(self) -> dict[str, int]:
        """Every accepted spelling of the event -> 0/1 (0/1, true/false and ``event_aliases``)."""
        return {**DEFAULT_EVENT_CODES, **self.event_aliases}

    @property
    def days_per_unit(self) -> float:
        """Days in one ``time_unit`` (for times computed from dates)."""
        return DAYS_PER_UNIT[self.time_unit]


class Timepoint(_Words):
    name: str
    label: str

    _TEXT = ("label",)


class Measure(_Words):
    _TEXT = ("label", "unit")

    name: str = Field(pattern=IDENTIFIER)
    label: str
    unit: str | None = None
    range: tuple[float, float]
    #: the measure's header in the data file when it is not ``name``
    column: str | None = None

    @property
    def header(self) -> str:
        return self.column or self.name

    @property
    def display(self) -> str:
        from .i18n import T

        return T("{label} ({unit})", label=self.label, unit=self.unit) if self.unit else self.label


class Repeated(_Words):
    """Long-format repeated outcome table (e.g. a pain score and a disability index at three time points)."""

    file: str
    id: str
    timepoint: str
    timepoints: tuple[Timepoint, ...]
    measures: tuple[Measure, ...]
    population: str = ""

    _TEXT = ("population",)


class Exclusion(_Words):
    """An exclusion rule: rows where ``column op value`` holds are excluded (and counted)."""

    column: str
    op: Literal["<", "<=", ">", ">=", "==", "!=", "missing"]
    value: float | str | None = None
    reason: str

    _TEXT = ("reason",)


class RiskGroupRule(_Frozen):
    """``analysis.risk_groups``: prespecified cut-offs of the nomogram's total points (or of the
    predicted risk at the main horizon); without cut-offs, tertiles of the development cohort."""

    cutoffs: tuple[float, ...] = ()
    scale: Literal["points", "risk"] = "points"
    labels: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _increasing(self) -> RiskGroupRule:
        c = self.cutoffs
        if any(b <= a for a, b in zip(c, c[1:])) or (self.scale == "risk" and any(not 0 < x < 1 for x in c)):
            raise SpecRuleError(f"risk_groups.cutoffs {list(c)} must increase (risks strictly between 0 and 1)",
                                "e.g. risk_groups: {cutoffs: [100, 150]} (points) or {cutoffs: [0.1, 0.3], scale: risk}")
        if self.labels and len(self.labels) != (len(c) + 1 if c else 3):
            raise SpecRuleError(f"risk_groups.labels has {len(self.labels)} names for {len(c) + 1 if c else 3} groups",
                                "give one label per group (cut-offs + 1; 3 for tertiles), or none")
        return self


class Comparator(_Words):
    """``analysis.comparator``: an existing score (one variable of the study file) compared with
    the model; it enters a one-predictor Cox model fitted on the development cohort."""

    variable: str
    label: str = ""

    _TEXT = ("label",)


class Analysis(_Frozen):
    selection: Literal["univariable_screen", "prespecified", "lasso"] = "univariable_screen"
    #: ``selection: lasso``: the penalty of the cross-validated Cox LASSO (glmnet's lambda.min or
    #: lambda.1se) and the number of folds
    lasso_lambda: Literal["min", "1se"] = "min"
    lasso_folds: int = Field(10, ge=3, le=50)
    #: risk groups from the nomogram's total points (default: tertiles of the development cohort)
    risk_groups: RiskGroupRule = RiskGroupRule()
    #: an existing score to compare the model with (ΔC, ΔAUC, NRI, IDI, decision curve)
    comparator: Comparator | None = None
    #: outer and inner replicates of the two-stage bootstrap of the optimism-corrected C and
    #: slope intervals (each at most ``bootstrap_b``; 0 outer = no interval)
    interval_bootstrap: tuple[int, int] = (200, 25)
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
    #: also refit the model as a logistic regression of the event by the horizon (a sensitivity
    #: analysis for outcomes whose timing carries little information)
    logistic_sensitivity: bool = False

    @field_validator("decision_thresholds")
    @classmethod
    def _thresholds(cls, v: tuple[float, float, float]) -> tuple[float, float, float]:
        lo, hi, step = v
        if not (0 < lo < hi < 1 and 0 < step < hi - lo + 1e-12):
            raise SpecRuleError("decision_thresholds must be [low, high, step] with 0 < low < high < 1",
                                "e.g. decision_thresholds: [0.01, 0.60, 0.01]")
        return v


class Validation(_Words):
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

    _TEXT = ("label",)

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
        from .i18n import T

        return self.label or T({"temporal": "Temporal validation cohort", "external": "External validation cohort",
                                "split": "Held-out validation set"}[self.cohort_kind])


class StudyInfo(_Words):
    _TEXT = ("title", "short_title", "centre", "period", "population")

    title: str
    short_title: str = ""
    id_column: str
    synthetic: bool = False
    centre: str = ""
    period: str = ""
    population: str = ""
    citation: str = ""
    authors: tuple[str, ...] = ()
    #: folder (relative to the study file) with the text only the authors can write:
    #: background.md, discussion.md, limitations.md, question.md (see ``cementleak new``)
    narrative: str = "narrative"


class Report(_Frozen):
    """How the report is written: ``report: {language: en | zh | [zh, en]}``.

    The first language is the report's; with more than one, every one is rendered from the same
    run (``index.html`` and ``index.zh.html``, ...), and a Chinese report carries the English
    abstract too when English is among them (as Chinese journals ask).
    """

    language: tuple[Literal["en", "zh"], ...] = ("en",)

    @field_validator("language", mode="before")
    @classmethod
    def _one_or_many(cls, v: object) -> object:
        v = [v] if isinstance(v, str) else v
        if isinstance(v, (list, tuple)):
            if not v:
                raise SpecRuleError("report.language is empty", "write `language: en`, `zh` or `[zh, en]`")
            if len(set(v)) != len(v):
                raise SpecRuleError(f"report.language lists a language twice: {list(v)}", "list each language once")
        return v


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
    #: the report's language(s)
    report: Report = Report()
    #: directory the study file lives in; relative data paths are resolved against it
    base_dir: Path = Path(".")
    #: path of the study file itself (for provenance)
    source: Path | None = None

    @model_validator(mode="after")
    def _cross_checks(self) -> StudySpec:
        names = [v.name for v in self.variables]

        def unknown_names(what: str, given: tuple[str, ...] | list[str]) -> None:
            unknown = [n for n in given if n not in names]
            if unknown:
                close = {n: difflib.get_close_matches(n, names, n=1) for n in unknown}
                hints = [f"'{n}' -> '{c[0]}'?" for n, c in close.items() if c]
                raise SpecRuleError(f"{what} names unknown variables: {unknown}",
                                    "use the `name:` of a variable under `variables:`"
                                    + (f" ({', '.join(hints)})" if hints else ""), at=tuple(what.split(".")))

        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise SpecRuleError(f"variables listed twice: {dup}", "give every variable a distinct `name:`",
                                at=("variables",))
        out = self.outcome
        reserved = {self.study.id_column, out.time, out.event}
        clash = reserved & set(names)
        if clash:
            raise SpecRuleError(f"id/time/event columns must not be listed under variables: {sorted(clash)}",
                                "remove them from `variables:`; `study.id_column` and `outcome:` describe them",
                                at=("variables",))
        headers = [self.study.id_column, *(v.header for v in self.variables),
                   *((out.start, out.end) if out.start is not None else (out.time_header,)), out.event_header]
        twice = sorted({h for h in headers if headers.count(h) > 1}, key=str)
        if twice:
            raise SpecRuleError(f"two entries read the same data column: {twice}",
                                "each column of the data file is read once; check `column:`, `time_column:`, "
                                "`event_column:`, `start:`/`end:` and `id_column:`", at=("variables",))
        unknown_names("analysis.predictors", self.analysis.predictors)
        if self.analysis.selection == "prespecified" and not self.analysis.predictors:
            raise SpecRuleError("analysis.selection is 'prespecified' but analysis.predictors is empty",
                                "list the model's variables under `analysis: predictors: [...]`", at=("analysis",))
        if not any(v.candidate for v in self.variables) and not self.analysis.predictors:
            raise SpecRuleError("no variable is marked 'candidate: true'",
                                "mark the candidate predictors with `candidate: true`, or list `analysis.predictors`",
                                at=("variables",))
        unknown_names("outcome.event_details", self.outcome.event_details)
        if self.analysis.comparator is not None:
            unknown_names("analysis.comparator", [self.analysis.comparator.variable])
        period = self.validation.period_column if self.validation is not None else None
        if period is not None and period not in names and period != self.study.id_column:
            raise ValueError(f"validation.period_column '{period}' is not a variable or the id column")
        for ex in self.exclusions:
            if ex.column not in names and ex.column not in reserved:
                raise SpecRuleError(f"exclusion rule names unknown column '{ex.column}'",
                                    "`column:` of an exclusion is a variable's `name:` (or the time/event name)",
                                    at=("exclusions",))
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
    def narrative_dir(self) -> Path:
        return (self.base_dir / self.study.narrative).resolve()

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

    def localized(self, lang: str) -> StudySpec:
        """The study with its words in ``lang`` (labels, units, level labels, title, ...) where the
        study file gives them, English elsewhere; for presenting results, never for computing."""
        return self if lang == "en" else _localize(self, lang)  # type: ignore[return-value]

    def missing_translations(self, lang: str) -> list[str]:
        """Words the report in ``lang`` shows in English because the study file gives no
        ``lang`` text for them ('variable 'sex': label', ...); empty for English."""
        if lang == "en":
            return []
        out = []

        def check(owner: str, part: _Words, fields: tuple[str, ...]) -> None:
            have = part.translations.get(lang, {})  # type: ignore[call-overload]
            for f in fields:
                value = getattr(part, f, None)
                if f == "level_labels":
                    shown = [lv for lv in getattr(part, "levels", ())
                             if any(c.isalpha() for c in part.level_label(lv))]  # type: ignore[attr-defined]
                    lacking = [lv for lv in shown if lv not in have.get("level_labels", {})]
                    if lacking:
                        out.append(f"{owner}: level_labels of {', '.join(lacking)}")
                elif f == "unit":
                    if value and _unit_words(str(value)) and f not in have:
                        out.append(f"{owner}: unit")
                elif value and f not in have:
                    out.append(f"{owner}: {f}")

        check("study", self.study, ("title", "population", "centre", "period"))
        check("outcome", self.outcome, ("time_label", "event_label", "time_origin"))
        for v in self.variables:
            if not v.identifying:
                check(f"variable '{v.name}'", v, ("label", "unit", "level_labels"))
        if self.repeated is not None:
            check("repeated", self.repeated, ("population",))
            for t in self.repeated.timepoints:
                check(f"timepoint '{t.name}'", t, ("label",))
            for m in self.repeated.measures:
                check(f"measure '{m.name}'", m, ("label", "unit"))
        for i, ex in enumerate(self.exclusions, start=1):
            check(f"exclusion rule {i}", ex, ("reason",))
        if self.validation is not None:
            check("validation", self.validation, ("label",))
        comparator = getattr(self.analysis, "comparator", None)
        if isinstance(comparator, _Words):
            check("analysis.comparator", comparator, ("label",))
        return out

    def digest(self) -> str:
        """SHA-256 of the study file's bytes (or of the parsed spec when built in code)."""
        if self.source is not None and self.source.exists():
            return hashlib.sha256(self.source.read_bytes()).hexdigest()
        return hashlib.sha256(self.model_dump_json(exclude={"base_dir", "source"}).encode()).hexdigest()


def _unit_words(unit: str) -> bool:
    """Whether a unit is written in words a reader of another language needs translated
    ('years', 'points'), not in symbols every language prints alike ('HU', 'mL', 'kg/m²', '%')."""
    import re

    return any(w.lower() not in _UNIT_SYMBOLS for w in re.findall(r"[a-z]{3,}", unit))


#: lower-case runs in unit symbols that are not words
_UNIT_SYMBOLS = {"mmol", "mol", "mmhg", "kcal", "cmh", "pmol", "nmol", "umol", "µmol"}


# --- study-file errors in words ------------------------------------------------------------
_YAML_BOOL_FIX = "YAML reads unquoted yes/no/on/off as true/false: put the value in quotes, e.g. \"no\""

#: how to fix a wrong value, by pydantic error type (prefix match)
_TYPE_FIXES = {
    "float": "write a number (a point as decimal separator), without quotes or units",
    "int": "write a whole number, without quotes",
    "bool": "write true or false",
    "string": "write text; put it in quotes if it looks like a number, a date or yes/no",
    "tuple": "write a list, e.g. [a, b] (or one item per line starting with '- ')",
    "list": "write a list, e.g. [a, b] (or one item per line starting with '- ')",
    "dict": "write a mapping: `key: value` pairs, indented under this key",
    "model": "write a mapping: `key: value` pairs, indented under this key",
    "greater_than": "change the value as the rule says",
    "less_than": "change the value as the rule says",
    "too_long": "shorten the list as the rule says",
}


def _slug(text: str) -> str:
    """An identifier made from a header: ``Age (y)`` -> ``age_y``."""
    import re
    import unicodedata

    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    out = re.sub(r"[^0-9a-zA-Z]+", "_", ascii_text).strip("_").lower() or "var"
    return out if not out[0].isdigit() else f"v_{out}"


def _model_at(loc: tuple[object, ...]) -> type[BaseModel] | None:
    """The pydantic model that holds the key at ``loc`` (for the list of allowed keys)."""
    import types
    import typing

    model: object = StudySpec
    for part in loc:
        if isinstance(part, int):
            continue
        if not (isinstance(model, type) and issubclass(model, BaseModel)) or part not in model.model_fields:
            return None
        ann = model.model_fields[part].annotation
        while typing.get_origin(ann) in (tuple, list, typing.Union, types.UnionType):
            ann = next((a for a in typing.get_args(ann) if a is not type(None) and a is not Ellipsis), None)
        model = ann
    return model if isinstance(model, type) and issubclass(model, BaseModel) else None


def _owner(data: object, loc: tuple[object, ...]) -> str:
    """Who a location belongs to, in words: ``variable 'asa'``, ``measure 'pain'``, ``outcome``."""
    def item(key: str, i: int) -> dict:
        seq = (data or {}).get(key) if key != "measures" else ((data or {}).get("repeated") or {}).get("measures")
        try:
            entry = seq[i]  # type: ignore[index]
        except (TypeError, IndexError, KeyError):
            return {}
        return entry if isinstance(entry, dict) else {}

    if len(loc) >= 2 and loc[0] == "variables" and isinstance(loc[1], int):
        name = item("variables", loc[1]).get("name")
        return f"variable '{name}'" if name is not None else f"variable {loc[1] + 1} (no name)"
    if len(loc) >= 3 and loc[:2] == ("repeated", "measures") and isinstance(loc[2], int):
        name = item("measures", loc[2]).get("name")
        return f"measure '{name}'" if name is not None else f"measure {loc[2] + 1} (no name)"
    if len(loc) >= 2 and loc[0] == "exclusions" and isinstance(loc[1], int):
        return f"exclusion rule {loc[1] + 1}"
    return str(loc[0]) if loc and loc[0] in ("study", "outcome", "analysis", "repeated") else ""


def _problem_from_error(file: str, data: object, e: dict, text: str | None) -> Problem:
    loc = tuple(e["loc"])
    line = _yaml_line(text, loc)
    path = ".".join(str(p) for p in loc) or "(top level)"
    owner = _owner(data, loc)
    key = next((str(p) for p in reversed(loc) if isinstance(p, str)), "")
    etype, val = e["type"], e.get("input")
    shown = None if isinstance(val, (dict, list)) or val is None else repr(val)[:80]
    error = (e.get("ctx") or {}).get("error")
    model = _model_at(loc[:-1])
    allowed = sorted(model.model_fields) if model is not None else []
    allowed = [k for k in allowed if k not in ("base_dir", "source")]
    if isinstance(error, SpecRuleError):
        rule, fix = str(error), error.fix
        if error.at:
            loc = tuple(error.at)
            path, line = ".".join(str(p) for p in loc), _yaml_line(text, loc)
    elif etype == "extra_forbidden":
        close = difflib.get_close_matches(key, allowed, n=1)
        rule = f"unknown key '{key}'"
        fix = (f"did you mean '{close[0]}'? " if close else "check the spelling; ") + \
            ("allowed keys here: " + ", ".join(allowed) if allowed else "see the commented template of `cementleak new`")
    elif etype == "missing" and loc and isinstance(loc[-1], int):
        rule = f"{key} needs more values: value {loc[-1] + 1} is missing"
        fix = f"write every value of `{key}:`, e.g. range: [low, high]" if key == "range" else \
            f"write every value of `{key}:` (see the commented template of `cementleak new`)"
    elif etype == "missing":
        rule = f"required key '{key}' is missing"
        fix = f"add `{key}:`" + (f" under `{path.rsplit('.', 1)[0]}`" if "." in path else " at the top level") + \
            " (see the commented template of `cementleak new`)"
    elif etype == "literal_error":
        if len(loc) >= 2 and loc[-2] in ("event_aliases", "aliases", "level_labels"):
            key = f"{loc[-2]} '{loc[-1]}'"
        expected = str((e.get("ctx") or {}).get("expected", "")).replace("'", "").replace(" or ", ", ")
        rule = f"{key} must be one of {expected} (got {val!r})"
        fix = f"write one of: {expected}"
        if key == "kind":
            fix += ("; categories without an order are `nominal`, ordered categories `ordinal`, two categories "
                    "`binary`, numbers `continuous`")
    elif etype == "string_pattern_mismatch" and key == "name":
        rule = "the name is not an identifier (letters, digits and _, not starting with a digit)"
        fix = (f"`name:` is how results and tables refer to it; write `name: {_slug(str(val))}` and keep the "
               f"data file's header in `column: {json.dumps(str(val), ensure_ascii=False)}`")
    else:
        msg = str(e["msg"]).removeprefix("Value error, ")
        rule = f"{key or path}: {msg[0].lower() + msg[1:] if msg else msg}" + ("" if shown is None else f" (got {shown})")
        fix = next((f for prefix, f in _TYPE_FIXES.items() if etype.startswith(prefix)),
                   "see the commented template of `cementleak new` for this key")
    if isinstance(val, bool) or (etype == "string_type" and str(val) in ("True", "False")):
        fix = _YAML_BOOL_FIX
    if owner and not rule.startswith(owner):
        rule = f"{owner}: {rule}"
    return Problem(file=file, row=line, column=path, value=shown, rule=rule, fix=fix)


def _yaml_line(text: str | None, loc: tuple[object, ...]) -> int | None:
    """1-based line of the YAML node at ``loc`` (the deepest part of it that exists), or None."""
    if text is None:
        return None
    try:
        node = yaml.compose(text, Loader=_StudyLoader)  # composing builds nodes only: nothing is constructed
    except yaml.YAMLError:
        return None
    line = None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            hit = next(((k, v) for k, v in node.value if getattr(k, "value", None) == part), None)
            if hit is None:
                break
            line, node = hit[0].start_mark.line + 1, hit[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            break
    return line


def _problems_from_pydantic(file: str, err: ValidationError, data: object = None, text: str | None = None) -> list[Problem]:
    return [_problem_from_error(file, data, e, text) for e in err.errors()]


def parse_spec(data: object, *, base_dir: Path = Path("."), source: Path | None = None, file: str = "<study>",
               text: str | None = None) -> StudySpec:
    """Build a :class:`StudySpec` from an already-parsed mapping; raise :class:`InputError`.

    ``text`` (the YAML source) lets each problem name its line in the study file.
    """
    if not isinstance(data, dict):
        raise InputError([Problem(file=file, rule="study file must be a YAML mapping of keys to values",
                                  fix="start from the project's study.yaml")], summary="Invalid study file")
    try:
        return StudySpec.model_validate({**data, "base_dir": base_dir, "source": source})
    except ValidationError as err:
        raise InputError(_problems_from_pydantic(file, err, data, text), summary="Invalid study file") from None


class _StudyLoader(yaml.SafeLoader):
    """``yaml.safe_load``, except that a mapping *key* is never a boolean.

    YAML 1.1 reads unquoted Yes/No/On/Off as true/false; no key of a study file is a boolean,
    so ``event_aliases: {Yes: 1, No: 0}`` keeps its spellings ("Yes", "No").  Values keep the
    YAML rules (``levels: [no, yes]`` is refused with a fix, never silently read as booleans).
    """

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:  # type: ignore[override]
        for key, _ in node.value:
            if isinstance(key, yaml.ScalarNode) and key.tag == "tag:yaml.org,2002:bool" and not key.style:
                key.tag = "tag:yaml.org,2002:str"
        return super().construct_mapping(node, deep=deep)


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
        data = yaml.load(text, Loader=_StudyLoader)  # noqa: S506 - a SafeLoader subclass
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
    return parse_spec(data, base_dir=p.resolve().parent, source=p.resolve(), file=name, text=text)
