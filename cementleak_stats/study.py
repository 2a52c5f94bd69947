"""``run_study``: the whole analysis in one pass, from a study file to frozen results.

Data flow (DESIGN.md): StudySpec -> validated data -> Table 1 -> univariable screen ->
multivariable Cox -> PH test, discrimination, nomogram -> bootstrap validation (standard and
honest) and calibration -> decision curve -> repeated measures -> study checks.  Documents and
the CLI only read the :class:`StudyResults`; nothing is computed twice.

The results are cached on disk, keyed by a hash of the data files, the study file and the
package (version + source digest): a second call with the same inputs loads them.
Why one module of a little over 400 lines: each field of the results is read beside the step
of the one pass that fills it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from .assessment import ModelAssessment, assess_model
from .cache import Notify, cache_path, load_results, store_results
from .checks import LogisticResult, logistic_sensitivity, study_checks
from .cohort.io import StudyData, load_study_data, patient_flow, validation_spec
from .decision import net_benefit, threshold_grid
from .design import Term, encode, variable_terms
from .errors import AnalysisError
from .imputation import ImputedCoxModel, fit_imputed_cox
from .models.cox import (CoxModel, fit_cox_model, forest_data, hr_unit_notes, model_tests, select_predictors,
                         term_label, univariable_screen)
from .models.lasso import lasso_select
from .models.ph import PHTest, proportional_hazards_test
from .needs import require_events, require_parameters
from .nomogram import Nomogram, PatientRisk, build_nomogram, predict_risk
from .outcome_summaries import outcome_summary
from .outcomes import OutcomesResult, analyze_outcomes
from .narrative import narrative_files, read_narrative
from .provenance import Provenance, collect_provenance
from .riskgroups import risk_spread
from .spec import StudySpec
from .tables import BaselineTable, CrossCounts, table_baseline, table_event_details
from .validation.calibration import SmoothCalibration, calibrate_km, calibrate_smooth, calibration_summary
from .validation.discrimination import concordance_table
from .validation.external import CohortValidation, split_cohort, validate_in_cohort
from .validation.horizons import risk_column
from .validation.indices import validate_cox
from .validation.selection import LassoResult, validate_lasso

#: progress(step, done, total): called while the long steps run (the CLI draws a bar)
Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class CalibrationResult:
    """Calibration at the horizon: KM groups (apparent, bias-corrected), smooth curve, measures."""

    groups: pd.DataFrame  # calibrate_km: group, predicted, observed, optimism, corrected, ...
    smooth: SmoothCalibration
    metrics: pd.DataFrame  # measure, value, ideal, description


@dataclass(frozen=True)
class StudyResults:
    """Everything the report shows, computed once.  Tables are tidy DataFrames."""

    spec: StudySpec
    provenance: Provenance
    data: StudyData
    baseline: BaselineTable
    event_details: CrossCounts | None
    screen: pd.DataFrame
    predictors: tuple[str, ...]
    model: CoxModel
    model_tests: pd.DataFrame
    forest: pd.DataFrame
    ph: PHTest
    concordance: pd.DataFrame
    predictions: pd.DataFrame
    nomogram: Nomogram
    validation: pd.DataFrame
    validation_honest: pd.DataFrame | None
    calibration: CalibrationResult
    decision_curve: pd.DataFrame
    outcomes: OutcomesResult | None
    checks: pd.DataFrame
    #: the logistic sensitivity analysis (``analysis.logistic_sensitivity``), else None
    logistic: LogisticResult | None
    #: the multivariable model pooled over multiple imputations (``analysis.missing_data:
    #: multiple_imputation``), else None; every other result is complete-case
    model_imputed: ImputedCoxModel | None = None
    #: what a reader must know about how the numbers were obtained (penalized fit, imputation,
    #: failed bootstrap replicates); one sentence each
    notes: tuple[str, ...] = ()
    #: the development model applied unchanged to the validation cohort (``validation:`` in the
    #: study file: another cohort, or a share held out of this one), else None
    validation_cohort: CohortValidation | None = None
    #: every horizon with intervals, risk groups, a comparator (assessment.py), both cohorts
    assessment: ModelAssessment | None = None
    #: the Cox LASSO selection and the validation repeating it (``analysis.selection: lasso``)
    lasso: LassoResult | None = None
    #: the authors' own text by part (background, discussion, limitations, question), as read
    #: from the study's narrative folder; parts the study does not have are absent
    narrative: dict[str, str] = field(default_factory=dict)
    #: what the repeated-measures figure draws per measure and time point: mean with its t
    #: interval, median and quartiles (:func:`.outcome_summaries.outcome_summary`), else None
    outcome_summary: pd.DataFrame | None = None
    #: the report's worked example: the patient whose predicted risk is the median's nearest,
    #: scored on the nomogram (predictor values only, never an identifier)
    example: PatientRisk | None = None
    #: lowest, 5th and 95th percentile and highest predicted risk at every horizon (what the
    #: nomogram's risk axes cover; :func:`.riskgroups.risk_spread`)
    risk_spread: pd.DataFrame | None = None

    @property
    def analysed(self) -> pd.DataFrame:
        return self.data.analysed

    # model terms' names and labels through the results (reporting imports no statistics); a label
    # is worded when shown, in the active language, so one analysis serves every language
    def terms_of(self, variable: str) -> list[Term]:  # as design.variable_terms codes the variable
        return variable_terms(self.spec.variable(variable))

    def term_label(self, term: Term, per: float | None = None, **wording) -> str:  # models.labels.term_label
        return term_label(self.spec, term, per, **wording)


def _input_files(spec: StudySpec, data: StudyData) -> list[Path]:
    """Every file the results depend on besides the study file: data and narrative text."""
    return [*data.files, *narrative_files(spec)]


def _rngs(seed: int, k: int) -> list[np.random.Generator]:
    """Independent, reproducible generators for the resampling steps (never a global seed)."""
    return [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(k)]


def _complete_cases(spec: StudySpec, data: StudyData) -> StudyData:
    """``data`` with the complete-case step of the patient flow applied (multiple-imputation
    studies keep incomplete rows in ``data.analysed``; every analysis except the imputed model
    uses the complete cases, and the flow says so)."""
    cc = spec.model_copy(update={"analysis": spec.analysis.model_copy(update={"missing_data": "complete_case"})})
    flow = patient_flow(data.cohort, cc)
    steps = flow.steps.copy()
    steps.loc[steps.index[-1], "reason"] += " — the multiple-imputation model keeps these patients"
    return replace(data, flow=steps, analysed=flow.analysed, excluded=flow.excluded)


def _check_events(spec: StudySpec, cohort: pd.DataFrame) -> int:
    """Events, or AnalysisError (no events, only events, none by the horizon): the rule `validate` reports."""
    return require_events(spec, cohort)


def _check_parameters(spec: StudySpec, predictors: tuple[str, ...], events: int) -> None:
    """Fewer events than model parameters: no estimate of the model can be trusted (EPV < 1)."""
    require_parameters(spec, predictors, events)


def _fit_multivariable(spec: StudySpec, cohort: pd.DataFrame, predictors: tuple[str, ...]) -> CoxModel:
    penalizer = spec.analysis.penalizer
    try:
        return fit_cox_model(spec, cohort, predictors, penalizer=penalizer)
    except AnalysisError as exc:
        if penalizer > 0:
            raise
        raise AnalysisError(f"{exc}\n  In the study file, `analysis: penalizer: 0.1` (for example) fits and reports "
                            "a ridge-penalized model instead.") from None


def _notes(spec: StudySpec, model: CoxModel, validation: pd.DataFrame, calibration: pd.DataFrame,
           imputed: ImputedCoxModel | None) -> tuple[str, ...]:
    notes = []
    if model.penalizer > 0:
        notes.append(
            f"The multivariable Cox model is ridge-penalized (analysis.penalizer = {model.penalizer:g}; lifelines "
            "penalizer, columns standardized): coefficients are shrunk towards 0 and their standard errors, "
            "confidence intervals and P values are not those of an ordinary Cox model. The bootstrap refits of "
            "validation and calibration are ordinary (unpenalized) fits; replicates in which they fail are counted.")
    B = spec.analysis.bootstrap_b
    failed = {name: int(frame["n_failed"].max()) for name, frame in (("validation", validation), ("calibration", calibration))
              if len(frame) and "n_failed" in frame}
    if any(failed.values()):
        parts = " and ".join(f"{n} of {B} in {name}" for name, n in failed.items())
        notes.append(f"Bootstrap replicates whose model could not be refitted: {parts} (counted, not hidden; "
                     "the optimism is averaged over the other replicates, as rms does).")
    if imputed is not None:
        cells = ", ".join(f"{r.label} ({r.n_missing})" for r in imputed.missing.itertuples() if r.n_missing) or "none"
        notes.append(
            f"Missing predictor values were multiply imputed (m = {imputed.m}, chained equations with predictive "
            f"mean matching; missing values: {cells}); the pooled multivariable model (Rubin's rules, "
            f"Barnard-Rubin degrees of freedom) uses all {imputed.n} patients. Every other result, including the "
            "variable selection, the nomogram, validation and calibration, is a complete-case analysis.")
    return tuple(notes)


def _worked_example(spec: StudySpec, nomogram: Nomogram, cohort: pd.DataFrame, risk: np.ndarray) -> PatientRisk:
    """The analysed patient whose predicted risk is closest to the median, scored on the nomogram."""
    row = cohort.iloc[int(np.argmin(np.abs(risk - np.median(risk))))]
    patient = {v: (row[v] if spec.variable(v).kind == "continuous" else str(row[v])) for v in nomogram.model.variables}
    return predict_risk(spec, nomogram, patient)


def _held_out(spec: StudySpec, data: StudyData) -> StudyData:
    """``validation: split``: the analysed patients split into the development cohort (``analysed``)
    and the held-out validation set (``validation``), with the split as the last step of the flow."""
    v = spec.validation
    if v is None or v.split is None:
        return data
    # spawn(4)[:3] == spawn(3): the split's stream leaves the bootstrap and imputation streams unchanged
    rng = np.random.default_rng(v.seed) if v.seed is not None else _rngs(spec.analysis.seed, 4)[3]
    dev, val = split_cohort(spec, data.analysed, fraction=v.split, by=v.by, period_column=v.period_column, rng=rng)
    how = (f"at random, seed {spec.analysis.seed if v.seed is None else v.seed}" if v.by == "random" else
           f"the latest by {v.period_column if v.period_column == spec.study.id_column else spec.label(str(v.period_column))}")
    step = {"step": len(data.flow), "n": len(dev), "excluded": len(val),
            "reason": f"held out as the validation set ({len(val)} patients, {v.split:.0%}, {how})"}
    flow = pd.concat([data.flow, pd.DataFrame([step])], ignore_index=True)
    return replace(data, analysed=dev, flow=flow, validation=replace(data, analysed=val, flow=flow, repeated=None))


def compute_study(spec: StudySpec, *, data: StudyData | None = None, progress: Progress | None = None,
                  n_jobs: int = 1, provenance: Provenance | None = None) -> StudyResults:
    """Run the analysis without the cache (see :func:`run_study`).

    ``n_jobs``: joblib workers for the chunks of bootstrap replicates (validation and
    calibration; 1 = this process, -1 = every worker of the active joblib backend, e.g. a Dask
    cluster under ``joblib.parallel_backend("dask")``).  The numbers do not depend on it.
    ``provenance``: the one :func:`run_study` collected for ``data`` (else collected here).

    Raises
    ------
    AnalysisError
        when the data are valid but no honest model can be reported: no events, every patient
        with the event, fewer events than model parameters, no predictor selected, a constant
        or collinear predictor, separation (unless ``analysis.penalizer`` is set), or a fit
        that does not converge.  The message says why and what to change.
    """
    data = load_study_data(spec) if data is None else data
    incomplete = None
    if spec.analysis.missing_data == "multiple_imputation":
        incomplete = data.analysed
        data = _complete_cases(spec, data)
    data = _held_out(spec, data)
    if incomplete is not None and data.validation is not None and spec.validation.split is not None:
        held = data.validation.analysed[spec.study.id_column]
        incomplete = incomplete[~incomplete[spec.study.id_column].isin(held)].reset_index(drop=True)
    cohort = data.analysed
    events = _check_events(spec, cohort)

    def step(name: str) -> None:
        if progress is not None:
            progress(name, 0, 0)

    step("baseline table")
    baseline = table_baseline(spec, cohort)
    details = None
    if spec.outcome.event_details:
        details = table_event_details(spec, cohort, spec.outcome.event_details)
    step("univariable screen")
    screen = univariable_screen(spec, cohort)
    lasso = None
    if spec.analysis.selection == "lasso":  # the screen is still reported; the LASSO selects
        step("LASSO selection")
        lasso = lasso_select(spec, cohort, rng=_rngs(spec.analysis.seed, 10)[8], n_folds=spec.analysis.lasso_folds,
                             rule=spec.analysis.lasso_lambda)
        predictors = lasso.selected
        screen = screen.assign(selected=screen["variable"].isin(predictors))
    else:
        predictors = select_predictors(spec, screen)
    if not predictors:
        raise AnalysisError(f"no candidate passed the univariable screen (P < {spec.analysis.screen_p_value}); "
                            "lower the bar or list analysis.predictors with selection: prespecified")
    _check_parameters(spec, predictors, events)
    step("multivariable Cox model")
    model = _fit_multivariable(spec, cohort, predictors)
    ph = proportional_hazards_test(spec, cohort, model)
    conc = concordance_table(spec, cohort, model)
    X = encode(spec, cohort, predictors).X
    lp = model.lp(X)
    predictions = pd.DataFrame({"row": np.arange(len(cohort)), "lp": lp, "risk_at_horizon": model.risk(X)})
    nomo = build_nomogram(spec, model, cohort)

    # spawn(3)[:2] == spawn(2): adding the imputation stream left the bootstrap streams unchanged
    r_val, r_cal, r_mi = _rngs(spec.analysis.seed, 3)
    B = spec.analysis.bootstrap_b

    def bar(name: str) -> Callable[[int, int], None] | None:
        if progress is None:
            return None
        return lambda done, total: progress(name, done, total)

    # one run over the same resamples gives the standard and, when the predictors were screened,
    # the honest validation (the screen repeated inside every replicate)
    screened = spec.analysis.selection == "univariable_screen"
    both = validate_cox(spec, model, cohort, n_boot=B, rng=r_val, honest=screened, n_jobs=n_jobs,
                        progress=bar("bootstrap validation" + (" (standard and honest)" if screened else "")))
    validation = both[both["method"] == "standard"].reset_index(drop=True)
    honest = both[both["method"] == "honest"].reset_index(drop=True) if screened else None
    lasso_result = None if lasso is None else validate_lasso(
        spec, model, cohort, lasso, n_boot=B, rng=_rngs(spec.analysis.seed, 10)[9],
        progress=bar("bootstrap validation (the LASSO repeated)"))
    calibration = CalibrationResult(
        groups=calibrate_km(spec, model, cohort, m=spec.analysis.calibration_group_size, n_boot=B, rng=r_cal,
                            n_jobs=n_jobs, progress=bar("bootstrap calibration")),
        smooth=calibrate_smooth(spec, model, cohort),
        metrics=calibration_summary(spec, model, cohort),
    )
    step("decision curve")
    dca = net_benefit(predictions["risk_at_horizon"].to_numpy(), cohort[spec.outcome.time].to_numpy(float),
                      cohort[spec.outcome.event].to_numpy(), horizon=spec.outcome.horizon, thresholds=threshold_grid(spec))
    outcomes = analyze_outcomes(spec, data.repeated) if (spec.repeated is not None and data.repeated is not None) else None
    summary = None if outcomes is None else outcome_summary(outcomes.descriptives)
    step("study checks")
    c_index = float(conc.loc[conc["measure"] == "c_index", "estimate"].iloc[0])
    checks = study_checks(spec, cohort, n_parameters=len(model.terms), c_statistic=c_index, lr_statistic=model.lr_chisq)
    logistic = logistic_sensitivity(spec, cohort, predictors=predictors) if spec.analysis.logistic_sensitivity else None
    validation_cohort = None
    if data.validation is not None:
        step("validation cohort")
        v = spec.validation
        validation_cohort = validate_in_cohort(spec, model, cohort, data.validation.analysed, label=v.display_label,
                                               kind=v.cohort_kind)
    step("performance at every horizon")
    assessment = assess_model(spec, model, cohort, nomogram=nomo, validation_table=validation,
                              calibration_groups=calibration.groups,
                              decision_curve=dca, rngs=_rngs(spec.analysis.seed, 8)[4:], n_jobs=n_jobs,
                              validation_cohort=None if validation_cohort is None else
                              (validation_cohort.label, data.validation.analysed, validation_cohort.decision_curve))
    imputed = None
    if incomplete is not None:
        step("multiple imputation")
        imputed = fit_imputed_cox(spec, incomplete, predictors, m=spec.analysis.imputations, rng=r_mi,
                                  penalizer=spec.analysis.penalizer)
    prov = provenance or collect_provenance(spec, _input_files(spec, data))
    return StudyResults(
        spec=spec, provenance=prov, data=data, baseline=baseline, event_details=details, screen=screen,
        predictors=predictors, model=model, model_tests=model_tests(model), forest=forest_data(spec, model),
        ph=ph, concordance=conc, predictions=predictions, nomogram=nomo, validation=validation,
        validation_honest=honest, calibration=calibration, decision_curve=dca, outcomes=outcomes, outcome_summary=summary,
        example=_worked_example(spec, nomo, cohort, predictions["risk_at_horizon"].to_numpy()),
        risk_spread=risk_spread({h: assessment.development.performance.risks[risk_column(h)].to_numpy()
                                 for h in assessment.horizons}),
        checks=checks, logistic=logistic, model_imputed=imputed,
        notes=_notes(spec, model, validation, calibration.groups, imputed) + hr_unit_notes(spec, model, cohort)
        + assessment.notes + (() if lasso is None else lasso.notes),
        validation_cohort=validation_cohort, assessment=assessment, lasso=lasso_result,
        narrative=read_narrative(spec),
    )


def _spec_refs(spec: StudySpec, data: StudyData | None = None) -> dict[str, StudySpec]:
    """The study files a results entry names instead of storing them (a pydantic model is not
    cached): the study's and, when the data hold another cohort file, that cohort's
    (:func:`validation_spec`).  Storing: the objects in ``data``; loading: made from ``spec``."""
    refs = {"spec": spec}
    if data is not None:
        if data.validation is not None and data.validation.spec is not spec:
            refs["validation_spec"] = data.validation.spec
    elif spec.validation is not None and spec.validation.cohort_file is not None:
        refs["validation_spec"] = validation_spec(spec)
    return refs


def run_study(spec: StudySpec, *, progress: Progress | None = None, use_cache: bool = True,
              cache_dir: Path | None = None, notify: Notify | None = None, n_jobs: int = 1) -> StudyResults:
    """Validate the data and run the whole analysis, or load it from the cache.

    The cache key is :meth:`Provenance.cache_key` (study file and data bytes, code digest,
    package versions).  The data are always re-validated first, so a changed or broken input
    is never masked by a cached result.  A cache entry is used only when this user's machine
    wrote it for these inputs (:mod:`.cache`: JSON, HMAC-signed, no pickle); the study is not
    stored in it but taken from this run, and so are the validated data (the entry keeps a copy
    for :func:`results_by_key`).  ``notify`` receives a one-line notice when an entry is ignored
    or cannot be stored.  ``n_jobs`` as :func:`compute_study` (the cached results do not depend on it).
    """
    data = load_study_data(spec)
    prov = collect_provenance(spec, _input_files(spec, data))
    path = cache_path(cache_dir or spec.base_dir, prov.cache_key())
    # what compute_study puts in results.data (the complete cases when it imputes)
    shown = _complete_cases(spec, data) if spec.analysis.missing_data == "multiple_imputation" else data
    shown = _held_out(spec, shown)
    if use_cache:
        cached = load_results(path, StudyResults, inputs=prov.key_inputs(), refs=_spec_refs(spec), notify=notify)
        if cached is not None:
            return replace(cached, data=shown)
    results = compute_study(spec, data=data, progress=progress, n_jobs=n_jobs, provenance=prov)
    if use_cache:
        store_results(path, results, inputs=prov.key_inputs(), refs=_spec_refs(results.spec, results.data), notify=notify)
    return results


def results_by_key(spec: StudySpec, key: str, *, cache_dir: Path | None = None,
                   notify: Notify | None = None) -> StudyResults | None:
    """The results a run of :func:`run_study` stored under ``key`` (:meth:`Provenance.cache_key`),
    read without validating the data, hashing the data files or running git.

    This is how a document reads the results ``cementleak report`` hands it by key: that run has
    just validated the inputs and computed or loaded these results.  The entry must be this
    user's (signed), be the one of ``key`` and be made from this study file.  None, with a
    notice, when it is absent or cannot be used; the caller then runs :func:`run_study`.
    """
    path = cache_path(cache_dir or spec.base_dir, key)
    results = load_results(path, StudyResults, inputs=None, refs=_spec_refs(spec), notify=notify)
    why = ("no stored results" if results is None and not path.exists() else None if results is None else
           "stored under another key" if results.provenance.cache_key() != key else
           "made from another version of the study file" if results.provenance.study_sha256 != spec.digest() else None)
    if why is not None:
        if notify is not None:
            notify(f"results {key}: {why}; running the analysis")
        return None
    return results
