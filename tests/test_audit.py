"""``cementleak audit``: recompute a delivered analysis and compare every number and the provenance (issue 11).

A study folder is analysed once (B = 20, a copy of the shipped study); each test audits a copy
of it: as delivered (passes), with one number of a results file changed (fails, naming the
file, row and column), with one data cell edited (fails, naming the data file that changed).
The rendered report's colophon is audited on a copy of the session's rendered project.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest

from cementleak_stats.audit import colophon_items, same_value

try:
    from test_reliability_support import cli, study_copy
except ImportError:  # pragma: no cover
    from tests.test_reliability_support import cli, study_copy


@pytest.fixture(scope="module")
def analysed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("audit") / "study"
    study_copy(root)
    res = cli("analyze", "study.yaml", "--out", "_output/results", cwd=root)
    assert res.returncode == 0, res.stderr
    return root


@pytest.fixture
def delivered(analysed: Path, tmp_path: Path) -> Path:
    """A fresh copy of the analysed folder (the cache left out: audit never uses it)."""
    dest = tmp_path / "received"
    shutil.copytree(analysed, dest, ignore=shutil.ignore_patterns(".cementleak-cache"))
    return dest


def _audit(root: Path, *args: str):
    return cli("audit", "study.yaml", "--output", "_output", *args, cwd=root)


def test_audit_passes_on_a_fresh_analysis(delivered: Path) -> None:
    res = _audit(delivered)
    assert res.returncode == 0, res.stdout + res.stderr
    lines = res.stdout.splitlines()
    files = [ln.split("\t")[1] for ln in lines if ln.startswith("identical\t")]
    assert "results/validation.csv" in files and "results/summary.json" in files and "results/model.json" in files
    assert len(files) == len(list((delivered / "_output" / "results").glob("*.csv"))) + 2
    assert not [ln for ln in lines if ln.startswith(("different", "not-reproducible", "input-changed", "cell"))]
    assert any("the seed (20250427) and B (20) are in the study file" in ln for ln in lines) or any(
        re.search(r"the seed \(\d+\) and B \(20\) are in the study file", ln) for ln in lines)
    assert lines[-1].startswith("verdict\tPASSED")
    assert "No rendered report" in res.stdout  # analyze only: said, not failed


def test_audit_names_the_cell_of_a_changed_number(delivered: Path) -> None:
    path = delivered / "_output" / "results" / "validation.csv"
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    col = "corrected"
    old = frame.loc[1, col]
    frame.loc[1, col] = f"{float(old) + 0.01:.10g}"
    frame.to_csv(path, index=False, lineterminator="\n")
    res = _audit(delivered)
    assert res.returncode == 1, res.stdout + res.stderr
    lines = res.stdout.splitlines()
    assert "different\tresults/validation.csv" in lines
    cell = [ln for ln in lines if ln.startswith("cell\tresults/validation.csv")]
    assert len(cell) == 1, lines
    key = f"{frame.columns[0]}={frame.iloc[1, 0]}"
    assert cell[0] == (f"cell\tresults/validation.csv\trow 2 ({key})\tcolumn {col}\tdelivered {frame.loc[1, col]}\t"
                       f"recomputed {old}")
    assert not [ln for ln in lines if ln.startswith("input-changed")]
    assert "identical\tresults/calibration.csv" in lines  # only the edited file differs
    assert lines[-1].startswith("verdict\tFAILED: 1 of")


def test_audit_names_the_data_file_after_one_data_cell_is_edited(delivered: Path) -> None:
    cohort = pd.read_csv(delivered / "cohort.csv")
    cohort.loc[0, "bmi_kg_m2"] = round(cohort.loc[0, "bmi_kg_m2"] + 1.0, 1)
    cohort.to_csv(delivered / "cohort.csv", index=False, lineterminator="\n")
    res = _audit(delivered)
    assert res.returncode == 1, res.stdout + res.stderr
    lines = res.stdout.splitlines()
    changed = [ln for ln in lines if ln.startswith("input-changed\t")]
    assert len(changed) == 1 and changed[0].startswith("input-changed\tdata file cohort.csv (SHA-256)\tdelivered ")
    table1 = next(ln for ln in lines if "\tresults/table1.csv" in ln and not ln.startswith("cell"))
    assert table1.startswith("not-reproducible\tresults/table1.csv\t") and "inputs changed: data file cohort.csv" in table1
    assert any(ln.startswith("cell\tresults/table1.csv") for ln in lines)  # and which cells
    assert lines[-1].startswith("verdict\tFAILED") and "inputs changed: data file cohort.csv" in lines[-1]


def test_audit_json_format(delivered: Path) -> None:
    (delivered / "_output" / "results" / "summary.json").write_text(
        (delivered / "_output" / "results" / "summary.json").read_text().replace('"n": 100', '"n": 99'))
    res = _audit(delivered, "--format", "json")
    assert res.returncode == 1
    data = json.loads(res.stdout)
    assert data["ok"] is False and data["input_changes"] == []
    summary = next(f for f in data["files"] if f["file"] == "results/summary.json")
    assert summary["verdict"] == "different" and summary["cells"][0]["key"] == "n"
    assert (summary["cells"][0]["delivered"], summary["cells"][0]["recomputed"]) == ("99", "100")
    assert "seed" in data["bootstrap"]


def test_audit_without_delivered_results_exits_2(tmp_path: Path) -> None:
    study_copy(tmp_path)
    res = cli("audit", "study.yaml", cwd=tmp_path)
    assert res.returncode == 2
    assert "no delivered results to audit" in " ".join(res.stderr.split()) and "Traceback" not in res.stderr


def test_audit_help() -> None:
    res = cli("audit", "--help", cwd=Path.cwd())
    assert res.returncode == 0 and "--output" in res.stdout and "--format" in res.stdout


def test_value_comparison_and_colophon_parsing() -> None:
    assert same_value("0.1234567891", "0.1234567892") and not same_value("0.12345", "0.12346")
    assert same_value("", "") and same_value("inf", "inf") and not same_value("a", "b") and same_value("nan", "nan")
    page = ("<table><tr><th>Item</th><th>Value</th></tr><tr><td>Study file SHA-256</td>"
            "<td><code>ab&amp;cd</code></td></tr><tr><td>Random\nseed</td><td>7</td></tr></table>")  # wrapped by pandoc
    assert colophon_items(page, {"Study file SHA-256", "Random seed"}) == {"Study file SHA-256": "ab&cd", "Random seed": "7"}


@pytest.mark.render
@pytest.mark.slow
@pytest.mark.xdist_group("render")
def test_audit_checks_the_rendered_reports_provenance(rendered_project, tmp_path: Path) -> None:
    root = tmp_path / "received"
    shutil.copytree(rendered_project.root, root, ignore=shutil.ignore_patterns(".cementleak-cache", ".quarto"))
    res = _audit(root)
    assert res.returncode == 0, res.stdout + res.stderr
    pages = [ln.split("\t")[1] for ln in res.stdout.splitlines() if ln.startswith("identical\treport/")]
    assert "report/index.html" in pages
    # the report's colophon altered: that page is named, with the item
    page = root / "_output" / "report" / "index.html"
    text = page.read_text(encoding="utf-8")
    sha = json.loads((root / "_output" / "results" / "summary.json").read_text())["provenance"]["data_sha256"]["cohort.csv"]
    assert sha in text
    page.write_text(text.replace(sha, "0" * 64), encoding="utf-8")
    res = _audit(root)
    assert res.returncode == 1
    lines = res.stdout.splitlines()
    assert "different\treport/index.html\tcolophon (provenance) differs from the recomputation" in lines
    assert f"cell\treport/index.html\tData SHA-256: cohort.csv\tcolumn value\tdelivered {'0' * 64}\t" \
           f"recomputed {sha}" in lines
