"""Nomogram data (nomogram.py) against R rms 6.5 ``nomogram`` and R 4.2 ``pretty``.

References: ``tests/reference/rms_pretty.csv`` (R ``pretty(c(lo, hi), n)`` on 696 ranges) and the
``nomogram`` section of ``rms_fixture.json`` / ``rms_shipped.json`` (rms_common.R:
``nomogram(cph(...), fun = function(x) 1 - S(12, x), lp = TRUE)``).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cementleak_stats.design import encode
from cementleak_stats.errors import InputError
from cementleak_stats.nomogram import Nomogram, build_nomogram, predict_risk
from cementleak_stats.pretty import pretty
from test_resample import CASES, REF, rms_case

#: rms writes a score-coded ordinal as its numbers 0, 1, 2
_SCORE = {"0": "mild", "1": "moderate", "2": "severe"}


def test_pretty_equals_r_on_many_ranges():
    cases = pd.read_csv(REF / "rms_pretty.csv", dtype=str)
    assert len(cases) > 600
    for lo, hi, n, values in cases.itertuples(index=False):
        # R 4.2: pretty(c(lo, hi), n = n)
        want = np.array([float(v) for v in values.split(";")])
        got = pretty([float(lo), float(hi)], int(n))
        assert got.shape == want.shape, (lo, hi, n)
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=0, err_msg=f"pretty(c({lo}, {hi}), {n})")


def test_pretty_ignores_non_finite_values():
    np.testing.assert_array_equal(pretty([np.nan, 0.2, np.inf, 0.9], 5), pretty([0.2, 0.9], 5))
    assert pretty([np.nan]).size == 0


@pytest.fixture(scope="module", params=list(CASES))
def built(request) -> tuple:
    case = rms_case(request.param)
    return case, build_nomogram(case.spec, case.model, case.cohort)


def test_points_table_equals_rms(built):
    case, nomo = built
    ref = case.ref["nomogram"]
    # R rms 6.5: attr(nomogram(...), "info")$sc and $Intercept
    assert nomo.scale == pytest.approx(ref["sc"], rel=1e-7)
    assert nomo.intercept == pytest.approx(ref["intercept"], rel=1e-7)
    assert list(nomo.points["predictor"].unique()) == list(case.model.variables)
    for name, axis in ref["axes"].items():
        rows = nomo.points[nomo.points["predictor"] == name]
        var = case.spec.variable(name)
        r_values = [_SCORE[v] if var.kind == "ordinal" else v for v in axis["value"]]
        got = dict(zip(rows["value"].map(lambda v: v if isinstance(v, str) else f"{v:g}"), rows["points"]))
        assert sorted(got) == sorted(r_values), name
        assert set(rows["label"]) == {var.display}
        # R rms 6.5: nomogram(...)[[name]]$points, 0.01 points (agreement is ~1e-9)
        for v, pts in zip(r_values, axis["points"]):
            assert got[v] == pytest.approx(pts, abs=0.01), (name, v)
            assert got[v] == pytest.approx(pts, abs=1e-6), (name, v)


def test_total_lp_and_risk_axes_equal_rms(built):
    case, nomo = built
    ref = case.ref["nomogram"]
    # R rms 6.5: nomogram(...)$total.points$x, $lp$x / $lp$x.real, $risk$x / $risk$x.real
    np.testing.assert_allclose(nomo.total["total_points"], ref["total_points"], rtol=1e-12)
    np.testing.assert_allclose(nomo.lp_axis["lp"], ref["lp_axis_real"], rtol=1e-12)
    np.testing.assert_allclose(nomo.lp_axis["total_points"], ref["lp_axis_x"], atol=1e-6)
    # R places a tick at risk 1 (or 0) where 1 - S0^exp(lp) rounds to 1 in double precision, at
    # the mean lp of those grid points; that risk is never reached, so we leave it out
    r_risk, r_x = np.asarray(ref["risk_axis_real"]), np.asarray(ref["risk_axis_x"])
    inside = (r_risk > 0) & (r_risk < 1)
    np.testing.assert_allclose(nomo.risk_axis["risk"], r_risk[inside], rtol=1e-12)
    # R inverts the risk function by linear interpolation on 1000 points; we invert exactly
    np.testing.assert_allclose(nomo.risk_axis["total_points"], r_x[inside], atol=0.01)
    # R rms 6.5: Survival(cph(...))(12, 0), the Efron baseline at the means
    assert nomo.baseline_survival == pytest.approx(case.ref["cox"]["s0_u"], rel=1e-7)
    np.testing.assert_allclose(nomo.risk_from_points(nomo.total["total_points"]), nomo.total["risk"], rtol=1e-12)


def test_axis_rules(built):
    case, nomo = built
    span = nomo.points.groupby("predictor")["points"].agg(["min", "max"])
    assert (span["min"].abs() < 1e-9).all() and span["max"].max() == pytest.approx(100)
    for name in case.model.variables:
        var = case.spec.variable(name)
        values = list(nomo.points.loc[nomo.points.predictor == name, "value"])
        if var.kind != "continuous":
            assert values == list(var.levels)
        else:
            data = np.unique(case.cohort[name].dropna())
            if data.size <= 10:
                assert values == list(data)
            else:  # pretty(range, 10) covers the data range
                assert values[0] <= data[0] and values[-1] >= data[-1]
                np.testing.assert_allclose(values, pretty([data[0], data[-1]], 10))
    assert any("Efron" in n for n in nomo.notes)
    with pytest.raises(dataclasses.FrozenInstanceError):
        nomo.scale = 1.0  # type: ignore[misc]


# --- scoring a patient ---------------------------------------------------------------------
def _patient_strategy(case, nomo: Nomogram) -> st.SearchStrategy:
    parts = {}
    for name in case.model.variables:
        var = case.spec.variable(name)
        if var.kind != "continuous":
            parts[name] = st.sampled_from(list(var.levels))
        else:
            vals = nomo.points.loc[nomo.points.predictor == name, "value"].astype(float)
            parts[name] = st.floats(float(vals.min()), float(vals.max()), allow_nan=False)
    return st.fixed_dictionaries(parts)


@pytest.mark.parametrize("name", list(CASES))
def test_points_round_trip_to_the_predicted_risk(name):
    case = rms_case(name)
    nomo = build_nomogram(case.spec, case.model, case.cohort)

    @settings(max_examples=60, deadline=None)
    @given(_patient_strategy(case, nomo))
    def check(patient):
        scored = predict_risk(case.spec, nomo, patient)
        assert scored.total_points == pytest.approx(scored.points["points"].sum(), abs=1e-9)
        # risk read off the total-points axis = the model's risk of this patient
        assert float(nomo.risk_from_points(scored.total_points)) == pytest.approx(scored.risk, rel=1e-9, abs=1e-12)
        row = pd.DataFrame([patient]).astype({k: "object" for k in patient})
        X = encode(case.spec, row, case.model.variables).X
        assert scored.risk == pytest.approx(float(case.model.risk(X)[0]), rel=1e-9, abs=1e-12)
        assert scored.lp == pytest.approx(float(case.model.lp(X)[0]), abs=1e-9)
        assert (scored.points["points"] >= -1e-9).all() and (scored.points["points"] <= 100 + 1e-9).all()
        plain = predict_risk(case.spec, case.model, patient)
        assert plain.risk == pytest.approx(scored.risk, rel=1e-12) and np.isnan(plain.total_points)

    check()


def _typical_patient(case) -> dict:
    out = {}
    for name in case.model.variables:
        var = case.spec.variable(name)
        out[name] = var.levels[-1] if var.kind != "continuous" else float(case.cohort[name].median())
    return out


def test_patient_errors_name_every_problem():
    case = rms_case("fixture")
    nomo = build_nomogram(case.spec, case.model, case.cohort)
    bad = _typical_patient(case)
    bad["cement_viscosity"] = "medium"          # unknown level
    bad["ct_value_hu"] = 400                    # outside the axis and the study range
    bad["cement_volume_ml"] = "lots"            # not a number
    del bad["levels_treated"]                   # missing
    bad["hospital"] = "A"                       # not a study variable
    with pytest.raises(InputError) as err:
        predict_risk(case.spec, nomo, bad)
    problems = err.value.table()
    assert set(problems["column"]) == {"cement_viscosity", "ct_value_hu", "cement_volume_ml", "levels_treated", "hospital"}
    assert "high" in problems.set_index("column").loc["cement_viscosity", "fix"]
    assert "20 to 200 HU" in problems.set_index("column").loc["ct_value_hu", "fix"]


def test_patient_accepts_aliases_and_numeric_text():
    case = rms_case("fixture")
    nomo = build_nomogram(case.spec, case.model, case.cohort)
    p = _typical_patient(case)
    a = predict_risk(case.spec, nomo, p)
    p2 = {**p, "cortical_fracture": "Y", "ct_value_hu": str(p["ct_value_hu"])}
    b = predict_risk(case.spec, nomo, p2)
    assert a.risk == b.risk and list(b.points["value"]) == list(a.points["value"])
    assert 0 < a.risk < 1 and a.horizon == case.spec.outcome.horizon
