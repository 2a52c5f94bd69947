"""The model against an existing score (validation/comparison.py), checked against R
(tests/reference/comparator_reference.R, committed JSON) on the shipped SYNTHETIC study (its
development cohort and second centre) and on GBSG-2: C of both, ΔAUC at every horizon as
riskRegression::Score contrasts, NRI and IDI by their written-out formulas, the comparator's net
benefit.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np
import pytest

from cementleak_stats.assessment import fit_comparator
from cementleak_stats.models.cox import fit_cox_model, select_predictors, univariable_screen
from reference_cases import CASES, reference_case

from cementleak_stats.validation.comparison import RECLASSIFICATION, compare_with, reclassification

ROOT = Path(__file__).resolve().parents[1]


@cache
def case(name: str):
    ref, spec, data = reference_case("comparator", name)
    dev = data.analysed
    model = fit_cox_model(spec, dev, select_predictors(spec, univariable_screen(spec, dev)))
    comp = fit_comparator(spec, dev)
    assert comp.variables == (ref["comparator"],)
    out = {"development": compare_with(spec, model, comp, dev, n_boot=60, rng=np.random.default_rng(3), label="x")}
    if data.validation is not None:
        out["validation"] = compare_with(spec, model, comp, data.validation.analysed, n_boot=60,
                                         rng=np.random.default_rng(4), label="x", cohort_label="Validation")
    return spec, data, model, comp, out, ref


def _cases():
    return [("shipped", "development"), ("shipped", "validation"), ("gbsg2", "development")]


@pytest.mark.parametrize(("name", "cohort"), _cases())
def test_c_and_auc_differences_as_r(name, cohort):
    *_, out, ref = case(name)
    res, r = out[cohort], ref[cohort]
    d = res.discrimination
    c = d[d["measure"] == "c_index"].iloc[0]
    # R survival 3.5: concordance(fit, newdata = d), concordance(fit_comparator, newdata = d)
    assert c.model == pytest.approx(r["c_model"], rel=1e-12)
    assert c.comparator == pytest.approx(r["c_comparator"], rel=1e-12)
    assert c.difference == pytest.approx(r["c_model"] - r["c_comparator"], rel=1e-10)
    assert c.ci_low < c.difference < c.ci_high  # paired bootstrap percentiles around it
    for a in r["auc"]:
        row = d[(d["measure"] == "auc") & (d["horizon"] == a["horizon"])].iloc[0]
        # R riskRegression: Score(list(model, comparator), ..., times = h - 1e-6, metrics = "auc",
        #                         conservative = TRUE)$AUC$contrasts (delta = contrast model - reference)
        assert row.model == pytest.approx(a["model"], rel=1e-9)
        assert row.comparator == pytest.approx(a["comparator"], rel=1e-9)
        sign = 1.0 if a["contrast_model"] == "model" else -1.0
        assert row.difference == pytest.approx(sign * a["delta"], rel=1e-8)
        assert row.se == pytest.approx(a["se"], rel=1e-7)
        assert row.p_value == pytest.approx(a["p"], rel=1e-5, abs=1e-12)


@pytest.mark.parametrize(("name", "cohort"), _cases())
def test_nri_idi_and_decision_curve_as_r(name, cohort):
    *_, out, ref = case(name)
    res, r = out[cohort], ref[cohort]
    est = res.reclassification.set_index("measure")["estimate"]
    # written out in R: IPCW NRI and IDI with prodlim's reverse Kaplan-Meier (header of the R script)
    for m in RECLASSIFICATION:
        assert est[m] == pytest.approx(r[m], rel=1e-9, abs=1e-12), m
    # R survival: net benefit of the comparator's risk, survfit Kaplan-Meier among the treated
    nb = res.decision_curve["net_benefit_comparator"].to_numpy()
    assert nb == pytest.approx(np.asarray(r["net_benefit_comparator"], float), rel=1e-10, abs=1e-14, nan_ok=True)


def test_bootstrap_replicates_are_the_resampled_patients():
    """A replicate's NRI/IDI (case counts, censoring weights re-estimated) equals the same on the
    resample with its rows duplicated."""
    spec, data, model, comp, _, _ = case("shipped")
    from cementleak_stats.design import encode

    cohort = data.analysed
    t, e = cohort[spec.outcome.time].to_numpy(float), cohort[spec.outcome.event].to_numpy()
    new = model.risk(encode(spec, cohort, model.variables).X, 11.99)
    old = comp.risk(encode(spec, cohort, comp.variables).X, 11.99)
    counts = np.random.default_rng(8).multinomial(len(t), np.full(len(t), 1 / len(t)), size=2).astype(float)
    batch = reclassification(t, e, new, old, 11.99, counts)
    for b in range(2):
        rows = np.repeat(np.arange(len(t)), counts[b].astype(int))
        one = reclassification(t[rows], e[rows], new[rows], old[rows], 11.99)[0]
        assert batch[b] == pytest.approx(one, rel=1e-12, abs=1e-14)
