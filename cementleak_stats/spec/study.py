"""The whole study file: :class:`StudySpec`, its cross-checks and what the rest of the package asks it."""

from __future__ import annotations

import difflib
import hashlib
from pathlib import Path

from pydantic import model_validator

from .columns import Exclusion, Outcome, Repeated, Variable
from .options import Analysis, Report, StudyInfo, Validation
from .words import SpecRuleError, _Frozen, _localize, _Words


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
