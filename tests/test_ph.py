"""Tests of cementleak_stats.models.ph against R survival 3.5 ``cox.zph``
(tests/reference/survival_reference.R -> survival_<case>.json)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from lifelines.statistics import proportional_hazard_test

from cementleak_stats.models.cox import fit_cox_model
from cementleak_stats.models.ph import cox_zph, proportional_hazards_test, schoenfeld_smooth

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
    main = res.table[res.table["scope"] != "coefficient"] if by == "variable" else res.table
    assert list(main["term"]) == list(r["term"])
    # R survival 3.5: cox.zph(fit, transform = "km", terms = FALSE / TRUE)$table
    np.testing.assert_allclose(main["chisq"], r["chisq"], rtol=RTOL)
    np.testing.assert_allclose(main["p_value"], r["p"], rtol=RTOL)
    assert list(main["df"]) == list(r["df"])


def test_per_variable_table_marks_term_global_and_extra_coefficient_rows(fitted):
    case, rm, model = fitted
    tab = proportional_hazards_test(case.spec, case.cohort, model).table
    assert list(tab.columns) == ["term", "scope", "chisq", "df", "p_value"]
    n_var = len(model.variables)
    assert list(tab["scope"][:n_var]) == ["term"] * n_var and tab["scope"].iloc[n_var] == "global"
    assert tab["term"].iloc[n_var] == "GLOBAL"
    extra = tab.iloc[n_var + 1:]
    several = [t.name for t in model.terms if sum(u.variable == t.variable for u in model.terms) > 1]
    assert list(extra["term"]) == several and set(extra["scope"]) <= {"coefficient"}
    # R survival 3.5: cox.zph(fit, transform = "km", terms = FALSE)$table rows of those coefficients
    r = pd.DataFrame(rm["zph"]["table"]).set_index("term").loc[several]
    np.testing.assert_allclose(extra["chisq"], r["chisq"], rtol=RTOL)
    np.testing.assert_allclose(extra["p_value"], r["p"], rtol=RTOL)


@pytest.mark.parametrize("by,key", [("term", "zph"), ("variable", "zph_terms")])
def test_scaled_schoenfeld_equal_r(fitted, by, key):
    case, rm, model = fitted
    res = proportional_hazards_test(case.spec, case.cohort, model, by=by)
    terms = list(res.table.loc[res.table["scope"] == ("term" if by == "variable" else "coefficient"), "term"])
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


SUMMARIES = json.loads((Path(__file__).parent / "reference" / "summaries_r.json").read_text())


@pytest.mark.parametrize("name", sorted(SUMMARIES["zph_smooth"]))
def test_schoenfeld_smooth_equals_r_lowess(name):
    """The smooth the residual plot draws is computed with the test and equals R's lowess."""
    case = load_case(name)
    model = fit_cox_model(case.spec, case.cohort, case.model("main")["variables"])
    smooth = proportional_hazards_test(case.spec, case.cohort, model).smooth
    ref = SUMMARIES["zph_smooth"][name]
    assert list(pd.unique(smooth["term"])) == list(ref)
    for term, r in ref.items():
        s = smooth[smooth["term"] == term]
        # R 4.2: lowess(z$x, z$y[, term]) with z = cox.zph(fit, transform = "km", terms = TRUE)
        # (tests/reference/summaries_reference.R); the residuals themselves equal R's to 1e-6
        np.testing.assert_allclose(s["transformed_time"], r["x"], rtol=1e-12)
        np.testing.assert_allclose(s["smooth"], r["y"], rtol=1e-6, atol=1e-8)


def test_schoenfeld_smooth_needs_three_points():
    res = pd.DataFrame({"term": ["a", "a", "b", "b", "b"], "transformed_time": [0.1, 0.2, 0.1, 0.2, 0.3],
                        "residual": [1.0, 2.0, 1.0, 2.0, 3.0]})
    out = schoenfeld_smooth(res)
    assert list(out["term"]) == ["b"] * 3 and list(out.columns) == ["term", "transformed_time", "smooth"]
    np.testing.assert_allclose(out["smooth"], [1.0, 2.0, 3.0])  # a straight line is its own smooth
