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
the intervals of the Brier score, of the IPA and of the IBS (``brier_score`` in
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

import math
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
from scipy import stats

from ..design import encode
from ..errors import AnalysisError
from ..km import KaplanMeier, censoring_survival, kaplan_meier
from ..models import compiled
from ..models.compiled import frozen, jit
from ..models.cox import CoxModel
from ..spec import StudySpec
from .calibration import BELOW_HORIZON, calibrate_km, calibrate_smooth, calibration_line
from .discrimination import dynamic_auc

__all__ = ["HorizonPerformance", "performance_at_horizons", "ipcw_brier", "integrated_brier", "roc_curve",
           "check_risks", "at_horizon", "IBS_GRID_MAX"]

#: the IBS grid: the distinct event times below the horizon, thinned to at most this many
IBS_GRID_MAX = 200


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


@dataclass(frozen=True)
class BrierResult:
    """IPCW Brier score at t with its influence function (censoring weights taken as known)."""

    t: float
    brier: float
    brier_null: float
    influence: np.ndarray  # (n,) IF of the model's Brier score
    influence_null: np.ndarray  # (n,) IF of the null model's Brier score


def ipcw_brier(time: np.ndarray, event: np.ndarray, risk: np.ndarray, t: float, *,
               fits: tuple[KaplanMeier, KaplanMeier] | None = None, g_left: np.ndarray | None = None) -> BrierResult:
    """IPCW Brier score of predicted risks at t, and of the null (Kaplan-Meier) model.

    ``fits``: the censoring (reverse) and the ordinary Kaplan-Meier of (time, event), when the
    caller evaluates many times t on the same cohort (:func:`integrated_brier`); default made here.
    ``g_left``: G(T_i-) of every patient from that censoring fit, likewise (read, not recomputed).

    Notes
    -----
    With G the reverse Kaplan-Meier of censoring (prodlim's tie rule), residual
    r_i = (1 - F_i)^2 / G(T_i-) for an event by t (T_i <= t), F_i^2 / G(t) for a patient still
    event-free (T_i > t), 0 for one censored before t; BS = mean(r_i).  The null model predicts
    F = 1 - KM(t) for everyone.  The influence function with the weights taken as known is
    IF_i = r_i - BS, and SE = sd(IF) / sqrt(n): R ``riskRegression::Score(..., metrics =
    "brier", cens.model = "km", conservative = TRUE)``.
    """
    time = np.asarray(time, float)
    ev = np.asarray(event).astype(bool)
    risk = np.asarray(risk, float)
    case = (time <= t) & ev
    alive = time > t
    cens, km = (kaplan_meier(time, ev, reverse=True), kaplan_meier(time, ev)) if fits is None else fits
    g_case = (cens.survival_at(time[case], left=True)[0, 0] if g_left is None  # as censoring_survival
              else g_left[case])
    g_t = float(cens.survival_at(t, left=False)[0, 0][0])
    w = np.zeros(len(time))
    w[case] = 1.0 / g_case
    w[alive] = 1.0 / g_t
    f0 = 1.0 - float(km.survival_at(t)[0, 0, 0])

    def residuals(f: np.ndarray | float) -> np.ndarray:
        return w * np.where(case, (1.0 - f) ** 2, np.where(alive, np.square(f), 0.0))

    r, r0 = residuals(risk), residuals(f0)
    return BrierResult(t=float(t), brier=float(r.mean()), brier_null=float(r0.mean()), influence=r - r.mean(),
                       influence_null=r0 - r0.mean())


def _se(influence: np.ndarray) -> float:
    return float(np.std(influence, ddof=1) / np.sqrt(len(influence)))


def ibs_grid(time: np.ndarray, event: np.ndarray, h: float) -> np.ndarray:
    """Times of the integrated Brier score up to h: the distinct event times below h (at most
    :data:`IBS_GRID_MAX`, evenly thinned), then h just below itself as the upper limit."""
    t = np.unique(np.asarray(time, float)[(np.asarray(event) == 1) & (np.asarray(time, float) < h)])
    if len(t) > IBS_GRID_MAX:
        t = t[np.unique(np.round(np.linspace(0, len(t) - 1, IBS_GRID_MAX)).astype(int))]
    upper = h * (1 - BELOW_HORIZON)
    return np.r_[t[t < upper], upper]


@dataclass(frozen=True)
class CoxRisk:
    """A Cox model's predicted risks as a function of time: ``risk(t)`` = 1 - S0(t)^exp(lp_i)
    for every patient (``elp`` = exp(lp), ``s0`` the baseline survival function)."""

    s0: Callable[[float], float]
    elp: np.ndarray

    def __call__(self, t: float) -> np.ndarray:
        return 1.0 - self.s0(t) ** self.elp


def _ibs_rows(time: np.ndarray, case: np.ndarray, g_left: np.ndarray, elp: np.ndarray, tk: np.ndarray,
              ls: np.ndarray, wg: np.ndarray, wk: np.ndarray, acc: np.ndarray) -> None:  # pragma: no cover - compiled below
    """acc_i = sum_k w_k r_ik of every patient for Cox risks (:func:`integrated_brier`): at t_k
    (``tk``, increasing) a patient still at risk (T_i > t_k) has r = (1 - S0(t_k)^e_i)^2 / G(t_k),
    one with the event by t_k (T_i <= t_k, ``case``) r = (S0(t_k)^e_i)^2 / G(T_i-), one censored
    before t_k r = 0; ``ls`` = log S0(t_k), ``wg`` = w_k / G(t_k), ``wk`` = w_k."""
    K = tk.size
    for i in range(time.size):
        e = elp[i]
        a = np.searchsorted(tk, time[i])  # the grid times before T_i: still at risk there
        s = 0.0
        for k in range(a):
            f = 1.0 - math.exp(e * ls[k])
            s += wg[k] * f * f
        if case[i]:
            c = 0.0
            for k in range(a, K):
                q = math.exp(e * ls[k])
                c += wk[k] * q * q
            s += c / g_left[i]
        acc[i] = s


def integrated_brier(time: np.ndarray, event: np.ndarray, risk_at, grid: np.ndarray) -> tuple[float, float, np.ndarray, np.ndarray]:
    """Integrated Brier score over [0, grid[-1]] of the model and of the null model, and their IFs.

    ``risk_at(t)`` gives every patient's predicted risk by t.  As riskRegression's
    ``Score(..., summary = "ibs")``: IBS = (1 / t_K) sum_{k < K} BS(t_k) (t_{k+1} - t_k) with
    t_0 = 0 and BS(0) = 0 (a left-continuous step function on the ``times`` grid t_1 < ... <
    t_K); its influence function is the same weighted sum of the Brier scores' influence
    functions.
    """
    widths = np.diff(grid) / grid[-1]
    ibs = ibs0 = 0.0
    inf = np.zeros(len(time))
    inf0 = np.zeros(len(time))
    ev = np.asarray(event).astype(bool)
    fits = (kaplan_meier(time, ev, reverse=True), kaplan_meier(time, ev))  # once for the whole grid
    g_left = fits[0].survival_at(np.asarray(time, float), left=True)[0, 0]
    if isinstance(risk_at, CoxRisk) and compiled.ENABLED:
        return _integrated_brier_cox(np.asarray(time, float), ev, risk_at, grid[:-1], widths, fits, g_left)
    for tk, wk in zip(grid[:-1], widths):
        b = ipcw_brier(time, event, risk_at(tk), tk, fits=fits, g_left=g_left)
        ibs += wk * b.brier
        ibs0 += wk * b.brier_null
        inf += wk * b.influence
        inf0 += wk * b.influence_null
    return ibs, ibs0, inf, inf0


def _integrated_brier_cox(time: np.ndarray, ev: np.ndarray, risk: CoxRisk, tk: np.ndarray, wk: np.ndarray,
                          fits: tuple[KaplanMeier, KaplanMeier], g_left: np.ndarray) -> tuple[float, float, np.ndarray, np.ndarray]:
    """:func:`integrated_brier` of Cox risks, patient by patient: the same sums in another order
    (each patient's weighted residuals over the grid, then their mean), equal to rounding.

    Why: the grid loop makes a dozen passes over n patients per grid time (about 40 ms at
    n = 10^6, 9 s per horizon for 200 times); here each patient's times are one compiled loop of
    one exp each, and the null model's residuals, which depend on the patient only through
    T_i, event and G(T_i-), are prefix and suffix sums over the grid."""
    g_t = fits[0].survival_at(tk, left=False)[0, 0]
    km = fits[1].survival_at(tk)[0, 0]
    with np.errstate(divide="ignore"):
        ls = np.log(np.array([risk.s0(t) for t in tk], float))
        wg = wk / g_t
    acc = np.empty(len(time))
    jit(_ibs_rows)(frozen(time, np.float64), frozen(ev, np.bool_), frozen(g_left, np.float64),
                   frozen(risk.elp, np.float64), frozen(tk, np.float64), frozen(ls, np.float64),
                   frozen(wg, np.float64), frozen(wk, np.float64), acc)
    # the null model predicts 1 - KM(t_k) for everyone: at risk (1 - KM)^2 / G(t_k), event KM^2 / G(T_i-)
    alive0 = np.r_[0.0, np.cumsum(wg * (1.0 - km) ** 2)]  # sum over k < a
    case0 = np.r_[np.cumsum((wk * km**2)[::-1])[::-1], 0.0]  # sum over k >= a
    a = np.searchsorted(tk, time)
    with np.errstate(divide="ignore", invalid="ignore"):
        acc0 = alive0[a] + np.where(ev, case0[a] / g_left, 0.0)
    ibs, ibs0 = float(acc.mean()), float(acc0.mean())
    return ibs, ibs0, acc - ibs, acc0 - ibs0


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
        row("brier", f"Brier score just before {w}", br.brier, _se(br.influence))
        row("brier_null", f"Brier score of the null model (Kaplan-Meier) just before {w}", br.brier_null,
            _se(br.influence_null))
        row("ipa", f"Index of prediction accuracy (IPA) just before {w}", ipa, _se(if_ipa))
        row("ibs", f"Integrated Brier score up to {w}", ibs, _se(if_ibs))
        row("ibs_null", f"Integrated Brier score of the null model up to {w}", ibs0, _se(if_ibs0))
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
