"""Read the study's data files (CSV, Excel, SPSS, Parquet) and validate them against the study file.

Reading keeps every cell as the user wrote it (CSV cells stay text; spreadsheet numbers stay
numbers), so that a bad cell is reported with its value, file, row and column.  Rows are
numbered as a spreadsheet shows them: the header is row 1, the first data row is row 2.
Files are opened read-only, read once into memory, hashed (SHA-256) and parsed from those
bytes, so the digest is the digest of exactly what was validated.  Nothing is written.

Validation rules live in :mod:`cementleak_stats.cohort.schema` (pandera); this module reads,
checks the file's structure (encoding, empty file, header only, ragged or empty rows,
duplicated column names), types the validated columns and applies the patient flow.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import math
import operator
import re
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import InputError, Problem
from ..spec import Exclusion, StudySpec
from .schema import (as_number, as_text, canonical_levels, check_table, cohort_schema, date_time, event_codes, parsed,
                     parsing, repeated_schema, unknown_columns)

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
    if len(set(names)) < len(names) or np.equal(frame.to_numpy(dtype=object), None).all(axis=1).any():
        return None
    frame.columns = names
    return frame


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


def _read(path: Path, name: str, labelled: Collection[str] | None) -> tuple[pd.DataFrame, str]:
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
    return _read(p, name or str(path), labelled)[0]


# --- typing -------------------------------------------------------------------------------
def _typed_cohort(raw: pd.DataFrame, spec: StudySpec) -> pd.DataFrame:
    """The validated raw table -> one typed column per ``spec.columns`` (read from its header).

    Called inside :func:`~cementleak_stats.cohort.schema.parsing`, so each column's parse from
    validation is reused.
    """
    def number(header: str) -> pd.Series:
        return parsed(as_number, raw[header])  # type: ignore[return-value]

    out: dict[str, object] = {spec.study.id_column: parsed(as_text, raw[spec.study.id_column]).astype("string")}  # type: ignore[attr-defined]
    for var in spec.variables:
        if var.kind == "continuous":
            out[var.name] = number(var.header)
        else:
            out[var.name] = pd.Categorical(canonical_levels(raw[var.header], var), categories=list(var.levels),
                                           ordered=var.kind == "ordinal")
    oc = spec.outcome
    out[oc.time] = date_time(raw, oc) if oc.time_header is None else number(oc.time_header)
    out[oc.event] = parsed(event_codes, raw[oc.event_header], oc).astype("int64")  # type: ignore[attr-defined]
    return pd.DataFrame(out).reset_index(drop=True)


def _typed_repeated(raw: pd.DataFrame, spec: StudySpec) -> pd.DataFrame:
    rep = spec.repeated
    assert rep is not None
    out: dict[str, object] = {
        rep.id: as_text(raw[rep.id]).astype("string"),
        rep.timepoint: pd.Categorical(as_text(raw[rep.timepoint]), categories=[t.name for t in rep.timepoints],
                                      ordered=True),
    }
    for m in rep.measures:
        out[m.name] = parsed(as_number, raw[m.header])
    return pd.DataFrame(out).reset_index(drop=True)


# --- patient flow -------------------------------------------------------------------------
_OPS: dict[str, Callable[[object, object], object]] = {
    "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge, "==": operator.eq, "!=": operator.ne,
}


def _study_name(spec: StudySpec) -> str:
    return spec.source.name if spec.source is not None else "study file"


def _exclusion_problems(spec: StudySpec) -> list[Problem]:
    """Rules of ``exclusions:`` that cannot be applied to their column (a study-file problem)."""
    out = []
    for i, ex in enumerate(spec.exclusions):
        where = f"exclusions.{i}"
        if ex.op == "missing":
            continue
        if ex.value is None:
            out.append(Problem(file=_study_name(spec), column=where, rule=f"exclusion '{ex.op}' needs a value",
                               fix="add `value:` to the rule"))
            continue
        var = next((v for v in spec.variables if v.name == ex.column), None)
        if var is None or var.kind == "continuous":
            if isinstance(ex.value, str):
                out.append(Problem(file=_study_name(spec), column=where, value=ex.value,
                                   rule=f"exclusion on numeric column '{ex.column}' needs a number", fix="write a number"))
            continue
        level = var.aliases.get(str(ex.value), str(ex.value))
        if level not in var.levels:
            out.append(Problem(file=_study_name(spec), column=where, value=str(ex.value),
                               rule=f"exclusion value is not a level of '{ex.column}'",
                               fix="use one of: " + ", ".join(var.levels)))
        elif ex.op not in ("==", "!=") and var.kind != "ordinal":
            out.append(Problem(file=_study_name(spec), column=where, value=ex.op,
                               rule=f"'{ex.op}' does not apply to the {var.kind} variable '{ex.column}'",
                               fix="use == or != (order comparisons apply to ordinal variables only)"))
    return out


def _excluded_by(cohort: pd.DataFrame, ex: Exclusion, spec: StudySpec) -> pd.Series:
    """Boolean mask of the rows the rule excludes (a missing value never satisfies a comparison)."""
    col = cohort[ex.column]
    if ex.op == "missing":
        return col.isna()
    if isinstance(col.dtype, pd.CategoricalDtype):
        var = spec.variable(ex.column)
        level = var.aliases.get(str(ex.value), str(ex.value))
        lhs, rhs = col.cat.codes, var.levels.index(level)  # ordinal comparisons by level position
    else:
        lhs, rhs = col.astype(float), float(ex.value)  # type: ignore[arg-type]
    return pd.Series(_OPS[ex.op](lhs, rhs), index=cohort.index).astype(bool) & col.notna()


def _complete_case_columns(spec: StudySpec) -> list[str]:
    wanted = {v.name for v in spec.candidates} | set(spec.analysis.predictors)
    return [v.name for v in spec.variables if v.name in wanted]


@dataclass(frozen=True, eq=False)
class PatientFlow:
    """Patients through the exclusion steps.

    Attributes
    ----------
    steps
        One row per step: ``step`` (0 = the cohort file), ``n`` (patients left after the
        step), ``excluded`` (patients removed by it), ``reason``.
    analysed
        The cohort rows left after the last step.
    excluded
        One row per excluded patient: ``id``, ``step``, ``reason``.
    """

    steps: pd.DataFrame
    analysed: pd.DataFrame
    excluded: pd.DataFrame


def patient_flow(cohort: pd.DataFrame, spec: StudySpec) -> PatientFlow:
    """Apply ``spec.exclusions`` in order, then (complete-case analysis) drop rows with a
    missing candidate predictor, counting every removed patient.

    Parameters
    ----------
    cohort
        The typed cohort (as in :attr:`StudyData.cohort`).
    spec
        The study file.

    Returns
    -------
    PatientFlow

    Notes
    -----
    A patient is counted at the first step that excludes them.  The complete-case step is
    present (possibly excluding 0) whenever ``analysis.missing_data == "complete_case"``;
    with multiple imputation rows with missing predictors stay in ``analysed``.
    """
    id_col = spec.study.id_column
    keep = pd.Series(True, index=cohort.index)
    steps = [{"step": 0, "n": len(cohort), "excluded": 0, "reason": "patients in the cohort file"}]
    excluded: list[dict[str, object]] = []

    def apply(reason: str, mask: pd.Series) -> None:
        hit = keep & mask
        keep[hit] = False
        steps.append({"step": len(steps), "n": int(keep.sum()), "excluded": int(hit.sum()), "reason": reason})
        excluded.extend({"id": pid, "step": len(steps) - 1, "reason": reason} for pid in cohort.loc[hit, id_col])

    for ex in spec.exclusions:
        apply(ex.reason, _excluded_by(cohort, ex, spec))
    if spec.analysis.missing_data == "complete_case":
        miss = cohort[_complete_case_columns(spec)].isna()
        counts = [f"{spec.label(c)} ({n})" for c, n in miss[keep].sum().items() if n]  # among patients still in
        reason = "missing value in a candidate predictor (complete-case analysis)"
        apply(reason + (": " + ", ".join(counts) if counts else ""), miss.any(axis=1))
    return PatientFlow(
        steps=pd.DataFrame(steps, columns=["step", "n", "excluded", "reason"]),
        analysed=cohort.loc[keep].reset_index(drop=True),
        excluded=pd.DataFrame(excluded, columns=["id", "step", "reason"]),
    )


# --- the whole study ----------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class StudyData:
    """The study's data, read, validated and typed; see :func:`load_study_data`.

    Attributes
    ----------
    spec
        The study file the data were validated against.
    cohort
        One row per patient, columns ``spec.columns``: id as string, continuous as float,
        categorical as ``Categorical`` (study-file levels in order, canonical spellings;
        ordered for ordinal variables), time float, event int.
    repeated
        Long repeated-measures table (id string, timepoint ordered ``Categorical``,
        measures float), or ``None`` when the study has none.
    flow, analysed, excluded
        See :class:`PatientFlow`.
    missing
        ``column``, ``label``, ``n_missing`` for every cohort column (all rows).
    sha256
        Data file name (as written in the study file) -> SHA-256 hex digest of its bytes.
    files
        Resolved paths of the data files.
    warnings
        Problems that do not stop the analysis (unknown extra columns).
    """

    spec: StudySpec
    cohort: pd.DataFrame
    repeated: pd.DataFrame | None
    flow: pd.DataFrame
    analysed: pd.DataFrame
    excluded: pd.DataFrame
    missing: pd.DataFrame
    sha256: dict[str, str]
    files: tuple[Path, ...]
    warnings: tuple[Problem, ...] = ()
    #: the validation cohort (``validation: cohort_file:``), read and checked by the same rules;
    #: its files and digests are also in ``files`` and ``sha256``
    validation: StudyData | None = None


def _column_label(spec: StudySpec, column: str) -> str:
    return "Identifier" if column == spec.study.id_column else spec.label(column)


def validation_spec(spec: StudySpec) -> StudySpec:
    """The study file with its validation cohort as the cohort file: same variables, levels, ranges,
    aliases and exclusions; no repeated measures."""
    if spec.validation is None or spec.validation.cohort_file is None:
        raise ValueError("the study file names no validation cohort file")
    return spec.model_copy(update={"cohort_file": spec.validation.cohort_file, "repeated": None, "validation": None})


def load_study_data(spec: StudySpec) -> StudyData:
    """Read and validate the cohort (and repeated-measures) files named by the study file.

    Parameters
    ----------
    spec
        The parsed study file.

    Returns
    -------
    StudyData

    Raises
    ------
    InputError
        Every problem of both files (and of the exclusion rules) at once; each names the
        file, the spreadsheet row, the column, the value and the rule, with a fix.

    Notes
    -----
    The repeated-measures table is checked against the ids of the cohort table even when
    the cohort table has other problems, so that one run reports everything.  Nothing is
    written; the files are opened read-only.
    """
    problems = _exclusion_problems(spec)
    warnings: list[Problem] = []
    digests: dict[str, str] = {}

    def load(path: Path, name: str, labelled: Collection[str]) -> pd.DataFrame | None:
        try:
            frame, digests[name] = _read(path, name, labelled)
        except InputError as exc:
            problems.extend(exc.problems)
            return None
        return frame

    id_col = spec.study.id_column
    labelled = [v.header for v in spec.variables if v.kind != "continuous"]
    cohort_raw = load(spec.cohort_path, spec.cohort_file, labelled)
    cohort = None
    if cohort_raw is not None:
        schema = cohort_schema(spec)
        with parsing(cohort_raw):  # each column parsed once, for the checks and for the typed cohort
            found = check_table(cohort_raw, schema, file=spec.cohort_file)
            if not found and not problems:
                cohort = _typed_cohort(cohort_raw, spec)
        problems.extend(found)
        warnings.extend(unknown_columns(cohort_raw, schema, file=spec.cohort_file))
    rep_raw = repeated = None
    if spec.repeated is not None:
        rep_path = spec.repeated_path
        assert rep_path is not None
        rep_raw = load(rep_path, spec.repeated.file, [spec.repeated.timepoint])
        if rep_raw is not None:
            ids = None
            if cohort_raw is not None and id_col in cohort_raw.columns:
                ids = set(as_text(cohort_raw[id_col]).dropna())
            schema = repeated_schema(spec, cohort_ids=ids)
            with parsing(rep_raw):
                found = check_table(rep_raw, schema, file=spec.repeated.file)
                repeated = None if found else _typed_repeated(rep_raw, spec)
            problems.extend(found)
            warnings.extend(unknown_columns(rep_raw, schema, file=spec.repeated.file))
    validation = None
    if spec.validation_path is not None:  # checked in the same run, so that one run reports everything
        try:
            validation = load_study_data(validation_spec(spec))
        except InputError as exc:
            problems.extend(exc.problems)
    if problems:
        problems = list(dict.fromkeys(problems))  # a study-file problem the validation cohort repeats is one problem
        files = ", ".join(dict.fromkeys(p.file for p in problems))
        raise InputError(problems, summary=f"Invalid input ({files})")
    assert cohort is not None
    flow = patient_flow(cohort, spec)
    missing = pd.DataFrame({
        "column": list(spec.columns),
        "label": [_column_label(spec, c) for c in spec.columns],
        "n_missing": [int(cohort[c].isna().sum()) for c in spec.columns],
    })
    files = (spec.cohort_path,) + (() if spec.repeated_path is None else (spec.repeated_path,))
    if validation is not None:
        files += validation.files
        digests.update(validation.sha256)
        warnings.extend(validation.warnings)
    return StudyData(
        spec=spec, cohort=cohort, repeated=repeated,
        flow=flow.steps, analysed=flow.analysed, excluded=flow.excluded, missing=missing,
        sha256=digests, files=files, warnings=tuple(warnings), validation=validation,
    )
