"""Input errors: every problem with a study file or a data file, collected and reported together.

A :class:`Problem` names the file, the row (1-based, as a spreadsheet shows it, header = row 1),
the column, the offending value and the rule that was broken, plus how to fix it.  An
:class:`InputError` carries all problems found in one pass; the CLI prints them and exits with
:data:`EXIT_INPUT_ERROR`.

Problems are *shown* grouped (:func:`group_problems`): one line per file, column and rule, with
the count and the rows, the rare groups first — a single implausible value is never buried
under 500 cells of a wrongly typed column.  Every individual problem is kept
(:attr:`InputError.problems`, :meth:`InputError.table`, :meth:`InputError.to_csv`).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pandas is imported only by InputError.table: the CLI's light commands never pay for it
    import pandas as pd

#: Columns of a problems table (CSV, JSON, DataFrame), in order.
PROBLEM_FIELDS = ("file", "row", "column", "value", "rule", "fix")

#: Exit code of every CLI command when the input (study file or data) is invalid.
EXIT_INPUT_ERROR = 2


@dataclass(frozen=True)
class Problem:
    """One broken rule in one place of one input file."""

    file: str
    rule: str
    row: int | None = None
    column: str | None = None
    value: str | None = None
    fix: str = ""

    def as_dict(self) -> dict[str, object]:
        return {
            "file": self.file,
            "row": self.row,
            "column": self.column,
            "value": self.value,
            "rule": self.rule,
            "fix": self.fix,
        }


def row_ranges(rows: Iterable[int], *, limit: int = 6) -> str:
    """Rows as ranges: ``2-251, 300, 302-310``; after ``limit`` ranges ``... (k more)``."""
    ordered = sorted(set(rows))
    spans: list[tuple[int, int]] = []
    for r in ordered:
        if spans and r == spans[-1][1] + 1:
            spans[-1] = (spans[-1][0], r)
        else:
            spans.append((r, r))
    text = [f"{a}" if a == b else f"{a}-{b}" for a, b in spans[:limit]]
    if len(spans) > limit:
        text.append(f"... ({len(spans) - limit} more ranges)")
    return ", ".join(text)


@dataclass(frozen=True)
class ProblemGroup:
    """The problems of one file, column and rule."""

    file: str
    column: str | None
    rule: str
    fix: str
    problems: tuple[Problem, ...]

    @property
    def count(self) -> int:
        return len(self.problems)

    @property
    def rows(self) -> list[int]:
        return [p.row for p in self.problems if p.row is not None]

    def where(self) -> str:
        """``row 90``, ``rows 2-251 (250 cells)`` or ``""`` (a problem of the whole file or column)."""
        rows = self.rows
        if not rows:
            return ""
        if len(rows) == 1:
            return f"row {rows[0]}"
        what = "rows" if self.column is None or ", " in (self.column or "") else "cells"
        return f"rows {row_ranges(rows)} ({len(rows)} {what})"

    def values(self, limit: int = 4) -> str:
        """The offending values: ``'284'`` or ``'2019-01-05', '2019-02-11', ... (250 different)``."""
        seen = list(dict.fromkeys(p.value for p in self.problems if p.value is not None))
        shown = ", ".join(repr(v) for v in seen[:limit])
        if len(seen) > limit:
            shown += f", ... ({len(seen)} different)"
        return shown

    def as_dict(self) -> dict[str, object]:
        return {"file": self.file, "column": self.column, "rule": self.rule, "fix": self.fix, "count": self.count,
                "rows": row_ranges(self.rows, limit=50), "values": self.values()}


def group_problems(problems: Sequence[Problem]) -> list[ProblemGroup]:
    """Problems grouped per file, column and rule; the rare groups (fewest rows) first.

    Ties keep the order of the first row, so the groups read top to bottom like the file.
    """
    groups: dict[tuple[str, str | None, str], list[Problem]] = {}
    for p in problems:
        groups.setdefault((p.file, p.column, p.rule), []).append(p)
    out = [ProblemGroup(file=f, column=c, rule=r, fix=ps[0].fix, problems=tuple(ps)) for (f, c, r), ps in groups.items()]
    first = {id(g): i for i, g in enumerate(out)}
    return sorted(out, key=lambda g: (g.count, min(g.rows, default=0), first[id(g)]))


def problem_line(p: Problem | ProblemGroup) -> str:
    """One line (never wrapped) for a log: file, row(s), column, value(s), rule, fix."""
    if isinstance(p, ProblemGroup):
        where, values = p.where(), p.values()
    else:
        where = "" if p.row is None else f"row {p.row}"
        values = "" if p.value is None else repr(p.value)
    parts = [p.file, where, "" if p.column is None else f"column {p.column!r}",
             "" if not values else f"value{'s' if isinstance(p, ProblemGroup) and p.count > 1 else ''} {values}", p.rule]
    line = ": ".join(x for x in parts if x)
    fix = " ".join(p.fix.split())
    return " ".join(f"{line} — fix: {fix}".split()) if fix else " ".join(line.split())


@dataclass
class InputError(Exception):
    """One or more problems with the inputs; nothing was computed or written."""

    problems: list[Problem] = field(default_factory=list)
    summary: str = "The input is invalid"

    def __post_init__(self) -> None:
        super().__init__(str(self))

    def __str__(self) -> str:
        groups = self.groups()
        lines = [f"{self.summary}: {len(self.problems)} problem(s)"]
        lines += [f"  {problem_line(g)}" for g in groups[:200]]
        if len(groups) > 200:
            lines.append(f"  ... and {len(groups) - 200} more groups of problems")
        return "\n".join(lines)

    def groups(self) -> list[ProblemGroup]:
        """The problems grouped per file, column and rule, rare groups first (:func:`group_problems`)."""
        return group_problems(self.problems)

    def table(self) -> pd.DataFrame:
        """The problems as a tidy DataFrame (file, row, column, value, rule, fix)."""
        import pandas as pd

        return pd.DataFrame([p.as_dict() for p in self.problems], columns=list(PROBLEM_FIELDS))

    def to_csv(self) -> str:
        """Every problem as CSV text with the columns file,row,column,value,rule,fix."""
        return problems_csv(self.problems)


def problems_csv(problems: Iterable[Problem]) -> str:
    """Problems as CSV text (header file,row,column,value,rule,fix; one row per problem)."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=PROBLEM_FIELDS, lineterminator="\n")
    writer.writeheader()
    for p in problems:
        writer.writerow({k: "" if v is None else v for k, v in p.as_dict().items()})
    return buf.getvalue()


class AnalysisError(Exception):
    """The data are valid but the analysis cannot be done honestly (e.g. zero events)."""
