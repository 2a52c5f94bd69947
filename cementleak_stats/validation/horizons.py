"""Performance of a Cox model at several horizons (``outcome.horizons``), with an interval for
every number: time-dependent ROC curves and AUC, Brier score, integrated Brier score (IBS) and
the index of prediction accuracy (IPA), and calibration (Kaplan-Meier groups, smooth curve,
ICI/E50/E90, calibration slope) at each horizon — as R ``riskRegression::Score`` and
``rms::calibrate`` give them, for the development cohort (calibration bootstrap-corrected) or
for a validation cohort (the frozen model, apparent).

Every measure reuses the package's one implementation of it: the AUC and its
influence-function interval (:func:`.discrimination.dynamic_auc`), the censoring weights
(:func:`cementleak_stats.km.censoring_survival`, prodlim's reverse Kaplan-Meier), the
Kaplan-Meier groups with bootstrap correction (:func:`.calibration.calibrate_km`), the smooth
curve (:func:`.calibration.calibrate_smooth`) and the Poisson calibration line
(:func:`.calibration.calibration_line`), each evaluated with the model and the study moved to
the horizon.  What is new here is the Brier score *with its influence function*, which gives
the intervals of the Brier score, of the IPA and of the IBS (:mod:`.brier`; ``brier_score`` in
:mod:`.calibration` gives the point values only, and the IBS needs the Brier score on a grid of
times at once), and the ROC curve's points.

Every probability is a risk of the event by the horizon, 1 - S(t).  The AUC and the Brier
scores are evaluated just below each horizon (METHODS.md, "traps": everyone still event-free
may be censored exactly at a horizon that is the end of follow-up).

References
----------
Graf E, Schmoor C, Sauerbrei W, Schumacher M. Assessment and comparison of prognostic
classification schemes for survival data. Stat Med 1999;18:2529-2545 (Brier score, IBS).
Kattan MW, Gerds TA. The index of prediction accuracy: an intuitive measure useful for
evaluating risk prediction models. Diagn Progn Res 2018;2:7.
Blanche P, Kattan MW, Gerds TA. The c-index is not proper for the evaluation of t-year
predicted risks. Biostatistics 2019;20:347-357 (time-dependent AUC, ROC).
Gerds TA, Kattan MW. Medical Risk Prediction Models: With Ties to Machine Learning. CRC 2021
(riskRegression ``Score``: IPCW estimates and their influence functions).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
from scipy import stats

from ..design import encode
from ..errors import AnalysisError
from ..km import censoring_survival
from ..models.cox import CoxModel
from ..spec import StudySpec
from .brier import IBS_GRID_MAX, CoxRisk, se_of, ibs_grid, integrated_brier, ipcw_brier
from .calibration import BELOW_HORIZON, calibrate_km, calibrate_smooth, calibration_line
from .discrimination import dynamic_auc

__all__ = ["HorizonPerformance", "performance_at_horizons", "roc_curve", "check_risks", "at_horizon"]



def at_horizon(spec: StudySpec, model: CoxModel, h: float) -> tuple[StudySpec, CoxModel]:
    """The study and the model with ``h`` as their horizon (for the calibration functions, which
    work at ``spec.outcome.horizon`` / ``model.horizon``); nothing is refitted."""
    return (spec.model_copy(update={"outcome": spec.outcome.model_copy(update={"horizon": float(h)})}),
            replace(model, horizon=float(h)))


def check_risks(risk: np.ndarray, *, what: str) -> np.ndarray:
    """``risk`` if every value is a probability in [0, 1], else AnalysisError saying where.

    A predicted survival outside [0, 1] (a score read from a file, a baseline survival that is
    not a probability) would give meaningless Brier scores and calibration; it is refused with
    the number of patients affected and the worst value, never clipped."""
    r = np.asarray(risk, float)
    bad = ~np.isfinite(r) | (r < 0) | (r > 1)
    if bad.any():
        worst = r[bad][np.argmax(np.abs(np.nan_to_num(r[bad], nan=np.inf) - 0.5))]
        raise AnalysisError(f"{what}: {int(bad.sum())} predicted risk(s) are not probabilities in [0, 1] (e.g. "
                            f"{worst:g}; predicted survival {1 - worst:g}); check the model's baseline survival and "
                            "the score's direction and scale")
    return r


def roc_curve(time: np.ndarray, event: np.ndarray, risk: np.ndarray, h: float) -> pd.DataFrame:
    """Cumulative/dynamic ROC curve just below h (IPCW), one point per distinct predicted risk.

    Cases: the event before h, weighted 1/G(T_i-); controls: event-free at h, equal weights (as
    :func:`.discrimination.dynamic_auc`).  At cut-off c (a patient is positive when risk >= c):
    TPR(c) = sum_cases w_i 1(risk_i >= c) / sum_cases w_i, FPR(c) = share of controls with
    risk >= c.  Columns ``cutoff``, ``fpr``, ``tpr``, from (0, 0) (cut-off above every risk:
    NaN) to (1, 1); the trapezoid area under it is the AUC (ties count 1/2).  As R
    ``riskRegression::Score(..., plots = "ROC")$ROC$plotframe``.
    """
    time = np.asarray(time, float)
    ev = np.asarray(event).astype(bool)
    risk = np.asarray(risk, float)
    case, control = ev & (time < h), time >= h
    w = 1.0 / censoring_survival(time, ev, time[case], left=True)
    cuts = np.unique(risk)[::-1]  # decreasing cut-offs: the curve runs from (0, 0) to (1, 1)
    order = np.argsort(-risk[case], kind="stable")
    w_cum = np.r_[0.0, np.cumsum(w[order])]
    n_pos = np.searchsorted(-risk[case][order], -cuts, side="right")  # cases with risk >= c
    tpr = w_cum[n_pos] / w_cum[-1]
    controls = np.sort(risk[control])
    fpr = (len(controls) - np.searchsorted(controls, cuts, side="left")) / len(controls)
    return pd.DataFrame({"cutoff": np.r_[np.nan, cuts], "fpr": np.r_[0.0, fpr], "tpr": np.r_[0.0, tpr]})


@dataclass(frozen=True)
class HorizonPerformance:
    """Performance of a model in one cohort at every horizon of the study.

    Attributes
    ----------
    horizons : the horizons, the main one first.
    measures : one row per horizon and measure: ``horizon``, ``measure`` (``auc``, ``brier``,
        ``brier_null``, ``ipa``, ``ibs``, ``ibs_null``, ``ici``, ``e50``, ``e90``,
        ``calibration_slope``, ``o_e``), ``label``, ``estimate``, ``se``, ``ci_low``,
        ``ci_high`` (Wald, from the influence function; empty for the calibration measures but
        the slope).
    roc : ``horizon``, ``cutoff``, ``fpr``, ``tpr``: the ROC curve at each horizon.
    groups : Kaplan-Meier calibration groups per horizon (``horizon`` and the columns of
        :func:`.calibration.calibrate_km`; bootstrap-corrected in the development cohort,
        up to ``ci_high`` only when apparent).
    smooth : ``horizon``, ``predicted``, ``observed``: the smooth calibration curve per horizon.
    risks : per patient (row order) ``row`` and the predicted risk by each horizon, one column
        ``risk_<h>`` each.
    baseline_survival : ``horizon``, ``s0``: the model's baseline survival there (at the means).
    n_failed : bootstrap refits of the calibration that failed, per horizon (``horizon``,
        ``n_failed``, ``n_boot``).
    notes : how the numbers were obtained.
    """

    horizons: tuple[float, ...]
    measures: pd.DataFrame
    roc: pd.DataFrame
    groups: pd.DataFrame
    smooth: pd.DataFrame
    risks: pd.DataFrame
    baseline_survival: pd.DataFrame
    notes: tuple[str, ...]

    def value(self, horizon: float, measure: str, column: str = "estimate") -> float:
        m = self.measures
        hit = m.loc[(m["horizon"] == horizon) & (m["measure"] == measure), column]
        if not len(hit):
            raise KeyError((horizon, measure))
        return float(hit.iloc[0])


def risk_column(h: float) -> str:
    """Name of the column of :attr:`HorizonPerformance.risks` with the risks by h."""
    return f"risk_{h:g}"


def performance_at_horizons(
    spec: StudySpec,
    model: CoxModel,
    cohort: pd.DataFrame,
    *,
    n_boot: int = 0,
    rng: np.random.Generator | None = None,
    m: int | None = None,
    main_groups: pd.DataFrame | None = None,
    what: str = "the development cohort",
    n_jobs: int = 1,
) -> HorizonPerformance:
    """AUC, Brier, IPA, IBS (with 95% CIs) and calibration of ``model`` in ``cohort`` at every
    horizon of ``spec.outcome.all_horizons``.

    Parameters
    ----------
    spec, model, cohort : the study, the (frozen) model and the patients to assess it on.
    n_boot, rng : bootstrap replicates of the Kaplan-Meier calibration (0 = apparent only, the
        right choice in a validation cohort, which was not used to fit the model).
    m : patients per calibration group (default ``analysis.calibration_group_size``).
    main_groups : the calibration groups already computed at the main horizon (the study's
        ``calibration.groups``), reused instead of a second bootstrap.
    what : how messages name the cohort.
    n_jobs : joblib workers for the calibration bootstraps (the numbers do not depend on it).

    Notes
    -----
    At horizon h, with risk_i(t) = 1 - S0(t)^exp(lp_i) from the model's Efron baseline:

    * AUC just below h with its influence-function CI (:func:`.discrimination.dynamic_auc`;
      R ``Score(..., metrics = "auc", conservative = TRUE)``);
    * Brier score just below h and of the null model (:func:`ipcw_brier`), IPA = 1 - BS/BS0
      with the delta-method influence function IF_IPA = -(IF_BS - IPA' IF_BS0) / BS0 where
      IPA' = BS/BS0, i.e. -(IF_BS BS0 - BS IF_BS0) / BS0^2;
    * IBS over [0, h) on the grid :func:`ibs_grid` (:func:`integrated_brier`);
    * calibration: :func:`.calibration.calibrate_km`, :func:`.calibration.calibrate_smooth` and
      :func:`.calibration.calibration_line` with the horizon moved to h.

    Intervals are estimate -/+ z SE (the AUC's clipped to [0, 1]); the Brier, IPA and IBS
    intervals take the censoring weights as known (riskRegression's ``conservative = TRUE``)
    and the predictions as fixed: they are the sampling error of the measure in this cohort,
    not of the model's fit (apparent performance in the development cohort).
    """
    horizons = spec.outcome.all_horizons
    alpha = spec.analysis.alpha
    z = float(stats.norm.ppf(1 - alpha / 2))
    time = cohort[spec.outcome.time].to_numpy(float)
    event = cohort[spec.outcome.event].to_numpy().astype(int)
    lp = model.lp(encode(spec, cohort, model.variables).X)
    unit = spec.outcome.time_unit

    risk_at = CoxRisk(model.baseline_survival, np.exp(lp))

    rows, rocs, groups, smooths = [], [], [], []
    risks = {"row": np.arange(len(cohort))}
    s0 = []
    for k, h in enumerate(horizons):
        where = f"{what}, horizon {h:g} {unit}"
        risk = check_risks(risk_at(h), what=where)
        risks[risk_column(h)] = risk
        s0.append(model.baseline_survival(h))
        tb = h * (1 - BELOW_HORIZON)
        auc = dynamic_auc(time, event, lp, horizon=h, alpha=alpha)
        br = ipcw_brier(time, event, risk_at(tb), tb)
        ipa = 1.0 - br.brier / br.brier_null
        if_ipa = -(br.influence * br.brier_null - br.brier * br.influence_null) / br.brier_null**2
        grid = ibs_grid(time, event, h)
        ibs, ibs0, if_ibs, if_ibs0 = integrated_brier(time, event, risk_at, grid)
        spec_h, model_h = at_horizon(spec, model, h)
        line = calibration_line(spec_h, model_h, cohort)
        smooth = calibrate_smooth(spec_h, model_h, cohort)
        w = f"{h:g} {unit}"

        def row(measure: str, label: str, est: float, se: float = np.nan, lo: float | None = None,
                hi: float | None = None) -> None:
            rows.append((h, measure, label, est, se, est - z * se if lo is None else lo, est + z * se if hi is None else hi))

        row("auc", f"Time-dependent AUC just before {w}", auc.estimate, auc.se, auc.ci_low, auc.ci_high)
        row("brier", f"Brier score just before {w}", br.brier, se_of(br.influence))
        row("brier_null", f"Brier score of the null model (Kaplan-Meier) just before {w}", br.brier_null,
            se_of(br.influence_null))
        row("ipa", f"Index of prediction accuracy (IPA) just before {w}", ipa, se_of(if_ipa))
        row("ibs", f"Integrated Brier score up to {w}", ibs, se_of(if_ibs))
        row("ibs_null", f"Integrated Brier score of the null model up to {w}", ibs0, se_of(if_ibs0))
        row("calibration_slope", f"Calibration slope by {w} (Poisson)", line.slope, line.slope_se)
        row("o_e", f"Observed / expected events by {w} (Poisson)", line.o_e_ratio, np.nan, np.nan, np.nan)
        for name, value in (("ici", smooth.ici), ("e50", smooth.e50), ("e90", smooth.e90)):
            row(name, {"ici": f"Integrated calibration index (ICI) by {w}", "e50": f"E50 by {w}",
                       "e90": f"E90 by {w}"}[name], value, np.nan, np.nan, np.nan)
        rocs.append(roc_curve(time, event, risk_at(tb), h).assign(horizon=h))
        if k == 0 and main_groups is not None:
            g = main_groups
        elif rng is not None and n_boot > 0:
            g = calibrate_km(spec_h, model_h, cohort, m=m, n_boot=n_boot, rng=rng, n_jobs=n_jobs)
        else:  # apparent only (a validation cohort): the groups without the bootstrap columns
            g = calibrate_km(spec_h, model_h, cohort, m=m, n_boot=0, rng=np.random.default_rng(0))
            g = g.loc[:, :"ci_high"]
        groups.append(g.assign(horizon=h))
        smooths.append(smooth.curve.assign(horizon=h))
    measures = pd.DataFrame(rows, columns=["horizon", "measure", "label", "estimate", "se", "ci_low", "ci_high"])

    def first(frame: pd.DataFrame) -> pd.DataFrame:
        return frame[["horizon", *[c for c in frame.columns if c != "horizon"]]].reset_index(drop=True)

    notes = (
        "Time-dependent AUC and Brier scores just below each horizon, with inverse probability of censoring weights "
        "(Kaplan-Meier of the censoring times); intervals from their influence functions with the weights taken as "
        "known (riskRegression's conservative = TRUE).",
        "IPA = 1 - Brier / Brier of the null model (Kattan & Gerds 2018): 0 = no better than the overall Kaplan-Meier "
        "risk, 1 = perfect; its interval by the delta method.",
        "Integrated Brier score: the Brier score averaged over time from 0 to just below each horizon, as a step "
        f"function on the event times (at most {IBS_GRID_MAX}), as riskRegression's summary = \"ibs\".",
    )
    return HorizonPerformance(
        horizons=tuple(horizons), measures=measures, roc=first(pd.concat(rocs, ignore_index=True)),
        groups=first(pd.concat(groups, ignore_index=True)), smooth=first(pd.concat(smooths, ignore_index=True)),
        risks=pd.DataFrame(risks), baseline_survival=pd.DataFrame({"horizon": list(horizons), "s0": s0}), notes=notes,
    )
