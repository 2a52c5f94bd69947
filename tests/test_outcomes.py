"""Tests of cementleak_stats.outcomes against R (tests/reference/outcomes.R -> outcomes_r.json).

The fixture uses column names that appear nowhere in the package (pid, visit, pain, disab):
the module must take every name from the study specification.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cementleak_stats.outcomes import (
    TEST_COLUMNS,
    analyze_outcomes,
    describe_outcomes,
    holm,
    outcomes_long,
    outcomes_tests,
    random_intercept_lmm,
    rm_anova,
    signed_rank_test,
)
from cementleak_stats.spec import parse_spec

REF = Path(__file__).parent / "reference"
R = json.loads((REF / "outcomes_r.json").read_text())
RTOL = 1e-10


def make_spec():
    return parse_spec({
        "study": {"title": "t", "id_column": "pid"},
        "cohort_file": "c.csv",
        "outcome": {"time": "t_m", "event": "ev", "horizon": 12, "followup": 12},
        "variables": [{"name": "x1", "label": "X1", "kind": "continuous", "candidate": True}],
        "repeated": {
            "file": "o.csv", "id": "pid", "timepoint": "visit",
            "timepoints": [{"name": "base", "label": "Baseline"}, {"name": "d3", "label": "Day 3"},
                           {"name": "m12", "label": "Month 12"}],
            "measures": [{"name": "pain", "label": "Pain", "unit": "0-10", "range": [0, 10]},
                         {"name": "disab", "label": "Disability", "unit": "%", "range": [0, 100]}],
        },
    })


@pytest.fixture(scope="module")
def spec():
    return make_spec()


@pytest.fixture(scope="module")
def data():
    return pd.read_csv(REF / "outcomes_fixture.csv")


@pytest.fixture(scope="module")
def tests_frame(spec, data):
    return outcomes_tests(spec, data)


def _row(frame, measure, test, comparison):
    sel = frame[(frame["measure"] == measure) & (frame["test"] == test) & (frame["comparison"] == comparison)]
    assert len(sel) == 1, (measure, test, comparison)
    return sel.iloc[0]


def test_columns_and_rows(tests_frame):
    assert list(tests_frame.columns) == TEST_COLUMNS
    # per measure: Friedman, ANOVA, LMM + 3 pairs x 2 tests
    assert len(tests_frame) == 2 * (3 + 6)
    assert tests_frame["p_adjusted"].isna().sum() == 2 * 3


@pytest.mark.parametrize("measure", ["pain", "disab"])
def test_friedman_matches_r(tests_frame, measure):
    ref = R["outcomes"][measure]["friedman"]
    row = _row(tests_frame, measure, "Friedman", "all timepoints")
    # R 4.2: friedman.test(y[complete.cases(y), ])
    np.testing.assert_allclose(row["statistic"], ref["statistic"], rtol=RTOL)
    np.testing.assert_allclose(row["p_value"], ref["p"], rtol=RTOL)
    assert row["df"] == ref["df"] and row["n"] == ref["n"]


@pytest.mark.parametrize("measure", ["pain", "disab"])
def test_rm_anova_matches_r(tests_frame, measure):
    ref = R["outcomes"][measure]["rm_anova"]
    row = _row(tests_frame, measure, "repeated-measures ANOVA", "all timepoints")
    # R 4.2: summary(aov(value ~ visit + Error(pid/visit))) on complete cases
    np.testing.assert_allclose(row["statistic"], ref["F"], rtol=RTOL)
    np.testing.assert_allclose(row["p_value"], ref["p"], rtol=1e-8)
    assert row["df"] == ref["df1"]
    # partial eta squared from R's sums of squares: SS_visit / (SS_visit + SS_residual), stratum pid:visit
    np.testing.assert_allclose(row["effect_size"], ref["ss_time"] / (ref["ss_time"] + ref["ss_error"]), rtol=RTOL)


def test_rm_anova_sums_of_squares_match_r(data):
    ref = R["outcomes"]["disab"]["rm_anova"]
    wide = data.pivot(index="pid", columns="visit", values="disab")[["base", "d3", "m12"]].dropna()
    av = rm_anova(wide.to_numpy())
    # R 4.2: summary(aov(value ~ visit + Error(pid/visit))) -> Sum Sq of visit and of Residuals (pid:visit)
    np.testing.assert_allclose([av.ss_time, av.ss_error, av.f], [ref["ss_time"], ref["ss_error"], ref["F"]],
                               rtol=RTOL)
    assert (av.df1, av.df2) == (ref["df1"], ref["df2"])
    with pytest.raises(ValueError, match="complete matrix"):
        rm_anova(np.array([[1.0, np.nan], [2.0, 3.0]]))


@pytest.mark.parametrize("measure", ["pain", "disab"])
def test_pairwise_match_r(tests_frame, measure):
    for ref in R["outcomes"][measure]["pairwise"]:
        w = _row(tests_frame, measure, "Wilcoxon signed-rank", ref["comparison"])
        # R 4.2: wilcox.test(later, earlier, paired = TRUE) -> V and P; p.adjust(, "holm")
        assert w["statistic"] == ref["wilcoxon_v"]
        np.testing.assert_allclose(w["p_value"], ref["wilcoxon_p"], rtol=RTOL)
        np.testing.assert_allclose(w["p_adjusted"], ref["wilcoxon_p_holm"], rtol=RTOL)
        assert w["n"] == ref["n_pairs"]
        t = _row(tests_frame, measure, "paired t-test", ref["comparison"])
        # R 4.2: t.test(later, earlier, paired = TRUE); p.adjust(, "holm")
        np.testing.assert_allclose(t["statistic"], ref["t"], rtol=RTOL)
        np.testing.assert_allclose(t["p_value"], ref["t_p"], rtol=RTOL)
        np.testing.assert_allclose(t["p_adjusted"], ref["t_p_holm"], rtol=RTOL)
        assert t["df"] == ref["t_df"]
        np.testing.assert_allclose(t["estimate"], ref["mean_diff"], rtol=RTOL)
        np.testing.assert_allclose(t["effect_size"], ref["mean_diff"] / ref["sd_diff"], rtol=RTOL)


def test_fixture_covers_both_wilcoxon_branches():
    rows = [r for m in R["outcomes"].values() for r in m["pairwise"]]
    assert any(r["ties"] and r["zeros"] for r in rows)  # normal approximation, zeros dropped
    assert any(not r["ties"] and not r["zeros"] for r in rows)  # exact


@pytest.mark.parametrize("case", sorted(R["wilcoxon_cases"]))
def test_signed_rank_branches_match_r(case):
    ref = R["wilcoxon_cases"][case]
    res = signed_rank_test(np.array(ref["x"]), np.array(ref["y"]))
    # R 4.2: wilcox.test(x, y, paired = TRUE)
    np.testing.assert_allclose(res.statistic, ref["v"], rtol=RTOL)
    np.testing.assert_allclose(res.p_value, ref["p"], rtol=RTOL)


def test_signed_rank_statistic_is_w_plus_not_scipy_min():
    later = np.array([5.0, 6, 7, 8, 9, 1.5])
    earlier = np.zeros(6)
    res = signed_rank_test(later, earlier)
    assert res.statistic == 21.0  # all positive: W+ = 1+...+6 (SciPy two-sided would say 0)
    assert res.method == "exact"


def test_signed_rank_all_zero():
    res = signed_rank_test(np.ones(4), np.ones(4))
    assert res.n == 0 and np.isnan(res.p_value)


@pytest.mark.parametrize("measure", ["pain", "disab"])
def test_mixed_model_matches_nlme(spec, data, measure):
    res = analyze_outcomes(spec, data)
    ref = R["outcomes"][measure]["lme"]
    fe = res.mixed_models[res.mixed_models["measure"] == measure]
    # R nlme: lme(value ~ visit, random = ~1 | pid, method = "REML"), all available rows
    # (patient P27 misses a visit: unbalanced); SEs from vcov(fit) = sigma^2 (X'V^-1 X)^-1
    np.testing.assert_allclose(fe["estimate"].to_numpy(), ref["estimate"], rtol=1e-6)
    np.testing.assert_allclose(fe["se"].to_numpy(), ref["se"], rtol=1e-6)
    assert list(fe["term"]) == ["(Intercept)", "d3 vs base", "m12 vs base"]
    wald = _row(res.tests, measure, "linear mixed model (Wald)", "all timepoints")
    # R nlme: anova(fit, type = "marginal")["visit", ] -> F x numDF is the Wald chi-square
    np.testing.assert_allclose(wald["statistic"], ref["visit_F"] * ref["visit_numDF"], rtol=1e-6)
    assert wald["df"] == ref["visit_numDF"]


@pytest.mark.parametrize("measure", ["pain", "disab"])
def test_random_intercept_variances_match_nlme(data, measure):
    ref = R["outcomes"][measure]["lme"]
    d = data.dropna(subset=[measure])
    x = np.column_stack([np.ones(len(d)), d["visit"] == "d3", d["visit"] == "m12"]).astype(float)
    fit = random_intercept_lmm(d[measure].to_numpy(), x, d["pid"].to_numpy())
    # R nlme: fit$sigma^2 and getVarCov(fit) of lme(value ~ visit, random = ~1 | pid, method = "REML")
    np.testing.assert_allclose([fit.sigma2, fit.tau2], [ref["sigma2"], ref["tau2"]], rtol=1e-6)
    assert not fit.boundary


def test_holm_matches_r():
    # R 4.2: p.adjust(c(0.01, 0.04, 0.03, 0.005, NA, 0.2), method = "holm")
    got = holm(np.array(R["holm"]["p"], dtype=float))
    want = np.array(R["holm"]["adjusted"], dtype=float)
    np.testing.assert_allclose(got, want, rtol=RTOL, equal_nan=True)


def test_descriptives(spec, data):
    d = describe_outcomes(spec, data)
    assert len(d) == 6
    row = d[(d["measure"] == "disab") & (d["timepoint"] == "m12")].iloc[0]
    x = data.loc[data["visit"] == "m12", "disab"].dropna()
    assert row["n"] == 26 and row["missing"] == 1
    np.testing.assert_allclose([row["mean"], row["sd"], row["median"]], [x.mean(), x.std(), x.median()])
    assert row["timepoint_label"] == "Month 12" and row["measure_label"] == "Disability (%)"


def test_long_frame_has_labels_and_order(spec, data):
    long = outcomes_long(spec, data)
    assert list(long.columns) == ["id", "measure", "measure_label", "timepoint", "timepoint_label",
                                  "timepoint_index", "value"]
    assert len(long) == 2 * len(data)
    first = long[long["id"] == "P01"].head(3)
    assert list(first["timepoint_index"]) == [0, 1, 2]
    assert list(long["measure"].unique()) == ["pain", "disab"]


def test_trajectories_for_the_figure(spec, data):
    res = analyze_outcomes(spec, data)
    traj = res.trajectories("pain")
    assert list(traj.columns) == ["id", "timepoint", "value"]
    assert list(traj["timepoint"].cat.categories) == ["Baseline", "Day 3", "Month 12"]
    assert traj["timepoint"].cat.ordered
    assert traj["id"].tolist()[:3] == [0, 0, 0] and traj["id"].max() == 26  # anonymous index, not "P01"
    with pytest.raises(KeyError):
        res.trajectories("nope")


def test_input_not_modified(spec, data):
    before = data.copy()
    analyze_outcomes(spec, data)
    pd.testing.assert_frame_equal(data, before)


def test_bad_inputs(spec, data):
    with pytest.raises(ValueError, match="not declared"):
        outcomes_long(spec, data.assign(visit=data["visit"].replace("d3", "day3")))
    with pytest.raises(ValueError, match="more than one row"):
        outcomes_long(spec, pd.concat([data, data.head(1)]))
    with pytest.raises(ValueError, match="lacks column"):
        outcomes_long(spec, data.drop(columns="pain"))
    bare = parse_spec({**make_spec().model_dump(exclude={"base_dir", "source", "repeated"})})
    with pytest.raises(ValueError, match="no 'repeated' section"):
        outcomes_tests(bare, data)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.floats(-50, 50, allow_nan=False).filter(lambda v: abs(v) > 1e-6), min_size=1, max_size=40))
def test_signed_rank_symmetry(diffs):
    """Swapping later and earlier gives V' = n(n+1)/2 - V and the same two-sided P."""
    d = np.round(np.array(diffs), 3)
    d = d[d != 0]
    if d.size == 0:
        return
    a = signed_rank_test(d, np.zeros_like(d))
    b = signed_rank_test(np.zeros_like(d), d)
    n = a.n
    assert a.statistic + b.statistic == pytest.approx(n * (n + 1) / 2)
    assert a.p_value == pytest.approx(b.p_value, rel=1e-12)
    assert 0 <= a.p_value <= 1


@settings(max_examples=25, deadline=None)
@given(st.integers(3, 40), st.integers(2, 5), st.integers(0, 10_000))
def test_balanced_mixed_model_wald_equals_rm_anova_f(n, k, seed):
    """Complete, balanced data with a positive patient variance: the random-intercept REML fit
    is the compound-symmetry model of the repeated-measures ANOVA, so its Wald chi-square over
    the timepoint terms is k - 1 times the ANOVA's F, and its fixed effects are the differences
    of the timepoint means (two closed forms checking each other)."""
    rng = np.random.default_rng(seed)
    y = rng.normal(0, 2, (n, 1)) + rng.normal(0, 1, (n, k)) + np.arange(k) * 0.3
    av = rm_anova(y)
    ss_subject_ms = av.ss_subject / (n - 1)
    if ss_subject_ms <= av.ss_error / av.df2:  # tau^2 at the boundary: the models differ
        return
    ids = np.repeat(np.arange(n), k)
    tp = np.tile(np.arange(k), n)
    x = np.column_stack([np.ones(n * k)] + [(tp == j).astype(float) for j in range(1, k)])
    fit = random_intercept_lmm(y.ravel(), x, ids)
    b = fit.coef[1:]
    chi2 = b @ np.linalg.solve(fit.cov[1:, 1:], b)
    np.testing.assert_allclose(chi2, (k - 1) * av.f, rtol=1e-6)
    np.testing.assert_allclose(b, y[:, 1:].mean(axis=0) - y[:, 0].mean(), rtol=1e-9, atol=1e-12)


def test_mixed_model_at_the_boundary_is_flagged_and_is_least_squares():
    """Patients more alike across than within (negative intra-class correlation): the REML
    patient variance is 0 (nlme reports a tiny one), the fit is ordinary least squares, and
    the analysis says so in a note."""
    y = np.array([[1.0, 3.0], [3.0, 1.0], [2.0, 2.5], [2.5, 2.0]])
    ids, tp = np.repeat(np.arange(4), 2), np.tile([0, 1], 4)
    x = np.column_stack([np.ones(8), tp == 1]).astype(float)
    fit = random_intercept_lmm(y.ravel(), x, ids)
    ols = np.linalg.lstsq(x, y.ravel(), rcond=None)[0]
    assert fit.boundary and fit.tau2 < 1e-6 * fit.sigma2
    np.testing.assert_allclose(fit.coef, ols, atol=1e-9)
