"""What the analysis needs from valid data — one place for the rules that ``validate`` reports
and ``analyze`` refuses by.

Valid data can still be unable to give an honest model: no events, no event by the horizon, a
level of a categorical predictor without events (separation: the Cox partial likelihood has no
maximum), fewer events than model parameters.  :func:`analysis_needs` lists every such finding
for ``cementleak validate`` (an *error* where the analysis would refuse, a *warning* where it
would only be weak); :func:`require_events` and :func:`require_parameters` raise the same
findings as :class:`~cementleak_stats.errors.AnalysisError` inside the analysis.

The rules themselves are the analysis' own: the constant-column and collinearity checks of
:func:`cementleak_stats.models.cox.fit_cox_model` and its exact separation rule
(:func:`~cementleak_stats.models.cox.monotone_likelihood_terms`), and the events-per-parameter
rows of :func:`~cementleak_stats.checks.study_checks`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from .errors import AnalysisError, Problem
from .spec import StudySpec

Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class Finding:
    """One thing the analysis needs and the data do not give."""

    severity: Severity
    rule: str
    fix: str
    #: the data column (its header in the file) the finding is about, if one
    column: str | None = None

    def problem(self, file: str) -> Problem:
        return Problem(file=file, column=self.column, rule=f"analysis: {self.rule}", fix=self.fix)

    def error(self) -> AnalysisError:
        return AnalysisError(f"{self.rule}; {self.fix}")


def _event_findings(spec: StudySpec, cohort: pd.DataFrame) -> list[Finding]:
    out = spec.outcome
    event = cohort[out.event].to_numpy(float)
    time = cohort[out.time].to_numpy(float)
    n, events = len(cohort), int(np.nansum(event))
    col = out.event_header
    if events == 0:
        return [Finding("error", f"there are no events ({out.event} = 1) among the {n} analysed patients: no model can "
                        "be fitted", "check the event column (and `event_aliases:` in the study file) and the exclusions",
                        col)]
    if events == n:
        return [Finding("error", f"every analysed patient has the event ({out.event} = 1): a Cox model needs patients "
                        "without the event", "check the event column (and `event_aliases:`): is 0 coded as 1?", col)]
    return horizon_findings(spec, time, event)


def horizon_findings(spec: StudySpec, time: np.ndarray, event: np.ndarray, *, where: str = "") -> list[Finding]:
    """Each horizon (``outcome.horizons``) needs an event by it and someone followed up to it.

    A horizon beyond the last follow-up time (nobody at risk there) leaves the risk at that
    horizon unobserved: its AUC, Brier score and calibration cannot be estimated."""
    out = spec.outcome
    first = float(np.nanmin(time[event == 1])) if (event == 1).any() else float("nan")
    last = float(np.nanmax(time)) if len(time) else float("nan")
    name = "the horizon" if len(out.all_horizons) == 1 else "horizon"
    for h in out.all_horizons:
        if int(np.sum((event == 1) & (time <= h))) == 0:
            return [Finding("error", f"no event at or before {name} ({h:g} {out.time_unit}{where}; the first event is at "
                            f"{first:g}): the risk at the horizon, its calibration and the decision curve cannot be "
                            "estimated", "check `outcome.horizon`/`horizons:` and `time_unit:` (are the times in days "
                            "while the horizon is in months?)", out.time_header or out.end)]
        if not (time >= h).any():
            return [Finding("error", f"nobody is followed up to {name} ({h:g} {out.time_unit}{where}; the longest "
                            f"follow-up is {last:g}): no one is at risk there, so the risk at that horizon cannot be "
                            "checked against what happened", "choose horizons within the follow-up of the patients (times computed "
                            "from dates: 365 days are 11.99 months, so a one-year follow-up needs `time_unit: days` with "
                            "`horizon: 365`, or a horizon of 11.9 months)",
                            out.time_header or out.end)]
    return []


def require_events(spec: StudySpec, cohort: pd.DataFrame) -> int:
    """The number of events, or :class:`AnalysisError` when no model can be fitted or assessed
    (no events, only events, no event by the horizon)."""
    found = _event_findings(spec, cohort)
    if found:
        raise found[0].error()
    return int(cohort[spec.outcome.event].sum())


def _parameters(spec: StudySpec, variables: Sequence[str]) -> int:
    from .design import variable_terms

    return sum(len(variable_terms(spec.variable(v))) for v in variables)


def _parameter_finding(spec: StudySpec, predictors: Sequence[str], events: int) -> Finding | None:
    p = _parameters(spec, predictors)
    if events >= p:
        return None
    return Finding("error", f"only {events} events for {p} model parameters ({', '.join(predictors)}): a Cox model needs "
                   "at least one event per parameter, and prediction models about 10 or more (events per parameter)",
                   "prespecify fewer predictors (analysis.selection: prespecified) or collect more events")


def require_parameters(spec: StudySpec, predictors: tuple[str, ...], events: int) -> None:
    """:class:`AnalysisError` when the model has more parameters than there are events (EPV < 1)."""
    found = _parameter_finding(spec, predictors, events)
    if found is not None:
        raise found.error()


def _model_cohort(spec: StudySpec, analysed: pd.DataFrame) -> pd.DataFrame:
    """The rows the Cox models are fitted on: complete cases of the candidate and model variables."""
    cols = [v.name for v in spec.variables if v.candidate or v.name in spec.analysis.predictors]
    return analysed.dropna(subset=cols).reset_index(drop=True)


def _level_events(spec: StudySpec, cohort: pd.DataFrame, name: str) -> pd.DataFrame:
    """Patients and events per level of a categorical variable (every study-file level)."""
    grouped = cohort.groupby(cohort[name], observed=False)[spec.outcome.event]
    return pd.DataFrame({"n": grouped.size(), "events": grouped.sum()}).reindex(spec.variable(name).levels, fill_value=0)


def _level_findings(spec: StudySpec, cohort: pd.DataFrame, names: Sequence[str], severity: Severity,
                    consequence: str) -> list[Finding]:
    out = []
    for name in names:
        var = spec.variable(name)
        if var.kind == "continuous":
            continue
        table = _level_events(spec, cohort, name)
        for level, row in table.iterrows():
            if row["n"] == 0:
                what = f"level '{level}' of '{name}' ({var.label}) has no analysed patients"
            elif row["events"] == 0:
                what = f"level '{level}' of '{name}' ({var.label}) has no events among its {int(row['n'])} patients"
            else:
                continue
            out.append(Finding(severity, f"{what}: {consequence}",
                               "merge the level with a neighbouring one (map its spelling to that level with "
                               "`aliases:`), drop the variable, or set `analysis: penalizer: 0.1` (a penalized model)",
                               var.header))
    return out


def _model_findings(spec: StudySpec, cohort: pd.DataFrame, predictors: Sequence[str]) -> list[Finding]:
    """What stops the prespecified model's fit, by the fit's own rules (constant, collinear, separated)."""
    from .design import encode
    from .models.cox import _check_inputs, monotone_likelihood_terms  # the fit's own rules, not a copy

    design = encode(spec, cohort, list(predictors))
    time = cohort[spec.outcome.time].to_numpy(float)
    event = cohort[spec.outcome.event].to_numpy(float)
    try:
        _check_inputs(spec, design, time, event)
    except AnalysisError as exc:
        return [Finding("error", f"the model on {', '.join(predictors)} cannot be fitted: {exc}",
                        "change `analysis.predictors` or merge levels in the study file")]
    penalized = spec.analysis.penalizer > 0
    sep = monotone_likelihood_terms(design.X.to_numpy(float), time, event)
    out = []
    for j, _ in sep:
        term = design.terms[j]
        var = spec.variable(term.variable)
        what = f"term '{term.name}' of the model" + (f" (level '{term.level}')" if term.level else "")
        out.append(Finding(
            "warning" if penalized else "error",
            f"{what}: at every event time the patients with the event have the highest or lowest value in the risk set "
            f"(separation): the Cox partial likelihood has no maximum"
            + (f"; the penalized fit (penalizer {spec.analysis.penalizer:g}) gives a finite, shrunk estimate" if penalized
               else " and `analyze` stops"),
            "merge the level with a neighbouring one (`aliases:`), drop the variable, or set `analysis: penalizer: 0.1`",
            var.header))
    return out


def _epv_findings(spec: StudySpec, cohort: pd.DataFrame, label: Literal["model", "candidate"], p: int) -> list[Finding]:
    from .checks import study_checks

    rows = study_checks(spec, cohort, n_parameters=p)
    bad = rows[(~rows["ok"]) & rows["check"].eq(f"events per {label} parameter")]
    return [Finding("warning", f"{r.check} = {r.value:.1f}: {r.note}",
                    "expect optimism and a poorly calibrated model; prespecify fewer predictors, or report the "
                    "study as exploratory") for r in bad.itertuples()]


def analysis_needs(spec: StudySpec, analysed: pd.DataFrame) -> list[Finding]:
    """Everything the analysis needs and the (valid) analysed cohort does not give.

    Parameters
    ----------
    spec
        The study file.
    analysed
        The analysed cohort (:attr:`StudyData.analysed`).

    Returns
    -------
    list of Finding
        Errors first (``analyze`` refuses: no events, only events, no event by the horizon, more
        parameters than events in a prespecified model, a prespecified model that cannot be
        fitted or separates without a penalty), then warnings (a candidate level without events,
        fewer than 10 events per parameter).
    """
    cohort = _model_cohort(spec, analysed)
    found = _event_findings(spec, cohort)
    if found:  # nothing else can be judged without events
        return found
    events = int(cohort[spec.outcome.event].sum())
    prespecified = spec.analysis.selection == "prespecified"
    predictors = spec.analysis.predictors
    if prespecified:
        too_few = _parameter_finding(spec, predictors, events)
        found += [too_few] if too_few is not None else _model_findings(spec, cohort, predictors)
        found += _epv_findings(spec, cohort, "model", _parameters(spec, predictors))
    screened = [v.name for v in spec.candidates if not (prespecified and v.name in predictors)]
    found += _level_findings(spec, cohort, screened, "warning",
                             "its univariable fit separates (no finite hazard ratio); the screen judges the variable by "
                             "its likelihood-ratio test" + ("" if prespecified else ", and if it is selected the "
                                                            "multivariable fit stops unless `analysis.penalizer` is set"))
    if not prespecified:
        cand = sum(_parameters(spec, [v.name]) for v in spec.candidates)
        found += _epv_findings(spec, cohort, "candidate", cand)
    return sorted(found, key=lambda f: f.severity != "error")
