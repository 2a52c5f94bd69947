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
ragged rows, duplicated header names, encodings), which :mod:`cementleak_stats.cohort.io`
checks while reading: a table with those problems has no reliable columns to validate.
"""

from __future__ import annotations

import difflib
import math
import numbers
import re
from collections.abc import Callable, Collection, Iterable

import numpy as np
import pandas as pd
import pandera.pandas as pa
from pandera.errors import SchemaErrors

from ..errors import Problem
from ..spec import StudySpec, Variable

# A number written with a decimal comma (``23,5``) or a thousands separator (``1,250``).
_DECIMAL_COMMA = re.compile(r"\s*[+-]?\d+,\d+\s*")

DECIMAL_COMMA_RULE = "decimal comma; use a point"


# --- cell parsers (shared by the checks and by the typing step in io.py) ------------------
# Vectorised: a cohort of 100,000 rows is validated in seconds (an element-wise Python parser
# took half a minute).
def _kinds(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Masks of the text cells and of the real-number cells (booleans are not numbers)."""
    kinds = values.map(type)
    types = kinds.unique()
    real = [t for t in types if issubclass(t, numbers.Real) and not issubclass(t, (bool, np.bool_))]
    return kinds.isin([t for t in types if issubclass(t, str)]), kinds.isin(real)


def as_number(values: pd.Series) -> pd.Series:
    """Each cell as a finite float; ``NaN`` where the cell is missing or is not a number.

    Text is parsed by :func:`pandas.to_numeric` (a point as decimal separator, optional sign
    and exponent); booleans, dates, ``inf`` and text such as ``"23,5"`` or ``"sixty"`` are
    not numbers.
    """
    text, real = _kinds(values)
    out = pd.Series(np.nan, index=values.index, dtype=float)
    if real.any():
        out[real] = values[real].astype(float)
    if text.any():
        out[text] = pd.to_numeric(values[text], errors="coerce").astype(float)  # ignores surrounding spaces
    return out.where(np.isfinite(out))


def has_decimal_comma(values: pd.Series) -> pd.Series:
    """True for text cells holding a number written with a decimal comma (``23,5``, ``-1,250``)."""
    text, _ = _kinds(values)
    if not text.any():
        return pd.Series(False, index=values.index)
    return values[text].str.fullmatch(_DECIMAL_COMMA.pattern).astype(bool).reindex(values.index, fill_value=False)


def as_text(values: pd.Series) -> pd.Series:
    """Each cell as text (a whole number ``1.0`` -> ``"1"``); ``None`` where missing.

    Text cells are kept as they are: :func:`~cementleak_stats.cohort.io.read_table` has
    already stripped them.
    """
    text, real = _kinds(values)
    out = pd.Series(None, index=values.index, dtype=object)
    if text.any():
        out[text] = values[text]
    nums = values[real].astype(float)
    nums = nums[np.isfinite(nums)]
    whole = nums == np.floor(nums)  # 1.0 read from a spreadsheet is the code "1"
    out[nums.index[whole]] = nums[whole].map("{:.0f}".format)
    out[nums.index[~whole]] = nums[~whole].astype(str)
    other = ~text & ~real & values.notna()
    if other.any():
        out[other] = values[other].astype(str)
    return out


def canonical_levels(values: pd.Series, var: Variable) -> pd.Series:
    """Each cell mapped to its canonical level: a level, or an alias the study file lists.

    Unknown spellings (and missing cells) give ``None``.  Matching is exact: only the
    spellings in ``levels`` and ``aliases`` are accepted.
    """
    accepted = {lv: lv for lv in var.levels} | dict(var.aliases)
    return as_text(values).map(accepted).astype(object)


# --- check factories ----------------------------------------------------------------------
def _check(fn: Callable[[pd.Series], pd.Series], rule: str, fix: str, *, title: str | None = None) -> pa.Check:
    """A vectorised pandera check; ``name`` carries the rule text, ``description`` the fix.

    Missing cells are ignored (pandera's ``ignore_na``): they are the ``nullable`` rule's job.
    """
    return pa.Check(fn, name=rule, description=fix, title=title)


def _fmt(x: float) -> str:
    return f"{x:g}"


def _numeric_checks(*, lo: float | None = None, hi: float | None = None, integer: bool = False) -> list[pa.Check]:
    checks = [
        _check(lambda s: as_number(s).notna() | has_decimal_comma(s),
               "not a number", "write a number with a point as decimal separator (e.g. 23.5), or leave the cell empty if "
               "missing values are allowed"),
        _check(lambda s: ~has_decimal_comma(s),
               DECIMAL_COMMA_RULE, "write 23.5, not 23,5 (and no thousands separator)"),
    ]
    if lo is not None and hi is not None:
        checks.append(_check(lambda s: ~as_number(s).pipe(lambda x: x.lt(lo) | x.gt(hi)),
                             f"outside the plausible range [{_fmt(lo)}, {_fmt(hi)}]",
                             "check the value against the source record, or widen `range:` in the study file"))
    if integer:
        checks.append(_check(lambda s: as_number(s).pipe(lambda x: x.isna() | (x == np.floor(x))),
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
        checks = [_check(lambda s, v=var: canonical_levels(s, v).notna(), f"unknown level; allowed: {allowed}",
                         "use one of the allowed spellings (case matters), or list this spelling under `aliases:` "
                         "of the variable in the study file")]
    return pa.Column(None, checks=checks, nullable=var.missing_allowed, required=True, title=var.label,
                     description="set `missing_allowed: true` for this variable in the study file if missing values "
                                 "are expected")


def _id_column(*, unique: bool, known: Collection[str] | None = None, what: str = "patient id") -> pa.Column:
    checks = []
    if unique:
        checks.append(_check(lambda s: ~as_text(s).duplicated(keep="first"), f"duplicated {what}",
                             "each patient must appear in exactly one row; remove or correct the repeated row"))
    if known is not None:
        known = frozenset(known)
        checks.append(_check(lambda s: as_text(s).isin(known), "patient not in the cohort file",
                             "every row must belong to a patient of the cohort table; check the id"))
    return pa.Column(None, checks=checks, nullable=False, required=True, title=what,
                     description="every row needs an identifier")


def cohort_schema(spec: StudySpec) -> pa.DataFrameSchema:
    """The pandera schema of the cohort table, generated from the study file.

    Parameters
    ----------
    spec
        The parsed study file.

    Returns
    -------
    pandera.DataFrameSchema
        One column per entry of ``spec.columns`` (all required; extra columns allowed).

    Notes
    -----
    Rules per column: the id is present and unique; continuous variables are numbers
    (no decimal comma), inside ``range`` and whole numbers where ``integer: true``;
    categorical variables take a level or a listed alias; time is a number with
    0 < time <= ``outcome.followup``; event is 0 or 1; a cell may be empty only where
    ``missing_allowed: true``.
    """
    out = spec.outcome
    columns: dict[str, pa.Column] = {spec.study.id_column: _id_column(unique=True)}
    for var in spec.variables:
        columns[var.name] = _variable_column(var)
    time_checks = _numeric_checks()
    time_checks.append(_check(lambda s: ~as_number(s).le(0), "time must be greater than 0",
                              "a follow-up time of 0 or less is impossible; check the dates"))
    time_checks.append(_check(lambda s: ~as_number(s).gt(out.followup),
                              f"time beyond the follow-up of {_fmt(out.followup)} {out.time_unit}",
                              "censor at the end of follow-up, or change `outcome.followup` in the study file"))
    columns[out.time] = pa.Column(None, checks=time_checks, nullable=False, required=True, title=out.time_label,
                                  description="every patient needs a follow-up time")
    columns[out.event] = pa.Column(
        None, nullable=False, required=True, title=out.event_label, description="every patient needs an event status",
        checks=[_check(lambda s: as_number(s).isin([0.0, 1.0]), "event must be 0 (censored) or 1 (event)",
                       "code the event as 1 and no event (censored) as 0")])
    return pa.DataFrameSchema(columns, strict=False, name="cohort")


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
                                 checks=[_check(lambda s: canonical_levels(s, tp_var).notna(),
                                                "unknown timepoint; allowed: " + ", ".join(names),
                                                "use the timepoint names listed under repeated.timepoints")]),
    }
    for m in rep.measures:
        columns[m.name] = pa.Column(None, checks=_numeric_checks(lo=m.range[0], hi=m.range[1]), nullable=False,
                                    required=True, title=m.label, description="every row needs every measure")
    key = [rep.id, rep.timepoint]

    def _unique_pairs(df: pd.DataFrame) -> pd.Series:
        if not set(key) <= set(df.columns):  # the missing column is reported on its own
            return pd.Series(True, index=df.index)
        return ~df[key].apply(as_text).duplicated(keep="first")

    pair_check = _check(_unique_pairs, "duplicated (patient, timepoint) row",
                        "each patient has at most one row per timepoint; remove or correct the repeated row",
                        title=", ".join(key))
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
    hint = f"; the file has '{shown}' — did you mean that? Rename it" if close else ""
    return f"add a column named '{name}' (spelled exactly as in the study file){hint}"


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
    try:
        schema.validate(frame, lazy=True)
    except SchemaErrors as exc:
        cases = exc.failure_cases
    else:
        return []
    order = {c: i for i, c in enumerate(schema.columns)}
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
            value = _value(case.failure_case)
            if case.schema_context != "Column":  # a row-level rule: once per row, naming its key columns (title)
                column = chk.title
                value = " / ".join(str(v) for v in as_text(frame.loc[row, column.split(", ")]))
            p = Problem(file=file, row=row, column=column, value=value, rule=chk.name, fix=chk.description or "")
        else:  # pandera reported something we did not anticipate: keep its own words
            p = Problem(file=file, row=row, column=None if column is None else str(column), value=_value(case.failure_case),
                        rule=name)
        out.setdefault((p.row, p.column, p.rule), p)
    return sorted(out.values(), key=lambda p: (p.row or 0, order.get(p.column, len(order)), p.rule))


def unknown_columns(frame: pd.DataFrame, schema: pa.DataFrameSchema, *, file: str) -> list[Problem]:
    """Columns the study file does not name: a *warning* each (they are ignored, not an error).

    Done in plain pandas: pandera's ``strict=True`` would turn them into errors.
    """
    extra = [c for c in frame.columns if c not in schema.columns]
    return [Problem(file=file, column=str(c), rule="unknown column (ignored)",
                    fix="remove it, or describe it under `variables:` in the study file if it is needed")
            for c in extra]
