"""The study file's options: the analysis, the risk groups, the comparator, a validation cohort,
the study's description and the report's languages."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from .words import SpecRuleError, _Frozen, _Words


class RiskGroupRule(_Frozen):
    """``analysis.risk_groups``: prespecified cut-offs of the nomogram's total points (or of the
    predicted risk at the main horizon); without cut-offs, tertiles of the development cohort."""

    cutoffs: tuple[float, ...] = ()
    scale: Literal["points", "risk"] = "points"
    labels: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _increasing(self) -> RiskGroupRule:
        c = self.cutoffs
        if any(b <= a for a, b in zip(c, c[1:])) or (self.scale == "risk" and any(not 0 < x < 1 for x in c)):
            raise SpecRuleError(f"risk_groups.cutoffs {list(c)} must increase (risks strictly between 0 and 1)",
                                "e.g. risk_groups: {cutoffs: [100, 150]} (points) or {cutoffs: [0.1, 0.3], scale: risk}")
        if self.labels and len(self.labels) != (len(c) + 1 if c else 3):
            raise SpecRuleError(f"risk_groups.labels has {len(self.labels)} names for {len(c) + 1 if c else 3} groups",
                                "give one label per group (cut-offs + 1; 3 for tertiles), or none")
        return self


class Comparator(_Words):
    """``analysis.comparator``: an existing score (one variable of the study file) compared with
    the model; it enters a one-predictor Cox model fitted on the development cohort."""

    variable: str
    label: str = ""

    _TEXT = ("label",)


class Analysis(_Frozen):
    selection: Literal["univariable_screen", "prespecified", "lasso"] = "univariable_screen"
    #: ``selection: lasso``: the penalty of the cross-validated Cox LASSO (glmnet's lambda.min or
    #: lambda.1se) and the number of folds
    lasso_lambda: Literal["min", "1se"] = "min"
    lasso_folds: int = Field(10, ge=3, le=50)
    #: risk groups from the nomogram's total points (default: tertiles of the development cohort)
    risk_groups: RiskGroupRule = RiskGroupRule()
    #: an existing score to compare the model with (ΔC, ΔAUC, NRI, IDI, decision curve)
    comparator: Comparator | None = None
    #: outer and inner replicates of the two-stage bootstrap of the optimism-corrected C and
    #: slope intervals (each at most ``bootstrap_b``; 0 outer = no interval)
    interval_bootstrap: tuple[int, int] = (200, 25)
    screen_p_value: float = Field(0.05, gt=0, le=1)
    predictors: tuple[str, ...] = ()
    bootstrap_b: int = Field(1000, ge=0, le=100_000)
    seed: int = Field(20250427, ge=0)
    alpha: float = Field(0.05, gt=0, lt=1)
    calibration_group_size: int = Field(25, ge=5)
    decision_thresholds: tuple[float, float, float] = (0.01, 0.60, 0.01)
    missing_data: Literal["complete_case", "multiple_imputation"] = "complete_case"
    imputations: int = Field(20, ge=2, le=200)
    #: ridge penalizer of the multivariable Cox model (lifelines ``penalizer``); 0 = the
    #: ordinary partial likelihood.  Set it when the ordinary fit separates (a level without
    #: events); the report then says the model is penalized.
    penalizer: float = Field(0.0, ge=0, le=100)
    #: also refit the model as a logistic regression of the event by the horizon (a sensitivity
    #: analysis for outcomes whose timing carries little information)
    logistic_sensitivity: bool = False

    @field_validator("decision_thresholds")
    @classmethod
    def _thresholds(cls, v: tuple[float, float, float]) -> tuple[float, float, float]:
        lo, hi, step = v
        if not (0 < lo < hi < 1 and 0 < step < hi - lo + 1e-12):
            raise SpecRuleError("decision_thresholds must be [low, high, step] with 0 < low < high < 1",
                                "e.g. decision_thresholds: [0.01, 0.60, 0.01]")
        return v


class Validation(_Words):
    """A validation cohort: another file (temporal or external) or a share held out of this one.

    ``validation: {cohort_file: ..., kind: temporal | external, label: ...}`` reads another
    cohort with the same variables (checked like the development cohort); ``validation:
    {split: 0.3, by: random | period, period_column: ..., seed: ...}`` holds out that share of
    the analysed patients (at random, or the latest by ``period_column``).
    """

    cohort_file: str | None = None
    kind: Literal["temporal", "external", "split"] | None = None
    label: str = ""
    split: float | None = Field(None, gt=0, lt=1)
    by: Literal["random", "period"] = "random"
    period_column: str | None = None
    #: seed of a random split (default ``analysis.seed``)
    seed: int | None = Field(None, ge=0)

    _TEXT = ("label",)

    @model_validator(mode="after")
    def _one_source(self) -> Validation:
        if (self.cohort_file is None) == (self.split is None):
            raise ValueError("validation needs either `cohort_file:` (another cohort) or `split:` (a share of this "
                             "cohort held out), not both")
        if self.split is not None and self.kind not in (None, "split"):
            raise ValueError(f"validation.kind '{self.kind}' needs `cohort_file:`; a split is kind 'split'")
        if self.cohort_file is not None and self.kind == "split":
            raise ValueError("validation.kind 'split' needs `split:` (the share held out), not `cohort_file:`")
        if self.split is not None and self.by == "period" and self.period_column is None:
            raise ValueError("validation.by 'period' needs `period_column:` (the column that orders patients in time)")
        return self

    @property
    def cohort_kind(self) -> str:
        """temporal, external or split."""
        return "split" if self.split is not None else (self.kind or "external")

    @property
    def display_label(self) -> str:
        """The study file's label, else a name for the kind of cohort in English (a report in
        another language words it: ``label or T(display_label)``; wording belongs to presenting)."""
        return self.label or {"temporal": "Temporal validation cohort", "external": "External validation cohort",
                              "split": "Held-out validation set"}[self.cohort_kind]


class StudyInfo(_Words):
    _TEXT = ("title", "short_title", "centre", "period", "population")

    title: str
    short_title: str = ""
    id_column: str
    synthetic: bool = False
    centre: str = ""
    period: str = ""
    population: str = ""
    citation: str = ""
    authors: tuple[str, ...] = ()
    #: folder (relative to the study file) with the text only the authors can write:
    #: background.md, discussion.md, limitations.md, question.md (see ``cementleak new``)
    narrative: str = "narrative"


class Report(_Frozen):
    """How the report is written: ``report: {language: en | zh | [zh, en], figure_formats: [png, pdf]}``.

    The first language is the report's; with more than one, every one is rendered from the same
    run (``index.html`` and ``index.zh.html``, ...), and a Chinese report carries the English
    abstract too when English is among them (as Chinese journals ask).
    """

    language: tuple[Literal["en", "zh"], ...] = ("en",)
    #: formats of the figure files in the results folder (``figures/*.<format>``): PNG (300 dpi)
    #: for screens, Word and slides, vector PDF for print; add ``svg`` for editing or the web.
    #: The report's documents embed their own PNGs and read none of these files.
    figure_formats: tuple[Literal["png", "svg", "pdf"], ...] = ("png", "pdf")

    @field_validator("figure_formats", mode="before")
    @classmethod
    def _formats(cls, v: object) -> object:
        v = [v] if isinstance(v, str) else v
        if isinstance(v, (list, tuple)):
            unknown = [x for x in v if x not in ("png", "svg", "pdf")]
            if unknown:
                raise SpecRuleError(f"report.figure_formats has {unknown}, not a figure format",
                                    "list png, svg and/or pdf, e.g. `figure_formats: [png, pdf]`")
            if len(set(v)) != len(v):
                raise SpecRuleError(f"report.figure_formats lists a format twice: {list(v)}", "list each format once")
        return v

    @field_validator("language", mode="before")
    @classmethod
    def _one_or_many(cls, v: object) -> object:
        v = [v] if isinstance(v, str) else v
        if isinstance(v, (list, tuple)):
            if not v:
                raise SpecRuleError("report.language is empty", "write `language: en`, `zh` or `[zh, en]`")
            if len(set(v)) != len(v):
                raise SpecRuleError(f"report.language lists a language twice: {list(v)}", "list each language once")
        return v
