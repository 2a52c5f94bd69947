"""Smooth calibration at the horizon (Austin, Harrell & van Klaveren 2020): a Cox model on a
restricted cubic spline of log(-log S(u)), with ICI, E50, E90 and Emax.  Split from
:mod:`.calibration` (issue 12), whose summary table uses it.

Why by hand: rms' smooth method (``cmethod = "hare"``) uses ``polspline::hare``, which has no
Python port; lifelines' ``survival_probability_calibration`` fits a different smoother with a
Breslow baseline.  The knots follow Hmisc ``rcspline.eval``.

References
----------
Austin PC, Harrell FE, van Klaveren D. Graphical calibration curves and the integrated
calibration index (ICI) for survival models. Stat Med 2020;39:2714-2742.
Harrell FE. Hmisc ``rcspline.eval``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import AnalysisError
from ..models.cox import CoxModel
from ..models.coxfit import fit_cox
from ..spec import StudySpec
from .resample import cox_data

__all__ = ["rcs_knots", "SmoothCalibration", "calibrate_smooth"]


def rcs_knots(x: np.ndarray, nk: int = 3) -> np.ndarray:
    """Default knots of a restricted cubic spline, as Hmisc ``rcspline.eval(x, nk)``.

    Quantiles (type 7) at 0.10, 0.50, 0.90 for 3 knots (0.05 ... 0.95 for 4-6, 0.025 ...
    0.975 for 7+); with fewer than 100 values the outer knots move to the 5th smallest and
    largest; a value tied in at least 5% of the data at either end becomes a knot next to
    the extreme (``fractied = 0.05``); few distinct values give the interior values.
    """
    xx = np.asarray(x, dtype=float)
    xx = xx[np.isfinite(xx)]
    n = xx.size
    if n < 6 or nk < 3:
        raise ValueError("rcs_knots needs at least 6 values and nk >= 3")
    xu = np.unique(xx)
    if xu.size - 2 <= nk:
        return xu[1:-1]
    outer = 0.025 if nk > 6 else (0.05 if nk > 3 else 0.1)
    first: list[float] = []
    last: list[float] = []
    nke = nk
    over_first = over_last = False
    vals, freq = np.unique(xx, return_counts=True)
    f = freq / n
    if f[1:-1].max(initial=0.0) < 0.05:
        if f[0] >= 0.05:
            first = [float(xx[xx > xx.min()].min())]
            xx = xx[xx > first[0]]
            nke -= 1
            over_first = True
        if f[-1] >= 0.05:
            last = [float(xx[xx < xx.max()].max())]
            xx = xx[xx < last[0]]
            nke -= 1
            over_last = True
    if nke == 1:
        knots = np.array([np.median(xx)])
    elif np.unique(xx).size <= nke:
        knots = np.unique(xx)
    else:
        p = np.linspace(0.5, 1 - outer, nke) if nke == 2 else np.linspace(outer, 1 - outer, nke)
        knots = np.quantile(xx, p)
        if np.unique(knots).size < min(nke, 3):
            raise AnalysisError("could not place spline knots: too few distinct predicted risks")
        if xx.size < 100:
            xs = np.sort(xx)
            if not over_first:
                knots[0] = xs[4]
            if not over_last:
                knots[-1] = xs[-5]
    return np.unique(np.r_[first, knots, last])


def _rcs_basis(x: np.ndarray, knots: np.ndarray) -> np.ndarray:
    """x and the nk - 2 nonlinear terms of Hmisc ``rcspline.eval(norm = 2, inclx = TRUE)``."""
    k = np.asarray(knots, float)
    kd = (k[-1] - k[0]) ** (2 / 3)

    def cube(a: np.ndarray) -> np.ndarray:
        return np.maximum(a / kd, 0.0) ** 3

    cols = [x]
    for j in range(len(k) - 2):
        cols.append(cube(x - k[j]) + ((k[-2] - k[j]) * cube(x - k[-1]) - (k[-1] - k[j]) * cube(x - k[-2])) / (k[-1] - k[-2]))
    return np.column_stack(cols)


@dataclass(frozen=True)
class SmoothCalibration:
    """Smooth calibration at the horizon (Austin et al. 2020), risks of the event.

    Attributes
    ----------
    curve : ``predicted``, ``observed`` on 100 predicted risks from the lowest to the highest.
    patients : per patient ``predicted`` and smoothed ``observed`` risk.
    ici, e50, e90, emax : mean, median, 90th percentile and maximum of |observed - predicted|
        over the patients.
    knots : knots of the spline on log(-log S(u)); horizon; notes.
    """

    curve: pd.DataFrame
    patients: pd.DataFrame
    ici: float
    e50: float
    e90: float
    emax: float
    knots: tuple[float, ...]
    horizon: float
    coef: tuple[float, ...]
    means: tuple[float, ...]
    baseline_survival: float
    notes: tuple[str, ...]

    def observed(self, predicted: np.ndarray | float) -> np.ndarray:
        """Smoothed observed risk at the given predicted risks."""
        return _smooth_observed(predicted, self.knots, self.coef, self.means, self.baseline_survival)


def _smooth_observed(predicted: np.ndarray | float, knots: tuple[float, ...], coef: tuple[float, ...],
                     means: tuple[float, ...], s0: float) -> np.ndarray:
    r = np.atleast_1d(np.asarray(predicted, dtype=float))
    return _observed_at_cll(np.log(-np.log1p(-r)), knots, coef, means, s0)


def _observed_at_cll(cll: np.ndarray, knots: tuple[float, ...], coef: tuple[float, ...], means: tuple[float, ...],
                     s0: float) -> np.ndarray:
    """Smoothed observed risk at log(-log S) = cll (no round trip through a risk of 1.0)."""
    z = _rcs_basis(cll, np.asarray(knots))
    return -np.expm1(np.log(s0) * np.exp((z - np.asarray(means)) @ np.asarray(coef)))


def calibrate_smooth(spec: StudySpec, model: CoxModel, cohort: pd.DataFrame, *, nk: int = 3) -> SmoothCalibration:
    """Smooth calibration curve, ICI, E50 and E90 at the horizon (Austin, Harrell & van Klaveren 2020).

    Parameters
    ----------
    spec, model, cohort : the study, the model and the rows to assess it on.
    nk : knots of the restricted cubic spline (Hmisc default placement, :func:`rcs_knots`).

    Returns
    -------
    SmoothCalibration

    Notes
    -----
    With P_i = 1 - S_i(u) the predicted risk and cll_i = log(-log(1 - P_i)), a Cox model
    (Efron ties) is fitted to the outcome with rcs(cll, nk) as covariates; the smoothed
    observed risk is O_i = 1 - S_cal(u | cll_i) from that model (Efron baseline at its means).
    ICI = mean_i |O_i - P_i|, E50 = median, E90 = 90th percentile (type 7), Emax = max.
    rms' own smooth method (``cmethod = "hare"``) uses ``polspline::hare``, which has no
    Python port; this is the published substitute (the authors' appendix code), not hare.

    References
    ----------
    Austin PC, Harrell FE, van Klaveren D. Stat Med 2020;39:2714-2742.
    """
    data = cox_data(spec, cohort, model.variables)
    s0 = model.baseline_survival()
    if not 0 < s0 < 1:
        raise AnalysisError(f"baseline survival S0({model.horizon:g}) = {s0:g}: no smooth calibration on log(-log S)")
    # log(-log S_i) = log(-log S0) + lp_i exactly; through the risk it would overflow to log(0)
    # for patients whose predicted risk rounds to 1 (large cohorts)
    lp = model.lp(pd.DataFrame(data.X, columns=list(data.terms)))
    cll = np.log(-np.log(s0)) + lp
    pred = -np.expm1(np.log(s0) * np.exp(lp))
    knots = rcs_knots(cll, nk)
    Z = _rcs_basis(cll, knots)
    fit = fit_cox(Z, data.time, data.event)
    if not fit.converged:
        raise AnalysisError("the smooth calibration model (Cox on rcs(log(-log S))) did not converge")
    params = (tuple(float(k) for k in knots), tuple(map(float, fit.coef)), tuple(map(float, fit.means)),
              fit.baseline_survival(model.horizon))
    obs = _observed_at_cll(cll, *params)
    delta = np.abs(obs - pred)
    grid = np.linspace(pred.min(), pred.max(), 100)
    with np.errstate(divide="ignore"):  # a risk of 0 or 1 at an end of the grid: its exact cll
        grid_cll = np.clip(np.log(-np.log1p(-grid)), cll.min(), cll.max())
    notes = (f"Smooth calibration: Cox model on a restricted cubic spline of log(-log S({model.horizon:g})) with "
             f"{len(knots)} knots (Austin et al. 2020); not rms' hare smoother.",
             "All probabilities are risks of the event by the horizon.")
    return SmoothCalibration(
        curve=pd.DataFrame({"predicted": grid, "observed": _observed_at_cll(grid_cll, *params)}),
        patients=pd.DataFrame({"predicted": pred, "observed": obs}),
        ici=float(delta.mean()), e50=float(np.median(delta)), e90=float(np.quantile(delta, 0.9)), emax=float(delta.max()),
        knots=params[0], horizon=model.horizon, coef=params[1], means=params[2], baseline_survival=params[3], notes=notes,
    )
