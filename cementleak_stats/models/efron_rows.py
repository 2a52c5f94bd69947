"""The large-n path of the Efron sums of :mod:`.efron` (log partial likelihood, score and
information of B case-count replicates): one pass over the rows in decreasing time per
replicate, compiled with numba, as R ``survival``'s C routine ``coxfit6`` accumulates them.

Why beside the numpy sums of :mod:`.efron`: those are about 25 whole-array passes per Newton
step (and, for 16 candidate terms, a pass per design column), which at n = 10^6 cost about
35 ms per replicate for one term and 250 ms for 16; the bootstrap makes a few Newton steps per
replicate for every refit (the model, the honest screen's 13 one-variable refits, the calibration
slope, the calibration refits).  Here every row is read once per step.  numba costs about half a
second to import; :mod:`.compiled` says when this pass is used (every n, when installed).
A division by zero in it gives inf or NaN, as in numpy (:func:`.compiled.jit`).

The sums are the same quantities in another order (per time block and per Efron term instead of
per row): they agree with the numpy sums to rounding, about 1e-15 relative, and the Newton
iterations converge to the same estimates (tests/test_coxfit.py checks both paths).

Notes
-----
Rows sorted by decreasing time (events first among equal times); a block is the rows of one
time.  With w_i = c_i exp(x_i'b - shift) the risk-set sums S0, S1, S2 grow block by block; at a
block with events (weight d = sum c_i e_i of them, S0D, S1D, S2D their sums) Efron's terms
l = 0 .. d - 1, f = l / d, den = S0 - f S0D give loglik -= log den, m = (S1 - f S1D) / den,
score -= m, info += (S2 - f S2D) / den - m m'; loglik and score also add c_i e_i x_i (loglik:
the unshifted x_i'b) and loglik subtracts shift once per event.
"""

from __future__ import annotations

import math

import numpy as np

from .compiled import frozen, jit

__all__ = ["efron_rows", "baseline_hazard"]


def _sums(beta: np.ndarray, X: np.ndarray, counts: np.ndarray, event: np.ndarray, starts: np.ndarray,
          need_info: bool, use: np.ndarray, loglik: np.ndarray, score: np.ndarray,
          info: np.ndarray) -> None:  # pragma: no cover - compiled below
    B, p = beta.shape
    n = counts.shape[1]
    shared = X.shape[0] == 1
    eta = np.empty(n)
    s1 = np.empty(p)
    s1d = np.empty(p)
    s2 = np.empty((p, p))
    s2d = np.empty((p, p))
    m = np.empty(p)
    cols = np.empty(p, np.int64)
    for b in range(B):
        xb = 0 if shared else b
        nc = 0  # the coefficients whose score and information are wanted
        for j in range(p):
            if use[b, j]:
                cols[nc] = j
                nc += 1
        top = -np.inf
        for i in range(n):
            s = 0.0
            for j in range(p):
                if beta[b, j] != 0.0:
                    s += X[xb, i, j] * beta[b, j]
            eta[i] = s
            if s > top:
                top = s
        ll = 0.0
        events = 0.0
        for j in range(p):
            score[b, j] = 0.0
            s1[j] = 0.0
            for q in range(p):
                s2[j, q] = 0.0
                if need_info:
                    info[b, j, q] = 0.0 if (use[b, j] and use[b, q]) else np.nan
        s0 = 0.0
        for k in range(starts.size - 1):
            s0d = 0.0
            d = 0.0
            for jj in range(nc):
                j = cols[jj]
                s1d[j] = 0.0
                for qq in range(jj + 1):
                    s2d[j, cols[qq]] = 0.0
            for i in range(starts[k], starts[k + 1]):
                c = counts[b, i]
                if c == 0.0:
                    continue
                w = c * math.exp(eta[i] - top)
                s0 += w
                ev = event[i] != 0.0
                if ev:
                    s0d += w
                    d += c
                    ll += c * eta[i]
                for jj in range(nc):
                    j = cols[jj]
                    x = X[xb, i, j]
                    s1[j] += w * x
                    if ev:
                        s1d[j] += w * x
                        score[b, j] += c * x
                    if need_info:
                        wx = w * x
                        for qq in range(jj + 1):
                            q = cols[qq]
                            s2[j, q] += wx * X[xb, i, q]
                            if ev:
                                s2d[j, q] += wx * X[xb, i, q]
            if d > 0.0:
                dk = int(round(d))
                for el in range(dk):
                    f = el / dk
                    den = s0 - f * s0d
                    ll -= math.log(den)
                    for jj in range(nc):
                        j = cols[jj]
                        m[j] = (s1[j] - f * s1d[j]) / den
                        score[b, j] -= m[j]
                    if need_info:
                        for jj in range(nc):
                            j = cols[jj]
                            for qq in range(jj + 1):
                                q = cols[qq]
                                info[b, j, q] += (s2[j, q] - f * s2d[j, q]) / den - m[j] * m[q]
                events += d
        loglik[b] = ll - top * events
        if need_info:
            for jj in range(nc):
                j = cols[jj]
                for qq in range(jj):
                    q = cols[qq]
                    info[b, q, j] = info[b, j, q]


def _hazard(coef: np.ndarray, X: np.ndarray, centre: np.ndarray, counts: np.ndarray, event: np.ndarray,
            starts: np.ndarray, upto: np.ndarray, out: np.ndarray) -> None:  # pragma: no cover - compiled below
    B, p = coef.shape
    n = counts.shape[1]
    shared = X.shape[0] == 1
    eta = np.empty(n)
    for b in range(B):
        xb = 0 if shared else b
        top = -np.inf
        for i in range(n):
            s = 0.0
            for j in range(p):
                s += X[xb, i, j] * coef[b, j]
            eta[i] = s - centre[b]
            if eta[i] > top:
                top = eta[i]
        s0 = 0.0
        h = 0.0
        for k in range(starts.size - 1):
            s0d = 0.0
            d = 0.0
            for i in range(starts[k], starts[k + 1]):
                c = counts[b, i]
                if c == 0.0:
                    continue
                w = c * math.exp(eta[i] - top)
                s0 += w
                if event[i] != 0.0:
                    s0d += w
                    d += c
            if d > 0.0 and upto[starts[k]]:
                dk = int(round(d))
                a = 0.0
                for el in range(dk):
                    a += 1.0 / (s0 - el / dk * s0d)
                h += a * math.exp(-top)
        out[b] = h


def baseline_hazard(coef: np.ndarray, X: np.ndarray, centre: np.ndarray, counts: np.ndarray, event: np.ndarray,
                    starts: np.ndarray, upto: np.ndarray) -> np.ndarray:
    """Efron baseline cumulative hazard H0(t) of B fits, (B,): sum over the event times t_k <= t
    (``upto``, per sorted row) of sum_l 1 / (S0_k - (l / d_k) S0D_k) with w_i = c_i exp(x_i'b - centre)
    (R ``survfit.coxph``, ctype 2); rows as :func:`efron_rows`."""
    coef = frozen(np.atleast_2d(coef), np.float64)
    out = np.empty(coef.shape[0])
    jit(_hazard)(coef, frozen(X[None] if X.ndim == 2 else X, np.float64), frozen(centre, np.float64),
                 frozen(counts, np.float64), frozen(event, np.float64), frozen(starts, np.int64),
                 frozen(upto, np.bool_), out)
    return out


def efron_rows(beta: np.ndarray, X: np.ndarray, counts: np.ndarray, event: np.ndarray, starts: np.ndarray, *,
               need_info: bool, free: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(loglik (B,), score (B, p), info (B, p, p) or (B, 0, 0)) of B coefficient vectors.

    ``X`` (n, p) shared or (B, n, p), ``counts`` (B, n) and ``event`` (n,) with the rows sorted by
    decreasing time (events first among equal times); ``starts`` the increasing starts of the runs
    of equal time, then n.  ``free`` (B, p): the score and information are computed for these
    coefficients only (a fit that holds the others fixed needs no more); the others get score 0
    and information NaN.
    """
    beta = frozen(beta, np.float64)
    B, p = beta.shape
    use = frozen(np.ones((B, p)) if free is None else np.broadcast_to(free, (B, p)), np.bool_)
    loglik, score = np.empty(B), np.empty((B, p))
    info = np.empty((B, p, p) if need_info else (B, 0, 0))
    jit(_sums)(beta, frozen(X[None] if X.ndim == 2 else X, np.float64), frozen(counts, np.float64),
               frozen(event, np.float64), frozen(starts, np.int64), bool(need_info), use, loglik, score,
               info if need_info else np.empty((B, p, p)))
    return loglik, score, info
