"""Discrimination of a survival score: Harrell's C (with R survival's variance) and the
cumulative/dynamic time-dependent AUC at the horizon (IPCW).

Both are O(n log n) with numpy, without n x n matrices and without a Python loop per patient,
because the bootstrap calls them thousands of times.  Why not a library: lifelines'
``concordance_index`` gives no variance and is a Python-level loop; scikit-survival is not a
dependency and its ``concordance_index_censored`` builds per-event masks (O(n^2)); neither
gives survival's infinitesimal-jackknife standard error.

Pair counting
-------------
A patient ``i`` with the event and a patient ``j`` form a comparable pair when ``j`` is known to
outlive ``i``: ``t_j > t_i``, or ``t_j = t_i`` with ``j`` censored (R survival's rule; two events
at the same time are not comparable).  Give each patient the key ``k = 2 * rank(t) + censored``;
then (i, j) is comparable iff ``i`` has the event and ``k_j > k_i``.  Splitting the keys bit by
bit (as a merge sort does), every comparable pair is counted exactly once, at the highest bit
where ``k_i`` and ``k_j`` differ: within a block of equal higher bits, events in the lower half
are compared with everyone in the upper half by ``searchsorted`` on the sorted scores.  That is
log2(n) vectorised passes; per patient counts (needed for the variance) come from the same
passes in the other direction.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from ..design import encode
from ..errors import AnalysisError
from ..models.cox import CoxModel
from ..spec import StudySpec


@dataclass(frozen=True)
class Concordance:
    """Harrell's concordance of a risk score with survival (higher score = earlier event).

    Attributes
    ----------
    estimate : C = (concordant + tied_score / 2) / (concordant + discordant + tied_score).
    se : infinitesimal-jackknife standard error (R survival ``concordance``); NaN when not
        computed (``variance=False``).
    ci_low, ci_high : estimate -/+ z_{1-alpha/2} se, clipped to [0, 1].
    n_concordant, n_discordant : comparable pairs where the earlier event has the higher /
        lower score.
    n_tied_score : comparable pairs with equal scores (count 1/2).
    n_tied_time : pairs of events at the same time with different scores (not comparable;
        R ``tied.y``); n_tied_both : same time and same score (R ``tied.xy``).
    n : number of patients; alpha : 1 - confidence level.
    """

    estimate: float
    se: float
    ci_low: float
    ci_high: float
    n_concordant: float
    n_discordant: float
    n_tied_score: float
    n_tied_time: float
    n_tied_both: float
    n: int
    alpha: float = 0.05

    @property
    def n_comparable(self) -> float:
        return self.n_concordant + self.n_discordant + self.n_tied_score

    @property
    def dxy(self) -> float:
        """Somers' Dxy = 2 (C - 1/2) (positive when higher scores go with earlier events)."""
        return 2.0 * (self.estimate - 0.5)


def _check(time: np.ndarray, event: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    time = np.asarray(time, dtype=float)
    event = np.asarray(event)
    score = np.asarray(score, dtype=float)
    if not (time.ndim == event.ndim == score.ndim == 1 and len(time) == len(event) == len(score)):
        raise ValueError("time, event and score must be 1-d arrays of the same length")
    if len(time) == 0:
        raise ValueError("no patients")
    if np.isnan(time).any() or np.isnan(score).any():
        raise ValueError("time and score must not contain NaN")
    if not np.isin(event, (0, 1)).all():
        raise ValueError("event must be 0/1")
    return time, event.astype(bool), score


def _dense_rank(a: np.ndarray) -> np.ndarray:
    return np.unique(a, return_inverse=True)[1].astype(np.int64)


def _window_counts(sorted_keys: np.ndarray, block: np.ndarray, sr: np.ndarray, n_scores: int) -> tuple[np.ndarray, ...]:
    """For keys block*n_scores + score_rank: how many in the same block are <, ==, > sr."""
    base = block * n_scores
    m = len(base)
    left = np.searchsorted(sorted_keys, np.concatenate((base, base + sr, base + n_scores)), side="left")
    hi = np.searchsorted(sorted_keys, base + sr, side="right")
    start, lo, end = left[:m], left[m:2 * m], left[2 * m:]
    return lo - start, hi - lo, end - hi


def _pair_counts(key: np.ndarray, event: np.ndarray, sr: np.ndarray, *, per_patient: bool) -> tuple[np.ndarray, ...]:
    """Concordant, discordant and score-tied comparable pairs.

    ``key`` = 2 rank(time) + censored, ``sr`` = dense rank of the score.  Returns the totals
    (3,) and, when ``per_patient``, an (n, 3) array of the pairs each patient is part of (as
    the event or as the longer survivor).
    """
    n = len(key)
    n_scores = int(sr.max()) + 1
    counts = np.zeros((n, 3)) if per_patient else np.empty((0, 3))
    totals = np.zeros(3)
    for b in range(max(int(key.max()).bit_length(), 1)):
        bit = (key >> b) & 1
        block = key >> (b + 1)
        is_high = bit == 1
        low_events = np.flatnonzero(~is_high & event)  # the earlier events
        high = np.flatnonzero(is_high)  # everyone known to outlive them (same block)
        if low_events.size == 0 or high.size == 0:
            continue
        b_low, s_low = block[low_events], sr[low_events]
        b_high, s_high = block[high], sr[high]
        keys_high = np.sort(b_high * n_scores + s_high)
        less, equal, greater = _window_counts(keys_high, b_low, s_low, n_scores)
        # the event has a higher score than the survivor: concordant
        totals += (less.sum(), greater.sum(), equal.sum())
        if per_patient:
            counts[low_events] += np.column_stack((less, greater, equal))
            keys_low = np.sort(b_low * n_scores + s_low)
            l2, e2, g2 = _window_counts(keys_low, b_high, s_high, n_scores)
            counts[high] += np.column_stack((g2, l2, e2))  # earlier events scored higher: concordant
    return totals, counts


def _time_ties(tr: np.ndarray, event: np.ndarray, sr: np.ndarray) -> tuple[float, float]:
    """Pairs of events at the same time: (different scores, same score)."""
    if not event.any():
        return 0.0, 0.0
    te, se = tr[event], sr[event]
    c_t = np.unique(te, return_counts=True)[1]
    c_ts = np.unique(te * (int(sr.max()) + 1) + se, return_counts=True)[1]
    same_time = float((c_t * (c_t - 1) / 2).sum())
    both = float((c_ts * (c_ts - 1) / 2).sum())
    return same_time - both, both


def harrell_c(
    time: np.ndarray,
    event: np.ndarray,
    score: np.ndarray,
    *,
    variance: bool = True,
    alpha: float = 0.05,
) -> Concordance:
    """Harrell's C of a risk score (higher score = higher risk), as R survival ``concordance``.

    Parameters
    ----------
    time, event : follow-up time and 0/1 event indicator.
    score : risk score, e.g. the Cox linear predictor (only its order matters).
    variance : compute the infinitesimal-jackknife standard error and the CI (default).  The
        point estimate alone (``variance=False``) is what a bootstrap replicate needs.
    alpha : 1 - confidence level of the interval.

    Returns
    -------
    Concordance

    Notes
    -----
    With C, D, T the numbers of concordant, discordant and score-tied comparable pairs
    (module docstring), C-index = (C + T/2) / (C + D + T); Somers' d = (C - D) / N with
    N = C + D + T.  survival's infinitesimal-jackknife variance: with c_i, d_i, t_i the pairs
    patient i belongs to, dfbeta_i = (c_i - d_i)/N - d (c_i + d_i + t_i)/N and
    var(C-index) = sum_i dfbeta_i^2 / 4.  For a Cox model this equals R
    ``concordance(fit)`` (which uses ``reverse = TRUE``: concordance of -lp with time),
    ``timewt = "n"``.  R first merges times equal up to rounding error (``aeqSurv``); here
    times are compared exactly.

    References
    ----------
    Harrell FE, Lee KL, Mark DB. Multivariable prognostic models. Stat Med 1996;15:361-387.
    Therneau TM, Atkinson EJ. Concordance. survival package vignette (3.x).
    """
    time, ev, score = _check(time, event, score)
    n = len(time)
    tr, sr = _dense_rank(time), _dense_rank(score)
    totals, per = _pair_counts(2 * tr + (~ev).astype(np.int64), ev, sr, per_patient=variance)
    conc, disc, tied = totals
    npair = conc + disc + tied
    tied_time, tied_both = _time_ties(tr, ev, sr)
    if npair == 0:
        raise AnalysisError("no comparable pairs (no event before another patient's time): C is undefined")
    somers = (conc - disc) / npair
    est = (somers + 1) / 2
    se = lo = hi = np.nan
    if variance:
        dfbeta = (per[:, 0] - per[:, 1]) / npair - somers / npair * per.sum(axis=1)
        se = float(np.sqrt((dfbeta**2).sum() / 4))
        z = stats.norm.ppf(1 - alpha / 2)
        lo, hi = max(0.0, est - z * se), min(1.0, est + z * se)
    return Concordance(
        estimate=float(est), se=se, ci_low=lo, ci_high=hi, n_concordant=float(conc), n_discordant=float(disc),
        n_tied_score=float(tied), n_tied_time=tied_time, n_tied_both=tied_both, n=n, alpha=alpha,
    )


def _censoring_km_left(time: np.ndarray, event: np.ndarray, at: np.ndarray) -> np.ndarray:
    """Kaplan-Meier of the censoring distribution just before ``at``, G(at-).

    Censorings are the events of G.  At a time with both events and censorings the events
    come first, so they are not at risk of being censored then: the risk set of G at u is
    #{T > u} + #{T = u, censored}.  That is the reverse Kaplan-Meier of prodlim used by
    riskRegression ``cens.model = "km"`` (checked against it on tied data; counting the
    events in the risk set moved the AUC by ~4e-5).
    """
    ut, inv = np.unique(time, return_inverse=True)
    c = np.bincount(inv, weights=(~event).astype(float), minlength=len(ut))
    d = np.bincount(inv, weights=event.astype(float), minlength=len(ut))
    n_at = np.bincount(inv, minlength=len(ut))[::-1].cumsum()[::-1] - d
    with np.errstate(divide="ignore", invalid="ignore"):
        g = np.cumprod(np.where(c > 0, 1.0 - c / n_at, 1.0))
    idx = np.searchsorted(ut, at, side="left")  # number of distinct times < at
    return np.where(idx == 0, 1.0, g[np.maximum(idx - 1, 0)])


@dataclass(frozen=True)
class TimeDependentAUC:
    """Cumulative/dynamic AUC at a time, with its influence-function standard error.

    Attributes
    ----------
    estimate, se, ci_low, ci_high : AUC, SE (weights taken as known, see
        :func:`dynamic_auc`), and estimate -/+ z se clipped to [0, 1].
    time : the horizon; left_limit : evaluated just below it.
    n_cases, n_controls : patients with the event by then / known event-free then.
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
    otherwise, h_ij = I(s_i > s_j) + I(s_i = s_j)/2 and G the Kaplan-Meier of censoring,

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
    w = 1.0 / _censoring_km_left(time, ev, time[case])
    s_case, s_ctrl = score[case], np.sort(score[control])
    below = np.searchsorted(s_ctrl, s_case, side="left")
    ties = np.searchsorted(s_ctrl, s_case, side="right") - below
    won = below + 0.5 * ties  # per case: controls it out-scores
    n_ctrl = len(s_ctrl)
    auc = float((w * won).sum() / (w.sum() * n_ctrl))
    se = lo = hi = np.nan
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
                            n_cases=int(case.sum()), n_controls=n_ctrl, alpha=alpha)


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
