"""The Cox LASSO selection (models/lasso.py) against R glmnet 4.1
(tests/reference/lasso_reference.R, committed JSON; the design, folds and penalty path it reads
are written by the package under tests/reference/data/lasso_*.csv) on the shipped SYNTHETIC
study and on GBSG-2.
"""

from __future__ import annotations

import hashlib
import json
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cementleak_stats.cohort.io import load_study_data
from cementleak_stats.models.lasso import breslow_deviance, lasso_path, lasso_select, make_lasso_fit_fn
from cementleak_stats.spec import load_spec
from cementleak_stats.validation.resample import cox_data

ROOT = Path(__file__).resolve().parents[1]
REF = ROOT / "tests" / "reference"
CASES = {"shipped": ROOT / "study.yaml", "gbsg2": ROOT / "tests" / "studies" / "gbsg2" / "study.yaml"}


def pipeline_rng(spec) -> np.random.Generator:
    """The stream run_study gives the LASSO's folds (study._rngs(seed, 10)[8])."""
    return np.random.default_rng(np.random.SeedSequence(spec.analysis.seed).spawn(10)[8])


@cache
def case(name: str):
    ref = json.loads((REF / f"lasso_{name}.json").read_text())
    fixture = REF / "data" / f"lasso_{name}.csv"
    if hashlib.md5(fixture.read_bytes()).hexdigest() != ref["source"]["data_md5"]:
        pytest.fail(f"{fixture} changed after its R reference: rerun Rscript tests/reference/lasso_reference.R")
    spec = load_spec(CASES[name])
    cohort = load_study_data(spec).analysed
    sel = lasso_select(spec, cohort, rng=pipeline_rng(spec))
    return spec, cohort, sel, pd.read_csv(fixture), ref


@pytest.mark.parametrize("name", CASES)
def test_fixture_is_the_package_design_and_folds(name):
    spec, cohort, sel, fx, ref = case(name)
    data = cox_data(spec, cohort, [v.name for v in spec.candidates])
    assert list(data.terms) == ref["terms"] == list(fx.columns[:-3])
    assert fx[list(data.terms)].to_numpy() == pytest.approx(data.X, rel=1e-15)
    assert (fx["fold"].to_numpy() - 1 == sel.folds).all()
    # every fold has events (stratified folds)
    assert all(fx.loc[fx["fold"] == k, "event"].sum() > 0 for k in fx["fold"].unique())


@pytest.mark.parametrize("name", CASES)
def test_path_as_glmnet(name):
    *_, sel, fx, ref = case(name)
    lam = np.asarray(ref["lambda"])
    assert sel.cv["lambda"].to_numpy() == pytest.approx(lam, rel=1e-12)
    # R glmnet 4.1: glmnet(x, Surv(t, e), family = "cox", alpha = 1)$lambda[1], the smallest penalty with no term
    assert lam[0] == pytest.approx(ref["lambda_max_default"], rel=1e-8)
    # coef(glmnet(x, Surv(t, e), family = "cox", alpha = 1, lambda = path, thresh = 1e-14))
    coef = sel.path.pivot(index="term", columns="lambda", values="coef").loc[ref["terms"]].to_numpy()[:, ::-1]
    r = np.asarray(ref["coef"])
    k = min(coef.shape[1], r.shape[1])
    assert coef[:, :k] == pytest.approx(r[:, :k], rel=1e-4, abs=1e-6)  # glmnet converges to thresh = 1e-14 (KKT ~1e-8)


@pytest.mark.parametrize("name", CASES)
def test_cross_validation_and_chosen_penalty_as_glmnet(name):
    *_, sel, fx, ref = case(name)
    # R glmnet: cv.glmnet(x, y, family = "cox", foldid = fold, lambda = path, grouped = TRUE)
    # the smallest two penalties are left out: where a fold's path stops early (the deviance no longer
    # changes), glmnet and scikit-survival stop at different points and carry different last fits
    k = min(len(sel.cv), len(ref["cvm"])) - 2
    assert sel.cv["cvm"].to_numpy()[:k] == pytest.approx(ref["cvm"][:k], rel=1e-5)
    assert sel.cv["cvsd"].to_numpy()[:k] == pytest.approx(ref["cvsd"][:k], rel=1e-4)
    assert sel.lambda_min == pytest.approx(ref["lambda_min"], rel=1e-12)
    assert sel.lambda_1se == pytest.approx(ref["lambda_1se"], rel=1e-12)
    # coef(fit, s = lambda.min): the LASSO coefficients at the chosen penalty, and the selection
    assert sel.coef[ref["terms"]].to_numpy() == pytest.approx(ref["coef_min"], rel=1e-4, abs=1e-6)
    nonzero = {t for t, c in zip(ref["terms"], ref["coef_min"]) if c != 0}
    assert {t for t, c in sel.coef.items() if c != 0} == nonzero


def test_breslow_deviance_of_the_null_model():
    """With beta = 0 and no ties the deviance is 2 (l_sat - l(0)) = 2 sum log(risk-set size)."""
    t = np.array([5.0, 3.0, 8.0, 1.0, 6.0])
    e = np.array([1, 1, 0, 1, 1], bool)
    dev = breslow_deviance(np.zeros((5, 1)), t, e, np.zeros((1, 1)))
    assert dev[0] == pytest.approx(2 * (np.log(5) + np.log(4) + np.log(3) + np.log(2)))


def test_replicates_repeat_the_selection():
    """The honest fit function selects on each replicate with the chosen penalty: on the
    original rows it selects what the study selected."""
    spec, cohort, sel, _, _ = case("shipped")
    data = cox_data(spec, cohort, list(sel.variables))
    lam = sel.cv["lambda"].to_numpy()
    fits = make_lasso_fit_fn(sel.lambda_chosen, lam)(data, np.vstack([np.ones(len(cohort)),
                                                                       np.random.default_rng(2).multinomial(
                                                                           len(cohort), np.full(len(cohort), 1 / len(cohort)))]))
    assert tuple(v for v, s in zip(sel.variables, fits.selected[0]) if s) == sel.selected
    assert fits.ok.all() and fits.selected.shape == (2, len(sel.variables))
    _, coef = lasso_path(data.X, data.time, data.event, np.r_[lam[lam > sel.lambda_chosen], sel.lambda_chosen])
    assert coef[:, -1] == pytest.approx(sel.coef.to_numpy(), rel=1e-8, abs=1e-12)


def test_a_lasso_study_end_to_end():
    """selection: lasso through the pipeline: the LASSO's variables are the model's, the honest
    validation repeats it, and its figures read cleanly."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from figure_checks import figure_problems

    from cementleak_stats import presentation
    from cementleak_stats.export import results_tables
    from cementleak_stats.study import compute_study

    spec = load_spec(CASES["shipped"])
    spec = spec.model_copy(update={"analysis": spec.analysis.model_copy(update={"selection": "lasso", "bootstrap_b": 8})})
    r = compute_study(spec)
    assert r.predictors == r.lasso.selection.selected == case("shipped")[2].selected
    assert set(r.screen.loc[r.screen["selected"], "variable"]) == set(r.predictors)
    v = r.lasso.validation.set_index("index")
    assert v.loc["C", "n_boot"] == 8 and v.loc["C", "corrected"] < v.loc["C", "apparent"]
    assert {"lasso_path", "lasso_cv", "lasso_coefficients", "validation_lasso"} <= set(results_tables(r))
    for name in ("lasso_path", "lasso_cv"):
        fig = presentation.FIGURES[name](r)
        try:
            assert figure_problems(fig) == {}, name
        finally:
            plt.close(fig)
    assert not presentation.TABLES["lasso"](r).empty
