"""The sums of one Newton step of a batched Efron Cox fit: log partial likelihood, score and
information of B case-count replicates of the same rows, in O(B n p^2) without (n, K) matrices.
Split from :mod:`.coxfit` (issue 12), which iterates them.

Notes
-----
Rows sorted by decreasing time form tie groups k (the distinct times); d_k is the number of
events at t_k (counting copies); with w_i = c_i exp(x_i'b) (c_i the case count) the risk-set
sums are S0_k = sum_{t_i >= t_k} w_i, S1_k, S2_k, and S0D_k, S1D_k, S2D_k the same sums over
the events at t_k.  Efron's approximation is

    loglik = sum_i c_i e_i x_i'b - sum_k sum_{l<d_k} log(S0_k - f_l S0D_k),   f_l = l / d_k

With a_k = sum_l 1/den_kl and b_k = sum_l f_l/den_kl the score is
sum_i c_i e_i x_i - sum_i v_i x_i and the information is
sum_i v_i x_i x_i' - sum_k [c0_k S1 S1' - c1_k (S1 S1D' + S1D S1') + c2_k S1D S1D'], where
v_i = w_i (A_i - e_i b_{k(i)}), A_i = sum_{k: t_k <= t_i} a_k and c0, c1, c2 = sum_l
(1, f_l, f_l^2)/den_kl^2.  Writing the second-moment sums per row (v_i) instead of per risk set
avoids cumulative sums of (B, n, p, p) arrays: the information is one product (B, n) x
(n, p(p+1)/2) with the column products x_j x_k.
With the rows sorted by decreasing time (events first among equal times), the risk set of t_k
is a prefix of the rows, so S0_k, S1_k are cumulative sums over the K segment sums of the
rows each risk set adds, and the events at t_k are a block, so S0D_k, S1D_k are segment sums.

The Efron baseline cumulative hazard (R ``survfit.coxph``, ``ctype = 2``) adds
dH_k = a_k = sum_{l<d_k} 1 / (S0_k - f_l S0D_k) at t_k, for a patient with lp = 0.

References
----------
Efron B. The efficiency of Cox's likelihood function for censored data. JASA 1977;72:557-565.
Therneau TM, Grambsch PM. Modeling Survival Data. Springer 2000, ch. 3 and 10.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass

import numpy as np

from . import compiled, efron_rows


@dataclass(frozen=True)
class _Prep:
    """The rows by decreasing time (events first among equal times), and where each distinct
    event time's risk set and events are in that order.

    A replicate only repeats or drops rows, so its event times are among the original ones.
    In this order the risk set of t_k is a prefix of the rows and its events are a block, so
    every risk-set sum is one cumulative sum read at ``last`` and every event sum one segment
    sum, O(n) per replicate.  The internal functions take their rows in this order
    (:meth:`sort_design`, :meth:`sort_weights`).
    """

    time: np.ndarray  # (K,) distinct event times, increasing
    order: np.ndarray  # (n,) original row of each sorted row
    last: np.ndarray  # (K,) last sorted row with time >= t_k
    risk_starts: np.ndarray  # increasing starts of the rows each risk set adds to the next larger one
    segments: np.ndarray  # increasing segment bounds: the events of each t_k, from the last t_k down
    row_index: np.ndarray  # (n,) column of a sorted row in the table of :meth:`at_rows`
    event: np.ndarray  # (n,) 0/1 of the sorted rows
    blocks: np.ndarray  # increasing starts of the runs of equal time in this order, then n

    def sort_design(self, X: np.ndarray) -> np.ndarray:
        """A design (n, p) or (B, n, p) with its rows in this order."""
        return X[self.order] if X.ndim == 2 else np.take(X, self.order, axis=1)

    def sort_weights(self, a: np.ndarray) -> np.ndarray:
        """(B, n) case counts or linear predictors with their rows in this order."""
        return np.take(a, self.order, axis=1)  # the same gather as a[:, order], several times faster

    def risk_sum(self, a: np.ndarray) -> np.ndarray:
        """sum_{i: t_i >= t_k} a_bi for each event time: sorted (B, n) -> (B, K).

        The risk sets are nested prefixes: one segment sum per risk set (the rows it adds to the
        next smaller one), then a cumulative sum over the K risk sets, not over the n rows.
        """
        K = self.time.size
        if K == 0:
            return np.zeros((a.shape[0], 0))
        return np.cumsum(np.add.reduceat(a, self.risk_starts, axis=1)[:, :K], axis=1)[:, ::-1]

    def event_sum(self, a: np.ndarray) -> np.ndarray:
        """sum over the event rows at t_k of a_bi: sorted (B, n) -> (B, K)."""
        if self.time.size == 0:
            return np.zeros((a.shape[0], 0))
        return np.add.reduceat(a, self.segments, axis=1)[:, ::2][:, ::-1]

    def at_rows(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """A_i - e_i b_k(i) for each sorted row, with A_i = sum_{k: t_k <= t_i} a_k: (B, K) -> (B, n).

        One gather from the table [A at 0..K event times, A - b at each event time].
        """
        cum = np.cumsum(a, axis=1)
        table = np.concatenate([np.zeros((a.shape[0], 1)), cum, cum - b], axis=1)
        return table[:, self.row_index]


#: the last few (time, event) pairs prepared, by identity: the bootstrap fits the same rows
#: chunk after chunk (at n = 10^6 two replicates per chunk, several fits each), and sorting
#: 10^6 times costs more than a chunk's Newton step.  Held by weak reference, checked by identity.
_PREPARED: list[tuple[weakref.ref, weakref.ref, _Prep]] = []
#: how many: the model's rows and the honest screen's 13 collapsed designs in every chunk
PREPARED_MAX = 32


def _prepare(time: np.ndarray, event: np.ndarray) -> _Prep:
    """:func:`_prepare_rows`, reused while the same (unchanged, read-only) arrays come back."""
    if isinstance(time, np.ndarray) and isinstance(event, np.ndarray) and not (time.flags.writeable
                                                                             or event.flags.writeable):
        for rt, re_, prep in list(_PREPARED):
            if rt() is time and re_() is event:
                return prep
        prep = _prepare_rows(time, event)
        _PREPARED[:] = [*(e for e in _PREPARED[-(PREPARED_MAX - 1):] if e[0]() is not None),
                        (weakref.ref(time), weakref.ref(event), prep)]
        return prep
    return _prepare_rows(time, event)


def _prepare_rows(time: np.ndarray, event: np.ndarray) -> _Prep:
    time = np.asarray(time, dtype=float)
    event = np.asarray(event, dtype=float)
    if time.ndim != 1 or time.shape != event.shape:
        raise ValueError("time and event must be 1-D arrays of the same length")
    if not np.all(np.isfinite(time)) or not np.all(np.isin(event, (0.0, 1.0))):
        raise ValueError("time must be finite and event 0/1")
    n = time.size
    order = np.lexsort((1 - event, -time))  # decreasing time, events first among equal times
    ts, es = time[order], event[order]
    tk, m = np.unique(ts[es == 1], return_counts=True)
    asc = np.sort(time)
    after = n - np.searchsorted(asc, tk, side="right")  # rows with a later time: the block of t_k starts here
    bounds = np.column_stack([after, after + m])[::-1].ravel()  # increasing: from the last event time down
    if bounds.size and bounds[-1] == n:
        bounds = bounds[:-1]  # reduceat: the final segment runs to the end
    # censored row: A at the number of event times <= t_i; event row at t_k: A - b at k
    row_index = np.where(es == 1, 1 + tk.size + np.searchsorted(tk, ts), np.searchsorted(tk, ts, side="right"))
    last = n - np.searchsorted(asc, tk, side="left") - 1
    starts = np.r_[0, last[::-1] + 1]  # segment k (from the last event time down) ends at its last row
    if starts.size > 1 and starts[-1] == n:
        starts = starts[:-1]
    blocks = np.r_[np.flatnonzero(np.r_[True, ts[1:] != ts[:-1]]) if n else np.empty(0, np.int64), n]
    return _Prep(time=tk, order=order, last=last, risk_starts=starts, segments=bounds, row_index=row_index, event=es,
                 blocks=blocks)


@dataclass(frozen=True)
class _Ragged:
    """One element per event counted with its copies: its (replicate, time) cell and f = l / d."""

    cell: np.ndarray
    f: np.ndarray
    shape: tuple[int, int]

    @classmethod
    def of(cls, d: np.ndarray) -> _Ragged:
        dk = np.rint(d).astype(np.int64).ravel()
        cell = np.repeat(np.arange(dk.size), dk)
        ell = np.arange(cell.size) - np.repeat(np.cumsum(dk) - dk, dk)
        return cls(cell, ell / dk[cell], d.shape)


@dataclass(frozen=True)
class _Rows:
    """Case counts of B replicates (rows in :class:`_Prep` order) and what follows from them
    alone (fixed while their fits iterate): events per row and per event time, and whether
    their sums take the compiled pass (:mod:`.compiled`; then no ragged Efron terms)."""

    counts: np.ndarray  # (B, n)
    ce: np.ndarray  # (B, n) counts * event
    d: np.ndarray  # (B, K) events at each t_k
    ragged: _Ragged | None
    compiled: bool = False

    @classmethod
    def of(cls, counts: np.ndarray, prep: _Prep) -> _Rows:
        ce = counts * prep.event
        d = prep.event_sum(ce)
        return cls._with(counts, ce, d)

    @classmethod
    def _with(cls, counts: np.ndarray, ce: np.ndarray, d: np.ndarray) -> _Rows:
        fast = compiled.ENABLED  # every n (models/compiled.py says why)
        return cls(counts, ce, d, None if fast else _Ragged.of(d), fast)

    def take(self, idx: np.ndarray) -> _Rows:
        if idx.size == len(self.counts):  # idx is increasing: all of them
            return self
        return _Rows._with(self.counts[idx], self.ce[idx], self.d[idx])


@dataclass(frozen=True)
class _Efron:
    a: np.ndarray  # (B, K) sum_l 1/den
    b: np.ndarray  # (B, K) sum_l f/den
    logsum: np.ndarray  # (B,) sum_k sum_l log(den)
    c: tuple[np.ndarray, np.ndarray, np.ndarray] | None  # sum_l (1, f, f^2)/den^2


def _efron_terms(s0: np.ndarray, s0d: np.ndarray, ragged: _Ragged, *, second: bool) -> _Efron:
    """Efron's sums over l < d_k of 1/den, f/den, log(den) (and 1/den^2 terms), den = S0 - f S0D.

    Ragged: one element per event (sum of d), not per (replicate, time, max d).
    """
    shape, cell, f = ragged.shape, ragged.cell, ragged.f
    den = s0.ravel()[cell] - f * s0d.ravel()[cell]
    inv = 1.0 / den
    size = shape[0] * shape[1]

    def total(values: np.ndarray) -> np.ndarray:
        return np.bincount(cell, values, minlength=size).reshape(shape)

    c = None
    if second:
        inv2 = inv * inv
        finv2 = f * inv2
        c = (total(inv2), total(finv2), total(f * finv2))
    logsum = np.bincount(cell // shape[1], np.log(den), minlength=shape[0]) if shape[1] else np.zeros(shape[0])
    return _Efron(total(inv), total(f * inv), logsum, c)


@dataclass(frozen=True)
class _Sums:
    loglik: np.ndarray  # (B,)
    score: np.ndarray  # (B, p)
    info: np.ndarray  # (B, p, p)


@dataclass(frozen=True)
class _Columns:
    """A shared design (n, p) by columns: ``cols`` (p, n) contiguous (a column of a row-major
    design is a strided read), ``pairs`` (p(p+1)/2, n) the products x_j x_k, j <= k, or None
    when they would take more than :data:`PAIR_ELEMENTS` (many terms at large n: the
    information is then summed one column at a time)."""

    cols: np.ndarray
    pairs: np.ndarray | None

    @classmethod
    def of(cls, X: np.ndarray) -> _Columns | None:
        if X.ndim != 2:
            return None
        cols = np.ascontiguousarray(X.T)
        p = X.shape[1]
        if p * (p + 1) // 2 * X.shape[0] > PAIR_ELEMENTS:
            return cls(cols, None)
        iu, ju = np.triu_indices(p)
        return cls(cols, cols[iu] * cols[ju])


#: Largest table of column products kept for the information (2^25 doubles, 256 MB): 7 terms
#: at n = 10^6 use it, the 16 candidate terms of an honest refit at n = 10^6 do not.
PAIR_ELEMENTS = 1 << 25


def _lin(X: np.ndarray, beta: np.ndarray) -> np.ndarray:
    """X b for B coefficient vectors: (B, n)."""
    return beta @ X.T if X.ndim == 2 else np.einsum("bnp,bp->bn", X, beta)


def _efron_sums(beta: np.ndarray, X: np.ndarray, prep: _Prep, rows: _Rows, *, need_info: bool = True,
                columns: _Columns | None = None, free: np.ndarray | None = None) -> _Sums:
    """Log-likelihood, score and information for B coefficient vectors at once.

    beta (B, p); X (n, p) or (B, n, p) and ``rows`` in :class:`_Prep` order; ``columns`` the
    :class:`_Columns` of a shared X (made here when not given).  When numba
    is installed (:mod:`.compiled`), the compiled pass of :mod:`.efron_rows`,
    which computes the score and information of the ``free`` coefficients (B, p) only (the
    others: score 0, information NaN; the numpy sums compute them all).
    """
    if rows.compiled:
        return _Sums(*efron_rows.efron_rows(beta, X, rows.counts, prep.event, prep.blocks, need_info=need_info,
                                            free=free))
    eta = _lin(X, beta)
    shift = eta.max(axis=1, keepdims=True)  # the partial likelihood is invariant to a shift
    ce_eta = np.einsum("bn,bn->b", rows.ce, eta)
    eta -= shift
    w = np.exp(eta, out=eta)
    w *= rows.counts
    ef = _efron_terms(prep.risk_sum(w), prep.event_sum(w), rows.ragged, second=need_info)
    # each log(den) carries exp(shift): undo it once per event
    loglik = ce_eta - ef.logsum - shift[:, 0] * rows.d.sum(axis=1)
    v = prep.at_rows(ef.a, ef.b)
    v *= w  # w_i (A_i - e_i b_k(i))
    ce = rows.ce
    B, p = beta.shape
    shared = X.ndim == 2
    score = (ce - v) @ X if shared else np.einsum("bn,bnp->bp", ce - v, X)
    if not need_info:
        return _Sums(loglik, score, np.empty((B, 0, 0)))

    if shared and columns is None:
        columns = _Columns.of(X)

    def col(j: int) -> np.ndarray:
        return columns.cols[j] if shared else X[:, :, j]  # type: ignore[union-attr]

    if shared and columns.pairs is not None:  # type: ignore[union-attr]
        # one product (B, n) x (n, p(p+1)/2) with the column products x_j x_k (j <= k)
        iu, ju = np.triu_indices(p)
        upper = v @ columns.pairs.T  # type: ignore[union-attr]
        info = np.empty((B, p, p))
        info[:, iu, ju] = upper
        info[:, ju, iu] = upper
    elif shared:  # one design column at a time: memory O(B n), never (B, n, p) or (n, K) arrays
        info = np.stack([(v * col(j)) @ X for j in range(p)], axis=1)
    else:
        info = np.stack([np.einsum("bn,bnq->bq", v * col(j), X) for j in range(p)], axis=1)
    K = prep.time.size
    s1, s1d = np.empty((B, K, p)), np.empty((B, K, p))
    for j in range(p):
        wx = w * col(j)
        s1[:, :, j], s1d[:, :, j] = prep.risk_sum(wx), prep.event_sum(wx)
    c0, c1, c2 = ef.c  # type: ignore[misc]
    o12 = np.matmul(np.swapaxes(s1 * c1[:, :, None], 1, 2), s1d)
    info -= (np.matmul(np.swapaxes(s1 * c0[:, :, None], 1, 2), s1) - o12 - np.swapaxes(o12, 1, 2)
             + np.matmul(np.swapaxes(s1d * c2[:, :, None], 1, 2), s1d))
    return _Sums(loglik, score, info)


#: the shared, read-only designs last prepared (by identity, as :func:`_prepare`), up to
#: :data:`DESIGN_CACHE_BYTES`: the bootstrap fits the same designs chunk after chunk (at n = 10^6 two
#: replicates a chunk; the honest screen's 13 one-variable designs and the model's in each)
_DESIGNS: list[tuple[weakref.ref, _Prep, tuple]] = []
DESIGN_CACHE_BYTES = 1 << 29


def _design(X: np.ndarray, prep: _Prep) -> tuple[np.ndarray, np.ndarray, _Columns | None]:
    """(span, design, columns): the observed range of each column, (1 or B, p), the design centred
    (as coxph, which keeps exp() in range) with its rows in ``prep`` order, and its
    :class:`_Columns` (shared designs only; made once for every evaluation)."""
    cacheable = X.ndim == 2 and not X.flags.writeable
    if cacheable:
        for rx, pr, made in _DESIGNS:
            if rx() is X and pr is prep:
                return made
    span = np.ptp(X, axis=-2).reshape(-1, X.shape[-1])
    span = np.where(span > 0, span, 1.0)
    Xs = prep.sort_design(X - X.mean(axis=-2, keepdims=True))
    columns = None if compiled.ENABLED else _Columns.of(Xs)
    made = (span, Xs, columns)
    if cacheable:
        kept = [(rx, pr, m) for rx, pr, m in _DESIGNS if rx() is not None]
        kept.append((weakref.ref(X), prep, made))
        while len(kept) > 1 and sum(_nbytes(m) for _, _, m in kept) > DESIGN_CACHE_BYTES:
            kept.pop(0)
        _DESIGNS[:] = kept
    return made


def _nbytes(made: tuple) -> int:
    span, Xs, columns = made
    return Xs.nbytes + (0 if columns is None else columns.cols.nbytes
                        + (0 if columns.pairs is None else columns.pairs.nbytes))
