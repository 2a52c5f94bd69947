"""Discrimination of a survival score: Harrell's C (with R survival's variance) and the
cumulative/dynamic time-dependent AUC at the horizon (IPCW), one row each in
:func:`concordance_table`.

Harrell's C is computed by :mod:`.concordance` (the package's one C-index kernel; its names are
re-exported here).  The AUC is O(n log n) with numpy, without n x n matrices and without a
Python loop per patient, because the bootstrap calls it thousands of times; its censoring
weights come from the one reverse Kaplan-Meier, :func:`cementleak_stats.km.censoring_survival`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from ..design import encode
from ..errors import AnalysisError
from ..km import censoring_survival
from ..models.cox import CoxModel
from ..spec import StudySpec
from .concordance import Concordance, _check, concordance_batch, harrell_c

__all__ = ["Concordance", "harrell_c", "concordance_batch", "TimeDependentAUC", "dynamic_auc", "time_dependent_auc",
           "model_score", "concordance_table"]


@dataclass(frozen=True)
class TimeDependentAUC:
    """Cumulative/dynamic AUC at a time, with its influence-function standard error.

    Attributes
    ----------
    estimate, se, ci_low, ci_high : AUC, SE (weights taken as known, see
        :func:`dynamic_auc`), and estimate -/+ z se clipped to [0, 1].
    time : the horizon; left_limit : evaluated just below it.
    n_cases, n_controls : patients with the event by then / known event-free then.
    influence : (n,) the influence function of the AUC (per patient, weights taken as known;
        None without ``variance``): what a difference of two AUCs on the same patients needs.
    """

    estimate: float
    se: float
    ci_low: float
    ci_high: float
    time: float
    left_limit: bool
    n_cases: int
    n_controls: int
    alpha: float = 0.05
    influence: np.ndarray | None = field(default=None, repr=False, compare=False)


def dynamic_auc(
    time: np.ndarray,
    event: np.ndarray,
    score: np.ndarray,
    *,
    horizon: float,
    left_limit: bool = True,
    variance: bool = True,
    alpha: float = 0.05,
) -> TimeDependentAUC:
    """Cumulative/dynamic time-dependent AUC at the horizon, with IPCW (Uno / Blanche).

    Parameters
    ----------
    time, event, score : as :func:`harrell_c` (higher score = higher risk).
    horizon : the time t of the AUC.
    left_limit : evaluate just below the horizon (default): cases have the event before t
        (T < t), controls are still event-free at t (T >= t).  ``False`` uses t itself (cases
        T <= t, controls T > t).  When everyone still at risk is censored exactly at the
        horizon (this study: follow-up ends at 12 months), AUC *at* t has no controls and is
        undefined; just below t it is well defined (METHODS.md, "traps").
    variance : compute the standard error and CI (default).
    alpha : 1 - confidence level.

    Returns
    -------
    TimeDependentAUC

    Raises
    ------
    AnalysisError
        when there are no cases or no controls at the horizon.

    Notes
    -----
    With case weights a_i = 1/G(T_i-) (cases), control weights b_j = 1/G(t) (controls), 0
    otherwise, h_ij = I(s_i > s_j) + I(s_i = s_j)/2 and G the reverse Kaplan-Meier of censoring
    (:func:`~cementleak_stats.km.censoring_survival`, prodlim's tie rule),

        AUC = nu / mu,  nu = sum_ij a_i b_j h_ij / n^2,  mu = sum_i a_i sum_j b_j / n^2.

    Equals R ``riskRegression::Score(..., metrics = "auc", cens.model = "km")`` at
    ``times = horizon - 1e-6`` (left limit).  The SE is sd(IF)/sqrt(n) with the influence
    function of the V-statistic ratio, IF_k = (IF_k(nu) - AUC IF_k(mu)) / mu,
    IF_k(nu) = a_k sum_j b_j h_kj / n + b_k sum_i a_i h_ik / n - 2 nu (and likewise mu): the
    censoring weights are taken as known, which is riskRegression's ``conservative = TRUE``
    (equal to it to 1e-10).  riskRegression's default adds the term for estimating G; the two
    SEs differed by less than 1e-3 (relative) on the reference data.  O(n log n): scores are
    sorted once and the sums come from ``searchsorted`` and cumulative sums.

    References
    ----------
    Uno H, Cai T, Tian L, Wei LJ. Evaluating prediction rules for t-year survivors with
    censored regression models. JASA 2007;102:527-537.
    Blanche P, Dartigues JF, Jacqmin-Gadda H. Review and comparison of ROC curve estimators for
    a time-dependent outcome with marker-dependent censoring. Biom J 2013;55:687-704.
    """
    time, ev, score = _check(time, event, score)
    n = len(time)
    if left_limit:
        case, control = ev & (time < horizon), time >= horizon
    else:
        case, control = ev & (time <= horizon), time > horizon
    where = f"{'just below' if left_limit else 'at'} t = {horizon:g}"
    if not case.any():
        raise AnalysisError(f"time-dependent AUC {where}: no patient had the event by then")
    if not control.any():
        hint = " (everyone still at risk is censored at the horizon: use left_limit=True)" if not left_limit else ""
        raise AnalysisError(f"time-dependent AUC {where}: no patient is known to be event-free then{hint}")
    w = 1.0 / censoring_survival(time, ev, time[case], left=True)
    s_case, s_ctrl = score[case], np.sort(score[control])
    below = np.searchsorted(s_ctrl, s_case, side="left")
    ties = np.searchsorted(s_ctrl, s_case, side="right") - below
    won = below + 0.5 * ties  # per case: controls it out-scores
    n_ctrl = len(s_ctrl)
    auc = float((w * won).sum() / (w.sum() * n_ctrl))
    se = lo = hi = np.nan
    infl = None
    if variance:
        g_t = 1.0  # the control weight 1/G(t) is a constant factor of nu, mu and their IFs: it cancels
        # per control: weighted cases that out-score it (ties 1/2)
        order = np.argsort(s_case, kind="stable")
        sc_sorted, w_cum = s_case[order], np.concatenate(([0.0], np.cumsum(w[order])))
        s_c = score[control]
        lo_i = np.searchsorted(sc_sorted, s_c, side="left")
        hi_i = np.searchsorted(sc_sorted, s_c, side="right")
        beaten = (w_cum[-1] - w_cum[hi_i]) + 0.5 * (w_cum[hi_i] - w_cum[lo_i])
        a_sum, b_sum = w.sum(), n_ctrl * g_t
        nu = auc * a_sum * b_sum / n**2
        mu = a_sum * b_sum / n**2
        if_nu = np.full(n, -2 * nu)
        if_mu = np.full(n, -2 * mu)
        if_nu[case] += w * won * g_t / n
        if_mu[case] += w * b_sum / n
        if_nu[control] += g_t * beaten / n
        if_mu[control] += g_t * a_sum / n
        infl = (if_nu - auc * if_mu) / mu
        se = float(infl.std(ddof=1) / np.sqrt(n))
        z = stats.norm.ppf(1 - alpha / 2)
        lo, hi = max(0.0, auc - z * se), min(1.0, auc + z * se)
    return TimeDependentAUC(estimate=auc, se=se, ci_low=lo, ci_high=hi, time=float(horizon), left_limit=left_limit,
                            n_cases=int(case.sum()), n_controls=n_ctrl, alpha=alpha, influence=infl)


def time_dependent_auc(
    time: np.ndarray,
    event: np.ndarray,
    score: np.ndarray,
    *,
    horizon: float,
    left_limit: bool = True,
) -> float:
    """The AUC of :func:`dynamic_auc` alone (no variance): the bootstrap's fast path."""
    return dynamic_auc(time, event, score, horizon=horizon, left_limit=left_limit, variance=False).estimate


def model_score(spec: StudySpec, cohort: pd.DataFrame, model: CoxModel) -> np.ndarray:
    """The model's centred linear predictor for every patient of ``cohort``."""
    return model.lp(encode(spec, cohort, model.variables).X)


def concordance_table(
    spec: StudySpec,
    cohort: pd.DataFrame,
    model_or_score: CoxModel | np.ndarray,
    *,
    horizon: float | None = None,
) -> pd.DataFrame:
    """Discrimination measures of a model (or a risk score) on a cohort, one row each.

    Parameters
    ----------
    spec, cohort : the study file and the cohort (time and event columns from the spec).
    model_or_score : a fitted :class:`CoxModel` (its linear predictor is used) or a risk
        score per patient (higher = higher risk).
    horizon : time of the AUC (default the study horizon); evaluated just below it.

    Returns
    -------
    pandas.DataFrame
        ``measure`` ("c_index", "dxy", "auc"), ``label``, ``estimate``, ``se``, ``ci_low``,
        ``ci_high``.  C and Dxy intervals are Wald intervals with survival's
        infinitesimal-jackknife SE (Dxy = 2(C - 1/2), same transform of the limits); the AUC
        interval uses its influence-function SE (:func:`dynamic_auc`).  All are apparent
        (not optimism-corrected) performance.
    """
    score = model_score(spec, cohort, model_or_score) if isinstance(model_or_score, CoxModel) else np.asarray(model_or_score, float)
    t = cohort[spec.outcome.time].to_numpy(float)
    e = cohort[spec.outcome.event].to_numpy()
    h = spec.outcome.horizon if horizon is None else horizon
    c = harrell_c(t, e, score, alpha=spec.analysis.alpha)
    auc = dynamic_auc(t, e, score, horizon=h, alpha=spec.analysis.alpha)
    unit = spec.outcome.time_unit
    return pd.DataFrame({
        "measure": ["c_index", "dxy", "auc"],
        "label": ["Harrell's C", "Somers' Dxy", f"Time-dependent AUC just before {h:g} {unit}"],
        "estimate": [c.estimate, c.dxy, auc.estimate],
        "se": [c.se, 2 * c.se, auc.se],
        "ci_low": [c.ci_low, 2 * (c.ci_low - 0.5), auc.ci_low],
        "ci_high": [c.ci_high, 2 * (c.ci_high - 0.5), auc.ci_high],
    })
