"""Proportional-hazards test and scaled Schoenfeld residuals, as R ``survival`` 3.x ``cox.zph``.

Why not lifelines' ``proportional_hazard_test``: it regresses scaled Schoenfeld residuals on
transformed time using a variance approximation (the survival 2.x test); survival 3.x replaced
that by a score test of the added time-interaction terms with the full information matrix, and
the two disagree (lifelines issue #997).  The reference is ``cox.zph(fit, transform = "km")``,
whose C routine (``zph1.c``) is re-expressed here with numpy: one pass over the distinct event
times, vectorised over tie groups; no library computes it.

Notes
-----
With rows sorted by time, g(t) the transformed time centred at its mean over the events, and
for each distinct event time t_k with d_k events, Efron weights f = 0, 1/d_k, ..., (d_k-1)/d_k:

    den = S0 - f S0D,   m = (S1 - f S1D) / den,   V = (S2 - f S2D) / den - m m'

(S = sums of w x^r over the risk set, S.D over the events at t_k, w = exp(lp)).  Then

    U2  = sum_k g_k [ sum_{i in D_k} x_i - sum_f m ]
    I   = [[sum V, sum g V], [sum g V, sum g^2 V]]   (sums over k and f)

and the test of a set J of coefficients is u' I_JJ^{-1} u with u = (0_p, U2_J) and
I_JJ the rows/columns (1..p, p + J) of I; GLOBAL uses every coefficient (df = p).  Schoenfeld
residuals r_i = x_i - mean_f(m) at each event; scaled residuals are
n_events * r_i' I11^{-1} + b (R: ``vmean = imat / nevent``).  ``transform="km"`` uses
g = 1 - KM(t-) (left-continuous Kaplan-Meier of the whole sample).

With ``by="variable"`` (R ``terms = TRUE``), a variable with several terms is tested jointly
(df = its number of terms) and its residuals are those of its linear predictor x_J b_J,
scaled by (c' vmean c)^{-1} with c = b_J, plus 1.

References
----------
Grambsch PM, Therneau TM. Proportional hazards tests and diagnostics based on weighted
residuals. Biometrika 1994;81:515-526.
Therneau TM. survival package 3.x, ``R/cox.zph.R`` and ``src/zph1.c``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from scipy import stats

from ..design import encode
from ..km import kaplan_meier
from ..spec import StudySpec
from .cox import CoxModel

Transform = Literal["km", "rank", "identity", "log"]


@dataclass(frozen=True)
class PHTest:
    """Result of :func:`proportional_hazards_test`.

    Attributes
    ----------
    table : ``term``, ``scope``, ``chisq``, ``df``, ``p_value``.  ``scope`` is ``"term"`` for
        a test of a whole model term (with ``by="variable"``, one per study variable, as R
        ``cox.zph(terms = TRUE)``), ``"global"`` for the row ``GLOBAL``, and
        ``"coefficient"`` for a test of one coefficient.  With ``by="variable"`` the term rows
        come first, then ``GLOBAL``, then one extra ``coefficient`` row per coefficient of each
        variable with several terms (as R ``terms = FALSE``); so
        ``table[table.scope != "coefficient"]`` is R's ``terms = TRUE`` table.  With
        ``by="term"`` every row but ``GLOBAL`` is a ``coefficient`` row (R ``terms = FALSE``).
    residuals : tidy scaled Schoenfeld residuals, one row per event per tested term (variable):
        ``term``, ``time``, ``transformed_time``, ``residual`` (as R ``cox.zph(...)$y``, ``$x``,
        ``$time``).
    transform : the time transform used.
    by : ``"term"`` (R ``terms = FALSE``) or ``"variable"`` (``terms = TRUE``).
    smooth : the LOWESS smooth of each term's scaled residuals against transformed time
        (:func:`schoenfeld_smooth`): ``term``, ``transformed_time``, ``smooth`` (R ``lowess``).
    """

    table: pd.DataFrame
    residuals: pd.DataFrame
    transform: str
    by: str
    smooth: pd.DataFrame


def schoenfeld_smooth(residuals: pd.DataFrame, *, frac: float = 2 / 3, iterations: int = 3) -> pd.DataFrame:
    """A LOWESS smooth of the scaled Schoenfeld residuals of each term (what the residual plot draws).

    Parameters
    ----------
    residuals : ``term``, ``transformed_time``, ``residual`` (:attr:`PHTest.residuals`).
    frac, iterations : the smoother span and robustness iterations (R ``lowess`` defaults).

    Returns
    -------
    pandas.DataFrame
        ``term``, ``transformed_time`` (sorted within the term), ``smooth``; a term with fewer
        than 3 residuals has no rows.

    Notes
    -----
    statsmodels' ``lowess`` is a port of Cleveland's ``clowess``, the C routine of R ``lowess``;
    R's default ``delta = 0.01 * diff(range(x))`` (linear interpolation between points closer
    than delta) is passed explicitly, so the smooth equals R ``lowess(x, y)``.  R's own
    ``plot.cox.zph`` draws a spline fit instead; the LOWESS line is the common reading aid.

    References
    ----------
    Cleveland WS. Robust locally weighted regression and smoothing scatterplots. J Am Stat
    Assoc 1979;74:829-836.
    """
    from statsmodels.nonparametric.smoothers_lowess import lowess

    parts = []
    for term in pd.unique(residuals["term"]):
        part = residuals[residuals["term"] == term]
        x = part["transformed_time"].to_numpy(float)
        y = part["residual"].to_numpy(float)
        if len(x) < 3:
            continue
        fit = lowess(y, x, frac=frac, it=iterations, delta=0.01 * float(np.ptp(x)), return_sorted=True)
        parts.append(pd.DataFrame({"term": term, "transformed_time": fit[:, 0], "smooth": fit[:, 1]}))
    if not parts:
        return pd.DataFrame({"term": pd.Series(dtype=object), "transformed_time": pd.Series(dtype=float),
                             "smooth": pd.Series(dtype=float)})
    return pd.concat(parts, ignore_index=True)


def _transform_time(time: np.ndarray, event: np.ndarray, transform: Transform) -> np.ndarray:
    if transform == "km":  # 1 - KM(t-): the left-continuous Kaplan-Meier of the whole sample
        return 1.0 - kaplan_meier(time, event).survival_at(time, left=True)[0, 0]
    if transform == "rank":
        return stats.rankdata(time)
    if transform == "identity":
        return time.astype(float)
    if transform == "log":
        return np.log(time)
    raise ValueError(f"unknown transform {transform!r}; use one of 'km', 'rank', 'identity', 'log'")


@dataclass(frozen=True)
class _ZphSums:
    u2: np.ndarray  # (p,)
    imat: np.ndarray  # (2p, 2p)
    schoen: np.ndarray  # (n_events, p) unscaled Schoenfeld residuals, events in time order
    event_rows: np.ndarray  # indices (into the input rows) of the events, in time order
    ttime: np.ndarray  # transformed time of every row


def _zph_sums(X: np.ndarray, time: np.ndarray, event: np.ndarray, lp: np.ndarray, transform: Transform) -> _ZphSums:
    n, p = X.shape
    event = event.astype(float)
    ttime = _transform_time(time, event, transform)
    g_all = ttime - ttime[event == 1].mean()
    order = np.argsort(time, kind="stable")
    ts, es = time[order], event[order]
    Xs = (X - X.mean(axis=0))[order]
    w = np.exp(lp[order] - lp.max())  # the shift cancels in every ratio
    uniq, starts = np.unique(ts, return_index=True)
    d = np.add.reduceat(es, starts)
    keep = d > 0
    starts, d = starts[keep], d[keep]
    g = g_all[order][starts]
    # sums per distinct time (all rows, and the events), then risk-set sums from each time onwards:
    # a cumulative sum over the distinct times, never an (n, p, p) array of the rows
    all_starts = np.unique(ts, return_index=True)[1]
    rev = lambda a: np.flip(np.cumsum(np.flip(a, 0), 0), 0)  # noqa: E731
    wx = w[:, None] * Xs
    wxe = wx * es[:, None]
    t2 = np.empty((all_starts.size, p, p))
    e2 = np.empty((all_starts.size, p, p))
    for j in range(p):  # one design column at a time: (n, p) temporaries
        t2[:, j, :] = np.add.reduceat(wx * Xs[:, j:j + 1], all_starts)
        e2[:, j, :] = np.add.reduceat(wxe * Xs[:, j:j + 1], all_starts)
    s0, s1, s2 = rev(np.add.reduceat(w, all_starts))[keep], rev(np.add.reduceat(wx, all_starts))[keep], rev(t2)[keep]
    d0 = np.add.reduceat(w * es, all_starts)[keep]
    d1 = np.add.reduceat(wxe, all_starts)[keep]
    d2 = e2[keep]
    K = len(d)
    mean_sum = np.zeros((K, p))
    vsum = np.zeros((K, p, p))
    for ell in range(int(d.max())):  # Efron term ell of every time with more than ell events
        act = np.flatnonzero(d > ell)  # few times have many tied events: O(sum d) in all, not O(K max d)
        f = ell / d[act]
        den = s0[act] - f * d0[act]
        m = (s1[act] - f[:, None] * d1[act]) / den[:, None]
        v = (s2[act] - f[:, None, None] * d2[act]) / den[:, None, None] - m[:, :, None] * m[:, None, :]
        mean_sum[act] += m
        vsum[act] += v
    xe = np.add.reduceat(Xs * es[:, None], all_starts)[keep]
    u2 = (g[:, None] * (xe - mean_sum)).sum(axis=0)
    i11 = vsum.sum(axis=0)
    i12 = (g[:, None, None] * vsum).sum(axis=0)
    i22 = (g[:, None, None] ** 2 * vsum).sum(axis=0)
    imat = np.block([[i11, i12], [i12, i22]])
    # Schoenfeld residuals of each event: x_i minus the Efron-averaged risk-set mean
    ev_pos = np.flatnonzero(es == 1)
    grp = np.searchsorted(starts, ev_pos, side="right") - 1
    schoen = Xs[ev_pos] - mean_sum[grp] / d[grp, None]
    return _ZphSums(u2=u2, imat=imat, schoen=schoen, event_rows=order[ev_pos], ttime=ttime)


def _score_stat(imat: np.ndarray, u2: np.ndarray, cols: Sequence[int]) -> float:
    p = len(u2)
    kk = np.concatenate([np.arange(p), p + np.asarray(cols)])
    u = np.concatenate([np.zeros(p), u2[list(cols)]])
    return float(u @ np.linalg.solve(imat[np.ix_(kk, kk)], u))


def cox_zph(
    X: np.ndarray,
    time: np.ndarray,
    event: np.ndarray,
    coef: np.ndarray,
    *,
    names: Sequence[str],
    groups: Sequence[Sequence[int]] | None = None,
    group_names: Sequence[str] | None = None,
    transform: Transform = "km",
    sums: _ZphSums | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The ``cox.zph`` test and scaled Schoenfeld residuals from arrays.

    Parameters
    ----------
    X : (n, p) design of the fitted model; time, event : (n,); coef : (p,) Cox estimates.
    names : the p term names.
    groups : column indices tested together (R ``terms = TRUE``); default one per column.
    group_names : names of the groups (default ``names``).
    transform : "km" (default, as R), "rank", "identity" or "log".
    sums : the sums of this fit and transform from an earlier call (the test per term and per
        variable share them).

    Returns
    -------
    (table, residuals) as described in :class:`PHTest`.  See the module Notes for formulas.
    """
    X = np.asarray(X, float)
    time = np.asarray(time, float)
    event = np.asarray(event, float)
    coef = np.asarray(coef, float)
    p = X.shape[1]
    if groups is None:
        groups = [[j] for j in range(p)]
        group_names = list(names)
    group_names = list(group_names if group_names is not None else names)
    z = _zph_sums(X, time, event, X @ coef, transform) if sums is None else sums
    chisq = [_score_stat(z.imat, z.u2, grp) for grp in groups] + [_score_stat(z.imat, z.u2, range(p))]
    df = [len(grp) for grp in groups] + [p]
    table = pd.DataFrame({
        "term": [*group_names, "GLOBAL"],
        "chisq": chisq,
        "df": df,
        "p_value": stats.chi2.sf(chisq, df),
    })
    # scaled residuals (R: vmean = imat[1:p, 1:p] / n_events; resid %*% solve(vmean) + coef)
    n_ev = len(z.event_rows)
    vmean = z.imat[:p, :p] / n_ev
    collapse = np.zeros((p, len(groups)))
    for i, grp in enumerate(groups):
        collapse[grp, i] = 1.0 if len(grp) == 1 else coef[grp]
    r = z.schoen @ collapse
    vm = collapse.T @ vmean @ collapse
    offset = np.array([coef[grp[0]] if len(grp) == 1 else 1.0 for grp in groups])
    scaled = np.linalg.solve(vm, r.T).T + offset
    ev_time = time[z.event_rows]
    ev_tt = z.ttime[z.event_rows]
    residuals = pd.DataFrame({
        "term": np.repeat(group_names, n_ev),
        "time": np.tile(ev_time, len(groups)),
        "transformed_time": np.tile(ev_tt, len(groups)),
        "residual": scaled.T.reshape(-1),
    })
    return table, residuals


def proportional_hazards_test(
    spec: StudySpec,
    cohort: pd.DataFrame,
    model: CoxModel,
    *,
    transform: Transform = "km",
    by: Literal["term", "variable"] = "variable",
) -> PHTest:
    """Test proportional hazards of a fitted Cox model, per term (or variable) and globally.

    Parameters
    ----------
    spec, cohort : the study file and the cohort the model was fitted on.
    model : from :func:`cementleak_stats.models.cox.fit_cox_model`.
    transform : time transform, default ``"km"`` as R ``cox.zph``.
    by : ``"variable"`` (default, as R's default ``terms = TRUE``) — one test per study
        variable, the k - 1 terms of a k-level factor tested jointly (df = k - 1), plus extra
        ``coefficient`` rows for those terms one by one; ``"term"`` — one test per coefficient
        only (R ``terms = FALSE``).

    Returns
    -------
    PHTest
        ``table`` (term, scope, chisq, df, p_value, with a ``GLOBAL`` row), ``residuals``
        (term, time, transformed_time, residual) and their LOWESS ``smooth`` for plotting.

    Notes
    -----
    Equals R ``cox.zph(fit, transform = "km", terms = FALSE/TRUE)`` of survival 3.x (score
    test with the full information matrix); see the module docstring for the formulas.  A
    small P (GLOBAL or per term) suggests the hazard ratio changes over follow-up; look at the
    residual plot before acting on it.

    References
    ----------
    Grambsch PM, Therneau TM. Biometrika 1994;81:515-526.
    """
    if by not in ("term", "variable"):
        raise ValueError("by must be 'term' or 'variable'")
    design = encode(spec, cohort, model.variables)
    X = design.X[[t.name for t in model.terms]].to_numpy(float)
    names = [t.name for t in model.terms]
    arrays = dict(X=X, time=cohort[spec.outcome.time].to_numpy(float), event=cohort[spec.outcome.event].to_numpy(float),
                  coef=model.coef.to_numpy(), names=names, transform=transform)
    sums = _zph_sums(arrays["X"], arrays["time"], arrays["event"], X @ arrays["coef"], transform)
    per_coef, residuals = cox_zph(**arrays, sums=sums)
    per_coef.insert(1, "scope", np.where(per_coef["term"] == "GLOBAL", "global", "coefficient"))
    if by == "term":
        return PHTest(table=per_coef, residuals=residuals, transform=transform, by=by,
                      smooth=schoenfeld_smooth(residuals))
    variables = list(model.variables)
    groups = [[j for j, t in enumerate(model.terms) if t.variable == v] for v in variables]
    table, residuals = cox_zph(**arrays, groups=groups, group_names=variables, sums=sums)
    table.insert(1, "scope", np.where(table["term"] == "GLOBAL", "global", "term"))
    several = [names[j] for grp in groups if len(grp) > 1 for j in grp]
    extra = per_coef[per_coef["term"].isin(several)]
    table = pd.concat([table, extra], ignore_index=True)
    return PHTest(table=table, residuals=residuals, transform=transform, by=by, smooth=schoenfeld_smooth(residuals))
