"""Numbers and words of the report's sections, formatted for prose: :class:`AssessmentText`
(``R.assessment``: horizons, intervals, risk groups, comparator, clinical impact) and
:class:`ExternalText` (``R.external``: the validation cohort).

Every attribute is a string; without the results it is about, a dash (the section that uses it is
hidden then).  Nothing here computes a statistic: the numbers are in ``StudyResults``, and the
tables and figures of the same sections are in :mod:`.assessment_report` and
:mod:`.external_report`, whose formatters these use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from . import presentation as P
from .assessment_report import _cohort, _comparator_label, _comparison, _h, _series
from .external_report import _ci, _label, _mean
from .i18n import T, active, mark
from .i18n import text as tr_text
from .presentation import est_ci

if TYPE_CHECKING:
    from .study import StudyResults
    from .validation.external import CohortValidation


def _reads(method: str, *args: object) -> property:
    """A string attribute read by one of the class's formatting methods: ``auc = _reads("_measure", "auc")``."""
    return property(lambda self: getattr(self, method)(*args))


#: the threshold the prose of the clinical impact curve reads out
IMPACT_THRESHOLD = 0.20

#: how the prose names each kind of validation cohort
KIND_WORDS = {"temporal": "a temporal validation cohort (later patients)",
              "external": "an external validation cohort (another centre)",
              "split": "a share of the cohort held out before any modelling (split-sample validation)"}


class AssessmentText:
    """Numbers and words of the horizons and impact sections, formatted for prose (``R.assessment``).

    Every attribute is a string; without the results it is a dash.
    """

    def __init__(self, r: StudyResults) -> None:
        self._r = r
        self._a = r.assessment

    def _ci(self, index: str) -> str:
        if self._a is None or not len(self._a.corrected_ci):
            return "–"
        row = self._a.corrected_ci.set_index("index").loc[index]
        return est_ci(row["corrected"], row["ci_low"], row["ci_high"], 3)

    #: '0.842 (0.782 to 0.914)': the optimism-corrected C with its two-stage interval.
    c_corrected = _reads("_ci", "C")
    slope_corrected = _reads("_ci", "Slope")

    @property
    def outer(self) -> str:
        return "–" if self._a is None or not len(self._a.corrected_ci) else str(int(self._a.corrected_ci["n_outer_boot"].iloc[0]))

    @property
    def inner(self) -> str:
        return "–" if self._a is None or not len(self._a.corrected_ci) else str(int(self._a.corrected_ci["n_inner"].iloc[0]))

    @property
    def horizons(self) -> str:
        """'6 and 12 months': shortest first, as the tables and figures."""
        hs = sorted(self._r.spec.outcome.all_horizons)
        if active() != "en":  # '6个月和12个月'
            return _series([_h(self._r, h) for h in hs])
        return f"{_series([f'{h:g}' for h in hs])} {self._r.spec.outcome.time_unit}"

    def _measure(self, measure: str, which: str = "development", digits: int = 3) -> str:
        c = _cohort(self._r, which)
        if c is None:
            return "–"
        perf = c.performance
        parts = [T("{value} at {horizon}", value=est_ci(perf.value(h, measure), perf.value(h, measure, 'ci_low'),
                                                         perf.value(h, measure, 'ci_high'), digits), horizon=_h(self._r, h))
                 for h in sorted(perf.horizons)]
        return _series(parts)

    #: '0.892 (...) at 6 months and 0.900 (0.822 to 0.979) at 12 months'.
    auc = _reads("_measure", "auc")
    ipa = _reads("_measure", "ipa")
    ibs = _reads("_measure", "ibs")
    validation_auc = _reads("_measure", "auc", "validation")
    validation_ipa = _reads("_measure", "ipa", "validation")

    def _impact(self, which: str, threshold: float) -> tuple[str, str]:
        c = _cohort(self._r, which)
        if c is None:
            return "–", "–"
        ci = c.clinical_impact
        row = ci.iloc[int(np.argmin(np.abs(ci["threshold"].to_numpy() - threshold)))]
        return f"{row['high_risk']:.0f}", f"{row['high_risk_with_event']:.0f}"

    def _groups(self, which: str = "development"):
        c = _cohort(self._r, which)
        return None if c is None else c.risk_groups

    @property
    def groups_source(self) -> str:
        """'the tertiles of the development cohort' / 'prespecified cut-offs (points)'."""
        g = self._groups()
        if g is None:
            return "–"
        words = {"tertiles of the development cohort": "the tertiles of the development cohort's total points",
                 "prespecified (points)": "cut-offs of the total points prespecified in the study file",
                 "prespecified (risk)": "cut-offs of the predicted risk prespecified in the study file"}
        return T(words[g.source]) if g.source in words else g.source

    @property
    def groups_cutoffs(self) -> str:
        """'111.8 and 142.0 points'."""
        g = self._groups()
        return "–" if g is None else T("{values} points", values=_series([P.fmt_num(c, 1) for c in g.cutoffs]))

    def _logrank(self, which: str) -> str:
        g = self._groups(which)
        if g is None:
            return "–"
        lr = g.logrank.iloc[0]
        return T("χ² = {chisq}, df = {df}, {p}", chisq=P.fmt_num(lr['chisq'], 1), df=int(lr['df']), p=P.fmt_p(lr['p_value']))

    groups_logrank = _reads("_logrank", "development")
    validation_groups_logrank = _reads("_logrank", "validation")

    def _risks(self, which: str) -> str:
        g = self._groups(which)
        if g is None:
            return "–"
        return _series([f"{P.fmt_pct(o, 1)}{mark(' (')}{tr_text(lab).lower()}{mark(')')}"
                        for o, lab in zip(g.summary["observed_risk"], g.summary["label"]) if np.isfinite(o)])

    #: '6.1% (low risk), 9.1% (intermediate risk) and 64.7% (high risk)'.
    groups_observed = _reads("_risks", "development")
    validation_groups_observed = _reads("_risks", "validation")

    def _cmp(self, which: str, measure: str, col: str = "difference", horizon: float | None = None) -> str:
        cmp = _comparison(self._r, which)
        if cmp is None:
            return "–"
        d = cmp.discrimination
        row = d[(d["measure"] == measure) & ((d["horizon"] == horizon) if horizon is not None else True)].iloc[0]
        if col == "difference":
            return est_ci(row["difference"], row["ci_low"], row["ci_high"], 3)
        return P.fmt_num(float(row[col]), 3)

    @property
    def comparator(self) -> str:
        cmp = _comparison(self._r, "development")
        return "–" if cmp is None else _comparator_label(self._r, cmp)

    comparator_c = _reads("_cmp", "development", "c_index", "comparator")
    model_c = _reads("_cmp", "development", "c_index", "model")
    delta_c = _reads("_cmp", "development", "c_index")

    @property
    def delta_auc(self) -> str:
        """ΔAUC at the main horizon, with its CI."""
        return self._cmp("development", "auc", horizon=self._r.spec.outcome.horizon)

    validation_delta_c = _reads("_cmp", "validation", "c_index")

    def _recl(self, which: str, measure: str) -> str:
        cmp = _comparison(self._r, which)
        if cmp is None:
            return "–"
        row = cmp.reclassification.set_index("measure").loc[measure]
        return est_ci(row["estimate"], row["ci_low"], row["ci_high"], 3)

    nri = _reads("_recl", "development", "nri")
    idi = _reads("_recl", "development", "idi")

    @property
    def comparator_b(self) -> str:
        cmp = _comparison(self._r, "development")
        return "–" if cmp is None else str(cmp.n_boot)

    @property
    def impact_threshold(self) -> str:
        return P.fmt_pct(IMPACT_THRESHOLD)

    @property
    def impact_high(self) -> str:
        return self._impact("development", IMPACT_THRESHOLD)[0]

    @property
    def impact_events(self) -> str:
        return self._impact("development", IMPACT_THRESHOLD)[1]


class ExternalText:
    """Numbers and words of the validation-cohort section, formatted for prose (``R.external``).

    Every attribute is a string; without a validation cohort they are dashes (the section that
    uses them is hidden then).
    """

    def __init__(self, r: StudyResults) -> None:
        self._r = r
        self._v: CohortValidation | None = r.validation_cohort

    def _get(self, frame: str, measure: str, digits: int = 3) -> str:
        if self._v is None:
            return "–"
        row = getattr(self._v, frame).set_index("measure").loc[measure]
        return _ci(row, digits)

    @property
    def label(self) -> str:
        return _label(self._r)

    @property
    def kind(self) -> str:
        return "–" if self._v is None else T(KIND_WORDS[self._v.kind])

    @property
    def n(self) -> str:
        return "–" if self._v is None else str(self._v.n)

    @property
    def events(self) -> str:
        return "–" if self._v is None else str(self._v.n_events)

    @property
    def n_development(self) -> str:
        return str(len(self._r.analysed))

    c_index = _reads("_get", "discrimination", "c_index")
    auc = _reads("_get", "discrimination", "auc")
    o_e = _reads("_get", "calibration", "o_e_km", 2)

    def _one(self, measure: str, fmt) -> str:
        return "–" if self._v is None else fmt(self._v.estimate(measure))

    observed = _reads("_one", "observed_risk", lambda x: P.fmt_pct(x, 1))
    predicted = _reads("_one", "predicted_risk", lambda x: P.fmt_pct(x, 1))
    slope = _reads("_get", "calibration", "calibration_slope", 2)
    ici = _reads("_one", "ici", lambda x: P.fmt_num(x, 3))

    def _lp(self, cohort: str) -> str:
        if self._v is None:
            return "–"
        row = self._v.case_mix.set_index("cohort").loc[cohort]
        return T("{mean} (SD {sd})", mean=_mean(row['lp_mean']), sd=P.fmt_num(row['lp_sd']))

    lp_development = _reads("_lp", "development")
    lp_validation = _reads("_lp", "validation")

    @property
    def split_share(self) -> str:
        v = self._r.spec.validation
        return "–" if v is None or v.split is None else P.fmt_pct(v.split, 0)
