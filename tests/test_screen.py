"""The univariable screen's rule (cementleak_stats/models/screen.py), shared by the study's screen
and honest validation: both must select alike on the same rows, separation included.

The study's screen itself is checked against R in test_cox.py (``test_screen_equals_r``: R
``coxph`` Wald and likelihood-ratio P per variable, survival_reference.R).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from test_cox import _separated
from test_cox_support import load_case

from cementleak_stats.models.cox import univariable_screen
from cementleak_stats.models.screen import RUNAWAY_LOG_HR, regular_fit, screen_rule, screen_selects
from cementleak_stats.validation.resample import _screen_p_values, cox_data, make_screening_fit_fn


def test_rule_wald_for_one_regular_term_else_likelihood_ratio() -> None:
    test, p = screen_rule(1, np.array([True, False]), np.array([0.01, 0.9]), np.array([0.02, 1e-8]))
    assert test.tolist() == ["wald", "likelihood_ratio"] and p.tolist() == [0.01, 1e-8]
    test, p = screen_rule(3, True, 0.01, 0.2)  # a factor: jointly, by the LR test
    assert str(test) == "likelihood_ratio" and float(p) == 0.2
    assert screen_selects(np.array([0.01, 0.05, np.nan, 0.2]), 0.05).tolist() == [True, False, False, False]


def test_regular_fit_is_converged_without_a_runaway_coefficient() -> None:
    span = np.array([2.0, 10.0])
    coef = np.array([[1.0, 0.1], [RUNAWAY_LOG_HR / 2 + 0.1, 0.1], [1.0, RUNAWAY_LOG_HR / 10], [np.nan, np.nan]])
    assert regular_fit(np.array([True, True, True, False]), coef, span).tolist() == [True, False, True, False]
    assert not regular_fit(np.array([False]), coef[:1], span)[0]


def _screens(spec, cohort) -> tuple[pd.DataFrame, np.ndarray]:
    spec = spec.model_copy(update={"analysis": spec.analysis.model_copy(update={"selection": "univariable_screen"})})
    candidates = [v.name for v in spec.candidates]
    main = univariable_screen(spec, cohort).groupby("variable", sort=False).first().loc[candidates]
    honest = _screen_p_values(cox_data(spec, cohort, candidates), np.ones((1, len(cohort))))[0]
    fits = make_screening_fit_fn(spec.analysis.screen_p_value)(cox_data(spec, cohort, candidates),
                                                               np.ones((1, len(cohort))))
    assert fits.selected[0].tolist() == main["selected"].tolist()  # the same variables enter
    return main, honest


@pytest.mark.parametrize("separated", [False, True], ids=["regular", "separation"])
def test_honest_validation_screens_as_the_study_screen(separated: bool) -> None:
    case = load_case("fixture")
    cohort = _separated(case) if separated else case.cohort
    main, honest = _screens(case.spec, cohort)
    wald = (main["variable_test"] == "wald").to_numpy()
    # the same test, the same P (lifelines' fit vs the batched Newton fit: to their tolerance)
    np.testing.assert_allclose(honest[wald], main["variable_p_value"].to_numpy(float)[wald], rtol=1e-6)
    lr = ~wald
    regular_lr = lr & (main["note"] == "").to_numpy()
    np.testing.assert_allclose(honest[regular_lr], main["variable_p_value"].to_numpy(float)[regular_lr], rtol=1e-6)
    if separated:
        # the separated variable: Wald P ~ 1 (Hauck-Donner) in both fitters, so both judge it by its
        # likelihood-ratio test at the supremum, and both select it
        j = main.index.get_loc("intravertebral_cleft")
        assert main["variable_test"].iloc[j] == "likelihood_ratio" and main["selected"].iloc[j]
        assert honest[j] < 1e-6 and main["variable_p_value"].iloc[j] < 1e-6
