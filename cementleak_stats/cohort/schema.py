"""The rules of the raw tables, generated from the study file, as pandera schemas (their
failures become :class:`Problem` rows in :mod:`cementleak_stats.cohort.failures`).

The schemas validate the *raw* table as read from disk (object columns holding strings,
numbers or ``None``; index = the 1-based spreadsheet row, header = row 1), so that a bad
cell is reported with the value the user typed, not with a coerced ``NaN``.  Every rule is
a named check whose ``name`` is the rule text and whose ``description`` is the fix;
pandera's lazy validation collects every failure in one pass and
:func:`~cementleak_stats.cohort.failures.check_table` turns each failure case into a
:class:`~cementleak_stats.errors.Problem`.

The rules are kept as data (:class:`Rule`, :class:`ColumnRules`, :class:`TableRules`, with
the fields of ``pandera.Check``, ``Column`` and ``DataFrameSchema`` that the failures read)
and become pandera objects (:meth:`TableRules.to_pandera`) only when a table breaks one:
:meth:`TableRules.passes` first evaluates the same rule functions on the whole table, and a
clean table, the usual case, is done without importing pandera (about 0.3 s of import and
0.1 s per table at n = 100; issue 16).  Anything that fails, or that the pre-check cannot
evaluate, goes to pandera, which reports it.

Only two things are checked in plain pandas, because pandera cannot express them as we
need them: unknown extra columns (``strict=True`` would make them *errors*; they are only
*warnings* here, see :func:`~cementleak_stats.cohort.failures.unknown_columns`) and file-level structure (empty rows,
ragged rows, duplicated header names, encodings), which :mod:`cementleak_stats.cohort.read`
checks while reading: a table with those problems has no reliable columns to validate.

Columns are keyed by their header in the data file (``column:`` in the study file, else the
variable's name).  Each column is parsed once per table (:mod:`cementleak_stats.cohort.cells`,
whose parsers this module re-exports): pandera hands every check its own copy of the column,
so the checks read the parse from a memo instead of parsing the text again.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..formatting import format_g
from ..spec import Outcome, StudySpec, Variable
from .cells import (_at, _dates, _decimal_comma, _missing, _number, _text, as_number, as_text, canonical_levels,
                    date_time, event_codes, has_decimal_comma, parsed, parsing)

if TYPE_CHECKING:
    import pandera.pandas as pa

__all__ = ["DECIMAL_COMMA_RULE", "NOT_A_NUMBER_RULE", "Rule", "ColumnRules", "TableRules", "cohort_schema", "repeated_schema",
           "as_number", "as_text", "canonical_levels", "date_time", "event_codes", "has_decimal_comma", "parsed", "parsing"]

DECIMAL_COMMA_RULE = "decimal comma; use a point"


# --- the rules as data ----------------------------------------------------------------------
@dataclass(frozen=True)
class Rule:
    """One named check (``pandera.Check``): ``fn`` gets the column (or the table) and returns a
    boolean per row, or one boolean for the whole column; ``name`` is the rule, ``description`` the fix."""

    fn: Callable[[Any], Any]
    name: str
    description: str | None = None
    title: str | None = None
    statistics: dict[str, Any] | None = None

    def passes(self, obj: pd.Series | pd.DataFrame) -> bool:
        return bool(np.all(self.fn(obj)))

    def to_pandera(self) -> pa.Check:
        import pandera.pandas as pa

        return pa.Check(self.fn, name=self.name, description=self.description, title=self.title,
                        statistics=self.statistics, ignore_na=False)


@dataclass(frozen=True)
class ColumnRules:
    """A required column (``pandera.Column``): its checks, whether it may have missing cells, and
    the words and metadata the failures use."""

    checks: list[Rule]
    nullable: bool
    title: str | None = None
    description: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def passes(self, column: pd.Series) -> bool:
        return (self.nullable or not bool(_missing(column).any())) and all(c.passes(column) for c in self.checks)

    def to_pandera(self) -> pa.Column:
        import pandera.pandas as pa

        return pa.Column(None, checks=[c.to_pandera() for c in self.checks], nullable=self.nullable, required=True,
                         title=self.title, description=self.description, metadata=self.metadata)


@dataclass(frozen=True)
class TableRules:
    """The rules of one table (``pandera.DataFrameSchema``, extra columns allowed): its columns by
    header, and the checks of whole rows."""

    columns: dict[str, ColumnRules]
    checks: list[Rule] = field(default_factory=list)
    name: str | None = None

    def passes(self, frame: pd.DataFrame) -> bool:
        """Whether ``frame`` breaks no rule: every column present, no missing cell where none is
        allowed, every check true.  The same rule functions as pandera runs (call inside
        :func:`parsing`); False, or an error, sends the table to pandera for the report."""
        try:
            return (all(h in frame.columns for h in self.columns)
                    and all(rules.passes(frame[h]) for h, rules in self.columns.items())
                    and all(c.passes(frame) for c in self.checks))
        except Exception:  # noqa: BLE001 - whatever it is, pandera will report it
            return False

    def select_columns(self, headers: Collection[str]) -> TableRules:
        return replace(self, columns={h: self.columns[h] for h in headers})

    def update_columns(self, changes: Mapping[str, Mapping[str, Any]]) -> TableRules:
        return replace(self, columns={h: replace(c, **changes.get(h, {})) for h, c in self.columns.items()})

    def to_pandera(self) -> pa.DataFrameSchema:
        import pandera.pandas as pa

        return pa.DataFrameSchema({h: c.to_pandera() for h, c in self.columns.items()},
                                  checks=[c.to_pandera() for c in self.checks], strict=False, name=self.name)


# --- check factories ----------------------------------------------------------------------
def _check(fn: Callable[[pd.Series], pd.Series], rule: str, fix: str, *, title: str | None = None) -> Rule:
    """A vectorised check; ``name`` carries the rule text, ``description`` the fix.

    Missing cells pass (they are the ``nullable`` rule's job).  We pass them ourselves from the
    column's memoized missing mask rather than with pandera's ``ignore_na``, which tests every
    column for missing values twice per rule.
    """
    return Rule(lambda s: fn(s) | _missing(s), name=rule, description=fix, title=title)


NOT_A_NUMBER_RULE = "not a number"


def _numeric_checks(*, lo: float | None = None, hi: float | None = None, integer: bool = False) -> list[Rule]:
    checks = [
        _check(lambda s: _number(s).notna() | _decimal_comma(s),
               NOT_A_NUMBER_RULE, "write a number with a point as decimal separator (e.g. 23.5), or leave the cell "
               "empty if missing values are allowed"),
        _check(lambda s: ~_decimal_comma(s),
               DECIMAL_COMMA_RULE, "write 23.5, not 23,5 (and no thousands separator)"),
    ]
    if lo is not None and hi is not None:
        checks.append(_check(lambda s: ~_number(s).pipe(lambda x: x.lt(lo) | x.gt(hi)),
                             f"outside the plausible range [{format_g(lo)}, {format_g(hi)}]",
                             "check the value against the source record, or widen `range:` in the study file"))
    if integer:
        checks.append(_check(lambda s: _number(s).pipe(lambda x: x.isna() | (x == np.floor(x))),
                             "not a whole number", "this variable is a count (`integer: true` in the study file); "
                             "check the value"))
    return checks


def _variable_column(var: Variable) -> ColumnRules:
    if var.kind == "continuous":
        lo, hi = var.range if var.range is not None else (None, None)
        checks = _numeric_checks(lo=lo, hi=hi, integer=var.integer)
    else:
        allowed = ", ".join(var.levels)
        if var.aliases:
            allowed += " (also " + ", ".join(var.aliases) + ")"
        accepted = {lv: lv for lv in var.levels} | dict(var.aliases)
        checks = [_check(lambda s, a=accepted: _text(s).isin(a), f"unknown level; allowed: {allowed}",
                         "use one of the allowed spellings (case matters), or list this spelling under `aliases:` "
                         "of the variable in the study file")]
    return ColumnRules(checks=checks, nullable=var.missing_allowed, title=var.label,
                     description="set `missing_allowed: true` for this variable in the study file if missing values "
                                 "are expected",
                     metadata={"role": "continuous" if var.kind == "continuous" else "categorical", "name": var.name,
                               "levels": list(var.levels)})


def _id_column(*, unique: bool, known: Collection[str] | None = None, what: str = "patient id") -> ColumnRules:
    checks = []
    if unique:
        checks.append(_check(lambda s: ~_text(s).duplicated(keep="first"), f"duplicated {what}",
                             "each patient must appear in exactly one row; remove or correct the repeated row"))
    if known is not None:
        known = frozenset(known)
        # membership in the set cell by cell: 3x faster than Series.isin(set) (810,000 rows: 0.6 s, not 2 s)
        checks.append(_check(lambda s: _text(s).map(known.__contains__, na_action=None).astype(bool),
                             "patient not in the cohort file",
                             "every row must belong to a patient of the cohort table; check the id"))
    return ColumnRules(checks=checks, nullable=False, title=what, description="every row needs an identifier",
                       metadata={"role": "id"})


def _date_column(outcome: Outcome, which: str) -> ColumnRules:
    fmt = outcome.date_format
    form = f" in the form {fmt}" if fmt else ""
    checks = [
        _check(lambda s: _at(_dates(s, fmt).values.notna() | _dates(s, fmt).undecided, s), f"not a date{form}",
               (f"write the date as {fmt} (`date_format:` in the study file)" if fmt else
                "write a date: 2020-04-03 (best), 03/04/2020 or 3 Apr 2020; in Excel, format the cell as a date")),
        # one problem for the whole column when its dates do not say day-first or month-first
        Rule(lambda s: _dates(s, fmt).problem is None, name="dates of undecided form", statistics={"dates": fmt}),
    ]
    return ColumnRules(checks=checks, nullable=False, title=f"{which} date",
                     description=f"every patient needs a{'n' if which == 'end' else ''} {which} date",
                     metadata={"role": "date"})


def _date_row_checks(outcome: Outcome) -> list[Rule]:
    """Rules on the time computed from the two dates: once per row, naming both columns."""
    cols, unit = [outcome.start, outcome.end], outcome.time_unit

    def time(df: pd.DataFrame) -> pd.Series:
        if not set(cols) <= set(df.columns):  # the missing column is reported on its own
            return pd.Series(np.nan, index=df.index)
        return date_time(df, outcome)

    def describe(df: pd.DataFrame, row: int) -> str:
        t = date_time(df, outcome).get(row)
        start, end = (_value(df.at[row, c]) for c in cols)
        return f"{start} -> {end} ({format_g(t) if t is not None and not math.isnan(t) else '?'} {unit})"

    stats = {"columns": cols, "describe": describe}
    return [
        Rule(lambda df: ~time(df).lt(0), name="end date before the start date", statistics=stats,
             description="check both dates against the source record (swapped columns? a typing error?)"),
        Rule(lambda df: ~time(df).eq(0), name="time must be greater than 0 (end date = start date)",
             statistics=stats, description="a follow-up of 0 days is impossible in a survival analysis; check the dates"),
        Rule(lambda df: ~time(df).gt(outcome.followup), statistics=stats,
             name=f"time beyond the follow-up of {format_g(outcome.followup)} {unit}",
             description="censor at the end of follow-up (end date = the last date within follow-up), or change "
                         "`outcome.followup` in the study file"),
    ]


def cohort_schema(spec: StudySpec) -> TableRules:
    """The rules (pandera schema) of the cohort table, generated from the study file.

    Parameters
    ----------
    spec
        The parsed study file.

    Returns
    -------
    TableRules
        One column per column the data file must have, keyed by its header (``column:``, else
        the name): id, variables, time (or the start and end dates), event.  All required; extra
        columns allowed.

    Notes
    -----
    Rules per column: the id is present and unique; continuous variables are numbers
    (no decimal comma), inside ``range`` and whole numbers where ``integer: true``;
    categorical variables take a level or a listed alias; time is a number with
    0 < time <= ``outcome.followup`` (or, from dates, each date a date, the end not before the
    start, the difference > 0 and within follow-up); event is 0/1, true/false or an
    ``event_aliases`` spelling; a cell may be empty only where ``missing_allowed: true``.
    """
    out = spec.outcome
    columns: dict[str, ColumnRules] = {spec.study.id_column: _id_column(unique=True)}
    for var in spec.variables:
        columns[var.header] = _variable_column(var)
    checks: list[Rule] = []
    if out.start is not None and out.end is not None:
        columns[out.start] = _date_column(out, "start")
        columns[out.end] = _date_column(out, "end")
        checks = _date_row_checks(out)
    else:
        time_checks = _numeric_checks()
        time_checks.append(_check(lambda s: ~_number(s).le(0), "time must be greater than 0",
                                  "a follow-up time of 0 or less is impossible; check the dates"))
        time_checks.append(_check(lambda s: ~_number(s).gt(out.followup),
                                  f"time beyond the follow-up of {format_g(out.followup)} {out.time_unit}",
                                  "censor at the end of follow-up, or change `outcome.followup` in the study file"))
        columns[out.time_header] = ColumnRules(checks=time_checks, nullable=False,  # type: ignore[index]
                                               title=out.time_label, description="every patient needs a follow-up time",
                                               metadata={"role": "time"})
    codes = ", ".join(f"{k} = {v}" for k, v in out.event_aliases.items())
    columns[out.event_header] = ColumnRules(
        nullable=False, title=out.event_label, description="every patient needs an event status",
        metadata={"role": "event"},
        checks=[_check(lambda s: _at(parsed(event_codes, s, out), s).notna(),  # type: ignore[arg-type]
                       "event must be 0 (censored) or 1 (event)" + (f", or {codes}" if codes else ""),
                       "code the event as 1 and no event (censored) as 0, or map the spellings of the data with "
                       "`event_aliases:` under `outcome:` in the study file")])
    return TableRules(columns, checks=checks, name="cohort")


def repeated_schema(spec: StudySpec, *, cohort_ids: Collection[str] | None = None) -> TableRules:
    """The rules (pandera schema) of the long repeated-measures table (``spec.repeated``).

    Parameters
    ----------
    spec
        The parsed study file; must have a ``repeated`` section.
    cohort_ids
        Patient ids of the cohort table (as text); rows with any other id fail.  ``None``
        skips that rule (used when the cohort table itself could not be read).

    Notes
    -----
    Rules: id present and (if ``cohort_ids``) known; timepoint one of the listed names;
    each measure a number inside its ``range``; at most one row per (id, timepoint).
    """
    rep = spec.repeated
    if rep is None:
        raise ValueError("the study file has no 'repeated' section")
    names = [tp.name for tp in rep.timepoints]
    tp_var = Variable(name="timepoint", label="timepoint", kind="nominal", levels=tuple(names))
    columns = {
        rep.id: _id_column(unique=False, known=cohort_ids),
        rep.timepoint: ColumnRules(nullable=False, description="every row needs a timepoint",
                                   metadata={"role": "categorical"},
                                   checks=[_check(lambda s: canonical_levels(s, tp_var).notna(),
                                                  "unknown timepoint; allowed: " + ", ".join(names),
                                                  "use the timepoint names listed under repeated.timepoints")]),
    }
    for m in rep.measures:
        columns[m.header] = ColumnRules(checks=_numeric_checks(lo=m.range[0], hi=m.range[1]), nullable=False,
                                        title=m.label, description="every row needs every measure",
                                        metadata={"role": "continuous", "name": m.name})
    key = [rep.id, rep.timepoint]

    def _unique_pairs(df: pd.DataFrame) -> pd.Series:
        if not set(key) <= set(df.columns):  # the missing column is reported on its own
            return pd.Series(True, index=df.index)
        return ~df[key].apply(as_text).duplicated(keep="first")

    pair_check = Rule(_unique_pairs, name="duplicated (patient, timepoint) row", statistics={"columns": key},
                      description="each patient has at most one row per timepoint; remove or correct the repeated row")
    return TableRules(columns, checks=[pair_check], name="repeated")


def _value(v: object) -> str | None:
    """A cell as a problem shows it: ``None`` when missing, else its text cut at 80 characters."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return None
    s = str(v)
    return s if len(s) <= 80 else s[:77] + "..."
