"""A raw table checked against its pandera schema: every failure as a :class:`~cementleak_stats.errors.Problem`.

The schemas are :mod:`cementleak_stats.cohort.schema`'s (one named check per rule, the fix in its
description); this module runs them (:func:`check_table`: a table that breaks no rule is done by
:meth:`~cementleak_stats.cohort.schema.TableRules.passes`, any other is validated lazily by
pandera, imported then), turns each pandera failure case
into a problem naming file, row, column, value, rule and fix, adds a hint when every cell of a
column breaks the same rule (a date column declared as a number, Yes/No text in a numeric
column, levels in another spelling), and lists the columns the study file does not name as
warnings (:func:`unknown_columns`).
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable, Sequence
from dataclasses import replace

import pandas as pd

from ..errors import Problem
from .cells import _dates, as_text, parsing
from .dates import looks_like_dates
from .schema import NOT_A_NUMBER_RULE, TableRules, _value

__all__ = ["check_table", "unknown_columns"]

_NULLABLE_RULE = "missing value not allowed"


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


def _with_column_hints(problems: list[Problem], frame: pd.DataFrame, schema: TableRules) -> list[Problem]:
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


def check_table(frame: pd.DataFrame, schema: TableRules, *, file: str) -> list[Problem]:
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
        if schema.passes(frame):  # the usual case, without pandera (cohort/schema.py says why)
            return []
        from pandera.errors import SchemaErrors

        try:
            schema.to_pandera().validate(frame, lazy=True)
        except SchemaErrors as exc:
            cases = exc.failure_cases
        else:
            return []
        problems = _problems(cases, frame, schema, file)
    order = {c: i for i, c in enumerate(schema.columns)}
    problems = _with_column_hints(problems, frame, schema)
    return sorted(problems, key=lambda p: (p.row or 0, order.get(p.column, len(order)), p.rule))


def _problems(cases: pd.DataFrame, frame: pd.DataFrame, schema: TableRules, file: str) -> list[Problem]:
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


def unknown_columns(frame: pd.DataFrame, schema: TableRules, *, file: str) -> list[Problem]:
    """Columns the study file does not name: a *warning* each (they are ignored, not an error).

    Done in plain pandas: pandera's ``strict=True`` would turn them into errors.
    """
    extra = [c for c in frame.columns if c not in schema.columns]
    return [Problem(file=file, column=str(c), rule="unknown column (ignored)",
                    fix="remove it, or describe it under `variables:` in the study file if it is needed")
            for c in extra]
