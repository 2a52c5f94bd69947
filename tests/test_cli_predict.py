"""``cementleak predict`` scores a patient exactly as ``predict_risk`` and refuses bad input.

The happy path runs the installed console script in a subprocess (as a user does); the error
cases run the same Typer app in-process (faster; same code).  Both use the study of the session
render (B = 50, results cached), so no analysis is recomputed.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from cementleak_stats import cli
from cementleak_stats.cli import app
from cementleak_stats.errors import EXIT_INPUT_ERROR
from cementleak_stats.nomogram import predict_risk
from cementleak_stats.spec import load_spec
from cementleak_stats.study import StudyResults, run_study

pytestmark = pytest.mark.xdist_group("render")

CLI = Path(sys.executable).with_name("cementleak")
WIDE = {"COLUMNS": "250", "NO_COLOR": "1"}


@pytest.fixture(scope="module")
def results(rendered_project) -> StudyResults:
    return run_study(load_spec(rendered_project.study))


def a_patient(r: StudyResults) -> dict[str, str]:
    """A patient as typed on the command line: the median axis value, the last level (by an alias if the study has one)."""
    out = {}
    for name in r.model.variables:
        var = r.spec.variable(name)
        if var.kind == "continuous":
            axis = r.nomogram.points.loc[r.nomogram.points["predictor"] == name, "value"].astype(float)
            out[name] = f"{axis.median():g}"
        else:
            alias = next((a for a, lv in var.aliases.items() if lv == var.levels[-1]), var.levels[-1])
            out[name] = alias
    return out


def _args(patient: dict[str, str]) -> list[str]:
    return [f"{k}={v}" for k, v in patient.items()]


def test_predict_json_equals_predict_risk(rendered_project, results: StudyResults) -> None:
    patient = a_patient(results)
    proc = subprocess.run([str(CLI), "predict", *_args(patient), "--study", str(rendered_project.study), "--json"],
                          capture_output=True, text=True, timeout=300, env={**os.environ, **WIDE})
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout)
    want = predict_risk(results.spec, results.nomogram,
                        {k: float(v) if results.spec.variable(k).kind == "continuous" else v for k, v in patient.items()})
    assert math.isclose(got["total_points"], want.total_points, rel_tol=1e-12, abs_tol=1e-12)
    assert math.isclose(got["lp"], want.lp, rel_tol=1e-12, abs_tol=1e-12)
    assert math.isclose(got["risk"], want.risk, rel_tol=1e-12, abs_tol=1e-12)
    assert got["horizon"] == results.spec.outcome.horizon
    assert got["points"] == pytest.approx(dict(zip(want.points["predictor"], want.points["points"])), rel=1e-12, abs=1e-12)


@pytest.fixture(autouse=True)
def wide_error_console(monkeypatch: pytest.MonkeyPatch) -> None:
    """The problem table is a rich table: at 80 columns it folds a column name over two lines."""
    monkeypatch.setattr(cli, "err_console", Console(stderr=True, width=250, no_color=True))


def _invoke(study: Path, *args: str):
    return CliRunner().invoke(app, ["predict", *args, "--study", str(study)], env=WIDE)


def test_unknown_level_exits_2_naming_the_variable(rendered_project, results: StudyResults) -> None:
    patient = a_patient(results)
    name = next(n for n in results.model.variables if results.spec.variable(n).kind != "continuous")
    patient[name] = "not-a-level"
    res = _invoke(rendered_project.study, *_args(patient))
    assert res.exit_code == EXIT_INPUT_ERROR == 2
    assert name in res.stderr and "not-a-level" in res.stderr and "unknown level" in res.stderr
    assert "Traceback" not in res.output + res.stderr


def test_number_outside_the_nomogram_and_missing_predictor_exit_2(rendered_project, results: StudyResults) -> None:
    patient = a_patient(results)
    name = next(n for n in results.model.variables if results.spec.variable(n).kind == "continuous")
    axis_max = results.nomogram.points.loc[results.nomogram.points["predictor"] == name, "value"].astype(float).max()
    patient[name] = f"{axis_max + 1:g}"
    dropped = next(n for n in results.model.variables if n != name)
    del patient[dropped]
    res = _invoke(rendered_project.study, *_args(patient))
    assert res.exit_code == 2
    assert name in res.stderr and "outside the range" in res.stderr
    assert dropped in res.stderr and "missing" in res.stderr


def test_malformed_argument_exits_2(rendered_project) -> None:
    res = _invoke(rendered_project.study, "value-without-a-name")
    assert res.exit_code == 2 and "name=value" in res.stderr
