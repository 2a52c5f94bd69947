"""Tests of cementleak_stats.checks: pmsampsize worked examples, R glm reference, properties."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cementleak_stats.checks import (
    CHECK_COLUMNS,
    LOGISTIC_COLUMNS,
    candidate_parameters,
    logistic_sensitivity,
    r2_cs_from_c_statistic,
    r2_cs_from_lr,
    riley_sample_size,
    study_checks,
)
from cementleak_stats.spec import parse_spec

REF = Path(__file__).parent / "reference"

# R pmsampsize 1.1.3, tests/testthat/test_surv.R (CRAN; the package's own worked examples):
# pmsampsize(type = "s", rsquared, parameters, rate, timepoint, meanfup) ->
# results_table[, "Samp_size"] for criteria 1, 2, 3, final and [, "EPP"].
PMSAMPSIZE_SURV = [
    # (rsquared, parameters, rate, timepoint, meanfup), sample sizes, EPP
    ((0.051, 25, 0.065, 2, 2.07), (4286, 866, 4286, 4286), (23.07, 4.66, 23.07, 23.07)),
    ((0.065, 25, 0.065, 2, 2.07), (3335, 859, 3335, 3335), (17.95, 4.62, 17.95, 17.95)),
    ((0.051, 50, 0.065, 2, 2.07), (8572, 1731, 8572, 8572), (23.07, 4.66, 23.07, 23.07)),
    ((0.051, 25, 0.1, 2, 2.07), (4286, 731, 4286, 4286), (35.49, 6.05, 35.49, 35.49)),
    ((0.051, 25, 0.065, 4, 2.07), (4286, 866, 4286, 4286), (23.07, 4.66, 23.07, 23.07)),
    ((0.051, 25, 0.065, 2, 4), (4286, 679, 4286, 4286), (44.57, 7.06, 44.57, 44.57)),
    ((0.06, 40, 0.08, 3, 5), (5798, 969, 5798, 5798), (57.98, 9.69, 57.98, 57.98)),
    ((0.03, 10, 0.09, 3, 3), (2950, 272, 2950, 2950), (79.65, 7.34, 79.65, 79.65)),
    ((0.3, 80, 0.03, 1, 5), (1974, 2272, 2272, 2272), (3.7, 4.26, 4.26, 4.26)),
]


@pytest.mark.parametrize(("args", "sizes", "epp"), PMSAMPSIZE_SURV)
def test_riley_matches_pmsampsize_test_suite(args, sizes, epp):
    r2, p, rate, tp, fu = args
    res = riley_sample_size(r2_cs=r2, n_parameters=p, rate=rate, timepoint=tp, meanfup=fu)
    assert (res.n_criterion_1, res.n_criterion_2, res.n_criterion_3, res.n_final) == sizes
    assert res.epp == epp


def test_riley_documented_example_bmj():
    # pmsampsize help page / Riley et al. BMJ 2020 time-to-event example:
    # pmsampsize(type = "s", rsquared = 0.051, parameters = 30, rate = 0.065, timepoint = 2, meanfup = 2.07)
    # criterion (i) dominates: n = ceil(30 / ((0.9 - 1) ln(1 - 0.051/0.9))) (same formula as the suite above)
    res = riley_sample_size(r2_cs=0.051, n_parameters=30, rate=0.065, timepoint=2, meanfup=2.07)
    assert res.n_final == res.n_criterion_1 == math.ceil(30 / (-0.1 * math.log(1 - 0.051 / 0.9)))
    assert res.shrinkage_final == 0.9
    assert res.risk == pytest.approx(1 - math.exp(-0.13))
    assert res.risk_ci[0] < res.risk < res.risk_ci[1]


def test_riley_rejects_impossible_r2():
    with pytest.raises(ValueError, match="maximum possible"):
        riley_sample_size(r2_cs=0.5, n_parameters=5, rate=0.01, timepoint=1, meanfup=1)
    with pytest.raises(ValueError):
        riley_sample_size(r2_cs=0.95, n_parameters=5, rate=0.5, timepoint=1, meanfup=1)


def test_r2_from_lr():
    assert r2_cs_from_lr(20.0, 100) == pytest.approx(1 - math.exp(-0.2))
    assert r2_cs_from_lr(20.0, 100, n_parameters=5) == pytest.approx(0.75 * (1 - math.exp(-0.2)))
    assert r2_cs_from_lr(4.0, 100, n_parameters=5) == 0.0


@settings(max_examples=50, deadline=None)
@given(st.floats(0.5, 0.95), st.floats(0.5, 0.95), st.integers(5, 200))
def test_r2_from_c_is_monotone(c1, c2, events):
    lo, hi = sorted((c1, c2))
    a = r2_cs_from_c_statistic(lo, n=400, events=events)
    b = r2_cs_from_c_statistic(hi, n=400, events=events)
    assert 0 <= a <= b < 1
    assert r2_cs_from_c_statistic(0.5, n=400, events=events) == 0.0


# --- study-level checks -------------------------------------------------------------------

def make_spec(horizon=12, followup=24):
    return parse_spec({
        "study": {"title": "t", "id_column": "pid"},
        "cohort_file": "c.csv",
        "outcome": {"time": "months", "event": "leak", "event_label": "Leak", "horizon": horizon,
                    "followup": followup},
        "variables": [
            {"name": "dens", "label": "Density", "unit": "HU", "kind": "continuous", "candidate": True},
            {"name": "sev", "label": "Severity", "kind": "ordinal", "levels": ["lo", "mid", "hi"], "coding": "score",
             "candidate": True},
            {"name": "wall2", "label": "Wall", "kind": "binary", "levels": ["no", "yes"], "candidate": True},
            {"name": "loc", "label": "Location", "kind": "nominal", "levels": ["top", "mid", "bot"],
             "reference": "mid", "coding": "dummy", "candidate": True},
        ],
    })


@pytest.fixture(scope="module")
def spec():
    return make_spec()


@pytest.fixture(scope="module")
def cohort():
    df = pd.read_csv(REF / "checks_fixture.csv")
    for c, lv in {"sev": ["lo", "mid", "hi"], "wall2": ["no", "yes"], "loc": ["top", "mid", "bot"]}.items():
        df[c] = pd.Categorical(df[c], categories=lv)
    df["months"] = df["months"].astype(float)
    return df


def test_candidate_parameters(spec):
    assert candidate_parameters(spec) == 5  # dens, sev (score), wall2, loc[top], loc[bot]


def test_study_checks_epv_and_riley(spec, cohort):
    res = study_checks(spec, cohort, n_parameters=4, r2_cs=0.2)
    assert list(res.columns) == CHECK_COLUMNS
    events = int(cohort["leak"].sum())
    epv = res.set_index("check").loc["events per model parameter"]
    assert epv["value"] == pytest.approx(events / 4) and epv["threshold"] == 10
    assert res.set_index("check").loc["events per candidate parameter", "value"] == pytest.approx(events / 5)
    # Riley rows equal riley_sample_size on the cohort's rate and mean follow-up
    person_time = cohort["months"].sum()
    ref = riley_sample_size(r2_cs=0.2, n_parameters=4, rate=events / person_time, timepoint=12,
                            meanfup=person_time / len(cohort))
    row = res[res["check"].str.startswith("Riley (i) ") & res["check"].str.endswith("model parameters")].iloc[0]
    assert row["value"] == len(cohort) and row["threshold"] == ref.n_criterion_1
    assert row["ok"] == (len(cohort) >= ref.n_criterion_1)
    moe = res[res["check"].str.startswith("Riley (iii)")].iloc[0]
    rate = events / person_time
    want = (1 - math.exp(-(rate + 1.96 * math.sqrt(rate / person_time)) * 12)) - (1 - math.exp(-rate * 12))
    assert moe["value"] == pytest.approx(want, rel=1e-12)


def test_study_checks_r2_sources(spec, cohort):
    n = len(cohort)
    by_lr = study_checks(spec, cohort, n_parameters=4, lr_statistic=40.0)
    by_r2 = study_checks(spec, cohort, n_parameters=4, r2_cs=r2_cs_from_lr(40.0, n, n_parameters=4))
    pd.testing.assert_series_equal(by_lr["threshold"], by_r2["threshold"])
    assert "LR χ²" in by_lr["note"].iloc[2]
    by_c = study_checks(spec, cohort, n_parameters=4, c_statistic=0.75)
    assert by_c["check"].str.startswith("Riley").sum() == 5
    none = study_checks(spec, cohort, n_parameters=4)
    assert len(none) == 2  # only events per parameter without an anticipated R2


def test_low_epv_is_flagged(spec, cohort):
    res = study_checks(spec, cohort, n_parameters=50)
    row = res.iloc[0]
    assert not row["ok"] and "overfitting" in row["note"]


# --- logistic sensitivity analysis ---------------------------------------------------------

def test_logistic_matches_r_glm(spec, cohort):
    ref = pd.read_csv(REF / "checks_glm_r.csv")
    res = logistic_sensitivity(spec, cohort, predictors=["dens", "sev", "wall2", "loc"])
    assert list(res.table.columns) == LOGISTIC_COLUMNS
    assert list(res.table["term"]) == ["(Intercept)", "dens", "sev", "wall2", "loc[top]", "loc[bot]"]
    # R 4.2: glm(y ~ dens + sev_score + wall2 + loc, family = binomial) (loc reference "mid"),
    # summary()$coefficients and exp(confint.default())
    for ours, theirs in (("coef", "coef"), ("se", "se"), ("z", "z"), ("p_value", "p"), ("odds_ratio", "or"),
                         ("ci_low", "ci_low"), ("ci_high", "ci_high")):
        np.testing.assert_allclose(res.table[ours].to_numpy(), ref[theirs].to_numpy(), rtol=1e-9)
    assert res.n == 107 and res.n_events == 54
    assert res.n_excluded_censored == 11 and res.n_excluded_missing == 2
    assert res.converged


def test_logistic_reports_separation(spec, cohort):
    df = cohort.copy()
    df["wall2"] = pd.Categorical(np.where((df["leak"] == 1) & (df["months"] <= 12), "yes", "no"),
                                 categories=["no", "yes"])
    res = logistic_sensitivity(spec, df, predictors=["wall2"])
    assert any("separation" in n.lower() for n in res.notes)
    assert not res.converged and len(res.notes) == len(set(res.notes))
    assert res.table.loc[1, "ci_high"] == np.inf


def test_checks_do_not_modify_input(spec, cohort):
    before = cohort.copy()
    study_checks(spec, cohort, n_parameters=4, c_statistic=0.7)
    logistic_sensitivity(spec, cohort, predictors=["dens"])
    pd.testing.assert_frame_equal(cohort, before)
