"""The SHIPPED synthetic files in data/: every published figure, byte-identical regeneration.

The files are read back with plain pandas (not the package's reader) so that these tests check the
bytes a user receives.  The Cox and paired-test P values are also taken from R
(tests/reference/simulate_shipped.R -> simulate_shipped_r.json), run on the same files.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from lifelines import CoxPHFitter
from scipy import stats
from test_simulate import SPEC, _assert_valid_against_spec

from cementleak_stats import synthetic as sim
from cementleak_stats.design import encode
from cementleak_stats.models.cox import select_predictors, univariable_screen
from cementleak_stats.outcomes import holm, signed_rank_test

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data"
R_REF = json.loads((ROOT / "tests" / "reference" / "simulate_shipped_r.json").read_text(encoding="utf-8"))
ALPHA = SPEC.analysis.screen_p_value
FIVE = ["ct_value_hu", "fracture_severity", "cortical_fracture", "cement_viscosity", "cement_volume_ml"]
EVENT, TIME, ID = SPEC.outcome.event, SPEC.outcome.time, SPEC.study.id_column


def _read(name: str) -> pd.DataFrame:
    return pd.read_csv(DATA / name, keep_default_na=False, na_values=[""])


@pytest.fixture(scope="module")
def shipped() -> sim.SyntheticStudy:
    cohort, outcomes = _read("cohort.csv"), _read("outcomes.csv")
    return sim.SyntheticStudy(cohort=cohort, outcomes=outcomes, seed=sim.DEFAULT_SEED, n=len(cohort),
                              baseline_cumhaz=float("nan"))


def test_r_reference_was_computed_on_these_files() -> None:
    # if this fails, data/ changed: re-run `Rscript tests/reference/simulate_shipped.R`
    assert hashlib.md5((DATA / "cohort.csv").read_bytes()).hexdigest() == R_REF["cohort_md5"]
    assert hashlib.md5((DATA / "outcomes.csv").read_bytes()).hexdigest() == R_REF["outcomes_md5"]


def test_regenerating_with_the_default_seed_gives_the_shipped_bytes(tmp_path: Path) -> None:
    for path in sim.write_synthetic(tmp_path, spec=SPEC):
        assert path.read_bytes() == (DATA / path.name).read_bytes(), path.name


def test_columns_levels_and_ranges(shipped: sim.SyntheticStudy) -> None:
    _assert_valid_against_spec(shipped)
    assert shipped.cohort[ID].str.fullmatch(r"SYN-\d{3}").all()


def test_100_patients_27_with_leakage(shipped: sim.SyntheticStudy) -> None:
    c = shipped.cohort
    assert len(c) == 100 and c[EVENT].sum() == 27
    assert (c.loc[c[EVENT] == 0, TIME] == 12.0).all()  # administrative censoring at 12 months
    leak_times = c.loc[c[EVENT] == 1, TIME]
    assert leak_times.gt(0).all() and leak_times.lt(12).all()
    assert leak_times.value_counts().max() <= 3  # no massive ties
    assert (leak_times < 3).mean() > 0.5  # leakage is mostly early


def test_leakage_types_and_their_management(shipped: sim.SyntheticStudy) -> None:
    c = shipped.cohort
    counts = c.groupby([EVENT, "leakage_type", "management"]).size().to_dict()
    assert counts == {(0, "none", "none"): 73, (1, "intradiscal_endplate", "no_treatment"): 24,
                      (1, "pulmonary_embolism", "respiratory_medicine"): 1,
                      (1, "symptomatic", "endoscopic_removal"): 2}


def _cox(c: pd.DataFrame, variables: list[str]) -> CoxPHFitter:
    X = encode(SPEC, c, variables).X.assign(_t=c[TIME].to_numpy(float), _e=c[EVENT].to_numpy(float))
    # tight convergence so that coefficients can be compared with R to 1e-6 (lifelines stops at 1e-7
    # on the step or on the relative log-likelihood change; R coxph iterates to eps = 1e-9)
    return CoxPHFitter().fit(X, duration_col="_t", event_col="_e", fit_options={"precision": 1e-12, "r_precision": 1e-14})


def test_the_five_published_factors_are_significant_in_the_multivariable_cox_model(shipped: sim.SyntheticStudy) -> None:
    summ = _cox(shipped.cohort, FIVE).summary
    r = pd.DataFrame(R_REF["multivariable"]).set_index("term").loc[FIVE]
    # R survival 3.5: coxph(Surv(time, event) ~ ct_value_hu + fracture_severity + cortical_fracture
    #                       + cement_viscosity + cement_volume_ml, ties = "efron")
    np.testing.assert_allclose(summ["coef"], r["coef"], rtol=1e-6)
    np.testing.assert_allclose(summ["se(coef)"], r["se"], rtol=1e-6)
    assert (r["p"] < ALPHA).all() and (summ["p"] < ALPHA).all()
    # directions of the published story: lower CT value, more severe, cortical fracture, low
    # viscosity and larger volume raise the hazard
    assert r.loc["ct_value_hu", "hr"] < 1 and (r.drop(index="ct_value_hu")["hr"] > 1).all()


def test_the_univariable_screen_selects_exactly_the_five(shipped: sim.SyntheticStudy) -> None:
    # R survival 3.5: coxph(Surv(time, event) ~ x, ties = "efron") for each candidate; Wald and LR P
    r_selected = {s["variable"] for s in R_REF["screen"]
                  if max(np.max(s["p_wald"]), s["p_lr"]) < ALPHA}
    r_null = {s["variable"] for s in R_REF["screen"] if min(np.min(s["p_wald"]), s["p_lr"]) >= ALPHA}
    candidates = {v.name for v in SPEC.candidates}
    assert r_selected == set(FIVE) and r_null == candidates - set(FIVE)
    for s in R_REF["screen"]:
        cph = _cox(shipped.cohort, [s["variable"]])
        np.testing.assert_allclose(cph.summary["p"], np.atleast_1d(s["p_wald"]), rtol=1e-5)
        np.testing.assert_allclose(cph.log_likelihood_ratio_test().p_value, s["p_lr"], rtol=1e-5)


def test_the_packages_own_screen_selects_exactly_the_five(shipped: sim.SyntheticStudy) -> None:
    """The study's rule (analysis.selection: univariable_screen, screen_p_value) run by the package."""
    assert select_predictors(SPEC, univariable_screen(SPEC, shipped.cohort)) == tuple(FIVE)


@pytest.mark.parametrize(("measure", "later", "earlier"), [("vas", "day3", "preop"), ("vas", "month12", "preop"),
                                                           ("odi_percent", "month12", "day3")])
def test_vas_and_odi_improve_as_published(shipped: sim.SyntheticStudy, measure: str, later: str, earlier: str) -> None:
    wide = shipped.outcomes.pivot(index=ID, columns="timepoint", values=measure)
    assert len(wide) == 27
    pairs = [("day3", "preop"), ("month12", "preop"), ("month12", "day3")]
    i = pairs.index((later, earlier))
    p_t = holm([stats.ttest_rel(wide[a], wide[b]).pvalue for a, b in pairs])[i]
    p_w = holm([signed_rank_test(wide[a].to_numpy(), wide[b].to_numpy()).p_value for a, b in pairs])[i]
    ref = next(x for x in R_REF["contrasts"] if (x["measure"], x["later"], x["earlier"]) == (measure, later, earlier))
    # R 4.2: p.adjust(c(t.test(x, y, paired = TRUE)$p.value, ...) over the 3 pairs, "holm")
    np.testing.assert_allclose(p_t, ref["p_t_holm"], rtol=1e-6)
    # R 4.2: p.adjust(c(wilcox.test(x, y, paired = TRUE)$p.value, ...) over the 3 pairs, "holm")
    np.testing.assert_allclose(p_w, ref["p_wilcoxon_holm"], rtol=1e-6)
    assert p_t < ALPHA and p_w < ALPHA
    assert (wide[later] - wide[earlier]).median() < 0 and ref["mean_diff"] < 0


def test_check_published_figures_passes_on_the_shipped_files(shipped: sim.SyntheticStudy) -> None:
    checks = sim.check_published_figures(shipped, spec=SPEC)
    assert checks["ok"].all(), checks.loc[~checks["ok"]].to_string()


def test_vas_and_odi_are_recorded_sensibly(shipped: sim.SyntheticStudy) -> None:
    o = shipped.outcomes
    assert (np.round(o["vas"], 1) == o["vas"]).all()
    assert (o["odi_percent"] % 2 == 0).all()  # 10 items x 0-5 points x 2


def test_readme_says_synthetic_and_how_it_was_made() -> None:
    text = (DATA / "README.md").read_text(encoding="utf-8")
    head = text[:400]
    assert "SYNTHETIC" in head and "not real patients" in head
    for needle in ("cementleak simulate --out data", "make simulate", f"seed **{sim.DEFAULT_SEED}**", "search_seed()",
                   "Weibull", "27"):
        assert needle in text, needle
    for name, beta in sim.TRUE_COEFFICIENTS.items():
        assert f"| `{name}` |" in text and f"{beta:+.3f}" in text, name


def test_dictionary_lists_every_column_of_both_files() -> None:
    d = _read("dictionary.csv")
    assert list(d.columns) == ["file", "column", "label", "unit", "kind", "levels", "description"]
    assert tuple(d.loc[d["file"] == "cohort.csv", "column"]) == tuple(_read("cohort.csv").columns)
    assert tuple(d.loc[d["file"] == "outcomes.csv", "column"]) == tuple(_read("outcomes.csv").columns)
