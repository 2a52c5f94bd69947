"""The model against an existing score named in the study file (``analysis.comparator``): the
difference in Harrell's C (paired bootstrap interval), in the time-dependent AUC at every horizon
(influence-function interval, as ``riskRegression::Score`` contrasts), the net reclassification
improvement (NRI) and the integrated discrimination improvement (IDI) at the main horizon
(paired bootstrap intervals), and both models' net benefit on one decision curve.

The comparator is one variable of the study file (a staging system, a published score, a single
predictor), entered in a Cox model of its own fitted on the development cohort: its risks are
then calibrated to the same outcome and horizon as the model's, which is what a decision curve and
the reclassification measures need (as ``Score(list(model, comparator), ...)`` with two
``coxph`` fits).  In a validation cohort both models are applied unchanged.

Every measure reuses the package's kernels: Harrell's C and its batched bootstrap form
(:mod:`.concordance`), the AUC and its influence function (:func:`.discrimination.dynamic_auc`),
the censoring weights (:func:`cementleak_stats.km.kaplan_meier`, ``reverse=True``), the net
benefit (:func:`cementleak_stats.decision.net_benefit`).

Caveats (said in the report): in the development cohort the model was selected and fitted on the
same patients, so every difference there favours it (the comparator has one variable); the
validation cohort gives the fair comparison.  The NRI counts any change in predicted risk as
reclassification and can be positive for a useless marker or a miscalibrated model (Pepe et al.
2015; Kerr et al. 2014); it and the IDI are shown for completeness, the decision curve and the
difference in the Brier score or AUC weigh more.

References
----------
Pencina MJ, D'Agostino RB Sr, Steyerberg EW. Extensions of net reclassification improvement
calculations to measure usefulness of new biomarkers. Stat Med 2011;30:11-21.
Pencina MJ, D'Agostino RB Sr, D'Agostino RB Jr, Vasan RS. Evaluating the added predictive
ability of a new marker. Stat Med 2008;27:157-172 (IDI).
Kerr KF, Wang Z, Janes H, et al. Net reclassification indices for evaluating risk prediction
instruments: a critical review. Epidemiology 2014;25:114-121.
Pepe MS, Fan J, Feng Z, Gerds T, Hilden J. The net reclassification index (NRI): a misleading
measure of prediction improvement even with independent test data sets. Stat Biosci 2015;7:282-295.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from ..decision import net_benefit, threshold_grid
from ..design import encode
from ..km import kaplan_meier
from ..models import compiled
from ..models.cox import CoxModel
from ..spec import StudySpec
from .calibration import BELOW_HORIZON
from .concordance import concordance_batch, harrell_c
from .discrimination import dynamic_auc
from . import groupkm
from ..models.coxfit import CHUNK_ELEMENTS
from .resample import draw_bootstrap_counts
from .resident import map_replicates

__all__ = ["Comparison", "compare_with", "reclassification"]


def reclassification(time: np.ndarray, event: np.ndarray, new: np.ndarray, old: np.ndarray, t: float,
                     counts: np.ndarray | None = None) -> np.ndarray:
    """Category-free NRI and IDI at t of risks ``new`` against ``old``, for B weighted samples.

    Returns
    -------
    numpy.ndarray
        (B, 6): NRI among events, NRI among non-events, NRI (their sum), mean risk difference
        (new - old) among events, among non-events, and IDI (the first minus the second).

    Notes
    -----
    Events by t and non-events are weighted by the inverse probability of censoring, as the
    time-dependent AUC and the Brier score: an event at T_i <= t gets 1/G(T_i-), a patient still
    event-free at t gets 1/G(t), a patient censored before t gets 0 (G the reverse Kaplan-Meier,
    prodlim's tie rule).  With up_i = [new_i > old_i], down_i = [new_i < old_i] and weighted
    means E_1 over events, E_0 over non-events:

        NRI_events = E_1[up] - E_1[down];  NRI_non-events = E_0[down] - E_0[up];
        NRI = NRI_events + NRI_non-events;  IDI = E_1[new - old] - E_0[new - old].

    ``counts`` (B, n) are bootstrap case counts (duplicated-row semantics: G is re-estimated in
    each sample).
    """
    time = np.asarray(time, float)
    ev = np.asarray(event).astype(bool)
    counts = np.ones((1, len(time))) if counts is None else np.atleast_2d(np.asarray(counts))
    size = max(1, CHUNK_ELEMENTS // max(len(time), 1))
    if len(counts) > size:  # a chunk of samples at a time (bounded memory)
        return np.concatenate([reclassification(time, ev, new, old, t, counts[c:c + size])
                               for c in range(0, len(counts), size)])
    counts = counts.astype(float)
    case = ev & (time <= t)
    alive = time > t
    if compiled.ENABLED:  # one compiled pass per sample; the same numbers (models/compiled.py)
        g_case, g_at = groupkm.censoring_left(time, ev, counts, t)
        g_t = g_at[:, None]
    else:
        g = kaplan_meier(time, ev, weights=counts, reverse=True)
        g_case = g.survival_at(time, left=True)[:, 0, :]  # (B, n): G(T_i-) in each sample
        g_t = g.survival_at(t)[:, 0, :]  # (B, 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        w1 = np.where(case, counts / g_case, 0.0)
        w0 = np.where(alive, counts / g_t, 0.0)
    d = np.asarray(new, float) - np.asarray(old, float)
    up, down = (d > 0).astype(float), (d < 0).astype(float)

    def mean(w: np.ndarray, x: np.ndarray) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return (w * x).sum(axis=1) / w.sum(axis=1)

    nri1 = mean(w1, up) - mean(w1, down)
    nri0 = mean(w0, down) - mean(w0, up)
    idi1, idi0 = mean(w1, d), mean(w0, d)
    return np.column_stack([nri1, nri0, nri1 + nri0, idi1, idi0, idi1 - idi0])


#: rows of :func:`reclassification`
RECLASSIFICATION = ("nri_events", "nri_nonevents", "nri", "risk_change_events", "risk_change_nonevents", "idi")


@dataclass(frozen=True)
class Comparison:
    """The model and the comparator in one cohort.

    Attributes
    ----------
    label : the comparator's name; variable : its study-file variable; cohort : the cohort.
    comparator : the comparator's Cox model (fitted on the development cohort).
    discrimination : per measure (``c_index``, then ``auc`` at each horizon): ``measure``,
        ``horizon``, ``model``, ``comparator``, ``difference`` (model - comparator), ``se``,
        ``ci_low``, ``ci_high``, ``p_value``, ``method``.
    reclassification : per measure of :data:`RECLASSIFICATION` at the main horizon:
        ``measure``, ``estimate``, ``ci_low``, ``ci_high`` (paired bootstrap percentiles),
        ``horizon``.
    decision_curve : ``threshold``, ``net_benefit_model``, ``net_benefit_comparator``,
        ``net_benefit_all``, ``net_benefit_none``.
    n_boot : bootstrap replicates of the paired intervals.
    """

    label: str
    variable: str
    cohort: str
    comparator: CoxModel
    discrimination: pd.DataFrame
    reclassification: pd.DataFrame
    decision_curve: pd.DataFrame
    n_boot: int


def _percentiles(x: np.ndarray, alpha: float) -> tuple[float, float]:
    x = x[np.isfinite(x)]
    return (float(np.quantile(x, alpha / 2)), float(np.quantile(x, 1 - alpha / 2))) if x.size else (np.nan, np.nan)


@dataclass(frozen=True)
class _Paired:
    """What the paired bootstrap of :func:`compare_with` reads (kept in each worker)."""

    time: np.ndarray
    event: np.ndarray
    lp_model: np.ndarray
    lp_comparator: np.ndarray
    risk_model: np.ndarray  # risks just below the horizon ``at``
    risk_comparator: np.ndarray
    at: float


def _paired_replicates(d: _Paired, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """ΔC (b,) and the reclassification measures (b, 6) of b paired resamples (case counts)."""
    shape = counts.shape
    delta_c = (concordance_batch(d.time, d.event, np.broadcast_to(d.lp_model, shape), counts)
               - concordance_batch(d.time, d.event, np.broadcast_to(d.lp_comparator, shape), counts))
    return delta_c, reclassification(d.time, d.event, d.risk_model, d.risk_comparator, d.at, counts)


def compare_with(
    spec: StudySpec,
    model: CoxModel,
    comparator: CoxModel,
    cohort: pd.DataFrame,
    *,
    n_boot: int,
    rng: np.random.Generator,
    label: str,
    cohort_label: str = "Development cohort",
    n_jobs: int = 1,
) -> Comparison:
    """Compare ``model`` with the ``comparator`` model on the patients of ``cohort``.

    Notes
    -----
    * ΔC = C(model) - C(comparator) (Harrell's C of each linear predictor); interval: the
      percentiles of ΔC over ``n_boot`` paired bootstrap samples (both scores on the same
      resampled patients; the models are not refitted).
    * ΔAUC(t) just below each horizon: difference of the two IPCW AUCs, SE from the difference of
      their influence functions (censoring weights known): R ``Score(list(model, comparator),
      ..., metrics = "auc", conservative = TRUE)$AUC$contrasts``; Wald interval and P.
    * NRI and IDI at the main horizon just below it (:func:`reclassification`), paired bootstrap
      percentile intervals.
    * The paired bootstrap runs on ``n_jobs`` joblib workers (:func:`.resident.map_replicates`;
      the same numbers).
    """
    a = spec.analysis.alpha
    z = float(stats.norm.ppf(1 - a / 2))
    t = cohort[spec.outcome.time].to_numpy(float).copy()
    e = cohort[spec.outcome.event].to_numpy().astype(int)
    t.flags.writeable = e.flags.writeable = False  # their time order made once (identity caches), also in workers
    X_m, X_c = encode(spec, cohort, model.variables).X, encode(spec, cohort, comparator.variables).X  # once each
    lp_m, lp_c = model.lp(X_m), comparator.lp(X_c)
    u = spec.outcome.horizon
    tb = u * (1 - BELOW_HORIZON)
    r_m, r_c = model.risk(X_m, tb), comparator.risk(X_c, tb)
    counts = draw_bootstrap_counts(len(t), n_boot, rng)
    boot, reps = (map_replicates(_paired_replicates, _Paired(t, e, lp_m, lp_c, r_m, r_c, tb), counts, n_jobs=n_jobs)
                  if n_boot else (np.empty(0), np.empty((0, len(RECLASSIFICATION)))))
    rows = []
    cm, cc = harrell_c(t, e, lp_m, variance=False).estimate, harrell_c(t, e, lp_c, variance=False).estimate
    lo, hi = _percentiles(boot, a)
    rows.append(("c_index", np.nan, cm, cc, cm - cc, float(np.std(boot, ddof=1)) if n_boot > 1 else np.nan, lo, hi,
                 np.nan, "paired bootstrap percentile"))
    for h in spec.outcome.all_horizons:
        am = dynamic_auc(t, e, lp_m, horizon=h, alpha=a)
        ac = dynamic_auc(t, e, lp_c, horizon=h, alpha=a)
        diff = am.estimate - ac.estimate
        se = float(np.std(am.influence - ac.influence, ddof=1) / np.sqrt(len(t)))
        rows.append(("auc", h, am.estimate, ac.estimate, diff, se, diff - z * se, diff + z * se,
                     float(2 * stats.norm.sf(abs(diff / se))) if se > 0 else np.nan, "influence function (Wald)"))
    disc = pd.DataFrame(rows, columns=["measure", "horizon", "model", "comparator", "difference", "se", "ci_low",
                                       "ci_high", "p_value", "method"])
    est = reclassification(t, e, r_m, r_c, tb)[0]
    ci = [_percentiles(reps[:, j], a) for j in range(len(RECLASSIFICATION))]
    recl = pd.DataFrame({"measure": list(RECLASSIFICATION), "estimate": est, "ci_low": [c[0] for c in ci],
                         "ci_high": [c[1] for c in ci], "horizon": u})
    thr = threshold_grid(spec)
    risk_m, risk_c = model.risk(X_m, u), comparator.risk(X_c, u)
    dm = net_benefit(risk_m, t, e, horizon=u, thresholds=thr)
    dc = net_benefit(risk_c, t, e, horizon=u, thresholds=thr)
    dca = pd.DataFrame({"threshold": dm["threshold"], "net_benefit_model": dm["net_benefit_model"],
                        "net_benefit_comparator": dc["net_benefit_model"], "net_benefit_all": dm["net_benefit_all"],
                        "net_benefit_none": dm["net_benefit_none"]})
    return Comparison(label=label, variable=comparator.variables[0], cohort=cohort_label, comparator=comparator,
                      discrimination=disc, reclassification=recl, decision_curve=dca, n_boot=n_boot)
