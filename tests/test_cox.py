"""Tests of cementleak_stats.models.cox against R survival 3.5 (tests/reference/survival_reference.R).

Reference calls (see the R script): coxph(Surv(t, e) ~ ..., ties = "efron",
control = coxph.control(eps = 1e-12, iter.max = 100)); survfit(fit); predict(fit, type = "lp").
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cementleak_stats.design import encode
from cementleak_stats.errors import AnalysisError
from cementleak_stats.models.cox import (
    SCREEN_COLUMNS,
    compare_nested,
    fit_cox_model,
    fit_study_model,
    forest_data,
    model_tests,
    monotone_likelihood_terms,
    select_predictors,
    term_label,
    univariable_screen,
)
from cementleak_stats.spec import parse_spec

try:
    from test_cox_support import case_ids, fit_case, load_case, model_cases
except ImportError:  # pragma: no cover - run as a package
    from tests.test_cox_support import case_ids, fit_case, load_case, model_cases

RTOL = 1e-6
MODEL_CASES = model_cases()


@pytest.fixture(scope="module", params=MODEL_CASES, ids=case_ids(MODEL_CASES))
def fitted(request):
    return fit_case(*request.param)


def test_coefficients_equal_r(fitted):
    _, rm, model = fitted
    r = pd.DataFrame(rm["coef"])
    s = model.summary
    assert list(s["term"]) == list(r["term"])
    # R survival 3.5: summary(coxph(..., ties = "efron", control = coxph.control(eps = 1e-12)))
    for col in ("coef", "se", "hr", "ci_low", "ci_high", "z", "p_value"):
        np.testing.assert_allclose(s[col].to_numpy(), r[col].to_numpy(), rtol=RTOL, err_msg=col)


def test_global_tests_equal_r(fitted):
    _, rm, model = fitted
    tests = model_tests(model).set_index("test")
    # R: fit$loglik, summary(fit)$logtest
    np.testing.assert_allclose([model.loglik_null, model.loglik], [rm["loglik_null"], rm["loglik"]], rtol=1e-10)
    np.testing.assert_allclose(tests.loc["likelihood_ratio", ["statistic", "p_value"]].to_numpy(float),
                               [rm["lr"]["chisq"], rm["lr"]["p_value"]], rtol=RTOL)
    assert tests.loc["likelihood_ratio", "df"] == rm["lr"]["df"]
    # R: fit$wald.test
    np.testing.assert_allclose(tests.loc["wald", ["statistic", "p_value"]].to_numpy(float),
                               [rm["wald"]["chisq"], rm["wald"]["p_value"]], rtol=RTOL)


def test_baseline_survival_equals_r(fitted):
    case, rm, model = fitted
    shift = rm["centre_shift"]  # R: sum(coef * (colMeans(x) - fit$means)); see models/cox.py docstring
    np.testing.assert_allclose(model.means.to_numpy(), list(rm["colmeans"].values()), rtol=1e-12)
    base = pd.DataFrame(rm["baseline"])
    # R: survfit(fit) (Efron, ctype 2), at fit$means; the package's centre is colMeans(X)
    np.testing.assert_allclose(model.baseline["time"].to_numpy(), base["time"].to_numpy())
    np.testing.assert_allclose(model.baseline["cumhaz"].to_numpy(), base["cumhaz"].to_numpy() * np.exp(shift),
                               rtol=1e-8, atol=1e-12)
    # R: summary(survfit(fit), times = horizon)$surv, converted to the column-mean patient
    assert model.baseline_survival() == pytest.approx(rm["s0_horizon"] ** np.exp(shift), abs=1e-8)
    if abs(shift) < 1e-12:  # no 0/1 column: R's own centre is the package's
        assert model.baseline_survival() == pytest.approx(rm["s0_horizon"], abs=1e-8)


def test_linear_predictor_equals_r(fitted):
    case, rm, model = fitted
    X = encode(case.spec, case.cohort, model.variables).X
    # R: predict(fit, type = "lp") is centred at fit$means (0 for 0/1 columns)
    np.testing.assert_allclose(model.lp(X) + rm["centre_shift"], rm["lp"], rtol=RTOL, atol=1e-9)
    # the predicted risk does not depend on the centring: 1 - S0_R(t)^exp(lp_R)
    risk_r = 1 - rm["s0_horizon"] ** np.exp(np.asarray(rm["lp"]))
    np.testing.assert_allclose(model.risk(X), risk_r, rtol=1e-7, atol=1e-10)


@pytest.mark.parametrize("name", ["rossi", "lung", "gbsg2", "fixture", "cohort"])
def test_screen_equals_r(name):
    case = load_case(name)
    screen = univariable_screen(case.spec, case.cohort)
    r = pd.DataFrame(case.ref["screen"])
    assert list(screen.columns) == SCREEN_COLUMNS
    assert list(screen["term"]) == list(r["term"])
    # R: one coxph per candidate; per variable Wald P (one term) or LR test (factor)
    for col in ("coef", "se", "hr", "ci_low", "ci_high", "p_value", "variable_p_value", "lr_chisq"):
        np.testing.assert_allclose(screen[col].to_numpy(float), r[col].to_numpy(float), rtol=RTOL, err_msg=col)
    assert (screen["variable_test"] == np.where(r["variable_df"] == 1, "wald", "likelihood_ratio")).all()
    assert (screen["note"] == "").all()
    # R: the study file's rule applied in the R script
    assert select_predictors(case.spec, screen) == tuple(case.ref["selected"])


def test_shipped_cohort_selects_five_predictors():
    case = load_case("cohort")
    model, screen = fit_study_model(case.spec, case.cohort)
    assert model.variables == tuple(case.ref["selected"])
    assert len(model.variables) == 5
    assert model.ok and model.diagnostics == ()


def test_compare_nested_equals_r_loglik():
    case = load_case("rossi")
    full = fit_cox_model(case.spec, case.cohort, case.model("main")["variables"])
    reduced = fit_cox_model(case.spec, case.cohort, case.model("coarse")["variables"])
    res = compare_nested(full, reduced)
    # R: 2 * (fit_main$loglik[2] - fit_coarse$loglik[2])
    assert res["statistic"] == pytest.approx(2 * (case.model("main")["loglik"] - case.model("coarse")["loglik"]), rel=1e-8)
    assert res["df"] == 5
    with pytest.raises(ValueError):
        compare_nested(reduced, full)


def test_forest_data_labels_from_spec():
    case = load_case("fixture")
    model = fit_cox_model(case.spec, case.cohort, ["fracture_level", "cortical_fracture", "ct_value_hu", "fracture_severity"])
    fd = forest_data(case.spec, model, group="Multivariable")
    assert list(fd.columns) == ["term", "variable", "label", "hr", "ci_low", "ci_high", "p_value", "group"]
    assert list(fd["label"]) == [
        "Fractured level: thoracic vs thoracolumbar",
        "Fractured level: lumbar vs thoracolumbar",
        "Cortical (wall) fracture: yes vs no",
        "CT value (per HU)",
        "Fracture severity (Genant): per level (mild < moderate < severe)",
    ]
    np.testing.assert_allclose(fd["hr"], model.summary["hr"])


def test_prespecified_selection_uses_study_list():
    case = load_case("rossi")
    screen = univariable_screen(case.spec, case.cohort)
    assert select_predictors(case.spec, None) == case.spec.analysis.predictors
    assert set(screen.loc[screen["selected"], "variable"]) == set(case.spec.analysis.predictors)


def test_empty_screen_selection_raises():
    case = load_case("fixture")
    screen = univariable_screen(case.spec, case.cohort).assign(selected=False)
    with pytest.raises(AnalysisError, match="no candidate variable"):
        select_predictors(case.spec, screen)


# --- numerical trouble ------------------------------------------------------------------
def _separated(case):
    """The fixture with 'intravertebral_cleft' = yes exactly for the six earliest events."""
    c = case.cohort.copy()
    ev = c.index[c["leakage"] == 1]
    first = c.loc[ev].sort_values("time_to_leakage_months", kind="stable").index[:6]
    cleft = pd.Series("no", index=c.index)
    cleft[first] = "yes"
    # make the earliest time unique to these patients so that no risk set mixes them with a tie
    c["time_to_leakage_months"] = c["time_to_leakage_months"].where(~c.index.isin(first), 0.5)
    c["intravertebral_cleft"] = pd.Categorical(cleft, categories=["no", "yes"])
    return c


def test_separation_is_detected_and_explained():
    case = load_case("fixture")
    c = _separated(case)
    X = encode(case.spec, c, ["intravertebral_cleft", "ct_value_hu"]).X.to_numpy()
    assert monotone_likelihood_terms(X, c["time_to_leakage_months"].to_numpy(float), c["leakage"].to_numpy()) == [(0, 1)]
    with pytest.raises(AnalysisError) as info:
        fit_cox_model(case.spec, c, ["intravertebral_cleft", "ct_value_hu"])
    msg = str(info.value)
    assert "intravertebral_cleft" in msg and "Intravertebral cleft: yes vs no" in msg
    assert "separation" in msg and "penalizer" in msg


def test_penalized_fallback_gives_finite_estimates():
    case = load_case("fixture")
    c = _separated(case)
    model = fit_cox_model(case.spec, c, ["intravertebral_cleft", "ct_value_hu"], penalizer=0.1)
    assert model.penalizer == 0.1 and model.ok
    s = model.summary
    assert np.isfinite(s[["coef", "se"]].to_numpy()).all()
    assert 0 < s.loc[0, "coef"] < 10  # shrunk, finite, in the direction of the separation


def test_screen_notes_separated_variable():
    case = load_case("fixture")
    screen = univariable_screen(case.spec, _separated(case))
    row = screen.loc[screen["variable"] == "intravertebral_cleft"].iloc[0]
    assert "separation" in row["note"]
    # the Wald P of a runaway estimate is ~1 (Hauck-Donner); the screen uses the LR test
    assert row["p_value"] > 0.9
    assert row["variable_test"] == "likelihood_ratio" and row["variable_p_value"] == row["lr_p_value"] < 1e-6
    assert row["selected"]
    assert (screen.loc[screen["variable"] != "intravertebral_cleft", "note"] == "").all()


def test_screen_rows_are_fit_cox_model_bit_for_bit():
    """The screen's lighter path (no baseline, one sort for every candidate) reports each
    candidate exactly as fit_cox_model(on_problem="record") does, a separated one included."""
    case = load_case("fixture")
    cohort = _separated(case)
    screen = univariable_screen(case.spec, cohort)
    for var in case.spec.candidates:
        m = fit_cox_model(case.spec, cohort, [var.name], on_problem="record")
        rows = screen.loc[screen["variable"] == var.name]
        pd.testing.assert_frame_equal(rows[m.summary.columns.drop("z")].reset_index(drop=True),
                                      m.summary.drop(columns="z"), check_exact=True)
        assert (rows["lr_chisq"] == m.lr_chisq).all() and (rows["lr_p_value"] == m.lr_p_value).all()
        assert (rows["note"] == "; ".join(d.message for d in m.diagnostics)).all()
    # the separation check's tie groups, found in one pass over the sorted times (was searchsorted)
    from cementleak_stats.models.diagnostics import time_runs
    t = case.cohort["time_to_leakage_months"].to_numpy(float)
    order, first = time_runs(t)
    np.testing.assert_array_equal(first, np.searchsorted(t[order], t[order], side="left"))


def test_constant_column_names_the_variable():
    case = load_case("fixture")
    c = case.cohort.assign(sex=pd.Categorical(["female"] * len(case.cohort), categories=["female", "male"]))
    with pytest.raises(AnalysisError, match=r"variable 'sex' \(Sex\) is constant"):
        fit_cox_model(case.spec, c, ["sex", "ct_value_hu"])
    screen = univariable_screen(case.spec, c)
    row = screen.loc[screen["variable"] == "sex"]
    assert len(row) == 1 and "constant" in row["note"].iloc[0] and not row["selected"].iloc[0]


@pytest.fixture()
def collinear_data():
    spec = parse_spec({
        "study": {"title": "t", "id_column": "pid"}, "cohort_file": "c.csv",
        "outcome": {"time": "t", "event": "e", "horizon": 10, "followup": 10},
        "variables": [
            {"name": "a", "label": "A", "kind": "continuous", "candidate": True},
            {"name": "b", "label": "B", "kind": "continuous", "candidate": True},
            {"name": "g", "label": "G", "kind": "nominal", "levels": ["x", "y", "z"], "candidate": True},
        ],
    })
    rng = np.random.default_rng(3)
    n = 60
    a = rng.normal(size=n)
    df = pd.DataFrame({"a": a, "b": 2 * a + 1, "g": pd.Categorical(rng.choice(["x", "y", "z"], n), categories=["x", "y", "z"]),
                       "t": rng.integers(1, 10, n).astype(float), "e": rng.integers(0, 2, n)})
    return spec, df


def test_collinear_columns_are_named(collinear_data):
    spec, df = collinear_data
    with pytest.raises(AnalysisError, match="collinear") as info:
        fit_cox_model(spec, df, ["a", "g", "b"])
    assert "'b'" in str(info.value) and "'a'" in str(info.value) and "g[y]" not in str(info.value)


def test_near_collinearity_is_named(collinear_data):
    spec, df = collinear_data
    rng = np.random.default_rng(4)
    df = df.assign(b=df["a"] + 1e-4 * rng.normal(size=len(df)))  # R^2 = 1 - 1e-8, not exact
    with pytest.raises(AnalysisError, match="nearly collinear with 'a'") as info:
        fit_cox_model(spec, df, ["a", "g", "b"])
    assert "nearly collinear with 'b'" in str(info.value) and "g[y]" not in str(info.value)
    model = fit_cox_model(spec, df, ["a", "g", "b"], on_problem="record")
    assert [d.kind for d in model.diagnostics] == ["collinear", "collinear"] and not model.ok


def test_non_finite_se_is_reported():
    """lifelines #412: a non-positive-definite information gives NaN SEs; the rule names the term."""
    from cementleak_stats.models.cox import _post_fit_diagnostics

    case = load_case("rossi")
    design = encode(case.spec, case.cohort, ["fin", "age"])
    diags = _post_fit_diagnostics(case.spec, design, case.time, case.event, np.array([-0.3, -0.06]),
                                  np.array([0.19, np.nan]), [], False)
    assert [(d.kind, d.term) for d in diags] == [("nan_se", "age")]
    assert "Age at release (per year)" in diags[0].message and "#412" in diags[0].message


def test_missing_values_and_no_events_raise():
    case = load_case("rossi")
    c = case.cohort.copy()
    c.loc[3, "age"] = np.nan
    with pytest.raises(AnalysisError, match="missing values in"):
        fit_cox_model(case.spec, c, ["age"])
    with pytest.raises(AnalysisError, match="no events"):
        fit_cox_model(case.spec, case.cohort.assign(arrest=0), ["age"])


def test_term_label_kinds():
    case = load_case("gbsg2")
    model = fit_cox_model(case.spec, case.cohort, ["horTh", "age", "tgrade", "menostat"])
    assert [term_label(case.spec, t) for t in model.terms] == [
        "Hormonal therapy (tamoxifen): yes vs no", "Age (per year)",
        "Tumour grade: II vs I", "Tumour grade: III vs I", "Menopausal status: postmenopausal vs premenopausal",
    ]
    lung = load_case("lung")
    model = fit_cox_model(lung.spec, lung.cohort, ["ph_ecog"])
    assert [term_label(lung.spec, t) for t in model.terms] == ["ECOG performance score (physician): per level (0 < 1 < 2 < 3)"]


def test_input_cohort_not_modified():
    case = load_case("fixture")
    before = case.cohort.copy()
    univariable_screen(case.spec, case.cohort)
    pd.testing.assert_frame_equal(case.cohort, before)


def test_penalized_fit_equals_r_ridge(fitted):
    case, rm, _ = fitted
    model = fit_cox_model(case.spec, case.cohort, rm["variables"], penalizer=rm["ridge"]["penalizer"])
    # R survival 3.5: coxph(Surv(t, e) ~ ridge(X, theta = n * 0.1, scale = TRUE), ties = "efron")
    np.testing.assert_allclose(model.summary["coef"], rm["ridge"]["coef"], rtol=1e-6)
    np.testing.assert_allclose(model.summary["se"], rm["ridge"]["se"], rtol=1e-6)  # R: sqrt(diag(fit$var))
