"""Intervals for the headline numbers that have none in rms: the optimism-corrected indices
(two-stage bootstrap) and net benefit at the reported thresholds (bootstrap percentile), and the
clinical impact curve beside the decision curve.

rms ``validate`` reports the optimism-corrected C (Dxy) and calibration slope without any
interval (rms issue #98), and a naive interval around the apparent C (survival's
infinitesimal jackknife) is centred at the wrong value and ignores the model's refitting.  Here
the interval is the **two-stage bootstrap** of Noma et al. (2021): an outer bootstrap resamples
the patients; in each outer sample the whole validation is repeated (the model refitted there,
its optimism estimated by an inner bootstrap of that sample, as :func:`.indices.validate_cox`
does on the original data), giving one optimism-corrected value per outer sample; the 2.5th and
97.5th percentiles of those values are the interval.  It is computed with the package's one
batched engine: every inner replicate of a batch of outer samples is one case-count row, all
fitted at once (:func:`.resample.cox_fit_fn`) and measured with :func:`.indices.cox_indices`,
on its own rows (training) and on its outer sample's rows (test).  The screen is not repeated
inside (the standard validation's refit of the model's own predictors).

References
----------
Noma H, Shinozaki T, Iba K, Teramukai S, Furukawa TA. Confidence intervals of prediction
accuracy measures for multivariable prediction models based on the bootstrap-based optimism
correction methods. Stat Med 2021;40:5691-5701.
Harrell FE. rms issue #98 (no confidence interval for the corrected index).
Vickers AJ, Cronin AM, Elkin EB, Gonen M. Extensions to decision curve analysis. BMC Med
Inform Decis Mak 2008;8:53 (bootstrap intervals of net benefit).
Kerr KF, Brown MD, Zhu K, Janes H. Assessing the clinical impact of risk prediction models with
decision curves: guidance for correct interpretation and appropriate use. J Clin Oncol
2016;34:2534-2540 (the clinical impact curve of rmda ``plot_clinical_impact``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..km import kaplan_meier
from ..models import compiled
from ..models.coxfit import CHUNK_ELEMENTS
from ..models.cox import CoxModel
from ..spec import StudySpec
from . import groupkm
from .indices import INDEX_NAMES, cox_indices
from .resample import as_weights, cox_data, cox_fit_fn, draw_bootstrap_counts
from .resident import map_replicates

__all__ = ["corrected_intervals", "inner_counts", "net_benefit_intervals", "net_benefit_batch", "clinical_impact",
           "REPORTED_THRESHOLDS", "PER"]

#: thresholds at which the report tabulates net benefit (and gives its interval)
REPORTED_THRESHOLDS: tuple[float, ...] = (0.05, 0.10, 0.20, 0.30, 0.40)
#: the clinical impact curve counts patients per this many
PER = 1000


def inner_counts(outer: np.ndarray, n_inner: int, rng: np.random.Generator) -> np.ndarray:
    """Case counts (n_inner, n) of bootstrap samples drawn from the sample with counts ``outer``.

    Drawing sum(outer) rows with replacement from the outer sample's rows (each original row
    repeated as often as it was drawn) and counting them per original row."""
    rows = np.repeat(np.arange(len(outer)), np.asarray(outer, int))
    m = len(rows)
    draws = rows[rng.integers(0, m, size=(n_inner, m))] + len(outer) * np.arange(n_inner)[:, None]
    return np.bincount(draws.ravel(), minlength=n_inner * len(outer)).reshape(n_inner, len(outer)).astype(float)


def corrected_intervals(
    spec: StudySpec,
    model: CoxModel,
    cohort: pd.DataFrame,
    *,
    apparent: pd.DataFrame,
    n_outer: int,
    n_inner: int,
    rng: np.random.Generator,
) -> pd.DataFrame:
    """Two-stage bootstrap percentile intervals of the optimism-corrected validation indices.

    Parameters
    ----------
    spec, model, cohort : the study, the fitted model and its rows.
    apparent : the study's validation table (:func:`.indices.validate_cox`, ``method =
        "standard"``): its ``corrected`` column is the point estimate reported with the interval.
    n_outer, n_inner : outer samples and inner replicates per outer sample.
    rng : random generator (outer and inner draws).

    Returns
    -------
    pandas.DataFrame
        One row per index of :data:`.indices.INDEX_NAMES`: ``index``, ``corrected`` (the
        study's estimate), ``ci_low``, ``ci_high`` (percentiles alpha/2 and 1 - alpha/2 of the
        outer samples' corrected values), ``boot_mean``, ``boot_sd`` (their mean and SD),
        ``n_outer`` (outer samples used), ``n_outer_boot``, ``n_inner``, ``method``.

    Notes
    -----
    For outer sample b (case counts c_b): apparent_b = index of the model refitted on c_b,
    measured on c_b; inner replicates j (counts c_bj drawn from the rows of c_b) give
    optimism_b = mean_j (index of fit_bj on c_bj - index of fit_bj on c_b); corrected_b =
    apparent_b - optimism_b.  An outer sample whose refit fails, or with no usable inner
    replicate, is left out and counted.  With few inner replicates the Monte-Carlo error of
    optimism_b widens the interval slightly (conservative).
    """
    alpha = spec.analysis.alpha
    data = cox_data(spec, cohort, model.variables, init=model.coef)
    n, k = len(data), len(INDEX_NAMES)
    outer = draw_bootstrap_counts(n, n_outer, rng)
    per = max(1, min(n_outer, CHUNK_ELEMENTS // max(1, n * (n_inner + 1))))
    corrected = np.full((n_outer, k), np.nan)
    for s in range(0, n_outer, per):
        block = as_weights(outer[s:s + per])
        app = cox_indices(cox_fit_fn(data, block), data, block, training=True)  # (b, k)
        inner = np.concatenate([inner_counts(c, n_inner, rng) for c in block])
        home = np.repeat(block, n_inner, axis=0)  # each inner replicate's outer sample
        fits = cox_fit_fn(data, inner)
        train = cox_indices(fits, data, inner, training=True)
        test = cox_indices(fits, data, home, training=False)
        diff = (train - test).reshape(len(block), n_inner, k)
        used = np.isfinite(diff)
        with np.errstate(invalid="ignore", divide="ignore"):
            opt = np.where(used, diff, 0.0).sum(axis=1) / used.sum(axis=1)  # NaN where no inner replicate is usable
        corrected[s:s + len(block)] = app - opt
    ok = np.isfinite(corrected)
    est = apparent.set_index("index")["corrected"]
    with np.errstate(invalid="ignore"):
        lo = np.array([np.quantile(corrected[ok[:, j], j], alpha / 2) if ok[:, j].any() else np.nan for j in range(k)])
        hi = np.array([np.quantile(corrected[ok[:, j], j], 1 - alpha / 2) if ok[:, j].any() else np.nan for j in range(k)])
    return pd.DataFrame({
        "index": list(INDEX_NAMES),
        "corrected": [float(est.get(name, np.nan)) for name in INDEX_NAMES],
        "ci_low": lo, "ci_high": hi,
        "boot_mean": [float(np.mean(corrected[ok[:, j], j])) if ok[:, j].any() else np.nan for j in range(k)],
        "boot_sd": [float(np.std(corrected[ok[:, j], j], ddof=1)) if ok[:, j].sum() > 1 else np.nan for j in range(k)],
        "n_outer": ok.sum(axis=0), "n_outer_boot": n_outer, "n_inner": n_inner,
        "method": "two-stage bootstrap percentile (Noma et al. 2021)",
    })


def net_benefit_batch(risk: np.ndarray, time: np.ndarray, event: np.ndarray, counts: np.ndarray, *, horizon: float,
                      thresholds) -> tuple[np.ndarray, np.ndarray]:
    """Net benefit of the model and of treating all in B weighted samples, (B, k) each.

    The formula of :func:`cementleak_stats.decision.net_benefit` (Vickers et al. 2008) with
    case weights (bootstrap counts): P(+) = sum c_i 1(risk_i >= p_t) / sum c_i, S+ the weighted
    Kaplan-Meier at the horizon among the treated (R ``survfit(..., weights = c)``); NaN where
    nobody treated is followed up to the horizon and S+ > 0 (undefined, as ``net_benefit``).
    """
    counts = np.atleast_2d(np.asarray(counts, float))
    time = np.asarray(time, float)
    event = np.asarray(event, int)
    total = counts.sum(axis=1)

    one_group = np.zeros((1, len(time)), np.int64)

    def km(w: np.ndarray) -> np.ndarray:
        if compiled.ENABLED:  # O(n) per sample; the same numbers (models/compiled.py)
            s, _, last = (a[:, 0] for a in groupkm.km_at_cells(time, event, w, one_group, 1, horizon))
        else:
            fit = kaplan_meier(time, event, weights=w)
            s, last = fit.survival_at(horizon)[:, 0, 0], fit.last[:, 0]
        return np.where((last < horizon) & (s > 0), np.nan, s)

    s_all = km(counts)
    nb, nb_all = [], []
    for pt in np.asarray(thresholds, float):
        w = pt / (1 - pt)
        treated = counts * (np.asarray(risk) >= pt)
        p_pos = treated.sum(axis=1) / total
        s_pos = km(treated) if treated.any() else np.ones(len(counts))
        nb.append(np.where(p_pos > 0, (1 - s_pos) * p_pos - s_pos * p_pos * w, 0.0))
        nb_all.append((1 - s_all) - s_all * w)
    return np.column_stack(nb), np.column_stack(nb_all)


@dataclass(frozen=True)
class _FixedRisks:
    """What the bootstrap of :func:`net_benefit_intervals` reads (kept in each worker)."""

    risk: np.ndarray
    time: np.ndarray
    event: np.ndarray
    horizon: float
    thresholds: np.ndarray


def _net_benefit_replicates(d: _FixedRisks, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Net benefit of the model and of treating all, (b, thresholds) each, in b resamples."""
    step = max(1, CHUNK_ELEMENTS // len(d.time))  # a chunk of replicates at a time (bounded memory)
    parts = [net_benefit_batch(d.risk, d.time, d.event, as_weights(counts[s:s + step]), horizon=d.horizon,
                               thresholds=d.thresholds) for s in range(0, len(counts), step)]
    empty = np.empty((0, d.thresholds.size))
    return (np.concatenate([p[0] for p in parts]) if parts else empty,
            np.concatenate([p[1] for p in parts]) if parts else empty)


def net_benefit_intervals(spec: StudySpec, risk: np.ndarray, cohort: pd.DataFrame, *, n_boot: int,
                          rng: np.random.Generator, thresholds=REPORTED_THRESHOLDS,
                          horizon: float | None = None, n_jobs: int = 1) -> pd.DataFrame:
    """Bootstrap percentile intervals of net benefit at the reported thresholds.

    The predictions are held fixed (the model is not refitted): the interval is the sampling
    error of the net benefit of these predictions in this cohort (apparent, as the decision
    curve itself; rmda's ``decision_curve(bootstraps = )`` does the same).  The resamples run on
    ``n_jobs`` joblib workers (:func:`.resident.map_replicates`; the same numbers).

    Returns
    -------
    pandas.DataFrame
        ``threshold``, ``net_benefit_model``, ``ci_low``, ``ci_high``, ``net_benefit_all``,
        ``all_ci_low``, ``all_ci_high``, ``difference`` (model - treat all) with
        ``difference_ci_low``/``difference_ci_high``, ``n_boot``, ``n_used`` (replicates where
        the model's net benefit is defined).
    """
    h = spec.outcome.horizon if horizon is None else horizon
    t = cohort[spec.outcome.time].to_numpy(float).copy()
    e = cohort[spec.outcome.event].to_numpy().astype(int)
    t.flags.writeable = False  # the Kaplan-Meier's time order is then made once for every chunk
    thr = np.asarray(thresholds, float)
    nb0, all0 = net_benefit_batch(risk, t, e, np.ones((1, len(t))), horizon=h, thresholds=thr)
    counts = draw_bootstrap_counts(len(t), n_boot, rng)
    nb, nb_all = map_replicates(_net_benefit_replicates, _FixedRisks(np.asarray(risk, float), t, e, h, thr), counts,
                                n_jobs=n_jobs)
    a = spec.analysis.alpha

    def q(x: np.ndarray, p: float) -> np.ndarray:
        return np.array([np.quantile(c[np.isfinite(c)], p) if np.isfinite(c).any() else np.nan for c in x.T])

    return pd.DataFrame({
        "threshold": thr, "net_benefit_model": nb0[0], "ci_low": q(nb, a / 2), "ci_high": q(nb, 1 - a / 2),
        "net_benefit_all": all0[0], "all_ci_low": q(nb_all, a / 2), "all_ci_high": q(nb_all, 1 - a / 2),
        "difference": nb0[0] - all0[0], "difference_ci_low": q(nb - nb_all, a / 2),
        "difference_ci_high": q(nb - nb_all, 1 - a / 2), "n_boot": n_boot, "n_used": np.isfinite(nb).sum(axis=0),
    })


def clinical_impact(decision_curve: pd.DataFrame, n: int, *, per: int = PER) -> pd.DataFrame:
    """The clinical impact curve (Kerr et al. 2016; rmda ``plot_clinical_impact``) from a
    decision curve: per ``per`` patients, how many are classed high risk at each threshold and
    how many of them have the event by the horizon.

    Notes
    -----
    With P(+) = n_treated / n and NB = P(+) [(1 - S+) - S+ w], w = p_t / (1 - p_t), the share
    classed high risk *with* the event is P(+) (1 - S+) = (w P(+) + NB) / (1 + w) (exact algebra
    of the decision curve's own Kaplan-Meier S+); without the event P(+) S+.

    Returns
    -------
    pandas.DataFrame
        ``threshold``, ``high_risk`` and ``high_risk_with_event`` per ``per`` patients,
        ``per``.
    """
    d = decision_curve
    w = d["threshold"] / (1 - d["threshold"])
    p_pos = d["n_treated"] / n
    return pd.DataFrame({"threshold": d["threshold"], "high_risk": per * p_pos,
                         "high_risk_with_event": per * (w * p_pos + d["net_benefit_model"]) / (1 + w), "per": per})
