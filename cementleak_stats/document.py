"""What a Quarto document calls: load the results once, then one call per table, figure or number.

Documents stay thin (STYLE.md): they import only this module, never pandas, lifelines or
statsmodels, and every number in their prose comes from an attribute or method here, which
formats a value of :class:`~cementleak_stats.study.StudyResults`.

A document gets the study file and the results key as its parameters (:func:`load_report`);
without them the study file is ``study.yaml`` in the working directory or a parent of it (as
when ``quarto render`` is run by hand and runs a document from ``report/``).

Why one module of about 650 lines: it is the whole surface the documents import (``report/*.qmd``
import :func:`load_report` and nothing else), so every accessor a document's prose uses is here,
each a few lines over :mod:`.presentation`; splitting it would give the documents more than one door.
"""

from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass
from functools import cached_property, partial
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import yaml  # noqa: E402

from . import presentation as P  # noqa: E402
from .calculator import calculator_html  # noqa: E402
from .i18n import T, Speaking, has, is_cjk, mark, series, speak  # noqa: E402
from .i18n import text as tr_text  # noqa: E402
from .spec import load_spec  # noqa: E402
from .study import StudyResults, results_by_key, run_study  # noqa: E402
from .figure_cache import SharedFigures, shared_figures  # noqa: E402
from .figures.save import Drawn, drawing  # noqa: E402
from .formatting import format_value  # noqa: E402
from .table_display import label_with_unit  # noqa: E402


def find_study_file(start: Path | None = None) -> Path:
    here = (start or Path.cwd()).resolve()
    for d in (here, *here.parents):
        if (d / "study.yaml").is_file():
            return d / "study.yaml"
    return here / "study.yaml"


@dataclass(frozen=True)
class MarkdownTable:
    """A display table that renders as a real (pipe) table in HTML, DOCX and PDF alike."""

    frame: pd.DataFrame

    def _repr_markdown_(self) -> str:
        return pipe_table(self.frame)


#: characters of table type across the text width of the printed page (the PDF's 9.5-pt table type
#: on A4: about 99), a few less for safety: a table's columns share them (:func:`pipe_table`)
LINE_CHARS = 96


def pipe_table(frame: pd.DataFrame, *, min_width: int = 6, max_width: int = 36, padding: int = 2,
               line: int = LINE_CHARS) -> str:
    """A pandoc pipe table whose separator widths set sensible relative column widths.

    pandoc sizes the columns of a wide pipe table by the dashes in the separator line;
    ``DataFrame.to_markdown`` writes as many dashes as the longest cell, so one long note
    column squeezes every other column to a sliver.  Clamping the dashes keeps short columns
    readable and lets long text wrap.  A header wraps at its spaces, so it counts by its longest
    word; ``padding`` adds the cell insets, which a narrow column of numbers needs most (without
    it "<0.001" ran into the next column of the PDF's Table 1).

    The dashes are shares of the page's width, ``line`` characters: when the columns want more,
    each keeps its longest word (plus ``padding``) and the rest of the line is shared in
    proportion to what each wants beyond that.  Without this, a table with long labels (many
    predictors, long test names) shrank every column alike, and "<0.001" again ran into the
    next column while the table ran past the right margin.
    """
    f = frame.copy()
    f.columns = [str(c) for c in f.columns]
    cells = f.astype(str).replace({"nan": "", "None": "", "<NA>": ""})
    cells = cells.apply(lambda col: col.str.replace("|", "\\|", regex=False).str.replace("\n", " ", regex=False))
    need, want = [], []
    for c in cells.columns:
        longest_word = max([len(w) for v in [c, *cells[c]] for w in str(v).split()] or [1])
        longest = max([longest_word, *cells[c].str.len()])
        need.append(max(min_width, longest_word) + padding)
        want.append(max(min_width, longest_word, min(longest, max_width)) + padding)
    widths, extra = want, sum(want) - sum(need)
    if sum(want) > line and extra:
        spare = max(0, line - sum(need))
        widths = [n + int((w - n) * spare / extra) for n, w in zip(need, want)]
    head = "| " + " | ".join(cells.columns) + " |"
    sep = "|" + "|".join(":" + "-" * (w - 1) for w in widths) + "|"
    rows = ["| " + " | ".join(r) + " |" for r in cells.itertuples(index=False, name=None)]
    return "\n".join([head, sep, *rows])


class ReportView:
    """A view of one study's results (:class:`.study.StudyResults`) that documents read: every
    table, figure and sentence formatted in the report's language, nothing computed.
    ``R = load_report(study, results=results)`` in a setup cell."""

    def __init__(self, results: StudyResults, *, lang: str = "en", figures: SharedFigures | None = None):
        #: the language the report is written in (every call below runs in it)
        self.lang = lang
        #: the results as computed; ``results`` carries the study's words in ``lang``
        self._source = results
        self.results = results if lang == "en" else dataclasses.replace(results, spec=results.spec.localized(lang))
        self.spec = self.results.spec
        #: figure name -> its drawing (300-dpi PNG, width in inches, ...), or None: each figure is drawn once
        self._pngs: dict[str, Drawn] = {}
        #: these results' drawn figures, shared by every document of a report and its results
        #: folder (:func:`load_report` by results key; :mod:`.figure_cache`), or None: drawn here only
        self._figures = figures

    def __getattribute__(self, name: str):  # type: ignore[no-untyped-def]
        """Every public property and method runs in the report's language (:mod:`.i18n`)."""
        if name.startswith("_") or name in ("lang", "results", "spec"):
            return object.__getattribute__(self, name)
        return speak(object.__getattribute__(self, "lang"), object.__getattribute__, self, name)

    @cached_property
    def en(self) -> ReportView:
        """The same report in English (the English abstract of a report in another language)."""
        return self if self.lang == "en" else ReportView(self._source, figures=self._figures)

    # ---- blocks ---------------------------------------------------------------------------
    def table(self, name: str) -> MarkdownTable:
        """A display table by name (see :data:`cementleak_stats.presentation.TABLES`)."""
        return MarkdownTable(P.TABLES[name](self.results))

    def figure(self, name: str, *, width: int | None = None) -> None:
        """Draw a figure by name and display it as a 300-dpi PNG.

        ``width`` is the display width in CSS pixels (slides: about 960 fills a slide); by
        default the figure's own width (96 px per inch), which fits the printed page.
        """
        from IPython.display import Image, display

        if name not in self._pngs:
            draw = partial(self._draw, name)
            self._pngs[name] = draw() if self._figures is None else self._figures.get(self.lang, name, draw)
        drawn = self._pngs[name]
        if drawn is not None:
            display(Image(data=drawn.png, format="png", width=width or int(drawn.width * 96)))

    def _draw(self, name: str) -> Drawn:
        """Figure ``name`` as the results folder's 300-dpi PNG and its width in inches, with the
        PDF it is made from in English (None: the results have nothing to draw)."""
        fig = P.FIGURES[name](self.results)
        try:
            return drawing(fig, lang=self.lang)
        finally:
            if fig is not None:
                plt.close(fig)

    def figure_note(self, name: str) -> str:
        """What a reader must know to read figure ``name`` (a sentence or two; "" if nothing)."""
        return P.figure_note(name, self.results)

    def banner(self, *, compact: bool = False) -> str:
        """Markdown callout saying the data are synthetic (empty for real data); use ``output: asis``.

        ``compact``: one line, for a slide that has other content."""
        if not self.spec.study.synthetic:
            return ""
        title = T("SYNTHETIC DATA")
        if compact:
            return (f"::: {{.callout-warning title=\"{title}\"}}\n"
                    + T("A generated cohort (`cementleak simulate`), not real patients: for teaching only.") + "\n:::\n\n")
        return (f"::: {{.callout-warning title=\"{title}\"}}\n"
                + T("Every number, table and figure in this document comes from a **synthetic cohort** generated by "
                    "`cementleak simulate` (seeded, calibrated to the published summary figures). "
                    "They are not observations of real patients and must not be used for clinical decisions.") + "\n:::\n\n"
                # the PDF template prints a SYNTHETIC DATA line on every page when this is set
                "```{=typst}\n#state(\"cl-synthetic\").update(true)\n```\n")

    def calculator(self) -> str:
        """The interactive risk calculator as a raw HTML block (HTML output only)."""
        return "```{=html}\n" + calculator_html(self.results) + "\n```\n"

    @cached_property
    def external(self):
        """Numbers of the validation-cohort section (``R.external.c_index``; dashes without one)."""
        from .report_prose import ExternalText

        return ExternalText(self.results) if self.lang == "en" else Speaking(ExternalText(self.results), self.lang)

    @cached_property
    def assessment(self):
        """Numbers of the horizons, intervals and clinical impact sections (``R.assessment.auc``)."""
        from .report_prose import AssessmentText

        return AssessmentText(self.results) if self.lang == "en" else Speaking(AssessmentText(self.results), self.lang)

    # ---- what the study has: sections exist only then -------------------------------------
    def sections(self) -> dict[str, bool]:
        """Flags that switch the documents' conditional sections (``when-meta="cl.<flag>"``)."""
        r, a = self.results, self.spec.analysis
        return {
            "synthetic": bool(self.spec.study.synthetic),
            "screen": a.selection == "univariable_screen",
            "honest": r.validation_honest is not None,
            "event_details": r.event_details is not None,
            "repeated": r.outcomes is not None,
            "imputation": r.model_imputed is not None,
            "logistic": r.logistic is not None,
            "validation_cohort": r.validation_cohort is not None,
            "validation_split": r.validation_cohort is not None and r.validation_cohort.kind == "split",
            # every horizon with intervals (assessment.py); its calibration figure with 2+ horizons
            "assessment": r.assessment is not None,
            "intervals": r.assessment is not None and len(r.assessment.corrected_ci) > 0,
            "horizons": r.assessment is not None and len(r.assessment.horizons) > 1,
            "comparator": r.assessment is not None and r.assessment.development.comparison is not None,
            "lasso": getattr(r, "lasso", None) is not None,
            "citation": bool(self.spec.study.citation),
            "narrative_discussion": "discussion" in r.narrative,
            # a report in another language that carries the English abstract too (report.language)
            "english_abstract": self.lang != "en" and "en" in self.spec.report.language,
        }

    def metadata(self, *, title: bool = False, short_title: bool = False, banner: bool = False) -> str:
        """A YAML metadata block for an ``output: asis`` cell: the section flags (``cl``) and,
        when asked, the study's title as the document's title.  Quarto and the built-in engine
        both read it (pandoc merges metadata blocks wherever they stand).  ``banner`` appends the
        synthetic-data banner (:meth:`banner`), so that a document's preamble is one call."""
        data: dict[str, object] = {}
        if title or short_title:
            study = self.spec.study
            data["title"] = (study.short_title or study.title) if short_title else study.title
        data["cl"] = self.sections()
        block = "\n---\n" + yaml.safe_dump(data, allow_unicode=True, sort_keys=False, width=10_000) + "---\n\n"
        return block + (self.banner() if banner else "")

    def narrative(self, part: str) -> str:
        """The authors' text for ``part`` (background, discussion, limitations, question), or
        neutral text that is true of any study when the study has none; use ``output: asis``."""
        own = self.results.narrative
        text = (own.get(f"{part}.{self.lang}") if self.lang != "en" else None) or own.get(part)
        if text:
            return text
        return _NEUTRAL.get(part, lambda _: "")(self)

    # ---- words for prose --------------------------------------------------------------------
    @property
    def title(self) -> str:
        return self.spec.study.title

    @property
    def population(self) -> str:
        """The study population as a phrase that can follow 'in' ('patients with ...')."""
        p = self.spec.study.population.strip().rstrip(".")
        if not p:
            return T("the patients of this cohort")
        return p if p[:2].isupper() else p[0].lower() + p[1:]

    @property
    def setting(self) -> str:
        """'Population: ...; setting: ...; period: ...' with the parts the study file states."""
        st = self.spec.study
        parts = [f"{k}{mark(': ')}{v.strip().rstrip('.')}" for k, v in ((T("Population"), st.population),
                                                                           (T("setting"), st.centre),
                                                                           (T("period"), st.period)) if v.strip()]
        return (mark("; ").join(parts) + mark(".")) if parts else ""

    @property
    def time_origin(self) -> str:
        """' of surgery' / '' : what time is counted from, for 'within 12 months of surgery'."""
        o = self.spec.outcome.time_origin.strip()
        return f" of {o}" if o else ""

    @property
    def within(self) -> str:
        """'within 12 months of surgery': the outcome's window in words."""
        o = self.spec.outcome.time_origin.strip()
        return T("within {horizon} of {origin}", horizon=self.horizon, origin=o) if o else T("within {horizon}", horizon=self.horizon)

    @property
    def followup(self) -> str:
        return _quantity(self.spec.outcome.followup, self.spec.outcome.time_unit)

    @property
    def selection(self) -> str:
        """How the multivariable model was chosen, in one sentence (Methods)."""
        a = self.spec.analysis
        if a.selection == "univariable_screen":
            return T("Each of the {n} candidate predictors was tested alone; those with P < {p} entered the "
                     "multivariable model.", n=len(self.spec.candidates), p=f"{a.screen_p_value:g}")
        if a.selection == "lasso":
            return T("The {n} candidate predictors entered a Cox LASSO whose penalty was chosen by {k}-fold "
                     "cross-validation (lambda.{rule}); the variables it kept entered the multivariable model.",
                     n=len(self.spec.candidates), k=a.lasso_folds, rule=a.lasso_lambda)
        return T("The multivariable model contains the {n} predictors named in the study file before the analysis "
                 "(prespecified); no variable was selected on the data.", n=len(a.predictors))

    @property
    def selection_short(self) -> str:
        """'a univariable screen and a multivariable model' / 'a prespecified multivariable model'."""
        if self.spec.analysis.selection == "univariable_screen":
            return T("a univariable screen (P < {p}) and a multivariable model", p=f"{self.spec.analysis.screen_p_value:g}")
        if self.spec.analysis.selection == "lasso":
            return T("a cross-validated Cox LASSO and a multivariable model")
        return T("a prespecified multivariable model")

    @property
    def coding(self) -> str:
        """How each kind of predictor of the model entered it, from the study file (Methods)."""
        kinds: dict[str, list] = {}
        for name in self.results.predictors:
            v = self.spec.variable(name)
            kinds.setdefault(v.kind, []).append(v)
        parts = []
        if "continuous" in kinds:
            parts.append(T("continuous predictors linearly, per unit of their scale"))
        if "binary" in kinds:
            parts.append(T("binary ones as an indicator of the non-reference level"))
        for v in kinds.get("ordinal", []):
            n_terms = len(self.results.terms_of(v.name))
            if n_terms == 1:
                parts.append(T("{label} ({k} ordered levels) as a score from 0 to {top}", label=_lower_first(v.label),
                               k=len(v.levels), top=len(v.levels) - 1))
            else:
                parts.append(T("{label} ({k} ordered levels) as indicators against '{ref}'", label=_lower_first(v.label),
                               k=len(v.levels), ref=v.level_label(v.ref_level)))
        if "nominal" in kinds:
            parts.append(T("nominal ones as indicators of each level against the reference level"))
        return T("Predictors entered the model as follows: {parts}.", parts=series(parts, clauses=True))

    @property
    def measures(self) -> str:
        """The repeated measures in words ('pain score and disability index')."""
        rep = self.spec.repeated
        return _and([m.label for m in rep.measures]) if rep else ""

    @property
    def timepoints(self) -> str:
        """The repeated-measures time points in words ('pre-operative, 3 days and 12 months')."""
        rep = self.spec.repeated
        return _and([_lower_first(t.label) for t in rep.timepoints]) if rep else ""

    @property
    def repeated_population(self) -> str:
        rep = self.spec.repeated
        return (rep.population if rep and rep.population else T("patients with {event}", event=self.event))

    @property
    def conclusion(self) -> str:
        """The abstract's conclusion, from the corrected performance and the events per variable."""
        c = self._val("c", "corrected")
        slope = self._val("slope", "corrected")
        epv = self._epv("model")
        rank = (T("ranks patients well") if c >= 0.75 else T("ranks patients moderately well") if c >= 0.65
                else T("ranks patients only weakly"))
        text = T("The model {rank} by their risk of {event} (optimism-corrected C {c})", rank=rank, event=self.event,
                 c=P.fmt_num(c, 3))
        tested = self.results.validation_cohort is not None and self.results.validation_cohort.kind != "split"
        further = T("further external validation") if tested else T("external validation")
        if epv < 10 or slope < 0.9:
            text += T(", but with {epv} events per coefficient and a corrected calibration slope of {slope} it is "
                      "overfitted: its predictions need shrinkage and {further} before clinical use.",
                      epv=P.fmt_num(epv, 1), slope=P.fmt_num(slope, 2), further=further)
        else:
            text += T("; it needs {further} before clinical use.", further=further)
        return text

    @property
    def validation_aim(self) -> str:
        """'internally validate' / 'validate, internally and in another cohort,' (Objective)."""
        if self.results.validation_cohort is None:
            return T("internally validate")
        return T("validate, internally and in a validation cohort,")

    @property
    def validation_result(self) -> str:
        """The validation cohort's headline numbers for the abstract ('' without one)."""
        if self.results.validation_cohort is None:
            return ""
        e = self.external
        return T(" In the validation cohort ({label}; {n} patients, {events} events) Harrell's C was {c} and the "
                 "calibration slope {slope}.", label=e.label, n=e.n, events=e.events, c=e.c_index, slope=e.slope)

    def limitations(self) -> str:
        """The limitations every study of this design shares, as Markdown bullets (generated),
        followed by the study's own (``narrative/limitations.md``); use ``output: asis``."""
        flags = self.sections()
        epv = self._epv("model")
        items = []
        if epv < 10:
            items.append(T("**Events per variable.** {events} events for {k} coefficients ({epv} per coefficient) is "
                           "below the usual minimum of 10; compare the Riley et al. criteria in @tbl-checks. Expect "
                           "overfitting: the corrected calibration slope of {slope} says by how much predictions should "
                           "be shrunk.", events=self.n_events, k=self.n_parameters, epv=self.epv, slope=self.slope_corrected))
        else:
            items.append(T("**Sample size.** {epv} events per coefficient; the Riley et al. criteria are in @tbl-checks.",
                           epv=self.epv))
        if flags["screen"]:
            items.append(T("**Variable selection on the same data.** The univariable screen uses the outcome; its cost "
                           "shows in the validation that repeats it (@tbl-validation)."))
        if self.spec.analysis.missing_data == "complete_case" and int(self.results.data.flow["excluded"].iloc[-1] or 0):
            items.append(T("**Complete cases.** Patients with a missing value were left out (@tbl-flow); if values are "
                           "not missing completely at random, the estimates may be biased."))
        v = self.results.validation_cohort
        if v is None:
            items.append(T("**Internal validation only.** Bootstrap validation estimates optimism; it cannot replace an "
                           "external validation in other patients and other centres."))
        elif v.kind == "split":
            items.append(T("**Split-sample validation.** The held-out patients come from the same cohort and differ from "
                           "the development patients only by chance: the split tests no transportability (@sec-external)."))
        else:
            items.append(T("**One validation cohort.** The model was tested in one other cohort (@sec-external); how it "
                           "performs elsewhere, and over time, is still to be shown."))
        if flags["synthetic"]:
            items.append(T("**Synthetic data.** The cohort analysed here is synthetic (see the banner): the method is "
                           "real, the patients are not."))
        text = "\n".join(f"- {i}" for i in items) + "\n"
        own = (self.results.narrative.get(f"limitations.{self.lang}") if self.lang != "en" else None) \
            or self.results.narrative.get("limitations")
        return text + ("\n" + own if own else "")


    def _counts(self) -> tuple[int, int]:
        """Patients and events of the analysis, as numbers (the properties below format them)."""
        return int(self.results.model.n), int(self.results.model.n_events)

    def _epv(self, which: str) -> float:
        """Events per model (``which="model"``) or candidate parameter, as the study checks computed it."""
        c = self.results.checks
        return float(c.loc[c["check"] == f"events per {which} parameter", "value"].iloc[0])

    @property
    def n(self) -> str:
        return str(self._counts()[0])

    @property
    def n_events(self) -> str:
        return str(self._counts()[1])

    @property
    def n_no_events(self) -> str:
        n, events = self._counts()
        return str(n - events)

    @property
    def events_pct(self) -> str:
        n, events = self._counts()
        return P.fmt_pct(events / n, 0)

    @property
    def horizon(self) -> str:
        return _quantity(self.spec.outcome.horizon, self.spec.outcome.time_unit)

    @property
    def horizon_adjective(self) -> str:
        """The horizon before a noun: '12-month' (risk)."""
        unit = self.spec.outcome.time_unit
        if is_cjk():  # '12个月风险'
            return self.horizon
        return f"{self.spec.outcome.horizon:g}-{unit[:-1] if unit.endswith('s') else unit}"

    @property
    def event(self) -> str:
        return _lower_first(self.spec.outcome.event_label)

    @property
    def period(self) -> str:
        return self.spec.study.period or T("not stated")

    @property
    def b(self) -> str:
        return str(self.results.provenance.bootstrap_b)

    @property
    def seed(self) -> str:
        return str(self.results.provenance.seed)

    @property
    def screen_p(self) -> str:
        return f"{self.spec.analysis.screen_p_value:g}"

    @property
    def n_candidates(self) -> str:
        return str(len(self.spec.candidates))

    @property
    def n_predictors(self) -> str:
        return str(len(self.results.predictors))

    @property
    def n_parameters(self) -> str:
        return str(len(self.results.model.terms))

    @property
    def predictors(self) -> str:
        """The model's predictors in words, for mid-sentence: 'age, ECOG score and weight loss'."""
        labels = [self.spec.variable(v).label for v in self.results.predictors]
        return _and([_lower_first(lab) for lab in labels])

    @property
    def epv(self) -> str:
        return P.fmt_num(self._epv("model"), 1)

    @property
    def epv_candidates(self) -> str:
        return P.fmt_num(self._epv("candidate"), 1)

    def hr(self, variable: str) -> str:
        """'HR 0.95 (95% CI 0.93 to 0.97), P < 0.001' for a one-term variable of the model."""
        s = self.results.model.summary
        row = s[s["variable"] == variable].iloc[0]
        return T("HR {hr} (95% CI {low} to {high}), {p}", hr=P.fmt_num(row.hr), low=P.fmt_num(row.ci_low),
                 high=P.fmt_num(row.ci_high), p=P.fmt_p(row.p_value))

    def _conc(self, measure: str) -> pd.Series:
        c = self.results.concordance
        return c[c["measure"] == measure].iloc[0]

    @property
    def c_index(self) -> str:
        r = self._conc("c_index")
        return T("{est} (95% CI {low} to {high})", est=P.fmt_num(r.estimate, 3), low=P.fmt_num(r.ci_low, 3),
                 high=P.fmt_num(r.ci_high, 3))

    @property
    def auc(self) -> str:
        return P.fmt_num(self._conc("auc").estimate, 3)

    def _val(self, index: str, col: str, honest: bool = False) -> float:
        v = self.results.validation_honest if honest else self.results.validation
        return float(v.loc[v["index"].str.lower() == index, col].iloc[0])

    @property
    def c_corrected(self) -> str:
        return P.fmt_num(self._val("c", "corrected"), 3)

    @property
    def c_corrected_honest(self) -> str:
        return P.fmt_num(self._val("c", "corrected", honest=True), 3) if self.results.validation_honest is not None else "–"

    @property
    def slope_corrected(self) -> str:
        return P.fmt_num(self._val("slope", "corrected"), 3)

    @property
    def slope_corrected_honest(self) -> str:
        return P.fmt_num(self._val("slope", "corrected", honest=True), 3) if self.results.validation_honest is not None else "–"

    @property
    def n_failed(self) -> str:
        """Failed bootstrap refits, counted and reported as rms does (validation; calibration)."""
        v = int(self.results.validation["n_failed"].max())
        c = int(self.results.calibration.groups["n_failed"].max())
        return T("{v} of {b} in the validation and {c} of {b} in the calibration", v=v, c=c, b=self.b)

    @property
    def missing_data(self) -> str:
        """How missing values were handled, in words."""
        a = self.spec.analysis
        if a.missing_data == "multiple_imputation":
            return T("complete-case analysis for the main model, with the multivariable Cox model re-estimated on "
                     "{m} multiply imputed data sets (chained equations, Rubin's rules) as a sensitivity analysis",
                     m=a.imputations)
        return T("complete-case analysis")

    def notes(self) -> str:
        """The analysis notes (penalized fit, failed replicates, imputation) as a callout; empty if none."""
        if not self.results.notes:
            return ""
        items = "\n".join(f"- {tr_text(n)}" for n in self.results.notes)
        return f"::: {{.callout-note title=\"{T('Analysis notes')}\"}}\n{items}\n:::\n"

    @property
    def s0(self) -> str:
        return P.fmt_num(self.results.model.baseline_survival(), 4)

    @property
    def lr_test(self) -> str:
        m = self.results.model
        return T("χ² = {chisq}, df = {df}, {p}", chisq=P.fmt_num(m.lr_chisq, 1), df=m.lr_df, p=P.fmt_p(m.lr_p_value))

    @property
    def ph_global(self) -> str:
        t = self.results.ph.table
        g = t[t["term"] == "GLOBAL"].iloc[0]
        return T("χ² = {chisq}, df = {df}, {p}", chisq=P.fmt_num(g.chisq, 2), df=f"{g.df:g}", p=P.fmt_p(g.p_value))

    def metric(self, name: str, digits: int = 3) -> str:
        """A calibration metric by name (brier, ici, e50, e90, slope, intercept)."""
        return P.fmt_num(float(self.results.calibration.metrics.set_index("measure").loc[name, "value"]), digits)

    @property
    def versions(self) -> str:
        v = self.results.provenance.versions
        return ", ".join(f"{k} {v[k]}" for k in ("python", "cementleak-stats", "numpy", "numba", "scipy", "pandas", "statsmodels", "lifelines") if k in v)

    @property
    def example(self):
        """The worked example patient for teaching, as the analysis scored it (predictor values
        only, never an identifier)."""
        return self.results.example

    def example_table(self) -> MarkdownTable:
        pts = self.example.points
        values = [format_value(x) for x in pts["value"]]  # as recorded: 20 years, 5.3 mL, −10 lb
        if self.lang != "en":  # levels by their labels in the report's language
            values = [self.spec.variable(v).level_label(x) for v, x in zip(pts["predictor"], values)]
        return MarkdownTable(pd.DataFrame({T("Predictor"): [label_with_unit(self.spec.variable(v)) for v in pts["predictor"]],
                                           T("Value"): values,
                                           T("Points"): [P.fmt_num(x, 1) for x in pts["points"]]}))

    @property
    def example_total(self) -> str:
        return P.fmt_num(self.example.total_points, 1)

    @property
    def example_risk(self) -> str:
        return P.fmt_pct(self.example.risk, 1)


def _lower_first(text: str) -> str:
    """'CT value' stays, 'Fracture severity' -> 'fracture severity' (mid-sentence)."""
    return text if not text or text[:2].isupper() else text[0].lower() + text[1:]


def _and(items: list[str]) -> str:
    """'a, b and c' ('a、b和c' in Chinese)."""
    return series(items)


def _quantity(x: float, unit: str) -> str:
    """'12 months' ('12个月'): a number of a time unit, in the report's language."""
    key = "{n} " + unit
    return T(key, n=f"{x:g}") if has(key) else f"{x:g} {unit}"


def _neutral_background(R: ReportView) -> str:
    cite = T(" It reproduces the analysis of a published study ({citation}).", citation=R.spec.study.citation) \
        if R.spec.study.citation else ""
    return T("This report develops and internally validates a model that predicts {event} {within} in {population}, "
             "and presents it as a nomogram.", event=R.event, within=R.within, population=R.population) + cite + "\n"


def _neutral_question(R: ReportView) -> str:
    return (T("- **Question:** who will have {event} {within}, and can we tell before it happens?", event=R.event,
              within=R.within) + "\n"
            + T("- Population: {population}.", population=R.population) + "\n"
            + T("- Data: {n} patients, {events} events.", n=R.n, events=R.n_events) + "\n"
            + T("- Method: Cox regression → {selection} → a nomogram, validated by the bootstrap.",
                selection=R.selection_short) + "\n")


#: neutral text for a narrative part the study does not have (true of any study)
_NEUTRAL = {"background": _neutral_background, "question": _neutral_question}


#: reports loaded by this process, by (study file, results key, language).  Real Quarto runs a
#: document once per format; ``cementleak report`` keeps its kernel alive between the formats
#: (render/quarto.py), and the document then reads the results and draws each figure once.
_LOADED: dict[tuple[str, str, str], ReportView] = {}


def _notice(message: str) -> None:
    print(f"notice: {message}", file=sys.stderr)


def load_report(study: str | Path | None = None, *, results: str | None = None, lang: str = "en") -> ReportView:
    """The study's results, formatted for a document written in ``lang`` (``en``, or ``zh`` in
    the Chinese documents).

    ``study`` and ``results`` are the document's parameters (the ``parameters`` cell of
    ``report/_setup.qmd``): ``cementleak report`` passes both engines the study file and the key
    of the results it has just validated and computed or loaded, and the results are read by
    that key (:func:`~cementleak_stats.study.results_by_key`: no data validation, no hashing, no
    git), once per process.  Without a key (a document rendered or opened by hand) the study
    file is ``study`` or else ``study.yaml`` in the working directory or a parent of it, and
    :func:`~cementleak_stats.study.run_study` validates the data and loads or computes the results.
    """
    # the figures are drawn off screen, as this module's import chose; again here, for a kernel forked
    # from a process that imported this module before the kernel's setup chose its backend (preload_reports)
    matplotlib.use("Agg")
    path = Path(study or find_study_file()).resolve()
    if results and (str(path), results, lang) in _LOADED:
        return _LOADED[(str(path), results, lang)]
    read = next((r for (p, k, _), r in _LOADED.items() if results and (p, k) == (str(path), results)), None)
    if read is not None:  # the same results read for another language: not read again
        report = ReportView(read._source, lang=lang, figures=read._figures)
    else:
        spec = load_spec(path)
        loaded = results_by_key(spec, results, notify=_notice) if results else None
        report = ReportView(run_study(spec) if loaded is None else loaded, lang=lang,
                            figures=None if loaded is None else shared_figures(spec.base_dir, results))
    if results and report.results.provenance.cache_key() == results:
        _LOADED[(str(path), results, lang)] = report
    return report


def preload_reports(study: str | None = None, results: str | None = None) -> None:
    """Read the results of key ``results`` once, for every language of the study's report, in a
    process that documents' kernels are forked from: ``cementleak report`` has the kernels' server
    (:mod:`.render.forkkernel`) call this with the documents' parameters before it forks them, so
    that each document's :func:`load_report` finds them read (``_LOADED``) instead of reading and
    decoding the results entry again."""
    if results:
        first = load_report(study, results=results)
        for lang in first.spec.report.language:
            load_report(study, results=results, lang=lang)
