"""Each cell of a raw column as a number, as text, as a level, an event code or a date - each column parsed once.

The parsers serve the checks of :mod:`cementleak_stats.cohort.schema` and the typing of
:mod:`cementleak_stats.cohort.io` (and scoring): within :func:`parsing`, :func:`parsed` computes
a parser's result for a whole column once per table and hands each caller its rows of it, so a
column of 100,000 cells is parsed once, not once per rule.
"""

from __future__ import annotations

import numbers
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import numpy as np
import pandas as pd

from ..spec import Outcome, Variable
from .dates import ParsedDates, parse_dates

__all__ = ["as_number", "has_decimal_comma", "as_text", "canonical_levels", "event_codes", "parsing", "parsed",
           "date_time"]

# A number written with a decimal comma (``23,5``) or a thousands separator (``1,250``).
_DECIMAL_COMMA = re.compile(r"\s*[+-]?\d+,\d+\s*")

# --- cell parsers (shared by the checks and by the typing step in io.py) ------------------
# Vectorised: a cohort of 100,000 rows is validated in seconds (an element-wise Python parser
# took half a minute).
def _cell_kinds(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    # fast paths: a column of one type (every CSV column is text) is recognised in C
    inferred = pd.api.types.infer_dtype(values, skipna=True)
    if inferred == "string":
        return ~_missing(values), pd.Series(False, index=values.index)
    if inferred in ("floating", "integer", "mixed-integer-float") and values.dtype != bool:
        return pd.Series(False, index=values.index), ~_missing(values)
    kinds = values.map(type)
    types = kinds.unique()
    real = [t for t in types if issubclass(t, numbers.Real) and not issubclass(t, (bool, np.bool_))]
    return kinds.isin([t for t in types if issubclass(t, str)]), kinds.isin(real)


def _kinds(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Masks of the text cells and of the real-number cells (booleans are not numbers); once per column."""
    text, real = parsed(_cell_kinds, values)  # type: ignore[misc]
    return _at(text, values), _at(real, values)


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
        out[text] = _text_to_float(values[text])
    return out.where(np.isfinite(out))


def _text_to_float(text: pd.Series) -> np.ndarray:
    """Text cells as floats: Arrow's cast when every cell is a number, else :func:`pandas.to_numeric`.

    Arrow's parser is correctly rounded (as Python's ``float`` and R's ``as.numeric``; pandas'
    is not beyond about 15 significant digits or with large exponents) and about six times
    faster; it rejects the whole column at its first non-number (or a cell with surrounding
    spaces), and then ``to_numeric(errors="coerce")`` gives NaN for the cells that are not
    numbers (ignoring surrounding spaces), which the checks report.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    try:
        return pc.cast(pa.array(text.to_numpy(dtype=object), type=pa.string()), pa.float64()).to_numpy(
            zero_copy_only=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return pd.to_numeric(text, errors="coerce").to_numpy(dtype=float)


def has_decimal_comma(values: pd.Series) -> pd.Series:
    """True for text cells holding a number written with a decimal comma (``23,5``, ``-1,250``)."""
    text, _ = _kinds(values)
    text &= parsed(as_number, values).isna()  # type: ignore[union-attr]  # only cells that are not numbers
    if not text.any():
        return pd.Series(False, index=values.index)
    return values[text].str.fullmatch(_DECIMAL_COMMA.pattern).astype(bool).reindex(values.index, fill_value=False)


def as_text(values: pd.Series) -> pd.Series:
    """Each cell as text (a whole number ``1.0`` -> ``"1"``); ``None`` where missing.

    Text cells are kept as they are: :func:`~cementleak_stats.cohort.read.read_table` has
    already stripped them.
    """
    text, real = _kinds(values)
    if not real.any() and (text | _missing(values)).all():  # a text column: as it is
        return values.astype(object)
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
    return _text(values).map(accepted).astype(object)


def event_codes(values: pd.Series, outcome: Outcome) -> pd.Series:
    """Each cell as the event code 0/1 (``outcome.event_codes``: 0/1, true/false, ``event_aliases``);
    NaN where missing or not an accepted spelling."""
    return _text(values).map(outcome.event_codes).astype(float)


# --- parse each column once ---------------------------------------------------------------
class _Memo:
    def __init__(self, frame: pd.DataFrame) -> None:
        self.frame = frame
        self.results: dict[tuple[object, ...], object] = {}


_MEMO: ContextVar[_Memo | None] = ContextVar("cementleak_parse_memo", default=None)


@contextmanager
def parsing(frame: pd.DataFrame) -> Iterator[None]:
    """Within this block, :func:`parsed` parses each column of ``frame`` once (reused if already open)."""
    current = _MEMO.get()
    if current is not None and current.frame is frame:
        yield
        return
    token = _MEMO.set(_Memo(frame))
    try:
        yield
    finally:
        _MEMO.reset(token)


def parsed(fn: Callable[..., object], values: pd.Series, *args: object) -> object:
    """``fn(column, *args)`` for the whole column ``values`` belongs to, computed once per table.

    ``values`` may be a subset of the column (pandera drops missing cells); callers index the
    result by ``values.index``.  Outside :func:`parsing`, or for a series that is not a column
    of the table, ``fn(values, *args)``.
    """
    memo = _MEMO.get()
    name = values.name
    if memo is None or name is None or name not in memo.frame.columns:
        return fn(values, *args)
    key = (fn, name, *(a if isinstance(a, (str, int, float, type(None))) else id(a) for a in args))
    if key not in memo.results:
        memo.results[key] = fn(memo.frame[name], *args)
    return memo.results[key]


def _at(result: pd.Series, values: pd.Series) -> pd.Series:
    return result if result.index.equals(values.index) else result.reindex(values.index)


def _number(s: pd.Series) -> pd.Series:
    return _at(parsed(as_number, s), s)  # type: ignore[arg-type]


def _decimal_comma(s: pd.Series) -> pd.Series:
    return _at(parsed(has_decimal_comma, s), s)  # type: ignore[arg-type]


def _text(s: pd.Series) -> pd.Series:
    return _at(parsed(as_text, s), s)  # type: ignore[arg-type]


def _dates(s: pd.Series, date_format: str | None) -> ParsedDates:
    return parsed(parse_dates, s, date_format)  # type: ignore[return-value]


def date_time(frame: pd.DataFrame, outcome: Outcome) -> pd.Series:
    """Follow-up time from the date columns: (end - start) in days / days per ``time_unit``.

    NaN where a date is missing or not a date.  Uses the parse memo (:func:`parsing`).
    """
    assert outcome.start is not None and outcome.end is not None
    start = _dates(frame[outcome.start], outcome.date_format).values
    end = _dates(frame[outcome.end], outcome.date_format).values
    days = (end - start) / pd.Timedelta(days=1)
    return (days / outcome.days_per_unit).astype(float)


def _isna(values: pd.Series) -> pd.Series:
    return values.isna()


def _missing(s: pd.Series) -> pd.Series:
    return _at(parsed(_isna, s), s)  # type: ignore[arg-type]
