"""Cox nomogram as R ``rms::nomogram``: points tables and axes as data (drawing is elsewhere).

No Python library builds a Cox nomogram (lifelines, scikit-survival and statsmodels do not), so
the steps of ``rms/R/nomogram.s`` are written here, with R's ``pretty()``
(:mod:`cementleak_stats.pretty`) because every axis of an rms nomogram comes from it.

Steps (METHODS.md):

1. axis values per predictor: every level of a categorical predictor; every distinct value of
   a numeric predictor with at most 10 of them; otherwise ``pretty(range, n = 10)`` (which can
   reach past the data range);
2. contribution of a value: beta_j' x_j, uncentred (sum over the predictor's terms);
3. scale sc = 100 / max_j (max contribution_j - min contribution_j): the widest predictor spans
   0-100 points; points_j(x) = (beta_j' x - min_j) sc;
4. linear predictor from total points: lp = intercept + total / sc, intercept = -centre +
   sum_j min_j, centre = beta' (column means) (so lp is centred as R ``predict(fit, "lp")``);
5. total-points axis ``pretty(c(0, max(100, sc * max(lp.at - intercept))), 10)`` with
   ``lp.at = pretty(range(lp of the cohort), 10)``;
6. risk axis 1 - S0(u)^exp(lp), ticks ``pretty(risk(range(lp.at)), 10)`` within that range.

The baseline S0(u) is the Efron-consistent baseline at the covariate means (R ``survfit.coxph``
/ ``cph(surv = TRUE)``), as every risk in the package (:mod:`cementleak_stats.models.cox`).

References
----------
Harrell FE. rms: Regression Modeling Strategies, R package 6.5, ``nomogram``.
Iasonos A, Schrag D, Raj GV, Panageas KS. How to build and interpret a nomogram for cancer
prognosis. J Clin Oncol 2008;26:1364-1370.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .design import encode, encode_values, variable_terms
from .errors import InputError, Problem
from .formatting import format_exact
from .models.cox import CoxModel
from .pretty import pretty
from .spec import StudySpec, Variable

__all__ = ["Nomogram", "PatientRisk", "build_nomogram", "predict_risk"]

#: Axis values: numeric predictors with at most this many distinct values use each value
#: (``rms::datadist(n.unique = 10)``); the others use ``pretty(range, NINT)``.
N_UNIQUE = 10
NINT = 10
MAX_SCALE = 100.0

@dataclass(frozen=True)
class Nomogram:
    """An rms-style nomogram as data.

    Attributes
    ----------
    points : one row per axis value: ``predictor`` (variable name), ``label`` (its display
        label), ``value`` (a level name, or a number for a numeric predictor), ``contribution``
        (beta' x, uncentred) and ``points``.
    total : the total-points axis: ``total_points``, ``lp`` and ``risk`` at each tick.
    lp_axis : ``lp`` ticks (``pretty(range(lp), 10)``) and their ``total_points`` positions.
    risk_axis : ``risk`` ticks and their ``lp`` and ``total_points`` positions.
    scale : points per unit of linear predictor (``sc``).
    intercept : linear predictor (centred) at 0 total points.
    horizon : the time of the risk axis; baseline_survival : S0(horizon) (Efron, at the means).
    model : the Cox model the nomogram draws.
    notes : how the numbers were made (for the report's methods).
    """

    points: pd.DataFrame
    total: pd.DataFrame
    lp_axis: pd.DataFrame
    risk_axis: pd.DataFrame
    scale: float
    intercept: float
    horizon: float
    baseline_survival: float
    model: CoxModel
    notes: tuple[str, ...]

    def lp_from_points(self, total_points: float | np.ndarray) -> np.ndarray:
        """Centred linear predictor of a total score: intercept + total / scale."""
        return self.intercept + np.asarray(total_points, dtype=float) / self.scale

    def risk_from_points(self, total_points: float | np.ndarray) -> np.ndarray:
        """Risk of the event by the horizon for a total score: 1 - S0(u)^exp(lp)."""
        return _risk(self.baseline_survival, self.lp_from_points(total_points))

    def points_for_risk(self, risk: float | np.ndarray) -> np.ndarray:
        """Total points at which the risk is ``risk`` (0 < risk < 1), the inverse of
        :meth:`risk_from_points`: lp = log(log(1 - risk) / log S0(u)), points = (lp - intercept) sc."""
        lp = np.log(np.log1p(-np.asarray(risk, dtype=float)) / np.log(self.baseline_survival))
        return (lp - self.intercept) * self.scale


def _risk(s0: float, lp: np.ndarray) -> np.ndarray:
    return 1.0 - s0 ** np.exp(lp)


def _axis_values(var: Variable, column: pd.Series) -> list[object]:
    if var.kind != "continuous":
        return list(var.levels)
    vals = np.unique(pd.to_numeric(column, errors="coerce").dropna().to_numpy(float))
    if vals.size == 0:
        raise ValueError(f"'{var.name}' has no values to build a nomogram axis from")
    if vals.size <= N_UNIQUE:
        return [float(v) for v in vals]
    return [float(v) for v in pretty([vals[0], vals[-1]], NINT)]


def _contributions(model: CoxModel, var: Variable, values: Sequence[object]) -> np.ndarray:
    names = [t.name for t in variable_terms(var)]
    return encode_values(var, list(values)) @ model.coef[names].to_numpy(float)


def _centre(model: CoxModel) -> float:
    names = [t.name for t in model.terms]
    return float(model.means[names].to_numpy(float) @ model.coef[names].to_numpy(float))


def build_nomogram(spec: StudySpec, model: CoxModel, cohort: pd.DataFrame) -> Nomogram:
    """Points, total-points, linear-predictor and risk axes of the model, as R ``rms::nomogram``.

    Parameters
    ----------
    spec : the study (labels, levels, kinds of the predictors).
    model : the fitted Cox model (coefficients, means, Efron baseline).
    cohort : the data the model was fitted on (axis ranges and the range of lp).

    Returns
    -------
    Nomogram

    Notes
    -----
    sc = 100 / max_j (max_x beta_j'x - min_x beta_j'x); points_j(x) = (beta_j'x - min_j) sc;
    lp = intercept + total / sc with intercept = -beta'mean + sum_j min_j;
    risk = 1 - S0(u)^exp(lp).  Equals R
    ``nomogram(cph(..., surv = TRUE), fun = function(x) 1 - S(u, x), lp = TRUE)`` (R's
    ``Survival(fit)`` step function at u); the risk ticks are placed by the exact inverse
    lp = log(log(1 - r) / log S0(u)) where R interpolates linearly on 1000 grid points
    (differences far below 0.01 points), and a tick at risk 0 or 1 is left out (R draws one
    where the risk rounds to 1 in double precision, a risk no patient reaches).

    References
    ----------
    Harrell FE. rms 6.5, ``R/nomogram.s``.
    """
    rows = []
    ranges = {}
    for name in model.variables:
        var = spec.variable(name)
        values = _axis_values(var, cohort[name])
        contrib = _contributions(model, var, values)
        ranges[name] = (float(contrib.min()), float(contrib.max()))
        for v, c in zip(values, contrib):
            rows.append((name, var.display, v, float(c)))
    widest = max(hi - lo for lo, hi in ranges.values())
    if not widest > 0:
        raise ValueError("every predictor has a zero contribution range; no nomogram can be drawn")
    sc = MAX_SCALE / widest
    points = pd.DataFrame(rows, columns=["predictor", "label", "value", "contribution"])
    points["points"] = (points["contribution"] - points["predictor"].map({k: v[0] for k, v in ranges.items()})) * sc
    intercept = -_centre(model) + sum(lo for lo, _ in ranges.values())


    lp = model.lp(encode(spec, cohort, model.variables).X)
    lp_at = pretty([np.nanmin(lp), np.nanmax(lp)], NINT)
    sum_max = MAX_SCALE if len(ranges) == 1 else max(MAX_SCALE, sc * float(np.max(lp_at - intercept)))
    total_ticks = pretty([0.0, sum_max], NINT)
    s0 = model.baseline_survival(model.horizon)
    total = pd.DataFrame({"total_points": total_ticks, "lp": intercept + total_ticks / sc})
    total["risk"] = _risk(s0, total["lp"].to_numpy())
    lp_axis = pd.DataFrame({"lp": lp_at, "total_points": (lp_at - intercept) * sc})
    r_lo, r_hi = _risk(s0, np.array([lp_at.min(), lp_at.max()]))
    ticks = pretty([r_lo, r_hi], NINT)
    ticks = ticks[(ticks >= r_lo) & (ticks <= r_hi) & (ticks > 0) & (ticks < 1)]
    tick_lp = np.log(np.log1p(-ticks) / np.log(s0))
    risk_axis = pd.DataFrame({"risk": ticks, "lp": tick_lp, "total_points": (tick_lp - intercept) * sc})
    notes = (
        f"Points as R rms::nomogram: contributions beta'x uncentred, the widest predictor spans 0-{MAX_SCALE:g} points "
        f"({sc:.4g} points per unit of linear predictor).",
        f"Numeric predictors with at most {N_UNIQUE} distinct values use each value; others R's pretty(range, {NINT}).",
        f"Risk by {model.horizon:g} {spec.outcome.time_unit} = 1 - S0^exp(lp), S0 = {s0:.6f}: the Efron baseline survival "
        "at the covariate means (R survfit.coxph / cph), lp centred at the means.",
    )
    return Nomogram(points=points, total=total, lp_axis=lp_axis, risk_axis=risk_axis, scale=sc, intercept=intercept,
                    horizon=model.horizon, baseline_survival=s0, model=model, notes=notes)


@dataclass(frozen=True)
class PatientRisk:
    """One patient's score.

    Attributes
    ----------
    points : one row per predictor: ``predictor``, ``value`` (as given, canonical level or
        number), ``contribution`` (beta'x) and ``points`` (NaN when scored from a model alone).
    total_points : sum of the points (NaN without a nomogram).
    lp : linear predictor, centred at the means.
    risk : probability of the event by ``horizon``: 1 - S0(horizon)^exp(lp).
    """

    points: pd.DataFrame
    total_points: float
    lp: float
    risk: float
    horizon: float


def _read_value(var: Variable, raw: object, axis: tuple[float, float] | None) -> tuple[object, Problem | None]:
    """The canonical value of one patient entry, or the problem with it."""
    fix_levels = f"use one of {list(var.levels)}"
    if var.kind != "continuous":
        text = str(raw).strip()
        level = var.aliases.get(text, text)
        if level not in var.levels:
            return None, Problem(file="patient", column=var.name, value=str(raw)[:80],
                                 rule=f"unknown level of {var.label}", fix=fix_levels)
        return level, None
    try:
        value = float(raw)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        value = math.nan
    if isinstance(raw, bool) or not math.isfinite(value):
        return None, Problem(file="patient", column=var.name, value=str(raw)[:80],
                             rule=f"{var.label} must be a finite number")
    lo, hi = var.range if var.range is not None else (-math.inf, math.inf)
    if axis is not None:
        lo, hi = max(lo, axis[0]), min(hi, axis[1])
    if not lo <= value <= hi:
        unit = f" {var.unit}" if var.unit else ""
        return None, Problem(file="patient", column=var.name, value=format_exact(value),
                             rule=f"{var.label} is outside the range the nomogram covers",
                             fix=f"enter a value from {format_exact(lo)} to {format_exact(hi)}{unit}")
    return value, None


def predict_risk(spec: StudySpec, model_or_nomogram: CoxModel | Nomogram, patient: Mapping[str, object]) -> PatientRisk:
    """Score one patient: points per predictor, total points, lp and risk at the horizon.

    Parameters
    ----------
    spec : the study.
    model_or_nomogram : a :class:`Nomogram` (points and total points) or a
        :class:`~cementleak_stats.models.cox.CoxModel` (lp and risk only; points are NaN).
    patient : value per variable name: a level (or an alias the study file accepts) for a
        categorical predictor, a number for a numeric one.  Variables of the study that are
        not in the model are ignored.

    Returns
    -------
    PatientRisk

    Raises
    ------
    InputError
        listing every problem: a missing predictor, a name the study does not know, an unknown
        level, a non-numeric value, or a number outside the study file's range or outside the
        nomogram's axis.

    Notes
    -----
    lp = sum_j beta_j' x_j - beta'mean; risk = 1 - S0(u)^exp(lp).  With a nomogram,
    points_j = (beta_j' x_j - min_j) sc and risk = 1 - S0(u)^exp(intercept + total / sc), the
    same number.
    """
    nomo = model_or_nomogram if isinstance(model_or_nomogram, Nomogram) else None
    model = nomo.model if nomo is not None else model_or_nomogram
    known = {v.name for v in spec.variables}
    problems = [Problem(file="patient", column=str(k), rule="not a variable of the study",
                        fix=f"use the model's variables: {list(model.variables)}") for k in patient if k not in known]
    values: dict[str, object] = {}
    for name in model.variables:
        var = spec.variable(name)
        if name not in patient or patient[name] is None:
            problems.append(Problem(file="patient", column=name, rule=f"{var.label} is missing",
                                    fix="every predictor of the model needs a value"))
            continue
        axis = None
        if nomo is not None and var.kind == "continuous":
            c = nomo.points.loc[nomo.points["predictor"] == name, "value"].astype(float)
            axis = (float(c.min()), float(c.max()))
        value, problem = _read_value(var, patient[name], axis)
        if problem is not None:
            problems.append(problem)
        else:
            values[name] = value
    if problems:
        raise InputError(problems, summary="Cannot score this patient")
    contrib = np.array([_contributions(model, spec.variable(n), [values[n]])[0] for n in model.variables])
    lp = float(contrib.sum() - _centre(model))
    s0 = model.baseline_survival(model.horizon)
    if nomo is not None:
        mins = nomo.points.groupby("predictor", sort=False)["contribution"].min()
        pts = (contrib - mins[list(model.variables)].to_numpy()) * nomo.scale
    else:
        pts = np.full(len(contrib), np.nan)
    frame = pd.DataFrame({"predictor": list(model.variables), "value": [values[n] for n in model.variables],
                          "contribution": contrib, "points": pts})
    return PatientRisk(points=frame, total_points=float(pts.sum()), lp=lp, risk=float(_risk(s0, np.array(lp))),
                       horizon=model.horizon)
