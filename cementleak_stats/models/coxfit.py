"""A batched Cox partial-likelihood fitter (Efron ties) and the Efron baseline hazard, in numpy.

Why our own fitter next to lifelines' ``CoxPHFitter``: the bootstrap refits the same model on
B resampled data sets.  A resample is the original rows with integer case counts, so all B
replicates share one set of event times and tie groups; fitting them together as arrays of
shape (B, n) replaces B Python-level fits (about 30 ms each in lifelines) by a few vectorised
Newton steps.  With the rows sorted once by decreasing time, every risk-set sum is a cumulative
sum (O(n) per replicate, no n x K matrices), and the replicates are fitted in chunks of
``CHUNK_ELEMENTS // n``, so memory stays bounded at any n (16 MB per (chunk, n) array).  The
reported model's ordinary fit is this fitter too (``models.cox``; lifelines for penalized or
irregular fits), and the tests check it against lifelines and R on every sampled replicate,
tied times included.  The sums of one Newton step (log-likelihood, score, information) are
:mod:`.efron`; here are the Newton iterations, the failures and the baseline hazard.

Case counts follow *duplicated-row* semantics (a row drawn twice counts as two patients, also
inside a tie group), which is what refitting on the resampled rows does in lifelines or R.
The design may be shared by all replicates, shape (n, p), or differ by replicate, shape
(B, n, p) (e.g. a calibration refit on each replicate's own linear predictor).

References
----------
Efron B. The efficiency of Cox's likelihood function for censored data. JASA 1977;72:557-565.
Therneau TM, Grambsch PM. Modeling Survival Data. Springer 2000, ch. 3 and 10.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import compiled, efron_rows
from .efron import _design, _efron_sums, _efron_terms, _lin, _prepare, _Prep, _Ragged, _Rows

#: Codes of :attr:`BatchFit.failure` (0 = fitted).
FAILURE_REASONS: dict[int, str] = {
    0: "fitted",
    1: "no events in the replicate",
    2: "a model term is constant in the replicate (e.g. a level never drawn)",
    3: "singular information matrix",
    4: "a coefficient ran away (monotone likelihood / separation)",
    5: "no convergence within the iteration limit",
}


#: Largest (replicates x rows) block fitted at once: the replicates are fitted in chunks of
#: ``CHUNK_ELEMENTS // n`` (each (chunk, n) float array is then at most 16 MB).
CHUNK_ELEMENTS = 1 << 21


@dataclass(frozen=True)
class BatchFit:
    """Coefficients of B Cox fits on case-count resamples of the same rows.

    Attributes
    ----------
    coef : (B, p) estimates, NaN rows where the fit failed.
    loglik : (B,) log partial likelihood at the estimate (NaN where failed).
    loglik_null : (B,) log partial likelihood at beta = 0.
    converged : (B,) True where the fit succeeded.
    failure : (B,) reason code, see :data:`FAILURE_REASONS` (0 = fitted).
    info : (B, p, p) information at the estimate (NaN where failed, and for fixed terms from n = 20,000 on).
    n_iter : Newton iterations used by the slowest replicate.
    loglik_last : (B,) log partial likelihood at the last iterate, also where the fit failed
        after it started (a runaway coefficient: close to the supremum, which a
        likelihood-ratio test under separation needs); NaN where it never started (no events,
        a constant term).
    """

    coef: np.ndarray
    loglik: np.ndarray
    loglik_null: np.ndarray
    converged: np.ndarray
    failure: np.ndarray
    info: np.ndarray
    n_iter: int
    loglik_last: np.ndarray | None = None

    @property
    def n_failed(self) -> int:
        return int((~self.converged).sum())

    @property
    def ok(self) -> np.ndarray:
        """Alias of ``converged`` (the resampling engine's name for a usable fit)."""
        return self.converged


def _weighted_var(X: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Case-count weighted variance of each column, (B, p)."""
    tot = counts.sum(axis=1, keepdims=True)
    tot = np.where(tot > 0, tot, 1.0)
    if X.ndim == 2:
        m1, m2 = (counts @ X) / tot, (counts @ (X * X)) / tot
    else:
        m1, m2 = np.einsum("bn,bnp->bp", counts, X) / tot, np.einsum("bn,bnp->bp", counts, X * X) / tot
    return m2 - m1 * m1


def fit_cox_batch(
    X: np.ndarray,
    time: np.ndarray,
    event: np.ndarray,
    counts: np.ndarray | None = None,
    *,
    init: np.ndarray | None = None,
    free: np.ndarray | None = None,
    tol: float = 1e-7,
    max_iter: int = 30,
    max_log_hr: float = 30.0,
) -> BatchFit:
    """Fit B Cox models (Efron ties) by Newton-Raphson with step halving, all at once.

    Parameters
    ----------
    X : (n, p) design shared by all replicates, or (B, n, p) one design per replicate.  It is
        centred internally (as R ``coxph`` does); coefficients do not depend on the centring.
    time, event : (n,) follow-up time and 0/1 event.
    counts : (B, n) integer case counts of each replicate (a bootstrap resample); default one
        replicate (or one per design) with every count 1 (the ordinary fit).
    init : (p,) or (B, p) starting values (warm start, e.g. the full-data estimate).
    free : (p,) or (B, p) bool, the coefficients to estimate; the others stay at ``init``
        (default 0).  Used to fit a different subset of terms in each replicate (screening).
    tol : convergence when the largest Newton step is below ``tol``; Newton converges
        quadratically, so the estimate after that step is exact to about tol^2.
    max_iter : iteration limit; a replicate still moving then is marked as failed.
    max_log_hr : a coefficient whose effect across the observed range of its column,
        |b_j| (max x_j - min x_j), exceeds this (a hazard ratio of e^30 between the extreme
        patients) is taken as monotone likelihood (separation): the replicate fails.

    Returns
    -------
    BatchFit
        ``coef`` (B, p) with NaN rows for failed replicates; ``failure`` says why.

    Notes
    -----
    Failures are counted, never hidden: a replicate fails when it has no event, when a free
    term is constant in it (a level never drawn: the coefficient is not estimable), when the
    information is singular, when a coefficient runs away (``max_log_hr``) or when Newton has
    not converged after ``max_iter`` steps.  R ``coxph`` stops at a relative log-likelihood
    change of 1e-9 and keeps a large finite coefficient under separation (rms then counts the
    fit as a success); we count it as failed.
    """
    X = np.asarray(X, dtype=float)
    prep = _prepare(time, event)
    n = len(prep.event)
    if X.ndim not in (2, 3) or X.shape[-2] != n:
        raise ValueError(f"X must be (n, p) or (B, n, p) with n = {n} rows")
    p = X.shape[-1]
    if counts is None:
        counts = np.ones((1 if X.ndim == 2 else X.shape[0], n))
    counts = np.atleast_2d(np.asarray(counts, dtype=float))
    B = counts.shape[0]
    if counts.shape[1] != n or (X.ndim == 3 and X.shape[0] != B):
        raise ValueError("counts must be (B, n) and a 3-D X must have B designs")
    beta = np.zeros((B, p)) if init is None else np.broadcast_to(np.asarray(init, float), (B, p)).copy()
    free_m = np.broadcast_to(np.ones(p, bool) if free is None else np.asarray(free, bool), (B, p))
    size = max(1, CHUNK_ELEMENTS // max(n, 1))
    parts = [_fit_chunk(X if X.ndim == 2 else X[c:c + size], prep, counts[c:c + size], beta[c:c + size],
                        free_m[c:c + size], tol=tol, max_iter=max_iter, max_log_hr=max_log_hr)
             for c in range(0, B, size)]
    if len(parts) == 1:
        return parts[0]
    return BatchFit(*(np.concatenate([getattr(f, name) for f in parts])
                      for name in ("coef", "loglik", "loglik_null", "converged", "failure", "info")),
                    n_iter=max(f.n_iter for f in parts), loglik_last=np.concatenate([f.loglik_last for f in parts]))


def _fit_chunk(X: np.ndarray, prep: _Prep, counts: np.ndarray, beta: np.ndarray, free_m: np.ndarray, *, tol: float,
               max_iter: int, max_log_hr: float) -> BatchFit:
    """Newton-Raphson with step halving for one chunk of replicates (see :func:`fit_cox_batch`)."""
    B, p = beta.shape
    n = counts.shape[1]
    span, X, columns = _design(X, prep)
    counts = prep.sort_weights(counts)
    rows = _Rows.of(counts, prep)

    failure = np.zeros(B, dtype=np.int8)
    failure[counts @ prep.event == 0] = 1
    # constant within this replicate: relative to the column's full-data spread (units may be tiny)
    const = (_weighted_var(X, counts) <= 1e-12 * _weighted_var(X, np.ones((1, n)))) & free_m
    failure[(failure == 0) & const.any(axis=1)] = 2

    null = _efron_sums(np.zeros((B, p)), X, prep, rows, need_info=False).loglik
    loglik = np.full(B, np.nan)
    score = np.zeros((B, p))
    info = np.full((B, p, p), np.nan)
    active = failure == 0
    idx = np.flatnonzero(active)
    if idx.size:
        cur = _efron_sums(beta[idx], _rows(X, idx), prep, rows.take(idx), columns=columns, free=free_m[idx])
        loglik[idx], score[idx], info[idx] = cur.loglik, cur.score, cur.info
    it = 0
    while active.any() and it < max_iter:
        it += 1
        idx = np.flatnonzero(active)
        step = _newton_step(info[idx], score[idx], free_m[idx])
        bad = ~np.isfinite(step).all(axis=1)
        failure[idx[bad]] = 3
        active[idx[bad]] = False
        idx, step = idx[~bad], step[~bad]
        if idx.size == 0:
            break
        old = beta[idx]
        new_beta = old + step
        new = _efron_sums(new_beta, _rows(X, idx), prep, rows.take(idx), columns=columns, free=free_m[idx])
        # step halving where the likelihood got worse (as coxph does)
        worse = new.loglik < loglik[idx] - 1e-12 * np.abs(loglik[idx])
        for _ in range(30):
            if not worse.any():
                break
            wi = np.flatnonzero(worse)
            step[wi] /= 2
            new_beta[wi] = old[wi] + step[wi]
            sub = _efron_sums(new_beta[wi], _rows(X, idx[wi]), prep, rows.take(idx[wi]), columns=columns,
                               free=free_m[idx[wi]])
            new.loglik[wi], new.score[wi], new.info[wi] = sub.loglik, sub.score, sub.info
            worse[wi] = sub.loglik < loglik[idx[wi]] - 1e-12 * np.abs(loglik[idx[wi]])
        beta[idx] = new_beta
        loglik[idx], score[idx], info[idx] = new.loglik, new.score, new.info
        small = np.abs(step).max(axis=1, initial=0.0) < tol
        runaway = np.abs(new_beta * (span if len(span) == 1 else span[idx])).max(axis=1, initial=0.0) > max_log_hr
        failure[idx[runaway]] = 4
        active[idx[small | runaway]] = False
    failure[active] = 5
    ok = failure == 0
    return BatchFit(
        coef=np.where(ok[:, None], beta, np.nan),
        loglik=np.where(ok, loglik, np.nan),
        loglik_null=null,
        converged=ok,
        failure=failure,
        info=np.where(ok[:, None, None], info, np.nan),
        n_iter=it,
        loglik_last=loglik,
    )


def _rows(X: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """The designs of replicates ``idx`` (a shared design is returned as is)."""
    return X if X.ndim == 2 else X[idx]


def _newton_step(info: np.ndarray, score: np.ndarray, free: np.ndarray) -> np.ndarray:
    """Solve info step = score on the free coefficients (fixed ones get a zero step)."""
    if not free.all():
        mask = free[:, :, None] & free[:, None, :]
        eye = np.broadcast_to(np.eye(info.shape[1]), info.shape)
        info = np.where(mask, info, eye)
        score = np.where(free, score, 0.0)
    try:
        return np.linalg.solve(info, score[:, :, None])[:, :, 0]
    except np.linalg.LinAlgError:
        return np.stack([_safe_solve(a, s) for a, s in zip(info, score)])


def _safe_solve(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    try:
        return np.linalg.solve(a, b)
    except np.linalg.LinAlgError:
        return np.full_like(b, np.nan)


def efron_loglik(X: np.ndarray, time: np.ndarray, event: np.ndarray, beta: np.ndarray,
                 counts: np.ndarray | None = None) -> np.ndarray:
    """Efron log partial likelihood of B coefficient vectors (no fitting).

    ``X`` (n, p) or (B, n, p); ``beta`` (B, p) or (p,); ``counts`` (B, n), default all 1.
    Returns (B,).  R: ``coxph(..., init = beta, iter.max = 0)$loglik[2]``.
    """
    X = np.asarray(X, dtype=float)
    prep = _prepare(time, event)
    beta = np.atleast_2d(np.asarray(beta, dtype=float))
    B = max(beta.shape[0], 1 if X.ndim == 2 else X.shape[0])
    counts = np.ones((B, len(prep.event))) if counts is None else np.atleast_2d(np.asarray(counts, float))
    beta = np.broadcast_to(beta, (counts.shape[0], X.shape[-1]))
    return _efron_sums(beta, prep.sort_design(X), prep, _Rows.of(prep.sort_weights(counts), prep), need_info=False).loglik


def baseline_cumhaz_batch(X: np.ndarray, time: np.ndarray, event: np.ndarray, coef: np.ndarray,
                          counts: np.ndarray | None = None, *, t: float) -> tuple[np.ndarray, np.ndarray]:
    """Efron baseline cumulative hazard H0(t) of B fits, each at its own case-weighted means.

    Parameters
    ----------
    X : (n, p) or (B, n, p) design (uncentred); time, event : (n,).
    coef : (B, p) coefficients (rows of NaN give NaN).
    counts : (B, n) case counts of the data each fit was made on (default all 1).
    t : the time (the horizon).

    Returns
    -------
    (H0, means)
        H0 (B,) for a patient at the means of the replicate's rows (as R ``cph(surv=TRUE)``
        and ``survfit.coxph`` on the resampled rows), and those means (B, p).

    Notes
    -----
    H0(t) = sum_{t_k <= t} sum_{l<d_k} 1 / (S0_k - (l/d_k) S0D_k), with w_i = c_i exp((x_i - m)'b)
    and m the case-weighted mean of the rows.
    """
    X = np.asarray(X, dtype=float)
    prep = _prepare(time, event)
    coef = np.atleast_2d(np.asarray(coef, dtype=float))
    counts = np.ones((coef.shape[0], len(prep.event))) if counts is None else np.atleast_2d(np.asarray(counts, float))
    tot = counts.sum(axis=1, keepdims=True)
    means = (counts @ X) / tot if X.ndim == 2 else np.einsum("bn,bnp->bp", counts, X) / tot
    if compiled.ENABLED:  # one compiled pass per fit (models/efron_rows.py), equal to rounding
        upto = np.asarray(time, float)[prep.order] <= t
        _, Xs, _ = _design(X, prep)  # centred at the column means (made once for a shared design)
        centre = ((means - X.mean(axis=-2).reshape(-1, X.shape[-1])) * coef).sum(axis=1)
        return efron_rows.baseline_hazard(coef, Xs, centre, prep.sort_weights(counts), prep.event, prep.blocks,
                                          upto), means
    lp = _lin(X, coef) - (means * coef).sum(axis=1, keepdims=True)
    dh = _hazard_jumps(prep.sort_weights(lp), prep.sort_weights(counts), prep)
    return np.where(prep.time[None, :] <= t, dh, 0.0).sum(axis=1), means


def _hazard_jumps(lp: np.ndarray, counts: np.ndarray, prep: _Prep) -> np.ndarray:
    """Efron baseline hazard jumps (B, K) at the event times, for centred lp (B, n) (sorted rows)."""
    shift = np.max(lp, axis=1, keepdims=True)
    w = np.exp(lp - shift) * counts
    d = prep.event_sum(counts * prep.event)
    return _efron_terms(prep.risk_sum(w), prep.event_sum(w), _Ragged.of(d), second=False).a * np.exp(-shift)


@dataclass(frozen=True)
class CoxFit:
    """One Cox fit with its information matrix and Efron baseline hazard."""

    coef: np.ndarray  # (p,)
    var: np.ndarray  # (p, p) inverse information
    loglik: float
    loglik_null: float
    means: np.ndarray  # (p,) column means used for centring
    baseline_time: np.ndarray  # distinct event times
    baseline_cumhaz: np.ndarray  # Efron cumulative hazard at those times, for a patient at the means
    converged: bool
    n_iter: int

    @property
    def se(self) -> np.ndarray:
        return np.sqrt(np.diag(self.var))

    def lp(self, X: np.ndarray) -> np.ndarray:
        """Linear predictor centred at the means (as R ``predict(fit, type="lp")``)."""
        return (np.asarray(X, float) - self.means) @ self.coef

    def baseline_survival(self, t: float) -> float:
        """S0(t) = exp(-H0(t)) for a patient at the covariate means (R ``survfit.coxph``)."""
        h = step_at(self.baseline_time, self.baseline_cumhaz, t)
        return float(np.exp(-h))

    def risk(self, X: np.ndarray, t: float) -> np.ndarray:
        """Predicted probability of the event by time t: 1 - S0(t)^exp(lp)."""
        return 1.0 - self.baseline_survival(t) ** np.exp(self.lp(X))


def step_at(times: np.ndarray, values: np.ndarray, t: float) -> float:
    """Right-continuous step function value at t (0 before the first step)."""
    i = np.searchsorted(times, t, side="right")
    return 0.0 if i == 0 else float(values[i - 1])


def efron_baseline_cumhaz(time: np.ndarray, event: np.ndarray, lp: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Efron baseline cumulative hazard at the distinct event times (R ``survfit.coxph``, ctype 2).

    ``lp`` is the centred linear predictor; the hazard is for a patient with lp = 0.
    dH_k = sum_{l<d_k} 1 / (S0_k - (l/d_k) S0D_k).  Returns (event times ascending, H0 there).
    """
    prep = _prepare(time, event)
    lp = prep.sort_weights(np.asarray(lp, dtype=float)[None, :])
    return prep.time, np.cumsum(_hazard_jumps(lp, np.ones_like(lp), prep)[0])


def fit_cox(X: np.ndarray, time: np.ndarray, event: np.ndarray, *, tol: float = 1e-7, max_iter: int = 30) -> CoxFit:
    """Fit one Cox model (Efron ties); see :func:`fit_cox_batch` for the algorithm."""
    X = np.asarray(X, dtype=float)
    batch = fit_cox_batch(X, time, event, tol=tol, max_iter=max_iter)
    coef = batch.coef[0]
    means = X.mean(axis=0)
    if batch.converged[0]:
        var = _safe_inv(batch.info[0])
        bt, bh = efron_baseline_cumhaz(time, event, (X - means) @ coef)
    else:
        var = np.full((X.shape[1], X.shape[1]), np.nan)
        bt, bh = np.array([]), np.array([])
    return CoxFit(
        coef=coef, var=var, loglik=float(batch.loglik[0]), loglik_null=float(batch.loglik_null[0]), means=means,
        baseline_time=bt, baseline_cumhaz=bh, converged=bool(batch.converged[0]), n_iter=batch.n_iter,
    )


def _safe_inv(a: np.ndarray) -> np.ndarray:
    try:
        return np.linalg.inv(a)
    except np.linalg.LinAlgError:
        return np.full_like(a, np.nan)
