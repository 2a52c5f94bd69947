"""Tests of cementleak_stats.models.ph against R survival 3.5 ``cox.zph``
(tests/reference/survival_reference.R -> survival_<case>.json)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from lifelines.statistics import proportional_hazard_test

from cementleak_stats.models.cox import fit_cox_model
from cementleak_stats.models.ph import cox_zph, proportional_hazards_test

try:
    from test_cox_support import case_ids, fit_case, load_case, model_cases
except ImportError:  # pragma: no cover
    from tests.test_cox_support import case_ids, fit_case, load_case, model_cases

RTOL = 1e-6
MODEL_CASES = model_cases()


@pytest.fixture(scope="module", params=MODEL_CASES, ids=case_ids(MODEL_CASES))
def fitted(request):
    return fit_case(*request.param)


@pytest.mark.parametrize("by,key", [("term", "zph"), ("variable", "zph_terms")])
def test_zph_table_equals_r(fitted, by, key):
    case, rm, model = fitted
    res = proportional_hazards_test(case.spec, case.cohort, model, by=by)
    r = pd.DataFrame(rm[key]["table"])
    assert list(res.table["term"]) == list(r["term"])
    # R survival 3.5: cox.zph(fit, transform = "km", terms = FALSE / TRUE)$table
    np.testing.assert_allclose(res.table["chisq"], r["chisq"], rtol=RTOL)
    np.testing.assert_allclose(res.table["p_value"], r["p"], rtol=RTOL)
    assert list(res.table["df"]) == list(r["df"])


@pytest.mark.parametrize("by,key", [("term", "zph"), ("variable", "zph_terms")])
def test_scaled_schoenfeld_equal_r(fitted, by, key):
    case, rm, model = fitted
    res = proportional_hazards_test(case.spec, case.cohort, model, by=by)
    terms = list(res.table["term"])[:-1]
    y = np.asarray(rm[key]["y"], float).reshape(len(rm["zph"]["time"]), -1)
    wide = np.column_stack([res.residuals.loc[res.residuals["term"] == t, "residual"] for t in terms])
    # R: cox.zph(...)$y (rows = events in time order, columns = terms)
    np.testing.assert_allclose(wide, y, rtol=RTOL, atol=1e-8)
    first = res.residuals[res.residuals["term"] == terms[0]]
    # R: cox.zph(...)$time and $x (= 1 - KM(t-))
    np.testing.assert_allclose(first["time"], rm["zph"]["time"])
    np.testing.assert_allclose(first["transformed_time"], rm["zph"]["x"], rtol=1e-12)
    assert list(res.residuals.columns) == ["term", "time", "transformed_time", "residual"]


def test_differs_from_lifelines_rank_test():
    """lifelines #997: its test is not the survival 3.x score test; make sure we are not it."""
    case = load_case("rossi")
    model = fit_cox_model(case.spec, case.cohort, case.model("main")["variables"])
    ours = proportional_hazards_test(case.spec, case.cohort, model).table.set_index("term")
    from lifelines import CoxPHFitter

    from cementleak_stats.design import encode
    X = encode(case.spec, case.cohort, model.variables).X.assign(week=case.time, arrest=case.event)
    cph = CoxPHFitter().fit(X, "week", "arrest")
    theirs = proportional_hazard_test(cph, X, time_transform="km").summary["test_statistic"]
    diff = np.abs(ours.loc[theirs.index, "chisq"].to_numpy() - theirs.to_numpy())
    assert diff.max() > 0.01


def test_other_transforms_run_and_identity_is_invariant_to_shift():
    case = load_case("fixture")
    model = fit_cox_model(case.spec, case.cohort, case.model("main")["variables"])
    from cementleak_stats.design import encode
    X = encode(case.spec, case.cohort, model.variables).X.to_numpy()
    names = [t.name for t in model.terms]
    tab_id, _ = cox_zph(X, case.time, case.event, model.coef.to_numpy(), names=names, transform="identity")
    tab_shift, _ = cox_zph(X, case.time + 100.0, case.event, model.coef.to_numpy(), names=names, transform="identity")
    # g(t) is centred at its event mean, so a shift of time changes nothing
    np.testing.assert_allclose(tab_id["chisq"], tab_shift["chisq"], rtol=1e-9)
    tab_rank, _ = cox_zph(X, case.time, case.event, model.coef.to_numpy(), names=names, transform="rank")
    assert np.isfinite(tab_rank["chisq"]).all()
    with pytest.raises(ValueError, match="unknown transform"):
        cox_zph(X, case.time, case.event, model.coef.to_numpy(), names=names, transform="sqrt")  # type: ignore[arg-type]
