"""``cementleak --help`` and ``predict`` pay only for what they use; the model file is the one source (issue 16).

* Every ``--help`` and ``predict`` with a current model file run in a new process (as a user
  runs them) that then reports which modules it imported: none of the analysis stack (pandas,
  NumPy, SciPy, lifelines, matplotlib, ...).  Checked on ``sys.modules``, not on a clock.
* ``predict`` scores from ``model.json`` alone: the same numbers as
  :func:`~cementleak_stats.nomogram.predict_risk` on the analysis, by the documented formula
  (:mod:`cementleak_stats.model_file`), and the calculator's page model is the file's.
* The model file validates against its JSON Schema (``model_file.schema.json``).
* The time ratio (predict against importing pandas alone, same run) only on a quiet machine
  (``CEMENTLEAK_TIMING=1``).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from cementleak_stats.calculator import calculator_html
from cementleak_stats.cli import app
from cementleak_stats.export import write_results
from cementleak_stats.model_file import (
    MODEL_FILE,
    REQUIRED_KEYS,
    SCHEMA_FILE,
    patient_values,
    read_model_file,
    score_patient,
)
from cementleak_stats.nomogram import predict_risk
from cementleak_stats.spec import load_spec
from cementleak_stats.study import StudyResults, run_study

try:
    from test_reliability_support import study_copy
except ImportError:  # pragma: no cover
    from tests.test_reliability_support import study_copy

#: the analysis stack: a light command imports none of it
HEAVY = ("pandas", "numpy", "scipy", "lifelines", "matplotlib", "statsmodels", "sklearn", "sksurv", "pandera",
         "tableone", "joblib")

_PROBE = """
import json, sys
heavy = json.loads(sys.argv[2])
sys.argv = ["cementleak", *json.loads(sys.argv[1])]
from cementleak_stats.cli import app
code = 0
try:
    app()
except SystemExit as exc:
    code = exc.code or 0
sys.stderr.write("\\nIMPORTED-HEAVY=" + json.dumps(sorted(m for m in heavy if m in sys.modules)) + "\\n")
sys.exit(code)
"""


def run_probe(args: list[str], cwd: Path) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    """``cementleak ARGS`` in a new process; its result and the heavy modules it imported."""
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "200", "TERM": "dumb"}
    proc = subprocess.run([sys.executable, "-c", _PROBE, json.dumps(args), json.dumps(HEAVY)],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    marker = [ln for ln in proc.stderr.splitlines() if ln.startswith("IMPORTED-HEAVY=")]
    assert marker, proc.stderr
    return proc, json.loads(marker[-1].split("=", 1)[1])


@pytest.fixture(scope="module")
def analysed(tmp_path_factory: pytest.TempPathFactory):
    """A study folder after `cementleak analyze` (tables and model.json in _output/results)."""
    root = tmp_path_factory.mktemp("light")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CEMENTLEAK_CACHE_KEY_FILE", str(root / "key" / "cache-key"))
        path = study_copy(root / "study")
        r = run_study(load_spec(path))
        write_results(r, root / "study" / "_output" / "results", figures=False)
    return r, root / "study"


def a_patient(r: StudyResults, rng: np.random.Generator | None = None) -> dict[str, object]:
    """Median axis values and last levels, or (with ``rng``) values drawn within the axes."""
    out: dict[str, object] = {}
    for name in r.model.variables:
        var = r.spec.variable(name)
        if var.kind == "continuous":
            axis = r.nomogram.points.loc[r.nomogram.points["predictor"] == name, "value"].astype(float)
            out[name] = float(axis.median()) if rng is None else float(rng.uniform(axis.min(), axis.max()))
        else:
            out[name] = var.levels[-1] if rng is None else str(rng.choice(var.levels))
    return out


def _args(patient: dict[str, object]) -> list[str]:
    return [f"{k}={v!r}" if isinstance(v, float) else f"{k}={v}" for k, v in patient.items()]


COMMANDS = sorted(c.name or c.callback.__name__ for c in app.registered_commands)


@pytest.mark.parametrize("args", [["--help"], *[[c, "--help"] for c in COMMANDS]], ids=lambda a: " ".join(a))
def test_help_imports_no_analysis_stack(args: list[str]) -> None:
    proc, heavy = run_probe(args, cwd=Path.cwd())
    assert proc.returncode == 0, proc.stderr
    assert "Usage: cementleak" in proc.stdout
    assert heavy == [], f"`cementleak {' '.join(args)}` imported {heavy}"


def test_predict_from_the_model_file_imports_no_analysis_stack_and_names_its_model(analysed) -> None:
    r, root = analysed
    patient = a_patient(r)
    proc, heavy = run_probe(["predict", *_args(patient)], cwd=root)
    assert proc.returncode == 0, proc.stderr
    assert heavy == [], f"predict imported {heavy}"
    out = " ".join(proc.stdout.split())
    want = predict_risk(r.spec, r.nomogram, patient)
    assert f"{100 * want.risk:.1f}%" in out and f"linear predictor {want.lp:.4f}" in out
    assert f"Model: {Path('_output') / 'results' / MODEL_FILE}, fitted with study.yaml" in out
    assert f"to {len(r.analysed)} patients" in out
    proc, heavy = run_probe(["predict", *_args(patient), "--json"], cwd=root)
    got = json.loads(proc.stdout)
    assert heavy == [] and got["study_file"] == "study.yaml" and got["model_file"].endswith(MODEL_FILE)
    assert math.isclose(got["risk"], want.risk, rel_tol=1e-12) and math.isclose(got["lp"], want.lp, rel_tol=1e-12, abs_tol=1e-12)


def test_bad_values_are_refused_with_field_rule_and_fix_without_the_analysis_stack(analysed) -> None:
    r, root = analysed
    patient = {f"{k}x" if i == 0 else k: v for i, (k, v) in enumerate(a_patient(r).items())}  # a typo in the first name
    typo = next(iter(patient))
    categorical = next(n for n in r.model.variables if r.spec.variable(n).kind != "continuous")
    patient[categorical] = "not-a-level"
    proc, heavy = run_probe(["predict", *_args(patient)], cwd=root)
    assert proc.returncode == 2 and heavy == []
    err = " ".join(proc.stderr.split())
    assert "Traceback" not in proc.stderr and "Cannot score this patient" in err
    assert f"command line: column '{typo}': not a variable of the study — fix: did you mean {typo[:-1]}?" in err
    assert f"column '{typo[:-1]}'" in err and f"add {typo[:-1]}=<" in err  # missing, with what to add
    assert f"column '{categorical}': value 'not-a-level': unknown level" in err


def test_model_file_follows_its_schema(analysed) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    r, root = analysed
    data = read_model_file(root / "_output" / "results" / MODEL_FILE)
    schema = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.validate(data, schema, cls=jsonschema.Draft202012Validator)
    assert data["format_version"] == schema["properties"]["format_version"]["const"]
    assert set(schema["required"]) == set(REQUIRED_KEYS) == set(data)  # the schema, the reader and the file agree
    doc = (Path(__file__).resolve().parents[1] / "docs" / "results-files.md").read_text(encoding="utf-8")
    section = doc.split("## `model.json`", 1)[1].split("\n## ", 1)[0]
    documented = {k for row in section.splitlines() if row.startswith("| `") for k in re.findall(r"`(\w+)`", row.split("|")[1])}
    assert documented == set(REQUIRED_KEYS), "docs/results-files.md documents every top-level key of model.json"


def test_model_file_scores_as_predict_risk(analysed) -> None:
    """The documented formula on the file alone equals predict_risk on the analysis (1e-12), for many patients."""
    r, root = analysed
    data = read_model_file(root / "_output" / "results" / MODEL_FILE)
    rng = np.random.default_rng(16)
    for patient in [a_patient(r), *(a_patient(r, rng) for _ in range(200))]:
        want = predict_risk(r.spec, r.nomogram, patient)
        got = score_patient(data, patient_values(data, patient))
        assert math.isclose(got.lp, want.lp, rel_tol=1e-12, abs_tol=1e-12)
        assert math.isclose(got.risk, want.risk, rel_tol=1e-12, abs_tol=1e-15)
        assert math.isclose(got.total_points, want.total_points, rel_tol=1e-12, abs_tol=1e-9)
        assert [p for *_, p in got.points] == pytest.approx(want.points["points"].tolist(), rel=1e-12, abs=1e-9)


def test_model_file_scores_the_shipped_patients_as_r(analysed) -> None:
    """Every patient of the shipped cohort scored from model.json alone: the linear predictor and the
    12-month risk of R.

    # R rms 6.5 / survival 3.5 (tests/reference/rms_shipped.R, rms_common.R):
    #   fit <- cph(Surv(t, e) ~ ..., x = TRUE, y = TRUE, surv = TRUE, time.inc = u, eps = 1e-12)
    #   lp  <- fit$linear.predictors       (centred, as predict(fit, type = "lp"))
    #   S   <- Survival(fit); s0 <- S(u, 0)  -> risk = 1 - s0 ^ exp(lp)
    """
    r, root = analysed
    ref = json.loads((Path(__file__).with_name("reference") / "rms_shipped.json").read_text(encoding="utf-8"))["cox"]
    data = read_model_file(root / "_output" / "results" / MODEL_FILE)
    assert len(r.analysed) == len(ref["lp"])
    rows = r.analysed[list(r.model.variables)].astype(str).to_dict("records")  # as typed: text
    got = [score_patient(data, patient_values(data, row)) for row in rows]
    np.testing.assert_allclose([g.lp for g in got], ref["lp"], rtol=1e-6, atol=1e-9)
    risk_r = 1 - ref["s0_u"] ** np.exp(np.asarray(ref["lp"]))
    np.testing.assert_allclose([g.risk for g in got], risk_r, rtol=1e-7, atol=1e-10)
    assert data["model"]["centre"] == pytest.approx(ref["center"], rel=1e-7)
    assert data["model"]["baseline_survival_at_horizon"] == pytest.approx(ref["s0_u"], abs=1e-8)


def test_a_file_of_patients_scores_as_each_patient_typed_on_the_command_line(analysed, tmp_path: Path) -> None:
    """Batch scoring (predict --input) and predict for one patient: the same bits, from the same model file."""
    from cementleak_stats.scoring import score_file

    r, root = analysed
    data = read_model_file(root / "_output" / "results" / MODEL_FILE)
    rows = r.analysed[list(r.model.variables)].astype(str)
    rows.to_csv(tmp_path / "new.csv", index=False)
    batch = score_file(r.spec, data, tmp_path / "new.csv").scores
    assert batch["scored"].all() and len(batch) == len(rows)
    for (_, row), (_, got) in zip(rows.iterrows(), batch.iterrows()):
        one = score_patient(data, patient_values(data, row.to_dict()))
        assert (got["lp"], got["risk_at_horizon"], got["total_points"]) == (one.lp, one.risk, one.total_points)
        assert [got[f"points_{name}"] for name, *_ in one.points] == [p for *_, p in one.points]


def test_calculator_page_model_is_the_model_file(analysed) -> None:
    from bs4 import BeautifulSoup

    r, root = analysed
    data = read_model_file(root / "_output" / "results" / MODEL_FILE)
    page = json.loads(BeautifulSoup(calculator_html(r), "html.parser").find(id="cl-model").text)
    assert page["predictors"] == data["predictors"] and page["cohorts"] == data["cohorts"]
    assert (page["scale"], page["intercept"], page["s0"]) == (data["nomogram"]["scale"], data["nomogram"]["intercept"],
                                                             data["model"]["baseline_survival_at_horizon"])


def _fastest(cmd: list[str], cwd: Path, n: int = 3) -> float:
    best = math.inf
    for _ in range(n):
        t0 = time.perf_counter()
        subprocess.run(cmd, cwd=cwd, capture_output=True, check=True, timeout=300)
        best = min(best, time.perf_counter() - t0)
    return best


@pytest.mark.skipif(not os.environ.get("CEMENTLEAK_TIMING"), reason="a timing ratio is measured on a quiet machine: set CEMENTLEAK_TIMING=1")
def test_predict_takes_less_than_importing_pandas(analysed) -> None:
    r, root = analysed
    predict = _fastest([sys.executable, "-m", "cementleak_stats.cli", "predict", *_args(a_patient(r))], root)
    pandas = _fastest([sys.executable, "-c", "import pandas"], root)
    print(f"predict {predict:.2f} s, `import pandas` alone {pandas:.2f} s, ratio {predict / pandas:.2f}")
    assert predict < pandas


# --- the reader and the checks on small hand-made files (no analysis) ---------------------------
def _tiny_model() -> dict:
    """A two-predictor model by hand: a number (axis 0-10, study range 1-20) and a nominal factor (dummy terms)."""
    return {
        "format": "cementleak-model", "format_version": 2,
        "study": {"title": "t", "file": "study.yaml", "sha256": "0" * 64, "synthetic": True},
        "inputs": {"study_sha256": "0" * 64, "files": {}, "code": "x"}, "provenance": {},
        "outcome": {"event": "e", "event_label": "Event", "time_unit": "days", "horizon": 30.0},
        "model": {"variables": ["dose", "site"], "centre": 0.7, "baseline_survival_at_horizon": 0.9,
                  "baseline_cumhaz_at_horizon": -math.log(0.9), "penalizer": 0.0, "terms": []},
        "predictors": [
            {"name": "dose", "label": "Dose", "unit": "mg", "kind": "continuous", "coding": "score", "min": 0.0, "max": 10.0,
             "range": [1.0, 20.0], "terms": [{"term": "dose", "level": None, "coef": 0.2}], "min_contribution": 0.0},
            {"name": "site", "label": "Site", "unit": "", "kind": "nominal", "coding": "score", "levels": ["a", "b", "c"],
             "aliases": {"B": "b"}, "terms": [{"term": "site[b]", "level": "b", "coef": 0.5},
                                              {"term": "site[c]", "level": "c", "coef": -0.3}], "min_contribution": -0.3}],
        "study_variables": ["dose", "site", "age"], "nomogram": {"scale": 40.0, "intercept": -1.0, "points": []},
        "cohorts": {},
    }


def test_patient_values_use_aliases_both_ranges_and_ignore_other_study_variables() -> None:
    from cementleak_stats.errors import InputError

    m = _tiny_model()
    assert patient_values(m, {"dose": "2.5", "site": "B", "age": "70"}) == {"dose": 2.5, "site": "b"}
    with pytest.raises(InputError) as exc:
        patient_values(m, {"dose": "0.5", "sit": "a"}, file="command line")  # 0.5: on the axis, below the study's range
    got = {(p.column, p.rule): p for p in exc.value.problems}
    assert got[("dose", "Dose is outside the range the nomogram covers")].fix == "enter a value from 1 to 10 mg"
    assert got[("sit", "not a variable of the study")].fix.startswith("did you mean site?")
    assert got[("site", "Site is missing")].fix == "every predictor of the model needs a value: add site=<one of ['a', 'b', 'c']>"
    assert all(p.file == "command line" for p in exc.value.problems)


def test_score_patient_is_the_documented_formula() -> None:
    m = _tiny_model()
    s = score_patient(m, {"dose": 3.0, "site": "c"})
    contributions = [0.2 * 3.0, -0.3]  # dummy coding: the term of level c
    assert [c for _, _, c, _ in s.points] == pytest.approx(contributions)
    assert [p for *_, p in s.points] == pytest.approx([(0.6 - 0.0) * 40, (-0.3 + 0.3) * 40])
    assert s.lp == pytest.approx(sum(contributions) - 0.7) and s.risk == pytest.approx(1 - 0.9 ** math.exp(s.lp))
    assert s.horizon == 30.0


def test_model_file_problems_name_the_file_and_the_fix(tmp_path: Path) -> None:
    from cementleak_stats.errors import InputError
    from cementleak_stats.model_file import changed_inputs, find_model_file

    cases = {"missing.json": (None, "no such file"), "bad.json": ("{", "not a readable JSON file"),
             "other.json": ('{"a": 1}', "not a cementleak model file"),
             "old.json": ('{"format": "cementleak-model", "format_version": 1}', "model file format 1; this version of "
                                                                               "cementleak reads format 2"),
             "short.json": ('{"format": "cementleak-model", "format_version": 2}', "the model file lacks")}
    for name, (text, rule) in cases.items():
        if text is not None:
            (tmp_path / name).write_text(text, encoding="utf-8")
        with pytest.raises(InputError) as exc:
            read_model_file(tmp_path / name)
        (p,) = exc.value.problems
        assert p.file.endswith(name) and rule in p.rule and "cementleak analyze" in p.fix, (name, p)
    # fitted from a study file and a data file: a changed or missing data file makes it stale
    study, data = tmp_path / "study.yaml", tmp_path / "data" / "c.csv"
    data.parent.mkdir()
    study.write_text("study: x\n")
    data.write_text("a\n1\n")
    m = _tiny_model()
    m["study"]["sha256"] = hashlib.sha256(study.read_bytes()).hexdigest()
    m["inputs"]["files"] = {"data/c.csv": hashlib.sha256(data.read_bytes()).hexdigest()}
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / MODEL_FILE).write_text(json.dumps(m), encoding="utf-8")
    assert changed_inputs(m, study) == []
    assert find_model_file(study, model=None, results_dir=tmp_path / "results")[1] == str(tmp_path / "results" / MODEL_FILE)
    data.write_text("a\n2\n")
    assert changed_inputs(m, study) == ["data/c.csv changed since the model was fitted"]
    assert find_model_file(study, model=None, results_dir=tmp_path / "results")[0] is None
    data.unlink()
    assert changed_inputs(m, study) == ["data/c.csv is missing"]
    # --model: the data are not needed, but the study file must be the one it was fitted with
    assert find_model_file(study, model=tmp_path / "results" / MODEL_FILE, results_dir=None)[0] == m
    study.write_text("study: y\n")
    with pytest.raises(InputError) as exc:
        find_model_file(study, model=tmp_path / "results" / MODEL_FILE, results_dir=None)
    assert "fitted with another study file" in exc.value.problems[0].rule


def test_a_model_file_without_every_horizon_gives_the_main_one() -> None:
    from cementleak_stats.model_file import horizon_survival, page_model

    m = _tiny_model()  # as written before the survival at every horizon was added
    assert horizon_survival(m) == [{"horizon": 30.0, "survival": 0.9}]
    m["model"]["baseline_survival_at_horizons"] = [{"horizon": 7.0, "survival": 0.97}, {"horizon": 30.0, "survival": 0.9}]
    assert page_model(m)["horizons"] == m["model"]["baseline_survival_at_horizons"]


@pytest.mark.parametrize("bad", [[], [{"horizon": 6}], [{"horizon": 0, "survival": 0.9}], [{"horizon": 6, "survival": 1.5}],
                                 [{"horizon": 6, "survival": "0.9"}], {"horizon": 6, "survival": 0.9}])
def test_a_malformed_survival_by_horizon_is_refused_naming_the_file(tmp_path, bad) -> None:
    from cementleak_stats.errors import InputError

    m = _tiny_model()
    m["model"]["baseline_survival_at_horizons"] = bad
    f = tmp_path / "model.json"
    f.write_text(json.dumps(m), encoding="utf-8")
    with pytest.raises(InputError) as exc:
        read_model_file(f)
    (p,) = exc.value.problems
    assert p.file == str(f) and "baseline_survival_at_horizons" in p.rule
    m["model"]["baseline_survival_at_horizons"] = [{"horizon": 30, "survival": 0.9}]
    f.write_text(json.dumps(m), encoding="utf-8")
    assert read_model_file(f)["model"]["baseline_survival_at_horizons"] == [{"horizon": 30, "survival": 0.9}]


def test_a_horizon_of_one_unit_is_singular_in_predict_the_calculator_and_the_report() -> None:
    # GBSG-2's calculator said "1 years"
    from cementleak_stats.calculator import _horizon
    from cementleak_stats.model_file import horizon_label

    assert horizon_label(1.0, "years") == "1 year" and horizon_label(5.0, "years") == "5 years"
    assert horizon_label(6.0, "months") == "6 months" and horizon_label(1.5, "years") == "1.5 years"
    assert _horizon(1.0, "years") == "1 year" and _horizon(12.0, "months") == "12 months"
