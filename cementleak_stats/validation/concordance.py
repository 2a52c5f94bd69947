"""Harrell's concordance index: the package's one C-index kernel, weighted and batched.

A thin public function checks its inputs and calls :func:`_concordance_kernel` (as
scikit-survival's ``concordance_index_censored`` calls ``_estimate_concordance_index``):
:func:`harrell_c` for one sample, with R survival's infinitesimal-jackknife standard error, and
:func:`concordance_batch` for B bootstrap replicates given as case counts, used by the
validation indices (:mod:`.indices`) in every replicate.

Why not a library: lifelines' ``concordance_index`` gives no variance and is a Python-level
loop; scikit-survival is not a dependency and its ``concordance_index_censored`` builds
per-event masks (O(n^2)); neither gives survival's standard error.  Here the cost is
O(B n log n), without n x n matrices and without a Python loop per patient.

Pair counting
-------------
A patient ``i`` with the event and a patient ``j`` form a comparable pair when ``j`` is known to
outlive ``i``: ``t_j > t_i``, or ``t_j = t_i`` with ``j`` censored (R survival's rule; two events
at the same time are not comparable).  Give each patient the key ``k = 2 * rank(t) + censored``;
then (i, j) is comparable iff ``i`` has the event and ``k_j > k_i``.  Splitting the keys bit by
bit (as a merge sort does), every comparable pair is counted exactly once, at the highest bit
where ``k_i`` and ``k_j`` differ: within a block of equal higher bits, events in the lower half
are compared with everyone in the upper half through cumulative weights over the rows sorted by
score.  That is log2(n) vectorised passes, for B weighted samples at once; per-patient pair
counts (for the variance) come from the same passes in the other direction.

References
----------
Harrell FE, Lee KL, Mark DB. Multivariable prognostic models. Stat Med 1996;15:361-387.
Therneau TM, Atkinson EJ. Concordance. survival package vignette (3.x).
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass

import numpy as np
from scipy import stats

from ..errors import AnalysisError
from ..models import compiled
from ..models.coxfit import CHUNK_ELEMENTS
from . import concordance_bit

__all__ = ["Concordance", "harrell_c", "concordance_batch"]


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


def _dense_rank_rows(score: np.ndarray, order: np.ndarray | None = None) -> np.ndarray:
    """Dense rank of each row's values (equal values share a rank), (B, n) int64; ``order`` is
    ``np.argsort(score, axis=1)`` if the caller has it."""
    B, n = score.shape
    order = np.argsort(score, axis=1) if order is None else order
    s = np.take_along_axis(score, order, axis=1)
    step = np.zeros((B, n), np.int64)
    step[:, 1:] = s[:, 1:] != s[:, :-1]
    ranks = np.empty((B, n), np.int64)
    np.put_along_axis(ranks, order, np.cumsum(step, axis=1), axis=1)
    return ranks


def _concordance_kernel(key: np.ndarray, score: np.ndarray, weights: np.ndarray, *,
                        per_patient: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Weighted comparable pairs of B scores: concordant, discordant and score-tied.

    Parameters
    ----------
    key : (n,) 2 rank(time) + censored (module docstring).
    score : (B, n) risk scores (higher = earlier event).
    weights : (B, n) case weights (bootstrap counts; 1 for the sample itself).  A pair (i, j)
        weighs w_i w_j; two copies of one row are never comparable.
    per_patient : also return, per row, the partner weight of the pairs it takes part in (as
        the event or as the longer survivor): with unit weights, its pair counts.

    Returns
    -------
    totals : (B, 3) weights of concordant (the event has the higher score), discordant and
        score-tied comparable pairs.
    per : (B, n, 3) per-row concordant, discordant, tied (empty unless ``per_patient``).

    Notes
    -----
    One int64 per (sample, row) packs sample | key | score rank in bit fields.  For each bit of
    the key, rows are sorted by (sample, key above the bit, score rank) - a merge of the
    previous level's order - and an event in the lower half collects the weights of the
    upper-half rows of its block with a lower, equal or higher score from a cumulative sum.
    O(B n log n) per bit and log2(2 n_times) bits, where a pair matrix would be O(B n^2).
    """
    B, n = score.shape
    nkey = int(key.max()) + 1 if n else 1
    rb, kb = max(n - 1, 1).bit_length(), max(nkey - 1, 1).bit_length()
    drawn = weights > 0
    packed = ((np.arange(B, dtype=np.int64)[:, None] << (kb + rb)) | (key[None, :] << rb) | _dense_rank_rows(score))[drawn]
    w = weights[drawn]
    row = np.arange(B * n).reshape(B, n)[drawn] if per_patient else np.empty(0, np.int64)
    totals = np.zeros((B, 3))
    per = np.zeros((B * n if per_patient else 0, 3))
    for bit in range(max((nkey - 1).bit_length(), 1)):
        comp = packed & ~np.int64(((1 << (bit + 1)) - 1) << rb)  # (sample, key >> (bit + 1), rank)
        o = np.argsort(comp, kind="stable")  # two sorted runs per block: a merge
        packed, w, comp = packed[o], w[o], comp[o]
        if per_patient:
            row = row[o]
        k = packed >> rb
        upper = ((k >> bit) & 1).astype(bool)
        low_event = ~upper & ((k & 1) == 0)
        low = np.flatnonzero(low_event)
        if low.size == 0:
            continue
        # where each row's block (same sample and key above the bit) and run of equal scores
        # start and end in the sorted order: linear passes, not a binary search per row
        block_start, block_end = _runs(comp >> rb)
        run_start, run_end = _runs(comp)

        def below_equal_above(rows: np.ndarray, counted: np.ndarray) -> tuple[np.ndarray, ...]:
            """Weight of the ``counted`` rows of each row's block with a lower / equal / higher score."""
            cum = np.zeros(comp.size + 1)
            np.cumsum(np.where(counted, w, 0.0), out=cum[1:])
            first, same, above, end = block_start[rows], run_start[rows], run_end[rows], block_end[rows]
            return cum[same] - cum[first], cum[above] - cum[same], cum[end] - cum[above]

        less, equal, greater = below_equal_above(low, upper)  # the event scored higher than the survivor: concordant
        sample, wl = packed[low] >> (kb + rb), w[low]
        for j, pairs in enumerate((less, greater, equal)):
            totals[:, j] += np.bincount(sample, wl * pairs, minlength=B)
        if per_patient:
            per[row[low]] += np.column_stack((less, greater, equal))
            high = np.flatnonzero(upper)
            l2, e2, g2 = below_equal_above(high, low_event)  # earlier events scored higher: concordant
            per[row[high]] += np.column_stack((g2, l2, e2))
    return totals, per.reshape(B, n, 3) if per_patient else per


def _runs(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each element of a sorted array, where its run of equal values starts and ends (exclusive)."""
    new = np.empty(a.size, bool)
    new[:1] = True
    np.not_equal(a[1:], a[:-1], out=new[1:])
    starts = np.flatnonzero(new)
    run = np.cumsum(new) - 1
    return starts[run], np.append(starts[1:], a.size)[run]


def _time_key(time: np.ndarray, event: np.ndarray) -> np.ndarray:
    """2 rank(time) + censored: (i, j) is comparable iff i has the event and key_j > key_i."""
    return 2 * _dense_rank(time) + (~event.astype(bool)).astype(np.int64)


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
    totals, per = _concordance_kernel(_time_key(time, ev), score[None, :], np.ones((1, n)), per_patient=variance)
    conc, disc, tied = totals[0]
    per = per[0] if variance else per
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


#: the last (time, event) pairs keyed, by identity (read-only arrays only), as
#: :func:`cementleak_stats.models.efron._prepare`: the bootstrap asks for the C of the same rows
#: chunk after chunk, and ranking 10^6 times costs more than a chunk's sweep
_KEYS: list[tuple[weakref.ref, weakref.ref, np.ndarray]] = []


def _cached_key(time: np.ndarray, event: np.ndarray) -> np.ndarray:
    """:func:`_time_key`, reused while the same read-only arrays come back."""
    cacheable = not (time.flags.writeable or event.flags.writeable)
    if cacheable:
        for rt, re_, key in _KEYS:
            if rt() is time and re_() is event:
                return key
    key = _time_key(time, event)
    if cacheable:
        _KEYS[:] = [*_KEYS[-3:], (weakref.ref(time), weakref.ref(event), key)]
    return key


def concordance_batch(time: np.ndarray, event: np.ndarray, score: np.ndarray, counts: np.ndarray | None = None, *,
                      order: np.ndarray | None = None) -> np.ndarray:
    """Harrell's C of B scores at once, each row weighted by case counts, (B,).

    Parameters
    ----------
    time, event : (n,) outcome.
    score : (B, n) risk scores (higher = earlier event); a score shared by every sample may be
        given as (n,) or broadcast (then it is ranked once).
    counts : (B, n) case counts (duplicated-row semantics), default 1.
    order : ``np.argsort(score, axis=1)`` when the caller has it (the validation indices sort
        the linear predictor once for the C and Gini's mean difference, on the training and the
        test rows).

    Notes
    -----
    With weights c_i c_j: C = sum c_i c_j ([s_i > s_j] + 1/2 [s_i = s_j]) over comparable pairs
    / sum c_i c_j over comparable pairs (:func:`_concordance_kernel`, the kernel of
    :func:`harrell_c`; when numba is installed the Fenwick-tree sweep of
    :mod:`.concordance_bit` (:mod:`cementleak_stats.models.compiled`), which counts the same pairs exactly).  Two copies of one row are
    never comparable, so this equals the C of the resample with its rows duplicated.  NaN when
    no pair is comparable.  Replicates are processed in chunks (bounded memory).
    """
    time = np.asarray(time, dtype=float)
    score = np.asarray(score, dtype=float)
    shared = score.ndim == 1 or (score.shape[0] > 1 and score.strides[0] == 0)
    score = np.atleast_2d(score)
    n = score.shape[1]
    B = score.shape[0] if counts is None else np.atleast_2d(counts).shape[0]
    counts = np.ones((B, n)) if counts is None else np.atleast_2d(np.asarray(counts))  # compact counts stay compact
    size = max(1, CHUNK_ELEMENTS // max(n, 1))
    if compiled.ENABLED:
        key = _cached_key(time, np.asarray(event))
        if shared:  # one sort for every sample
            order = np.argsort(score[:1], axis=1) if order is None else order[:1]
        parts = []
        for c in range(0, B, size):
            b = min(size, B - c)
            sc = np.broadcast_to(score[:1], (b, n)) if shared else score[c:c + b]
            o = np.broadcast_to(order, (b, n)) if shared else (
                np.argsort(sc, axis=1) if order is None else order[c:c + b])
            parts.append(concordance_bit.pair_totals(key, sc, o, counts[c:c + b]))
        totals = np.concatenate(parts)
    else:
        key = _time_key(time, np.asarray(event))
        score = np.broadcast_to(score, (B, n))
        totals = np.concatenate([_concordance_kernel(key, score[c:c + size], counts[c:c + size].astype(float))[0]
                                 for c in range(0, B, size)])
    conc, disc, tied = totals.T
    with np.errstate(invalid="ignore", divide="ignore"):
        return (conc + 0.5 * tied) / (conc + disc + tied)
