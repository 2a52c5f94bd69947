"""``predict`` prints the prediction, from the exported model file or the cached analysis (issue 11).

``cementleak analyze`` writes ``model.json`` (the frozen model: coefficients, centres, baseline
survival at the horizon, levels, nomogram scales); ``predict`` reads it when it is current
(same study file, data and code), else the cached results, and computes only when neither
exists.  A successful call prints the prediction only: no study warnings, no "Nothing was written".
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from cementleak_stats import study as study_module
from cementleak_stats.cli import app
from cementleak_stats.errors import EXIT_INPUT_ERROR
from cementleak_stats.export import MODEL_FILE, model_is_current, read_model_file, write_results
from cementleak_stats.model_file import patient_values, score_patient
from cementleak_stats.nomogram import predict_risk
from cementleak_stats.spec import load_spec
from cementleak_stats.study import run_study

try:
    from test_reliability_support import cli, study_copy
except ImportError:  # pragma: no cover
    from tests.test_reliability_support import cli, study_copy

WIDE = {"COLUMNS": "250", "NO_COLOR": "1"}


@pytest.fixture(autouse=True)
def own_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CEMENTLEAK_CACHE_KEY_FILE", str(tmp_path / "key" / "cache-key"))


@pytest.fixture
def analysed(tmp_path: Path):
    """A study folder after `cementleak analyze`: results (with model.json) in _output/results."""
    path = study_copy(tmp_path / "study")
    spec = load_spec(path)
    r = run_study(spec)
    write_results(r, tmp_path / "study" / "_output" / "results", figures=False)
    return spec, r, tmp_path / "study"


def _patient(r) -> dict[str, object]:
    out: dict[str, object] = {}
    for name in r.model.variables:
        var = r.spec.variable(name)
        if var.kind == "continuous":
            out[name] = float(r.nomogram.points.loc[r.nomogram.points["predictor"] == name, "value"].astype(float).median())
        else:
            out[name] = var.levels[-1]
    return out


def _args(patient: dict[str, object]) -> list[str]:
    return [f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in patient.items()]


def _no_analysis(*a, **k):
    raise AssertionError("predict ran the analysis although a current model file exists")


def test_model_file_documents_the_model_and_scores_as_predict_risk(analysed) -> None:
    spec, r, root = analysed
    path = root / "_output" / "results" / MODEL_FILE
    data = read_model_file(path)
    assert model_is_current(data, spec)
    assert {"format", "format_version", "study", "inputs", "provenance", "outcome", "model", "predictors",
            "study_variables", "nomogram", "cohorts"} <= set(data)
    assert [t["term"] for t in data["model"]["terms"]] == list(r.model.coef.index)
    assert data["model"]["baseline_survival_at_horizon"] == r.model.baseline_survival()
    # S0 at every horizon, shortest first: the survivals of the nomogram's risk axes, the main one among them
    perf = r.assessment.development.performance.baseline_survival.sort_values("horizon")
    assert data["model"]["baseline_survival_at_horizons"] == [{"horizon": h, "survival": s} for h, s in zip(perf["horizon"], perf["s0"])]
    assert {"horizon": r.spec.outcome.horizon, "survival": r.model.baseline_survival()} in data["model"]["baseline_survival_at_horizons"]
    assert data["inputs"]["files"] == {"cohort.csv": r.provenance.data_sha256["cohort.csv"]}
    patient = _patient(r)
    want = predict_risk(spec, r.nomogram, patient)
    got = score_patient(data, patient_values(data, patient))  # what predict computes from the file
    for a, b in ((got.lp, want.lp), (got.risk, want.risk), (got.total_points, want.total_points)):
        assert math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-12)
    assert [p for *_, p in got.points] == pytest.approx(want.points["points"].tolist(), rel=1e-12, abs=1e-12)
    from cementleak_stats import presentation  # noqa: F401 - before assessment_report, which it imports
    from cementleak_stats.assessment_report import nomogram_horizons

    axes = nomogram_horizons(r)  # the risk by every horizon, as the nomogram's risk axes read it
    assert [h for h, _ in got.risks] == [h for h, _, _ in axes]
    for (_, risk), (_, nomogram, _) in zip(got.risks, axes):
        assert math.isclose(risk, float(nomogram.risk_from_points(want.total_points)), rel_tol=1e-12, abs_tol=1e-15)
    # the documented formula, by hand from the JSON alone (what another tool would do)
    m = data["model"]
    x = {t["term"]: (float(patient[t["variable"]]) if t["level"] is None and spec.variable(t["variable"]).kind == "continuous"
                     else float(spec.variable(t["variable"]).levels.index(patient[t["variable"]]))
                     if t["level"] is None else float(patient[t["variable"]] == t["level"])) for t in m["terms"]}
    lp = sum(t["coef"] * x[t["term"]] for t in m["terms"]) - m["centre"]
    assert math.isclose(lp, want.lp, rel_tol=1e-12, abs_tol=1e-12)
    assert math.isclose(1 - math.exp(-m["baseline_cumhaz_at_horizon"]) ** math.exp(lp), want.risk, rel_tol=1e-12)


def test_predict_prints_only_the_prediction_from_the_model_file(analysed, monkeypatch) -> None:
    spec, r, root = analysed
    monkeypatch.chdir(root)
    monkeypatch.setattr(study_module, "run_study", _no_analysis)
    patient = _patient(r)
    res = CliRunner().invoke(app, ["predict", *_args(patient)], env=WIDE)
    assert res.exit_code == 0, res.output
    out = res.output
    assert "warning" not in out.lower() and "Nothing was written" not in out and "input files" not in out
    want = predict_risk(spec, r.nomogram, patient)
    assert f"{100 * want.risk:.1f}%" in out and f"linear predictor {want.lp:.4f}" in out
    lines = [ln for ln in out.splitlines() if ln.strip()]
    assert lines[0].strip().startswith("Predicted risk of") and lines[-1].startswith("SYNTHETIC DATA")
    as_json = CliRunner().invoke(app, ["predict", *_args(patient), "--json"], env=WIDE)
    got = json.loads(as_json.output)
    assert math.isclose(got["risk"], want.risk, rel_tol=1e-12) and got["model_file"] == str(Path("_output") / "results" / MODEL_FILE)
    # every horizon of the study (this one: 6 and 12 months), in the JSON and in the text
    horizons = sorted(spec.outcome.all_horizons)
    assert [x["horizon"] for x in got["risks"]] == horizons and len(horizons) > 1
    assert math.isclose(got["risks"][horizons.index(spec.outcome.horizon)]["risk"], want.risk, rel_tol=1e-12)
    assert "Risk by each horizon: " + "; ".join(f"{h:g} {spec.outcome.time_unit} {100 * x['risk']:.1f}%"
                                                for h, x in zip(horizons, got["risks"])) in out


def test_predict_uses_the_cache_when_the_model_file_is_stale(analysed, monkeypatch) -> None:
    """Data edited after analyze: the model file is not current; the analysis (cached) gives the model."""
    spec, r, root = analysed
    cohort = pd.read_csv(root / "cohort.csv")
    cohort.loc[0, "bmi_kg_m2"] = cohort.loc[0, "bmi_kg_m2"] + 0.1  # not a predictor: same model, new hash
    cohort.to_csv(root / "cohort.csv", index=False, lineterminator="\n")
    assert not model_is_current(read_model_file(root / "_output" / "results" / MODEL_FILE), spec)
    # the code's digest is in the cache key: held fixed, so that an edit of the package's source
    # elsewhere (a shared working tree) cannot make the entry stale between these two calls
    from cementleak_stats import provenance

    monkeypatch.setattr(provenance, "code_digest", lambda: "held-fixed")
    run_study(spec)  # the cache entry for the new data
    calls: list[int] = []
    real = study_module.compute_study
    monkeypatch.setattr(study_module, "compute_study", lambda *a, **k: calls.append(1) or real(*a, **k))
    monkeypatch.chdir(root)
    res = CliRunner().invoke(app, ["predict", *_args(_patient(r))], env=WIDE)
    assert res.exit_code == 0, res.output
    assert calls == [], "predict recomputed although a cached analysis exists\n" + res.output
    assert "warning" not in res.output.lower() and "Risk by" in res.output
    assert "cohort.csv changed since the model was fitted" in " ".join(res.output.split())  # says why not the file


def test_predict_in_a_new_process_prints_no_warnings(analysed) -> None:
    spec, r, root = analysed
    proc = cli("predict", *_args(_patient(r)), cwd=root)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == "" and "warning" not in proc.stdout.lower() and "Nothing was written" not in proc.stdout
    assert "Risk by" in proc.stdout


def test_model_file_of_another_study_file_is_refused(analysed, tmp_path: Path) -> None:
    spec, r, root = analysed
    other = study_copy(tmp_path / "other", analysis={"seed": 99})
    res = CliRunner().invoke(app, ["predict", *_args(_patient(r)), "--study", str(other), "--model",
                                   str(root / "_output" / "results" / MODEL_FILE)], env=WIDE)
    assert res.exit_code == EXIT_INPUT_ERROR
    flat = " ".join(res.output.split())
    assert "fitted with another study file" in flat and "model.json" in flat and "Traceback" not in res.output
    bad = tmp_path / "not-a-model.json"
    bad.write_text('{"a": 1}')
    res = CliRunner().invoke(app, ["predict", *_args(_patient(r)), "--study", str(root / "study.yaml"), "--model", str(bad)],
                             env=WIDE)
    assert res.exit_code == EXIT_INPUT_ERROR and "not a cementleak model file" in " ".join(res.output.split())
