"""Calibration at the horizon (validation/calibration.py) against R.

References (``tests/reference/rms_common.R``; R 4.2, rms 6.5, Hmisc, riskRegression): the
``calibrate``, ``replicates``, ``smooth``, ``line`` and ``brier`` sections of
``rms_fixture.json`` and ``rms_shipped.json``, and ``rms_knots.json`` (Hmisc knots).
rms reports survival; our frames report risks (1 - survival), so R's groups come in reverse
order and R's optimism changes sign.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import stats

from cementleak_stats.models.cox import fit_cox_model
from cementleak_stats.validation.calibration import (
    brier_score,
    calibrate_km,
    calibrate_smooth,
    calibration_line,
    calibration_summary,
    rcs_knots,
)
from cementleak_stats.validation.calibration import _fit_with_baseline, _km_distance, _model_surv_fits
from cementleak_stats.validation.resample import cox_data, draw_bootstrap_counts
from test_resample import CASES, MC_Z, REF, mc_close, replicate_counts, rms_case


def _km(name: str, n_boot: int, seed: int = 0):
    case = rms_case(name)
    ref = case.ref["calibrate"]
    frame = calibrate_km(case.spec, case.model, case.cohort, m=ref["m"], n_boot=n_boot, rng=np.random.default_rng(seed))
    return case, ref, frame, frame.iloc[::-1].reset_index(drop=True)  # the last in R's order


@pytest.mark.parametrize("name", list(CASES))
def test_km_apparent_equals_rms(name):
    case, ref, frame, r = _km(name, n_boot=0)
    assert list(frame.columns) == ["group", "risk_low", "risk_high", "n", "events", "predicted", "observed", "ci_low",
                                   "ci_high", "optimism", "corrected", "n_used", "n_boot", "n_failed"]
    assert frame["predicted"].is_monotonic_increasing and list(frame["group"]) == list(range(1, len(frame) + 1))
    # R rms 6.5: calibrate(fit, cmethod = "KM", u = 12, m)[, c("mean.predicted", "KM", "index.orig")]
    np.testing.assert_allclose(1 - r["predicted"], ref["mean_predicted"], rtol=1e-7)
    np.testing.assert_allclose(1 - r["observed"], ref["km"], rtol=1e-9)
    np.testing.assert_allclose(r["predicted"] - r["observed"], ref["index_orig"], atol=1e-8)
    # R Hmisc: groupkm(S, Surv, u = 12, cuts)[, c("n", "events")]; cuts = unique(quantile(c(0, 1, S), ...))
    assert r["n"].tolist() == ref["group_n"] and r["events"].tolist() == ref["events"]
    np.testing.assert_allclose(1 - np.r_[r["risk_high"].iloc[0], r["risk_low"]], ref["cuts"], atol=1e-12)
    # groupkm's std.err (Greenwood, of log S) gives the log-scale interval
    z = stats.norm.ppf(1 - case.spec.analysis.alpha / 2)
    km, se = np.asarray(ref["km"]), np.asarray(ref["std_err"])
    np.testing.assert_allclose(r["ci_high"], 1 - km * np.exp(-z * se), rtol=1e-7)
    np.testing.assert_allclose(r["ci_low"], 1 - np.minimum(1, km * np.exp(z * se)), rtol=1e-7, atol=1e-12)


@pytest.mark.parametrize("name", list(CASES))
def test_km_single_replicates_equal_rms(name):
    """R's own bootstrap samples: calibrate(fit, B = 1)[, c("training", "test")] after set.seed."""
    case = rms_case(name)
    data = cox_data(case.spec, case.cohort, case.model.variables, init=case.model.coef)
    surv = _model_surv_fits(data, case.model).survival(data.X)[0]
    measure = _km_distance(np.asarray(case.ref["calibrate"]["cuts"]))
    np.testing.assert_allclose(surv, np.exp(-np.exp(np.log(-np.log(case.ref["cox"]["s0_u"])) + np.asarray(case.ref["cox"]["lp"]))),
                               rtol=1e-9)
    for rep in case.ref["replicates"]:
        counts = replicate_counts(case, rep)
        fits = _fit_with_baseline(data, counts)
        # R rms 6.5 refits with cph's default eps = 1e-4: agreement to ~1e-5
        np.testing.assert_allclose(measure(fits, data, counts, training=True)[0], rep["calibrate_training"], atol=2e-4)
        np.testing.assert_allclose(measure(fits, data, np.ones_like(counts), training=False)[0], rep["calibrate_test"],
                                   atol=2e-4)


@pytest.mark.parametrize("name", list(CASES))
def test_km_optimism_agrees_with_rms_within_monte_carlo_error(name):
    case, ref, frame, r = _km(name, n_boot=2000, seed=44)
    assert (r["n_failed"] <= 4).all()
    # our Monte-Carlo SE of each group's optimism, from the replicates themselves
    data = cox_data(case.spec, case.cohort, case.model.variables, init=case.model.coef)
    counts = draw_bootstrap_counts(len(data), 2000, np.random.default_rng(44))
    fits = _fit_with_baseline(data, counts)
    measure = _km_distance(np.asarray(ref["cuts"]))
    diff = measure(fits, data, counts, training=True) - measure(fits, data, np.ones_like(counts), training=False)
    assert np.nanmean(diff, axis=0) == pytest.approx(-r["optimism"].to_numpy(), rel=1e-12)
    se = np.nanstd(diff, axis=0, ddof=1) / np.sqrt(np.isfinite(diff).sum(axis=0))
    # R rms 6.5: mean and MC SE of calibrate(..., B = 50)[, "mean.optimism"] over the runs
    z = mc_close(-r["optimism"].to_numpy(), se, ref["optimism"]["mean"], ref["optimism"]["se"])
    assert np.all(z < MC_Z), z
    np.testing.assert_allclose(r["corrected"], r["observed"] - r["optimism"], rtol=1e-12)


def test_replicates_with_fewer_than_five_events_are_skipped_and_counted():
    case = rms_case("fixture")
    cohort = case.cohort.copy()
    ev = case.spec.outcome.event
    keep = np.flatnonzero(cohort[ev].to_numpy() == 1)[:7]
    cohort[ev] = 0
    cohort.loc[cohort.index[keep], ev] = 1  # 7 events: many resamples have fewer than 5
    model = fit_cox_model(case.spec, cohort, ["ct_value_hu", "cement_volume_ml"])
    frame = calibrate_km(case.spec, model, cohort, m=40, n_boot=300, rng=np.random.default_rng(6))
    counts = draw_bootstrap_counts(len(cohort), 300, np.random.default_rng(6))
    few = int((counts @ cohort[ev].to_numpy(float) < 5).sum())
    assert few > 20
    assert (frame["n_failed"] == few).all()
    assert (frame["n_used"] <= 300 - few).all()


# --- smooth calibration, calibration line, Brier score -------------------------------------------
@pytest.mark.parametrize("name", list(CASES))
def test_smooth_calibration_equals_austin_code_in_r(name):
    case = rms_case(name)
    ref = case.ref["smooth"]
    sm = calibrate_smooth(case.spec, case.model, case.cohort)
    # R: rcspline.eval(log(-log(S)), nk = 3, knots.only = TRUE);
    # cph(Surv ~ rcs(cll, 3)); 1 - survest(cal, times = 12)$surv (Austin et al. 2020)
    np.testing.assert_allclose(sm.knots, ref["knots"], rtol=1e-9)
    np.testing.assert_allclose(sm.patients["observed"], ref["observed"], rtol=1e-7, atol=1e-10)
    for key in ("ici", "e50", "e90", "emax"):
        assert getattr(sm, key) == pytest.approx(ref[key], rel=1e-6), key
    np.testing.assert_allclose(sm.observed(np.asarray(ref["grid"])), ref["grid_observed"], rtol=1e-7, atol=1e-10)
    assert list(sm.curve.columns) == ["predicted", "observed"] and len(sm.curve) == 100


def test_rcs_knots_equal_hmisc():
    ref = json.loads((REF / "rms_knots.json").read_text())
    for case in ref["cases"]:
        # R Hmisc: rcspline.eval(x, nk = nk, knots.only = TRUE)
        np.testing.assert_allclose(rcs_knots(np.asarray(case["x"]), case["nk"]), case["knots"], rtol=1e-12,
                                   err_msg=case["label"])


@pytest.mark.parametrize("name", list(CASES))
def test_calibration_line_equals_r_glm(name):
    case = rms_case(name)
    ref = case.ref["line"]
    line = calibration_line(case.spec, case.model, case.cohort)
    # R: glm(o ~ 1 + offset(log(E)), poisson); glm(o ~ lp + offset(log(E) - lp), poisson)
    assert line.expected == pytest.approx(ref["expected"], rel=1e-7)
    assert line.intercept == pytest.approx(ref["intercept"], rel=1e-6)
    assert line.slope == pytest.approx(ref["slope"], rel=1e-6)
    assert line.slope_intercept == pytest.approx(ref["slope_intercept"], rel=1e-5, abs=1e-7)
    assert line.observed == case.cohort[case.spec.outcome.event].sum()


def test_calibration_line_keeps_patients_censored_before_the_first_event_out_of_the_fit():
    """GBSG-2 (tests/studies/gbsg2): 14 women censored before the first recurrence have E = 0."""
    from test_cox_support import fit_case

    case, rm, model = fit_case("gbsg2", "main")
    ref = rm["line"]
    line = calibration_line(case.spec, model, case.cohort)
    assert line.n_zero_expected == ref["n_zero_expected"] == 14
    # R: E = predict(fit, newdata = <follow-up truncated at 5 years>, type = "expected");
    #    glm(o ~ 1 + offset(log(E)), poisson, subset = E > 0); glm(o ~ lp + offset(log(E) - lp), poisson, subset = E > 0)
    assert line.expected == pytest.approx(ref["expected"], rel=1e-7)
    assert line.observed == ref["observed"]
    assert line.intercept == pytest.approx(ref["intercept"], rel=1e-6)
    assert line.slope == pytest.approx(ref["slope"], rel=1e-6)
    assert line.slope_intercept == pytest.approx(ref["slope_intercept"], rel=1e-6)


@pytest.mark.parametrize("name", list(CASES))
def test_brier_score_equals_riskregression(name):
    case = rms_case(name)
    ref = case.ref["brier"]
    b = brier_score(case.spec, case.model, case.cohort)
    assert b.t == pytest.approx(ref["t"], rel=1e-12)
    # R riskRegression: Score(list(risk), Surv(time, ev) ~ 1, times = 12 * (1 - 1e-6), metrics = "brier")
    assert b.brier == pytest.approx(ref["brier"], rel=1e-8)
    assert b.brier_null == pytest.approx(ref["brier_null"], rel=1e-8)
    assert b.scaled == pytest.approx(1 - ref["brier"] / ref["brier_null"], rel=1e-8)


def test_calibration_summary_layout():
    case = rms_case("shipped")
    s = calibration_summary(case.spec, case.model, case.cohort)
    assert list(s.columns) == ["measure", "value", "ideal", "description"]
    assert list(s["measure"]) == ["ici", "e50", "e90", "emax", "calibration_intercept", "o_e_ratio", "calibration_slope",
                                  "brier", "brier_null", "scaled_brier"]
    assert s["value"].notna().all()
