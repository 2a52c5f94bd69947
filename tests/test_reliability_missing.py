"""Missing data (issue 6, item 3): complete-case analysis with its patient flow (the default) and
multiple imputation with Rubin's rules (``analysis.missing_data: multiple_imputation``).

Rubin's rules are checked against R ``mice`` 3.15 (tests/reference/reliability_mi.R): a hand
example through ``mice::pool.scalar``, and five stored imputations of the shipped cohort through
``coxph`` + ``mice::pool``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cementleak_stats.export import write_results
from cementleak_stats.imputation import POOLED_COLUMNS, impute_cohort, pool_cox, pool_rubin
from cementleak_stats.spec import load_spec
from cementleak_stats.study import compute_study

try:
    from test_reliability_support import REPO, SHIPPED, allow_missing, study_copy
except ImportError:  # pragma: no cover
    from tests.test_reliability_support import REPO, SHIPPED, allow_missing, study_copy

REF = REPO / "tests" / "reference"
#: cells blanked in the shipped cohort: column -> rows (0-based); CT value is a predictor of
#: the model, BMI a candidate the screen leaves out, viscosity a binary predictor
BLANK = {"ct_value_hu": [3, 17, 40, 58, 91], "bmi_kg_m2": [5, 17, 77], "cement_viscosity": [8, 40, 66, 70]}
ALLOW = allow_missing(*BLANK)


def _blank(c: pd.DataFrame) -> pd.DataFrame:
    for col, rows in BLANK.items():
        c.loc[rows, col] = None
    return c


N_INCOMPLETE = len(set().union(*BLANK.values()))  # patients with at least one blank cell


# --- complete-case analysis (default) ---------------------------------------------------------
def test_complete_case_analysis_reports_the_flow(tmp_path: Path) -> None:
    r = compute_study(load_spec(study_copy(tmp_path, edit=_blank, variables=ALLOW)))
    assert len(r.data.cohort) == 100 and len(r.analysed) == 100 - N_INCOMPLETE
    last = r.data.flow.iloc[-1]
    assert last["excluded"] == N_INCOMPLETE and last["n"] == 100 - N_INCOMPLETE
    for col, rows in BLANK.items():  # each column's count among the patients still in
        assert f"{SHIPPED.label(col)} ({len(rows)})" in last["reason"]
    assert r.model.n == 100 - N_INCOMPLETE and r.model_imputed is None
    write_results(r, tmp_path / "results", figures=False)
    flow = pd.read_csv(tmp_path / "results" / "patient_flow.csv")
    assert flow["n"].tolist() == [100, 100 - N_INCOMPLETE]
    assert not (tmp_path / "results" / "cox_multiple_imputation.csv").exists()


# --- Rubin's rules ----------------------------------------------------------------------------
def test_pool_rubin_matches_the_hand_calculation_and_mice_pool_scalar() -> None:
    ref = json.loads((REF / "reliability_mi_scalar.json").read_text())
    q, u = np.array(ref["Q"])[:, None], np.array(ref["U"])[:, None]
    # by hand: qbar = 1, W = 0.05, B = var(1, 1.2, 0.8) = 0.04, T = 0.05 + (4/3) 0.04 = 0.10333...,
    # riv = (4/3) 0.04 / 0.05 = 16/15, lambda = 0.05333 / 0.10333 = 16/31, nu_old = 2 / lambda^2 = 7.5078125
    large = pool_rubin(q, u).iloc[0]
    assert large["coef"] == pytest.approx(1.0) and large["within_variance"] == pytest.approx(0.05)
    assert large["between_variance"] == pytest.approx(0.04) and large["total_variance"] == pytest.approx(0.31 / 3)
    assert large["riv"] == pytest.approx(16 / 15) and large["lambda"] == pytest.approx(16 / 31)
    assert large["df"] == pytest.approx(2 / (16 / 31) ** 2)
    # R mice 3.15: pool.scalar(Q, U) (dfcom = Inf) and pool.scalar(Q, U, n = 30, k = 2) (dfcom = 28)
    for got, want in ((large, ref["large"]), (pool_rubin(q, u, dfcom=ref["dfcom"]).iloc[0], ref["finite"])):
        for ours, theirs in (("coef", "qbar"), ("within_variance", "ubar"), ("between_variance", "b"),
                             ("total_variance", "t"), ("df", "df"), ("riv", "r"), ("fmi", "fmi")):
            assert got[ours] == pytest.approx(want[theirs], rel=1e-10), ours


def test_pool_cox_matches_mice_pool_on_stored_imputations() -> None:
    long = pd.read_csv(REF / "reliability_mi_imputations.csv")
    frames = [g.drop(columns=[".imp", ".id"]).reset_index(drop=True) for k, g in long.groupby(".imp") if k > 0]
    predictors = ["ct_value_hu", "fracture_severity", "cortical_fracture", "cement_viscosity", "cement_volume_ml"]
    pooled, estimates = pool_cox(SHIPPED, frames, predictors)
    assert list(pooled.columns) == POOLED_COLUMNS and len(estimates) == 5 * len(predictors)
    # R mice 3.15: pool(with(as.mids(long), coxph(Surv(t, e) ~ ..., ties = "efron")), dfcom = events - 5)
    ref = pd.read_csv(REF / "reliability_mi_pool.csv").set_index("term")
    got = pooled.set_index("term").loc[ref.index]
    pairs = {"coef": "estimate", "within_variance": "ubar", "between_variance": "b", "total_variance": "t",
             "dfcom": "dfcom", "df": "df", "riv": "riv", "lambda": "lambda", "fmi": "fmi", "se": "std_error",
             "statistic": "statistic", "p_value": "p_value"}
    for ours, theirs in pairs.items():
        np.testing.assert_allclose(got[ours], ref[theirs], rtol=1e-6, err_msg=ours)
    # our CI is on the hazard-ratio scale: exp of mice's conf.low / conf.high
    np.testing.assert_allclose(np.log(got["ci_low"]), ref["conf_low"], rtol=1e-6)
    np.testing.assert_allclose(np.log(got["ci_high"]), ref["conf_high"], rtol=1e-6)


# --- the imputations ---------------------------------------------------------------------------
def _incomplete_cohort() -> pd.DataFrame:
    long = pd.read_csv(REF / "reliability_mi_imputations.csv")
    return long[long[".imp"] == 0].drop(columns=[".imp", ".id"]).reset_index(drop=True)


def test_imputations_keep_observed_values_and_draw_valid_ones() -> None:
    cohort = _incomplete_cohort()
    cols = ["ct_value_hu", "fracture_severity", "cement_viscosity", "cortical_fracture", "cement_volume_ml"]
    done = impute_cohort(SHIPPED, cohort, cols, m=3, rng=np.random.default_rng(1))
    again = impute_cohort(SHIPPED, cohort, cols, m=3, rng=np.random.default_rng(1))
    other = impute_cohort(SHIPPED, cohort, cols, m=3, rng=np.random.default_rng(2))
    for d, d2 in zip(done, again):
        pd.testing.assert_frame_equal(d, d2)  # same generator, same imputations
    assert any(not d["ct_value_hu"].equals(o["ct_value_hu"]) for d, o in zip(done, other))
    assert not done[0]["ct_value_hu"].equals(done[1]["ct_value_hu"])  # imputations differ from each other
    for d in done:
        assert not d[cols].isna().any().any()
        for c in cols:
            observed = cohort[c].notna()
            assert (d.loc[observed, c].astype(object) == cohort.loc[observed, c].astype(object)).all()
            # predictive mean matching: every imputed value is one of the observed values
            assert set(d.loc[~observed, c].astype(str)) <= set(cohort.loc[observed, c].astype(str))
        assert list(d["fracture_severity"].cat.categories) == list(SHIPPED.variable("fracture_severity").levels)


def test_no_missing_values_pools_to_the_complete_data_fit() -> None:
    full = pd.read_csv(REPO / "data" / "cohort.csv")
    done = impute_cohort(SHIPPED, full, ["ct_value_hu", "cement_volume_ml"], m=3, rng=np.random.default_rng(0))
    pooled, _ = pool_cox(SHIPPED, done, ["ct_value_hu", "cement_volume_ml"])
    from cementleak_stats.models.cox import fit_cox_model

    fit = fit_cox_model(SHIPPED, full, ["ct_value_hu", "cement_volume_ml"])
    np.testing.assert_allclose(pooled["coef"], fit.summary["coef"], rtol=1e-12)
    np.testing.assert_allclose(pooled["se"], fit.summary["se"], rtol=1e-12)
    np.testing.assert_allclose(pooled["between_variance"], 0, atol=1e-20)


# --- the study file option -------------------------------------------------------------------
def test_multiple_imputation_selected_in_the_study_file(tmp_path: Path) -> None:
    study = study_copy(tmp_path, edit=_blank, variables=ALLOW,
                       analysis={"missing_data": "multiple_imputation", "imputations": 5})
    r = compute_study(load_spec(study))
    mi = r.model_imputed
    assert mi is not None and mi.m == 5 and mi.n == 100
    assert mi.pooled["term"].tolist() == r.model.summary["term"].tolist()  # the complete-case model's terms
    assert np.isfinite(mi.pooled[["coef", "se", "df", "p_value"]].to_numpy(float)).all()
    assert (mi.pooled["between_variance"] > 0).any() and (mi.pooled["m"] == 5).all()
    missing = mi.missing.set_index("variable")["n_missing"]
    assert missing.get("ct_value_hu") == len(BLANK["ct_value_hu"])
    # every other result is complete-case, and the flow and the notes say so
    assert len(r.analysed) == 100 - N_INCOMPLETE and r.model.n == 100 - N_INCOMPLETE
    assert "multiple-imputation model keeps these patients" in r.data.flow.iloc[-1]["reason"]
    assert any("multiply imputed (m = 5" in n and "complete-case analysis" in n for n in r.notes)
    write_results(r, tmp_path / "results", figures=False)
    pooled = pd.read_csv(tmp_path / "results" / "cox_multiple_imputation.csv")
    assert list(pooled.columns) == POOLED_COLUMNS
    summary = json.loads((tmp_path / "results" / "summary.json").read_text())
    assert summary["missing_data"] == "multiple_imputation"
    # the same study file gives the same imputed model (seeded from analysis.seed)
    again = compute_study(load_spec(study)).model_imputed
    pd.testing.assert_frame_equal(again.pooled, mi.pooled)


GUARANTEES = [
    ("complete-case-flow", "patients with a missing candidate are excluded and counted per column in the flow"),
    ("rubin-hand-and-pool.scalar", "Rubin's rules equal a hand calculation and R mice::pool.scalar (1e-10)"),
    ("rubin-vs-mice-pool", "pooled Cox coefficients, variances, Barnard-Rubin df, fmi, CI and P equal R "
                           "mice::pool on the same imputations (1e-6)"),
    ("imputations-valid", "observed values untouched; imputed values are observed ones (PMM); seeded"),
    ("no-missing-values", "with nothing missing, the pooled model is the complete-data fit"),
    ("study-file-option", "`analysis.missing_data: multiple_imputation` adds a pooled model; the rest stays "
                          "complete-case and the notes say so"),
]
