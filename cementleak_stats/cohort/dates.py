"""Dates in data files: text in any common form, spreadsheet date cells, SPSS and Parquet dates.

The follow-up time may be computed from two date columns (``outcome.start`` and ``outcome.end``).
A column is parsed as a whole, once: its form is decided from all its cells, so that
``03/04/2020`` is read as 3 April only when another cell of the same column (``25/04/2020``)
shows that the day comes first.  A column whose cells never say which comes first is *ambiguous*
and is refused with a request for ``date_format:``, never guessed.

Accepted without ``date_format``:

* ISO dates ``2020-04-03`` (also ``2020/04/03``, ``2020.04.03``), optionally with a time of day;
* day-first or month-first numeric dates ``03/04/2020``, ``3.4.2020``, ``03-04-2020`` with a
  four-digit year, when the column shows the order;
* dates with a month name: ``3 Apr 2020``, ``03-Apr-2020``, ``April 3, 2020``;
* date cells of Excel workbooks, SPSS date variables and Parquet timestamps (already dates).

We parse with pandas (:func:`pandas.to_datetime`) once the form is known; only the decision of
the form is ours, because pandas' own inference (``dayfirst=``, ``format="mixed"``) guesses per
cell or from the first cell and would silently read an ambiguous column one way.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

_TIME = r"(?:[ T](?P<H>\d{1,2}):(?P<M>\d{2})(?::(?P<S>\d{2}))?)?"
_ISO = re.compile(r"(?P<y>\d{4})(?P<sep>[-/.])(?P<m>\d{1,2})(?P=sep)(?P<d>\d{1,2})" + _TIME)
_NUMERIC = re.compile(r"(?P<a>\d{1,2})(?P<sep>[-/.])(?P<b>\d{1,2})(?P=sep)(?P<y>\d{4}|\d{2})" + _TIME)
#: forms with a month name (unambiguous), tried in order on the cells that are neither of the above
NAMED_FORMS = ("%d %b %Y", "%d-%b-%Y", "%d %B %Y", "%d-%B-%Y", "%b %d, %Y", "%B %d, %Y", "%b %d %Y", "%B %d %Y",
               "%d-%b-%y", "%d %b %y")

DMY, MDY = "%d/%m/%Y", "%m/%d/%Y"


@dataclass(frozen=True, eq=False)
class ParsedDates:
    """A column of dates, parsed once.

    Attributes
    ----------
    values
        ``datetime64[ns]``; ``NaT`` where the cell is missing or is not a date.
    undecided
        Cells that look like numeric dates but whose order (day or month first) the column does
        not decide; they are not errors of their own: :attr:`problem` covers them.
    problem
        ``(rule, fix)`` for the column as a whole (ambiguous or mixed order, two-digit years),
        else ``None``.
    problem_row
        The row of the example the problem quotes.
    """

    values: pd.Series
    undecided: pd.Series
    problem: tuple[str, str] | None = None
    problem_row: int | None = None


def _ask_format(example: str, sep: str, year: str = "%Y") -> str:
    day, month = f"%d{sep}%m{sep}{year}", f"%m{sep}%d{sep}{year}"
    return (f'add `date_format: "{day}"` (day first) or `date_format: "{month}"` (month first) under `outcome:` '
            f"in the study file; {example} is then read that way")


def _numeric_order(cells: pd.DataFrame) -> tuple[str | None, tuple[str, str] | None, object]:
    """Decide day-first ('dmy') or month-first ('mdy') from every numeric date of a column."""
    a, b = cells["a"].astype(int), cells["b"].astype(int)
    first_is_day, first_is_month = bool((a > 12).any()), bool((b > 12).any())
    sep = str(cells["sep"].iloc[0])
    if first_is_day and first_is_month:
        da, mb = cells.index[a > 12][0], cells.index[b > 12][0]
        return None, (f"dates in both orders: row {da} has the day first, row {mb} the month first",
                      "write every date of the column in one order (ISO 2020-04-03 is best), or give "
                      '`date_format:` under `outcome:` and correct the rows that break it'), max(da, mb)
    if first_is_day:
        return "dmy", None, None
    if first_is_month:
        return "mdy", None, None
    if (a == b).all():  # 01/01/2020, 05/05/2020: the same date either way
        return "dmy", None, None
    r = cells.index[a != b][0]
    example = f"{int(a[r]):02d}{sep}{int(b[r]):02d}{sep}{cells.at[r, 'y']}"
    return None, (f"ambiguous dates: no day above 12 in this column, so {example} (row {r}) can be "
                  f"{int(a[r])} {_month(int(b[r]))} or {int(b[r])} {_month(int(a[r]))}",
                  _ask_format(example, sep)), r


def _month(m: int) -> str:
    return dt.date(2000, m, 1).strftime("%B") if 1 <= m <= 12 else str(m)


def _assemble(parts: pd.DataFrame, year: str, month: str, day: str) -> pd.Series:
    """Dates from string components; an impossible date (31/02) gives NaT."""
    def num(col: str) -> pd.Series:
        return pd.to_numeric(parts[col], errors="coerce").fillna(0).astype(int)

    frame = pd.DataFrame({"year": num(year), "month": num(month), "day": num(day),
                          "hour": num("H"), "minute": num("M"), "second": num("S")}, index=parts.index)
    return pd.to_datetime(frame, errors="coerce")


def parse_dates(values: pd.Series, date_format: str | None = None) -> ParsedDates:
    """Parse one column of raw cells (text, spreadsheet dates, numbers, ``None``) as dates.

    Parameters
    ----------
    values
        Raw cells as :func:`~cementleak_stats.cohort.io.read_table` gives them.
    date_format
        A :meth:`datetime.datetime.strptime` pattern for the text cells (``outcome.date_format``);
        ``None``: decide the form from the column (module docstring).

    Returns
    -------
    ParsedDates

    Notes
    -----
    Numbers are never dates (an Excel date shown as a number lost its date format; a day count
    is not a date), nor are booleans.
    """
    out = pd.Series(pd.NaT, index=values.index, dtype="datetime64[ns]")
    undecided = pd.Series(False, index=values.index)
    if values.empty:
        return ParsedDates(out, undecided)
    kinds = values.map(type)
    is_date = kinds.map(lambda t: issubclass(t, (dt.date, np.datetime64)))  # datetime, date, Timestamp
    if is_date.any():
        out[is_date] = pd.to_datetime(values[is_date].map(pd.Timestamp), errors="coerce").dt.tz_localize(None)
    is_text = kinds.map(lambda t: issubclass(t, str))
    text = values[is_text].astype(str)
    if text.empty:
        return ParsedDates(out, undecided)
    if date_format is not None:
        out[is_text] = pd.to_datetime(text, format=date_format, errors="coerce")
        return ParsedDates(out, undecided)
    problem, row = None, None
    iso = text.str.extract(f"^{_ISO.pattern}$").dropna(subset=["y"])
    if len(iso):
        out[iso.index] = _assemble(iso, "y", "m", "d")
    rest = text.drop(iso.index)
    num = rest.str.extract(f"^{_NUMERIC.pattern}$").dropna(subset=["a"])
    if len(num):
        short = num["y"].str.len() == 2
        if short.any():
            r = num.index[short][0]
            problem = (f"two-digit years ({text[r]}, row {r}): the century is not certain",
                       'write four-digit years, or give `date_format:` with %y under `outcome:` (e.g. "%d/%m/%y")')
            undecided[num.index], row = True, r
        else:
            order, problem, row = _numeric_order(num)
            if order is None:
                undecided[num.index] = True
            else:
                out[num.index] = _assemble(num, "y", "b" if order == "dmy" else "a", "a" if order == "dmy" else "b")
    rest = rest.drop(num.index)
    for form in NAMED_FORMS:
        if rest.empty:
            break
        got = pd.to_datetime(rest, format=form, errors="coerce").dropna()
        out[got.index] = got
        rest = rest.drop(got.index)
    return ParsedDates(out, undecided, problem, None if row is None else int(row))  # type: ignore[call-overload]


def looks_like_dates(values: pd.Series) -> bool:
    """True when most non-missing cells of a column are dates (a hint for "not a number" errors)."""
    present = values.dropna()
    if present.empty:
        return False
    parsed = parse_dates(present)
    return bool((parsed.values.notna() | parsed.undecided).mean() >= 0.8)
