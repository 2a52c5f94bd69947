"""pandera schemas generated from the study file, and their failures as :class:`Problem` rows.

The schemas validate the *raw* table as read from disk (object columns holding strings,
numbers or ``None``; index = the 1-based spreadsheet row, header = row 1), so that a bad
cell is reported with the value the user typed, not with a coerced ``NaN``.  Every rule is
a named :class:`pandera.Check` whose ``name`` is the rule text and whose ``description`` is
the fix; pandera's lazy validation collects every failure in one pass and
:func:`check_table` turns each failure case into a :class:`~cementleak_stats.errors.Problem`.

Only two things are checked in plain pandas, because pandera cannot express them as we
need them: unknown extra columns (``strict=True`` would make them *errors*; they are only
*warnings* here, see :func:`unknown_columns`) and file-level structure (empty rows,
ragged rows, duplicated header names, encodings), which :mod:`cementleak_stats.cohort.read`
checks while reading: a table with those problems has no reliable columns to validate.

Columns are keyed by their header in the data file (``column:`` in the study file, else the
variable's name).  Each column is parsed once per table (:mod:`cementleak_stats.cohort.cells`,
whose parsers this module re-exports): pandera hands every check its own copy of the column,
so the checks read the parse from a memo instead of parsing the text again.
"""

from __future__ import annotations

import difflib
import json
import math
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import replace

import numpy as np
import pandas as pd
import pandera.pandas as pa
from pandera.errors import SchemaErrors

from ..errors import Problem
from ..formatting import format_g
from ..spec import Outcome, StudySpec, Variable
from .cells import (_at, _dates, _decimal_comma, _missing, _number, _text, as_number, as_text, canonical_levels,
                    date_time, event_codes, has_decimal_comma, parsed, parsing)
from .dates import looks_like_dates

__all__ = ["DECIMAL_COMMA_RULE", "NOT_A_NUMBER_RULE", "cohort_schema", "repeated_schema", "check_table",
           "unknown_columns", "as_number", "as_text", "canonical_levels", "date_time", "event_codes",
           "has_decimal_comma", "parsed", "parsing"]

DECIMAL_COMMA_RULE = "decimal comma; use a point"


# --- check factories ----------------------------------------------------------------------
def _check(fn: Callable[[pd.Series], pd.Series], rule: str, fix: str, *, title: str | None = None) -> pa.Check:
    """A vectorised pandera check; ``name`` carries the rule text, ``description`` the fix.

    Missing cells pass (they are the ``nullable`` rule's job).  We pass them ourselves from the
    column's memoized missing mask rather than with pandera's ``ignore_na``, which tests every
    column for missing values twice per rule.
    """
    return pa.Check(lambda s: fn(s) | _missing(s), name=rule, description=fix, title=title, ignore_na=False)


NOT_A_NUMBER_RULE = "not a number"


def _numeric_checks(*, lo: float | None = None, hi: float | None = None, integer: bool = False) -> list[pa.Check]:
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


def _variable_column(var: Variable) -> pa.Column:
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
    return pa.Column(None, checks=checks, nullable=var.missing_allowed, required=True, title=var.label,
                     description="set `missing_allowed: true` for this variable in the study file if missing values "
                                 "are expected",
                     metadata={"role": "continuous" if var.kind == "continuous" else "categorical", "name": var.name,
                               "levels": list(var.levels)})


def _id_column(*, unique: bool, known: Collection[str] | None = None, what: str = "patient id") -> pa.Column:
    checks = []
    if unique:
        checks.append(_check(lambda s: ~_text(s).duplicated(keep="first"), f"duplicated {what}",
                             "each patient must appear in exactly one row; remove or correct the repeated row"))
    if known is not None:
        known = frozenset(known)
        checks.append(_check(lambda s: _text(s).isin(known), "patient not in the cohort file",
                             "every row must belong to a patient of the cohort table; check the id"))
    return pa.Column(None, checks=checks, nullable=False, required=True, title=what,
                     description="every row needs an identifier", metadata={"role": "id"})


def _date_column(outcome: Outcome, which: str) -> pa.Column:
    fmt = outcome.date_format
    form = f" in the form {fmt}" if fmt else ""
    checks = [
        _check(lambda s: _at(_dates(s, fmt).values.notna() | _dates(s, fmt).undecided, s), f"not a date{form}",
               (f"write the date as {fmt} (`date_format:` in the study file)" if fmt else
                "write a date: 2020-04-03 (best), 03/04/2020 or 3 Apr 2020; in Excel, format the cell as a date")),
        # one problem for the whole column when its dates do not say day-first or month-first
        pa.Check(lambda s: _dates(s, fmt).problem is None, name="dates of undecided form", statistics={"dates": fmt}),
    ]
    return pa.Column(None, checks=checks, nullable=False, required=True, title=f"{which} date",
                     description=f"every patient needs a{'n' if which == 'end' else ''} {which} date",
                     metadata={"role": "date"})


def _date_row_checks(outcome: Outcome) -> list[pa.Check]:
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
        pa.Check(lambda df: ~time(df).lt(0), name="end date before the start date", statistics=stats, ignore_na=False,
                 description="check both dates against the source record (swapped columns? a typing error?)"),
        pa.Check(lambda df: ~time(df).eq(0), name="time must be greater than 0 (end date = start date)",
                 statistics=stats, ignore_na=False, description="a follow-up of 0 days is impossible in a survival analysis; check the dates"),
        pa.Check(lambda df: ~time(df).gt(outcome.followup), statistics=stats, ignore_na=False,
                 name=f"time beyond the follow-up of {format_g(outcome.followup)} {unit}",
                 description="censor at the end of follow-up (end date = the last date within follow-up), or change "
                             "`outcome.followup` in the study file"),
    ]


def cohort_schema(spec: StudySpec) -> pa.DataFrameSchema:
    """The pandera schema of the cohort table, generated from the study file.

    Parameters
    ----------
    spec
        The parsed study file.

    Returns
    -------
    pandera.DataFrameSchema
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
    columns: dict[str, pa.Column] = {spec.study.id_column: _id_column(unique=True)}
    for var in spec.variables:
        columns[var.header] = _variable_column(var)
    checks: list[pa.Check] = []
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
        columns[out.time_header] = pa.Column(None, checks=time_checks, nullable=False, required=True,  # type: ignore[index]
                                             title=out.time_label, description="every patient needs a follow-up time",
                                             metadata={"role": "time"})
    codes = ", ".join(f"{k} = {v}" for k, v in out.event_aliases.items())
    columns[out.event_header] = pa.Column(
        None, nullable=False, required=True, title=out.event_label, description="every patient needs an event status",
        metadata={"role": "event"},
        checks=[_check(lambda s: _at(parsed(event_codes, s, out), s).notna(),  # type: ignore[arg-type]
                       "event must be 0 (censored) or 1 (event)" + (f", or {codes}" if codes else ""),
                       "code the event as 1 and no event (censored) as 0, or map the spellings of the data with "
                       "`event_aliases:` under `outcome:` in the study file")])
    return pa.DataFrameSchema(columns, checks=checks, strict=False, name="cohort")


def repeated_schema(spec: StudySpec, *, cohort_ids: Collection[str] | None = None) -> pa.DataFrameSchema:
    """The pandera schema of the long repeated-measures table (``spec.repeated``).

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
        rep.timepoint: pa.Column(None, nullable=False, required=True, description="every row needs a timepoint",
                                 metadata={"role": "categorical"},
                                 checks=[_check(lambda s: canonical_levels(s, tp_var).notna(),
                                                "unknown timepoint; allowed: " + ", ".join(names),
                                                "use the timepoint names listed under repeated.timepoints")]),
    }
    for m in rep.measures:
        columns[m.header] = pa.Column(None, checks=_numeric_checks(lo=m.range[0], hi=m.range[1]), nullable=False,
                                      required=True, title=m.label, description="every row needs every measure",
                                      metadata={"role": "continuous", "name": m.name})
    key = [rep.id, rep.timepoint]

    def _unique_pairs(df: pd.DataFrame) -> pd.Series:
        if not set(key) <= set(df.columns):  # the missing column is reported on its own
            return pd.Series(True, index=df.index)
        return ~df[key].apply(as_text).duplicated(keep="first")

    pair_check = pa.Check(_unique_pairs, name="duplicated (patient, timepoint) row", statistics={"columns": key}, ignore_na=False,
                          description="each patient has at most one row per timepoint; remove or correct the repeated row")
    return pa.DataFrameSchema(columns, checks=[pair_check], strict=False, name="repeated")


# --- pandera failures -> Problems -----------------------------------------------------------
_NULLABLE_RULE = "missing value not allowed"


def _value(v: object) -> str | None:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return None
    s = str(v)
    return s if len(s) <= 80 else s[:77] + "..."


def _missing_column_fix(name: str, present: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, [str(c) for c in present], n=1, cutoff=0.6)
    # invisible characters (a byte-order mark, a non-breaking space) are shown escaped, or the hint
    # "the file has 'patient_id'" would read as nonsense
    shown = close[0].encode("ascii", "backslashreplace").decode("ascii") if close else ""
    hint = (f"; the file has '{shown}' — did you mean that? Rename it, or write that header in `column:` of the "
            "variable in the study file" if close else
            "; if the file names it differently, write the file's header in `column:` of the variable in the study file")
    return f"add a column named '{name}' (spelled exactly as in the study file){hint}"


#: whole-column failures: what the column probably is, by the role of the column
_YES_NO = {"yes", "no", "y", "n", "true", "false", "dead", "alive", "died", "censored", "event", "none", "positive",
           "negative", "present", "absent"}
_EVENT_WORDS = {"yes", "y", "true", "dead", "died", "event", "positive", "present"}


def _column_hint(values: pd.Series, role: str, rule: str, levels: Sequence[str] = ()) -> str:
    """What a column whose every cell breaks ``rule`` probably holds, and what to write instead."""
    present = values.dropna()
    distinct = list(dict.fromkeys(as_text(present).tolist()))
    shown = ", ".join(distinct[:6]) + (", ..." if len(distinct) > 6 else "")
    words = {str(v).strip().lower() for v in distinct}
    if role in ("continuous", "time") and rule == NOT_A_NUMBER_RULE and looks_like_dates(present):
        return ("every cell of this column is a date: is this a date column? A date is not a number; to compute the "
                "follow-up time from dates write `start:` and `end:` (the date columns' headers) under `outcome:`")
    if role == "event" and len(distinct) <= 6:
        guess = {v: int(v.strip().lower() in _EVENT_WORDS) for v in distinct}
        return (f"every cell of this column is one of {shown}: map them under `outcome:` with `event_aliases: "
                f"{json.dumps(guess, ensure_ascii=False)}` (check which spelling means the event)")
    if role == "continuous" and rule == NOT_A_NUMBER_RULE and len(distinct) <= 10:
        kind = "binary" if len(distinct) == 2 else "nominal (or ordinal)"
        yn = " (Yes/No)" if words <= _YES_NO else ""
        return (f"every cell of this column is text{yn}: {shown}; is it a categorical variable? Write `kind: {kind}` "
                f"with `levels:` (and `aliases:`) in the study file")
    folded = {lv.casefold(): lv for lv in levels}
    same = {v: folded[v.strip().casefold()] for v in distinct if v.strip().casefold() in folded}
    if role == "categorical" and rule.startswith("unknown level") and len(same) == len(distinct):
        return (f"the column holds the levels in another spelling ({shown}; matching is exact): add `aliases: "
                f"{json.dumps(same, ensure_ascii=False)}` to the variable in the study file")
    if role == "categorical" and rule.startswith("unknown level") and len(distinct) <= 12:
        return (f"no cell of this column is a listed level; it holds {shown}: list these spellings under `aliases:` "
                "of the variable (or as its `levels:`), or check that `column:` names the right column")
    if role == "categorical" and rule.startswith("unknown level"):
        return (f"no cell of this column is a listed level and it holds {len(distinct)} different values ({shown}): "
                "is it a continuous variable, or does `column:` name the wrong column?")
    if role == "id":
        return "no id of this column is known: is it the patient id column, with the ids written as in the cohort file?"
    return "every cell of this column breaks this rule: does `column:` name the right column, and is `kind:` right?"


def _with_column_hints(problems: list[Problem], frame: pd.DataFrame, schema: pa.DataFrameSchema) -> list[Problem]:
    """Problems of a rule that every non-empty cell of a column breaks get a hint about the column."""
    counts: dict[tuple[str | None, str], int] = {}
    for p in problems:
        if p.row is not None:
            counts[(p.column, p.rule)] = counts.get((p.column, p.rule), 0) + 1
    hints: dict[tuple[str | None, str], str] = {}
    for (column, rule), n in counts.items():
        if column not in schema.columns or column not in frame.columns or n < 2:
            continue
        values = frame[column]
        if rule == _NULLABLE_RULE:
            if n == len(values):
                hints[(column, rule)] = ("the column is empty in every row: does `column:` name the right column "
                                         "of the file?")
            continue
        if n == int(values.notna().sum()):
            meta = schema.columns[column].metadata or {}
            hints[(column, rule)] = _column_hint(values, meta.get("role", ""), rule, meta.get("levels", ()))
    if not hints:
        return problems
    def joined(hint: str, fix: str) -> str:
        return f"{hint if hint.endswith(('?', '.')) else hint + '.'} Otherwise: {fix}"

    return [replace(p, fix=joined(hints[(p.column, p.rule)], p.fix)) if (p.column, p.rule) in hints and p.row is not None
            else p for p in problems]


def check_table(frame: pd.DataFrame, schema: pa.DataFrameSchema, *, file: str) -> list[Problem]:
    """Validate a raw table lazily and return every failure as a :class:`Problem`.

    Parameters
    ----------
    frame
        Raw table: object columns, index = 1-based spreadsheet row (header = row 1).
    schema
        From :func:`cohort_schema` or :func:`repeated_schema`.
    file
        File name to put in each problem.

    Returns
    -------
    list of Problem
        Empty when the table is valid; otherwise one problem per failing cell (missing
        columns and multi-column rules once per column or row), ordered by row.
    """
    with parsing(frame):
        try:
            schema.validate(frame, lazy=True)
        except SchemaErrors as exc:
            cases = exc.failure_cases
        else:
            return []
        problems = _problems(cases, frame, schema, file)
    order = {c: i for i, c in enumerate(schema.columns)}
    problems = _with_column_hints(problems, frame, schema)
    return sorted(problems, key=lambda p: (p.row or 0, order.get(p.column, len(order)), p.rule))


def _problems(cases: pd.DataFrame, frame: pd.DataFrame, schema: pa.DataFrameSchema, file: str) -> list[Problem]:
    out: dict[tuple[object, ...], Problem] = {}
    for case in cases.itertuples(index=False):
        column, name = case.column, str(case.check)
        row = None if case.index is None or pd.isna(case.index) else int(case.index)
        if name == "column_in_dataframe":
            col = str(case.failure_case)
            p = Problem(file=file, column=col, rule="required column is missing", fix=_missing_column_fix(col, frame.columns))
        elif name == "not_nullable":
            p = Problem(file=file, row=row, column=column, rule=_NULLABLE_RULE, fix=schema.columns[column].description or "")
        elif case.check_number is not None and not pd.isna(case.check_number):
            owner = schema.columns[column].checks if case.schema_context == "Column" else schema.checks
            chk = owner[int(case.check_number)]
            stats = chk.statistics or {}
            rule, fix, value = chk.name, chk.description or "", _value(case.failure_case)
            if "dates" in stats:  # the whole column: its dates do not say day-first or month-first
                dates = _dates(frame[column], stats["dates"])
                if dates.problem is None:
                    continue
                (rule, fix), row = dates.problem, dates.problem_row
                value = None if row is None else _value(frame.at[row, column])
            elif "columns" in stats:  # a row-level rule: once per row, naming its columns
                cols = stats["columns"]
                column = ", ".join(cols)
                value = (stats["describe"](frame, row) if "describe" in stats
                         else " / ".join(str(v) for v in as_text(frame.loc[row, cols])))
            p = Problem(file=file, row=row, column=column, value=value, rule=rule, fix=fix)
        else:  # pandera reported something we did not anticipate: keep its own words
            p = Problem(file=file, row=row, column=None if column is None else str(column), value=_value(case.failure_case),
                        rule=name)
        out.setdefault((p.row, p.column, p.rule), p)
    return list(out.values())


def unknown_columns(frame: pd.DataFrame, schema: pa.DataFrameSchema, *, file: str) -> list[Problem]:
    """Columns the study file does not name: a *warning* each (they are ignored, not an error).

    Done in plain pandas: pandera's ``strict=True`` would turn them into errors.
    """
    extra = [c for c in frame.columns if c not in schema.columns]
    return [Problem(file=file, column=str(c), rule="unknown column (ignored)",
                    fix="remove it, or describe it under `variables:` in the study file if it is needed")
            for c in extra]
