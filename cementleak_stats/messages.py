"""How problems are printed: a table on a terminal, one unbroken line per problem in a log, JSON.

On a terminal the problems are a rich table, grouped per file, column and rule (the rare groups
first).  Anywhere else — a pipe, a file, CI — a table would wrap at 80 columns and split file
names, column names and values across lines, so that a log could not be searched for the column
that failed; there each group (or, with ``show_all``, each problem) is one line holding file,
row(s), column, value(s), rule and fix, never wrapped.  ``--format json`` prints every problem
and the groups as one JSON document on standard output.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .atomic import write_atomic
from .errors import InputError, Problem, ProblemGroup, group_problems, problem_line, problems_csv

Format = Literal["text", "json"]

NOTHING_WRITTEN = "Nothing was written; the input files are unchanged."


def _line(console: Console, text: str, style: str | None = None) -> None:
    """One line, never wrapped or cropped (``soft_wrap``), never read as markup."""
    console.print(text, soft_wrap=True, markup=False, highlight=False, style=style)


def _table(title: str, rows: Sequence[Problem | ProblemGroup]) -> Table:
    table = Table(title=title, show_lines=False, expand=False)
    for col in ("file", "row", "column", "value", "rule", "fix"):
        table.add_column(col, overflow="fold")
    for r in rows:
        if isinstance(r, ProblemGroup):
            cells = (r.file, r.where(), r.column or "", r.values(), r.rule, r.fix)
        else:
            cells = (r.file, "" if r.row is None else str(r.row), r.column or "", "" if r.value is None else str(r.value),
                     r.rule, r.fix)
        table.add_row(*(escape(c) for c in cells))  # cells are data, never rich markup
    return table


def print_problems(problems: Sequence[Problem], *, console: Console, title: str, show_all: bool = False,
                   level: str = "error") -> None:
    """Print problems grouped (default) or every one (``show_all``): a table on a terminal, lines elsewhere.

    Lines start with ``level`` (``error:`` / ``warning:``) so a log can be searched for them.
    """
    groups = group_problems(problems)
    rows: Sequence[Problem | ProblemGroup] = (list(problems) if show_all else groups)
    many = len(groups) < len(problems)
    head = f"{title}: {len(problems)} problem(s)" + (f" in {len(groups)} groups (rare first)" if many and not show_all else "")
    if console.is_terminal:
        console.print(_table(head, rows))
    else:
        _line(console, head)
        for r in rows:
            _line(console, f"{level}: {problem_line(r)}")
    if many and not show_all:
        _line(console, "Every problem: `cementleak validate --all`, or `--problems problems.csv` to write them as CSV.")


def print_input_error(exc: InputError, *, console: Console, show_all: bool = False) -> None:
    """Print an :class:`InputError` (see :func:`print_problems`) and say that nothing was written."""
    print_problems(exc.problems, console=console, title=exc.summary, show_all=show_all)
    if console.is_terminal:
        console.print(f"[bold red]{NOTHING_WRITTEN}[/] Fix the problems above and run again.")
    else:
        _line(console, f"{NOTHING_WRITTEN} Fix the problems above and run again.")


def problems_document(status: str, problems: Sequence[Problem], *, summary: str = "",
                      warnings: Sequence[Problem] = (), **extra: object) -> str:
    """The JSON document of ``--format json``: status, every problem, the groups, the warnings."""
    doc = {"status": status, "summary": summary, "n_problems": len(problems),
           "problems": [p.as_dict() for p in problems],
           "groups": [g.as_dict() for g in group_problems(problems)],
           "warnings": [w.as_dict() for w in warnings], **extra}
    return json.dumps(doc, indent=1, ensure_ascii=False, default=str)


def write_problems_csv(path: Path, problems: Sequence[Problem], *, inputs: Sequence[Path] = ()) -> None:
    """Write every problem to ``path`` as CSV (file,row,column,value,rule,fix), atomically.

    Raises
    ------
    InputError
        when ``path`` is one of the study's input files (they are never written) or a folder.
    """
    target = path.resolve()
    if any(target == Path(p).resolve() for p in inputs):
        raise InputError([Problem(file=str(path), rule="--problems names one of the study's input files",
                                  fix="write the problems to a new file, e.g. --problems problems.csv")],
                         summary="Cannot write the problems")
    if target.is_dir():
        raise InputError([Problem(file=str(path), rule="--problems names a folder",
                                  fix="give a file name, e.g. --problems problems.csv")], summary="Cannot write the problems")
    write_atomic(target, problems_csv(problems))
