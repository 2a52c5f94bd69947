"""Performance at several horizons (validation/horizons.py) and the intervals of
validation/intervals.py, checked against R (tests/reference/horizons_reference.R, committed JSON)
on the shipped SYNTHETIC study (horizons 12 and 6 months) and on GBSG-2 (5, 1 and 3 years).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np
import pytest

from cementleak_stats.decision import net_benefit, threshold_grid
from cementleak_stats.errors import AnalysisError
from cementleak_stats.models.cox import fit_cox_model, select_predictors, univariable_screen
from cementleak_stats.needs import horizon_findings
from reference_cases import CASES, reference_case

from cementleak_stats.spec import load_spec
from cementleak_stats.validation.horizons import check_risks, performance_at_horizons, risk_column
from cementleak_stats.validation.indices import cox_indices, validate_cox
from cementleak_stats.validation.intervals import (clinical_impact, corrected_intervals, inner_counts,
                                                   net_benefit_batch)
from cementleak_stats.validation.resample import cox_data, cox_fit_fn

ROOT = Path(__file__).resolve().parents[1]
REF = ROOT / "tests" / "reference"


@cache
def case(name: str):
    ref, spec, data = reference_case("horizons", name)
    cohort = data.analysed
    model = fit_cox_model(spec, cohort, select_predictors(spec, univariable_screen(spec, cohort)))
    assert list(model.variables) == ref["variables"]
    perf = performance_at_horizons(spec, model, cohort)  # apparent calibration (no bootstrap)
    return spec, model, cohort, perf, ref


def _by_h(ref: dict, h: float) -> dict:
    return next(x for x in ref["horizons"] if x["horizon"] == h)


@pytest.mark.parametrize("name", CASES)
def test_horizons_of_the_study(name):
    spec, _, _, perf, ref = case(name)
    assert perf.horizons == tuple(float(x["horizon"]) for x in ref["horizons"])
    assert perf.horizons[0] == spec.outcome.horizon


@pytest.mark.parametrize("name", CASES)
def test_auc_and_roc_as_riskregression(name):
    _, _, _, perf, ref = case(name)
    for h in perf.horizons:
        r = _by_h(ref, h)
        # R riskRegression: Score(list(risk), Surv(t, e) ~ 1, times = h - 1e-6, metrics = "auc",
        #                         cens.model = "km", conservative = TRUE)
        assert perf.value(h, "auc") == pytest.approx(r["auc"]["auc"], rel=1e-9)
        assert perf.value(h, "auc", "se") == pytest.approx(r["auc"]["se"], rel=1e-7)
        # Score(..., plots = "ROC")$ROC$plotframe: TPR and FPR at each distinct predicted risk
        roc = perf.roc[perf.roc["horizon"] == h].iloc[1:]
        order = np.argsort(r["roc"]["risk"])[::-1]
        assert len(roc) == len(order)
        assert roc["tpr"].to_numpy() == pytest.approx(np.asarray(r["roc"]["tpr"])[order], abs=1e-10)
        assert roc["fpr"].to_numpy() == pytest.approx(np.asarray(r["roc"]["fpr"])[order], abs=1e-10)


@pytest.mark.parametrize("name", CASES)
def test_brier_ipa_ibs_as_riskregression(name):
    _, _, _, perf, ref = case(name)
    for h in perf.horizons:
        b, i = _by_h(ref, h)["brier"], _by_h(ref, h)["ibs"]
        # R riskRegression: Score(list(risk), ..., times = h (1 - 1e-6), metrics = "brier", null.model = TRUE,
        #                         conservative = TRUE, summary = "ipa")
        assert perf.value(h, "brier") == pytest.approx(b["brier"], rel=1e-9)
        assert perf.value(h, "brier", "se") == pytest.approx(b["se"], rel=1e-7)
        assert perf.value(h, "brier_null") == pytest.approx(b["brier_null"], rel=1e-9)
        assert perf.value(h, "brier_null", "se") == pytest.approx(b["se_null"], rel=1e-7)
        assert perf.value(h, "ipa") == pytest.approx(b["ipa"], rel=1e-8)
        # written out in R: the IPCW residuals (their mean is Score's Brier) and IPA's delta-method SE
        assert b["brier_written"] == pytest.approx(b["brier"], rel=1e-10)
        assert perf.value(h, "ipa", "se") == pytest.approx(b["ipa_se"], rel=1e-8)
        # Score(list(risk matrix), ..., times = grid, metrics = "brier", summary = "ibs"): IBS at the last time
        assert perf.value(h, "ibs") == pytest.approx(i["ibs"], rel=1e-9)
        assert perf.value(h, "ibs_null") == pytest.approx(i["ibs_null"], rel=1e-9)
        assert perf.value(h, "ibs", "se") == pytest.approx(i["se"], rel=1e-8)
        assert perf.value(h, "ibs_null", "se") == pytest.approx(i["se_null"], rel=1e-8)


def test_integrated_brier_of_cox_risks_compiled_equals_the_grid_loop(monkeypatch):
    """The compiled per-patient IBS (Cox risks) gives the grid loop's numbers to rounding, with
    ties, times on the grid and censoring between grid times (R's agreement: the test above)."""
    from cementleak_stats.models import compiled
    from cementleak_stats.validation.brier import CoxRisk, ibs_grid, integrated_brier

    rng = np.random.default_rng(7)
    n = 3000
    lp = rng.normal(scale=0.7, size=n)
    t_event, t_cens = rng.exponential(15 * np.exp(-lp)), rng.uniform(0, 20, n)
    time = np.round(np.minimum(t_event, t_cens))  # whole months: many ties, times equal to grid times
    event = (t_event <= t_cens).astype(int)
    risk = CoxRisk(lambda t: float(np.exp(-0.03 * t)), np.exp(lp))
    grid = ibs_grid(time, event, 12.0)
    assert np.isin(grid[:-1], time).all() and len(grid) > 5
    fast = integrated_brier(time, event, risk, grid)
    monkeypatch.setattr(compiled, "ENABLED", False)
    loop = integrated_brier(time, event, risk, grid)
    for a, b in zip(fast, loop):
        assert np.asarray(a) == pytest.approx(np.asarray(b), rel=1e-12, abs=1e-14)
    assert loop[0] > 0 and np.std(loop[2]) > 0


@pytest.mark.parametrize("name", CASES)
def test_calibration_at_each_horizon_as_r(name):
    _, _, _, perf, ref = case(name)
    for h in perf.horizons:
        r = _by_h(ref, h)
        g = perf.groups[perf.groups["horizon"] == h]
        # R rms 6.5: groupkm(S(h), Surv(t, e), u = h, cuts = quantile(c(0, 1, S(h)), 0:g / g)); groups by
        # increasing survival in R, increasing risk here
        assert g["n"].to_numpy() == pytest.approx(r["groups"]["n"][::-1])
        assert g["predicted"].to_numpy() == pytest.approx(r["groups"]["predicted"][::-1], rel=1e-8)
        assert g["observed"].to_numpy() == pytest.approx(r["groups"]["observed"][::-1], rel=1e-8)
        # R rms: cph(Surv(t, e) ~ rcs(log(-log S(h)), 3)); ICI, E50, E90 (Austin et al. 2020)
        for m in ("ici", "e50", "e90"):
            assert perf.value(h, m) == pytest.approx(r["smooth"][m], rel=1e-6)
        # R: glm(o ~ lp + offset(log(E) - lp), poisson, subset = E > 0) with follow-up truncated at h
        assert perf.value(h, "calibration_slope") == pytest.approx(r["slope"]["slope"], rel=1e-7)
        assert perf.value(h, "calibration_slope", "se") == pytest.approx(r["slope"]["se"], rel=1e-5)


@pytest.mark.parametrize("name", CASES)
def test_net_benefit_replicates_and_clinical_impact_as_r(name):
    spec, _, cohort, perf, ref = case(name)
    risk = perf.risks[risk_column(spec.outcome.horizon)].to_numpy()
    t, e = cohort[spec.outcome.time].to_numpy(float), cohort[spec.outcome.event].to_numpy()
    counts = np.loadtxt(REF / "data" / f"horizons_counts_{name}.csv", delimiter=",")
    nb, _ = net_benefit_batch(risk, t, e, counts, horizon=spec.outcome.horizon, thresholds=ref["net_benefit"]["thresholds"])
    # R survival: survfit(Surv(t, e) ~ 1, weights = counts, subset = risk >= pt) at the horizon (Vickers 2008)
    assert nb == pytest.approx(np.asarray(ref["net_benefit"]["replicates"]), rel=1e-10, abs=1e-12)
    # the unweighted sample is the decision curve itself
    one, _ = net_benefit_batch(risk, t, e, np.ones((1, len(t))), horizon=spec.outcome.horizon, thresholds=threshold_grid(spec))
    dca = net_benefit(risk, t, e, horizon=spec.outcome.horizon, thresholds=threshold_grid(spec))
    assert one[0] == pytest.approx(dca["net_benefit_model"].to_numpy(), rel=1e-12, abs=1e-15)
    ci = clinical_impact(dca, len(t))
    # R: 1000 mean(risk >= pt) and 1000 mean(risk >= pt) (1 - KM among them at the horizon)
    assert ci["high_risk"].to_numpy() == pytest.approx(ref["clinical_impact"]["high_risk"], rel=1e-12)
    assert ci["high_risk_with_event"].to_numpy() == pytest.approx(ref["clinical_impact"]["high_risk_with_event"],
                                                                  rel=1e-9, abs=1e-9)


def test_two_stage_interval_is_the_validation_repeated_in_each_outer_sample():
    """One outer sample's corrected value equals validate_cox's engine run on that sample (its
    rows repeated as drawn) with the same inner replicates."""
    spec, model, cohort, _, _ = case("shipped")
    data = cox_data(spec, cohort, model.variables, init=model.coef)
    rng = np.random.default_rng(5)
    outer = rng.multinomial(len(cohort), np.full(len(cohort), 1 / len(cohort)))
    inner = inner_counts(outer, 8, np.random.default_rng(6))
    assert (inner.sum(axis=1) == outer.sum()).all() and not inner[:, outer == 0].any()
    app = cox_indices(cox_fit_fn(data, outer[None]), data, outer[None].astype(float), training=True)[0]
    fits = cox_fit_fn(data, inner)
    opt = np.nanmean(cox_indices(fits, data, inner, training=True)
                     - cox_indices(fits, data, np.repeat(outer[None].astype(float), 8, axis=0), training=False), axis=0)
    # the same on the expanded rows: each row as many times as the outer sample drew it
    rows = np.repeat(np.arange(len(cohort)), outer)
    big = cohort.iloc[rows].reset_index(drop=True)
    bdata = cox_data(spec, big, model.variables, init=model.coef)
    binner = np.stack([np.concatenate([np.full(c, c_in / c if c else 0.0) for c, c_in in zip(outer, r)]) for r in inner])
    bfits = cox_fit_fn(bdata, binner)
    bopt = np.nanmean(cox_indices(bfits, bdata, binner, training=True)
                      - cox_indices(bfits, bdata, np.ones_like(binner), training=False), axis=0)
    bapp = cox_indices(cox_fit_fn(bdata, np.ones((1, len(big)))), bdata, np.ones((1, len(big))), training=True)[0]
    assert app == pytest.approx(bapp, rel=1e-6)
    assert opt[[0, 1, 3]] == pytest.approx(bopt[[0, 1, 3]], rel=1e-6, abs=1e-9)  # Dxy, C, slope


def test_two_stage_interval_brackets_the_corrected_estimate():
    spec, model, cohort, _, _ = case("shipped")
    v = validate_cox(spec, model, cohort, n_boot=40, rng=np.random.default_rng(1))
    ci = corrected_intervals(spec, model, cohort, apparent=v[v["method"] == "standard"], n_outer=40, n_inner=10,
                             rng=np.random.default_rng(2)).set_index("index")
    for idx in ("C", "Slope", "Dxy"):
        row = ci.loc[idx]
        assert row.ci_low < row.ci_high and row.n_outer == 40
        assert row.ci_low - 0.05 < row.corrected < row.ci_high + 0.05
    assert 0.5 < ci.loc["C", "ci_low"] and ci.loc["C", "ci_high"] <= 1


def test_risks_outside_zero_one_are_refused():
    with pytest.raises(AnalysisError, match=r"2 predicted risk\(s\) are not probabilities"):
        check_risks(np.array([0.1, 1.2, np.nan]), what="the validation cohort, horizon 12 months")
    assert check_risks(np.array([0.0, 1.0]), what="x").tolist() == [0.0, 1.0]


def test_horizon_beyond_follow_up_or_without_events_is_a_plain_message():
    spec = load_spec(CASES["gbsg2"])
    t = np.array([0.5, 1.0, 2.0, 3.0, 4.0])
    e = np.array([1, 0, 1, 0, 0])
    late = spec.model_copy(update={"outcome": spec.outcome.model_copy(update={"horizons": (5.0, 1.0)})})
    found = horizon_findings(late, t, e)
    assert found and "nobody is followed up to horizon (5 years" in found[0].rule and "longest follow-up is 4" in found[0].rule
    early = spec.model_copy(update={"outcome": spec.outcome.model_copy(update={"horizon": 0.2, "horizons": (0.2,)})})
    assert "no event at or before the horizon (0.2 years" in horizon_findings(early, t, e)[0].rule
    ok = spec.model_copy(update={"outcome": spec.outcome.model_copy(update={"horizon": 3.0, "horizons": (3.0, 1.0)})})
    assert horizon_findings(ok, t, e) == []


def test_horizons_in_the_study_file():
    from cementleak_stats.spec import Outcome

    o = Outcome.model_validate({"time": "t", "event": "e", "horizons": [12, 6], "followup": 12})
    assert o.horizon == 12 and o.all_horizons == (12, 6)
    with pytest.raises(ValueError, match="the first of `horizons:`"):
        Outcome.model_validate({"time": "t", "event": "e", "horizon": 6, "horizons": [12, 6], "followup": 12})
    with pytest.raises(ValueError, match="at most the follow-up"):
        Outcome.model_validate({"time": "t", "event": "e", "horizons": [12, 24], "followup": 12})
    assert Outcome.model_validate({"time": "t", "event": "e", "horizon": 12, "followup": 12}).all_horizons == (12,)


def test_a_reversed_score_is_reported_as_it_is():
    """C < 0.5 (a score whose direction is reversed) is never folded to 1 - C, and is said."""
    import pandas as pd

    from cementleak_stats.assessment import reversed_notes
    from cementleak_stats.validation.discrimination import dynamic_auc, harrell_c

    spec, model, cohort, perf, _ = case("gbsg2")
    t, e = cohort[spec.outcome.time].to_numpy(float), cohort[spec.outcome.event].to_numpy()
    lp = perf.risks[risk_column(5.0)].to_numpy()
    assert harrell_c(t, e, -lp).estimate == pytest.approx(1 - harrell_c(t, e, lp).estimate, rel=1e-12)
    assert dynamic_auc(t, e, -lp, horizon=5.0).estimate == pytest.approx(1 - perf.value(5.0, "auc"), rel=1e-9)
    note = reversed_notes(pd.DataFrame({"index": ["C"], "apparent": [0.42]}))
    assert len(note) == 1 and "0.420, below 0.5" in note[0] and "not as 1 - C" in note[0]
    assert reversed_notes(pd.DataFrame({"index": ["C"], "apparent": [0.7]})) == ()


def test_a_validation_cohort_without_follow_up_to_a_horizon_is_named():
    spec = load_spec(CASES["gbsg2"])
    t, e = np.array([0.5, 1.0, 2.0, 3.0, 4.0]), np.array([1, 0, 1, 0, 0])
    found = horizon_findings(spec, t, e, where=" in the validation cohort")
    assert "nobody is followed up to horizon (5 years in the validation cohort" in found[0].rule
