"""Errors of the built-in renderer: every problem names the file and the line.

A :class:`SubsetProblem` is one place in one ``.qmd`` (or ``_quarto.yml``) that the engine
cannot render: a construct outside the supported Quarto subset, an unresolved
cross-reference, a failing cell.  :class:`RenderError` carries one or more of them; nothing
in the output directory has been changed when it is raised.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class SubsetProblem:
    """One rule broken at one line of one source file (``line`` is 1-based)."""

    file: str
    line: int | None
    rule: str
    fix: str = ""

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        fix = f" — {self.fix}" if self.fix else ""
        return f"{where}: {self.rule}{fix}"


class RenderError(Exception):
    """Rendering stopped; the previous output directory is unchanged.

    Parameters
    ----------
    problems
        Every problem found (at least one).
    details
        Optional long text (e.g. the Python traceback of a failing cell, pandoc's log).
    """

    def __init__(self, problems: list[SubsetProblem] | tuple[SubsetProblem, ...], *, details: str = "") -> None:
        self.problems = tuple(problems)
        self.details = details
        super().__init__(str(self))

    def __str__(self) -> str:
        head = "; ".join(str(p) for p in self.problems[:1])
        if len(self.problems) == 1:
            return head
        rest = "\n".join(f"  {p}" for p in self.problems)
        return f"{len(self.problems)} problems:\n{rest}"


def display_path(path: Path, root: Path | None) -> str:
    """``path`` relative to ``root`` when it lies inside it (for messages), else as given."""
    try:
        return path.resolve().relative_to(root.resolve()).as_posix() if root else str(path)
    except ValueError:
        return str(path)
