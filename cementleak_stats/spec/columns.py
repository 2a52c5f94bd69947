"""The study file's data parts: the cohort's variables, the outcome, the repeated measures, exclusions."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from .words import IDENTIFIER, Kind, SpecRuleError, _Column, _Words


class Variable(_Column):
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
    def ref_level(self) -> str | None:
        """Reference level: the one named, else the first level."""
        if self.kind == "continuous":
            return None
        return self.reference or self.levels[0]

    def level_label(self, level: object) -> str:
        """How a level is printed (``level_labels`` in the study file, else the level)."""
        return self.level_labels.get(str(level), str(level))


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


class Measure(_Column):
    _TEXT = ("label", "unit")

    name: str = Field(pattern=IDENTIFIER)
    label: str
    unit: str | None = None
    range: tuple[float, float]
    #: the measure's header in the data file when it is not ``name``
    column: str | None = None


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
