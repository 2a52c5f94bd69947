"""Validation of the frozen model in another cohort: temporal, external, or a held-out split.

The model fitted on the development cohort is applied **unchanged** (coefficients, centring at
the development means, baseline survival S0(u) of the development cohort) to the patients of
the validation cohort, as R ``rms::val.surv(fit, newdata, S, u)`` and
``survival::concordance(fit, newdata = )`` do.  Nothing is refitted on the validation cohort
except the calibration models, which are *assessments* of the frozen predictions.

Every measure reuses the package's one implementation of it: Harrell's C and the IPCW
time-dependent AUC (:mod:`.discrimination`), the Poisson calibration line, the KM groups, the
smooth curve and the Brier score (:mod:`.calibration`), net benefit (:mod:`cementleak_stats.decision`)
and Table 1 (:mod:`cementleak_stats.tables`).  This module only assembles them for a second
cohort and adds what exists only there: calibration-in-the-large as a ratio of the observed
Kaplan-Meier risk to the mean predicted risk (with its CI), and the case-mix comparison.

References
----------
Royston P, Altman DG. External validation of a Cox prognostic model: principles and methods.
BMC Med Res Methodol 2013;13:33.
Debray TPA, Vergouwe Y, Koffijberg H, Nieboer D, Steyerberg EW, Moons KGM. A new framework to
enhance the interpretation of external validation studies of clinical prediction models.
J Clin Epidemiol 2015;68:279-289.
Debray TPA, Damen JAAG, Snell KIE, et al. A guide to systematic review and meta-analysis of
prediction model performance. BMJ 2017;356:i6460 (O/E ratio of a survival model and its SE).
Crowson CS, Atkinson EJ, Therneau TM. Assessing calibration of prognostic risk scores. Stat
Methods Med Res 2016;25:1692-1706.
Steyerberg EW, Harrell FE, Borsboom GJ, et al. Internal validation of predictive models:
efficiency of some procedures for logistic regression analysis. J Clin Epidemiol
2001;54:774-781 (split-sample validation wastes data).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from scipy import stats

from ..decision import net_benefit, threshold_grid
from ..design import encode
from ..errors import AnalysisError
from ..models.cox import CoxModel
from ..spec import StudySpec
from ..tables import BaselineTable, table_baseline
from .calibration import SmoothCalibration, _km_at, brier_score, calibrate_km, calibrate_smooth, calibration_line
from .discrimination import concordance_table

__all__ = ["CohortValidation", "validate_in_cohort", "split_cohort", "COHORT_COLUMN", "MIN_EVENTS"]

ValidationKind = Literal["temporal", "external", "split"]

#: Column of the combined frame that Table 1 by cohort groups by (not a study variable).
COHORT_COLUMN = "Cohort"
#: Fewer events by the horizon than this in the validation cohort: calibration by groups and the
#: smooth curve cannot be estimated (rms ``calibrate``'s rule) and the validation is refused.
MIN_EVENTS = 5

#: columns of the groups frame taken from :func:`~.calibration.calibrate_km` (apparent part only)
_GROUP_COLUMNS = ["group", "risk_low", "risk_high", "n", "events", "predicted", "observed", "ci_low", "ci_high"]


@dataclass(frozen=True)
class CohortValidation:
    """The development model applied unchanged to a validation cohort.

    Attributes
    ----------
    label, kind : how the study file names the cohort and what it is ("temporal", "external"
        or "split").
    n, n_events : patients analysed in the validation cohort and their events (any time).
    discrimination : ``measure`` (c_index, dxy, auc), ``label``, ``estimate``, ``se``,
        ``ci_low``, ``ci_high`` on the validation cohort (as :func:`.concordance_table`).
    calibration : ``measure``, ``label``, ``estimate``, ``ci_low``, ``ci_high``, ``ideal``:
        ``observed_risk`` (1 - Kaplan-Meier at the horizon), ``predicted_risk`` (mean),
        ``o_e_km`` (their ratio), ``o_e_poisson`` and ``calibration_intercept`` (Crowson),
        ``calibration_slope``, ``ici``, ``e50``, ``e90``, ``emax``, ``brier``, ``scaled_brier``.
    groups : KM-group calibration on the validation cohort (apparent only; the columns of
        :func:`.calibrate_km` up to ``ci_high``).
    smooth : the smooth calibration curve on the validation cohort.
    decision_curve : net benefit on the validation cohort (columns of :func:`net_benefit`).
    case_mix : one row per cohort (``development``, ``validation``): ``cohort``, ``label``,
        ``n``, ``events``, ``lp_mean``, ``lp_sd``, ``observed_risk``, ``predicted_risk``.
    predictions : per validation patient (row order): ``row``, ``lp``, ``risk_at_horizon``.
    baseline : Table 1 by cohort (with SMD), grouped by :data:`COHORT_COLUMN`.
    horizon : the horizon of every risk; notes : how the numbers were obtained.
    """

    label: str
    kind: str
    n: int
    n_events: int
    discrimination: pd.DataFrame
    calibration: pd.DataFrame
    groups: pd.DataFrame
    smooth: SmoothCalibration
    decision_curve: pd.DataFrame
    case_mix: pd.DataFrame
    predictions: pd.DataFrame
    baseline: BaselineTable
    horizon: float
    notes: tuple[str, ...]

    def estimate(self, measure: str) -> float:
        """One number of ``discrimination`` or ``calibration`` by its ``measure`` name."""
        for frame in (self.discrimination, self.calibration):
            hit = frame.loc[frame["measure"] == measure, "estimate"]
            if len(hit):
                return float(hit.iloc[0])
        raise KeyError(measure)


def _observed_risk(time: np.ndarray, event: np.ndarray, u: float) -> tuple[float, float]:
    """1 - Kaplan-Meier S(u) (events at u count) and its Greenwood standard error."""
    km, se_log = _km_at(np.ones((1, len(time))), time, event, u)
    s = float(km[0])
    return 1.0 - s, s * float(se_log[0])  # var(S) = S^2 sum d / (n (n - d))


def _lp_summary(model: CoxModel, spec: StudySpec, cohort: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    X = encode(spec, cohort, model.variables).X
    return model.lp(X), model.risk(X)


def _check_cohort(spec: StudySpec, cohort: pd.DataFrame, label: str) -> None:
    t = cohort[spec.outcome.time].to_numpy(float)
    e = cohort[spec.outcome.event].to_numpy()
    by_u = int((e[t <= spec.outcome.horizon] == 1).sum())
    if by_u < MIN_EVENTS:
        raise AnalysisError(
            f"the validation cohort '{label}' has {by_u} event(s) by the horizon ({spec.outcome.horizon:g} "
            f"{spec.outcome.time_unit}) among {len(cohort)} analysed patients: at least {MIN_EVENTS} are needed to "
            "assess calibration (about 100 events are recommended for a validation study); add patients or remove "
            "`validation:` from the study file")
    if (t >= spec.outcome.horizon).sum() == 0:
        raise AnalysisError(f"nobody in the validation cohort '{label}' is followed up to the horizon "
                            f"({spec.outcome.horizon:g} {spec.outcome.time_unit}): risks at the horizon cannot be checked")


def validate_in_cohort(
    spec: StudySpec,
    model: CoxModel,
    development: pd.DataFrame,
    validation: pd.DataFrame,
    *,
    label: str = "Validation cohort",
    kind: ValidationKind = "external",
    development_label: str | None = None,
    m: int | None = None,
) -> CohortValidation:
    """Apply the development model unchanged to a validation cohort and measure its performance.

    Parameters
    ----------
    spec : the study (outcome, horizon, variables, analysis options).
    model : the model fitted on ``development``; it is not refitted.
    development, validation : the analysed rows of both cohorts (validated and typed by the same
        data layer: same columns, levels and ranges).
    label, kind : the validation cohort's name and kind, as the study file gives them.
    development_label : how Table 1 and the case-mix table name the development cohort (default
        "Development set" for a split, else "Development cohort").
    m : patients per KM calibration group (default ``analysis.calibration_group_size``).

    Returns
    -------
    CohortValidation

    Raises
    ------
    AnalysisError
        when the validation cohort has fewer than :data:`MIN_EVENTS` events by the horizon or
        nobody followed up to it.

    Notes
    -----
    With lp_i = (x_i - xbar_dev)'beta and S0(u) the development baseline, the predicted risk is
    P_i = 1 - S0(u)^exp(lp_i) (R ``1 - survest(fit, newdata, times = u)$surv``; ``val.surv``'s
    ``p``).

    * Discrimination: Harrell's C of lp with its infinitesimal-jackknife CI (R
      ``concordance(fit, newdata = val)``) and the IPCW cumulative/dynamic AUC just below u
      (R ``riskRegression::Score`` on the validation data).
    * Calibration-in-the-large: O/E = (1 - KM(u)) / mean(P_i), CI exp(log(O/E) -/+ z SE(O)/O)
      with SE(O) the Greenwood SE of the KM (Debray et al. 2017), the expected risk taken as
      fixed; and the Poisson form of Crowson et al.: log(O/E) = log(sum O_i / sum E_i) with
      E_i = H0(min(T_i, u)) exp(lp_i), SE 1/sqrt(sum O_i) (the information of the intercept-only
      Poisson model with offset at its maximum).
    * Calibration slope: coefficient of lp in ``glm(O ~ lp + offset(log E - lp), poisson)``
      with its Wald CI (1 = ideal; < 1: predictions too extreme in this cohort).
    * KM groups of about m patients by predicted risk (apparent: the cohort was not used to
      fit, so there is no optimism to remove); the smooth curve, ICI, E50, E90 (Austin et al.
      2020) and the IPCW Brier score just below u, on the validation cohort.
    * Net benefit at the study's thresholds; case mix: mean and SD of lp in both cohorts
      (a wider SD in validation means a more heterogeneous cohort, where C is expected to be
      higher; Debray et al. 2015).
    """
    u = spec.outcome.horizon
    alpha = spec.analysis.alpha
    if development_label is None:
        development_label = "Development set" if kind == "split" else "Development cohort"
    z = float(stats.norm.ppf(1 - alpha / 2))
    _check_cohort(spec, validation, label)
    t = validation[spec.outcome.time].to_numpy(float)
    e = validation[spec.outcome.event].to_numpy()

    disc = concordance_table(spec, validation, model)
    lp_val, risk_val = _lp_summary(model, spec, validation)
    lp_dev, risk_dev = _lp_summary(model, spec, development)

    obs, obs_se = _observed_risk(t, e, u)
    pred = float(risk_val.mean())
    oe_km = obs / pred
    half = z * obs_se / obs if obs > 0 else np.nan
    line = calibration_line(spec, model, validation)
    half_p = z / np.sqrt(line.observed)
    smooth = calibrate_smooth(spec, model, validation)
    brier = brier_score(spec, model, validation)
    unit = f"{u:g} {spec.outcome.time_unit}"
    rows = [
        ("observed_risk", f"Observed risk by {unit} (1 - Kaplan-Meier)", obs, obs - z * obs_se, obs + z * obs_se, np.nan),
        ("predicted_risk", f"Mean predicted risk by {unit}", pred, np.nan, np.nan, np.nan),
        ("o_e_km", "Observed / expected risk (Kaplan-Meier / mean predicted)", oe_km,
         oe_km * np.exp(-half), oe_km * np.exp(half), 1.0),
        ("o_e_poisson", f"Observed / expected events by {unit} (Poisson)", line.o_e_ratio,
         line.o_e_ratio * np.exp(-half_p), line.o_e_ratio * np.exp(half_p), 1.0),
        ("calibration_intercept", "Calibration-in-the-large, log(O/E) (Poisson)", line.intercept,
         line.intercept - half_p, line.intercept + half_p, 0.0),
        ("calibration_slope", "Calibration slope (Poisson, Crowson et al.)", line.slope,
         line.slope - z * line.slope_se, line.slope + z * line.slope_se, 1.0),
        ("ici", "Integrated calibration index (ICI)", smooth.ici, np.nan, np.nan, 0.0),
        ("e50", "E50 (median |observed - predicted|)", smooth.e50, np.nan, np.nan, 0.0),
        ("e90", "E90 (90th percentile)", smooth.e90, np.nan, np.nan, 0.0),
        ("emax", "Emax (maximum)", smooth.emax, np.nan, np.nan, 0.0),
        ("brier", f"Brier score just below {unit} (IPCW)", brier.brier, np.nan, np.nan, 0.0),
        ("scaled_brier", "Scaled Brier score (1 - Brier / null Brier)", brier.scaled, np.nan, np.nan, 1.0),
    ]
    calibration = pd.DataFrame(rows, columns=["measure", "label", "estimate", "ci_low", "ci_high", "ideal"])

    # apparent KM groups: the bootstrap engine with no replicate returns the groups alone
    groups = calibrate_km(spec, model, validation, m=m, n_boot=0, rng=np.random.default_rng(0))[_GROUP_COLUMNS]
    dca = net_benefit(risk_val, t, e, horizon=u, thresholds=threshold_grid(spec))

    def mix(name: str, lab: str, cohort: pd.DataFrame, lp: np.ndarray, risk: np.ndarray) -> dict[str, object]:
        tt = cohort[spec.outcome.time].to_numpy(float)
        ee = cohort[spec.outcome.event].to_numpy()
        return {"cohort": name, "label": lab, "n": len(cohort), "events": int(ee.sum()),
                "lp_mean": float(lp.mean()), "lp_sd": float(lp.std(ddof=1)),
                "observed_risk": _observed_risk(tt, ee, u)[0], "predicted_risk": float(risk.mean())}

    case_mix = pd.DataFrame([mix("development", development_label, development, lp_dev, risk_dev),
                             mix("validation", label, validation, lp_val, risk_val)])
    both = pd.concat([development, validation], ignore_index=True)
    both[COHORT_COLUMN] = pd.Categorical([development_label] * len(development) + [label] * len(validation),
                                         categories=[development_label, label])
    baseline = table_baseline(spec, both, groupby=COHORT_COLUMN)
    notes = (
        f"The development model was applied unchanged: coefficients, centring at the development means and the "
        f"development baseline survival S0({unit}); nothing was refitted on the {label.lower()}.",
        f"Time-dependent AUC evaluated just below {unit} (IPCW, Kaplan-Meier censoring weights).",
        f"Calibration groups of about {m or spec.analysis.calibration_group_size} patients by predicted risk, "
        "without bootstrap correction: the validation cohort was not used to fit the model.",
        "O/E (Kaplan-Meier): observed risk 1 - KM at the horizon over the mean predicted risk, CI from the "
        "Greenwood standard error; O/E (Poisson) and the calibration slope as Crowson, Atkinson and Therneau (2016).",
        smooth.notes[0],
    )
    return CohortValidation(
        label=label, kind=kind, n=len(validation), n_events=int(e.sum()), discrimination=disc,
        calibration=calibration, groups=groups.reset_index(drop=True), smooth=smooth, decision_curve=dca,
        case_mix=case_mix, predictions=pd.DataFrame({"row": np.arange(len(validation)), "lp": lp_val,
                                                     "risk_at_horizon": risk_val}),
        baseline=baseline, horizon=u, notes=notes,
    )


def split_cohort(
    spec: StudySpec,
    cohort: pd.DataFrame,
    *,
    fraction: float,
    by: Literal["random", "period"] = "random",
    period_column: str | None = None,
    rng: np.random.Generator | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split the analysed rows into a development and a validation part.

    Parameters
    ----------
    fraction : share of the patients held out for validation, 0 < fraction < 1; the
        validation part has round(fraction n) patients.
    by : ``random`` (a permutation drawn from ``rng``) or ``period`` (the last patients by
        ``period_column``, ties kept in file order: a temporal split).  A column whose values
        are all numbers (also when stored as text, e.g. numeric ids) sorts numerically, a
        categorical one by its level order, any other as text.
    period_column : column that orders the patients in time (``by = "period"``).
    rng : generator of the random split.

    Returns
    -------
    development, validation : both in the original row order, index reset.
    """
    n = len(cohort)
    k = int(round(fraction * n))
    if not 0 < k < n:
        raise AnalysisError(f"validation.split = {fraction:g} of {n} patients leaves an empty development or "
                            "validation part")
    if by == "period":
        if period_column is None or period_column not in cohort.columns:
            raise AnalysisError(f"validation.period_column '{period_column}' is not a column of the cohort")
        col = cohort[period_column]
        if isinstance(col.dtype, pd.CategoricalDtype):
            key = col.cat.codes.to_numpy().astype(float)
            key[col.isna().to_numpy()] = np.nan
        else:
            as_num = pd.to_numeric(col, errors="coerce")  # numbers written as text (ids 1, 2, ..., 10) sort as numbers
            key = as_num.to_numpy(float) if as_num.notna().sum() == col.notna().sum() else col.to_numpy(object)
        if pd.isna(key).any():
            raise AnalysisError(f"validation.period_column '{period_column}' has missing values: the split by period "
                                "needs every patient's period")
        held = np.argsort(key, kind="stable")[n - k:]
    else:
        if rng is None:
            raise ValueError("a random split needs rng")
        held = rng.permutation(n)[:k]
    mask = np.zeros(n, dtype=bool)
    mask[held] = True
    return cohort.loc[~mask].reset_index(drop=True), cohort.loc[mask].reset_index(drop=True)
