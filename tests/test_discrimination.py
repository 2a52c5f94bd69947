"""Tests of cementleak_stats.validation.discrimination against R survival 3.5 ``concordance``
and riskRegression ``Score`` (tests/reference/survival_reference.R), a brute-force pair count,
and properties (hypothesis)."""

from __future__ import annotations

import time as _time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cementleak_stats.errors import AnalysisError
from cementleak_stats.models.cox import fit_cox_model
from cementleak_stats.validation.discrimination import (
    concordance_table,
    dynamic_auc,
    harrell_c,
    model_score,
    time_dependent_auc,
)

try:
    from test_cox_support import case_ids, fit_case, load_case, model_cases
except ImportError:  # pragma: no cover
    from tests.test_cox_support import case_ids, fit_case, load_case, model_cases

MODEL_CASES = model_cases()


@pytest.mark.parametrize("name,key", MODEL_CASES, ids=case_ids(MODEL_CASES))
def test_harrell_c_equals_r(name, key):
    case = load_case(name)
    rm = case.model(key)
    c = harrell_c(case.time, case.event, np.asarray(rm["lp"]))
    r = rm["concordance"]
    # R survival 3.5: concordance(fit) (reverse = TRUE for coxph, timewt = "n")
    assert c.estimate == pytest.approx(r["concordance"], rel=1e-12)
    assert c.se**2 == pytest.approx(r["var"], rel=1e-10)  # infinitesimal jackknife
    n = r["count"]
    assert (c.n_concordant, c.n_discordant, c.n_tied_score, c.n_tied_time, c.n_tied_both) == (
        n["concordant"], n["discordant"], n["tied.x"], n["tied.y"], n["tied.xy"])
    assert c.dxy == pytest.approx(2 * (r["concordance"] - 0.5), rel=1e-12)
    fast = harrell_c(case.time, case.event, np.asarray(rm["lp"]), variance=False)
    assert fast.estimate == c.estimate and np.isnan(fast.se)
    # the package's own linear predictor gives the same ties (coarse models: many tied scores)
    _, _, model = fit_case(name, key)
    own = harrell_c(case.time, case.event, model_score(case.spec, case.cohort, model))
    assert (own.estimate, own.n_tied_score) == pytest.approx((c.estimate, c.n_tied_score), rel=1e-12)


@pytest.mark.parametrize("name,key", MODEL_CASES, ids=case_ids(MODEL_CASES))
def test_time_dependent_auc_equals_r(name, key):
    case = load_case(name)
    rm = case.model(key)
    lp = np.asarray(rm["lp"])
    below, mid = rm["auc"]["below_horizon"], rm["auc"]["mid"]
    h = case.spec.outcome.horizon
    # R riskRegression: Score(list(plogis(lp)), Surv(t, e) ~ 1, times = horizon - 1e-6, metrics = "auc",
    # cens.model = "km"); AUC depends on the order of the score only
    assert time_dependent_auc(case.time, case.event, lp, horizon=h) == pytest.approx(below["auc"], rel=1e-10)
    assert time_dependent_auc(case.time, case.event, lp, horizon=below["time"], left_limit=False) == pytest.approx(
        below["auc"], rel=1e-10)
    # R: the same at times = horizon / 2 (censoring before it, IPCW weights not all 1)
    assert time_dependent_auc(case.time, case.event, lp, horizon=mid["time"], left_limit=False) == pytest.approx(
        mid["auc"], rel=1e-10)
    for ref, kw in ((below, {"horizon": h}), (mid, {"horizon": mid["time"], "left_limit": False})):
        res = dynamic_auc(case.time, case.event, lp, **kw)
        # R: Score(..., conservative = TRUE)$AUC$score$se (censoring weights taken as known)
        assert res.se == pytest.approx(ref["se_conservative"], rel=1e-8)
        # R: Score(...) default also propagates the Kaplan-Meier estimate of G; stated tolerance 1e-3
        assert res.se == pytest.approx(ref["se"], rel=1e-3)
        assert res.ci_low == pytest.approx(max(0, ref["auc"] - 1.959963984540054 * res.se))


def test_auc_at_the_horizon_itself_is_undefined_here():
    case = load_case("fixture")  # everyone still at risk is censored at 12 months
    lp = np.asarray(case.model("main")["lp"])
    with pytest.raises(AnalysisError, match="event-free"):
        time_dependent_auc(case.time, case.event, lp, horizon=case.spec.outcome.horizon, left_limit=False)


def test_concordance_table_from_model():
    case = load_case("cohort")
    model = fit_cox_model(case.spec, case.cohort, case.model("main")["variables"])
    tab = concordance_table(case.spec, case.cohort, model).set_index("measure")
    assert list(tab.columns) == ["label", "estimate", "se", "ci_low", "ci_high"]
    r = case.model("main")
    # R: concordance(fit); riskRegression::Score at 12 - 1e-6
    assert tab.loc["c_index", "estimate"] == pytest.approx(r["concordance"]["concordance"], rel=1e-10)
    assert tab.loc["dxy", "estimate"] == pytest.approx(2 * r["concordance"]["concordance"] - 1, rel=1e-10)
    assert tab.loc["auc", "estimate"] == pytest.approx(r["auc"]["below_horizon"]["auc"], rel=1e-10)
    se = np.sqrt(r["concordance"]["var"])
    assert tab.loc["c_index", "ci_low"] == pytest.approx(r["concordance"]["concordance"] - 1.959963984540054 * se, rel=1e-9)
    assert tab.loc["dxy", "ci_high"] == pytest.approx(2 * tab.loc["c_index", "ci_high"] - 1)
    assert tab.loc["auc", "se"] == pytest.approx(r["auc"]["below_horizon"]["se_conservative"], rel=1e-8)


# --- an independent O(n^2) oracle --------------------------------------------------------
def brute_force(time, event, score):
    """Every pair, written from the definition; the IJ variance from per-patient counts."""
    n = len(time)
    per = np.zeros((n, 3))
    for i in range(n):
        if not event[i]:
            continue
        for j in range(n):
            if time[j] > time[i] or (time[j] == time[i] and not event[j]):
                k = 0 if score[i] > score[j] else 1 if score[i] < score[j] else 2
                per[i, k] += 1
                per[j, k] += 1
    c, d, t = per.sum(axis=0) / 2
    npair = c + d + t
    if npair == 0:
        return np.nan, np.nan, (c, d, t)
    somers = (c - d) / npair
    dfbeta = (per[:, 0] - per[:, 1]) / npair - somers / npair * per.sum(axis=1)
    return (c + t / 2) / npair, np.sqrt((dfbeta**2).sum() / 4), (c, d, t)


data = st.integers(min_value=2, max_value=40).flatmap(lambda n: st.tuples(
    st.lists(st.integers(1, 6), min_size=n, max_size=n),          # few distinct times: ties
    st.lists(st.integers(0, 1), min_size=n, max_size=n),
    st.lists(st.integers(-3, 3), min_size=n, max_size=n),          # tied scores
))


@settings(max_examples=150, deadline=None)
@given(data)
def test_matches_brute_force(d):
    t, e, s = (np.asarray(x, float) for x in d)
    e = e.astype(int)
    est, se, counts = brute_force(t, e, s)
    if not np.isfinite(est):
        with pytest.raises(AnalysisError):
            harrell_c(t, e, s)
        return
    c = harrell_c(t, e, s)
    assert (c.n_concordant, c.n_discordant, c.n_tied_score) == counts
    assert c.estimate == pytest.approx(est, rel=1e-12)
    assert c.se == pytest.approx(se, rel=1e-9, abs=1e-14)


# scores on a grid, so that the transform below stays strictly increasing in floating point
def brute_force_auc(time, event, score, horizon):
    """AUC just below the horizon and its influence-function SE with n x n matrices."""
    n = len(time)
    cens = np.unique(time[event == 0])
    def g_left(u):  # reverse Kaplan-Meier, events before censorings at ties
        out = 1.0
        for c in cens[cens < u]:
            out *= 1 - ((time == c) & (event == 0)).sum() / ((time > c).sum() + ((time == c) & (event == 0)).sum())
        return out
    a = np.array([1 / g_left(t) if (e == 1 and t < horizon) else 0.0 for t, e in zip(time, event)])
    b = (time >= horizon).astype(float)
    h = (score[:, None] > score[None, :]) + 0.5 * (score[:, None] == score[None, :])
    nu, mu = (a[:, None] * b[None, :] * h).sum() / n**2, a.sum() * b.sum() / n**2
    if_nu = a * (h * b).sum(1) / n + b * (a[:, None] * h).sum(0) / n - 2 * nu
    if_mu = a * b.sum() / n + b * a.sum() / n - 2 * mu
    return nu / mu, ((if_nu - nu / mu * if_mu) / mu).std(ddof=1) / np.sqrt(n)


@settings(max_examples=150, deadline=None)
@given(data, st.integers(2, 6))
def test_auc_matches_brute_force(d, horizon):
    t, e, s = (np.asarray(x, float) for x in d)
    e = e.astype(int)
    if not ((e == 1) & (t < horizon)).any() or not (t >= horizon).any():
        with pytest.raises(AnalysisError):
            dynamic_auc(t, e, s, horizon=horizon)
        return
    auc, se = brute_force_auc(t, e, s, horizon)
    res = dynamic_auc(t, e, s, horizon=horizon)
    assert res.estimate == pytest.approx(auc, rel=1e-12)
    assert res.se == pytest.approx(se, rel=1e-9, abs=1e-13)


scores = st.lists(st.integers(-3000, 3000).map(lambda k: k / 7), min_size=3, max_size=60)


@settings(max_examples=100, deadline=None)
@given(scores, st.randoms(use_true_random=False))
def test_properties(s, rnd):
    s = np.asarray(s)
    n = len(s)
    t = np.asarray([rnd.randint(1, 8) for _ in range(n)], float)
    e = np.asarray([rnd.randint(0, 1) for _ in range(n)])
    e[0] = 1
    t[0] = 0  # one event before everyone else: comparable pairs exist
    c = harrell_c(t, e, s)
    assert 0.0 <= c.estimate <= 1.0
    assert 0.0 <= c.ci_low <= c.estimate <= c.ci_high <= 1.0
    # invariant under a strictly increasing transform of the score
    assert harrell_c(t, e, np.arctan(s / 100) * 7 + 3).estimate == pytest.approx(c.estimate, abs=1e-12)
    # reversing the score: C(-s) = 1 - C(s)
    assert harrell_c(t, e, -s).estimate == pytest.approx(1 - c.estimate, abs=1e-12)
    auc = time_dependent_auc(t, e, s, horizon=t.max()) if (t < t.max()).any() and (e[t < t.max()] == 1).any() else None
    if auc is not None:
        assert 0.0 <= auc <= 1.0
        assert time_dependent_auc(t, e, -s, horizon=t.max()) == pytest.approx(1 - auc, abs=1e-12)


def test_n20000_is_fast():
    rng = np.random.default_rng(20250427)
    n = 20_000
    t = np.ceil(rng.exponential(12, n))  # ties in time
    e = rng.integers(0, 2, n)
    s = rng.normal(size=n).round(3)  # ties in score
    start = _time.perf_counter()
    c = harrell_c(t, e, s)
    auc = time_dependent_auc(t, e, s, horizon=12)
    elapsed = _time.perf_counter() - start
    assert elapsed < 1.0, f"harrell_c + AUC on n=20,000 took {elapsed:.2f} s"
    assert 0.45 < c.estimate < 0.55 and 0.45 < auc < 0.55  # a random score
    assert c.n_comparable > 1e7  # really O(n^2) pairs counted


def test_input_validation():
    with pytest.raises(ValueError, match="same length"):
        harrell_c([1, 2], [1, 0], [0.1])
    with pytest.raises(ValueError, match="0/1"):
        harrell_c([1, 2], [1, 2], [0.1, 0.2])
    with pytest.raises(AnalysisError, match="no comparable pairs"):
        harrell_c([1, 2], [0, 0], [0.1, 0.2])
