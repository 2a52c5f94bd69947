"""The large-n path of Harrell's C (:func:`.concordance.concordance_batch`): one sweep over the
rows in decreasing time with a Fenwick tree (binary indexed tree) of weights over score ranks,
compiled with numba.

Why a second kernel beside the numpy one of :mod:`.concordance`: that one is log2(number of
times) vectorised merge passes over every (replicate, row), about 0.9 s per replicate at
n = 10^6, and the bootstrap needs a C for every replicate several times (validation: training
and test, standard and honest; the comparison with a comparator).  A Fenwick-tree sweep is
O(n log n) with a tiny constant but one row at a time, which numpy cannot express; numba compiles
it (about 0.05 s per replicate at n = 10^6).  The numpy kernel stays the path
where numba is not installed (:mod:`cementleak_stats.models.compiled`).  Both count the same integer-weighted pairs, exactly (sums of integers below
2^53 in float64), so they give the same C bit for bit (tests/test_discrimination.py).

Pair rule (as :mod:`.concordance`): with ``key = 2 rank(time) + censored``, (i, j) is comparable
iff i has the event (even key) and key_j > key_i.  Rows are visited by increasing score, a run
of equal scores at a time, into a Fenwick tree over the keys (a few thousand distinct times: the
tree stays in the processor's cache): each event row of the run reads the weight with a larger
key before the run is added (a lower score: concordant) and after (lower or equal: the
difference is score-tied); the rest of the weight with a larger key scored higher (discordant).

References
----------
Fenwick PM. A new data structure for cumulative frequency tables. Softw Pract Exp
1994;24:327-336.
"""

from __future__ import annotations

import numpy as np

from ..models.compiled import frozen, jit

__all__ = ["pair_totals"]


def _sweep(key: np.ndarray, score: np.ndarray, order: np.ndarray, weights: np.ndarray,
           out: np.ndarray) -> None:  # pragma: no cover - compiled below
    B, n = score.shape
    K = 0
    for i in range(n):
        K = max(K, key[i] + 1)
    tree = np.zeros(K + 1)  # Fenwick tree over the keys, largest key first (position K - key)
    above = np.zeros(K + 1)  # above[k]: weight with key > k
    less = np.zeros(n)
    ks = np.empty(n, np.int64)  # key, weight and score of the rows in score order (read in sequence)
    ws = np.empty(n)
    ss = np.empty(n)
    for b in range(B):
        tree[:] = 0.0
        above[:] = 0.0
        for m in range(n):
            i = order[b, m]
            ks[m] = key[i]
            ws[m] = weights[b, i]
            ss[m] = score[b, i]
            above[ks[m]] += ws[m]
        acc = 0.0
        for k in range(K - 1, -1, -1):
            w = above[k]
            above[k] = acc
            acc += w
        conc = 0.0
        disc = 0.0
        tied = 0.0
        lo = 0
        while lo < n:  # a run of equal scores at a time, from the lowest score up
            hi = lo + 1
            while hi < n and ss[hi] == ss[lo]:
                hi += 1
            # each event row's weight with a larger key: before the run is added (a lower score),
            # then with it (lower or equal)
            for added in range(2):
                for m in range(lo, hi):
                    if ks[m] % 2 == 0 and ws[m] != 0:
                        acc = 0.0
                        j = K - 1 - ks[m]
                        while j > 0:
                            acc += tree[j]
                            j -= j & (-j)
                        if added == 0:
                            less[m] = acc
                        else:
                            conc += ws[m] * less[m]
                            tied += ws[m] * (acc - less[m])
                            disc += ws[m] * (above[ks[m]] - acc)
                if added == 0:
                    for m in range(lo, hi):
                        if ws[m] != 0:
                            j = K - ks[m]
                            while j <= K:
                                tree[j] += ws[m]
                                j += j & (-j)
            lo = hi
        out[b, 0] = conc
        out[b, 1] = disc
        out[b, 2] = tied


def pair_totals(key: np.ndarray, score: np.ndarray, order: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Weighted concordant, discordant and score-tied comparable pairs of B samples, (B, 3).

    Parameters
    ----------
    key : (n,) ``2 rank(time) + censored`` (:func:`.concordance._time_key`).
    score : (B, n) risk scores; order : (B, n) ``np.argsort(score, axis=1)``.
    weights : (B, n) case weights (bootstrap counts; 1 for the sample itself).
    """
    B, n = score.shape
    out = np.zeros((B, 3))
    w = frozen(weights, np.uint8 if np.asarray(weights).dtype == np.uint8 else np.float64)
    jit(_sweep)(frozen(key, np.int64), frozen(score, np.float64), frozen(order, np.int64), w, out)
    return out
