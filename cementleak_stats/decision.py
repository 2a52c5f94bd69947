"""Decision curve analysis for a time-to-event outcome at a horizon (Vickers et al. 2008).

A patient is "treated" (classified high risk) at threshold probability p_t when the predicted
risk at the horizon is >= p_t.  Net benefit weighs true positives against false positives by
the odds of the threshold; for censored data the proportion of events among the treated is
the Kaplan-Meier risk at the horizon in that subgroup.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from .km import kaplan_meier
from .spec import StudySpec

COLUMNS = ["threshold", "net_benefit_model", "net_benefit_all", "net_benefit_none",
           "interventions_avoided", "n_treated"]


def threshold_grid(spec: StudySpec) -> np.ndarray:
    """Thresholds ``low, low + step, ..., high`` from ``analysis.decision_thresholds`` (inclusive)."""
    lo, hi, step = spec.analysis.decision_thresholds
    k = int(np.floor((hi - lo) / step + 1e-9))
    return np.round(lo + step * np.arange(k + 1), 10)


def km_survival_at(time: np.ndarray, event: np.ndarray, horizon: float) -> float:
    """Kaplan-Meier survival S(horizon) (right-continuous: events at the horizon count).

    Returns NaN when the estimate is undefined: nobody is followed up to the horizon and the
    curve has not reached 0.  Empty input gives NaN.

    Notes
    -----
    S(u) = prod over distinct event times t_k <= u of (1 - d_k / n_k), with n_k the number
    still under observation at t_k (time >= t_k).  Censorings tied with events at t_k are at
    risk at t_k, as in R ``survival::survfit``.  The estimate is :func:`cementleak_stats.km.kaplan_meier`
    (O(n log n)); verified against R ``survfit`` in the tests.
    """
    t = np.asarray(time, dtype=float)
    if t.size == 0:
        return float("nan")
    s = float(kaplan_meier(t, event).survival_at(horizon)[0, 0, 0])
    if t.max() < horizon and s > 0:
        return float("nan")
    return s


def net_benefit(
    risk: Sequence[float] | np.ndarray,
    time: Sequence[float] | np.ndarray,
    event: Sequence[int] | np.ndarray,
    *,
    horizon: float,
    thresholds: Sequence[float] | np.ndarray,
) -> pd.DataFrame:
    """Net benefit of a risk model, treat-all and treat-none for a survival outcome.

    Parameters
    ----------
    risk
        Predicted probability of the event by ``horizon`` for each patient, in [0, 1].
    time, event
        Follow-up time and event indicator (1 = event, 0 = censored).
    horizon
        Time at which the risk is predicted and the outcome is evaluated.
    thresholds
        Threshold probabilities p_t, each strictly between 0 and 1.

    Returns
    -------
    pandas.DataFrame
        One row per threshold: ``threshold``, ``net_benefit_model``, ``net_benefit_all``,
        ``net_benefit_none`` (exactly 0), ``interventions_avoided`` (net reduction in
        interventions per 100 patients compared with treating all), ``n_treated`` (patients
        with risk >= p_t).

    Notes
    -----
    With w = p_t / (1 - p_t), P(+) the fraction with risk >= p_t and S+ the Kaplan-Meier
    survival at the horizon among them,

    .. math:: NB_{model}(p_t) = (1 - S_+)\\,P(+) - S_+\\,P(+)\\,w,

    treat-all is the same with the whole-cohort Kaplan-Meier S, treat-none is 0, and
    interventions avoided per 100 = (NB_model - NB_all) / w x 100.  When nobody is treated
    NB_model = 0.  The Kaplan-Meier estimate is evaluated *at* the horizon, right-continuous:
    events at exactly the horizon count, and patients censored exactly at the horizon (in
    this study everyone still event-free at 12 months) are in the risk set there and do not
    lower S — which is correct for a Kaplan-Meier risk (the trap of METHODS.md concerns
    inverse-probability-weighted metrics, not this one).  If a treated subgroup has nobody
    followed to the horizon, its S is undefined and the net benefit is NaN (as MSKCC
    ``dcurves``).

    References
    ----------
    Vickers AJ, Cronin AM, Elkin EB, Gonen M. Extensions to decision curve analysis, a novel
    method for evaluating diagnostic tests, prediction models and molecular markers. BMC Med
    Inform Decis Mak 2008;8:53.
    Vickers AJ, Elkin EB. Decision curve analysis: a novel method for evaluating prediction
    models. Med Decis Making 2006;26:565-574.
    """
    r = np.asarray(risk, dtype=float)
    t = np.asarray(time, dtype=float)
    e = np.asarray(event)
    pts = np.asarray(thresholds, dtype=float)
    if not (r.shape == t.shape == e.shape) or r.ndim != 1:
        raise ValueError("risk, time and event must be 1-D arrays of the same length")
    if r.size == 0:
        raise ValueError("net_benefit needs at least one patient")
    if np.isnan(r).any() or (r < 0).any() or (r > 1).any():
        raise ValueError("risk must be probabilities in [0, 1] without missing values")
    if np.isnan(t).any() or (t < 0).any():
        raise ValueError("time must be non-negative without missing values")
    if not np.isin(e, (0, 1)).all():
        raise ValueError("event must be 0 or 1")
    if pts.ndim != 1 or (pts <= 0).any() or (pts >= 1).any():
        raise ValueError("thresholds must lie strictly between 0 and 1")
    e = e.astype(bool)
    n = r.size
    # in time order once: every treated subgroup is then already sorted, and the Kaplan-Meier's
    # stable sort passes sorted input in linear time (O(n log n) + O(n) per threshold)
    order = np.argsort(t, kind="stable")
    r, t, e = r[order], t[order], e[order]
    s_all = km_survival_at(t, e, horizon)
    rows = []
    for pt in pts:
        w = pt / (1.0 - pt)
        treated = r >= pt
        k = int(treated.sum())
        if k:
            s_pos = km_survival_at(t[treated], e[treated], horizon)
            p_pos = k / n
            nb_model = (1.0 - s_pos) * p_pos - s_pos * p_pos * w
        else:
            nb_model = 0.0
        nb_all = (1.0 - s_all) - s_all * w
        rows.append((pt, nb_model, nb_all, 0.0, (nb_model - nb_all) / w * 100.0, k))
    out = pd.DataFrame(rows, columns=COLUMNS)
    out["n_treated"] = out["n_treated"].astype(int)
    return out
