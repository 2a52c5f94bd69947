"""The report's section on the validation cohort: display tables, figures and numbers for prose.

Registered in :data:`cementleak_stats.presentation.TABLES` / ``FIGURES`` (``external_*``) and
read by ``report/_sections/external.qmd`` through :class:`~cementleak_stats.report_prose.ExternalText`
(``R.external``).  Nothing here computes a statistic: every number is in
:attr:`StudyResults.validation_cohort <cementleak_stats.study.StudyResults>`
(:class:`~cementleak_stats.validation.external.CohortValidation`).  Without a validation cohort
every table is an empty frame and every figure ``None``, and the section is hidden by its flag.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from . import presentation as P
from .i18n import T, active, mark
from .i18n import text as tr_text
from .presentation import est_ci
from .table_display import baseline_display

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from .study import StudyResults

def _ci(row: pd.Series, digits: int = 3) -> str:
    return est_ci(row["estimate"], row["ci_low"], row["ci_high"], digits)


def _label(r: StudyResults) -> str:
    """The validation cohort's name in the report's language (the study file's words)."""
    v = r.validation_cohort
    if v is None:
        return "–"
    val = r.spec.validation
    return (val.label or T(val.display_label)) if active() != "en" and val is not None else v.label


def _mean(x: float) -> str:
    """A mean that is 0 by construction (lp in the development cohort) without a minus sign."""
    return P.fmt_num(round(float(x), 2) + 0.0)


def table_external_cohorts(r: StudyResults) -> pd.DataFrame:
    """Table 1 by cohort with the SMD between the cohorts (levels folded as in Table 1)."""
    v = r.validation_cohort
    if v is None:
        return pd.DataFrame()
    # from the tidy rows, in the report's language; the cohorts by the names they have there
    groups = {c: (lab.replace(v.label, _label(r)), k) for c, (lab, k) in v.baseline.groups.items()}
    d = P.fold_levels(baseline_display(dataclasses.replace(v.baseline, groups=groups), r.spec, groupby=" "))
    return d.rename(columns=lambda c: c.removeprefix("Cohort: "))


def table_external_performance(r: StudyResults) -> pd.DataFrame:
    """Discrimination and calibration of the frozen model in the validation cohort, with CIs."""
    v = r.validation_cohort
    if v is None:
        return pd.DataFrame()
    rows = pd.concat([v.discrimination[v.discrimination["measure"] != "dxy"],
                      v.calibration[~v.calibration["measure"].isin(["emax"])]], ignore_index=True)
    ideal = {"c_index": "1", "auc": "1"} | {m: P.fmt_num(i, 0) for m, i in zip(v.calibration["measure"], v.calibration["ideal"])
                                            if np.isfinite(i)}
    return pd.DataFrame({
        T("Measure"): [tr_text(x) for x in rows["label"]],
        T("Estimate (95% CI)"): [_ci(row, 2 if row["measure"] in ("o_e_km", "o_e_poisson", "calibration_slope",
                                                                 "calibration_intercept") else 3)
                              for _, row in rows.iterrows()],
        T("Ideal"): [ideal.get(m, "") for m in rows["measure"]],
    })


def table_external_case_mix(r: StudyResults) -> pd.DataFrame:
    """Both cohorts side by side: size, events, observed and predicted risk, the linear predictor."""
    v = r.validation_cohort
    if v is None:
        return pd.DataFrame()
    h = P._horizon_words(r)
    cm = v.case_mix
    return pd.DataFrame({
        T("Cohort"): [_label(r) if c == "validation" else tr_text(lab) for c, lab in zip(cm["cohort"], cm["label"])],
        T("Patients"): cm["n"],
        T("Events"): cm["events"],
        T("Observed risk by {horizon} (Kaplan-Meier)", horizon=h): [P.fmt_pct(x, 1) for x in cm["observed_risk"]],
        T("Mean predicted risk by {horizon}", horizon=h): [P.fmt_pct(x, 1) for x in cm["predicted_risk"]],
        T("Linear predictor, mean (SD)"): [f"{_mean(m)}{mark(' (')}{P.fmt_num(s)}{mark(')')}" for m, s in zip(cm["lp_mean"], cm["lp_sd"])],
    })


def table_external_comparison(r: StudyResults) -> pd.DataFrame:
    """C and calibration slope: development (apparent, bootstrap-corrected) next to the validation cohort."""
    v = r.validation_cohort
    if v is None:
        return pd.DataFrame()
    val = r.validation.assign(index=lambda f: f["index"].str.lower()).set_index("index")
    c_app = float(r.concordance.set_index("measure").loc["c_index", "estimate"])
    rows = [(T("Harrell's C"), c_app, float(val.loc["c", "corrected"]), _ci(v.discrimination.set_index("measure").loc["c_index"])),
            (T("Calibration slope"), 1.0, float(val.loc["slope", "corrected"]),
             _ci(v.calibration.set_index("measure").loc["calibration_slope"], 2))]
    dev = T("Development set") if v.kind == "split" else T("Development cohort")
    return pd.DataFrame({
        T("Measure"): [a for a, *_ in rows],
        T("{cohort}: apparent", cohort=dev): [P.fmt_num(b, 3) for _, b, _, _ in rows],
        T("{cohort}: bootstrap optimism-corrected (B = {b})", cohort=dev, b=r.spec.analysis.bootstrap_b):
            [P.fmt_num(c, 3) for _, _, c, _ in rows],
        T("{label} (95% CI)", label=_label(r)): [d for *_, d in rows],
    })


def figure_external_calibration(r: StudyResults) -> Figure | None:
    v = r.validation_cohort
    if v is None:
        return None
    return P.calibration_figure(r, v.groups, smooth=v.smooth.curve, predictions=v.predictions["risk_at_horizon"].to_numpy(),
                                apparent_label="Kaplan-Meier, groups")


def figure_external_decision(r: StudyResults) -> Figure | None:
    v = r.validation_cohort
    return None if v is None else P.decision_figure(v.decision_curve)
