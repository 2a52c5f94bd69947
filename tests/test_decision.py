"""Tests of cementleak_stats.decision: R survfit reference, MSKCC dcurves, a hand example, properties."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lifelines import KaplanMeierFitter

from cementleak_stats.decision import COLUMNS, km_survival_at, net_benefit, threshold_grid
from cementleak_stats.spec import parse_spec

REF = Path(__file__).parent / "reference"
FIX = pd.read_csv(REF / "decision_fixture.csv")
R_NB = pd.read_csv(REF / "decision_r.csv")


def _nb(risk, time, event, thresholds, horizon=12.0):
    return net_benefit(risk, time, event, horizon=horizon, thresholds=thresholds)


def test_matches_r_survfit():
    got = _nb(FIX["risk"], FIX["time"], FIX["event"], R_NB["threshold"])
    assert list(got.columns) == COLUMNS
    # R survival 3.5: summary(survfit(Surv(time, event) ~ 1, data = d[d$risk >= pt, ]), times = 12)$surv
    # plugged into Vickers 2008 (tests/reference/decision.R); R CSV keeps 15 significant digits
    for col in ("net_benefit_model", "net_benefit_all", "interventions_avoided"):
        np.testing.assert_allclose(got[col], R_NB[col], rtol=1e-12, atol=1e-14)
    assert (got["n_treated"] == R_NB["n_treated"]).all()
    assert (got["net_benefit_none"] == 0).all()


def test_matches_dcurves_survival_mode():
    dcurves = pytest.importorskip("dcurves")
    pts = list(R_NB["threshold"])
    ref = dcurves.dca(data=FIX.copy(), outcome="event", modelnames=["risk"], thresholds=pts, time=12,
                      time_to_outcome_col="time", nper=100)
    got = _nb(FIX["risk"], FIX["time"], FIX["event"], pts)
    model = ref[ref["model"] == "risk"].reset_index(drop=True)
    everyone = ref[ref["model"] == "all"].reset_index(drop=True)
    # dcurves 1.1.7: dca(..., time=12, time_to_outcome_col=...) (lifelines Kaplan-Meier)
    np.testing.assert_allclose(got["net_benefit_model"], model["net_benefit"].astype(float), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(got["net_benefit_all"], everyone["net_benefit"].astype(float), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(got["interventions_avoided"], model["net_intervention_avoided"].astype(float),
                               rtol=1e-10, atol=1e-12)


def test_hand_computed_example():
    # six patients; horizon 12; one event exactly at 12 (counts), two censored at 12 (at risk)
    risk = [0.9, 0.8, 0.3, 0.2, 0.6, 0.1]
    time = [2, 4, 6, 12, 12, 12]
    event = [1, 0, 1, 0, 0, 1]
    got = _nb(risk, time, event, [0.25, 0.5])
    # whole cohort KM: t=2 5/6; t=6 (4 at risk) x 3/4; t=12 (3 at risk, 1 event) x 2/3 -> S = 5/12
    # p_t = 0.25, w = 1/3: treated {0.9, 0.8, 0.3, 0.6}, KM: t=2 3/4, t=6 (2 at risk) x 1/2 -> 3/8
    #   NB = (5/8)(4/6) - (3/8)(4/6)(1/3) = 1/3;  NB_all = 7/12 - (5/12)(1/3) = 4/9
    # p_t = 0.5, w = 1: treated {0.9, 0.8, 0.6}, KM: t=2 2/3, no later event -> 2/3
    #   NB = (1/3)(1/2) - (2/3)(1/2) = -1/6;  NB_all = 7/12 - 5/12 = 1/6
    np.testing.assert_allclose(got["net_benefit_model"], [1 / 3, -1 / 6], rtol=1e-14)
    np.testing.assert_allclose(got["net_benefit_all"], [4 / 9, 1 / 6], rtol=1e-14)
    np.testing.assert_allclose(got["interventions_avoided"], [(1 / 3 - 4 / 9) * 3 * 100, (-1 / 6 - 1 / 6) * 100],
                               rtol=1e-12)
    assert list(got["n_treated"]) == [4, 3]


def test_km_matches_lifelines():
    kmf = KaplanMeierFitter().fit(FIX["time"], FIX["event"])
    # lifelines 0.30: KaplanMeierFitter().survival_function_at_times(12)
    for u in (0.5, 3.0, 7.25, 12.0):
        assert km_survival_at(FIX["time"].to_numpy(), FIX["event"].to_numpy(), u) == pytest.approx(
            float(kmf.survival_function_at_times(u).iloc[0]), rel=1e-12)


def test_undefined_km_gives_nan():
    # the only treated patient is censored at 5 < horizon: S(12) undefined
    got = _nb([0.9, 0.1, 0.1], [5, 12, 12], [0, 0, 1], [0.5])
    assert np.isnan(got["net_benefit_model"].item())
    # ... but a subgroup whose curve reached 0 before the horizon is defined (everyone had the event)
    got = _nb([0.9, 0.1, 0.1], [5, 12, 12], [1, 0, 1], [0.5])
    assert got["net_benefit_model"].item() == pytest.approx(1 / 3)


def test_threshold_grid_from_spec():
    spec = parse_spec({
        "study": {"title": "t", "id_column": "i"}, "cohort_file": "c.csv",
        "outcome": {"time": "t", "event": "e", "horizon": 12, "followup": 12},
        "variables": [{"name": "x", "label": "X", "kind": "continuous", "candidate": True}],
        "analysis": {"decision_thresholds": [0.01, 0.6, 0.01]},
    })
    g = threshold_grid(spec)
    assert len(g) == 60 and g[0] == 0.01 and g[-1] == 0.6 and g[6] == 0.07


@pytest.mark.parametrize("bad", [
    dict(risk=[0.5, 1.2], time=[1, 2], event=[0, 1]),
    dict(risk=[0.5, np.nan], time=[1, 2], event=[0, 1]),
    dict(risk=[0.5, 0.2], time=[1, -2], event=[0, 1]),
    dict(risk=[0.5, 0.2], time=[1, 2], event=[0, 2]),
    dict(risk=[0.5], time=[1, 2], event=[0, 1]),
])
def test_bad_input(bad):
    with pytest.raises(ValueError):
        net_benefit(**bad, horizon=12, thresholds=[0.1])
    with pytest.raises(ValueError, match="strictly between"):
        net_benefit([0.5], [1], [1], horizon=12, thresholds=[0.0])


# --- properties -------------------------------------------------------------------------

HORIZON = 12.0
THRESHOLDS = np.round(np.arange(0.05, 0.95, 0.05), 10)


@st.composite
def cohorts(draw, min_size=1, max_size=40):
    n = draw(st.integers(min_size, max_size))
    risk = draw(st.lists(st.floats(0, 1, allow_nan=False), min_size=n, max_size=n))
    time = draw(st.lists(st.sampled_from([0.5, 1.0, 3.0, 6.0, 9.0, 11.5, 12.0]), min_size=n, max_size=n))
    event = draw(st.lists(st.integers(0, 1), min_size=n, max_size=n))
    return np.array(risk), np.array(time), np.array(event)


@settings(max_examples=60, deadline=None)
@given(cohorts())
def test_treat_none_is_zero_and_all_is_model_free(c):
    risk, time, event = c
    got = _nb(risk, time, event, THRESHOLDS)
    assert (got["net_benefit_none"] == 0.0).all()
    other = _nb(np.zeros_like(risk), time, event, THRESHOLDS)
    pd.testing.assert_series_equal(got["net_benefit_all"], other["net_benefit_all"])


@settings(max_examples=60, deadline=None)
@given(cohorts(), st.floats(0.01, 0.99))
def test_constant_risk_is_treat_all_or_none(c, value):
    _, time, event = c
    got = _nb(np.full(time.shape, value), time, event, THRESHOLDS)
    at_or_below = THRESHOLDS <= value
    np.testing.assert_array_equal(got["net_benefit_model"][at_or_below], got["net_benefit_all"][at_or_below])
    assert (got["net_benefit_model"][~at_or_below] == 0).all()


@settings(max_examples=60, deadline=None)
@given(cohorts(), st.randoms(use_true_random=False))
def test_invariant_to_order_and_to_threshold_preserving_transform(c, rnd):
    risk, time, event = c
    base = _nb(risk, time, event, THRESHOLDS)
    perm = np.arange(risk.size)
    rnd.shuffle(perm)
    shuffled = _nb(risk[perm], time[perm], event[perm], THRESHOLDS)
    pd.testing.assert_frame_equal(base, shuffled, rtol=1e-12)
    # monotone transform that keeps every 1[risk >= p_t]: snap to the largest threshold <= risk
    idx = np.searchsorted(THRESHOLDS, risk, side="right") - 1
    snapped = np.where(idx >= 0, THRESHOLDS[np.clip(idx, 0, None)], risk / 2)
    pd.testing.assert_frame_equal(base, _nb(snapped, time, event, THRESHOLDS), rtol=1e-12)


@settings(max_examples=60, deadline=None)
@given(cohorts())
def test_without_censoring_before_horizon_equals_binary_formula(c):
    risk, time, event = c
    time = np.where(event == 1, time, HORIZON)  # nobody censored before the horizon
    got = _nb(risk, time, event, THRESHOLDS)
    n = risk.size
    y = (event == 1) & (time <= HORIZON)
    for i, pt in enumerate(THRESHOLDS):
        pos = risk >= pt
        tp, fp = np.sum(pos & y), np.sum(pos & ~y)
        assert got["net_benefit_model"][i] == pytest.approx(tp / n - fp / n * pt / (1 - pt), abs=1e-12)
        assert got["net_benefit_all"][i] == pytest.approx(y.mean() - (1 - y.mean()) * pt / (1 - pt), abs=1e-12)


def test_decision_curve_grows_about_linearly_with_n():
    """Ten times the patients (continuous times, 60 thresholds) costs far less than the hundred
    times of a quadratic Kaplan-Meier (the old loop; measured n^1.32 over the study's sizes).

    A ratio measured in the same run, not a bare time: O(n log n) per threshold gives ~10-13."""
    import time as clock

    rng = np.random.default_rng(7)
    pts = np.round(np.arange(0.01, 0.605, 0.01), 10)

    def best(n):
        t, e, r = rng.exponential(20, n), (rng.random(n) < 0.7).astype(int), rng.beta(2, 5, n)
        out = []
        for _ in range(3):
            start = clock.perf_counter()
            _nb(r, t, e, pts)
            out.append(clock.perf_counter() - start)
        return min(out)

    small, large = best(3000), best(30000)
    assert large / small < 35, (small, large)
