"""Helpers for tests/test_reliability_*.py (no tests here).

* :func:`study_copy` writes a copy of the shipped study (``study.yaml`` + ``data/cohort.csv``)
  into a temporary folder, with the cohort edited and analysis options changed, so that every
  reliability case runs the real pipeline on the shipped data;
* :func:`censor` / :func:`with_events` edit the outcome consistently (event details follow);
* :func:`cli` runs ``cementleak`` in a subprocess (what a user runs), :func:`cli_popen` starts
  it in the background (to kill it or race it);
* :func:`tree` records every file's bytes under a folder (to prove an output is intact).

``python tests/test_reliability_support.py`` regenerates ``docs/reliability.md`` from the case
lists of the reliability tests and of the bad-input corpus, with the pass counts of a fresh
pytest run (see :func:`write_reliability_doc`).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import pandas as pd
import yaml

from cementleak_stats.spec import StudySpec, load_spec

REPO = Path(__file__).resolve().parents[1]
SHIPPED = load_spec(REPO / "study.yaml")
Edit = Callable[[pd.DataFrame], pd.DataFrame]


def study_copy(
    directory: Path,
    *,
    edit: Edit | None = None,
    analysis: Mapping[str, object] | None = None,
    variables: Callable[[list[dict]], None] | None = None,
    outcomes: bool = False,
    bootstrap_b: int = 20,
) -> Path:
    """A copy of the shipped study in ``directory``: ``cohort.csv`` (edited) and ``study.yaml``.

    ``analysis`` updates the study file's ``analysis:`` block; ``variables`` edits its
    ``variables:`` list in place; ``outcomes`` keeps the repeated-measures table (the shipped
    ``data/outcomes.csv``, read in place — never written).
    """
    directory.mkdir(parents=True, exist_ok=True)
    cohort = pd.read_csv(REPO / "data" / "cohort.csv")
    if edit is not None:
        cohort = edit(cohort.copy())
    cohort.to_csv(directory / "cohort.csv", index=False, lineterminator="\n")
    spec = yaml.safe_load((REPO / "study.yaml").read_text(encoding="utf-8"))
    spec["cohort_file"] = "cohort.csv"
    if outcomes:
        spec["repeated"]["file"] = str(REPO / "data" / "outcomes.csv")
    else:
        spec.pop("repeated", None)
    spec.pop("validation", None)  # the development cohort only (the validation cohort is not copied)
    spec["analysis"] = {**spec["analysis"], "bootstrap_b": bootstrap_b, **(analysis or {})}
    if variables is not None:
        variables(spec["variables"])
    path = directory / "study.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


def censor(cohort: pd.DataFrame, mask: pd.Series, spec: StudySpec = SHIPPED) -> pd.DataFrame:
    """Make the patients in ``mask`` event-free: censored at the end of follow-up, event details
    at their reference level ("no event")."""
    out = spec.outcome
    cohort.loc[mask, out.event] = 0
    cohort.loc[mask, out.time] = out.followup
    for name in out.event_details:
        cohort.loc[mask, name] = spec.variable(name).ref_level
    return cohort


def with_events(k: int, spec: StudySpec = SHIPPED) -> Edit:
    """An edit keeping only the first ``k`` events of the cohort (the others censored)."""
    def edit(cohort: pd.DataFrame) -> pd.DataFrame:
        events = cohort.index[cohort[spec.outcome.event] == 1]
        return censor(cohort, cohort.index.isin(events[k:]), spec)
    return edit


def set_range(name: str, lo: float, hi: float) -> Callable[[list[dict]], None]:
    """A ``variables`` edit widening the plausible range of one variable."""
    def edit(variables: list[dict]) -> None:
        next(v for v in variables if v["name"] == name)["range"] = [lo, hi]
    return edit


def allow_missing(*names: str) -> Callable[[list[dict]], None]:
    def edit(variables: list[dict]) -> None:
        for v in variables:
            if v["name"] in names:
                v["missing_allowed"] = True
    return edit


def _cli_args(args: Sequence[str]) -> list[str]:
    return [sys.executable, "-m", "cementleak_stats.cli", *map(str, args)]


def _env() -> dict[str, str]:
    # matplotlib's cache in a shared place; no colours or terminal width in captured output
    return {**os.environ, "NO_COLOR": "1", "COLUMNS": "200", "TERM": "dumb"}


def cli(*args: object, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run ``cementleak ARGS`` as a user does (a new process) and capture its output."""
    return subprocess.run(_cli_args([str(a) for a in args]), cwd=cwd, env=_env(), capture_output=True, text=True,
                          timeout=timeout)


def cli_popen(*args: object, cwd: Path) -> subprocess.Popen[str]:
    """Start ``cementleak ARGS`` in the background (stdout/stderr captured)."""
    return subprocess.Popen(_cli_args([str(a) for a in args]), cwd=cwd, env=_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def tree(root: Path) -> dict[str, str]:
    """Relative path -> SHA-256 of every file under ``root`` (folders as ``dir``)."""
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
            for p in sorted(root.rglob("*"))}


def visible(root: Path) -> list[str]:
    """Names in ``root`` that do not start with a dot (what a user sees as results)."""
    return sorted(p.name for p in root.iterdir() if not p.name.startswith("."))


# --- docs/reliability.md ---------------------------------------------------------------------
#: area -> (pytest node prefixes, what the area guarantees); the per-case guarantees come from
#: the case lists (CASES in each test module, cases.yaml for the corpus)
AREAS: dict[str, tuple[tuple[str, ...], str]] = {
    "Bad-input corpus (CSV, XLSX, SAV, Parquet, study file)": (
        ("tests/test_validate_corpus.py",),
        "one InputError naming file, row, column and rule; exit code 2; no traceback; inputs byte-identical; "
        "nothing written"),
    "Real spreadsheets: messages, logs and what the analysis needs": (
        ("tests/test_io_validate_cli.py",),
        "problems grouped per column and rule with the rare ones first, every one kept (--all, --problems CSV, "
        "JSON); one unbroken line per problem in a log; study-file errors name the variable; validate refuses "
        "what analyze would refuse"),
    "Hostile inputs and interrupted commands": (
        ("tests/test_reliability_inputs.py",),
        "YAML code tags never run, alias bombs and deep nesting refused in milliseconds; analyze/report on bad "
        "input exit 2 and leave the previous outputs untouched"),
    "Numerical edge cases": (
        ("tests/test_reliability_numeric.py",),
        "an AnalysisError that says why (CLI exit 2) or a finite, flagged result — never an absurd number"),
    "Missing data": (
        ("tests/test_reliability_missing.py",),
        "complete-case flow counted; multiple imputation pooled by Rubin's rules as R mice::pool"),
    "Atomic, concurrent-safe and deterministic outputs": (
        ("tests/test_reliability_outputs.py",),
        "a killed run leaves the previous output intact; a second run gets the lock message; two runs give "
        "byte-identical files"),
    "Privacy": (
        ("tests/test_reliability_privacy.py",),
        "no patient id or identifying value in any output; no network resource in the HTML"),
    "Trust: caches, failed renders, predict, audit": (
        ("tests/test_cache.py", "tests/test_report_results_atomic.py", "tests/test_predict_model_file.py",
         "tests/test_audit.py"),
        "no cache entry can run code or show numbers this user's machine did not compute; report and results "
        "change together; predict prints the prediction; audit names every differing cell or changed input"),
}


def _junit_counts(xml: Path) -> dict[str, tuple[int, int]]:
    """pytest node prefix -> (tried, passed) from a JUnit XML report."""
    import xml.etree.ElementTree as ET

    out: dict[str, list[int]] = {}
    for case in ET.parse(xml).iter("testcase"):
        module = next((part for part in case.get("classname", "").split(".") if part.startswith("test_")), "")
        key = f"tests/{module}.py"
        failed = any(child.tag in ("failure", "error", "skipped") for child in case)
        tried, passed = out.setdefault(key, [0, 0])
        out[key] = [tried + 1, passed + (not failed)]
    return {k: (v[0], v[1]) for k, v in out.items()}


def reliability_cases() -> list[tuple[str, str, str]]:
    """(area, case id, guarantee) of every listed case, in order."""
    import importlib

    rows = []
    corpus = yaml.safe_load((REPO / "tests" / "bad_inputs" / "cases.yaml").read_text(encoding="utf-8"))["cases"]
    area = next(iter(AREAS))
    for c in corpus:
        formats = c.get("formats")
        rows.append((area, c["id"] + (f" ({', '.join(formats)})" if formats else ""), c["guarantees"]))
    for area, (nodes, _) in list(AREAS.items())[1:]:
        module = importlib.import_module(Path(nodes[0]).stem)
        rows += [(area, case_id, guarantee) for case_id, guarantee in getattr(module, "GUARANTEES")]
    return rows


def render_reliability_doc(counts: Mapping[str, tuple[int, int]] | None = None) -> str:
    """The markdown of docs/reliability.md (counts: node prefix -> (tried, passed))."""
    lines = [
        "# Reliability",
        "",
        "Generated by `python tests/test_reliability_support.py` from the case lists of the reliability tests",
        "and of the bad-input corpus (`tests/bad_inputs/cases.yaml`), with the counts of the pytest run that",
        "generated it; `tests/test_reliability_docs.py` fails when a case is missing here. Tried minus passed",
        "are expected failures (`xfail`): open bugs in other modules, each listed below as \"expected failure\"",
        "with the fix in its test's reason.",
        "",
        "| area | test cases tried | passed | what it guarantees |",
        "|---|---:|---:|---|",
    ]
    for area, (nodes, guarantee) in AREAS.items():
        tried = passed = 0
        for n in nodes:
            t, p = (counts or {}).get(n, (0, 0))
            tried, passed = tried + t, passed + p
        lines.append(f"| {area} | {tried or '–'} | {passed if tried else '–'} | {guarantee} |")
    lines += ["", "## Cases", "", "| area | case | guarantees |", "|---|---|---|"]
    lines += [f"| {a} | `{c}` | {g.replace('|', '/')} |" for a, c, g in reliability_cases()]
    return "\n".join(lines) + "\n"


def write_reliability_doc() -> Path:
    """Run the reliability tests and the corpus (slow ones included) and write docs/reliability.md."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        xml = Path(tmp) / "junit.xml"
        nodes = [n for ns, _ in AREAS.values() for n in ns]
        subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={xml}", *nodes],
                       cwd=REPO, check=False)
        counts = _junit_counts(xml)
    out = REPO / "docs" / "reliability.md"
    out.parent.mkdir(exist_ok=True)
    out.write_text(render_reliability_doc(counts), encoding="utf-8")
    return out


if __name__ == "__main__":  # pragma: no cover
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    print(write_reliability_doc())
