"""The whole pipeline on the test studies under ``tests/studies/`` against R.

Each study folder (rossi: weeks; lung: days, missing values, a one-patient ordinal level;
gbsg2: years, a three-level nominal predictor, women censored before the first event) is run
through :func:`cementleak_stats.study.compute_study` exactly as ``cementleak analyze`` runs it
(bootstrap off: no number checked here depends on it), and every number below is compared with
``tests/reference/survival_<study>.json``, written by ``Rscript tests/reference/survival_reference.R``
(R 4.2.2, survival 3.5.3, riskRegression 2022.11.28; functions in survival_common.R), which reads
the same study file with the ``yaml`` package and builds the model with R factors.

R's ``coxph`` centres 0/1 columns at 0 (``fit$means``); the package centres every column at its
mean, so R's baseline and linear predictor are converted with ``centre_shift`` =
sum(coef * (colMeans(x) - fit$means)) (see models/cox.py).
"""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest

from cementleak_stats.spec import load_spec
from cementleak_stats.study import StudyResults, compute_study

try:
    from test_cox_support import REPO, reference
except ImportError:  # pragma: no cover - run as a package
    from tests.test_cox_support import REPO, reference

STUDIES = ("rossi", "lung", "gbsg2")
RTOL = 1e-6  # as tests/test_cox.py and test_ph.py


@pytest.fixture(scope="module", params=STUDIES)
def study(request) -> tuple[StudyResults, dict]:
    name = request.param
    ref = reference(name)
    assert ref is not None, f"run Rscript tests/reference/survival_reference.R: no survival_{name}.json"
    data_file = REPO / ref["source"]["data_file"]
    assert hashlib.md5(data_file.read_bytes()).hexdigest() == ref["source"]["data_md5"], (
        f"{data_file} changed after its R reference: rerun Rscript tests/reference/survival_reference.R")
    spec = load_spec(REPO / "tests" / "studies" / name / "study.yaml")
    assert REPO / ref["source"]["study_file"] == spec.source
    spec = spec.model_copy(update={"analysis": spec.analysis.model_copy(update={"bootstrap_b": 0})})
    return compute_study(spec), ref


def _metric(r: StudyResults, name: str) -> float:
    m = r.calibration.metrics.set_index("measure")
    return float(m.loc[name, "value"])


def test_patients_and_events_equal_r(study):
    r, ref = study
    # R: complete.cases() on the candidate and prespecified predictors; nrow(); sum(event)
    assert len(r.analysed) == ref["source"]["n_analysed"]
    assert int(r.analysed[r.spec.outcome.event].sum()) == ref["source"]["events"]
    assert r.predictors == tuple(ref["selected"])


def test_cox_model_equals_r(study):
    r, ref = study
    rm = ref["models"]["main"]
    s, c = r.model.summary, pd.DataFrame(rm["coef"])
    assert list(s["term"]) == list(c["term"])
    # R survival 3.5: summary(coxph(Surv(t, e) ~ ..., ties = "efron", control = coxph.control(eps = 1e-12)))
    for col in ("coef", "se", "hr", "ci_low", "ci_high", "z", "p_value"):
        np.testing.assert_allclose(s[col].to_numpy(float), c[col].to_numpy(float), rtol=RTOL, err_msg=col)
    # R: fit$loglik; summary(fit)$logtest
    np.testing.assert_allclose([r.model.loglik_null, r.model.loglik], [rm["loglik_null"], rm["loglik"]], rtol=1e-10)
    assert r.model.lr_chisq == pytest.approx(rm["lr"]["chisq"], rel=RTOL)


def test_baseline_survival_and_predictions_equal_r(study):
    r, ref = study
    rm = ref["models"]["main"]
    shift = rm["centre_shift"]
    # R: summary(survfit(fit), times = horizon)$surv at fit$means, moved to the column-mean patient
    assert r.model.baseline_survival() == pytest.approx(rm["s0_horizon"] ** np.exp(shift), abs=1e-8)
    # R: predict(fit, type = "lp") (centred at fit$means)
    np.testing.assert_allclose(r.predictions["lp"] + shift, rm["lp"], rtol=RTOL, atol=1e-9)
    # R: 1 - summary(survfit(fit), times = horizon)$surv ^ exp(predict(fit, type = "lp"))
    risk = 1 - rm["s0_horizon"] ** np.exp(np.asarray(rm["lp"]))
    np.testing.assert_allclose(r.predictions["risk_at_horizon"], risk, rtol=1e-7, atol=1e-10)


def test_ph_test_per_term_and_global_equals_r(study):
    r, ref = study
    rm = ref["models"]["main"]
    tab = r.ph.table
    main = tab[tab["scope"] != "coefficient"]
    zt = pd.DataFrame(rm["zph_terms"]["table"])
    # R survival 3.5: cox.zph(fit, transform = "km")$table (terms = TRUE: a factor's k - 1 terms jointly)
    assert list(main["term"]) == list(zt["term"]) and list(main["df"]) == list(zt["df"])
    np.testing.assert_allclose(main["chisq"], zt["chisq"], rtol=RTOL)
    np.testing.assert_allclose(main["p_value"], zt["p"], rtol=RTOL)
    assert list(main["scope"]) == ["term"] * (len(main) - 1) + ["global"]
    # R: cox.zph(fit, transform = "km", terms = FALSE)$table, rows of the coefficients of factors
    extra = tab[tab["scope"] == "coefficient"].set_index("term")
    zf = pd.DataFrame(rm["zph"]["table"]).set_index("term").loc[extra.index]
    np.testing.assert_allclose(extra["chisq"], zf["chisq"], rtol=RTOL)
    np.testing.assert_allclose(extra["p_value"], zf["p"], rtol=RTOL)


def test_gbsg2_grade_is_one_two_df_term():
    """The issue's case: a 3-level nominal predictor is one row with df = 2 (R terms = TRUE)."""
    ref = reference("gbsg2")
    zt = pd.DataFrame(ref["models"]["main"]["zph_terms"]["table"]).set_index("term")
    assert zt.loc["tgrade", "df"] == 2  # R: cox.zph(fit, transform = "km")$table["tgrade", "df"]


def test_discrimination_equals_r(study):
    r, ref = study
    rm = ref["models"]["main"]
    conc = r.concordance.set_index("measure")
    # R survival 3.5: concordance(fit)$concordance and sqrt(concordance(fit)$var)
    assert conc.loc["c_index", "estimate"] == pytest.approx(rm["concordance"]["concordance"], rel=1e-12)
    assert conc.loc["c_index", "se"] == pytest.approx(np.sqrt(rm["concordance"]["var"]), rel=1e-8)
    below = rm["auc"]["below_horizon"]
    # R riskRegression: Score(list(plogis(lp)), Surv(t, e) ~ 1, times = horizon - 1e-6, metrics = "auc",
    #                         cens.model = "km")$AUC$score$AUC
    assert conc.loc["auc", "estimate"] == pytest.approx(below["auc"], rel=1e-10)
    # R: the same with conservative = TRUE (censoring weights taken as known), $se
    assert conc.loc["auc", "se"] == pytest.approx(below["se_conservative"], rel=1e-8)


def test_calibration_line_equals_r(study):
    r, ref = study
    line = ref["models"]["main"]["line"]
    # R: E = predict(fit, newdata = <follow-up truncated at the horizon>, type = "expected");
    #    glm(o ~ 1 + offset(log(E)), poisson, subset = E > 0)
    assert _metric(r, "calibration_intercept") == pytest.approx(line["intercept"], rel=1e-6, abs=1e-9)
    assert _metric(r, "o_e_ratio") == pytest.approx(line["observed"] / line["expected"], rel=1e-7)
    # R: glm(o ~ lp + offset(log(E) - lp), poisson, subset = E > 0), coefficient of lp
    assert _metric(r, "calibration_slope") == pytest.approx(line["slope"], rel=1e-6)


def test_brier_score_equals_r(study):
    r, ref = study
    b = ref["models"]["main"]["brier"]
    # R riskRegression: Score(list(risk), Surv(t, e) ~ 1, times = u * (1 - 1e-6), metrics = "brier",
    #                         cens.model = "km", null.model = TRUE)$Brier$score
    assert _metric(r, "brier") == pytest.approx(b["brier"], rel=1e-8)
    assert _metric(r, "brier_null") == pytest.approx(b["brier_null"], rel=1e-8)


def test_early_censoring_is_in_the_references():
    """The calibration line is checked on a cohort where it used to fail: patients censored
    before the first event have E = 0 (R: sum(E == 0)); the other studies have none."""
    assert reference("gbsg2")["models"]["main"]["line"]["n_zero_expected"] == 14
    assert reference("rossi")["models"]["main"]["line"]["n_zero_expected"] == 0
