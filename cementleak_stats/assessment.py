"""What reviewers of a prediction-model paper ask for beyond one horizon and one number per
measure, assembled for the development cohort and, unchanged, for a validation cohort.

* performance at every horizon of ``outcome.horizons`` with intervals (ROC curves, AUC, Brier,
  IBS, IPA, calibration): :mod:`.validation.horizons`;
* intervals of the optimism-corrected indices (two-stage bootstrap) and of net benefit at the
  reported thresholds, and the clinical impact curve: :mod:`.validation.intervals`;
* risk groups from the nomogram's total points, the development cut-offs carried unchanged to
  the validation cohort: :mod:`.riskgroups`;
* the comparison with an existing score (``analysis.comparator``): :mod:`.validation.comparison`.

This module only orchestrates (as ``run_study`` does); every number comes from the modules
named.  The validation cohort gets the frozen model's numbers (no refit, no bootstrap
correction: it was not used to fit the model).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .models.cox import CoxModel, fit_cox_model
from .needs import horizon_findings
from .nomogram import Nomogram
from .riskgroups import RiskGroups, risk_groups_in
from .validation.comparison import Comparison, compare_with
from .spec import StudySpec
from .validation.horizons import HorizonPerformance, performance_at_horizons, risk_column
from .validation.intervals import clinical_impact, corrected_intervals, net_benefit_intervals

__all__ = ["CohortAssessment", "ModelAssessment", "assess_model", "results_tables"]


@dataclass(frozen=True)
class CohortAssessment:
    """The model's performance in one cohort (development or validation).

    Attributes
    ----------
    label : the cohort's name.
    performance : measures, ROC curves and calibration at every horizon.
    net_benefit_ci : net benefit at the reported thresholds with bootstrap percentile intervals
        (:func:`.validation.intervals.net_benefit_intervals`).
    clinical_impact : the clinical impact curve per 1,000 patients
        (:func:`.validation.intervals.clinical_impact`).
    risk_groups : patients grouped by the nomogram's total points (the development cohort's
        cut-offs in both cohorts; :mod:`.riskgroups`).
    comparison : the model against ``analysis.comparator`` (:mod:`.validation.comparison`), or
        None without one.
    """

    label: str
    performance: HorizonPerformance
    net_benefit_ci: pd.DataFrame
    clinical_impact: pd.DataFrame
    risk_groups: RiskGroups
    comparison: Comparison | None = None


@dataclass(frozen=True)
class ModelAssessment:
    """Everything beyond the main horizon's point estimates, for both cohorts.

    Attributes
    ----------
    development : the development cohort (calibration bootstrap-corrected).
    corrected_ci : two-stage bootstrap intervals of the optimism-corrected validation indices
        (:func:`.validation.intervals.corrected_intervals`); empty when
        ``analysis.interval_bootstrap`` asks for no outer replicate.
    validation : the validation cohort, or None.
    notes : how the numbers were obtained, one sentence each.
    """

    development: CohortAssessment
    corrected_ci: pd.DataFrame
    validation: CohortAssessment | None = None
    notes: tuple[str, ...] = ()

    @property
    def horizons(self) -> tuple[float, ...]:
        return self.development.performance.horizons


def _cohort(spec: StudySpec, model: CoxModel, cohort: pd.DataFrame, decision_curve: pd.DataFrame, *, label: str,
            n_boot: int, calibration_rng: np.random.Generator | None, rng: np.random.Generator, nomogram: Nomogram,
            main_groups: pd.DataFrame | None = None, cutoffs: RiskGroups | None = None,
            comparator: CoxModel | None = None, comparison_rng: np.random.Generator | None = None,
            n_jobs: int = 1) -> CohortAssessment:
    """``calibration_rng`` None: apparent calibration only (a validation cohort)."""
    found = horizon_findings(spec, cohort[spec.outcome.time].to_numpy(float), cohort[spec.outcome.event].to_numpy(),
                             where=f" in the {label.lower()}")
    if found:
        raise found[0].error()
    perf = performance_at_horizons(spec, model, cohort, n_boot=n_boot if calibration_rng is not None else 0,
                                   rng=calibration_rng, main_groups=main_groups, what=label.lower(), n_jobs=n_jobs)
    risk = perf.risks[risk_column(spec.outcome.horizon)].to_numpy()
    return CohortAssessment(
        label=label, performance=perf,
        net_benefit_ci=net_benefit_intervals(spec, risk, cohort, n_boot=n_boot, rng=rng, n_jobs=n_jobs),
        clinical_impact=clinical_impact(decision_curve, len(cohort)),
        risk_groups=risk_groups_in(spec, nomogram, cohort, label=label, cutoffs=None if cutoffs is None else cutoffs.cutoffs,
                                   source="" if cutoffs is None else cutoffs.source),
        comparison=None if comparator is None else compare_with(
            spec, model, comparator, cohort, n_boot=n_boot, rng=comparison_rng, label=_comparator_label(spec),
            cohort_label=label, n_jobs=n_jobs),
    )


def _comparator_label(spec: StudySpec) -> str:
    c = spec.analysis.comparator
    return c.label or spec.variable(c.variable).label


def fit_comparator(spec: StudySpec, cohort: pd.DataFrame) -> CoxModel | None:
    """The comparator's one-variable Cox model on the development cohort (None without one)."""
    c = spec.analysis.comparator
    return None if c is None else fit_cox_model(spec, cohort, (c.variable,))


def assess_model(
    spec: StudySpec,
    model: CoxModel,
    cohort: pd.DataFrame,
    *,
    nomogram: Nomogram,
    validation_table: pd.DataFrame,
    calibration_groups: pd.DataFrame,
    decision_curve: pd.DataFrame,
    rngs: list[np.random.Generator],
    validation_cohort: tuple[str, pd.DataFrame, pd.DataFrame] | None = None,
    n_jobs: int = 1,
) -> ModelAssessment:
    """Assess the model at every horizon, with intervals, in the development cohort and in the
    validation cohort.

    Parameters
    ----------
    spec, model, cohort : the study, the reported model and its (development) rows.
    nomogram : the model's nomogram (total points and risk groups).
    validation_table : the standard bootstrap validation (its corrected indices).
    calibration_groups : the main horizon's bootstrap-corrected calibration groups (reused).
    decision_curve : the development decision curve.
    rngs : four independent generators (calibration at the other horizons, two-stage
        bootstrap, net-benefit bootstrap, the comparator's paired bootstrap).
    validation_cohort : (label, rows, decision curve) of the validation cohort, or None.
    n_jobs : joblib workers for the calibration bootstraps at the other horizons, the net
        benefit's and the comparator's paired bootstraps (the numbers do not depend on it; see
        :func:`~.validation.resample.bootstrap_optimism`).
    """
    B = spec.analysis.bootstrap_b
    r_cal, r_ci, r_nb, r_cmp = rngs[:4]
    comparator = fit_comparator(spec, cohort)
    dev = _cohort(spec, model, cohort, decision_curve, label="Development cohort", n_boot=B, calibration_rng=r_cal,
                  rng=r_nb, nomogram=nomogram, main_groups=calibration_groups, comparator=comparator,
                  comparison_rng=r_cmp, n_jobs=n_jobs)
    outer, inner = (min(b, B) for b in spec.analysis.interval_bootstrap)
    ci = (corrected_intervals(spec, model, cohort, apparent=validation_table, n_outer=outer, n_inner=max(inner, 1),
                              rng=r_ci) if outer > 1 and inner > 0 else pd.DataFrame())
    val = None
    if validation_cohort is not None:
        label, rows, dca = validation_cohort
        val = _cohort(spec, model, rows, dca, label=label, n_boot=B, calibration_rng=None, rng=r_nb, nomogram=nomogram,
                      cutoffs=dev.risk_groups, comparator=comparator, comparison_rng=r_cmp)
    # the interval method is said where the intervals are shown (report/_sections/intervals.qmd);
    # notes are only for what is unusual about this fit
    notes = reversed_notes(validation_table, dev, val)
    return ModelAssessment(development=dev, corrected_ci=ci, validation=val, notes=notes)


def reversed_notes(validation_table: pd.DataFrame, *cohorts: CohortAssessment | None) -> tuple[str, ...]:
    """A sentence for each C or AUC below 0.5: the score ranks patients the wrong way round there.

    Such a value is reported as it is, never folded to 1 - C (which would hide a reversed
    score, e.g. a comparator coded in the opposite direction)."""
    out = []
    c = validation_table.set_index("index")["apparent"].get("C", np.nan)
    if c < 0.5:
        out.append(f"Harrell's C of the model is {c:.3f}, below 0.5: higher predicted risks went with later events. "
                   "It is reported as it is, not as 1 - C.")
    for cohort in cohorts:
        if cohort is None:
            continue
        m = cohort.performance.measures
        low = m[(m["measure"] == "auc") & (m["estimate"] < 0.5)]
        for h, est in zip(low["horizon"], low["estimate"]):
            out.append(f"In the {cohort.label.lower()} the time-dependent AUC at {h:g} is {est:.3f}, below 0.5: the model "
                       "ranks patients in the reverse direction there. It is reported as it is, not as 1 - AUC.")
    return tuple(out)


def _cohort_tables(c: CohortAssessment, prefix: str) -> dict[str, pd.DataFrame]:
    perf = c.performance
    risks = perf.risks.melt(id_vars="row", var_name="horizon", value_name="risk")
    risks["horizon"] = risks["horizon"].map({risk_column(h): h for h in perf.horizons})
    g = c.risk_groups
    groups = {f"{prefix}risk_groups": g.summary, f"{prefix}risk_groups_patients": g.patients,
              f"{prefix}risk_groups_logrank": g.logrank, f"{prefix}risk_groups_hazard_ratios": g.hazard_ratios}
    if c.comparison is not None:
        groups |= {f"{prefix}comparator_discrimination": c.comparison.discrimination,
                   f"{prefix}comparator_reclassification": c.comparison.reclassification,
                   f"{prefix}comparator_decision_curve": c.comparison.decision_curve}
    return groups | {f"{prefix}performance_horizons": perf.measures, f"{prefix}roc_curves": perf.roc,
            f"{prefix}calibration_horizons": perf.groups, f"{prefix}calibration_smooth_horizons": perf.smooth,
            f"{prefix}predictions_horizons": risks[["row", "horizon", "risk"]],
            f"{prefix}net_benefit_intervals": c.net_benefit_ci, f"{prefix}clinical_impact": c.clinical_impact}


def results_tables(a: ModelAssessment) -> dict[str, pd.DataFrame]:
    """The assessment's tidy tables by results-file stem (docs/results-files.md documents them)."""
    out = _cohort_tables(a.development, "") | {"points_formula": a.development.risk_groups.formula}
    if len(a.corrected_ci):
        out["validation_intervals"] = a.corrected_ci
    if a.validation is not None:
        out.update(_cohort_tables(a.validation, "validation_cohort_"))
    return out
