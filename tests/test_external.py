"""The development model applied unchanged to a validation cohort (validation/external.py),
checked against R on two data sets (tests/reference/external_reference.R, committed JSON):

* ``rossi`` — Rossi's recidivism data split by row order (a split "by period" on the id),
  horizon 52 weeks (everyone event-free censored at 52: AUC and Brier just below it);
* ``lung``  — survival::lung, development institutions 1-11, validation 12-33 (a validation
  cohort file), horizon 365 days with censoring before it.
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
from cementleak_stats.errors import AnalysisError
from cementleak_stats.models.cox import fit_cox_model
from cementleak_stats.spec import load_spec
from cementleak_stats.validation.external import COHORT_COLUMN, split_cohort, validate_in_cohort

REF = Path(__file__).resolve().parent / "reference"
CASES = ("rossi", "lung")


@cache
def case(name: str):
    ref = json.loads((REF / f"external_{name}.json").read_text())
    data_file = REF.parent.parent / ref["source"]["data_file"]
    if hashlib.md5(data_file.read_bytes()).hexdigest() != ref["source"]["data_md5"]:
        pytest.fail(f"{data_file} changed after its R reference: rerun Rscript tests/reference/external_reference.R")
    spec = load_spec(REF.parent.parent / ref["source"]["study"])
    data = load_study_data(spec)
    if data.validation is not None:
        dev, val = data.analysed, data.validation.analysed
    else:
        v = spec.validation
        dev, val = split_cohort(spec, data.analysed, fraction=v.split, by=v.by, period_column=v.period_column)
    model = fit_cox_model(spec, dev, spec.analysis.predictors)
    res = validate_in_cohort(spec, model, dev, val, label=spec.validation.display_label, kind=spec.validation.cohort_kind)
    return spec, model, dev, val, res, ref


def _measure(frame: pd.DataFrame, name: str) -> pd.Series:
    return frame.set_index("measure").loc[name]


@pytest.mark.parametrize("name", CASES)
def test_cohorts_and_model_as_r(name):
    spec, model, dev, val, res, ref = case(name)
    assert (len(dev), len(val)) == (ref["n_dev"], ref["n_val"])
    assert (int(dev[spec.outcome.event].sum()), res.n_events) == (ref["events_dev"], ref["events_val"])
    # R survival 3.5: coxph(..., ties = "efron", eps = 1e-12) on the development cohort; |coef|
    # because R codes some binary variables with the other reference level
    assert np.sort(np.abs(model.coef.to_numpy())) == pytest.approx(np.sort(np.abs(ref["coef"])), rel=1e-7)
    # lp of the validation patients centred at the development means (R: X_val b - b'colMeans(X_dev))
    assert res.predictions["lp"].to_numpy() == pytest.approx(ref["lp_val"], rel=1e-7, abs=1e-9)
    # R rms 6.5: val.surv(cph_fit, newdata = val, S = Surv(t, e), u = u)$p  (predicted S(u)); cph's own lp
    assert res.predictions["risk_at_horizon"].to_numpy() == pytest.approx(ref["val_surv"]["risk"], rel=1e-7, abs=1e-10)
    assert res.predictions["lp"].to_numpy() == pytest.approx(ref["val_surv"]["cph_lp_val"], rel=1e-7, abs=1e-9)


@pytest.mark.parametrize("name", CASES)
def test_discrimination_as_r(name):
    *_, res, ref = case(name)
    c = _measure(res.discrimination, "c_index")
    # R survival 3.5: concordance(fit, newdata = val)
    assert c.estimate == pytest.approx(ref["concordance"]["concordance"], rel=1e-12)
    assert c.se**2 == pytest.approx(ref["concordance"]["var"], rel=1e-9)
    # R riskRegression: Score(list(risk), Surv(t, e) ~ 1, data = val, times = u - 1e-6, metrics = "auc",
    #                         cens.model = "km", conservative = TRUE)
    a = _measure(res.discrimination, "auc")
    assert a.estimate == pytest.approx(ref["auc"]["auc"], rel=1e-9)
    assert a.se == pytest.approx(ref["auc"]["se"], rel=1e-8)


@pytest.mark.parametrize("name", CASES)
def test_calibration_in_the_large_as_r(name):
    *_, res, ref = case(name)
    cal = res.calibration.set_index("measure")
    km = ref["km"]
    # R survival: 1 - summary(survfit(Surv(t, e) ~ 1, val), times = u)$surv, Greenwood std.err
    assert cal.loc["observed_risk", "estimate"] == pytest.approx(km["observed"], rel=1e-12)
    half = cal.loc["observed_risk", "ci_high"] - cal.loc["observed_risk", "estimate"]
    assert half == pytest.approx(1.959963984540054 * km["se"], rel=1e-9)
    assert cal.loc["predicted_risk", "estimate"] == pytest.approx(km["predicted"], rel=1e-8)
    oe = km["observed"] / km["predicted"]
    assert cal.loc["o_e_km", "estimate"] == pytest.approx(oe, rel=1e-8)
    # CI exp(log(O/E) -/+ z SE(O)/O), SE(O) the Greenwood SE (Debray et al. 2017)
    assert np.log(cal.loc["o_e_km", "ci_high"] / oe) == pytest.approx(1.959963984540054 * km["se"] / km["observed"], rel=1e-8)
    # R: sum(o) / sum(E), E = predict(coxph_fit, newdata = val truncated at u, type = "expected")
    p = ref["poisson"]
    assert cal.loc["calibration_intercept", "estimate"] == pytest.approx(p["log_o_e"], rel=1e-8)
    assert cal.loc["o_e_poisson", "estimate"] == pytest.approx(np.exp(p["log_o_e"]), rel=1e-8)
    if p["n_zero_expected"] == 0:  # then R's intercept-only glm is the same model, with SE 1/sqrt(O)
        assert cal.loc["calibration_intercept", "estimate"] == pytest.approx(p["intercept_glm"], rel=1e-8)
        se = (cal.loc["calibration_intercept", "ci_high"] - cal.loc["calibration_intercept", "estimate"]) / 1.959963984540054
        assert se == pytest.approx(p["intercept_se_glm"], rel=1e-5)  # R glm stops at its IRLS tolerance (1e-8): SE 8e-7 off 1/sqrt(O)


@pytest.mark.parametrize("name", CASES)
def test_calibration_slope_as_r(name):
    *_, res, ref = case(name)
    s = _measure(res.calibration, "calibration_slope")
    # R: glm(o ~ lp + offset(log(E) - lp), family = poisson, subset = E > 0)
    assert s.estimate == pytest.approx(ref["poisson"]["slope"], rel=1e-7)
    if np.isfinite(s.ci_high):
        assert (s.ci_high - s.estimate) / 1.959963984540054 == pytest.approx(ref["poisson"]["slope_se"], rel=1e-5)  # R glm: IRLS tolerance 1e-8


@pytest.mark.parametrize("name", CASES)
def test_km_groups_as_r(name):
    *_, res, ref = case(name)
    g = res.groups
    r = ref["groups"]
    # R rms 6.5: groupkm(S(u), Surv(t, e), u = u, cuts = quantile(c(0, 1, S(u)), 0:g / g)); R lists the
    # groups by increasing predicted survival, the package by increasing risk: the reverse order
    rev = {k: list(reversed(r[k])) for k in ("n", "events", "predicted", "observed", "std_err")}
    assert g["n"].tolist() == rev["n"]
    assert g["events"].tolist() == rev["events"]
    assert g["predicted"].to_numpy() == pytest.approx(rev["predicted"], rel=1e-8)
    assert g["observed"].to_numpy() == pytest.approx(rev["observed"], rel=1e-12)
    edges = np.unique(np.r_[1 - g["risk_low"].to_numpy(), 1 - g["risk_high"].to_numpy()])
    assert edges == pytest.approx(r["cuts"], rel=1e-8, abs=1e-12)
    assert "optimism" not in g and "corrected" not in g  # apparent only: nothing to correct in a new cohort


@pytest.mark.parametrize("name", CASES)
def test_smooth_and_brier_as_r(name):
    *_, res, ref = case(name)
    cal = res.calibration.set_index("measure")["estimate"]
    sm = ref["smooth"]
    # R rms: cph(Surv(t, e) ~ rcs(log(-log S(u)), 3)) on the validation cohort, 1 - survest(cal, times = u)
    assert res.smooth.knots == pytest.approx(sm["knots"], rel=1e-9)
    for k in ("ici", "e50", "e90", "emax"):
        assert cal[k] == pytest.approx(sm[k], rel=1e-6), k
    # R riskRegression: Score(..., metrics = "brier", times = u * (1 - 1e-6), cens.model = "km")
    assert cal["brier"] == pytest.approx(ref["brier"]["brier"], rel=1e-8)
    assert cal["scaled_brier"] == pytest.approx(1 - ref["brier"]["brier"] / ref["brier"]["brier_null"], rel=1e-7)


@pytest.mark.parametrize("name", CASES)
def test_decision_curve_as_r(name):
    *_, res, ref = case(name)
    r = pd.DataFrame(ref["decision"])
    d = res.decision_curve
    # R survival: net benefit with survfit Kaplan-Meier risks at u (Vickers et al. 2008)
    assert d["threshold"].to_numpy() == pytest.approx(r["threshold"].to_numpy())
    assert d["n_treated"].tolist() == r["n_treated"].tolist()
    assert d["net_benefit_model"].to_numpy() == pytest.approx(r["net_benefit_model"].to_numpy(), rel=1e-9, abs=1e-12)
    assert d["net_benefit_all"].to_numpy() == pytest.approx(r["net_benefit_all"].to_numpy(), rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("name", CASES)
def test_case_mix_and_table1_as_r(name):
    spec, *_, res, ref = case(name)
    cm = res.case_mix.set_index("cohort")
    # R: mean and sd of X b - b'colMeans(X_dev) in both cohorts
    assert cm["lp_mean"].to_numpy() == pytest.approx(ref["case_mix"]["lp_mean"], abs=1e-9)
    assert cm["lp_sd"].to_numpy() == pytest.approx(ref["case_mix"]["lp_sd"], rel=1e-8)
    assert cm["predicted_risk"].to_numpy() == pytest.approx(ref["case_mix"]["predicted"], rel=1e-8)
    assert cm.loc["development", "observed_risk"] == pytest.approx(ref["km"]["observed_dev"], rel=1e-12)
    tidy = res.baseline.tidy.drop_duplicates("variable").set_index("variable")
    # SMD as R: |m1 - m0| / sqrt((s0^2 + s1^2) / 2); binary |p1 - p0| / sqrt((p1 q1 + p0 q0) / 2)
    for var, smd in ref["smd"].items():
        assert tidy.loc[var, "smd"] == pytest.approx(smd, rel=1e-6), var
    n = res.baseline.groups
    assert [k for _, k in n.values()] == [ref["n_dev"], ref["n_val"]]
    assert all(c.startswith(f"{COHORT_COLUMN}=") for c in n)


def test_split_by_period_and_random():
    spec, *_ = case("rossi")
    cohort = load_study_data(spec).analysed
    assert split_cohort(spec, cohort, fraction=0.5, by="period", period_column="id")[1]["id"].min() == "R217"
    # ids that are numbers written as text: numeric order (1, 2, ..., 432), not text order (1, 10, 100, ...)
    numbers = cohort.assign(id=[str(i) for i in range(1, len(cohort) + 1)])
    dev, val = split_cohort(spec, numbers, fraction=0.5, by="period", period_column="id")
    assert val[spec.study.id_column].astype(int).min() == 217
    a = split_cohort(spec, cohort, fraction=0.3, by="random", rng=np.random.default_rng(7))
    b = split_cohort(spec, cohort, fraction=0.3, by="random", rng=np.random.default_rng(7))
    assert len(a[1]) == round(0.3 * len(cohort)) and len(a[0]) + len(a[1]) == len(cohort)
    assert a[1]["id"].tolist() == b[1]["id"].tolist()
    assert set(a[0]["id"]).isdisjoint(a[1]["id"])
    with pytest.raises(AnalysisError, match="empty"):
        split_cohort(spec, cohort.iloc[:2], fraction=0.1, rng=np.random.default_rng(1))


def test_too_few_events_in_the_validation_cohort_is_a_clear_error():
    spec, model, dev, val, *_ = case("lung")
    few = val[val[spec.outcome.event] == 0]
    with pytest.raises(AnalysisError, match="at least 5"):
        validate_in_cohort(spec, model, dev, pd.concat([few, val[val[spec.outcome.event] == 1].head(2)]), label="Few")


# --- the study pipeline: `validation:` in the study file ------------------------------------
@cache
def study_results(name: str):
    from cementleak_stats.study import compute_study

    return compute_study(case(name)[0])


@pytest.mark.parametrize("name", CASES)
def test_pipeline_validation_cohort_equals_r(name):
    r = study_results(name)
    *_, res, ref = case(name)
    v = r.validation_cohort
    assert v is not None and v.n == ref["n_val"]
    # R survival 3.5: concordance(fit, newdata = val)
    assert v.estimate("c_index") == pytest.approx(ref["concordance"]["concordance"], rel=1e-12)
    for frame in ("discrimination", "calibration", "groups", "decision_curve", "case_mix", "predictions"):
        pd.testing.assert_frame_equal(getattr(v, frame), getattr(res, frame), check_exact=False, rtol=1e-10)
    assert len(r.analysed) == ref["n_dev"]


def test_split_is_a_step_of_the_patient_flow():
    r = study_results("rossi")
    last = r.data.flow.iloc[-1]
    assert (last["n"], last["excluded"]) == (216, 216) and "held out as the validation set" in last["reason"]
    assert r.validation_cohort.kind == "split" and r.validation_cohort.label == "Later half"
    assert r.validation_cohort.case_mix["label"].tolist() == ["Development set", "Later half"]


def test_the_validation_cohort_leaves_the_development_results_unchanged():
    from cementleak_stats.study import compute_study

    spec = case("lung")[0]
    with_v, without = study_results("lung"), compute_study(spec.model_copy(update={"validation": None}))
    assert without.validation_cohort is None
    for name in ("validation", "concordance", "predictions", "decision_curve"):
        pd.testing.assert_frame_equal(getattr(with_v, name), getattr(without, name))
    pd.testing.assert_frame_equal(with_v.calibration.groups, without.calibration.groups)
    pd.testing.assert_frame_equal(with_v.model.summary, without.model.summary)


def test_validation_cohort_results_survive_the_cache(tmp_path, monkeypatch):
    from cementleak_stats.cache import SECRET_ENV
    from cementleak_stats.study import run_study

    monkeypatch.setenv(SECRET_ENV, str(tmp_path / "secret"))
    spec = case("rossi")[0]
    first = run_study(spec, cache_dir=tmp_path)
    again = run_study(spec, cache_dir=tmp_path)
    assert list(tmp_path.glob(".cementleak-cache/*")), "nothing was cached"
    pd.testing.assert_frame_equal(again.validation_cohort.calibration, first.validation_cohort.calibration)
    pd.testing.assert_frame_equal(again.validation_cohort.baseline.tidy, first.validation_cohort.baseline.tidy)
    assert len(again.data.validation.analysed) == 216


def test_a_bad_validation_cohort_is_reported_like_the_development_cohort(tmp_path):
    from cementleak_stats.errors import InputError

    spec = case("lung")[0]
    src = REF / "data"
    for f in ("external_lung_dev.csv", "external_lung_val.csv"):
        (tmp_path / f).write_bytes((src / f).read_bytes())
    lines = (tmp_path / "external_lung_val.csv").read_text().splitlines()
    header = lines[0].split(",")
    cells = lines[3].split(",")
    cells[header.index("sex")] = "unknown"
    lines[3] = ",".join(cells)
    (tmp_path / "external_lung_val.csv").write_text("\n".join(lines) + "\n")
    before = (tmp_path / "external_lung_val.csv").read_bytes()
    with pytest.raises(InputError) as err:
        load_study_data(spec.model_copy(update={"base_dir": tmp_path}))
    (p,) = err.value.problems
    assert (p.file, p.row, p.column, p.value) == ("external_lung_val.csv", 4, "sex", "unknown")
    assert "unknown level" in p.rule
    assert (tmp_path / "external_lung_val.csv").read_bytes() == before
    (tmp_path / "external_lung_val.csv").unlink()
    with pytest.raises(InputError, match="file not found"):
        load_study_data(spec.model_copy(update={"base_dir": tmp_path}))


@pytest.mark.parametrize("validation,message", [
    ({"cohort_file": "x.csv", "split": 0.3}, "not both"),
    ({}, "either"),
    ({"split": 0.3, "by": "period"}, "period_column"),
    ({"split": 0.3, "kind": "external"}, "needs `cohort_file:`"),
    ({"split": 1.3}, "less than 1"),
    ({"split": 0.3, "by": "period", "period_column": "nope"}, "not a variable"),
])
def test_validation_section_of_the_study_file_is_checked(validation, message):
    import yaml

    from cementleak_stats.errors import InputError
    from cementleak_stats.spec import parse_spec

    data = yaml.safe_load((REF / "data" / "external_lung_study.yaml").read_text())
    data["validation"] = validation
    with pytest.raises(InputError) as err:
        parse_spec(data)
    assert message in str(err.value)
