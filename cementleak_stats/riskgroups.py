"""Risk groups from the nomogram: every patient's total points, groups by prespecified cut-offs
(``analysis.risk_groups``) or by the tertiles of the development cohort, Kaplan-Meier curves by
group, the log-rank test and hazard ratios between the groups; the same cut-offs carried
unchanged to a validation cohort.

The cut-offs are never searched on the outcome (an "optimal" cut-point chosen to minimise the
log-rank P gives a P value that is not adjusted for the search and groups that do not
replicate; Altman et al. 1994): they are either written in the study file before the analysis,
or the tertiles of the development cohort's total points, which look only at the predictors.

Every estimate reuses a kernel of the package or a well-kept library: the total points are the
nomogram's own mapping (:meth:`cementleak_stats.nomogram.Nomogram.lp_from_points`, inverted),
the Kaplan-Meier curves :func:`cementleak_stats.km.kaplan_meier` / :func:`~cementleak_stats.km.km_by_group`,
the log-rank test :func:`logrank_test` (written out: R ``survdiff``, its docstring says why), the
hazard ratios the package's Efron Cox fitter (:func:`cementleak_stats.models.coxfit.fit_cox`, R ``coxph``).

References
----------
Altman DG, Lausen B, Sauerbrei W, Schumacher M. Dangers of using "optimal" cutpoints in the
evaluation of prognostic factors. J Natl Cancer Inst 1994;86:829-835.
Royston P, Altman DG. External validation of a Cox prognostic model: principles and methods.
BMC Med Res Methodol 2013;13:33 (risk groups carried to the validation data).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import math

import numpy as np
import pandas as pd
from scipy import stats

from .design import encode
from .errors import AnalysisError
from .km import kaplan_meier, km_by_group
from .models.coxfit import fit_cox
from .nomogram import Nomogram
from .spec import StudySpec

__all__ = ["RiskGroups", "total_points", "points_formula", "group_cutoffs", "risk_groups_in", "at_risk_times",
           "risk_spread", "DEFAULT_LABELS"]

#: names of the groups when the study file gives none (by number of groups)
DEFAULT_LABELS: dict[int, tuple[str, ...]] = {2: ("Low risk", "High risk"), 3: ("Low risk", "Intermediate risk", "High risk"),
                                              4: ("Low risk", "Low-intermediate risk", "High-intermediate risk", "High risk")}


def at_risk_times(horizon: float) -> list[float]:
    """The times from 0 to ``horizon`` at which the numbers at risk are counted (and the curves'
    time axis is marked): quarters when they are whole numbers (0, 3, 6, 9, 12 months; 0, 13, 26,
    39, 52 weeks), else round steps of 1, 2, 2.5 or 5 x 10^k, at most five, plus the horizon
    (0, 100, 200, 300, 365 days)."""
    horizon = float(horizon)
    if (horizon / 4).is_integer():
        return [float(x) for x in np.linspace(0, horizon, 5)]
    scale = 10.0 ** math.floor(math.log10(horizon / 5))
    step = min(k * scale for k in (1, 2, 2.5, 5, 10) if k * scale >= horizon / 5 * (1 - 1e-9))
    steps = [float(x) for x in np.arange(0.0, horizon * (1 + 1e-9), step)]
    return steps + [horizon] if horizon - steps[-1] >= step / 2 else steps[:-1] + [horizon]


def risk_spread(risks: Mapping[float, np.ndarray]) -> pd.DataFrame:
    """How the cohort's predicted risks spread at each horizon: what the nomogram's risk axis
    must cover and its caption states.

    Parameters
    ----------
    risks : predicted risk by the horizon of every patient, by horizon.

    Returns
    -------
    pandas.DataFrame
        One row per horizon (in the order given): ``horizon``, ``lowest``, ``p05``, ``p95``,
        ``highest`` (R ``quantile(risk, c(0, 0.05, 0.95, 1), type = 7)``; NaN without patients).
    """
    rows = []
    for h, r in risks.items():
        r = np.asarray(r, float)
        r = r[np.isfinite(r)]
        q = np.quantile(r, [0.0, 0.05, 0.95, 1.0]) if r.size else np.full(4, np.nan)
        rows.append({"horizon": float(h), "lowest": q[0], "p05": q[1], "p95": q[2], "highest": q[3]})
    return pd.DataFrame(rows, columns=["horizon", "lowest", "p05", "p95", "highest"])


def total_points(nomogram: Nomogram, lp: np.ndarray) -> np.ndarray:
    """Total points of patients with centred linear predictor ``lp``: (lp - intercept) x scale,
    the inverse of :meth:`~cementleak_stats.nomogram.Nomogram.lp_from_points` (equal to the sum
    of every predictor's points read off the nomogram)."""
    return (np.asarray(lp, float) - nomogram.intercept) * nomogram.scale


def points_formula(spec: StudySpec, nomogram: Nomogram) -> pd.DataFrame:
    """The points formula (as R ``nomogramFormula``, exact for a linear model): total points =
    constant + sum_j points_per_unit_j x term_j.

    Returns
    -------
    pandas.DataFrame
        One row per model term and a last row ``constant``: ``term``, ``label``,
        ``points_per_unit`` (beta_j x scale), ``constant`` (on the last row: -scale x
        sum_j min_j, the points of a patient whose every term is 0).
    """
    m = nomogram.model
    mins = nomogram.points.groupby("predictor", sort=False)["contribution"].min()
    from .models.cox import term_label  # the labels of the model's own tables

    rows = [{"term": t.name, "label": term_label(spec, t, 1), "points_per_unit": float(m.coef[t.name]) * nomogram.scale,
             "constant": np.nan} for t in m.terms]
    rows.append({"term": "constant", "label": "Constant", "points_per_unit": np.nan,
                 "constant": -nomogram.scale * float(mins.sum())})
    return pd.DataFrame(rows)


def group_cutoffs(spec: StudySpec, nomogram: Nomogram, points: np.ndarray) -> tuple[tuple[float, ...], str]:
    """The cut-offs in total points and where they come from.

    ``analysis.risk_groups.cutoffs`` in points, or in risk at the main horizon (converted by
    the nomogram's risk axis, :meth:`~cementleak_stats.nomogram.Nomogram.points_for_risk`); without
    cut-offs the tertiles (R ``quantile(type = 7)``) of the development cohort's total points.
    """
    rule = spec.analysis.risk_groups
    if rule.cutoffs:
        if rule.scale == "risk":
            return tuple(float(x) for x in nomogram.points_for_risk(np.asarray(rule.cutoffs))), "prespecified (risk)"
        return tuple(float(x) for x in rule.cutoffs), "prespecified (points)"
    cuts = np.quantile(np.asarray(points, float), [1 / 3, 2 / 3])
    if not np.all(np.diff(np.r_[-np.inf, cuts]) > 0):
        raise AnalysisError("the tertiles of the total points coincide (too few distinct scores): give "
                            "`analysis.risk_groups: {cutoffs: [...]}` in the study file")
    return tuple(float(x) for x in cuts), "tertiles of the development cohort"


@dataclass(frozen=True)
class RiskGroups:
    """Patients grouped by the nomogram's total points, in one cohort.

    Attributes
    ----------
    cohort : the cohort's name; source : where the cut-offs come from.
    cutoffs : cut-offs in total points (group k: cut_{k-1} <= points < cut_k).
    labels : the groups' names, lowest risk first.
    patients : per patient (row order) ``row``, ``total_points``, ``risk`` (by the main
        horizon), ``group`` (1-based) and ``label``.
    summary : per group ``group``, ``label``, ``points_low``, ``points_high`` (the cut-offs
        around it; empty at the open ends), ``risk_low``, ``risk_high`` (the same on the risk
        scale at the main horizon), ``n``, ``events``, ``observed_risk`` (1 - Kaplan-Meier at
        the horizon) with ``ci_low``/``ci_high`` (log scale, Greenwood), ``predicted_risk``
        (mean).
    logrank : one row: ``chisq``, ``df``, ``p_value`` (R ``survdiff(Surv(t, e) ~ group)``).
    hazard_ratios : per group but the lowest: ``group``, ``label``, ``reference``, ``hr``,
        ``ci_low``, ``ci_high``, ``p_value`` (Wald; R ``coxph(Surv(t, e) ~ group)``, Efron),
        ``note`` (why an HR is not estimable: a group without events gives an HR of 0 or
        infinity, which R reports with a convergence warning; here it is left empty).
    formula : the points formula (:func:`points_formula`).
    horizon : the main horizon.
    curves : Kaplan-Meier curves by group for drawing (:func:`cementleak_stats.km.km_by_group`:
        ``time``, ``survival``, ``ci_low``, ``ci_high``, ``n_censor``, ``group`` = the group's
        label, ordered lowest risk first).
    at_risk : numbers at risk by group at :func:`at_risk_times` of the longest horizon:
        ``time``, ``group``, ``n_at_risk``.
    """

    cohort: str
    source: str
    cutoffs: tuple[float, ...]
    labels: tuple[str, ...]
    patients: pd.DataFrame
    summary: pd.DataFrame
    logrank: pd.DataFrame
    hazard_ratios: pd.DataFrame
    formula: pd.DataFrame
    horizon: float
    curves: pd.DataFrame
    at_risk: pd.DataFrame


def logrank_test(time: np.ndarray, event: np.ndarray, group: np.ndarray) -> tuple[float, int]:
    """The k-group log-rank test, as R ``survdiff(Surv(time, event) ~ group)`` (rho = 0).

    Returns ``(chisq, df)``: chisq = (O - E)' V^-1 (O - E) over the groups but one, O and E the
    observed and expected events per group, V their hypergeometric covariance summed over the
    distinct event times; df = the number of groups with E > 0, less one (survdiff leaves out a
    group nobody of which is at risk at an event time).  Written out (O(n log n), one sort)
    rather than lifelines' ``multivariate_logrank_test``: importing lifelines cost every analysis
    ~0.2 s for this test alone, and scipy's ``logrank`` compares two groups only.  Checked
    against survdiff in tests/test_riskgroups.py (tests/reference/logrank_reference.R).
    """
    _, g = np.unique(group, return_inverse=True)
    k = int(g.max()) + 1
    _, ti = np.unique(time, return_inverse=True)
    K = int(ti.max()) + 1
    cell = ti.ravel() * k + g.ravel()
    d = np.bincount(cell, weights=np.asarray(event, float), minlength=K * k).reshape(K, k)  # events (time, group)
    rows = np.bincount(cell, minlength=K * k).reshape(K, k).astype(float)
    at_risk = np.cumsum(rows[::-1], axis=0)[::-1]  # rows with time >= t_j
    dj, nj = d.sum(axis=1), at_risk.sum(axis=1)
    at = dj > 0
    d, at_risk, dj, nj = d[at], at_risk[at], dj[at], nj[at]
    share = at_risk / nj[:, None]
    expected = dj @ share
    w = dj * np.divide(nj - dj, nj - 1, out=np.zeros_like(nj), where=nj > 1)
    var = np.diag(w @ share) - (share * w[:, None]).T @ share
    keep = np.flatnonzero(expected > 0)[1:]
    z = d.sum(axis=0)[keep] - expected[keep]
    chisq = float(z @ np.linalg.solve(var[np.ix_(keep, keep)], z)) if keep.size else 0.0
    return chisq, int(keep.size)


def risk_groups_in(
    spec: StudySpec,
    nomogram: Nomogram,
    cohort: pd.DataFrame,
    *,
    cutoffs: Sequence[float] | None = None,
    source: str = "",
    label: str = "Development cohort",
) -> RiskGroups:
    """Group the patients of ``cohort`` by their total points and compare the groups.

    Parameters
    ----------
    spec, nomogram : the study and its nomogram (the frozen development model).
    cohort : the patients (development or validation).
    cutoffs : cut-offs in total points (default :func:`group_cutoffs` on this cohort, which
        must then be the development cohort); pass the development cut-offs for a validation
        cohort, unchanged.
    source : where the cut-offs come from (with ``cutoffs``).
    label : the cohort's name.

    Notes
    -----
    Log-rank: :func:`logrank_test` (the k-group test of R ``survdiff``, chi-square with k - 1 df).  Hazard ratios: a Cox model (Efron ties) on indicators of each
    group against the lowest, Wald intervals.  A group without patients is reported with n = 0
    and left out of both (the test's df is then the number of non-empty groups - 1).
    """
    model = nomogram.model
    lp = model.lp(encode(spec, cohort, model.variables).X)
    pts = total_points(nomogram, lp)
    if cutoffs is None:
        cutoffs, source = group_cutoffs(spec, nomogram, pts)
    cutoffs = tuple(float(c) for c in cutoffs)
    k = len(cutoffs) + 1
    labels = tuple(spec.analysis.risk_groups.labels) or DEFAULT_LABELS.get(k, tuple(f"Group {i + 1}" for i in range(k)))
    group = np.searchsorted(np.asarray(cutoffs), pts, side="right")  # 0-based: cut_{k-1} <= points < cut_k
    t = cohort[spec.outcome.time].to_numpy(float)
    e = cohort[spec.outcome.event].to_numpy().astype(int)
    u = spec.outcome.horizon
    risk = nomogram.risk_from_points(pts)
    z = float(stats.norm.ppf(1 - spec.analysis.alpha / 2))
    fit = kaplan_meier(t, e, groups=group, n_groups=k)
    s_u = fit.survival_at(u + 1e-6)[0, :, 0]
    se = fit.se_log_at(u + 1e-6)[0, :, 0]
    edges = np.r_[-np.inf, cutoffs, np.inf]
    with np.errstate(invalid="ignore", divide="ignore"):
        r_edges = nomogram.risk_from_points(np.where(np.isfinite(edges), edges, np.nan))
    rows = []
    for g in range(k):
        inside = group == g
        n = int(inside.sum())
        rows.append({"group": g + 1, "label": labels[g], "points_low": edges[g] if np.isfinite(edges[g]) else np.nan,
                     "points_high": edges[g + 1] if np.isfinite(edges[g + 1]) else np.nan,
                     "risk_low": r_edges[g], "risk_high": r_edges[g + 1], "n": n, "events": int(e[inside].sum()),
                     "observed_risk": 1 - s_u[g] if n else np.nan,
                     "ci_low": 1 - min(1.0, s_u[g] * np.exp(z * se[g])) if n else np.nan,
                     "ci_high": 1 - s_u[g] * np.exp(-z * se[g]) if n else np.nan,
                     "predicted_risk": float(risk[inside].mean()) if n else np.nan})
    summary = pd.DataFrame(rows)
    present = [g for g in range(k) if (group == g).any()]
    if len(present) > 1:
        chisq, df = logrank_test(t, e, group)
        logrank = pd.DataFrame([{"chisq": chisq, "df": df, "p_value": float(stats.chi2.sf(chisq, df))}])
        X = np.column_stack([(group == g).astype(float) for g in present[1:]])
        no_events = [labels[g] for g in present if not e[group == g].any()]
        cox = fit_cox(X, t, e)
        coef, se_b = cox.coef, np.sqrt(np.diag(cox.var))
        if no_events or not cox.converged:  # an HR against (or of) a group without events is 0 or infinite
            coef = se_b = np.full(len(present) - 1, np.nan)
        note = (f"not estimable: no events in {' and '.join(no_events)}" if no_events else
                "" if cox.converged else "not estimable: the Cox fit did not converge")
        hr = pd.DataFrame({"group": [g + 1 for g in present[1:]], "label": [labels[g] for g in present[1:]],
                           "reference": labels[present[0]], "hr": np.exp(coef), "ci_low": np.exp(coef - z * se_b),
                           "ci_high": np.exp(coef + z * se_b), "p_value": 2 * stats.norm.sf(np.abs(coef / se_b)),
                           "note": note})
    else:
        logrank = pd.DataFrame([{"chisq": np.nan, "df": 0, "p_value": np.nan}])
        hr = pd.DataFrame(columns=["group", "label", "reference", "hr", "ci_low", "ci_high", "p_value", "note"])
    patients = pd.DataFrame({"row": np.arange(len(cohort)), "total_points": pts, "risk": risk, "group": group + 1,
                             "label": [labels[g] for g in group]})
    curves, at_risk = km_by_group(t, e, pd.Categorical.from_codes(group, categories=list(labels), ordered=True),
                                  at_risk_times=at_risk_times(max(spec.outcome.all_horizons)), alpha=spec.analysis.alpha)
    return RiskGroups(cohort=label, source=source, cutoffs=cutoffs, labels=labels, patients=patients, summary=summary,
                      logrank=logrank, hazard_ratios=hr, formula=points_formula(spec, nomogram), horizon=u,
                      curves=curves, at_risk=at_risk)
