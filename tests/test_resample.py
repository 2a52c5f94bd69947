"""The bootstrap engine (validation/resample.py) and Cox validation indices (validation/indices.py).

R references (``tests/reference/rms_common.R``, run by ``rms_reference.R`` and
``rms_shipped.R``; R 4.2, rms 6.5, survival 3.5):

* ``rms_fixture.json`` — a simulated cohort (tests/reference/data/rms_cohort.csv, 120 patients,
  whole-month times with many ties, a 3-level factor), model of 7 predictors;
* ``rms_shipped.json`` — the shipped synthetic cohort data/cohort.csv and the model the study's
  screen selects.

This module also holds :func:`rms_case`, the loader test_nomogram.py and test_calibration.py use.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cementleak_stats.cohort.io import load_study_data
from cementleak_stats.errors import AnalysisError
from cementleak_stats.models.cox import CoxModel, fit_cox_model, univariable_screen
from cementleak_stats.spec import StudySpec, load_spec
from cementleak_stats.validation.discrimination import harrell_c
from cementleak_stats.validation.indices import INDEX_NAMES, concordance_batch, cox_indices, gini_md_batch, validate_cox
from cementleak_stats.validation.resample import (
    bootstrap_optimism,
    cox_data,
    cox_fit_fn,
    draw_bootstrap_counts,
    make_screening_fit_fn,
)

REPO = Path(__file__).resolve().parents[1]
REF = REPO / "tests" / "reference"
#: case -> (study file, R reference)
CASES = {"fixture": ("tests/reference/data/rms_study.yaml", "rms_fixture.json"),
         "shipped": ("study.yaml", "rms_shipped.json")}
#: Monte-Carlo tolerance: |ours - R| <= MC_Z * sqrt(se_ours^2 + se_R^2)
MC_Z = 3.0


@dataclass(frozen=True)
class RmsCase:
    name: str
    spec: StudySpec
    cohort: pd.DataFrame
    model: CoxModel
    ref: dict


@cache
def rms_case(name: str) -> RmsCase:
    """Study, validated cohort (package loader), model fitted as the R reference, R numbers."""
    study, ref_file = CASES[name]
    ref = json.loads((REF / ref_file).read_text())
    spec = load_spec(REPO / study)
    spec = spec.model_copy(update={"repeated": None})
    if "data" in ref:
        path = REPO / ref["data"]["file"]
        if hashlib.md5(path.read_bytes()).hexdigest() != ref["data"]["md5"]:
            pytest.fail(f"{path} changed after its R reference was made: rerun `Rscript tests/reference/rms_shipped.R`")
    cohort = load_study_data(spec).cohort
    variables = ref["data"]["variables"] if "data" in ref else list(spec.analysis.predictors)
    return RmsCase(name, spec, cohort, fit_cox_model(spec, cohort, variables), ref)


def mc_close(ours: np.ndarray, ours_se: np.ndarray, r_mean: list, r_se: list) -> np.ndarray:
    """|ours - R| in units of the combined Monte-Carlo standard error."""
    return np.abs(np.asarray(ours) - np.asarray(r_mean)) / np.hypot(ours_se, r_se)


def replicate_counts(case: RmsCase, rep: dict) -> np.ndarray:
    """Case counts of R's bootstrap sample (1-based row numbers)."""
    return np.bincount(np.asarray(rep["index"]) - 1, minlength=len(case.cohort))[None, :].astype(float)


# --- the engine ----------------------------------------------------------------------------
@dataclass(frozen=True)
class _MeanFits:
    mean: np.ndarray
    ok: np.ndarray


def _mean_fit(data: np.ndarray, counts: np.ndarray) -> _MeanFits:
    """Toy model: the weighted mean; fails when the replicate has fewer than 3 distinct rows."""
    return _MeanFits(mean=counts @ data / counts.sum(axis=1), ok=(counts > 0).sum(axis=1) >= 3)


def _mean_measure(fits: _MeanFits, data: np.ndarray, counts: np.ndarray, *, training: bool) -> np.ndarray:
    """Index: minus the weighted mean squared error of the fitted mean."""
    return -(counts * (data[None, :] - fits.mean[:, None]) ** 2).sum(axis=1, keepdims=True) / counts.sum(axis=1, keepdims=True)


def test_counts_are_bootstrap_samples():
    c = draw_bootstrap_counts(7, 500, np.random.default_rng(1))
    assert c.shape == (500, 7) and np.all(c.sum(axis=1) == 7) and np.all(c >= 0)
    assert np.array_equal(c, draw_bootstrap_counts(7, 500, np.random.default_rng(1)))
    # each row is drawn with probability 1/n per draw: E[count] = 1
    assert abs(c.mean() - 1) < 0.05


def test_engine_equals_a_plain_loop_and_counts_failures():
    data = np.array([1.0, 2.0, 4.0, 8.0, 3.0])
    res = bootstrap_optimism(_mean_fit, _mean_measure, data, n_boot=400, rng=np.random.default_rng(3), names=["neg_mse"],
                             chunk_size=37)
    # the same replicates, one at a time, written out independently
    counts = draw_bootstrap_counts(len(data), 400, np.random.default_rng(3))
    diffs = []
    n_failed = 0
    for c in counts:
        rows = np.repeat(data, c.astype(int))
        if np.unique(rows).size < 3:
            n_failed += 1
            continue
        m = rows.mean()
        diffs.append(-np.mean((rows - m) ** 2) + np.mean((data - m) ** 2))
    apparent = -np.mean((data - data.mean()) ** 2)
    assert res.n_failed == n_failed > 0
    assert res.n_used[0] == 400 - n_failed
    assert res.apparent[0] == pytest.approx(apparent)
    assert res.optimism[0] == pytest.approx(np.mean(diffs), rel=1e-12)
    assert res.corrected[0] == pytest.approx(apparent - np.mean(diffs), rel=1e-12)
    assert res.optimism_se[0] == pytest.approx(np.std(diffs, ddof=1) / np.sqrt(len(diffs)), rel=1e-10)
    assert res.optimism[0] > 0  # the training error is optimistic
    tab = res.table()
    assert list(tab.columns) == ["index", "apparent", "training", "test", "optimism", "optimism_se", "corrected",
                                 "n_used", "n_boot", "n_failed"]


def test_engine_same_result_in_parallel_and_reports_progress():
    data = np.arange(12.0) ** 1.5
    seen = []
    one = bootstrap_optimism(_mean_fit, _mean_measure, data, n_boot=300, rng=np.random.default_rng(8), chunk_size=50)
    two = bootstrap_optimism(_mean_fit, _mean_measure, data, n_boot=300, rng=np.random.default_rng(8), chunk_size=50,
                             n_jobs=2, progress=lambda done, total: seen.append((done, total)))
    np.testing.assert_array_equal(one.training, two.training)
    np.testing.assert_array_equal(one.test, two.test)
    assert seen[0] == (0, 300) and seen[-1] == (300, 300) and len(seen) == 7
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)


def test_engine_refuses_a_model_that_cannot_be_fitted():
    with pytest.raises(AnalysisError):
        bootstrap_optimism(_mean_fit, _mean_measure, np.array([1.0, 1.0]), n_boot=5, rng=np.random.default_rng(0))
    with pytest.raises(ValueError):
        bootstrap_optimism(_mean_fit, _mean_measure, np.arange(5.0), n_boot=5, rng=np.random.default_rng(0),
                           counts=np.ones((4, 5)))


# --- batched indices -------------------------------------------------------------------------
def test_weighted_concordance_equals_harrell_c_on_duplicated_rows():
    case = rms_case("fixture")
    time = case.cohort[case.spec.outcome.time].to_numpy(float)
    event = case.cohort[case.spec.outcome.event].to_numpy()
    rng = np.random.default_rng(4)
    counts = draw_bootstrap_counts(len(time), 6, rng)
    score = np.round(rng.normal(size=(6, len(time))), 1)  # tied scores too
    got = concordance_batch(time, event, score, counts)
    for b in range(6):
        k = counts[b].astype(int)
        want = harrell_c(np.repeat(time, k), np.repeat(event, k), np.repeat(score[b], k), variance=False).estimate
        assert got[b] == pytest.approx(want, abs=1e-12)


def test_gini_mean_difference_by_pairs():
    rng = np.random.default_rng(2)
    x = np.round(rng.normal(size=(4, 30)), 1)
    counts = draw_bootstrap_counts(30, 4, rng)
    got = gini_md_batch(x, counts)
    for b in range(4):
        rows = np.repeat(x[b], counts[b].astype(int))
        n = rows.size
        assert got[b] == pytest.approx(np.abs(rows[:, None] - rows[None, :]).sum() / (n * (n - 1)), rel=1e-12)


# --- validate_cox against rms ------------------------------------------------------------------
@pytest.mark.parametrize("name", list(CASES))
def test_apparent_indices_equal_rms(name):
    case = rms_case(name)
    v = validate_cox(case.spec, case.model, case.cohort, n_boot=0, rng=np.random.default_rng(0)).set_index("index")
    ref = case.ref["validate"]
    for i, idx in enumerate(ref["index"]):
        # R rms 6.5: validate(cph(..., x=TRUE, y=TRUE), B)[, "index.orig"]
        assert v.loc[idx, "apparent"] == pytest.approx(ref["apparent"][i], rel=1e-6, abs=1e-9), idx
    # R rms 6.5: dxy.cens(lp, Surv(time, ev), type = "hazard")
    assert v.loc["Dxy", "apparent"] == pytest.approx(case.ref["dxy"]["dxy"], abs=1e-9)
    assert v.loc["C", "apparent"] == pytest.approx((1 + case.ref["dxy"]["dxy"]) / 2, abs=1e-9)


@pytest.mark.parametrize("name", list(CASES))
def test_single_replicates_equal_rms(name):
    """Training and test indices of R's own bootstrap samples (validate(fit, B = 1) after set.seed)."""
    case = rms_case(name)
    data = cox_data(case.spec, case.cohort, case.model.variables, init=case.model.coef)
    names = case.ref["validate"]["index"]
    cols = [INDEX_NAMES.index(k) for k in names]
    for rep in case.ref["replicates"]:
        counts = replicate_counts(case, rep)
        fits = cox_fit_fn(data, counts)
        train = cox_indices(fits, data, counts, training=True)[0, cols]
        test = cox_indices(fits, data, np.ones_like(counts), training=False)[0, cols]
        # R rms 6.5: validate(fit, B = 1)[, c("training", "test")]; rms refits with eps = 1e-4
        np.testing.assert_allclose(train, rep["validate_training"], rtol=2e-4, atol=2e-5)
        np.testing.assert_allclose(test, rep["validate_test"], rtol=2e-4, atol=2e-5)


@pytest.mark.parametrize("name", list(CASES))
def test_optimism_agrees_with_rms_within_monte_carlo_error(name):
    case = rms_case(name)
    ref = case.ref["validate"]
    v = validate_cox(case.spec, case.model, case.cohort, n_boot=ref["n_boot"], rng=np.random.default_rng(2025))
    v = v.set_index("index").loc[ref["index"]]
    # rms keeps a separated refit (a huge finite coefficient); we count it as failed: rare here
    assert (v["n_failed"] <= 0.002 * ref["n_boot"]).all()
    assert (v["n_used"] == ref["n_boot"] - v["n_failed"]).all() and ref["n_used"] == ref["n_boot"]
    # R rms 6.5: mean and MC SE of validate(fit, B = 50)[, "optimism"] over the runs (rms_common.R)
    z = mc_close(v["optimism"].to_numpy(), v["optimism_se"].to_numpy(), ref["optimism"]["mean"], ref["optimism"]["se"])
    keep = np.asarray(ref["optimism"]["se"]) > 0  # Slope's training value is 1 by definition
    assert np.all(z[keep] < MC_Z), dict(zip(ref["index"], z))
    # the slope's optimism is 1 - mean test slope: compare the test slope directly
    s = ref["index"].index("Slope")
    assert abs(v["test"].iloc[s] - ref["test"]["mean"][s]) < MC_Z * np.hypot(v["optimism_se"].iloc[s], ref["test"]["se"][s])


def test_validation_table_layout_and_determinism():
    case = rms_case("fixture")
    a = validate_cox(case.spec, case.model, case.cohort, n_boot=60, rng=np.random.default_rng(9))
    b = validate_cox(case.spec, case.model, case.cohort, n_boot=60, rng=np.random.default_rng(9), n_jobs=2)
    assert list(a.columns) == ["method", "index", "apparent", "training", "test", "optimism", "optimism_se", "corrected",
                               "n_used", "n_boot", "n_failed"]
    assert list(a["index"]) == list(INDEX_NAMES)
    pd.testing.assert_frame_equal(a, b)
    assert np.allclose(a["corrected"], a["apparent"] - a["optimism"])


# --- honest validation (screen repeated in every replicate) ---------------------------------------
def _screening_spec(case: RmsCase, p_value: float) -> StudySpec:
    analysis = case.spec.analysis.model_copy(update={"selection": "univariable_screen", "screen_p_value": p_value})
    return case.spec.model_copy(update={"analysis": analysis})


def test_screen_in_a_replicate_selects_what_the_study_screen_selects():
    case = rms_case("fixture")
    spec = _screening_spec(case, 0.05)
    candidates = [v.name for v in spec.candidates]
    data = cox_data(spec, case.cohort, candidates)
    fits = make_screening_fit_fn(0.05)(data, np.ones((1, len(case.cohort))))
    screen = univariable_screen(spec, case.cohort)
    want = screen.groupby("variable", sort=False)["selected"].first()
    assert dict(zip(candidates, fits.selected[0])) == want.loc[candidates].to_dict()
    # the fit on the selected variables equals the lifelines fit on them
    chosen = [v for v, s in zip(candidates, fits.selected[0]) if s]
    model = fit_cox_model(spec, case.cohort, chosen)
    coef = dict(zip(data.terms, fits.coef[0]))
    for term, b in model.coef.items():
        assert coef[term] == pytest.approx(b, rel=1e-6)
    assert all(coef[t] == 0 for t in data.terms if t not in model.coef.index)


def test_honest_equals_standard_when_the_screen_keeps_every_candidate():
    case = rms_case("fixture")
    spec = _screening_spec(case, 1.0)  # every variable passes P < 1
    model = fit_cox_model(spec, case.cohort, [v.name for v in spec.candidates])
    v = validate_cox(spec, model, case.cohort, n_boot=40, rng=np.random.default_rng(1), honest=True)
    std, hon = v[v.method == "standard"].reset_index(drop=True), v[v.method == "honest"].reset_index(drop=True)
    np.testing.assert_allclose(hon["optimism"], std["optimism"], rtol=1e-7, atol=1e-10)


def test_honest_validation_reports_both_and_needs_a_screen():
    case = rms_case("fixture")
    with pytest.raises(ValueError, match="prespecif"):
        validate_cox(case.spec, case.model, case.cohort, n_boot=5, rng=np.random.default_rng(1), honest=True)
    spec = _screening_spec(case, 0.05)
    v = validate_cox(spec, case.model, case.cohort, n_boot=40, rng=np.random.default_rng(1), honest=True)
    assert list(v["method"].unique()) == ["standard", "honest"]
    hon = v[v.method == "honest"].set_index("index")
    std = v[v.method == "standard"].set_index("index")
    pd.testing.assert_series_equal(hon["apparent"], std["apparent"])
    assert np.isfinite(hon["optimism"]).all()
