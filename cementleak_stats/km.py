"""Kaplan-Meier estimators: the package's one product-limit estimate, of survival and of censoring.

:func:`kaplan_meier` is the kernel: arrays in (time, event, optional case weights of B samples,
optional group numbers), a :class:`KaplanMeier` out, which answers survival at requested times
(right- or left-continuous), Greenwood standard errors, numbers at risk, the last follow-up
time and the median, for every (sample, group) cell at once.  ``reverse=True`` gives the
Kaplan-Meier of the *censoring* times (the "reverse" Kaplan-Meier G of inverse-probability-of-
censoring weights and of median follow-up).  Thin functions over it serve the callers:
:func:`censoring_survival` (IPCW: Brier score, time-dependent AUC), :func:`km_by_group` (the
curves of the cumulative-incidence figure) and :func:`median_followup`.

Tie rule (one, for both directions)
-----------------------------------
At a time t with both events and censorings, **the events come first**:

* survival S: a patient censored at t is still at risk at t, so n(t) = #{T >= t}
  (R ``survfit``; every Kaplan-Meier of the package);
* censoring G: a patient with the event at t has left before the censorings at t, so the
  risk set of censoring is n_G(t) = #{T > t} + #{T = t, censored} (R ``prodlim(...,
  reverse = TRUE)``, which ``riskRegression::Score`` and ``ipcw(cens.model = "km")`` use).

R's ``survfit(Surv(time, 1 - event) ~ 1)`` instead keeps the event at t at risk of censoring
(censorings first); it differs from G only at a time shared by an event and a censoring.  The
IPCW metrics are checked against riskRegression, so G follows prodlim (keeping the events in
G's risk set moved a tied test case's AUC by about 4e-5); the median follow-up of the test
studies is the same under both rules (checked in tests/test_km.py).

Why by hand: lifelines' ``KaplanMeierFitter`` fits one unweighted sample per call (milliseconds
each; the bootstrap calibration needs B x groups curves per batch, the decision curve one per
threshold) and has no reverse estimator with prodlim's tie rule; scikit-survival is not a
dependency.  Here every cell of B weighted samples is one sort and a few cumulative sums:
O(B n log n).

Notes
-----
With d_k the (weighted) events and n_k the weight at risk at the k-th distinct time of a cell,
S(t) = prod_{t_k <= t} (1 - d_k / n_k) and Greenwood's var(log S(t)) = sum_{t_k <= t}
d_k / (n_k (n_k - d_k)) (infinite once S reaches 0).  Case weights act as duplicated rows
(R ``survfit(..., weights = w)``).

References
----------
Kaplan EL, Meier P. Nonparametric estimation from incomplete observations. JASA 1958;53:457-481.
Schemper M, Smith TL. A note on quantifying follow-up in studies of failure time. Control Clin
Trials 1996;17:343-346.
Gerds TA, Schumacher M. Consistent estimation of the expected Brier score in general survival
models with right-censored event times. Biom J 2006;48:1029-1040.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
import pandas as pd


__all__ = ["KaplanMeier", "kaplan_meier", "censoring_survival", "median_followup", "km_by_group"]


def _segment_accumulate(x: np.ndarray, start: np.ndarray, ufunc: np.ufunc) -> np.ndarray:
    """Running ``ufunc`` (np.add or np.multiply) of ``x`` restarting at every index in ``start``.

    Exact: each segment is accumulated on its own (one row of a padded array), so a segment's
    values do not depend on the segments before it.  Memory: segments x longest segment.
    """
    n = len(x)
    lengths = np.diff(np.r_[start, n])
    seg = np.repeat(np.arange(len(start)), lengths)
    pos = np.arange(n) - start[seg]
    pad = np.full((len(start), int(lengths.max())), ufunc.identity, dtype=float)
    pad[seg, pos] = x
    return ufunc.accumulate(pad, axis=1)[seg, pos]


@dataclass(frozen=True)
class KaplanMeier:
    """Kaplan-Meier estimates of B weighted samples in G groups (from :func:`kaplan_meier`).

    The estimate is stored as its steps: one per distinct time of each (sample, group) cell
    with positive weight, cells in order ``b * G + g``, times increasing within a cell.

    Attributes
    ----------
    times : the distinct times of the input, sorted (the grid of ``time_index``).
    cell, time_index : (m,) cell and grid index of each step.
    n_risk : (m,) weight at risk of the estimator's event (for ``reverse``, of censoring).
    n_event : (m,) weight of the estimator's events (censorings when ``reverse``).
    n_censor : (m,) weight of the other rows ending at the step (events when ``reverse``).
    survival : (m,) the estimate just after the step, S(t_k).
    greenwood : (m,) Greenwood's var(log S(t_k)) (inf once S is 0).
    shape : (B, G).  reverse : True for the censoring distribution.
    """

    times: np.ndarray
    cell: np.ndarray
    time_index: np.ndarray
    n_risk: np.ndarray
    n_event: np.ndarray
    n_censor: np.ndarray
    survival: np.ndarray
    greenwood: np.ndarray
    shape: tuple[int, int]
    reverse: bool

    @property
    def time(self) -> np.ndarray:
        """(m,) time of each step."""
        return self.times[self.time_index]

    def _step_at(self, at: np.ndarray, *, left: bool) -> np.ndarray:
        """(B*G, k) index of each cell's last step at or before ``at`` (before, if ``left``); -1 if none."""
        n_cells = self.shape[0] * self.shape[1]
        n_t = len(self.times)
        # grid times <= at (or < at): the last step of the cell with a grid index below that
        rank = np.searchsorted(self.times, at, side="left" if left else "right")
        key = np.arange(n_cells, dtype=np.int64)[:, None] * (n_t + 1) + rank[None, :]
        step_key = self.cell * (n_t + 1) + self.time_index + 1
        pos = np.searchsorted(step_key, key, side="right") - 1
        ok = pos >= 0
        ok[ok] = self.cell[pos[ok]] == np.broadcast_to(np.arange(n_cells)[:, None], key.shape)[ok]
        return np.where(ok, pos, -1)

    def _at(self, values: np.ndarray, at: np.ndarray | float, left: bool, before: float) -> np.ndarray:
        a = np.atleast_1d(np.asarray(at, dtype=float))
        pos = self._step_at(a, left=left)
        out = np.where(pos >= 0, values[np.maximum(pos, 0)] if len(values) else before, before)
        return out.reshape(*self.shape, len(a))

    def survival_at(self, at: np.ndarray | float, *, left: bool = False) -> np.ndarray:
        """S(at) of every cell, (B, G, len(at)); ``left=True``: S(at-), the estimate just before.

        1 before a cell's first step (and for a cell without rows); after its last step the
        last value (the caller decides whether the curve is defined that far, see ``last``).
        """
        return self._at(self.survival, at, left, 1.0)

    def se_log_at(self, at: np.ndarray | float, *, left: bool = False) -> np.ndarray:
        """Greenwood standard error of log S(at) (= of -log S), (B, G, len(at))."""
        return np.sqrt(self._at(self.greenwood, at, left, 0.0))

    def at_risk(self, at: np.ndarray | float) -> np.ndarray:
        """Weight still under observation at ``at`` (time >= at), (B, G, len(at)).

        The numbers at risk printed under a Kaplan-Meier plot (R ``summary(fit, times)$n.risk``),
        in both directions.
        """
        a = np.atleast_1d(np.asarray(at, dtype=float))
        total = self.n_risk + (self.n_censor if self.reverse else 0.0)  # weight with time >= t_k
        n_cells, n_t = self.shape[0] * self.shape[1], len(self.times)
        cells = np.arange(n_cells, dtype=np.int64)[:, None]
        # the cell's first step at or after ``at``: its weight at risk is everyone still followed
        key = cells * (n_t + 1) + np.searchsorted(self.times, a, side="left")[None, :] + 1
        pos = np.searchsorted(self.cell * (n_t + 1) + self.time_index + 1, key, side="left")
        ok = pos < len(total)
        ok[ok] = self.cell[pos[ok]] == np.broadcast_to(cells, key.shape)[ok]
        return np.where(ok, total[np.minimum(pos, max(len(total) - 1, 0))] if len(total) else 0.0,
                        0.0).reshape(*self.shape, len(a))

    @property
    def last(self) -> np.ndarray:
        """(B, G) largest time of each cell (-inf for a cell without rows)."""
        out = np.full(self.shape[0] * self.shape[1], -np.inf)
        out[self.cell] = self.time  # times increase within a cell: the last write is the largest
        return out.reshape(self.shape)

    def median(self) -> np.ndarray:
        """(B, G) median: the first time with S <= 1/2, as R ``summary(survfit)$table["median"]``.

        When S equals 1/2 (within sqrt(machine eps)) on a flat stretch that later drops, the
        midpoint of that time and the next drop; NaN when S never reaches 1/2.
        """
        tol = np.sqrt(np.finfo(float).eps)
        n_cells = self.shape[0] * self.shape[1]
        out = np.full(n_cells, np.nan)
        t = self.time
        for c in np.unique(self.cell):  # one value per cell; cells are few where a median is asked
            rows = np.flatnonzero(self.cell == c)
            s, tt = self.survival[rows], t[rows]
            keep = np.flatnonzero(s < 0.5 + tol)
            if keep.size == 0:
                continue
            k = keep[0]
            lower = np.flatnonzero(s[k:] < s[k])
            out[c] = (tt[k] + tt[k + lower[0]]) / 2 if abs(s[k] - 0.5) < tol and lower.size else tt[k]
        return out.reshape(self.shape)

    def table(self, sample: int = 0) -> pd.DataFrame:
        """The steps of one sample: ``group``, ``time``, ``n_risk``, ``n_event``, ``n_censor``,
        ``survival``, ``se_log`` (as R ``summary(survfit(...), censored = TRUE)``)."""
        G = self.shape[1]
        m = (self.cell // G) == sample
        return pd.DataFrame({
            "group": self.cell[m] % G, "time": self.time[m], "n_risk": self.n_risk[m], "n_event": self.n_event[m],
            "n_censor": self.n_censor[m], "survival": self.survival[m], "se_log": np.sqrt(self.greenwood[m]),
        })


def kaplan_meier(
    time: np.ndarray | Sequence[float],
    event: np.ndarray | Sequence[float],
    *,
    weights: np.ndarray | None = None,
    groups: np.ndarray | None = None,
    n_groups: int | None = None,
    reverse: bool = False,
) -> KaplanMeier:
    """Kaplan-Meier estimates of B weighted samples in G groups at once.

    Parameters
    ----------
    time, event : (n,) follow-up time and 0/1 event indicator.
    weights : (n,) or (B, n) non-negative case weights (bootstrap counts, a subgroup's 0/1
        mask); default one sample with every weight 1.  Rows with weight 0 take no part.
    groups : (n,) or (B, n) group numbers 0..G-1; default one group.
    n_groups : G (default ``groups.max() + 1``).
    reverse : estimate the censoring distribution G instead of S (module docstring: events
        come first at tied times, as R ``prodlim(reverse = TRUE)``).

    Returns
    -------
    KaplanMeier

    Notes
    -----
    Rows are sorted once by (sample, group, time); the weight at risk is a reverse cumulative
    sum within each cell and the product-limit a running product per cell, so the cost is
    O(B n log n) for any number of groups.
    """
    t = np.asarray(time, dtype=float)
    e = np.asarray(event, dtype=float)
    if t.ndim != 1 or e.shape != t.shape:
        raise ValueError("time and event must be 1-d arrays of the same length")
    n = len(t)
    w = np.ones((1, n)) if weights is None else np.atleast_2d(np.asarray(weights, dtype=float))
    B = w.shape[0]
    if w.shape[1] != n:
        raise ValueError("weights must be (n,) or (B, n)")
    g = np.zeros((1, n), np.int64) if groups is None else np.atleast_2d(np.asarray(groups, dtype=np.int64))
    G = int(n_groups if n_groups is not None else (g.max() + 1 if g.size else 1))
    by_time = np.argsort(t, kind="stable")
    ts = t[by_time]
    new_time = np.r_[True, ts[1:] != ts[:-1]] if n else np.empty(0, bool)
    times = ts[new_time]
    tr = np.empty(n, np.int64)
    tr[by_time] = np.cumsum(new_time) - 1
    n_t = len(times)
    drawn = w > 0
    cell = (np.arange(B)[:, None] * G + np.broadcast_to(g, (B, n)))[drawn]
    key = cell * n_t + np.broadcast_to(tr, (B, n))[drawn]
    if B * G == 1:  # one cell: the time order is the key order (no second sort)
        order = (np.cumsum(drawn[0]) - 1)[by_time[drawn[0][by_time]]]
    else:
        order = np.argsort(key, kind="stable")
    key, cell = key[order], cell[order]
    wd, ev = w[drawn][order], np.broadcast_to(e, (B, n))[drawn][order]
    if key.size == 0:
        empty = np.empty(0)
        return KaplanMeier(times, np.empty(0, np.int64), np.empty(0, np.int64), empty, empty, empty, empty, empty,
                           (B, G), reverse)
    start = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    total = np.add.reduceat(wd, start)  # weight ending at each (cell, time)
    died = np.add.reduceat(wd * ev, start)
    ucell = cell[start]
    cell_start = np.flatnonzero(np.r_[True, ucell[1:] != ucell[:-1]])
    cell_end = np.r_[cell_start[1:], len(ucell)]
    rev = np.r_[np.cumsum(total[::-1])[::-1], 0.0]
    ends = np.repeat(cell_end, np.diff(np.r_[cell_start, len(ucell)]))
    at_risk = rev[:-1] - rev[ends]  # weight of the cell's rows with time >= this time
    if reverse:
        d, other, n_risk = total - died, died, at_risk - died
    else:
        d, other, n_risk = died, total - died, at_risk
    with np.errstate(invalid="ignore", divide="ignore"):
        factor = np.where(d > 0, 1.0 - d / n_risk, 1.0)
        green = np.where(d > 0, np.where(n_risk > d, d / (n_risk * (n_risk - d)), np.inf), 0.0)
    surv = _segment_accumulate(factor, cell_start, np.multiply)
    gw = _segment_accumulate(green, cell_start, np.add)
    return KaplanMeier(times=times, cell=ucell, time_index=key[start] % n_t, n_risk=n_risk, n_event=d, n_censor=other,
                       survival=surv, greenwood=gw, shape=(B, G), reverse=reverse)


def censoring_survival(time: np.ndarray, event: np.ndarray, at: np.ndarray | float, *, left: bool) -> np.ndarray:
    """Reverse Kaplan-Meier G of the censoring times at ``at`` (``left=True``: G(at-)).

    The censoring distribution of inverse-probability-of-censoring weights: a case with the
    event at T_i gets 1/G(T_i-), a patient still event-free at t gets 1/G(t), as
    ``riskRegression::Score(..., cens.model = "km")`` (prodlim's reverse Kaplan-Meier; tie
    rule in the module docstring).
    """
    return kaplan_meier(time, event, reverse=True).survival_at(at, left=left)[0, 0]


def median_followup(time: np.ndarray, event: np.ndarray) -> float:
    """Median follow-up: the median of the reverse Kaplan-Meier (Schemper & Smith 1996).

    The Kaplan-Meier median of the time to *censoring* (events count as censored; tie rule in
    the module docstring); NaN for no patients, inf when not reached.
    """
    t = np.asarray(time, dtype=float)
    if t.size == 0:
        return float("nan")
    med = float(kaplan_meier(t, event, reverse=True).median()[0, 0])
    return float("inf") if np.isnan(med) else med


def km_by_group(time: np.ndarray, event: np.ndarray, group: Sequence[str] | pd.Series, *,
                at_risk_times: Sequence[float], alpha: float = 0.05) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Kaplan-Meier estimates per group, for drawing.

    Returns
    -------
    curves : time, survival, ci_low, ci_high, n_censor, group (ordered as the groups appear
        in a categorical ``group``, else sorted); one row at time 0 and one per distinct time
        of the group.
    at_risk : time, group, n_at_risk at ``at_risk_times``.

    Notes
    -----
    Pointwise interval on the log(-log) scale with Greenwood's variance (R ``survfit(conf.type
    = "log-log")``, lifelines' default): exp(-exp(log(-log S) -/+ z sqrt(var log S) / log S));
    1 where S = 1, 0 where S = 0.
    """
    g = pd.Series(group).reset_index(drop=True)
    levels = list(g.cat.categories) if isinstance(g.dtype, pd.CategoricalDtype) else sorted(g.dropna().unique())
    time = np.asarray(time, float)
    event = np.asarray(event, int)
    codes = pd.Categorical(g, categories=levels).codes.astype(np.int64)
    present = codes >= 0
    fit = kaplan_meier(time[present], event[present], groups=codes[present], n_groups=len(levels))
    steps = fit.table()
    z = NormalDist().inv_cdf(1 - alpha / 2)
    used = [j for j in range(len(levels)) if (codes == j).any()]
    curves = []
    for j in used:
        s = steps[steps["group"] == j]
        t, surv, gw, cens = (s[c].to_numpy(float) for c in ("time", "survival", "se_log", "n_censor"))
        gw = gw**2
        if t[0] != 0:  # the curve starts at (0, 1), as lifelines' timeline
            t, surv, gw, cens = np.r_[0.0, t], np.r_[1.0, surv], np.r_[0.0, gw], np.r_[0.0, cens]
        with np.errstate(divide="ignore", invalid="ignore"):
            v = np.log(surv)
            half = z * np.sqrt(gw) / v
            lo, hi = np.exp(-np.exp(np.log(-v) - half)), np.exp(-np.exp(np.log(-v) + half))
        flat = np.where(surv == 0, 0.0, 1.0)
        edge = (surv == 0) | (surv == 1)
        curves.append(pd.DataFrame({"time": t, "survival": surv, "ci_low": np.where(edge, flat, lo),
                                    "ci_high": np.where(edge, flat, hi), "n_censor": cens, "group": levels[j]}))
    n_at = fit.at_risk(np.asarray(at_risk_times, float))[0]
    risk = [pd.DataFrame({"time": list(at_risk_times), "group": levels[j], "n_at_risk": n_at[j].astype(int)}) for j in used]
    cat = pd.CategoricalDtype(levels, ordered=True)
    out = pd.concat(curves, ignore_index=True)
    out["group"] = out["group"].astype(cat)
    ar = pd.concat(risk, ignore_index=True)
    ar["group"] = ar["group"].astype(cat)
    return out, ar
