"""A batched Cox partial-likelihood fitter (Efron ties) and the Efron baseline hazard, in numpy.

Why our own fitter next to lifelines' ``CoxPHFitter``: the bootstrap refits the same model on
B resampled data sets.  A resample is the original rows with integer case counts, so all B
replicates share one sort order and one set of tie groups; fitting them together as arrays of
shape (B, n) replaces B Python-level fits (about 30 ms each in lifelines) by a few vectorised
Newton steps.  The reported main model is still fitted with lifelines (``models.cox``), and the
tests check that both agree to 1e-6 on every sampled replicate, tied times included.

Case counts follow *duplicated-row* semantics (a row drawn twice counts as two patients, also
inside a tie group), which is what refitting on the resampled rows does in lifelines or R.

Notes
-----
Sorted by time, with tie groups k (distinct event times), d_k events (counting copies),
risk-set sums S0_k = sum_{t_i >= t_k} c_i w_i, S1_k, S2_k (w_i = exp(x_i'b)) and the event
sums S0D_k, S1D_k, S2D_k over the d_k events, Efron's approximation is

    loglik = sum_i c_i e_i x_i'b - sum_k sum_{l<d_k} log(S0_k - (l/d_k) S0D_k)

with score and information from the same sums.  The Efron baseline cumulative hazard
(R ``survfit.coxph``, ``ctype = 2``) adds sum_{l<d_k} 1 / (S0_k - (l/d_k) S0D_k) at t_k.

References
----------
Efron B. The efficiency of Cox's likelihood function for censored data. JASA 1977;72:557-565.
Therneau TM, Grambsch PM. Modeling Survival Data. Springer 2000, ch. 3.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class _Groups:
    order: np.ndarray  # sort permutation (ascending time)
    starts: np.ndarray  # first sorted index of each distinct time
    time: np.ndarray  # the distinct times
    event_sorted: np.ndarray  # event indicator, sorted


def _groups(time: np.ndarray, event: np.ndarray) -> _Groups:
    order = np.argsort(time, kind="stable")
    ts = time[order]
    uniq, starts = np.unique(ts, return_index=True)
    return _Groups(order=order, starts=starts, time=uniq, event_sorted=event[order].astype(float))


def _revcumsum(a: np.ndarray) -> np.ndarray:
    """Sum over j >= i along axis 1."""
    return np.flip(np.cumsum(np.flip(a, axis=1), axis=1), axis=1)


@dataclass(frozen=True)
class _Sums:
    loglik: np.ndarray  # (B,)
    score: np.ndarray  # (B, p)
    info: np.ndarray  # (B, p, p)


def _efron_sums(beta: np.ndarray, Xs: np.ndarray, g: _Groups, counts: np.ndarray, *, need_info: bool = True) -> _Sums:
    """Log-likelihood, score and information for B coefficient vectors at once.

    beta (B, p); Xs (n, p) sorted by time; counts (B, n) sorted case counts.
    """
    eta = beta @ Xs.T  # (B, n)
    # guard against overflow in exp: the partial likelihood is invariant to a constant shift
    shift = eta.max(axis=1, keepdims=True)
    w = np.exp(eta - shift) * counts
    e = g.event_sorted
    we = w * e
    ce = counts * e
    s0 = _revcumsum(w)[:, g.starts]
    s0d = np.add.reduceat(we, g.starts, axis=1)
    d = np.add.reduceat(ce, g.starts, axis=1)  # (B, K) events per group (with copies)
    wx = w[:, :, None] * Xs[None, :, :]
    s1 = _revcumsum(wx)[:, g.starts, :]
    s1d = np.add.reduceat(wx * e[None, :, None], g.starts, axis=1)

    max_d = int(d.max()) if d.size else 0
    a = np.zeros_like(s0)  # sum_l 1/den
    b = np.zeros_like(s0)  # sum_l f/den
    logsum = np.zeros_like(s0)
    c0 = np.zeros_like(s0)
    c1 = np.zeros_like(s0)
    c2 = np.zeros_like(s0)
    safe_d = np.where(d > 0, d, 1.0)
    for ell in range(max_d):
        active = d > ell
        f = ell / safe_d
        den = np.where(active, s0 - f * s0d, 1.0)
        inv = np.where(active, 1.0 / den, 0.0)
        a += inv
        b += f * inv
        logsum += np.where(active, np.log(den), 0.0)
        if need_info:
            inv2 = inv * inv
            c0 += inv2
            c1 += f * inv2
            c2 += f * f * inv2
    # log-likelihood: undo the shift (each event-term log has shift added per copy)
    loglik = (counts * e * eta).sum(axis=1) - logsum.sum(axis=1) - shift[:, 0] * d.sum(axis=1)
    score = (ce[:, :, None] * Xs[None]).sum(axis=1) - (a[:, :, None] * s1 - b[:, :, None] * s1d).sum(axis=1)
    if not need_info:
        return _Sums(loglik, score, np.empty((len(beta), 0, 0)))
    wxx = wx[:, :, :, None] * Xs[None, :, None, :]
    s2 = _revcumsum(wxx)[:, g.starts]
    s2d = np.add.reduceat(wxx * e[None, :, None, None], g.starts, axis=1)
    info = (a[:, :, None, None] * s2 - b[:, :, None, None] * s2d).sum(axis=1)
    o11 = np.einsum("bk,bki,bkj->bij", c0, s1, s1)
    o12 = np.einsum("bk,bki,bkj->bij", c1, s1, s1d)
    o22 = np.einsum("bk,bki,bkj->bij", c2, s1d, s1d)
    info = info - (o11 - o12 - np.swapaxes(o12, 1, 2) + o22)
    return _Sums(loglik, score, info)


@dataclass(frozen=True)
class BatchFit:
    """Coefficients of B Cox fits on case-count resamples of the same rows."""

    coef: np.ndarray  # (B, p), NaN rows where the fit failed
    loglik: np.ndarray  # (B,) at the estimate
    loglik_null: np.ndarray  # (B,) at beta = 0
    converged: np.ndarray  # (B,) bool
    n_iter: int

    @property
    def n_failed(self) -> int:
        return int((~self.converged).sum())


def fit_cox_batch(
    X: np.ndarray,
    time: np.ndarray,
    event: np.ndarray,
    counts: np.ndarray | None = None,
    *,
    init: np.ndarray | None = None,
    tol: float = 1e-9,
    max_iter: int = 30,
    max_abs_coef: float = 50.0,
) -> BatchFit:
    """Fit B Cox models (Efron ties) by Newton-Raphson with step halving, all at once.

    Parameters
    ----------
    X : (n, p) design matrix (unsorted; it is centred internally, as R ``coxph`` does).
    time, event : (n,) follow-up time and 0/1 event.
    counts : (B, n) integer case counts of each replicate (a bootstrap resample); default one
        replicate with every count 1 (the ordinary fit).
    init : (p,) or (B, p) starting values (warm start, e.g. the full-data estimate).
    tol : convergence when the largest Newton step is below ``tol`` (Newton converges
        quadratically, so the estimate is then exact to far below 1e-10).
    max_abs_coef : a coefficient beyond this is taken as monotone likelihood (separation):
        the replicate is marked as failed, as rms counts failed fits.

    Returns
    -------
    BatchFit
        ``coef`` (B, p) with NaN rows for failed replicates; ``converged`` says which.
    """
    X = np.asarray(X, dtype=float)
    time = np.asarray(time, dtype=float)
    event = np.asarray(event, dtype=float)
    n, p = X.shape
    if counts is None:
        counts = np.ones((1, n))
    counts = np.atleast_2d(np.asarray(counts, dtype=float))
    B = counts.shape[0]
    g = _groups(time, event)
    Xc = X - X.mean(axis=0)
    Xs = Xc[g.order]
    cs = counts[:, g.order]
    beta = np.zeros((B, p)) if init is None else np.broadcast_to(np.asarray(init, float), (B, p)).copy()
    null = _efron_sums(np.zeros((B, p)), Xs, g, cs, need_info=False).loglik
    cur = _efron_sums(beta, Xs, g, cs)
    active = np.ones(B, dtype=bool)
    converged = np.zeros(B, dtype=bool)
    it = 0
    for it in range(1, max_iter + 1):
        idx = np.flatnonzero(active)
        if idx.size == 0:
            break
        try:
            step = np.linalg.solve(cur.info[idx], cur.score[idx][:, :, None])[:, :, 0]
        except np.linalg.LinAlgError:
            step = np.stack([_safe_solve(cur.info[i], cur.score[i]) for i in idx])
        new_beta = beta[idx] + step
        new = _efron_sums(new_beta, Xs, g, cs[idx])
        # step halving where the likelihood got worse (as coxph does)
        worse = ~(new.loglik >= cur.loglik[idx] - 1e-12 * np.abs(cur.loglik[idx]))
        for _ in range(20):
            if not worse.any():
                break
            step[worse] /= 2
            new_beta[worse] = beta[idx][worse] + step[worse]
            sub = _efron_sums(new_beta[worse], Xs, g, cs[idx][worse])
            wi = np.flatnonzero(worse)
            new.loglik[wi] = sub.loglik
            new.score[wi] = sub.score
            new.info[wi] = sub.info
            worse[wi] = ~(sub.loglik >= cur.loglik[idx][wi] - 1e-12 * np.abs(cur.loglik[idx][wi]))
        beta[idx] = new_beta
        cur.loglik[idx] = new.loglik
        cur.score[idx] = new.score
        cur.info[idx] = new.info
        small = np.abs(step).max(axis=1) < tol
        runaway = ~np.isfinite(new_beta).all(axis=1) | (np.abs(new_beta).max(axis=1) > max_abs_coef)
        converged[idx[small & ~runaway]] = True
        active[idx[small | runaway]] = False
    ok = converged & np.isfinite(beta).all(axis=1)
    coef = np.where(ok[:, None], beta, np.nan)
    return BatchFit(coef=coef, loglik=np.where(ok, cur.loglik, np.nan), loglik_null=null, converged=ok, n_iter=it)


def _safe_solve(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    try:
        return np.linalg.solve(a, b)
    except np.linalg.LinAlgError:
        return np.full_like(b, np.nan)


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
    dH_k = sum_{l<d_k} 1 / (S0_k - (l/d_k) S0D_k).
    """
    time = np.asarray(time, float)
    event = np.asarray(event, float)
    g = _groups(time, event)
    w = np.exp(np.asarray(lp, float)[g.order])
    s0 = _revcumsum(w[None])[0, g.starts]
    s0d = np.add.reduceat(w * g.event_sorted, g.starts)
    d = np.add.reduceat(g.event_sorted, g.starts)
    dh = np.zeros_like(s0)
    for ell in range(int(d.max()) if d.size else 0):
        act = d > ell
        dh[act] += 1.0 / (s0[act] - ell / d[act] * s0d[act])
    keep = d > 0
    return g.time[keep], np.cumsum(dh)[keep]


def fit_cox(X: np.ndarray, time: np.ndarray, event: np.ndarray, *, tol: float = 1e-9, max_iter: int = 30) -> CoxFit:
    """Fit one Cox model (Efron ties); see :func:`fit_cox_batch` for the algorithm."""
    X = np.asarray(X, dtype=float)
    batch = fit_cox_batch(X, time, event, tol=tol, max_iter=max_iter)
    coef = batch.coef[0]
    means = X.mean(axis=0)
    g = _groups(np.asarray(time, float), np.asarray(event, float))
    if batch.converged[0]:
        info = _efron_sums(coef[None], (X - means)[g.order], g, np.ones((1, len(X)))).info[0]
        var = _safe_inv(info)
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
