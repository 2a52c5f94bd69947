"""From :class:`~cementleak_stats.study.StudyResults` to what a reader sees: display tables,
figures and formatted numbers.

This is the one place that maps results to presentation; the Quarto documents (through
:mod:`cementleak_stats.document`) and ``cementleak analyze`` (through
:mod:`cementleak_stats.export`) both use it, so a table or figure is defined once.
Nothing here computes a statistic.

Why one module of about 550 lines: it is the one registry from a result to each display table
and figure of the main report (Quarto and ``cementleak analyze`` read the same registry), one
short function per table or figure; the model-assessment displays are already their own module
(:mod:`.assessment_report`) and the numbers' formatting is :mod:`.formatting`.
"""

from __future__ import annotations

from collections.abc import Callable

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from .figures import (
    PAGE_WIDTH,
    figure_theme,
    plot_calibration,
    plot_decision_curve,
    plot_forest,
    plot_interventions_avoided,
    plot_km,
    plot_nomogram,
    plot_outcome_panels,
    plot_risk_distribution,
    plot_schoenfeld,
    risk_ticks,
)
from .formatting import fmt_g, fmt_num, fmt_pct, format_p
from .i18n import T, active, has, mark
from .i18n import text as tr_text
from .study import StudyResults
from .table_display import baseline_display, event_details_display, label_with_unit, term_label
from .tripod import tripod_checklist

# --- numbers in prose and tables: the numbers are formatting's, the words around them here ---


def fmt_p(p: float) -> str:
    """``P = 0.042`` / ``P < 0.001`` for prose."""
    s = format_p(p)
    return T("P {op} {value}", op=s[0], value=s[1:]) if s.startswith("<") else T("P = {value}", value=s)


def fmt_ci(est: float, low: float, high: float, digits: int = 2) -> str:
    return T("{est} ({low} to {high})", est=fmt_num(est, digits), low=fmt_num(low, digits), high=fmt_num(high, digits))


def est_ci(est: float, lo: float, hi: float, digits: int) -> str:
    """'0.842 (0.782 to 0.914)': an estimate with its 95% CI, or the estimate alone without one."""
    return fmt_ci(est, lo, hi, digits) if np.isfinite(lo) and np.isfinite(hi) else fmt_num(est, digits)


# --- tables ---------------------------------------------------------------------------------


def _cox_display(spec, frame: pd.DataFrame, labels: list[str]) -> pd.DataFrame:
    return pd.DataFrame({
        T("Predictor"): labels,
        T("β (SE)"): [f"{fmt_num(b, 3)}{mark(' (')}{fmt_num(s, 3)}{mark(')')}" for b, s in zip(frame["coef"], frame["se"])],
        T("HR (95% CI)"): [fmt_ci(h, lo, hi) for h, lo, hi in zip(frame["hr"], frame["ci_low"], frame["ci_high"])],
        T("P value"): [format_p(p) for p in frame["p_value"]],
    })


def table_cox_multivariable(r: StudyResults) -> pd.DataFrame:
    s = r.model.summary  # HRs per the `per` units of the summary (the label says which)
    return _cox_display(r.spec, s, [term_label(r, t, per) for t, per in zip(r.model.terms, s["per"])])


def table_cox_univariable(r: StudyResults) -> pd.DataFrame:
    s = r.screen
    out = _cox_display(r.spec, s, [_screen_label(r, row) for row in s.itertuples()])
    out[T("Selected")] = np.where(s["selected"], T("yes"), "")
    return out


def _screen_label(r: StudyResults, row) -> str:
    if active() != "en" and isinstance(row.variable, str):  # the cached label is English
        return label_of_term(r, row.term, row.variable, per=getattr(row, "per", 1))
    return row.label if isinstance(row.label, str) else label_of_term(r, row.term, row.variable)


def label_of_term(r: StudyResults, term: str, variable: str | None, *, per: float = 1) -> str:
    """Display label of a term given by name ('Cement viscosity: low vs high'); 'Intercept' else."""
    if not isinstance(variable, str):
        return T("Intercept") if "intercept" in term.lower() else term
    for t in r.terms_of(variable):
        if t.name == term:
            return term_label(r, t, per if per == per else 1)  # per 1 unit by default (odds ratios, coefficients)
    return term


def table_model_equation(r: StudyResults) -> pd.DataFrame:
    """Everything needed to compute a prediction (TRIPOD 22): coefficients, centres, S0(horizon)."""
    m = r.model
    rows = [(term_label(r, t, 1), fmt_num(float(m.coef[t.name]), 5), fmt_num(float(m.means[t.name]), 4)) for t in m.terms]
    tab = pd.DataFrame(rows, columns=[T("Term"), T("Coefficient β"), T("Centre (mean of the term)")])
    extra = pd.DataFrame([[T("Baseline survival S0({horizon}) at the centre", horizon=_horizon_words(r)),
                           fmt_num(m.baseline_survival(), 5), ""]], columns=tab.columns)
    return pd.concat([tab, extra], ignore_index=True)


def _ph_labels(r: StudyResults) -> dict[str, str]:
    """Label of each tested term: a one-term variable by its term, a factor by its variable."""
    labels = {tt.name: term_label(r, tt) for tt in r.model.terms}
    return {v: labels.get(v, r.spec.variable(v).label) for v in r.model.variables} | labels


def table_ph(r: StudyResults) -> pd.DataFrame:
    """R ``cox.zph`` per model term (a factor's levels jointly) and globally; the extra
    per-coefficient rows of ``ph_test.csv`` are left out."""
    t = r.ph.table
    t = t[t["scope"] != "coefficient"]
    by_name = _ph_labels(r)
    return pd.DataFrame({
        T("Term"): [by_name.get(x, T("Global test") if x == "GLOBAL" else x) for x in t["term"]],
        "χ²": [fmt_num(x, 2) for x in t["chisq"]],
        T("df"): [f"{d:g}" for d in t["df"]],
        T("P value"): [format_p(p) for p in t["p_value"]],
    })


_INDEX_LABELS = {
    "dxy": "Somers' Dxy", "c": "C-index", "c_index": "Harrell's C", "r2": "R² (Nagelkerke)", "slope": "Calibration slope",
    "d": "Discrimination index D", "u": "Unreliability index U", "q": "Quality index Q", "g": "g-index",
    "auc": "Time-dependent AUC",
}


def _index_label(x: str) -> str:
    return T(_INDEX_LABELS[str(x).lower()]) if str(x).lower() in _INDEX_LABELS else str(x)


def table_validation(r: StudyResults) -> pd.DataFrame:
    v = r.validation
    out = pd.DataFrame({
        T("Index"): [_index_label(i) for i in v["index"]],
        T("Apparent"): [fmt_num(x, 3) for x in v["apparent"]],
        T("Optimism"): [fmt_num(x, 3) for x in v["optimism"]],
        T("Corrected"): [fmt_num(x, 3) for x in v["corrected"]],
    })
    if r.validation_honest is not None:
        h = r.validation_honest.set_index("index")
        out[T("Optimism (screen repeated)")] = [fmt_num(float(h.loc[i, "optimism"]), 3) if i in h.index else "–" for i in v["index"]]
        out[T("Corrected (screen repeated)")] = [fmt_num(float(h.loc[i, "corrected"]), 3) if i in h.index else "–" for i in v["index"]]
    return out


def table_concordance(r: StudyResults) -> pd.DataFrame:
    c = r.concordance
    return pd.DataFrame({
        T("Measure"): [tr_text(x) for x in c["label"]] if "label" in c else [_index_label(m) for m in c["measure"]],
        T("Estimate (95% CI)"): [fmt_ci(e, lo, hi, 3) if np.isfinite(lo) else fmt_num(e, 3)
                              for e, lo, hi in zip(c["estimate"], c["ci_low"], c["ci_high"])],
    })


def table_decision_summary(r: StudyResults, thresholds=(0.05, 0.10, 0.20, 0.30, 0.40)) -> pd.DataFrame:
    d = r.decision_curve
    rows = []
    for t in thresholds:
        i = int(np.argmin(np.abs(d["threshold"].to_numpy() - t)))
        row = d.iloc[i]
        rows.append((fmt_pct(row["threshold"]), fmt_num(row["net_benefit_model"], 3), fmt_num(row["net_benefit_all"], 3),
                     "0", fmt_num(row["interventions_avoided"], 1)))
    return pd.DataFrame(rows, columns=[T("Threshold"), T("Net benefit: model"), T("Net benefit: treat all"),
                                       T("Treat none"), T("Interventions avoided per 100")])


def table_baseline_display(r: StudyResults) -> pd.DataFrame:
    """Table 1 with the level folded into the first column (indented), as journals print it."""
    return fold_levels(baseline_display(r.baseline, r.spec))  # from the tidy rows, in the report's language


def fold_levels(display: pd.DataFrame) -> pd.DataFrame:
    """A Table 1 display frame with its ``Level`` column folded into the first column."""
    d = display.copy()
    first, level = d.columns[0], "Level"
    if level in d.columns:
        lv = d[level].fillna("").astype(str)
        d[first] = [f"\u2003{lvl}" if lvl and not str(name).strip() else (f"{name}: {lvl}" if lvl else name)
                    for name, lvl in zip(d[first], lv)]
        d = d.drop(columns=[level])
    return d


def table_event_details_display(r: StudyResults) -> pd.DataFrame:
    """What the events were (``outcome.event_details``); empty without them."""
    if r.event_details is None:
        return pd.DataFrame()
    return event_details_display(r.event_details, r.spec)  # the stored counts, in the report's language


def table_flow(r: StudyResults) -> pd.DataFrame:
    f = r.data.flow
    return pd.DataFrame({T("Step"): [tr_text(x) for x in f["reason"]], T("Patients"): f["n"], T("Excluded"): f["excluded"]})


def table_checks(r: StudyResults) -> pd.DataFrame:
    c = r.checks
    return pd.DataFrame({
        T("Check"): [tr_text(x) for x in c["check"]],
        T("Value"): [fmt_g(v) for v in c["value"]],
        T("Threshold"): [fmt_g(v) for v in c["threshold"]],
        T("Met"): np.where(c["ok"], T("yes"), T("**no**")),
        T("Note"): [tr_text(x) for x in c["note"]],
    })


def table_logistic(r: StudyResults) -> pd.DataFrame:
    if r.logistic is None:
        return pd.DataFrame()
    t = r.logistic.table
    t = t[t["variable"].notna()]
    labels = [label_of_term(r, a, b) for a, b in zip(t["term"], t["variable"])]
    return pd.DataFrame({
        T("Predictor"): labels,
        T("OR (95% CI)"): [fmt_ci(o, lo, hi) for o, lo, hi in zip(t["odds_ratio"], t["ci_low"], t["ci_high"])],
        T("P value"): [format_p(p) for p in t["p_value"]],
    })


def table_outcomes_descriptive(r: StudyResults) -> pd.DataFrame:
    if r.outcomes is None:
        return pd.DataFrame()
    d = r.outcomes.descriptives
    measures, timepoints = _repeated_words(r, d)
    return pd.DataFrame({
        T("Measure"): measures, T("Time point"): timepoints, "n": d["n"],
        T("Mean (SD)"): [f"{fmt_num(m, 1)}{mark(' (')}{fmt_num(s, 1)}{mark(')')}" for m, s in zip(d["mean"], d["sd"])],
        T("Median [Q1, Q3]"): [f"{fmt_num(m, 1)} [{fmt_num(a, 1)}, {fmt_num(b, 1)}]" for m, a, b in zip(d["median"], d["q1"], d["q3"])],
    })


def _repeated_words(r: StudyResults, d: pd.DataFrame) -> tuple[list[str], list[str]]:
    """Measure and time-point labels of a repeated-measures frame, in the study's words (which
    may be another language's than the cached labels)."""
    if active() == "en" or r.spec.repeated is None or "measure" not in d or "timepoint" not in d:
        return list(d["measure_label"]), list(d["timepoint_label"])
    m = {x.name: label_with_unit(x) for x in r.spec.repeated.measures}
    t = {x.name: x.label for x in r.spec.repeated.timepoints}
    return [m.get(x, x) for x in d["measure"]], [t.get(str(x), str(x)) for x in d["timepoint"]]


def table_outcomes_tests(r: StudyResults) -> pd.DataFrame:
    if r.outcomes is None:
        return pd.DataFrame()
    t = r.outcomes.tests
    return pd.DataFrame({
        T("Measure"): t["measure"].map({m.name: m.label for m in r.spec.repeated.measures}) if r.spec.repeated else t["measure"],
        T("Test"): [tr_text(x) for x in t["test"]],
        T("Comparison"): [_timepoint_words(r, c) for c in t["comparison"]],
        T("Statistic"): [fmt_num(x, 2) for x in t["statistic"]],
        T("P value"): [format_p(p) for p in t["p_value"]],
        T("P (Holm)"): [format_p(p) if pd.notna(p) else "" for p in t["p_adjusted"]],
    })


def _timepoint_words(r: StudyResults, text: str) -> str:
    for tp in r.spec.repeated.timepoints if r.spec.repeated else ():
        text = " ".join(tp.label if w == tp.name else w for w in str(text).split(" "))
    return text if active() == "en" else tr_text(text) if text == "all timepoints" else text.replace(" vs ", T(" vs "))


def table_tripod(r: StudyResults) -> pd.DataFrame:
    from .tripod import ANSWERED_BY_ANALYSIS, ANSWERED_BY_REPORT

    present = {where for where, _ in (*ANSWERED_BY_ANALYSIS.values(), *ANSWERED_BY_REPORT.values())}
    if r.validation_cohort is None:  # the section on a validation cohort exists only with one
        present.discard("@sec-external")
    t = tripod_checklist(present)
    answered = t["status"] != "to be completed by the authors"
    return pd.DataFrame({T("Item"): t["item"],
                         T("Topic"): [f"*{T(a)}{mark('.')}* {T(b)}" if active() == "en" else f"*{T(a)}*{mark(': ')}{T(b)}"
                                      for a, b in zip(t["section"], t["topic"])],
                         T("Answered in"): np.where(answered, [_tripod_where(w) for w in t["where"]],
                                                    T("— to be completed by the authors"))})


def _tripod_where(where: str) -> str:
    """'@sec-cohort (study period ...)' in the active language (the place stays a reference)."""
    if active() == "en" or not where:
        return where
    place, _, what = where.partition(" (")
    return f"{T(place)}{mark(' (')}{T(what.removesuffix(')'))}{mark(')')}"


def table_colophon(r: StudyResults) -> pd.DataFrame:
    t = r.provenance.table()
    return pd.DataFrame({T("Item"): [tr_text(x) for x in t["item"]],
                         T("Value"): [tr_text(v) if v in _WORDS_IN_COLOPHON and active() != "en" else f"`{v}`" if len(v) > 20 else v
                                      for v in t["value"]]})


#: colophon values that are words (the rest are names, hashes and versions): translated, not code
_WORDS_IN_COLOPHON = {"unknown", "not installed", "yes (generated by cementleak simulate; not real patients)"}


def table_nomogram_points(r: StudyResults) -> pd.DataFrame:
    p = r.nomogram.points
    return pd.DataFrame({T("Predictor"): p["label"], T("Value"): p["value"], T("Points"): [fmt_num(x, 1) for x in p["points"]]})


TABLES: dict[str, Callable[[StudyResults], pd.DataFrame]] = {
    "baseline": lambda r: table_baseline_display(r),
    "event_details": lambda r: table_event_details_display(r),
    "flow": table_flow,
    "cox_univariable": table_cox_univariable,
    "cox_multivariable": table_cox_multivariable,
    "model_equation": table_model_equation,
    "ph": table_ph,
    "concordance": table_concordance,
    "validation": table_validation,
    "decision": table_decision_summary,
    "checks": table_checks,
    "logistic": table_logistic,
    "outcomes_descriptive": table_outcomes_descriptive,
    "outcomes_tests": table_outcomes_tests,
    "nomogram_points": table_nomogram_points,
    "tripod": table_tripod,
    "colophon": table_colophon,
    # the validation cohort (cementleak_stats.external_report; empty without one)
    "external_cohorts": lambda r: _external.table_external_cohorts(r),
    "external_performance": lambda r: _external.table_external_performance(r),
    "external_case_mix": lambda r: _external.table_external_case_mix(r),
    "external_comparison": lambda r: _external.table_external_comparison(r),
}


# --- figures --------------------------------------------------------------------------------


def _event_words(r: StudyResults) -> str:
    return r.spec.outcome.event_label.lower()


def _horizon_words(r: StudyResults) -> str:
    key = "{n} " + r.spec.outcome.time_unit
    return T(key, n=f"{r.spec.outcome.horizon:g}") if active() == "en" or has(key) else f"{r.spec.outcome.horizon:g} {r.spec.outcome.time_unit}"


def _unit_words(r: StudyResults) -> str:
    """The time unit alone ('months'; '月' in Chinese)."""
    return T(r.spec.outcome.time_unit) if active() == "en" or has(r.spec.outcome.time_unit) else r.spec.outcome.time_unit


def figure_forest(r: StudyResults) -> Figure:
    forest = r.forest
    if active() != "en":  # the cached labels are English
        per = dict(zip(r.model.summary["term"], r.model.summary["per"])) if "per" in r.model.summary else {}
        forest = forest.assign(label=[label_of_term(r, t, v, per=per.get(t, 1)) for t, v in zip(forest["term"], forest["variable"])])
    ax = plot_forest(forest, xlabel=T("Hazard ratio (95% CI)"), hr_header=T("HR (95% CI)"), reference_text=T("Reference"))
    return ax.figure


def figure_km(r: StudyResults) -> Figure | None:
    """Cumulative incidence by the nomogram's risk groups (:mod:`.riskgroups`: the study's
    cut-offs, by default the tertiles of predicted risk), as the results carry the curves."""
    if r.assessment is None:
        return None
    return risk_group_figure(r, r.assessment.development.risk_groups, legend_title=T("Predicted risk group"))


def risk_group_figure(r: StudyResults, groups, *, legend_title: str) -> Figure:
    """Kaplan-Meier curves (as cumulative incidence) and numbers at risk of a
    :class:`~cementleak_stats.riskgroups.RiskGroups`, drawn as computed in the analysis."""
    curves, at_risk = groups.curves, groups.at_risk
    if active() != "en":  # the group labels were written in English by the analysis
        curves = curves.assign(group=curves["group"].cat.rename_categories(lambda c: tr_text(c)))
        at_risk = at_risk.assign(group=at_risk["group"].cat.rename_categories(lambda c: tr_text(c)))
    ticks = sorted(float(t) for t in at_risk["time"].unique())
    ax = plot_km(curves, at_risk=at_risk, failure=True, xticks=ticks,
                 xlabel=T("{label} ({unit})", label=r.spec.outcome.time_label, unit=_unit_words(r)),
                 ylabel=T("Cumulative incidence of {event}", event=_event_words(r)), legend_title=legend_title,
                 at_risk_label=T("Number at risk"))
    return ax.figure


def figure_schoenfeld(r: StudyResults) -> Figure:
    by_name = _ph_labels(r)
    res = r.ph.residuals.assign(label=lambda f: f["term"].map(by_name))
    tests = r.ph.table[r.ph.table["scope"] != "coefficient"]
    tests = tests.assign(label=lambda f: f["term"].map(by_name).fillna(T("Global")))
    return plot_schoenfeld(res, tests, smooth=r.ph.smooth, xlabel=T("Time ({unit}; axis spaced on the Kaplan-Meier scale)", unit=_unit_words(r)),
                           ylabel=T("Scaled Schoenfeld residual"))


def figure_nomogram(r: StudyResults) -> Figure:
    n = r.nomogram
    variables = {v: r.spec.variable(v) for v in n.points["predictor"].unique()}
    points = n.points.assign(predictor=n.points["predictor"].map(lambda v: label_with_unit(variables[v])),
                             value=[variables[p].level_label(v) if isinstance(v, str) else v
                                    for p, v in zip(n.points["predictor"], n.points["value"])])
    total = list(n.total["total_points"])
    axes = []  # one risk axis per horizon (outcome.horizons), shortest first
    for h, nh, _ in _assessment.nomogram_horizons(r):
        reach = tuple(float(x) for x in nh.risk_from_points(np.array([0.0, max(total)])))
        ticks = np.array(risk_ticks(_spread(r, h), reach=reach))  # the cohort's 5th-95th percentile at least
        axes.append((T("Risk of {event} by {horizon}", event=_event_words(r), horizon=_assessment.horizon_words(r, h)),
                     pd.DataFrame({"risk": ticks, "total_points": nh.points_for_risk(ticks)})))
    ax = plot_nomogram(points, axes[0][1], risk_label=axes[0][0], points_label=T("Points"), total_label=T("Total points"),
                       total_ticks=total, more_risks=axes[1:])
    return ax.figure


def figure_calibration(r: StudyResults) -> Figure:
    c = r.calibration
    return calibration_figure(r, c.groups, smooth=c.smooth.curve, predictions=r.predictions["risk_at_horizon"].to_numpy())


def calibration_figure(r: StudyResults, groups: pd.DataFrame, *, smooth: pd.DataFrame, predictions: np.ndarray,
                       apparent_label: str = "Apparent") -> Figure:
    """Calibration at the horizon of KM groups (bias-corrected too when ``groups`` has it) and a smooth curve."""
    ax = plot_calibration(groups, smooth=smooth, predictions=predictions, apparent_label=T(apparent_label),
                          corrected_label=T("Bias-corrected"), smooth_label=T("Smoothed"), ideal_label=T("Ideal"),
                          horizon_label=T("{event} by {horizon}", event=_event_words(r), horizon=_horizon_words(r)),
                          xlabel=T("Predicted probability of {event} by {horizon}", event=_event_words(r), horizon=_horizon_words(r)),
                          ylabel=T("Observed probability (Kaplan-Meier)"))
    return ax.figure


def figure_risk_distribution(r: StudyResults) -> Figure:
    ev = r.analysed[r.spec.outcome.event].to_numpy()
    frame = pd.DataFrame({"predicted": r.predictions["risk_at_horizon"].to_numpy(),
                          "group": np.where(ev == 1, f"{r.spec.outcome.event_label}", T("No {event}", event=_event_words(r)))})
    ax = plot_risk_distribution(frame, xlabel=T("Predicted risk of {event} by {horizon}", event=_event_words(r), horizon=_horizon_words(r)),
                                ylabel=T("Patients"))
    return ax.figure


def figure_decision(r: StudyResults) -> Figure:
    return decision_figure(r.decision_curve)


def decision_figure(frame: pd.DataFrame) -> Figure:
    """Net benefit and interventions avoided of a decision-curve frame (:func:`~.decision.net_benefit`)."""
    with figure_theme():
        fig, axes = plt.subplots(1, 2, figsize=(PAGE_WIDTH, PAGE_WIDTH * 0.42), layout="constrained")
        plot_decision_curve(frame, model_label=T("Nomogram"), all_label=T("Treat all"), none_label=T("Treat none"),
                            xlabel=T("Threshold probability"), ylabel=T("Net benefit"), ax=axes[0])
        plot_interventions_avoided(frame, label=T("Nomogram"), xlabel=T("Threshold probability"),
                                   ylabel=T("Net interventions avoided\nper 100 patients"), ax=axes[1])
    return fig


def figure_trajectories(r: StudyResults) -> Figure | None:
    if r.outcomes is None:
        return None
    o = r.outcomes
    measure_label = dict(o.long[["measure", "measure_label"]].drop_duplicates().itertuples(index=False))
    long = pd.concat([o.trajectories(m).assign(measure=lab) for m, lab in measure_label.items()], ignore_index=True)
    s = r.outcome_summary  # the mean and its t interval per measure and time point (computed in the analysis)
    time_label = dict(o.long[["timepoint", "timepoint_label"]].astype(str).drop_duplicates().itertuples(index=False))
    centres = None if s is None else pd.DataFrame({
        "measure": s["measure"].map(measure_label), "timepoint": s["timepoint"].astype(str).map(time_label),
        "centre": s["mean"], "low": s["ci_low"], "high": s["ci_high"]})
    if active() != "en" and r.spec.repeated is not None:  # the cached labels are English: the study's words
        rep = r.spec.repeated
        words = {t.name: t.label for t in rep.timepoints}
        displays = {m.name: label_with_unit(m) for m in rep.measures}
        to_words = {lab: words.get(name, lab) for name, lab in time_label.items()}
        to_display = {lab: displays.get(name, lab) for name, lab in measure_label.items()}
        long["timepoint"] = long["timepoint"].cat.rename_categories(lambda c: to_words.get(str(c), str(c)))
        long["measure"] = long["measure"].map(lambda x: to_display.get(x, x))
        if centres is not None:
            centres = centres.assign(timepoint=centres["timepoint"].map(lambda x: to_words.get(x, x)),
                                     measure=centres["measure"].map(lambda x: to_display.get(x, x)))
    return plot_outcome_panels(long, centres=centres)


FIGURES: dict[str, Callable[[StudyResults], Figure | None]] = {
    "forest": figure_forest,
    "km": figure_km,
    "schoenfeld": figure_schoenfeld,
    "nomogram": figure_nomogram,
    "calibration": figure_calibration,
    "risk_distribution": figure_risk_distribution,
    "decision_curve": figure_decision,
    "trajectories": figure_trajectories,
    "external_calibration": lambda r: _external.figure_external_calibration(r),
    "external_decision": lambda r: _external.figure_external_decision(r),
}


# --- what a figure's caption must say (sentences for the documents) --------------------------


def note_decision(r: StudyResults) -> str:
    """Why the decision curves are jagged, and what the triangles on the axis edges mean."""
    d = r.decision_curve.sort_values("threshold")
    first, last = d.iloc[0], d.iloc[-1]
    return T("Net benefit at a threshold is estimated from the patients whose predicted risk is at or above it "
             "({n_first} of {n} at {t_first}, {n_last} at {t_last}); where they are few, one patient more or less "
             "moves the curve visibly, so its jagged course there is sampling noise, not a property of the model. "
             "The interventions-avoided curve divides the difference from treating all by the threshold odds pt/(1 − pt), "
             "which magnifies the same noise at low thresholds. A triangle on an axis edge marks where a curve leaves the "
             "plotted range.", n_first=int(first['n_treated']), n=len(r.analysed), t_first=fmt_pct(first['threshold']),
             n_last=int(last['n_treated']), t_last=fmt_pct(last['threshold']))


def note_schoenfeld(r: StudyResults) -> str:
    """How to read the time axis of the Schoenfeld residual plot."""
    return T("Scaled Schoenfeld residuals with a LOWESS smooth, one panel per model term; a flat smooth supports "
             "proportional hazards. As in R plot(cox.zph), the time axis is spaced on the Kaplan-Meier scale "
             "(1 − S(t): periods with many events take more room) and labelled in {unit}.", unit=_unit_words(r))


def _spread(r: StudyResults, horizon: float) -> tuple[float, float, float, float]:
    """Lowest, 5th, 95th percentile and highest predicted risk at ``horizon`` (results.risk_spread)."""
    s = r.risk_spread.set_index("horizon").loc[float(horizon)]
    return float(s["lowest"]), float(s["p05"]), float(s["p95"]), float(s["highest"])


def note_nomogram(r: StudyResults) -> str:
    """Which predicted risks the nomogram's risk axis covers."""
    _, p5, p95, _ = _spread(r, r.spec.outcome.horizon)
    return T("The risk axis is labelled over the predicted risks of the cohort: 90% of the patients have a risk "
             "between {low} and {high}.", low=_risk_words(p5), high=_risk_words(p95))


def _risk_words(x: float) -> str:
    return "< 0.1%" if x < 0.001 else ("> 99.9%" if x > 0.999 else f"{100 * x:.{0 if x >= 0.1 else 1}f}%")


#: caption sentences by figure name (``figure_note(name, results)``); figures without one are absent
FIGURE_NOTES: dict[str, Callable[[StudyResults], str]] = {
    "decision_curve": note_decision,
    "schoenfeld": note_schoenfeld,
    "nomogram": note_nomogram,
}


def figure_note(name: str, r: StudyResults) -> str:
    """The sentence a caption of figure ``name`` must carry ("" when it needs none)."""
    return FIGURE_NOTES[name](r) if name in FIGURE_NOTES else ""


# registered above by name; imported last (it formats with this module's helpers)
from . import external_report as _external  # noqa: E402
from . import assessment_report as _assessment  # noqa: E402

TABLES.update(_assessment.TABLES)  # every horizon, intervals, clinical impact (empty / None without them)
FIGURES.update(_assessment.FIGURES)
