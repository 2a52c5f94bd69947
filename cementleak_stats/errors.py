"""Input errors: every problem with a study file or a data file, collected and reported together.

A :class:`Problem` names the file, the row (1-based, as a spreadsheet shows it, header = row 1),
the column, the offending value and the rule that was broken, plus how to fix it.  An
:class:`InputError` carries all problems found in one pass; the CLI prints them as one table
and exits with :data:`EXIT_INPUT_ERROR`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

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


@dataclass
class InputError(Exception):
    """One or more problems with the inputs; nothing was computed or written."""

    problems: list[Problem] = field(default_factory=list)
    summary: str = "The input is invalid"

    def __post_init__(self) -> None:
        super().__init__(str(self))

    def __str__(self) -> str:
        lines = [f"{self.summary}: {len(self.problems)} problem(s)"]
        for p in self.problems[:200]:
            where = p.file
            if p.row is not None:
                where += f", row {p.row}"
            if p.column:
                where += f", column '{p.column}'"
            val = "" if p.value is None else f" (value: {p.value!r})"
            fix = f" — {p.fix}" if p.fix else ""
            lines.append(f"  {where}: {p.rule}{val}{fix}")
        if len(self.problems) > 200:
            lines.append(f"  ... and {len(self.problems) - 200} more")
        return "\n".join(lines)

    def table(self) -> pd.DataFrame:
        """The problems as a tidy DataFrame (file, row, column, value, rule, fix)."""
        return pd.DataFrame(
            [p.as_dict() for p in self.problems],
            columns=["file", "row", "column", "value", "rule", "fix"],
        )


class AnalysisError(Exception):
    """The data are valid but the analysis cannot be done honestly (e.g. zero events)."""
