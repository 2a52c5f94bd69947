"""A new user, following only the README, from ``cementleak new`` to a rendered report of their
own spreadsheet, editing nothing outside their study folder (issue 9, "Done when").

The spreadsheet is what a hospital exports, not what the package would like: an Excel file whose
headers are sentences with units ("Age (y)"), dates of surgery and last contact instead of a
follow-up time, and "Yes"/"No" for the event.  The data are R's ``survival::lung`` (real, public),
relabelled as a user would have them.
"""

from __future__ import annotations

import hashlib
import re
import subprocess
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pytest
import yaml
from bs4 import BeautifulSoup

from conftest import CLI, ROOT

pytestmark = [pytest.mark.render, pytest.mark.slow]


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(CLI), *args], cwd=cwd, capture_output=True, text=True, timeout=900)


def _spreadsheet(path: Path) -> None:
    lung = pd.read_csv(ROOT / "tests" / "studies" / "lung" / "lung.csv")
    start = [date(2015, 1, 1) + timedelta(days=int(7 * i)) for i in range(len(lung))]
    pd.DataFrame({
        "Patient ID": [f"P{i:04d}" for i in lung["id"]],
        "Age (y)": lung["age"],
        "Sex": lung["sex"].map({1: "Male", 2: "Female"}),
        "ECOG score": lung["ph_ecog"],
        "Weight loss (lb)": lung["wt_loss"],
        "Date of diagnosis": pd.to_datetime(start),
        "Last contact": pd.to_datetime([s + timedelta(days=int(t)) for s, t in zip(start, lung["time"])]),
        "Died?": lung["status"].map({1: "Yes", 0: "No"}),
    }).to_excel(path, index=False)


def _tree_digest(folder: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(folder.rglob("*")):
        if p.is_file() and "__pycache__" not in p.parts:
            h.update(p.relative_to(folder).as_posix().encode())
            h.update(p.read_bytes())
    return h.hexdigest()


def test_new_user_from_cementleak_new_to_a_rendered_report(tmp_path):
    before = _tree_digest(ROOT / "report")
    folder = tmp_path / "my-study"
    assert run("new", str(folder), cwd=tmp_path).returncode == 0
    _spreadsheet(folder / "data" / "lung-export.xlsx")
    # the user's edits, all inside the study folder: study.yaml and a narrative part
    spec = yaml.safe_load((folder / "study.yaml").read_text(encoding="utf-8"))
    spec["study"].update(title="Death within one year of diagnosis of advanced lung cancer", id_column="Patient ID",
                         population="Patients with advanced lung cancer", period="2015 to 2019")
    spec["cohort_file"] = "data/lung-export.xlsx"
    spec["outcome"] = {"start": "Date of diagnosis", "end": "Last contact", "time": "days_followed", "time_unit": "days",
                       "event": "died", "event_column": "Died?", "event_aliases": {"Yes": 1, "No": 0},
                       "event_label": "Death", "time_label": "Survival", "time_origin": "diagnosis",
                       "horizon": 365, "followup": 1100}
    spec["variables"] = [
        {"name": "age_y", "column": "Age (y)", "label": "Age", "unit": "years", "kind": "continuous",
         "range": [18, 100], "candidate": True},
        {"name": "sex", "column": "Sex", "label": "Sex", "kind": "binary", "levels": ["male", "female"],
         "aliases": {"Male": "male", "Female": "female"}, "candidate": True},
        {"name": "ecog", "column": "ECOG score", "label": "ECOG performance score", "kind": "ordinal",
         "levels": ["0", "1", "2", "3"], "missing_allowed": True, "candidate": True},
        {"name": "wt_loss", "column": "Weight loss (lb)", "label": "Weight loss", "unit": "lb", "kind": "continuous",
         "range": [-50, 100], "missing_allowed": True, "candidate": True},
    ]
    spec["analysis"].update(selection="prespecified", predictors=["age_y", "sex", "ecog", "wt_loss"], bootstrap_b=30,
                            calibration_group_size=40)
    (folder / "study.yaml").write_text(yaml.safe_dump(spec, sort_keys=False, allow_unicode=True), encoding="utf-8")
    (folder / "narrative" / "background.md").write_text(
        "Performance status is the strongest bedside guide to prognosis in advanced lung cancer.\n", encoding="utf-8")
    data_before = (folder / "data" / "lung-export.xlsx").read_bytes()

    proc = run("validate", cwd=folder)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    proc = run("report", "--engine", "builtin", "--to", "html,pdf", cwd=folder)
    assert proc.returncode == 0, proc.stdout + proc.stderr

    html = folder / "_output" / "report" / "index.html"
    assert html.is_file() and (folder / "_output" / "report" / "index.pdf").is_file()
    text = re.sub(r"\s+", " ", BeautifulSoup(html.read_text(encoding="utf-8"), "html.parser").get_text(" "))
    assert "Death within one year of diagnosis of advanced lung cancer" in text
    assert "Performance status is the strongest bedside guide" in text
    assert "within 365 days of diagnosis" in text
    assert "ECOG performance score (4 ordered levels) as a score from 0 to 3" in text
    assert "synthetic" not in text.lower()
    # the user's spreadsheet and the project's documents are untouched
    assert (folder / "data" / "lung-export.xlsx").read_bytes() == data_before
    assert _tree_digest(ROOT / "report") == before
