"""``cementleak audit``: recompute a delivered analysis from its data and study file, and compare.

An auditor receives a study folder with its ``_output/``.  :func:`audit_study` recomputes
everything from the data and the study file — never from a cache — writes the recomputed
results files into a temporary folder, and compares them with the delivered ones:

* every ``results/*.csv`` cell by cell (numbers within :data:`RTOL` relative, to absorb
  floating-point noise and the last of the 10 significant digits the files are written with;
  text exactly), ``summary.json`` and ``model.json`` value by value;
* the inputs the delivered results say they were made from (``summary.json`` provenance: the
  study file's and each data file's SHA-256, the package version with its source digest, the
  library versions) with the inputs as they are now;
* the provenance printed in the rendered report's colophon (every ``.html`` of the output) with
  the recomputation's.

Each file gets a verdict: ``identical``; ``different`` (the cells: row, column, delivered vs
recomputed) when the inputs are the same — the delivered numbers are not what these inputs
give; ``not reproducible`` when a file differs and an input changed (which one is named);
``missing`` / ``unexpected`` for a file only one side has.  Bootstrap results are reproducible
because the seed and B are in the study file: a recomputation draws the same resamples.

Figures are not compared pixel by pixel: they are drawn from the compared tables.
"""

from __future__ import annotations

import html
import json
import math
import re
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from .errors import InputError, Problem
from .spec import StudySpec

#: relative tolerance for numbers (floating noise; 2 units in the 10th significant digit)
RTOL = 2e-9
#: differing cells listed per file (the count is always given)
MAX_CELLS = 50

Verdict = Literal["identical", "different", "not reproducible", "missing", "unexpected"]


@dataclass(frozen=True)
class Cell:
    """One value that differs: ``row`` is the 1-based data row of a CSV (None for JSON),
    ``key`` names the row (its first column's value) or the JSON path."""

    row: int | None
    key: str
    column: str
    delivered: str
    recomputed: str


@dataclass(frozen=True)
class InputChange:
    """An input of the delivered results that is not what it is now."""

    input: str  # "study file", "data file cohort.csv", "code", "version of numpy", ...
    delivered: str
    now: str


@dataclass(frozen=True)
class FileAudit:
    file: str  # relative to the output folder: results/validation.csv, report/index.html, ...
    verdict: Verdict
    cells: tuple[Cell, ...] = ()
    n_cells: int = 0  # differing cells in all (``cells`` lists the first MAX_CELLS)
    detail: str = ""


@dataclass(frozen=True)
class AuditReport:
    """Everything :func:`audit_study` found.  ``ok`` when every number and the provenance match."""

    output_dir: Path
    files: tuple[FileAudit, ...]
    input_changes: tuple[InputChange, ...]
    seed: int
    bootstrap_b: int
    notes: tuple[str, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return not self.input_changes and all(f.verdict == "identical" for f in self.files)

    @property
    def bootstrap_note(self) -> str:
        return (f"Bootstrap results are reproducible: the seed ({self.seed}) and B ({self.bootstrap_b}) are in the study "
                "file, so the recomputation draws the same resamples.")

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok, "output": str(self.output_dir), "seed": self.seed, "bootstrap_b": self.bootstrap_b,
            "bootstrap": self.bootstrap_note, "notes": list(self.notes),
            "input_changes": [c.__dict__ for c in self.input_changes],
            "files": [{"file": f.file, "verdict": f.verdict, "detail": f.detail, "n_cells": f.n_cells,
                       "cells": [c.__dict__ for c in f.cells]} for f in self.files],
        }

    def lines(self) -> Iterator[str]:
        """One line per finding, every identifier unbroken (for logs and pipes)."""
        for c in self.input_changes:
            yield f"input-changed\t{c.input}\tdelivered {c.delivered}\tnow {c.now}"
        for f in self.files:
            if f.verdict == "identical":
                yield f"identical\t{f.file}"
                continue
            yield f"{f.verdict.replace(' ', '-')}\t{f.file}" + (f"\t{f.detail}" if f.detail else "")
            for c in f.cells:
                where = f"row {c.row} ({c.key})" if c.row is not None else c.key
                yield (f"cell\t{f.file}\t{where}\tcolumn {c.column}\tdelivered {c.delivered}\t"
                       f"recomputed {c.recomputed}")
            if f.n_cells > len(f.cells):
                yield f"cell\t{f.file}\t... and {f.n_cells - len(f.cells)} more differing cells"
        for n in self.notes:
            yield f"note\t{n}"
        yield f"note\t{self.bootstrap_note}"
        yield "verdict\t" + ("PASSED: every number and the provenance match the recomputation" if self.ok
                             else "FAILED: " + self.summary())

    def summary(self) -> str:
        bad = [f for f in self.files if f.verdict != "identical"]
        parts = [f"{len(bad)} of {len(self.files)} files not identical"] if bad else []
        if self.input_changes:
            parts.append("inputs changed: " + ", ".join(c.input for c in self.input_changes))
        return "; ".join(parts) or "nothing differs"


# --- comparing values ------------------------------------------------------------------------
def _number(text: str) -> float | None:
    try:
        return float(text)
    except (TypeError, ValueError):
        return None


def same_value(a: object, b: object) -> bool:
    """Equal text, or numbers equal within :data:`RTOL` (NaN equals NaN, inf equals inf)."""
    if a == b:
        return True
    x, y = _number(a) if isinstance(a, str) else a, _number(b) if isinstance(b, str) else b
    if isinstance(x, bool) or isinstance(y, bool) or not isinstance(x, (int, float)) or not isinstance(y, (int, float)):
        return False
    if math.isnan(x) or math.isnan(y):
        return math.isnan(x) and math.isnan(y)
    return math.isclose(x, y, rel_tol=RTOL, abs_tol=1e-300)


def _show(v: object) -> str:
    return v if isinstance(v, str) else json.dumps(v, ensure_ascii=False)


def compare_csv(delivered: Path, recomputed: Path) -> tuple[list[Cell], str]:
    """Differing cells of two CSV files (text compared as written; numbers within RTOL)."""
    a = pd.read_csv(delivered, dtype=str, keep_default_na=False)
    b = pd.read_csv(recomputed, dtype=str, keep_default_na=False)
    detail = []
    if list(a.columns) != list(b.columns):
        detail.append(f"columns differ: delivered {list(a.columns)}, recomputed {list(b.columns)}")
    if len(a) != len(b):
        detail.append(f"{len(a)} rows delivered, {len(b)} recomputed")
    cells = []
    common = [c for c in b.columns if c in a.columns]
    for i in range(min(len(a), len(b))):
        for col in common:
            x, y = a.iat[i, a.columns.get_loc(col)], b.iat[i, b.columns.get_loc(col)]
            if not same_value(x, y):
                key = f"{b.columns[0]}={b.iat[i, 0]}" if len(b.columns) else ""
                cells.append(Cell(i + 1, key, col, x, y))
    return cells, "; ".join(detail)


def _flatten(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _flatten(v, f"{path}.{k}" if path else str(k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _flatten(v, f"{path}[{i}]")
    else:
        yield path, value


def compare_json(delivered: Path, recomputed: Path, *, skip: tuple[str, ...] = ()) -> tuple[list[Cell], str]:
    """Differing values of two JSON files, by path; subtrees in ``skip`` are compared as inputs."""
    try:
        a = json.loads(delivered.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return [], f"not readable JSON ({exc})"
    b = json.loads(recomputed.read_text(encoding="utf-8"))
    fa = {k: v for k, v in _flatten(a) if not k.startswith(skip)} if skip else dict(_flatten(a))
    fb = {k: v for k, v in _flatten(b) if not k.startswith(skip)} if skip else dict(_flatten(b))
    cells = []
    for k in list(fb) + [k for k in fa if k not in fb]:
        if k not in fa or k not in fb or not same_value(fa[k], fb[k]):
            cells.append(Cell(None, k, k.rsplit(".", 1)[-1], _show(fa.get(k, "(absent)")), _show(fb.get(k, "(absent)"))))
    return cells, ""


# --- the inputs and the report's provenance --------------------------------------------------
def input_changes(delivered: dict[str, Any], now: dict[str, Any]) -> list[InputChange]:
    """Which inputs of the delivered results (``summary.json`` provenance) differ from now's."""
    out = []
    if delivered.get("study_sha256") != now["study_sha256"]:
        out.append(InputChange(f"study file {now['study_file']} (SHA-256)", str(delivered.get("study_sha256")),
                               now["study_sha256"]))
    d_data, n_data = delivered.get("data_sha256") or {}, now["data_sha256"]
    for name in sorted(set(d_data) | set(n_data)):
        if d_data.get(name) != n_data.get(name):
            out.append(InputChange(f"data file {name} (SHA-256)", d_data.get(name, "(absent)"), n_data.get(name, "(absent)")))
    if delivered.get("package_version") != now["package_version"]:
        out.append(InputChange("code (cementleak-stats version + source digest)", str(delivered.get("package_version")),
                               now["package_version"]))
    d_ver, n_ver = delivered.get("versions") or {}, now["versions"]
    for name in sorted(set(d_ver) | set(n_ver)):
        if d_ver.get(name) != n_ver.get(name):
            out.append(InputChange(f"version of {name}", d_ver.get(name, "(absent)"), n_ver.get(name, "(absent)")))
    return out


_ROW = re.compile(r"<tr[^>]*>(.*?)</tr>", re.S | re.I)
_CELL = re.compile(r"<t[dh][^>]*>(.*?)</t[dh]>", re.S | re.I)
_TAG = re.compile(r"<[^>]+>")


def colophon_items(html_text: str, items: set[str]) -> dict[str, str]:
    """The rows of a rendered colophon table (item -> value) whose item is one of ``items``."""
    found = {}
    for row in _ROW.findall(html_text):
        cells = [" ".join(html.unescape(_TAG.sub("", c)).split()) for c in _CELL.findall(row)]  # pandoc wraps lines
        if len(cells) == 2 and cells[0] in items:
            found[cells[0]] = cells[1].strip("`").strip()
    return found


#: colophon rows that say what the numbers depend on (the git commit and file name are shown, not compared)
def _compared_items(table: pd.DataFrame) -> dict[str, str]:
    skip = ("Study file", "Git commit", "Synthetic data")
    return {i: v for i, v in zip(table["item"], table["value"]) if i not in skip}


def audit_report_provenance(output_dir: Path, expected: dict[str, str], *, inputs_changed: bool = False) -> list[FileAudit]:
    """Each rendered HTML document's colophon against the recomputation's provenance."""
    out = []
    for page in sorted(output_dir.rglob("*.html")):
        rel = page.relative_to(output_dir).as_posix()
        if rel.startswith("results/"):
            continue
        found = colophon_items(page.read_text(encoding="utf-8", errors="replace"), set(expected))
        if not found:
            continue  # a document without a colophon (slides)
        cells = [Cell(None, item, "value", found.get(item, "(not stated)"), value)
                 for item, value in expected.items() if found.get(item) != value]
        verdict: Verdict = "identical" if not cells else "not reproducible" if inputs_changed else "different"
        out.append(FileAudit(rel, verdict, tuple(cells[:MAX_CELLS]), len(cells),
                             "" if not cells else "colophon (provenance) differs from the recomputation"))
    return out


# --- the audit -------------------------------------------------------------------------------
def _delivered_summary(results_dir: Path) -> dict[str, Any]:
    path = results_dir / "summary.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict) or not isinstance(data.get("provenance"), dict):
            raise ValueError("no provenance")
        return data
    except FileNotFoundError:
        raise InputError([Problem(file=str(path), rule="no delivered results to audit",
                                  fix="point --output at the folder that holds results/ (run `cementleak report` or "
                                      "`cementleak analyze` first)")], summary="Nothing to audit") from None
    except (OSError, ValueError) as exc:
        raise InputError([Problem(file=str(path), rule=f"not a cementleak summary ({exc})",
                                  fix="audit an output folder written by `cementleak report` or `analyze`")],
                         summary="Nothing to audit") from None


def audit_study(spec: StudySpec, output_dir: Path, *,
                progress: Callable[[str, int, int], None] | None = None) -> AuditReport:
    """Recompute the study (no cache) and compare it with the delivered ``output_dir``.

    Parameters
    ----------
    spec : the study file as it is now (with its data files as they are now).
    output_dir : the delivered output folder (``_output``): ``results/`` and the rendered report.
    progress : ``progress(step, done, total)`` while the analysis is recomputed.

    Raises
    ------
    InputError
        when there is nothing to audit (no ``results/summary.json``) or the data are invalid.
    AnalysisError
        when the data no longer give an analysis (the message says why).
    """
    from .export import MODEL_FILE, stage_results
    from .study import compute_study

    output_dir = Path(output_dir)
    results_dir = output_dir / "results"
    summary = _delivered_summary(results_dir)
    results = compute_study(spec, progress=progress)
    prov = results.provenance
    changes = input_changes(summary["provenance"], prov.__dict__)
    with tempfile.TemporaryDirectory(prefix="cementleak-audit-") as tmp:
        staged = stage_results(results, Path(tmp) / "results", figures=False)
        files: list[FileAudit] = []
        names = sorted({p.name for p in staged.glob("*.csv")} | {p.name for p in results_dir.glob("*.csv")})
        for name in [*names, "summary.json", MODEL_FILE]:
            mine, theirs = staged / name, results_dir / name
            rel = f"results/{name}"
            if not theirs.exists():
                files.append(FileAudit(rel, "missing", detail="the recomputation writes it; the delivery has none"))
                continue
            if not mine.exists():
                files.append(FileAudit(rel, "unexpected", detail="delivered, but the recomputation writes no such file"))
                continue
            if name.endswith(".csv"):
                cells, detail = compare_csv(theirs, mine)
            else:  # the inputs in these files are compared above, as inputs
                cells, detail = compare_json(theirs, mine, skip=("provenance", "inputs", "study."))
            if not cells and not detail:
                files.append(FileAudit(rel, "identical"))
                continue
            verdict: Verdict = "not reproducible" if changes else "different"
            why = ("inputs changed: " + ", ".join(c.input for c in changes)) if changes else ""
            files.append(FileAudit(rel, verdict, tuple(cells[:MAX_CELLS]), len(cells), "; ".join(filter(None, [detail, why]))))
    expected = _compared_items(prov.table())
    pages = audit_report_provenance(output_dir, expected, inputs_changed=bool(changes))
    notes = ["Figures are not compared: they are drawn from the compared tables."]
    if not pages:
        notes.append(f"No rendered report with a colophon in {output_dir}: only the results files were audited.")
    return AuditReport(output_dir, tuple(files + pages), tuple(changes), prov.seed, prov.bootstrap_b, tuple(notes))
