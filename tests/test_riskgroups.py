"""Risk groups from the nomogram (riskgroups.py), checked against R survival and rms
(tests/reference/riskgroups_reference.R, committed JSON): total points as rms nomogram gives
them, tertile cut-offs, 1 - Kaplan-Meier per group, survdiff and coxph between the groups; the
development cut-offs carried unchanged to the SYNTHETIC second centre.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import numpy as np
import pytest

from cementleak_stats.errors import AnalysisError
from cementleak_stats.models.cox import fit_cox_model, select_predictors, univariable_screen
from cementleak_stats.nomogram import build_nomogram, predict_risk
from cementleak_stats.riskgroups import logrank_test, risk_groups_in
from reference_cases import CASES, reference_case

from cementleak_stats.spec import RiskGroupRule

ROOT = Path(__file__).resolve().parents[1]


@cache
def case(name: str):
    ref, spec, data = reference_case("riskgroups", name)
    cohort = data.analysed
    model = fit_cox_model(spec, cohort, select_predictors(spec, univariable_screen(spec, cohort)))
    nomo = build_nomogram(spec, model, cohort)
    return spec, data, nomo, risk_groups_in(spec, nomo, cohort), ref


def _check(groups, ref: dict) -> None:
    s = groups.summary[groups.summary["n"] > 0]
    # R survival: summary(survfit(Surv(t, e) ~ 1, subset = group), times = u) per group
    assert s["n"].tolist() == [g["n"] for g in ref["groups"]]
    assert s["events"].tolist() == [g["events"] for g in ref["groups"]]
    assert s["observed_risk"].to_numpy() == pytest.approx([g["observed"] for g in ref["groups"]], rel=1e-10, abs=1e-14)
    # R survival 3.5: survdiff(Surv(t, e) ~ group)
    lr = groups.logrank.iloc[0]
    assert lr.chisq == pytest.approx(ref["logrank"]["chisq"], rel=1e-8)
    assert lr.df == ref["logrank"]["df"]
    assert lr.p_value == pytest.approx(ref["logrank"]["p_value"], rel=1e-6)
    hr = groups.hazard_ratios
    if "hr" in ref:
        # R survival 3.5: coxph(Surv(t, e) ~ group, ties = "efron"), HR against the lowest group
        for col in ("hr", "ci_low", "ci_high", "p_value"):
            assert hr[col].to_numpy(float) == pytest.approx(np.atleast_1d(ref["hr"][col]), rel=1e-6)
        assert (hr["note"] == "").all()
    else:  # a group without events: R's coxph does not converge; the HRs are left out, with the reason
        assert hr["hr"].isna().all() and hr["note"].str.startswith("not estimable").all()


@pytest.mark.parametrize("name", CASES)
def test_total_points_and_tertiles_as_rms(name):
    _, _, nomo, groups, ref = case(name)
    # R rms 6.5: (predict(cph_fit, type = "lp") - attr(nomogram(fit), "info")$Intercept) * info$sc
    assert groups.patients["total_points"].to_numpy() == pytest.approx(ref["points"], rel=1e-8, abs=1e-8)
    # R: quantile(points, c(1/3, 2/3)) (type 7)
    assert groups.cutoffs == pytest.approx(ref["cutoffs"], rel=1e-9)
    assert groups.source == "tertiles of the development cohort"
    # each group holds the patients with cut_{k-1} <= points < cut_k
    pts, g = groups.patients["total_points"].to_numpy(), groups.patients["group"].to_numpy()
    assert (g == 1 + np.searchsorted(groups.cutoffs, pts, side="right")).all()


@pytest.mark.parametrize("name", CASES)
def test_groups_compared_as_r(name):
    *_, groups, ref = case(name)
    _check(groups, ref["development"])


def test_validation_cohort_keeps_the_development_cut_offs():
    spec, data, nomo, dev, ref = case("shipped")
    val = risk_groups_in(spec, nomo, data.validation.analysed, cutoffs=dev.cutoffs, source=dev.source, label="Second centre")
    assert val.cutoffs == dev.cutoffs and val.source == dev.source
    # R: the validation patients' points from the development fit (predict(cph_fit, newdata = val))
    assert val.patients["total_points"].to_numpy() == pytest.approx(ref["validation_points"], rel=1e-8, abs=1e-8)
    _check(val, ref["validation"])


def test_prespecified_risk_cut_offs_as_r():
    spec, data, nomo, _, ref = case("gbsg2")
    rule = RiskGroupRule(cutoffs=tuple(ref["risk_cutoffs"]), scale="risk")
    s = spec.model_copy(update={"analysis": spec.analysis.model_copy(update={"risk_groups": rule})})
    groups = risk_groups_in(s, nomo, data.analysed)
    assert groups.source == "prespecified (risk)"
    # the cut-offs in points are where the nomogram's risk axis reads the risks
    assert nomo.risk_from_points(np.asarray(groups.cutoffs)) == pytest.approx(ref["risk_cutoffs"], rel=1e-10)
    _check(groups, ref["development_risk"])  # R: groups by 1 - Survival(fit)(u, lp) at the cut-offs


def test_points_formula_gives_each_patients_total():
    spec, data, nomo, groups, _ = case("shipped")
    f = groups.formula
    per_unit = f.set_index("term")["points_per_unit"].dropna()
    const = float(f.loc[f["term"] == "constant", "constant"].iloc[0])
    from cementleak_stats.design import encode

    X = encode(spec, data.analysed, nomo.model.variables).X[list(per_unit.index)].to_numpy(float)
    assert const + X @ per_unit.to_numpy() == pytest.approx(groups.patients["total_points"].to_numpy(), rel=1e-10)
    # and the points a clinician adds up on the nomogram (predict_risk reads the points table)
    row = data.analysed.iloc[7]
    p = predict_risk(spec, nomo, {v: row[v] for v in nomo.model.variables})
    assert p.total_points == pytest.approx(groups.patients["total_points"].iloc[7], rel=1e-9)


def test_labels_and_rules_from_the_study_file():
    with pytest.raises(ValueError, match="must increase"):
        RiskGroupRule(cutoffs=(150, 100))
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        RiskGroupRule(cutoffs=(0.2, 1.5), scale="risk")
    with pytest.raises(ValueError, match="3 groups"):
        RiskGroupRule(cutoffs=(100, 150), labels=("a", "b"))
    spec, data, nomo, _, _ = case("shipped")
    rule = RiskGroupRule(cutoffs=(120.0,), labels=("Lower", "Higher"))
    s = spec.model_copy(update={"analysis": spec.analysis.model_copy(update={"risk_groups": rule})})
    g = risk_groups_in(s, nomo, data.analysed)
    assert g.labels == ("Lower", "Higher") and g.source == "prespecified (points)" and len(g.summary) == 2


def test_tertiles_need_distinct_scores():
    spec, data, nomo, _, _ = case("shipped")
    one = data.analysed.iloc[[0] * 12].reset_index(drop=True)
    with pytest.raises(AnalysisError, match="tertiles of the total points coincide"):
        risk_groups_in(spec, nomo, one)


@pytest.mark.parametrize("name", CASES)
def test_curves_for_the_figure_are_the_groups_kaplan_meier(name):
    """The figure's curves are computed with the groups (one definition, one Kaplan-Meier) and
    agree with the R-checked observed risks; numbers at risk start at the group sizes."""
    from cementleak_stats.riskgroups import at_risk_times

    spec, _, _, groups, _ = case(name)
    s = groups.summary[groups.summary["n"] > 0]
    assert list(groups.curves["group"].cat.categories) == list(groups.labels)
    u = groups.horizon
    for label, observed in zip(s["label"], s["observed_risk"]):
        c = groups.curves[groups.curves["group"] == label]
        assert 1 - c.loc[c["time"] <= u + 1e-6, "survival"].iloc[-1] == pytest.approx(observed, rel=1e-12, abs=1e-15)
    times = at_risk_times(max(spec.outcome.all_horizons))
    assert sorted(groups.at_risk["time"].unique()) == times
    first = groups.at_risk[groups.at_risk["time"] == 0].set_index("group")["n_at_risk"]
    assert [int(first[lab]) for lab in s["label"]] == s["n"].tolist()


def test_at_risk_times():
    from cementleak_stats.riskgroups import at_risk_times

    assert at_risk_times(12) == [0, 3, 6, 9, 12] and at_risk_times(52) == [0, 13, 26, 39, 52]
    assert at_risk_times(365) == [0, 100, 200, 300, 365]
    assert at_risk_times(5) == [0, 1, 2, 3, 4, 5] and at_risk_times(730) == [0, 200, 400, 600, 730]
    assert at_risk_times(18) == [0, 5, 10, 15, 18] and at_risk_times(1826.25)[-2:] == [1500, 1826.25]


def test_risk_spread_equals_r_quantile_type_7():
    """The spread the nomogram's risk axis covers and its caption states (StudyResults.risk_spread)."""
    import json

    import pandas as pd

    from cementleak_stats.riskgroups import risk_spread

    ref = json.loads((ROOT / "tests" / "reference" / "summaries_r.json").read_text())["risk_spread"]
    s = risk_spread({12: np.asarray(ref["risk"]), 6: np.array([])})
    assert list(s.columns) == ["horizon", "lowest", "p05", "p95", "highest"] and list(s["horizon"]) == [12.0, 6.0]
    # R 4.2: quantile(1 - s0^exp(lp), c(0, 0.05, 0.95, 1), type = 7) (tests/reference/summaries_reference.R)
    assert s.iloc[0, 1:].to_numpy(float) == pytest.approx([ref[k] for k in ("lowest", "p05", "p95", "highest")], rel=1e-12)
    assert pd.isna(s.iloc[1, 1:]).all()  # no patients: no spread


LOGRANK = json.loads((ROOT / "tests" / "reference" / "logrank_r.json").read_text())["cases"]


@pytest.mark.parametrize("name", sorted(LOGRANK))
def test_logrank_equals_r_survdiff(name):
    """Tied times, two groups, and four groups of which one has no events and one has nobody at
    risk at any event time (survdiff leaves it out: df = 2)."""
    c = LOGRANK[name]
    chisq, df = logrank_test(np.asarray(c["time"], float), np.asarray(c["event"], float), np.asarray(c["group"]))
    # R survival 3.5: sd <- survdiff(Surv(t, e) ~ g); sd$chisq, sum(sd$exp > 0) - 1
    # (tests/reference/logrank_reference.R)
    assert chisq == pytest.approx(c["chisq"], rel=1e-10)
    assert df == c["df"]
