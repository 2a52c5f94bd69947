"""The Kaplan-Meier module (cementleak_stats/km.py): survival and censoring estimates against R.

R reference: ``tests/reference/km_reference.R`` -> ``km_reference.json`` (R 4.2, survival 3.5,
prodlim 2019.11) on the test studies tests/studies/{rossi,lung,gbsg2}.  Property tests
(hypothesis) pin what holds on any data: the curve is a non-increasing step function in [0, 1],
weights act as duplicated rows, groups and samples are independent fits, and the reverse
(censoring) estimate is consistent with the forward one under the one tie rule:
S(t) G(t) = #{T > t} / n exactly, ties included.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cementleak_stats.decision import km_survival_at
from cementleak_stats.km import censoring_survival, kaplan_meier, km_by_group, median_followup

REPO = Path(__file__).resolve().parents[1]
REF = json.loads((REPO / "tests" / "reference" / "km_reference.json").read_text())
STUDIES = {"rossi": "tests/studies/rossi/rossi.csv", "lung": "tests/studies/lung/lung.csv",
           "gbsg2": "tests/studies/gbsg2/gbsg2.csv"}
RTOL = 1e-12
STEP_COLUMNS = ["time", "n_risk", "n_event", "n_censor", "survival", "se_log"]


def _study(name: str) -> tuple[dict, np.ndarray, np.ndarray, pd.DataFrame]:
    r = REF[name]
    d = pd.read_csv(REPO / STUDIES[name])
    return r, d[r["time"]].to_numpy(float), d[r["event"]].to_numpy(float), d


def _num(values: list) -> np.ndarray:
    """R's JSON (NA as null, Inf as a string) as floats."""
    return np.array([np.nan if v is None else float(v) for v in values], float)


def _assert_steps(table: pd.DataFrame, ref: dict) -> None:
    for col in STEP_COLUMNS:
        want, got = _num(ref[col]), table[col].to_numpy(float)
        finite = np.isfinite(want)  # R's se at S = 0 is NaN; ours is inf
        np.testing.assert_allclose(got[finite], want[finite], rtol=RTOL, atol=1e-15, err_msg=col)
        assert not np.isfinite(got[~finite]).any(), col


@pytest.mark.parametrize("name", list(STUDIES))
def test_kaplan_meier_equals_survfit(name: str) -> None:
    r, t, e, d = _study(name)
    fit = kaplan_meier(t, e)
    # R survival 3.5: survfit(Surv(t, e) ~ 1): time, n.risk, n.event, n.censor, surv, std.err
    _assert_steps(fit.table(), r["km"])
    # R: summary(fit, times = grid, extend = TRUE)$surv, $n.risk
    np.testing.assert_allclose(fit.survival_at(r["grid"])[0, 0], r["at_grid"]["survival"], rtol=RTOL)
    np.testing.assert_array_equal(fit.at_risk(r["grid"])[0, 0], r["at_grid"]["n_risk"])
    # R: summary(fit)$table["median"]
    assert fit.median()[0, 0] == pytest.approx(r["median"] if r["median"] is not None else np.nan, nan_ok=True)
    # the decision curve's S(u) is this estimate
    u = r["grid"][3]
    assert km_survival_at(t, e, u) == pytest.approx(r["at_grid"]["survival"][3], rel=RTOL)


@pytest.mark.parametrize("name", list(STUDIES))
def test_groups_and_weights_equal_survfit(name: str) -> None:
    r, t, e, d = _study(name)
    g = d[r["group"]].astype(str).to_numpy()
    levels = sorted(set(g))
    fit = kaplan_meier(t, e, groups=np.searchsorted(levels, g), n_groups=len(levels))
    table = fit.table()
    for j, ref in enumerate(r["km_by_group"]):
        # R: survfit(Surv(t, e) ~ 1, subset = group == level), per level
        assert ref["level"] == levels[j]
        _assert_steps(table[table["group"] == j].reset_index(drop=True), ref)
    # R: survfit(Surv(t, e) ~ 1, weights = 1 + (row - 1) %% 3)
    w = 1.0 + np.arange(len(t)) % 3
    _assert_steps(kaplan_meier(t, e, weights=w).table(), r["km_weighted"])


@pytest.mark.parametrize("name", list(STUDIES))
def test_censoring_distribution_equals_prodlim_reverse(name: str) -> None:
    r, t, e, _ = _study(name)
    c = r["censoring"]
    # R prodlim: prodlim(Hist(t, e) ~ 1, reverse = TRUE); predict(fit, times = grid)
    want = _num(c["at_grid"])
    got = censoring_survival(t, e, np.asarray(r["grid"], float), left=False)
    ok = np.isfinite(want)  # prodlim gives NA beyond the last time
    np.testing.assert_allclose(got[ok], want[ok], rtol=RTOL, atol=1e-15)
    # R: predictSurvIndividual(fit, lag = 1): G(T_i-), patients in time order (riskRegression's IPCW)
    left = censoring_survival(t, e, t, left=True)[np.argsort(t, kind="stable")]
    np.testing.assert_allclose(left, c["left_at_patient"], rtol=RTOL, atol=1e-15)
    steps = kaplan_meier(t, e, reverse=True).table()
    np.testing.assert_allclose(steps["time"], c["time"])
    np.testing.assert_allclose(steps["survival"], c["survival"], rtol=RTOL, atol=1e-15)


@pytest.mark.parametrize("name", list(STUDIES))
def test_median_followup_is_the_same_under_both_tie_rules(name: str) -> None:
    r, t, e, _ = _study(name)
    # R: the median of prodlim's reverse KM by survival's rule (survmean), and
    # summary(survfit(Surv(t, 1 - e) ~ 1))$table["median"] (censorings first): equal here
    assert median_followup(t, e) == r["censoring"]["median"] == r["median_followup_censorings_first"]


def test_km_by_group_equals_lifelines() -> None:
    from lifelines import KaplanMeierFitter

    _, t, e, d = _study("lung")
    group = pd.Categorical(np.where(d["sex"] == 1, "m", "f"), categories=["m", "f"])
    curves, at_risk = km_by_group(t, e, group, at_risk_times=[0, 365, 730])
    for lv in ("m", "f"):
        m = np.asarray(group == lv)
        kmf = KaplanMeierFitter().fit(t[m], e[m])
        c = curves[curves["group"] == lv]
        np.testing.assert_allclose(c["time"], kmf.survival_function_.index)
        np.testing.assert_allclose(c["survival"], kmf.survival_function_.iloc[:, 0], rtol=1e-13)
        ci = kmf.confidence_interval_survival_function_
        np.testing.assert_allclose(c["ci_low"], ci.iloc[:, 0], rtol=1e-12)
        np.testing.assert_allclose(c["ci_high"], ci.iloc[:, 1], rtol=1e-12)
        assert at_risk.loc[at_risk["group"] == lv, "n_at_risk"].tolist() == [int((t[m] >= u).sum()) for u in (0, 365, 730)]


def test_median_takes_the_midpoint_of_a_flat_half() -> None:
    # R: summary(survfit(Surv(c(1, 2, 3, 4), rep(1, 4)) ~ 1))$table["median"] is 2.5
    assert kaplan_meier([1, 2, 3, 4], [1, 1, 1, 1]).median()[0, 0] == 2.5
    assert kaplan_meier([1, 2, 3], [0, 1, 0]).median()[0, 0] == 2  # exactly 1/2, no later drop: R gives 2
    assert np.isnan(kaplan_meier([1, 2, 3, 4], [0, 1, 0, 0]).median()[0, 0])  # never reaches 1/2 (R: NA)
    assert median_followup([], []) != median_followup([], [])  # no patients: NaN
    assert median_followup([1, 2, 3], [1, 1, 1]) == np.inf  # nobody censored: not reached


# --- properties ---------------------------------------------------------------------------
@st.composite
def samples(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Times on a coarse grid (many ties between events and censorings), events, integer weights."""
    n = draw(st.integers(1, 40))
    t = np.array(draw(st.lists(st.integers(0, 8), min_size=n, max_size=n)), float) / 2
    e = np.array(draw(st.lists(st.integers(0, 1), min_size=n, max_size=n)), float)
    w = np.array(draw(st.lists(st.integers(0, 3), min_size=n, max_size=n)), float)
    return t, e, w


@settings(max_examples=150, deadline=None)
@given(samples())
def test_curve_is_a_non_increasing_step_function(s) -> None:
    t, e, w = s
    grid = np.linspace(-1, 5, 49)
    for reverse in (False, True):
        fit = kaplan_meier(t, e, weights=w, reverse=reverse)
        right, left = fit.survival_at(grid)[0, 0], fit.survival_at(grid, left=True)[0, 0]
        assert ((0 <= right) & (right <= 1)).all()
        assert (np.diff(right) <= 1e-15).all() and (np.diff(left) <= 1e-15).all()
        assert (right <= left + 1e-15).all()  # a step down happens at, not after, its time
        assert (right[grid < 0] == 1).all()
        assert (np.diff(fit.survival) <= 1e-15).all()


@settings(max_examples=150, deadline=None)
@given(samples())
def test_reverse_is_consistent_with_forward(s) -> None:
    """Events first at ties, in both directions: S(t) G(t) is the weight still followed after t."""
    t, e, w = s
    grid = np.r_[np.unique(t), np.unique(t) + 0.25]
    S = kaplan_meier(t, e, weights=w).survival_at(grid)[0, 0]
    G = kaplan_meier(t, e, weights=w, reverse=True).survival_at(grid)[0, 0]
    total = w.sum()
    after = np.array([w[t > u].sum() for u in grid]) / total if total else np.ones(len(grid))
    np.testing.assert_allclose(S * G, after, atol=1e-12)
    # the same as the forward estimate of the flipped indicator once the events move just
    # before their time (then no event shares a time with a censoring)
    shifted = kaplan_meier(t - 1e-3 * e, 1 - e, weights=w).survival_at(grid)[0, 0]
    np.testing.assert_allclose(G, shifted, atol=1e-12)


@settings(max_examples=100, deadline=None)
@given(samples(), st.integers(1, 3))
def test_weights_duplicate_rows_and_cells_are_separate_fits(s, n_groups) -> None:
    t, e, w = s
    grid = np.linspace(0, 4.5, 10)
    rng = np.random.default_rng(len(t))
    g = rng.integers(0, n_groups, len(t))
    W = np.stack([w, np.ones_like(w), (w > 0).astype(float)])
    fit = kaplan_meier(t, e, weights=W, groups=g, n_groups=n_groups)
    for b in range(3):
        for j in range(n_groups):
            rows = np.repeat(np.arange(len(t)), W[b].astype(int)) if b != 1 else np.arange(len(t))
            rows = rows[g[rows] == j]
            one = kaplan_meier(t[rows], e[rows])
            np.testing.assert_allclose(fit.survival_at(grid)[b, j], one.survival_at(grid)[0, 0], rtol=1e-13)
            np.testing.assert_allclose(fit.at_risk(grid)[b, j], one.at_risk(grid)[0, 0])
            assert fit.last[b, j] == (t[rows].max() if len(rows) else -np.inf)
