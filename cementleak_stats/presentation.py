"""From :class:`~cementleak_stats.study.StudyResults` to what a reader sees: display tables,
figures and formatted numbers.

This is the one place that maps results to presentation; the Quarto documents (through
:mod:`cementleak_stats.document`) and ``cementleak analyze`` (through
:mod:`cementleak_stats.export`) both use it, so a table or figure is defined once.
Nothing here computes a statistic.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from .design import encode, variable_terms
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
from .figures._util import format_p
from .km import km_by_group, risk_groups
from .models.cox import term_label
from .study import StudyResults
from .tripod import tripod_checklist

# --- numbers in prose and tables ------------------------------------------------------------


def fmt_num(x: float, digits: int = 2) -> str:
    """A number with fixed decimals; an en dash when missing; a true minus sign."""
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "–" if x is None or math.isnan(x) else ("∞" if x > 0 else "−∞")
    return f"{x:.{digits}f}".replace("-", "−")


def _fmt_g(x: object) -> str:
    """Whole numbers without decimals (sample sizes), others with up to 3 significant decimals."""
    if isinstance(x, (int, float, np.integer, np.floating)) and math.isfinite(float(x)):
        return f"{int(round(float(x)))}" if float(x) == round(float(x)) else f"{float(x):.3g}"
    return str(x)


def fmt_p(p: float) -> str:
    """``P = 0.042`` / ``P < 0.001`` for prose."""
    s = format_p(p)
    return f"P {s[0]} {s[1:]}" if s.startswith("<") else f"P = {s}"


def fmt_ci(est: float, low: float, high: float, digits: int = 2) -> str:
    return f"{fmt_num(est, digits)} ({fmt_num(low, digits)} to {fmt_num(high, digits)})"


def fmt_pct(x: float, digits: int = 0) -> str:
    return f"{100 * x:.{digits}f}%"


# --- tables ---------------------------------------------------------------------------------


def _cox_display(spec, frame: pd.DataFrame, labels: list[str]) -> pd.DataFrame:
    return pd.DataFrame({
        "Predictor": labels,
        "β (SE)": [f"{fmt_num(b, 3)} ({fmt_num(s, 3)})" for b, s in zip(frame["coef"], frame["se"])],
        "HR (95% CI)": [fmt_ci(h, lo, hi) for h, lo, hi in zip(frame["hr"], frame["ci_low"], frame["ci_high"])],
        "P value": [format_p(p) for p in frame["p_value"]],
    })


def table_cox_multivariable(r: StudyResults) -> pd.DataFrame:
    s = r.model.summary  # HRs per the `per` units of the summary (the label says which)
    return _cox_display(r.spec, s, [term_label(r.spec, t, per) for t, per in zip(r.model.terms, s["per"])])


def table_cox_univariable(r: StudyResults) -> pd.DataFrame:
    s = r.screen
    out = _cox_display(r.spec, s, [_screen_label(r, row) for row in s.itertuples()])
    out["Selected"] = np.where(s["selected"], "yes", "")
    return out


def _screen_label(r: StudyResults, row) -> str:
    return row.label if isinstance(row.label, str) else label_of_term(r, row.term, row.variable)


def label_of_term(r: StudyResults, term: str, variable: str | None) -> str:
    """Display label of a term given by name ('Cement viscosity: low vs high'); 'Intercept' else."""
    if not isinstance(variable, str):
        return "Intercept" if "intercept" in term.lower() else term
    for t in variable_terms(r.spec.variable(variable)):
        if t.name == term:
            return term_label(r.spec, t, 1)  # numbers per 1 unit (odds ratios, coefficients)
    return term


def table_model_equation(r: StudyResults) -> pd.DataFrame:
    """Everything needed to compute a prediction (TRIPOD 22): coefficients, centres, S0(horizon)."""
    m = r.model
    rows = [(term_label(r.spec, t, 1), fmt_num(float(m.coef[t.name]), 5), fmt_num(float(m.means[t.name]), 4)) for t in m.terms]
    tab = pd.DataFrame(rows, columns=["Term", "Coefficient β", "Centre (mean of the term)"])
    extra = pd.DataFrame([[f"Baseline survival S0({r.spec.outcome.horizon:g} {r.spec.outcome.time_unit}) at the centre",
                           fmt_num(m.baseline_survival(), 5), ""]], columns=tab.columns)
    return pd.concat([tab, extra], ignore_index=True)


def _ph_labels(r: StudyResults) -> dict[str, str]:
    """Label of each tested term: a one-term variable by its term, a factor by its variable."""
    labels = {tt.name: term_label(r.spec, tt) for tt in r.model.terms}
    return {v: labels.get(v, r.spec.variable(v).label) for v in r.model.variables} | labels


def table_ph(r: StudyResults) -> pd.DataFrame:
    """R ``cox.zph`` per model term (a factor's levels jointly) and globally; the extra
    per-coefficient rows of ``ph_test.csv`` are left out."""
    t = r.ph.table
    t = t[t["scope"] != "coefficient"]
    by_name = _ph_labels(r)
    return pd.DataFrame({
        "Term": [by_name.get(x, "Global test" if x == "GLOBAL" else x) for x in t["term"]],
        "χ²": [fmt_num(x, 2) for x in t["chisq"]],
        "df": [f"{d:g}" for d in t["df"]],
        "P value": [format_p(p) for p in t["p_value"]],
    })


_INDEX_LABELS = {
    "dxy": "Somers' Dxy", "c": "C-index", "c_index": "Harrell's C", "r2": "R² (Nagelkerke)", "slope": "Calibration slope",
    "d": "Discrimination index D", "u": "Unreliability index U", "q": "Quality index Q", "g": "g-index",
    "auc": "Time-dependent AUC",
}


def _index_label(x: str) -> str:
    return _INDEX_LABELS.get(str(x).lower(), str(x))


def table_validation(r: StudyResults) -> pd.DataFrame:
    v = r.validation
    out = pd.DataFrame({
        "Index": [_index_label(i) for i in v["index"]],
        "Apparent": [fmt_num(x, 3) for x in v["apparent"]],
        "Optimism": [fmt_num(x, 3) for x in v["optimism"]],
        "Corrected": [fmt_num(x, 3) for x in v["corrected"]],
    })
    if r.validation_honest is not None:
        h = r.validation_honest.set_index("index")
        out["Optimism (screen repeated)"] = [fmt_num(float(h.loc[i, "optimism"]), 3) if i in h.index else "–" for i in v["index"]]
        out["Corrected (screen repeated)"] = [fmt_num(float(h.loc[i, "corrected"]), 3) if i in h.index else "–" for i in v["index"]]
    return out


def table_concordance(r: StudyResults) -> pd.DataFrame:
    c = r.concordance
    return pd.DataFrame({
        "Measure": list(c["label"]) if "label" in c else [_index_label(m) for m in c["measure"]],
        "Estimate (95% CI)": [fmt_ci(e, lo, hi, 3) if np.isfinite(lo) else fmt_num(e, 3)
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
    return pd.DataFrame(rows, columns=["Threshold", "Net benefit: model", "Net benefit: treat all", "Treat none",
                                       "Interventions avoided per 100"])


def table_baseline_display(r: StudyResults) -> pd.DataFrame:
    """Table 1 with the level folded into the first column (indented), as journals print it."""
    return fold_levels(r.baseline.display)


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


def table_flow(r: StudyResults) -> pd.DataFrame:
    f = r.data.flow
    return pd.DataFrame({"Step": f["reason"], "Patients": f["n"], "Excluded": f["excluded"]})


def table_checks(r: StudyResults) -> pd.DataFrame:
    c = r.checks
    return pd.DataFrame({
        "Check": c["check"],
        "Value": [_fmt_g(v) for v in c["value"]],
        "Threshold": [_fmt_g(v) for v in c["threshold"]],
        "Met": np.where(c["ok"], "yes", "**no**"),
        "Note": c["note"],
    })


def table_logistic(r: StudyResults) -> pd.DataFrame:
    t = r.logistic.table
    t = t[t["variable"].notna()]
    labels = [label_of_term(r, a, b) for a, b in zip(t["term"], t["variable"])]
    return pd.DataFrame({
        "Predictor": labels,
        "OR (95% CI)": [fmt_ci(o, lo, hi) for o, lo, hi in zip(t["odds_ratio"], t["ci_low"], t["ci_high"])],
        "P value": [format_p(p) for p in t["p_value"]],
    })


def table_outcomes_descriptive(r: StudyResults) -> pd.DataFrame:
    if r.outcomes is None:
        return pd.DataFrame()
    d = r.outcomes.descriptives
    return pd.DataFrame({
        "Measure": d["measure_label"], "Time point": d["timepoint_label"], "n": d["n"],
        "Mean (SD)": [f"{fmt_num(m, 1)} ({fmt_num(s, 1)})" for m, s in zip(d["mean"], d["sd"])],
        "Median [Q1, Q3]": [f"{fmt_num(m, 1)} [{fmt_num(a, 1)}, {fmt_num(b, 1)}]" for m, a, b in zip(d["median"], d["q1"], d["q3"])],
    })


def table_outcomes_tests(r: StudyResults) -> pd.DataFrame:
    if r.outcomes is None:
        return pd.DataFrame()
    t = r.outcomes.tests
    return pd.DataFrame({
        "Measure": t["measure"].map({m.name: m.label for m in r.spec.repeated.measures}) if r.spec.repeated else t["measure"],
        "Test": t["test"],
        "Comparison": [_timepoint_words(r, c) for c in t["comparison"]],
        "Statistic": [fmt_num(x, 2) for x in t["statistic"]],
        "P value": [format_p(p) for p in t["p_value"]],
        "P (Holm)": [format_p(p) if pd.notna(p) else "" for p in t["p_adjusted"]],
    })


def _timepoint_words(r: StudyResults, text: str) -> str:
    for tp in r.spec.repeated.timepoints if r.spec.repeated else ():
        text = " ".join(tp.label if w == tp.name else w for w in str(text).split(" "))
    return text


def table_tripod(r: StudyResults) -> pd.DataFrame:
    from .tripod import ANSWERED_BY_ANALYSIS, ANSWERED_BY_REPORT

    present = {where for where, _ in (*ANSWERED_BY_ANALYSIS.values(), *ANSWERED_BY_REPORT.values())}
    if r.validation_cohort is None:  # the section on a validation cohort exists only with one
        present.discard("@sec-external")
    t = tripod_checklist(present)
    answered = t["status"] != "to be completed by the authors"
    return pd.DataFrame({"Item": t["item"], "Topic": [f"*{a}.* {b}" for a, b in zip(t["section"], t["topic"])],
                         "Answered in": np.where(answered, t["where"], "— to be completed by the authors")})


def table_colophon(r: StudyResults) -> pd.DataFrame:
    t = r.provenance.table()
    return pd.DataFrame({"Item": t["item"], "Value": [f"`{v}`" if len(v) > 20 else v for v in t["value"]]})


def table_nomogram_points(r: StudyResults) -> pd.DataFrame:
    p = r.nomogram.points
    return pd.DataFrame({"Predictor": p["label"], "Value": p["value"], "Points": [fmt_num(x, 1) for x in p["points"]]})


TABLES: dict[str, Callable[[StudyResults], pd.DataFrame]] = {
    "baseline": lambda r: table_baseline_display(r),
    "event_details": lambda r: r.event_details.display if r.event_details is not None else pd.DataFrame(),
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
    return f"{r.spec.outcome.horizon:g} {r.spec.outcome.time_unit}"


def figure_forest(r: StudyResults) -> Figure:
    from .models.cox import forest_data  # noqa: F401  (frame already in the results)

    ax = plot_forest(r.forest)
    return ax.figure


def _time_ticks(horizon: float) -> list[float]:
    """Ticks from 0 to the horizon: quarters when they are whole numbers (0, 3, 6, 9, 12 months;
    0, 13, 26, 39, 52 weeks), else round steps plus the horizon (0, 100, 200, 300, 365 days)."""
    if float(horizon / 4).is_integer():
        return [float(x) for x in np.linspace(0, horizon, 5)]
    steps = [float(t) for t in MaxNLocator(nbins=5, steps=[1, 2, 2.5, 5, 10]).tick_values(0, horizon) if 0 <= t <= horizon]
    step = steps[1] - steps[0] if len(steps) > 1 else horizon
    return steps + [float(horizon)] if horizon - steps[-1] >= step / 2 else steps[:-1] + [float(horizon)]


def figure_km(r: StudyResults) -> Figure:
    cohort = r.analysed
    groups = risk_groups(r.predictions["risk_at_horizon"].to_numpy())
    ticks = _time_ticks(r.spec.outcome.horizon)
    curves, at_risk = km_by_group(cohort[r.spec.outcome.time].to_numpy(float), cohort[r.spec.outcome.event].to_numpy(),
                                  groups, at_risk_times=ticks)
    ax = plot_km(curves, at_risk=at_risk, failure=True, xlabel=f"{r.spec.outcome.time_label} ({r.spec.outcome.time_unit})",
                 ylabel=f"Cumulative incidence of {_event_words(r)}", legend_title="Predicted risk group", xticks=ticks)
    return ax.figure


def figure_schoenfeld(r: StudyResults) -> Figure:
    by_name = _ph_labels(r)
    res = r.ph.residuals.assign(label=lambda f: f["term"].map(by_name))
    tests = r.ph.table[r.ph.table["scope"] != "coefficient"]
    tests = tests.assign(label=lambda f: f["term"].map(by_name).fillna("Global"))
    return plot_schoenfeld(res, tests, xlabel=f"Time ({r.spec.outcome.time_unit}; axis spaced on the Kaplan-Meier scale)")


def figure_nomogram(r: StudyResults) -> Figure:
    n = r.nomogram
    variables = {v: r.spec.variable(v) for v in n.points["predictor"].unique()}
    points = n.points.assign(predictor=n.points["predictor"].map(lambda v: variables[v].display),
                             value=[variables[p].level_label(v) if isinstance(v, str) else v
                                    for p, v in zip(n.points["predictor"], n.points["value"])])
    total = list(n.total["total_points"])
    axes = []  # one risk axis per horizon (outcome.horizons), shortest first
    for h, nh, predicted in _assessment.nomogram_horizons(r):
        reach = tuple(float(x) for x in nh.risk_from_points(np.array([0.0, max(total)])))
        ticks = np.array(risk_ticks(predicted, reach=reach))  # the cohort's 5th-95th percentile at least
        axes.append((f"Risk of {_event_words(r)} by {_assessment.horizon_words(r, h)}",
                     pd.DataFrame({"risk": ticks, "total_points": nh.points_for_risk(ticks)})))
    ax = plot_nomogram(points, axes[0][1], risk_label=axes[0][0], total_ticks=total, more_risks=axes[1:])
    return ax.figure


def figure_calibration(r: StudyResults) -> Figure:
    c = r.calibration
    return calibration_figure(r, c.groups, smooth=c.smooth.curve, predictions=r.predictions["risk_at_horizon"].to_numpy())


def calibration_figure(r: StudyResults, groups: pd.DataFrame, *, smooth: pd.DataFrame, predictions: np.ndarray,
                       apparent_label: str = "Apparent") -> Figure:
    """Calibration at the horizon of KM groups (bias-corrected too when ``groups`` has it) and a smooth curve."""
    ax = plot_calibration(groups, smooth=smooth, predictions=predictions, apparent_label=apparent_label,
                          horizon_label=f"{_event_words(r)} by {_horizon_words(r)}",
                          xlabel=f"Predicted probability of {_event_words(r)} by {_horizon_words(r)}",
                          ylabel="Observed probability (Kaplan-Meier)")
    return ax.figure


def figure_risk_distribution(r: StudyResults) -> Figure:
    ev = r.analysed[r.spec.outcome.event].to_numpy()
    frame = pd.DataFrame({"predicted": r.predictions["risk_at_horizon"].to_numpy(),
                          "group": np.where(ev == 1, f"{r.spec.outcome.event_label}", f"No {_event_words(r)}")})
    ax = plot_risk_distribution(frame, xlabel=f"Predicted risk of {_event_words(r)} by {_horizon_words(r)}")
    return ax.figure


def figure_decision(r: StudyResults) -> Figure:
    return decision_figure(r.decision_curve)


def decision_figure(frame: pd.DataFrame) -> Figure:
    """Net benefit and interventions avoided of a decision-curve frame (:func:`~.decision.net_benefit`)."""
    with figure_theme():
        fig, axes = plt.subplots(1, 2, figsize=(PAGE_WIDTH, PAGE_WIDTH * 0.42), layout="constrained")
        plot_decision_curve(frame, model_label="Nomogram", ax=axes[0])
        plot_interventions_avoided(frame, label="Nomogram", ax=axes[1])
    return fig


def figure_trajectories(r: StudyResults) -> Figure | None:
    if r.outcomes is None:
        return None
    o = r.outcomes
    long = pd.concat([o.trajectories(m).assign(measure=lab) for m, lab in
                      o.long[["measure", "measure_label"]].drop_duplicates().itertuples(index=False)], ignore_index=True)
    return plot_outcome_panels(long)


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
    return (f"Net benefit at a threshold is estimated from the patients whose predicted risk is at or above it "
            f"({int(first['n_treated'])} of {len(r.analysed)} at {fmt_pct(first['threshold'])}, "
            f"{int(last['n_treated'])} at {fmt_pct(last['threshold'])}); where they are few, one patient more or less "
            "moves the curve visibly, so its jagged course there is sampling noise, not a property of the model. "
            "The interventions-avoided curve divides the difference from treating all by the threshold odds pt/(1 − pt), which "
            "magnifies the same noise at low thresholds. A triangle on an axis edge marks where a curve leaves the "
            "plotted range.")


def note_schoenfeld(r: StudyResults) -> str:
    """How to read the time axis of the Schoenfeld residual plot."""
    return ("Scaled Schoenfeld residuals with a LOWESS smooth, one panel per model term; a flat smooth supports "
            "proportional hazards. As in R plot(cox.zph), the time axis is spaced on the Kaplan-Meier scale "
            f"(1 − S(t): periods with many events take more room) and labelled in {r.spec.outcome.time_unit}.")


def note_nomogram(r: StudyResults) -> str:
    """Which predicted risks the nomogram's risk axis covers."""
    risk = r.predictions["risk_at_horizon"].to_numpy(float)
    p5, p95 = np.quantile(risk, [0.05, 0.95])
    return (f"The risk axis is labelled over the predicted risks of the cohort: 90% of the patients have a risk "
            f"between {_risk_words(p5)} and {_risk_words(p95)}.")


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


def example_patient(r: StudyResults) -> dict[str, object]:
    """A worked example: the analysed patient whose predicted risk is closest to the median.

    Only predictor values are returned (never an identifier).
    """
    risk = r.predictions["risk_at_horizon"].to_numpy()
    i = int(np.argmin(np.abs(risk - np.median(risk))))
    row = r.analysed.iloc[i]
    return {v: (row[v] if r.spec.variable(v).kind == "continuous" else str(row[v])) for v in r.model.variables}


def model_design(r: StudyResults):
    return encode(r.spec, r.analysed, r.model.variables)


# registered above by name; imported last (it formats with this module's helpers)
from . import external_report as _external  # noqa: E402
from . import assessment_report as _assessment  # noqa: E402

TABLES.update(_assessment.TABLES)  # every horizon, intervals, clinical impact (empty / None without them)
FIGURES.update(_assessment.FIGURES)
