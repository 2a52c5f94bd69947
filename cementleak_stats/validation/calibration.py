"""Calibration of a Cox model at the horizon: grouped Kaplan-Meier with bootstrap bias correction
(R ``rms::calibrate(cmethod = "KM")``), calibration-in-the-large and slope (Crowson et al.
2016), the IPCW Brier score, and the summary of these with the smooth calibration curve and
ICI/E50/E90 of :mod:`.smooth` (Austin et al. 2020).

Every probability in the returned frames is a **risk of the event** by the horizon,
1 - S(u), not a survival probability (rms reports survival; the conversion is exact:
risk = 1 - survival, optimism changes sign).

Why by hand: rms' calibration has no Python counterpart; lifelines'
``survival_probability_calibration`` fits a different smoother (a parametric spline model,
with a Breslow baseline) and computes, prints and draws in one call; scikit-survival's
``brier_score`` needs its own estimator objects and evaluates G(t) differently at ties.

References
----------
Harrell FE. rms 6.5, ``R/calibrate.cph.s``, ``R/groupkm.s``; Hmisc ``cut2``, ``rcspline.eval``.
Austin PC, Harrell FE, van Klaveren D. Graphical calibration curves and the integrated
calibration index (ICI) for survival models. Stat Med 2020;39:2714-2742.
Crowson CS, Atkinson EJ, Therneau TM. Assessing calibration of prognostic risk scores.
Stat Methods Med Res 2016;25:1692-1706.
Graf E, Schmoor C, Sauerbrei W, Schumacher M. Assessment and comparison of prognostic
classification schemes for survival data. Stat Med 1999;18:2529-2545.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from ..errors import AnalysisError
from ..km import censoring_survival, kaplan_meier
from ..models import compiled
from ..models.cox import CoxModel
from ..models.coxfit import baseline_cumhaz_batch
from ..spec import StudySpec
from . import groupkm
from .resample import CoxData, Progress, bootstrap_optimism, cox_data, cox_fit_fn
from .smooth import SmoothCalibration, calibrate_smooth, rcs_knots  # noqa: F401  (the names callers import from here)

__all__ = [
    "calibrate_km",
    "SmoothCalibration",
    "calibrate_smooth",
    "CalibrationLine",
    "calibration_line",
    "BrierScore",
    "brier_score",
    "calibration_summary",
    "rcs_knots",
]

#: rms ``calibrate.cph``: a replicate (or sample) with fewer events is skipped.
MIN_EVENTS = 5
#: "Just below the horizon": everyone still event-free is censored *at* the horizon, so a
#: Brier score at the horizon itself gives them zero weight (METHODS.md).
BELOW_HORIZON = 1e-6


# --- grouped Kaplan-Meier calibration (rms calibrate, cmethod = "KM") -----------------------
@dataclass(frozen=True)
class _SurvFits:
    """B fits with what predicted survival at u needs: S_i = exp(-H0 exp(x_i'b - centre))."""

    coef: np.ndarray  # (B, p)
    h0: np.ndarray  # (B,) baseline cumulative hazard at u, at the fit's means
    centre: np.ndarray  # (B,) means'b
    ok: np.ndarray

    def survival(self, X: np.ndarray) -> np.ndarray:
        coef = np.nan_to_num(self.coef)
        return np.exp(-self.h0[:, None] * np.exp(coef @ X.T - self.centre[:, None]))


def _fit_with_baseline(data: CoxData, counts: np.ndarray) -> _SurvFits:
    """rms ``calibrate.cph``'s refit: ``cph(surv = TRUE)``, failed below 5 events."""
    fits = cox_fit_fn(data, counts)
    coef = np.nan_to_num(fits.coef)
    h0, means = baseline_cumhaz_batch(data.X, data.time, data.event, coef, counts, t=data.horizon)
    ok = fits.ok & (counts @ data.event >= MIN_EVENTS)
    return _SurvFits(coef=np.where(ok[:, None], fits.coef, np.nan), h0=h0, centre=(means * coef).sum(axis=1), ok=ok)


def _model_surv_fits(data: CoxData, model: CoxModel) -> _SurvFits:
    coef = model.coef[list(data.terms)].to_numpy(float)
    centre = float(model.means[list(data.terms)].to_numpy(float) @ coef)
    return _SurvFits(coef=coef[None], h0=np.array([-np.log(model.baseline_survival())]), centre=np.array([centre]),
                     ok=np.array([True]))


#: rms ``groupkm``: an event within 1e-6 of the horizon counts as at the horizon.
TIME_TOL = 1e-6


def _km_at(w: np.ndarray, time: np.ndarray, event: np.ndarray, u: float) -> tuple[np.ndarray, np.ndarray]:
    """Kaplan-Meier S(u) and Greenwood se of -log S(u) of B weighted samples (weights (B, n))."""
    fit = kaplan_meier(time, event, weights=w)
    return fit.survival_at(u + TIME_TOL)[:, 0, 0], fit.se_log_at(u + TIME_TOL)[:, 0, 0]


def _group_of(surv: np.ndarray, cuts: np.ndarray) -> np.ndarray:
    """Hmisc ``cut2(x, cuts)``: intervals [c_k, c_{k+1}), the last one closed (compiled: the
    same groups, :func:`.groupkm.cut_groups`)."""
    if compiled.ENABLED and surv.ndim == 2:
        return groupkm.cut_groups(surv, cuts)
    return np.clip(np.searchsorted(cuts, surv, side="right") - 1, 0, len(cuts) - 2)


#: the predictions and groups of the last fits measured: the engine measures each batch of fits
#: twice (on its own rows, then on the original rows), with the same predictions
_LAST: list = []


def _grouped(fits: _SurvFits, data: CoxData, cuts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Predicted S(u) of every fit for every row (B, n) and its group (``cuts``), made once per fits."""
    if _LAST and _LAST[0] is fits and _LAST[1] is data and _LAST[2] is cuts:
        return _LAST[3], _LAST[4]
    surv = fits.survival(data.X)
    grp = _group_of(surv, cuts)
    _LAST[:] = [fits, data, cuts, surv, grp]
    return surv, grp


def _groupkm(fits: _SurvFits, data: CoxData, counts: np.ndarray, cuts: np.ndarray) -> dict[str, np.ndarray]:
    """rms ``groupkm`` per group and fit: n, events, mean predicted S(u), KM S(u) and its se."""
    u = data.horizon
    surv, grp = _grouped(fits, data, cuts)
    B, g = len(counts), len(cuts) - 1
    if compiled.ENABLED:  # O(n) per replicate; the same numbers (models/compiled.py)
        km, green, last = groupkm.km_at_cells(data.time, data.event, counts, grp, g, u + TIME_TOL)
        se = np.sqrt(green)
    else:
        fit = kaplan_meier(data.time, data.event, weights=counts, groups=grp, n_groups=g)
        km, se, last = fit.survival_at(u + TIME_TOL)[:, :, 0], fit.se_log_at(u + TIME_TOL)[:, :, 0], fit.last
    cell = (np.arange(B)[:, None] * g + grp).ravel()

    def per_group(values: np.ndarray) -> np.ndarray:
        return np.bincount(cell, values.ravel(), minlength=B * g).reshape(B, g)

    nobs = per_group(counts)
    km = np.where((nobs >= 2) & ~((u > last + TIME_TOL) & (km > 0)), km, np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        pred = per_group(counts * surv) / nobs
    return {"n": nobs, "events": per_group(counts * data.event), "pred": pred, "km": km,
            "se": np.where(np.isfinite(km), se, np.nan)}


def _km_distance(cuts: np.ndarray) -> Callable[..., np.ndarray]:
    """The engine's measure function: KM(u) - mean predicted S(u) per group (NaN below 5 events)."""

    def measure(fits: _SurvFits, data: CoxData, counts: np.ndarray, *, training: bool) -> np.ndarray:
        res = _groupkm(fits, data, counts, cuts)
        dist = res["km"] - res["pred"]  # rms what = "observed-predicted", survival scale
        dist[counts @ data.event < MIN_EVENTS] = np.nan
        return dist

    return measure


def calibrate_km(
    spec: StudySpec,
    model: CoxModel,
    cohort: pd.DataFrame,
    *,
    m: int | None = None,
    n_boot: int,
    rng: np.random.Generator,
    n_jobs: int = 1,
    progress: Progress | None = None,
) -> pd.DataFrame:
    """Grouped calibration at the horizon with bootstrap bias correction, as R
    ``calibrate(cph(..., surv = TRUE, time.inc = u), cmethod = "KM", u = u, m = m, B = n_boot)``.

    Parameters
    ----------
    spec, model, cohort : the study, the fitted model and its rows.
    m : patients per group (default ``analysis.calibration_group_size``); g = floor(n / m)
        groups.  rms' default m = 150 gives a single group for n = 100; report the m used.
    n_boot : bootstrap replicates; rng : random generator; n_jobs, progress : see
        :func:`~.resample.bootstrap_optimism`.

    Returns
    -------
    pandas.DataFrame
        One row per group, from the lowest to the highest predicted risk (rms lists groups by
        increasing predicted *survival*, i.e. the reverse order).  All probabilities are risks
        of the event by the horizon, 1 - S(u):

        ``group``; ``risk_low``, ``risk_high`` (the group's interval of predicted risk);
        ``n``, ``events``; ``predicted`` (mean predicted risk); ``observed`` (1 - Kaplan-Meier
        at u); ``ci_low``, ``ci_high`` (log-scale Greenwood interval of the Kaplan-Meier, level
        1 - ``analysis.alpha``); ``optimism`` (bootstrap mean of the training minus the test
        value of observed - predicted risk); ``corrected`` = observed - optimism;
        ``n_used`` (replicates with this group defined); ``n_boot``; ``n_failed`` (fits that
        failed or had fewer than 5 events, skipped as rms does).

    Notes
    -----
    Predicted survival S_i = S0(u)^exp(lp_i) (Efron baseline at the means).  Cuts: the
    quantiles (R type 7) at 0, 1/g, ..., 1 of c(0, 1, S_1, ..., S_n), duplicates dropped; a
    group is [c_k, c_{k+1}) (Hmisc ``cut2``).  In each replicate the model is refitted on the
    resample (with its own baseline and means), the same cuts are applied to its predictions
    on the resample (training) and on the original rows (test), and the distance KM(u) - mean
    predicted S(u) is computed per group; a group with fewer than 2 patients is undefined.
    optimism_surv = mean(training - test); rms' corrected KM = KM - optimism_surv.  Here, on
    the risk scale, optimism = -optimism_surv and corrected = 1 - corrected KM.

    References
    ----------
    Harrell FE. rms ``calibrate.cph``, ``groupkm``.  Harrell FE, Lee KL, Mark DB. Stat Med
    1996;15:361-387.
    """
    data = cox_data(spec, cohort, model.variables, init=model.coef)
    m = spec.analysis.calibration_group_size if m is None else m
    if m < 2:
        raise ValueError("m (patients per group) must be at least 2")
    apparent = _model_surv_fits(data, model)
    surv = apparent.survival(data.X)[0]
    g = max(1, len(data) // m)
    cuts = np.unique(np.quantile(np.r_[0.0, 1.0, surv], np.linspace(0, 1, g + 1)))
    ones = np.ones((1, len(data)))
    base = _groupkm(apparent, data, ones, cuts)
    if int(data.event.sum()) < MIN_EVENTS:
        raise AnalysisError(f"fewer than {MIN_EVENTS} events: rms calibrate does not estimate calibration")
    res = bootstrap_optimism(_fit_with_baseline, _km_distance(cuts), data, n_boot=n_boot, rng=rng, n_jobs=n_jobs,
                             progress=progress, apparent_fits=apparent)
    z = stats.norm.ppf(1 - spec.analysis.alpha / 2)
    km, se = base["km"][0], base["se"][0]
    opt_surv = res.optimism
    out = pd.DataFrame({
        "group": np.arange(1, len(cuts)),
        "risk_low": 1 - cuts[1:],
        "risk_high": 1 - cuts[:-1],
        "n": base["n"][0].astype(int),
        "events": base["events"][0].astype(int),
        "predicted": 1 - base["pred"][0],
        "observed": 1 - km,
        "ci_low": 1 - np.minimum(1.0, km * np.exp(z * se)),
        "ci_high": 1 - km * np.exp(-z * se),
        "optimism": -opt_surv,
        "corrected": 1 - (km - opt_surv),
        "n_used": res.n_used,
        "n_boot": res.n_boot,
        "n_failed": res.n_failed,
    })
    out = out.iloc[::-1].reset_index(drop=True)
    out["group"] = np.arange(1, len(out) + 1)
    return out


# --- calibration-in-the-large and slope (Crowson et al. 2016) -------------------------------
@dataclass(frozen=True)
class CalibrationLine:
    """Calibration intercept and slope up to the horizon (Poisson approach of Crowson et al.).

    Attributes
    ----------
    intercept : log(O / E), calibration-in-the-large (0 = ideal).
    o_e_ratio : O / E.
    slope : calibration slope (1 = ideal; < 1 = predictions too extreme).
    slope_intercept : intercept of the slope model.
    observed, expected : O and E, total events and total expected events by the horizon.
    slope_se : Wald standard error of the slope (Poisson model information).
    n_zero_expected : patients with E_i = 0 (censored before the first event time), left out
        of the slope fit, where they contribute nothing.
    """

    intercept: float
    o_e_ratio: float
    slope: float
    slope_intercept: float
    observed: float
    expected: float
    horizon: float
    n_zero_expected: int = 0
    slope_se: float = float("nan")


def calibration_line(spec: StudySpec, model: CoxModel, cohort: pd.DataFrame) -> CalibrationLine:
    """Calibration-in-the-large and calibration slope of the model up to the horizon.

    Notes
    -----
    With follow-up truncated at u, O_i = 1 if patient i has the event by u, and the expected
    count E_i = H0(min(T_i, u)) exp(lp_i) (Efron baseline at the means).  Poisson models
    (R ``glm(family = poisson)``): O ~ 1 + offset(log E) gives the intercept
    alpha = log(sum O / sum E); O ~ lp + offset(log E - lp) gives the slope.  In the
    development data the slope need not be exactly 1 (a Poisson, not the Cox, likelihood).

    A patient censored before the first event time has E_i = 0 (and then O_i = 0): its Poisson
    log-likelihood term O log E - E is 0 whatever the coefficients, so it is left out of the
    fits, as R ``glm(..., subset = E > 0)``; sum O / sum E is unchanged by it.

    References
    ----------
    Crowson CS, Atkinson EJ, Therneau TM. Stat Methods Med Res 2016;25:1692-1706.
    """
    # the GLM module, not statsmodels.api (~0.5 s more to import, issue 16)
    from statsmodels.genmod.families import Poisson
    from statsmodels.genmod.generalized_linear_model import GLM

    data = cox_data(spec, cohort, model.variables)
    u = model.horizon
    lp = model.lp(pd.DataFrame(data.X, columns=list(data.terms)))
    bt, bh = model.baseline["time"].to_numpy(float), model.baseline["cumhaz"].to_numpy(float)
    upto = np.searchsorted(bt, np.minimum(data.time, u), side="right")  # step function, 0 before the first step
    h = np.where(upto > 0, bh[np.maximum(upto - 1, 0)], 0.0)
    expected = h * np.exp(lp)
    obs = data.event * (data.time <= u)
    if obs.sum() == 0:
        raise AnalysisError(f"no event before the horizon ({u:g}): no calibration intercept or slope")
    fit = expected > 0  # E_i = 0 only when censored before the first event time (then O_i = 0)
    alpha = float(np.log(obs.sum() / expected.sum()))
    design = np.column_stack([np.ones(int(fit.sum())), lp[fit]])  # sm.add_constant(lp, has_constant="add")
    glm = GLM(obs[fit], design, family=Poisson(), offset=np.log(expected[fit]) - lp[fit]).fit(tol=1e-12)
    return CalibrationLine(intercept=alpha, o_e_ratio=float(np.exp(alpha)), slope=float(glm.params[1]),
                           slope_intercept=float(glm.params[0]), observed=float(obs.sum()),
                           expected=float(expected.sum()), horizon=u, n_zero_expected=int((~fit).sum()),
                           slope_se=float(glm.bse[1]))


# --- Brier score (IPCW) ----------------------------------------------------------------------
@dataclass(frozen=True)
class BrierScore:
    """Brier score at t with inverse probability of censoring weights.

    ``brier`` of the model, ``brier_null`` of the Kaplan-Meier (no covariates),
    ``scaled`` = 1 - brier / brier_null (index of prediction accuracy), ``t``.
    """

    t: float
    brier: float
    brier_null: float
    scaled: float


def brier_score(spec: StudySpec, model: CoxModel, cohort: pd.DataFrame, *, t: float | None = None) -> BrierScore:
    """IPCW Brier score of the predicted risk at t (default just below the horizon).

    Notes
    -----
    With F_i(t) = 1 - S_i(t) and G the reverse Kaplan-Meier of the censoring times
    (:func:`~cementleak_stats.km.censoring_survival`),
    BS(t) = (1/n) sum_i [ (1 - F_i)^2 1(T_i <= t, event) / G(T_i-) + F_i^2 1(T_i > t) / G(t) ]
    (patients censored before t contribute 0).  Default t = u (1 - 1e-6): at u itself every
    patient still event-free is censored *at* u and gets no weight (METHODS.md).  The null
    model predicts 1 - KM(t) for everyone.  Equals R ``riskRegression::Score(..., metrics =
    "brier", cens.model = "km")``.

    References
    ----------
    Graf E, Schmoor C, Sauerbrei W, Schumacher M. Stat Med 1999;18:2529-2545.
    """
    data = cox_data(spec, cohort, model.variables)
    t = model.horizon * (1 - BELOW_HORIZON) if t is None else float(t)
    risk = model.risk(pd.DataFrame(data.X, columns=list(data.terms)), t)
    time, ev = data.time, data.event
    case = (time <= t) & (ev == 1)
    alive = time > t
    with np.errstate(invalid="ignore", divide="ignore"):
        w = np.where(case, 1 / censoring_survival(time, ev, time, left=True), 0.0)
        w = np.where(alive, 1 / censoring_survival(time, ev, t, left=False)[0], w)
    km_t = _km_at(np.ones((1, len(time))), time, ev, t)[0][0]

    def bs(f: np.ndarray) -> float:
        return float(np.mean(w * np.where(case, (1 - f) ** 2, f**2)))

    b, b0 = bs(risk), bs(np.full(len(time), 1 - km_t))
    return BrierScore(t=t, brier=b, brier_null=b0, scaled=1 - b / b0)


def calibration_summary(spec: StudySpec, model: CoxModel, cohort: pd.DataFrame) -> pd.DataFrame:
    """The calibration measures in one tidy frame: ``measure``, ``value``, ``ideal``, ``description``.

    ICI, E50, E90, Emax (:func:`calibrate_smooth`), calibration-in-the-large, O/E, slope
    (:func:`calibration_line`), Brier score, null-model Brier score and scaled Brier
    (:func:`brier_score`).  Apparent values (on the data the model was fitted on).
    """
    sm_ = calibrate_smooth(spec, model, cohort)
    line = calibration_line(spec, model, cohort)
    br = brier_score(spec, model, cohort)
    u = f"{model.horizon:g} {spec.outcome.time_unit}"
    rows = [
        ("ici", sm_.ici, 0.0, f"Integrated calibration index: mean |smoothed observed - predicted| risk by {u}"),
        ("e50", sm_.e50, 0.0, "Median |smoothed observed - predicted| risk"),
        ("e90", sm_.e90, 0.0, "90th percentile of |smoothed observed - predicted| risk"),
        ("emax", sm_.emax, 0.0, "Maximum |smoothed observed - predicted| risk"),
        ("calibration_intercept", line.intercept, 0.0, f"Calibration-in-the-large log(O/E) by {u} (Poisson)"),
        ("o_e_ratio", line.o_e_ratio, 1.0, f"Observed / expected events by {u}"),
        ("calibration_slope", line.slope, 1.0, f"Calibration slope by {u} (Poisson, Crowson et al. 2016)"),
        ("brier", br.brier, 0.0, f"IPCW Brier score just below {u}"),
        ("brier_null", br.brier_null, np.nan, "Brier score of the Kaplan-Meier (no predictors)"),
        ("scaled_brier", br.scaled, 1.0, "1 - Brier / null Brier (index of prediction accuracy)"),
    ]
    return pd.DataFrame(rows, columns=["measure", "value", "ideal", "description"])
