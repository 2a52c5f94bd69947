"""The univariable screen's rule, in one place: which test of a candidate variable decides.

Two callers screen the candidates and must select alike: the study's screen
(:func:`cementleak_stats.models.cox.univariable_screen`, one fit per variable) and
honest validation, which repeats the screen in every bootstrap replicate with batched refits
(:func:`cementleak_stats.validation.resample.make_screening_fit_fn`).  Both call
:func:`screen_rule` and :func:`screen_selects`; what each passes as a *regular* fit is
:attr:`CoxModel.ok <cementleak_stats.models.cox.CoxModel.ok>` (no fatal diagnostic) for the
former and :func:`regular_fit` for the latter, the same criteria on the same rows.

The rule: a variable with one term is judged by the Wald test of its coefficient; a factor with
several terms by the likelihood-ratio test against the null model (its Wald tests are per
level); and any variable whose fit is not regular - separation (monotone likelihood), a
coefficient running away, no convergence - by the likelihood-ratio test, because the Wald P of
an infinite estimate tends to 1 (the Hauck-Donner effect) while the likelihood-ratio statistic
stays finite (it tends to its supremum).  A variable that cannot be fitted at all (constant, no
events) has no P value and is not selected.

References
----------
Hauck WW, Donner A. Wald's test as applied to hypotheses in logit analysis. JASA
1977;72:851-853.
Heinze G, Schemper M. A solution to the problem of monotone likelihood in Cox regression.
Biometrics 2001;57:114-119.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

__all__ = ["RUNAWAY_LOG_HR", "ScreenTest", "regular_fit", "screen_rule", "screen_selects"]

#: A term whose effect across the observed range of its column exceeds this on the log-hazard
#: scale (a hazard ratio above e^15, about 3 million, between the extreme patients) is taken
#: as a coefficient running away to infinity (monotone likelihood).
RUNAWAY_LOG_HR = 15.0

ScreenTest = Literal["wald", "likelihood_ratio"]


def regular_fit(converged: np.ndarray, coef: np.ndarray, span: np.ndarray) -> np.ndarray:
    """Fits whose Wald test means something: converged, and no coefficient running away.

    Parameters
    ----------
    converged : (B,) the fit reached its optimum.
    coef : (B, p) estimates (NaN where the fit failed).
    span : (p,) observed range of each design column, max - min.

    Returns
    -------
    (B,) bool: converged and |b_j| range(x_j) <= :data:`RUNAWAY_LOG_HR` for every term (the
    criteria of :func:`cementleak_stats.models.cox.fit_cox_model`'s diagnostics).
    """
    with np.errstate(invalid="ignore"):
        effect = np.abs(np.asarray(coef, float)) * np.asarray(span, float)
    return np.asarray(converged, bool) & (np.nan_to_num(effect, nan=np.inf) <= RUNAWAY_LOG_HR).all(axis=-1)


def screen_rule(n_terms: int, regular: np.ndarray | bool, wald_p: np.ndarray | float,
                lr_p: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
    """The test, and its P value, by which the screen judges a variable (module docstring).

    Parameters
    ----------
    n_terms : number of design terms of the variable.
    regular : whether each fit is regular (see the module docstring).
    wald_p : Wald P of the coefficient (used only for one term).
    lr_p : likelihood-ratio P against the null model (df = ``n_terms``).

    Returns
    -------
    test : "wald" or "likelihood_ratio", as an array broadcast over the inputs.
    p_value : that test's P (NaN when the variable could not be fitted).
    """
    wald = (n_terms == 1) & np.asarray(regular, bool)
    return np.where(wald, "wald", "likelihood_ratio"), np.where(wald, wald_p, lr_p).astype(float)


def screen_selects(p_value: np.ndarray | float, threshold: float) -> np.ndarray:
    """Selected when the screen's P value is below ``threshold`` (``analysis.screen_p_value``);
    a variable without a P value (not estimable) is not selected."""
    p = np.asarray(p_value, dtype=float)
    return np.where(np.isnan(p), False, p < threshold)
