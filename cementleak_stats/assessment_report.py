"""The report's sections on performance at every horizon, intervals and the clinical impact
curve: display tables, figures and numbers for prose.

Registered in :data:`cementleak_stats.presentation.TABLES` / ``FIGURES`` (``horizons_*``,
``corrected_ci``, ``net_benefit_ci``, ``roc``, ``calibration_horizons``, ``clinical_impact``
and their ``validation_`` twins) and read by ``report/_sections/horizons.qmd`` and
``report/_sections/impact.qmd`` through :class:`~cementleak_stats.report_prose.AssessmentText`
(``R.assessment``).  Nothing here
computes a statistic: every number is in :attr:`StudyResults.assessment
<cementleak_stats.study.StudyResults>` (:class:`~cementleak_stats.assessment.ModelAssessment`).
Without it (or without a validation cohort) a table is an empty frame and a figure ``None``.

The English words of this module are plain literals in :data:`WORDS` and the table headers
below, so that a translation catalog can route them.

Why one module of about 400 lines: every function here is a short display of one part of
``ModelAssessment`` (horizons, intervals, risk groups, comparator, LASSO, clinical impact) with the
same few formatters (:func:`.presentation.est_ci`, :func:`horizon_words`), registered together in
:data:`TABLES` / :data:`FIGURES`; the prose of the same sections is in :mod:`.report_prose`.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from . import presentation as P
from .i18n import T, active, mark
from .i18n import series as _i18n_series
from .i18n import text as tr_text
from .model_file import horizon_label
from .table_display import term_label
from .figures import PAGE_WIDTH, figure_theme, plot_calibration
from .figures.performance import plot_clinical_impact, plot_roc
from .figures.theme import new_panels, panel_letter

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from .assessment import CohortAssessment
    from .nomogram import Nomogram
    from .study import StudyResults

#: row labels of the per-horizon table, by measure (in display order)
WORDS: dict[str, str] = {
    "auc": "Time-dependent AUC",
    "brier": "Brier score",
    "ipa": "IPA (index of prediction accuracy)",
    "ibs": "Integrated Brier score",
    "calibration_slope": "Calibration slope",
    "o_e": "Observed / expected events",
    "ici": "ICI",
    "e90": "E90",
}
#: digits per measure
_DIGITS = {"auc": 3, "brier": 3, "ipa": 3, "ibs": 3, "calibration_slope": 2, "o_e": 2, "ici": 3, "e90": 3}


def _cohort(r: StudyResults, which: str) -> CohortAssessment | None:
    a = r.assessment
    if a is None:
        return None
    return a.development if which == "development" else a.validation


def horizon_words(r: StudyResults, h: float) -> str:
    """'6 months', '1 year': a horizon in the study's time unit (singular for 1)."""
    unit = r.spec.outcome.time_unit
    from .i18n import has

    if active() != "en" and has("{n} " + unit):  # '6个月' in a report in Chinese
        return T("{n} " + unit, n=f"{h:g}")
    return horizon_label(h, unit)


_h = horizon_words


def table_horizons(r: StudyResults, which: str = "development") -> pd.DataFrame:
    """One row per measure, one column per horizon (shortest first, as the figures): estimate (95% CI)."""
    c = _cohort(r, which)
    if c is None:
        return pd.DataFrame()
    m = c.performance.measures
    out = {T("Measure"): [T(WORDS[k]) for k in WORDS]}
    for h in sorted(c.performance.horizons):
        part = m[m["horizon"] == h].set_index("measure")
        out[_h(r, h)] = [P.est_ci(*part.loc[k, ["estimate", "ci_low", "ci_high"]].astype(float), _DIGITS[k]) for k in WORDS]
    return pd.DataFrame(out)


def table_corrected_ci(r: StudyResults) -> pd.DataFrame:
    """Harrell's C, Somers' Dxy and the calibration slope: apparent, optimism-corrected (95% CI)."""
    a = r.assessment
    if a is None or not len(a.corrected_ci):
        return pd.DataFrame()
    ci = a.corrected_ci.set_index("index")
    v = r.validation.set_index("index")
    names = {"C": "Harrell's C", "Dxy": "Somers' Dxy", "Slope": "Calibration slope"}
    return pd.DataFrame({
        T("Index"): [T(x) for x in names.values()],
        T("Apparent"): [P.fmt_num(float(v.loc[i, "apparent"]), 3) for i in names],
        T("Optimism"): [P.fmt_num(float(v.loc[i, "optimism"]), 3) for i in names],
        T("Optimism-corrected (95% CI)"): [P.est_ci(*ci.loc[i, ["corrected", "ci_low", "ci_high"]].astype(float), 3)
                                        for i in names],
    })


def table_net_benefit_ci(r: StudyResults, which: str = "development") -> pd.DataFrame:
    """Net benefit at the reported thresholds with bootstrap 95% intervals."""
    c = _cohort(r, which)
    if c is None:
        return pd.DataFrame()
    d = c.net_benefit_ci
    return pd.DataFrame({
        T("Threshold"): [P.fmt_pct(x) for x in d["threshold"]],
        T("Net benefit: model (95% CI)"): [P.est_ci(e, lo, hi, 3) for e, lo, hi in zip(d["net_benefit_model"], d["ci_low"], d["ci_high"])],
        T("Net benefit: treat all (95% CI)"): [P.est_ci(e, lo, hi, 3) for e, lo, hi in
                                            zip(d["net_benefit_all"], d["all_ci_low"], d["all_ci_high"])],
        T("Model − treat all (95% CI)"): [P.est_ci(e, lo, hi, 3) for e, lo, hi in
                                       zip(d["difference"], d["difference_ci_low"], d["difference_ci_high"])],
    })


def figure_roc(r: StudyResults, which: str = "development") -> Figure | None:
    """Time-dependent ROC curves, one per horizon, the AUC (95% CI) in the legend."""
    c = _cohort(r, which)
    if c is None:
        return None
    perf = c.performance
    names = {h: f"{_h(r, h)}{mark(': ')}AUC {P.est_ci(perf.value(h, 'auc'), perf.value(h, 'auc', 'ci_low'), perf.value(h, 'auc', 'ci_high'), 2)}"
             for h in perf.horizons}
    order = sorted(perf.horizons)
    frame = pd.concat([perf.roc[perf.roc["horizon"] == h].assign(curve=names[h]) for h in order], ignore_index=True)
    return plot_roc(frame, xlabel=T("1 − specificity (false-positive rate)"), ylabel=T("Sensitivity (true-positive rate)"),
                    chance_label=T("Chance")).figure


def figure_calibration_horizons(r: StudyResults, which: str = "development") -> Figure | None:
    """Calibration at each horizon (one panel each); None with a single horizon (the main figure shows it)."""
    c = _cohort(r, which)
    if c is None or len(c.performance.horizons) < 2:
        return None
    perf = c.performance
    event = P._event_words(r)
    hs = sorted(perf.horizons)
    ncols = min(3, len(hs))
    with figure_theme():
        fig, axes = new_panels(len(hs), ncols=ncols, panel_size=(PAGE_WIDTH / ncols, PAGE_WIDTH / ncols + 0.2))
        for i, (h, ax) in enumerate(zip(hs, axes)):
            g = perf.groups[perf.groups["horizon"] == h]
            if "corrected" in g.columns:  # a bias correction can overshoot past 0 or 1: drawn at the edge (the CSV keeps it)
                g = g.assign(corrected=g["corrected"].clip(0.0, 1.0))
            plot_calibration(g, horizon_label=T("{event} by {horizon}", event=event, horizon=_h(r, h)),
                             smooth=perf.smooth[perf.smooth["horizon"] == h],
                             predictions=perf.risks[f"risk_{h:g}"].to_numpy(), ax=ax,
                             xlabel=T("Predicted risk by {horizon}", horizon=_h(r, h)), ylabel=T("Observed (Kaplan-Meier)"),
                             apparent_label=T("Kaplan-Meier, groups") if which != "development" else T("Apparent"),
                             corrected_label=T("Bias-corrected"), smooth_label=T("Smoothed"), ideal_label=T("Ideal"))
            handles, labels = ax.get_legend_handles_labels()
            ax.get_legend().remove()
            panel_letter(ax, i)
        fig.legend(handles, labels, loc="outside lower center", ncols=len(labels), frameon=False)
    return fig


def table_risk_groups(r: StudyResults, which: str = "development") -> pd.DataFrame:
    """The risk groups: points and risk ranges, patients, events, observed risk, HR against the lowest."""
    c = _cohort(r, which)
    if c is None:
        return pd.DataFrame()
    g = c.risk_groups
    s = g.summary
    hr = g.hazard_ratios.set_index("group")

    def span(lo: float, hi: float, fmt) -> str:
        if not np.isfinite(lo):
            return f"< {fmt(hi)}"
        return f"≥ {fmt(lo)}" if not np.isfinite(hi) else T("{low} to < {high}", low=fmt(lo), high=fmt(hi))

    def hr_text(group: int) -> str:
        if group not in hr.index:
            return T("1 (reference)")
        row = hr.loc[group]
        return P.est_ci(row["hr"], row["ci_low"], row["ci_high"], 2) if np.isfinite(row["hr"]) else T("not estimable")

    return pd.DataFrame({
        T("Group"): [tr_text(x) for x in s["label"]],
        T("Total points"): [span(lo, hi, lambda x: P.fmt_num(x, 1)) for lo, hi in zip(s["points_low"], s["points_high"])],
        T("Predicted risk by {horizon}", horizon=_h(r, g.horizon)): [span(lo, hi, lambda x: P.fmt_pct(x, 1)) for lo, hi in
                                                                     zip(s["risk_low"], s["risk_high"])],
        T("Patients"): s["n"], T("Events"): s["events"],
        T("Observed risk (95% CI)"): [T("{est} ({low} to {high})", est=P.fmt_pct(o, 1), low=P.fmt_pct(lo, 1), high=P.fmt_pct(hi, 1))
                                      if n else "–" for o, lo, hi, n in zip(s["observed_risk"], s["ci_low"], s["ci_high"], s["n"])],
        T("Mean predicted risk"): [P.fmt_pct(x, 1) if np.isfinite(x) else "–" for x in s["predicted_risk"]],
        T("HR (95% CI)"): [hr_text(int(x)) for x in s["group"]],
    })


def table_points_formula(r: StudyResults) -> pd.DataFrame:
    """Points per unit of each term and the constant: total points = constant + sum of points."""
    a = r.assessment
    if a is None:
        return pd.DataFrame()
    f = a.development.risk_groups.formula
    terms = f[f["term"] != "constant"]
    const = float(f.loc[f["term"] == "constant", "constant"].iloc[0])
    variable_of = {t.name: t.variable for t in r.model.terms}
    labels = list(terms["label"]) if active() == "en" else \
        [P.label_of_term(r, t, variable_of.get(t)) if t in variable_of else tr_text(lab) for t, lab in zip(terms["term"], terms["label"])]
    return pd.DataFrame({T("Term"): [*labels, T("Constant (every term 0)")],
                         T("Points per unit of the term"): [*(P.fmt_num(x, 3) for x in terms["points_per_unit"]),
                                                         P.fmt_num(const, 2)]})


def figure_risk_groups(r: StudyResults, which: str = "development") -> Figure | None:
    """Cumulative incidence by risk group with numbers at risk and the log-rank test."""
    c = _cohort(r, which)
    if c is None:
        return None
    g = c.risk_groups
    lr = g.logrank.iloc[0]
    test = "log-rank " + T("χ² = {chisq}, df = {df}, {p}", chisq=P.fmt_num(lr['chisq'], 1), df=int(lr['df']),
                           p=P.fmt_p(lr['p_value'])) if np.isfinite(lr["chisq"]) else ""
    return P.risk_group_figure(r, g, legend_title=T("Risk group (nomogram total points)") + (mark("; ") + test if test else ""))


def _comparison(r: StudyResults, which: str):
    c = _cohort(r, which)
    return None if c is None else c.comparison


def table_comparator(r: StudyResults, which: str = "development") -> pd.DataFrame:
    """Harrell's C and the time-dependent AUC of the model and the comparator, and their difference."""
    cmp = _comparison(r, which)
    if cmp is None:
        return pd.DataFrame()
    d = cmp.discrimination  # Harrell's C (no horizon), then the AUC at each horizon, shortest first (as the figures)
    d = d.sort_values("horizon", na_position="first", kind="stable")
    names = [T("Harrell's C") if m == "c_index" else T("Time-dependent AUC at {horizon}", horizon=_h(r, h))
             for m, h in zip(d["measure"], d["horizon"])]
    return pd.DataFrame({
        T("Measure"): names, T("Model"): [P.fmt_num(x, 3) for x in d["model"]],
        _comparator_label(r, cmp): [P.fmt_num(x, 3) for x in d["comparator"]],
        T("Difference (95% CI)"): [P.est_ci(x, lo, hi, 3) for x, lo, hi in zip(d["difference"], d["ci_low"], d["ci_high"])],
        T("P value"): [P.format_p(p) if np.isfinite(p) else "–" for p in d["p_value"]],
    })


def _comparator_label(r: StudyResults, cmp) -> str:
    """The existing score's name, in the study file's words of the report's language."""
    c = getattr(r.spec.analysis, "comparator", None)
    return c.label if active() != "en" and c is not None and getattr(c, "label", "") else cmp.label


#: rows of the reclassification table
RECLASSIFICATION_WORDS = {"nri_events": "NRI among patients with the event", "nri_nonevents": "NRI among patients without it",
                          "nri": "NRI (category-free)", "idi": "IDI"}


def table_reclassification(r: StudyResults, which: str = "development") -> pd.DataFrame:
    """Category-free NRI and IDI of the model against the comparator at the main horizon."""
    cmp = _comparison(r, which)
    if cmp is None:
        return pd.DataFrame()
    t = cmp.reclassification.set_index("measure")
    return pd.DataFrame({T("Measure"): [T(x) for x in RECLASSIFICATION_WORDS.values()],
                         T("Estimate (95% CI)"): [P.est_ci(*t.loc[m, ["estimate", "ci_low", "ci_high"]].astype(float), 3)
                                               for m in RECLASSIFICATION_WORDS]})


def figure_comparator_decision(r: StudyResults, which: str = "development") -> Figure | None:
    """One decision curve with both models, treat all and treat none."""
    from .figures import OKABE_ITO, plot_decision_curve
    from .figures.decision import clip_marks

    cmp = _comparison(r, which)
    if cmp is None:
        return None
    d = cmp.decision_curve.sort_values("threshold")
    with figure_theme():
        ax = plot_decision_curve(d, model_label=T("Model (nomogram)"), all_label=T("Treat all"), none_label=T("Treat none"),
                                 xlabel=T("Threshold probability"), ylabel=T("Net benefit"))
        colour = OKABE_ITO["blue"]
        ax.plot(d["threshold"], d["net_benefit_comparator"], color=colour, linewidth=1.4, linestyle="-.",
                label=_comparator_label(r, cmp),
                gid="dca-comparator", zorder=3)
        clip_marks(ax, d["threshold"].to_numpy(float), d["net_benefit_comparator"].to_numpy(float), ylim=ax.get_ylim(),
                   color=colour)
        ax.legend(loc="lower left", bbox_to_anchor=(0.0, 1.0), frameon=False, ncols=2)  # above: never over a curve
    return ax.figure


def _lasso_labels(r: StudyResults) -> dict[str, str]:
    return {t.name: term_label(r, t, 1) for v in r.lasso.selection.variables for t in r.terms_of(v)}


def _lasso_lines(r: StudyResults) -> dict[str, float]:
    sel = r.lasso.selection
    return {T("λ min (smallest deviance)"): sel.lambda_min, T("λ 1-SE"): sel.lambda_1se}


def figure_lasso_path(r: StudyResults) -> Figure | None:
    """Coefficient paths of the candidate terms (standardized scale)."""
    from .figures.lasso import plot_lasso_path

    if r.lasso is None:
        return None
    sel = r.lasso.selection
    path = sel.path.assign(coef=sel.path["coef"] * sel.path["term"].map(sel.term_sd))
    return plot_lasso_path(path, labels=_lasso_labels(r), chosen=_lasso_lines(r),
                           ylabel=T("Coefficient (standardized term)")).figure


def figure_lasso_cv(r: StudyResults) -> Figure | None:
    from .figures.lasso import plot_lasso_cv

    return None if r.lasso is None else plot_lasso_cv(r.lasso.selection.cv, chosen=_lasso_lines(r),
                                                      ylabel=T("Cross-validated partial-likelihood deviance")).figure


def table_lasso(r: StudyResults) -> pd.DataFrame:
    """Every candidate term: its LASSO coefficient at the chosen penalty, whether its variable was
    selected, and how often the bootstrap replicates selected it."""
    if r.lasso is None:
        return pd.DataFrame()
    sel, freq = r.lasso.selection, r.lasso.selection_frequency.set_index("variable")["frequency"]
    var_of = {t.name: v for v in sel.variables for t in r.terms_of(v)}
    labels = _lasso_labels(r)
    return pd.DataFrame({
        T("Term"): [labels[t] for t in sel.terms],
        T("LASSO coefficient (λ = {value})", value=P.fmt_num(sel.lambda_chosen, 4)): [P.fmt_num(float(sel.coef[t]), 4) for t in sel.terms],
        T("Selected"): [T("yes") if var_of[t] in sel.selected else "" for t in sel.terms],
        T("Selected in bootstrap replicates"): [P.fmt_pct(float(freq[var_of[t]])) for t in sel.terms],
    })


def table_lasso_validation(r: StudyResults) -> pd.DataFrame:
    """Harrell's C and the calibration slope corrected with the LASSO repeated in every replicate."""
    if r.lasso is None:
        return pd.DataFrame()
    v = r.lasso.validation.set_index("index")
    std = r.validation.set_index("index")
    names = {"C": "Harrell's C", "Dxy": "Somers' Dxy", "Slope": "Calibration slope"}
    return pd.DataFrame({T("Index"): [T(x) for x in names.values()],
                         T("Apparent"): [P.fmt_num(float(v.loc[i, "apparent"]), 3) for i in names],
                         T("Corrected: model refitted"): [P.fmt_num(float(std.loc[i, "corrected"]), 3) for i in names],
                         T("Corrected: LASSO repeated"): [P.fmt_num(float(v.loc[i, "corrected"]), 3) for i in names]})


def figure_clinical_impact(r: StudyResults, which: str = "development") -> Figure | None:
    c = _cohort(r, which)
    if c is None:
        return None
    ci = c.clinical_impact
    per = int(ci["per"].iloc[0])
    return plot_clinical_impact(ci, per=per, high_label=T("Number classed high risk"), xlabel=T("Threshold probability"),
                                ylabel=T("Number per {per} patients", per=f"{per:,}"),
                                event_label=T("Number high risk with {event}", event=P._event_words(r))).figure


def nomogram_horizons(r: StudyResults) -> list[tuple[float, Nomogram, np.ndarray]]:
    """(horizon, the nomogram with its risk axis at that horizon, the cohort's predicted risks
    there) for every horizon, shortest first; the main horizon alone without the assessment.
    The points and the linear predictor are the same at every horizon; only S0(h) changes."""
    a = r.assessment
    if a is None:
        return [(r.spec.outcome.horizon, r.nomogram, r.predictions["risk_at_horizon"].to_numpy())]
    perf = a.development.performance
    s0 = dict(zip(perf.baseline_survival["horizon"], perf.baseline_survival["s0"]))
    return [(h, replace(r.nomogram, horizon=h, baseline_survival=float(s0[h])), perf.risks[f"risk_{h:g}"].to_numpy())
            for h in sorted(perf.horizons)]


def _series(items: list[str]) -> str:
    return _i18n_series(items)  # 'a, b and c' ('a、b和c' in Chinese)


#: display tables and figures of this module, registered in presentation.TABLES / FIGURES
TABLES = {
    "horizons": lambda r: table_horizons(r),
    "risk_groups": lambda r: table_risk_groups(r),
    "validation_risk_groups": lambda r: table_risk_groups(r, "validation"),
    "points_formula": table_points_formula,
    "lasso": table_lasso,
    "lasso_validation": table_lasso_validation,
    "comparator": lambda r: table_comparator(r),
    "reclassification": lambda r: table_reclassification(r),
    "validation_comparator": lambda r: table_comparator(r, "validation"),
    "validation_reclassification": lambda r: table_reclassification(r, "validation"),
    "corrected_ci": table_corrected_ci,
    "net_benefit_ci": lambda r: table_net_benefit_ci(r),
    "validation_horizons": lambda r: table_horizons(r, "validation"),
    "validation_net_benefit_ci": lambda r: table_net_benefit_ci(r, "validation"),
}
FIGURES = {
    "risk_groups": lambda r: figure_risk_groups(r),
    "validation_risk_groups": lambda r: figure_risk_groups(r, "validation"),
    "lasso_path": figure_lasso_path,
    "lasso_cv": figure_lasso_cv,
    "comparator_decision": lambda r: figure_comparator_decision(r),
    "validation_comparator_decision": lambda r: figure_comparator_decision(r, "validation"),
    "roc": lambda r: figure_roc(r),
    "calibration_horizons": lambda r: figure_calibration_horizons(r),
    "clinical_impact": lambda r: figure_clinical_impact(r),
    "validation_roc": lambda r: figure_roc(r, "validation"),
    "validation_calibration_horizons": lambda r: figure_calibration_horizons(r, "validation"),
    "validation_clinical_impact": lambda r: figure_clinical_impact(r, "validation"),
}
__all__ = ["TABLES", "FIGURES", "horizon_words"]
