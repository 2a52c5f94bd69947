"""Kaplan-Meier survival at one time in every (sample, group) cell: the large-n path of the
grouped calibration (:func:`.calibration._groupkm`, R ``rms::groupkm``), compiled with numba.

Why beside :func:`cementleak_stats.km.kaplan_meier`: the calibration needs, in every bootstrap
replicate and for the training and the test rows, only S(u), Greenwood's variance of log S(u)
and the last follow-up time of each of g = n / m groups (40,000 groups at n = 10^6), and
``kaplan_meier`` builds every step of every cell (a sort of the B x n rows by cell and time,
about 0.3 s per replicate at n = 10^6).  Here one pass over the rows in time order (the order
of the whole cohort, shared by every replicate) keeps, per cell, the weight still at risk, the
running product and the running Greenwood sum: O(n) per replicate.  numba costs about half a
second to import; :mod:`cementleak_stats.models.compiled` says when it is used.
A division by zero in it gives inf or NaN, as in numpy (:func:`cementleak_stats.models.compiled.jit`).

The arithmetic is ``kaplan_meier``'s, step by step: at a time with weight d of events among the
n_risk still at risk in the cell, S is multiplied by 1 - d / n_risk and the Greenwood sum grows
by d / (n_risk (n_risk - d)) (inf once n_risk = d), in increasing time; n_risk is the cell's
total weight minus the weight that ended before (exact for integer case counts).  So both give
the same numbers bit for bit (tests/test_calibration.py).
"""

from __future__ import annotations

import weakref

import numpy as np

from ..models.compiled import frozen, jit

__all__ = ["km_at_cells", "censoring_left", "cut_groups"]


def _cells(by_time: np.ndarray, time: np.ndarray, event: np.ndarray, weights: np.ndarray, groups: np.ndarray,
           n_groups: int, at: float, surv: np.ndarray, green: np.ndarray,
           last: np.ndarray) -> None:  # pragma: no cover - compiled below
    B, n = weights.shape
    G = n_groups
    remaining = np.zeros(G)
    d = np.zeros(G)
    ended = np.zeros(G)
    touched = np.empty(n, np.int64)
    shared_groups = groups.shape[0] == 1
    for b in range(B):
        gb = 0 if shared_groups else b
        remaining[:] = 0.0
        for i in range(n):
            w = weights[b, i]
            if w != 0:
                remaining[groups[gb, i]] += w
        for c in range(G):
            surv[b, c] = 1.0
            green[b, c] = 0.0
            last[b, c] = -np.inf
        lo = 0
        while lo < n:  # a run of rows with the same time
            t = time[by_time[lo]]
            hi = lo + 1
            while hi < n and time[by_time[hi]] == t:
                hi += 1
            k = 0
            for m in range(lo, hi):
                i = by_time[m]
                w = weights[b, i]
                if w == 0:
                    continue
                c = groups[gb, i]
                if ended[c] == 0 and d[c] == 0:
                    touched[k] = c
                    k += 1
                ended[c] += w
                d[c] += w * event[i]
            for q in range(k):
                c = touched[q]
                if t <= at and d[c] > 0:
                    n_risk = remaining[c]
                    surv[b, c] *= 1.0 - d[c] / n_risk
                    if n_risk > d[c]:
                        green[b, c] += d[c] / (n_risk * (n_risk - d[c]))
                    else:
                        green[b, c] = np.inf
                last[b, c] = t
                remaining[c] -= ended[c]
                ended[c] = 0.0
                d[c] = 0.0
            lo = hi


def _censoring(by_time: np.ndarray, time: np.ndarray, event: np.ndarray, weights: np.ndarray, at: float,
               left: np.ndarray, at_value: np.ndarray) -> None:  # pragma: no cover - compiled below
    B, n = weights.shape
    for b in range(B):
        remaining = 0.0
        for i in range(n):
            remaining += weights[b, i]
        g = 1.0
        at_value[b] = 1.0
        lo = 0
        while lo < n:  # a run of rows with the same time, in increasing time
            t = time[by_time[lo]]
            hi = lo + 1
            while hi < n and time[by_time[hi]] == t:
                hi += 1
            total = 0.0
            died = 0.0
            for m in range(lo, hi):
                i = by_time[m]
                left[b, i] = g  # G just before this time
                total += weights[b, i]
                died += weights[b, i] * event[i]
            if total > 0:
                d = total - died  # censorings; the events at t have left the risk set of censoring
                if d > 0:
                    g *= 1.0 - d / (remaining - died)
                if t <= at:
                    at_value[b] = g
            remaining -= total
            lo = hi


def censoring_left(time: np.ndarray, event: np.ndarray, weights: np.ndarray, at: float) -> tuple[np.ndarray, np.ndarray]:
    """The reverse Kaplan-Meier G of B weighted samples: G(T_i-) at every row's own time, (B, n),
    and G(at), (B,).

    As ``kaplan_meier(time, event, weights=weights, reverse=True)`` read with
    ``survival_at(time, left=True)`` and ``survival_at(at)`` (prodlim's tie rule: the events at a
    time leave the risk set of censoring first), in one pass per sample.
    """
    weights = frozen(np.atleast_2d(weights), np.float64)
    left, at_value = np.empty(weights.shape), np.empty(weights.shape[0])
    jit(_censoring)(frozen(_time_order(time), np.int64), frozen(time, np.float64), frozen(event, np.float64),
                    weights, float(at), left, at_value)
    return left, at_value


#: the time order of the last few read-only time arrays, by identity (the bootstrap asks for the
#: same rows chunk after chunk)
_ORDERS: list[tuple[weakref.ref, np.ndarray]] = []


def _time_order(time: np.ndarray) -> np.ndarray:
    if not time.flags.writeable:
        for rt, order in _ORDERS:
            if rt() is time:
                return order
    order = np.argsort(time, kind="stable")
    if not time.flags.writeable:
        _ORDERS[:] = [*_ORDERS[-3:], (weakref.ref(time), order)]
    return order


def km_at_cells(time: np.ndarray, event: np.ndarray, weights: np.ndarray, groups: np.ndarray, n_groups: int,
                at: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """S(at), Greenwood's var(log S(at)) and the last time of each (sample, group) cell, (B, G) each.

    As ``kaplan_meier(time, event, weights=weights, groups=groups, n_groups=n_groups)`` read with
    ``survival_at(at)``, ``se_log_at(at) ** 2`` and ``last`` (right-continuous; 1, 0 and -inf
    for a cell without rows).  ``weights`` (B, n) case weights, ``groups`` (B, n) or (1, n).
    """
    weights = frozen(np.atleast_2d(weights), np.float64)
    B = weights.shape[0]
    surv, green, last = np.empty((B, n_groups)), np.empty((B, n_groups)), np.empty((B, n_groups))
    jit(_cells)(frozen(_time_order(time), np.int64), frozen(time, np.float64), frozen(event, np.float64), weights,
                frozen(np.atleast_2d(groups), np.int64), int(n_groups), float(at), surv, green, last)
    return surv, green, last


def _cut(values: np.ndarray, cuts: np.ndarray, out: np.ndarray) -> None:  # pragma: no cover - compiled below
    m = cuts.size
    top = m - 2
    lo, hi = cuts[0], cuts[-1]
    T = 4 * m  # buckets of equal width over [cuts[0], cuts[-1]]: about four per group
    scale = T / (hi - lo) if hi > lo else 0.0
    first = np.empty(T + 1, np.int64)  # per bucket: the last cut at or below its start
    k = -1
    for j in range(T + 1):
        edge = lo + j / scale if scale > 0 else lo
        while k + 1 < m and cuts[k + 1] <= edge:
            k += 1
        first[j] = k
    B, n = values.shape
    for b in range(B):
        for i in range(n):
            x = values[b, i]
            if x != x:  # NaN sorts after every cut, as in numpy
                k = m - 1
            else:
                if x <= lo:
                    j = 0
                elif x >= hi:
                    j = T
                else:
                    j = min(T, int((x - lo) * scale))
                k = first[j]
                while k >= 0 and cuts[k] > x:  # the bucket's rounding, either way
                    k -= 1
                while k + 1 < m and cuts[k + 1] <= x:
                    k += 1
            out[b, i] = 0 if k < 0 else (top if k > top else k)


def cut_groups(values: np.ndarray, cuts: np.ndarray) -> np.ndarray:
    """The interval of ``cuts`` (increasing, distinct) that holds each value, (B, n) int64: as
    ``np.clip(np.searchsorted(cuts, values, side="right") - 1, 0, len(cuts) - 2)`` (Hmisc ``cut2``:
    [c_k, c_{k+1}), the last one closed), bit for bit.

    Why not numpy: with the calibration's g = n / m groups (40,000 at n = 10^6) each binary search
    misses the cache at every step (about 120 ns a value); here a table of equal-width buckets
    over the cuts leads to the interval in a step or two (about 11 ns).
    """
    values = frozen(np.atleast_2d(values), np.float64)
    out = np.empty(values.shape, np.int64)
    jit(_cut)(values, frozen(cuts, np.float64), out)
    return out
