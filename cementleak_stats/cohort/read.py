"""Read a data file (CSV, Excel, SPSS, Parquet) into raw cells, checking its structure.

Reading keeps every cell as the user wrote it (CSV cells stay text; spreadsheet numbers stay
numbers), so that a bad cell is reported with its value, file, row and column.  Rows are
numbered as a spreadsheet shows them: the header is row 1, the first data row is row 2.
Files are opened read-only, read once into memory, hashed (SHA-256) and parsed from those
bytes, so the digest is the digest of exactly what was validated.  Nothing is written.

The file's structure is checked here (encoding, empty file, header only, ragged or empty rows,
duplicated column names): a table with those problems has no reliable columns to validate.
The rules on the cells are :mod:`cementleak_stats.cohort.schema`'s; typing the validated columns
and the patient flow are :mod:`cementleak_stats.cohort.io`'s.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import math
import re
from collections.abc import Callable, Collection, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import InputError, Problem
from .schema import as_text

__all__ = ["SUPPORTED_SUFFIXES", "MISSING_TOKENS", "SPACE_CHARACTERS", "read_table", "read_with_digest"]

#: File types :func:`read_table` understands, by extension.
SUPPORTED_SUFFIXES = (".csv", ".xlsx", ".sav", ".parquet")

#: Cell texts read as a missing value (after stripping spaces).  ``"."`` is the SAS/Stata
#: missing value; ``NA`` the R one.
MISSING_TOKENS = frozenset({"", "NA", "N/A", "NaN", "nan", "null", "NULL", "."})

_SAVE_UTF8 = "save the file as UTF-8 (Excel: Save As > 'CSV UTF-8 (comma delimited)'; or `iconv -f GBK -t UTF-8`)"


def _fail(name: str, rule: str, fix: str = "", *, row: int | None = None) -> InputError:
    return InputError([Problem(file=name, row=row, rule=rule, fix=fix)], summary=f"Cannot read {name}")


# --- bytes --------------------------------------------------------------------------------
def _read_bytes(path: Path, name: str) -> bytes:
    if not path.exists():
        raise _fail(name, "file not found", "check the path in the study file (relative paths are resolved "
                    "against the folder of the study file)")
    if not path.is_file():
        raise _fail(name, "not a file", "point the study file at a data file, not a folder")
    if path.suffix.lower() not in SUPPORTED_SUFFIXES:
        raise _fail(name, f"unsupported file type '{path.suffix}'",
                    "save the table as " + ", ".join(SUPPORTED_SUFFIXES))
    try:
        with path.open("rb") as fh:  # read-only; the input is never modified
            return fh.read()
    except OSError as exc:
        raise _fail(name, f"cannot read the file ({exc.strerror})", "check that the file is readable") from None


def _decode(raw: bytes, name: str) -> str:
    """Text of a CSV file: UTF-8 with or without a byte-order mark; anything else is an error."""
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise _fail(name, "file is UTF-16 text, not UTF-8", _SAVE_UTF8, row=1)
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        # utf-8-sig counts from after the byte-order mark: report offsets in the file's bytes
        start = exc.start + (len(codecs.BOM_UTF8) if raw.startswith(codecs.BOM_UTF8) else 0)
        row = raw.count(b"\n", 0, start) + 1
        try:
            raw.decode("gbk")
            guess = "; it looks like GBK/GB2312 (Chinese Windows) text"
        except UnicodeDecodeError:
            guess = ""
        raise _fail(name, f"file is not UTF-8 text: invalid byte 0x{raw[start]:02x} at byte offset {start} "
                    f"(row {row}){guess}", _SAVE_UTF8, row=row) from None


# --- cells and rows -> raw frame -----------------------------------------------------------
def _cell(value: object) -> object:
    """A raw cell with missing values normalised to ``None`` and text stripped."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, str):
        value = value.strip()
        return None if value in MISSING_TOKENS else value
    return value


def _normalise(frame: pd.DataFrame, *, stripped: bool = False) -> pd.DataFrame:
    """Column by column (vectorised) what :func:`_cell` does to one cell.

    ``stripped``: the caller knows no text cell has surrounding white space (only the missing
    tokens are then looked for).
    """
    out = {}
    for j in range(frame.shape[1]):
        col = frame.iloc[:, j].astype(object)
        if pd.api.types.infer_dtype(col, skipna=False) == "string":  # every CSV column: text only, no NaN
            if stripped:
                out[j] = col.where(~col.isin(MISSING_TOKENS), None)
            else:  # a comprehension over the cells: ~15x faster than .str.strip() + .isin + .where
                out[j] = pd.Series([None if (v := c.strip()) in MISSING_TOKENS else v for c in col.to_numpy()],
                                   index=frame.index, dtype=object)
            continue
        col = col.where(col.notna(), None)  # NaN, NA, NaT -> None
        kinds = col.map(type)
        text = kinds.isin([t for t in kinds.unique() if issubclass(t, str)])
        if text.any():
            cells = col[text].str.strip()
            col[text] = cells.where(~cells.isin(MISSING_TOKENS), None)
        out[j] = col
    result = pd.DataFrame(out, index=frame.index, dtype=object)
    result.columns = frame.columns
    return result


def _blank(cells: Sequence[object]) -> bool:
    return all(_cell(v) is None for v in cells)


def _frame_from_rows(rows: list[list[object]], name: str, *, strict_width: bool) -> pd.DataFrame:
    """Header + data rows -> raw frame indexed by spreadsheet row; structural problems raise.

    Trailing empty rows (and, in spreadsheets, empty unnamed trailing columns) are formatting,
    not data, and are ignored; an empty row *between* data rows is reported.
    """
    while rows and _blank(rows[-1]):
        rows.pop()
    if not rows:
        raise _fail(name, "file is empty", "export the table with a header row and one row per patient")
    if not strict_width:  # spreadsheets: pad short rows, drop unnamed empty trailing columns
        width = max(len(r) for r in rows)
        rows = [r + [None] * (width - len(r)) for r in rows]
        while width > 1 and all(_cell(r[width - 1]) is None for r in rows):
            width -= 1
        rows = [r[:width] for r in rows]
    header = as_text(pd.Series([_cell(h) for h in rows[0]], dtype=object))
    names = [h or f"(unnamed column {j + 1})" for j, h in enumerate(header)]
    problems = [Problem(file=name, row=1, column=c, rule="column name appears more than once",
                        fix="give every column a distinct name")
                for c in sorted({c for c in names if names.count(c) > 1})]
    body, index = [], []
    for r, cells in enumerate(rows[1:], start=2):
        if len(cells) == len(names):
            body.append(cells)
            index.append(r)
        elif _blank(cells):
            problems.append(Problem(file=name, row=r, rule="empty row", fix="delete the empty row"))
        else:
            problems.append(Problem(file=name, row=r, rule=f"row has {len(cells)} cells but the header has {len(names)}",
                                    fix="check for an unquoted delimiter (comma) inside a value, or a missing cell"))
    frame = _normalise(pd.DataFrame(body, columns=range(len(names)), index=pd.Index(index, name="row"), dtype=object))
    # every cell None (what _normalise leaves of an empty or missing cell): one comparison per cell
    empty = np.equal(frame.to_numpy(dtype=object), None).all(axis=1) if frame.shape[1] else np.ones(len(frame), bool)
    problems += [Problem(file=name, row=int(r), rule="empty row", fix="delete the empty row")
                 for r in frame.index[empty]]
    if problems:
        raise InputError(sorted(problems, key=lambda p: p.row or 0), summary=f"Cannot read {name}")
    if frame.empty:
        raise _fail(name, "file has a header row but no data rows", "add one row per patient below the header")
    frame.columns = names
    return frame


def _frame_from_typed(frame: pd.DataFrame, name: str) -> pd.DataFrame:
    """A frame read from a typed format (SPSS, Parquet) in the raw-frame convention."""
    if frame.shape[1] == 0:
        raise _fail(name, "file is empty", "export the table with one column per variable")
    if frame.shape[0] == 0:
        raise _fail(name, "file has column names but no data rows", "add one row per patient")
    out = _normalise(frame)
    out.columns = [str(c) for c in out.columns]
    out.index = pd.RangeIndex(2, len(out) + 2, name="row")
    return out


# --- readers ------------------------------------------------------------------------------
def _read_csv(raw: bytes, name: str, labelled: Collection[str] | None) -> pd.DataFrame:
    text = _decode(raw, name)
    if not text.strip():
        raise _fail(name, "file is empty", "export the table with a header row and one row per patient")
    first = text.split("\n", 1)[0]
    delimiter = max([",", ";", "\t"], key=first.count)  # ties -> comma; ';' is Excel's choice in comma-decimal locales
    fast = _read_plain_csv(text, delimiter)
    if fast is not None:
        return fast
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    rows: list[list[object]] = []
    try:
        rows.extend(reader)
    except csv.Error as exc:  # row = the record being read (e.g. where an unclosed quote opened)
        raise _fail(name, f"not a well-formed CSV file ({exc})", "check the quotes in this row",
                    row=len(rows) + 1) from None
    return _frame_from_rows(rows, name, strict_width=True)


#: What ``str.strip()`` removes (``str.isspace``), less the line ends: tests/test_io_speed.py
#: checks it against Python's own definition.
SPACE_CHARACTERS = ("\t\x0b\x0c\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006"
                    "\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000")


def _edge_space(text: str, delimiter: str) -> bool:
    """Whether some cell of a quote-free CSV text begins or ends with white space.

    A substring search per space character first (most exports have none), then one regular
    expression for a space next to a delimiter or a line end: C speed, no pass over the cells.
    """
    present = "".join(c for c in SPACE_CHARACTERS if c != delimiter and c in text)
    if not present:
        return False
    space, d = f"[{re.escape(present)}]", re.escape(delimiter)
    return re.search(rf"[{d}\n]{space}|{space}[{d}\r\n]", text) is not None or text[-1] in present


def _read_plain_csv(text: str, delimiter: str) -> pd.DataFrame | None:
    """A well-formed CSV without quotes, through pandas' C parser; ``None`` for anything else.

    The common case (an exported table: no quote characters, every row as wide as the header,
    no empty rows) is split in C, about ten times faster than :mod:`csv` plus a frame of row
    lists.  Whatever could make :mod:`csv` (``strict=True``) and the C parser disagree, or is
    a structural problem - a quote, a NUL byte, a carriage return outside CRLF, a field longer
    than :mod:`csv`'s limit, a short, long or empty row, a duplicated or header-only table -
    returns ``None``, and the row-by-row reader reads the file and words the problem
    (tests/test_io.py checks both readers give the same frame).
    """
    if '"' in text or "\x00" in text or text.count("\r") != text.count("\r\n") or len(text) > 2**30:
        return None
    if len(text) > csv.field_size_limit() and max(map(len, text.split("\n"))) > csv.field_size_limit():
        return None
    try:
        cells = pd.read_csv(io.StringIO(text), sep=delimiter, header=None, dtype=str, na_filter=False,
                            skip_blank_lines=False, quoting=csv.QUOTE_NONE, engine="c")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError):
        return None
    # without quotes every delimiter separates two cells: a row short of cells (which the parser
    # pads with "") or an empty line leaves the count short; a long row raised above
    if len(cells) < 2 or text.count(delimiter) != len(cells) * (cells.shape[1] - 1) or cells.iloc[:, -1].isna().any():
        return None
    header = as_text(pd.Series([_cell(h) for h in cells.iloc[0]], dtype=object))
    names = [h or f"(unnamed column {j + 1})" for j, h in enumerate(header)]
    body = cells.iloc[1:]
    body.index = pd.RangeIndex(2, len(cells) + 1, name="row")
    frame = _normalise(body, stripped=not _edge_space(text, delimiter))
    if len(set(names)) < len(names) or _has_empty_row(frame):
        return None
    frame.columns = names
    return frame


def _has_empty_row(frame: pd.DataFrame) -> bool:
    """Whether some row is missing (``None``) in every column: column by column, stopping at the
    first column that leaves no candidate (not one (n, k) object array: ~1 s at n = 1,000,000)."""
    empty = np.ones(len(frame), dtype=bool)
    for j in range(frame.shape[1]):
        empty &= np.equal(frame.iloc[:, j].to_numpy(dtype=object), None)
        if not empty.any():
            return False
    return bool(empty.any())


def _read_xlsx(raw: bytes, name: str, labelled: Collection[str] | None) -> pd.DataFrame:
    import openpyxl

    try:
        wb = openpyxl.load_workbook(io.BytesIO(raw), read_only=True, data_only=True)
        try:
            rows: list[list[object]] = [list(r) for r in wb.worksheets[0].iter_rows(values_only=True)]
        finally:
            wb.close()
    except Exception as exc:  # noqa: BLE001 - openpyxl raises many types for a corrupt file; all mean "unreadable"
        raise _fail(name, f"not a readable Excel workbook ({type(exc).__name__}: {exc})",
                    "save it from Excel as .xlsx (Excel 2007+), not .xls or a renamed CSV") from None
    return _frame_from_rows(rows, name, strict_width=False)


def _read_sav(raw: bytes, name: str, labelled: Collection[str] | None) -> pd.DataFrame:
    import pyreadstat

    try:
        frame, meta = pyreadstat.read_sav(io.BytesIO(raw))
    except Exception as exc:  # noqa: BLE001 - ReadstatError and friends: the file is not a readable .sav
        raise _fail(name, f"not a readable SPSS .sav file ({exc})", "save it from SPSS as .sav") from None
    for col, labels in meta.variable_value_labels.items():
        if labelled is None or col in labelled:  # value labels -> level strings; unlabelled codes kept as-is
            frame[col] = frame[col].astype(object).map(lambda v, lab=labels: lab.get(v, v))
    return _frame_from_typed(frame, name)


def _read_parquet(raw: bytes, name: str, labelled: Collection[str] | None) -> pd.DataFrame:
    try:
        frame = pd.read_parquet(io.BytesIO(raw), engine="pyarrow")
    except Exception as exc:  # noqa: BLE001 - pyarrow raises ArrowInvalid/OSError for a corrupt file
        raise _fail(name, f"not a readable Parquet file ({exc})", "write it again with pandas/pyarrow") from None
    return _frame_from_typed(frame, name)


_READERS: dict[str, Callable[[bytes, str, Collection[str] | None], pd.DataFrame]] = {
    ".csv": _read_csv, ".xlsx": _read_xlsx, ".sav": _read_sav, ".parquet": _read_parquet,
}


def read_with_digest(path: Path, name: str, labelled: Collection[str] | None) -> tuple[pd.DataFrame, str]:
    """:func:`read_table` and the SHA-256 of the bytes it read."""
    raw = _read_bytes(path, name)
    digest = hashlib.sha256(raw).hexdigest()
    if not raw:
        raise _fail(name, "file is empty (0 bytes)", "export the table with a header row and one row per patient")
    return _READERS[path.suffix.lower()](raw, name, labelled), digest


def read_table(path: str | Path, *, labelled: Collection[str] | None = None, name: str | None = None) -> pd.DataFrame:
    """Read a data table as raw cells, choosing the reader by the file extension.

    Parameters
    ----------
    path
        A ``.csv`` (UTF-8, with or without BOM; comma, semicolon or tab delimited),
        ``.xlsx`` (first worksheet), ``.sav`` (SPSS) or ``.parquet`` file.
    labelled
        SPSS only: columns whose value labels replace the codes (``None``: every labelled
        column).  Other formats ignore it.
    name
        How to name the file in problems (default: ``str(path)``).

    Returns
    -------
    pandas.DataFrame
        Object columns named by the header; cells are stripped text, numbers, dates or
        ``None`` (empty or one of :data:`MISSING_TOKENS`); index ``row`` = the spreadsheet
        row (header = 1, first data row = 2).

    Raises
    ------
    InputError
        File missing or unreadable, unsupported extension, not UTF-8, empty, header only,
        empty or ragged rows, duplicated column names.

    Notes
    -----
    The file is opened read-only and read once; nothing is written.
    """
    p = Path(path)
    return read_with_digest(p, name or str(path), labelled)[0]
