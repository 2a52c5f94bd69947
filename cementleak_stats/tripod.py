"""The TRIPOD+AI checklist (Collins et al., BMJ 2024;385:e078378), filled in where the analysis answers.

Items the package can answer from the analysis itself, and those the report's own text answers
(title, abstract, outcome and horizon, limitations), point at the report section (a Quarto
cross-reference) that answers them.  Every other item is author text and is shown as
"to be completed by the authors" — never as done.

References
----------
Collins GS, Moons KGM, Dhiman P, et al. TRIPOD+AI statement: updated guidance for reporting
clinical prediction models that use regression or machine learning methods. BMJ 2024;385:e078378.
"""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

AUTHORS = "to be completed by the authors"

#: (item, section of the paper, topic)
ITEMS: tuple[tuple[str, str, str], ...] = (
    ("1", "Title", "Identify the study as developing or evaluating a prediction model, the target population and the outcome"),
    ("2", "Abstract", "See TRIPOD+AI for Abstracts checklist"),
    ("3a", "Introduction", "Healthcare context, rationale for developing the model, existing models"),
    ("3b", "Introduction", "Target population and intended purpose in the care pathway, intended users"),
    ("3c", "Introduction", "Known health inequalities between sociodemographic groups"),
    ("4", "Introduction", "Study objectives: development and/or validation"),
    ("5a", "Methods: data", "Sources of data and rationale for using them"),
    ("5b", "Methods: data", "Dates of the collected participant data, start and end of accrual and follow-up"),
    ("6a", "Methods: participants", "Key elements of the study setting, number and location of centres"),
    ("6b", "Methods: participants", "Eligibility criteria for study participants"),
    ("6c", "Methods: participants", "Details of any treatments received and how they were handled"),
    ("7", "Methods: data preparation", "Data pre-processing and quality checking, across sociodemographic groups"),
    ("8a", "Methods: outcome", "Outcome definition, time horizon, how and when assessed"),
    ("8b", "Methods: outcome", "Qualifications and demography of outcome assessors"),
    ("8c", "Methods: outcome", "Actions to blind assessment of the outcome"),
    ("9a", "Methods: predictors", "Choice of initial predictors and any pre-selection before modelling"),
    ("9b", "Methods: predictors", "Definition of all predictors, how and when measured"),
    ("9c", "Methods: predictors", "Qualifications and demography of predictor assessors"),
    ("10", "Methods: sample size", "How the study size was arrived at, with the sample size calculation"),
    ("11", "Methods: missing data", "How missing data were handled, with reasons for omitting data"),
    ("12a", "Methods: analytical methods", "How data were used (development, evaluation), any partitioning"),
    ("12b", "Methods: analytical methods", "How predictors were handled in the analyses (functional form, rescaling, transformation)"),
    ("12c", "Methods: analytical methods", "Type of model, rationale, model-building steps, hyperparameters, internal validation"),
    ("12d", "Methods: analytical methods", "How heterogeneity in estimates and performance across clusters was handled"),
    ("12e", "Methods: analytical methods", "Performance measures and their rationale"),
    ("12f", "Methods: analytical methods", "Model updating arising from the evaluation"),
    ("12g", "Methods: analytical methods", "How model predictions were calculated for evaluation"),
    ("13", "Methods: class imbalance", "Class imbalance methods and recalibration"),
    ("14", "Methods: fairness", "Approaches to address model fairness"),
    ("15", "Methods: model output", "Output of the prediction model (probabilities, classification) and thresholds"),
    ("16", "Methods: training versus evaluation", "Differences between development and evaluation data"),
    ("17", "Methods: ethical approval", "Name of the institutional research board or ethics committee"),
    ("18a", "Open science: funding", "Sources of funding and role of the funders"),
    ("18b", "Open science: conflicts of interest", "Conflicts of interest and financial disclosures"),
    ("18c", "Open science: protocol", "Where the study protocol can be accessed"),
    ("18d", "Open science: registration", "Study registration or state that it was not registered"),
    ("18e", "Open science: data sharing", "Details of the availability of the study data"),
    ("18f", "Open science: code sharing", "Details of the availability of the analytical code"),
    ("19", "Patient and public involvement", "Details of patient and public involvement"),
    ("20a", "Results: participants", "Flow of participants through the study, number with and without the outcome, follow-up"),
    ("20b", "Results: participants", "Characteristics overall and by data source, including key dates, predictors, missing data"),
    ("20c", "Results: participants", "Comparison of development and evaluation data on predictor distributions"),
    ("21", "Results: model development", "Number of participants and outcome events in each analysis"),
    ("22", "Results: model specification", "Full prediction model (all coefficients, baseline survival at the horizon) to allow predictions"),
    ("23a", "Results: model performance", "Model performance with confidence intervals"),
    ("23b", "Results: model performance", "Results of heterogeneity in model performance across clusters"),
    ("24", "Results: model updating", "Results from any model updating"),
    ("25", "Discussion: interpretation", "Overall interpretation of the main results, including fairness"),
    ("26", "Discussion: limitations", "Limitations of the study (non-representative sample, sample size, overfitting, missing data)"),
    ("27a", "Discussion: usability", "How poor-quality or unavailable input data should be handled when using the model"),
    ("27b", "Discussion: usability", "Whether users are required to interact with the input data, and the expertise needed"),
    ("27c", "Discussion: usability", "Directions for future research, next steps for implementation"),
)

#: items answered by the analysis itself -> (cross-reference to the answering section, what it shows)
ANSWERED_BY_ANALYSIS: dict[str, tuple[str, str]] = {
    "5b": ("@sec-cohort", "study period from the study file"),
    "10": ("@sec-checks", "events per variable and Riley et al. minimum sample size, computed"),
    "11": ("@sec-cohort", "patient flow with exclusions and complete-case counts"),
    "12a": ("@sec-methods-stats", "all patients used for development; bootstrap internal validation"),
    "12b": ("@sec-methods-stats", "coding of every predictor from the study file"),
    "12c": ("@sec-methods-stats", "Cox model, how the predictors were chosen, bootstrap B"),
    "12e": ("@sec-methods-stats", "C-index, time-dependent AUC, calibration, Brier score, decision curve"),
    "15": ("@sec-nomogram", "predicted risk at the horizon from the nomogram; decision-curve thresholds"),
    "18f": ("@sec-colophon", "git commit and package versions"),
    "20a": ("@sec-cohort", "flow of patients, events and censoring"),
    "20b": ("@sec-baseline", "Table 1 with missing values"),
    "21": ("@sec-cox", "n and events of every model"),
    "22": ("@sec-cox", "all coefficients and the baseline survival at the horizon"),
    "23a": ("@sec-validation", "apparent and optimism-corrected performance with confidence intervals"),
    "16": ("@sec-external", "development and validation cohorts compared"),
    "20c": ("@sec-external", "predictor distributions by cohort (SMD)"),
}

#: items the report's own text answers, written from the study file and the results ->
#: (cross-reference to the answering section, what it shows)
ANSWERED_BY_REPORT: dict[str, tuple[str, str]] = {
    "1": ("Title", "the report's title, from the study file: check that it names the model, population and outcome"),
    "2": ("Abstract", "structured abstract: objective, methods, results, conclusions"),
    "8a": ("@sec-cohort", "outcome, its time horizon and follow-up, from the study file"),
    "26": ("@sec-limitations", "events per variable, selection on the same data, internal validation only"),
}


def tripod_checklist(sections: Iterable[str] | None = None) -> pd.DataFrame:
    """The 27-item TRIPOD+AI checklist: item, section, topic, status, where.

    Parameters
    ----------
    sections : the section labels the document has (``"sec-cohort"`` or ``"@sec-cohort"``);
        an item whose answer lives in a section the document leaves out is shown as "to be
        completed by the authors".  All sections by default.

    Returns
    -------
    pandas.DataFrame
        ``status`` is "answered by the analysis" for items in :data:`ANSWERED_BY_ANALYSIS`,
        "answered by the report" for items in :data:`ANSWERED_BY_REPORT` (the report's title,
        abstract, outcome definition and limitations) and "to be completed by the authors"
        for every other item; ``where`` is the answering section's cross-reference and what
        it shows.
    """
    present = None if sections is None else {f"@{s.lstrip('@')}" for s in sections}
    rows = []
    for item, section, topic in ITEMS:
        for status, answers in (("answered by the analysis", ANSWERED_BY_ANALYSIS),
                                ("answered by the report", ANSWERED_BY_REPORT)):
            # a plain-text place (the title, the abstract) is in every report; a section only when shown
            where = answers[item][0] if item in answers else ""
            if item in answers and (present is None or where in present or not where.startswith("@")):
                where, what = answers[item]
                rows.append((item, section, topic, status, f"{where} ({what})"))
                break
        else:
            rows.append((item, section, topic, AUTHORS, ""))
    return pd.DataFrame(rows, columns=["item", "section", "topic", "status", "where"])
