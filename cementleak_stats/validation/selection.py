"""Honest validation of a model whose predictors the Cox LASSO selected (``analysis.selection:
lasso``): the selection repeated in every bootstrap replicate, on the package's one bootstrap
engine (:func:`.resample.bootstrap_optimism`) with the LASSO fit function of
:func:`cementleak_stats.models.lasso.make_lasso_fit_fn` and the indices of
:func:`.indices.cox_indices` (as rms ``validate(bw = TRUE)`` repeats its step-down).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..models.cox import CoxModel
from ..models.lasso import LassoSelection, make_lasso_fit_fn
from ..spec import StudySpec
from .indices import INDEX_NAMES, cox_indices
from .resample import Progress, bootstrap_optimism, cox_data, model_fits

__all__ = ["LassoResult", "validate_lasso"]


@dataclass(frozen=True)
class LassoResult:
    """The LASSO selection and the validation that repeats it.

    ``validation`` has the columns of :func:`.indices.validate_cox` (``method = "lasso
    repeated"``); ``selection_frequency`` gives, per candidate variable, the share of the
    replicates that selected it (``variable``, ``frequency``, ``selected`` on the original data).
    """

    selection: LassoSelection
    validation: pd.DataFrame
    selection_frequency: pd.DataFrame

    def tables(self) -> dict[str, pd.DataFrame]:
        """The LASSO's tidy tables by results-file stem (docs/results-files.md): the result's
        own frames, so that exporting them needs nothing from the statistics."""
        sel = self.selection
        coef = pd.DataFrame({"term": list(sel.terms), "coef": sel.coef.to_numpy(), "term_sd": sel.term_sd.to_numpy(),
                             "lambda": sel.lambda_chosen, "rule": sel.rule})
        return {"lasso_path": sel.path, "lasso_cv": sel.cv.assign(lambda_min=sel.lambda_min, lambda_1se=sel.lambda_1se),
                "lasso_coefficients": coef,
                "lasso_folds": pd.DataFrame({"row": np.arange(len(sel.folds)), "fold": sel.folds + 1}),
                "validation_lasso": self.validation, "lasso_selection_frequency": self.selection_frequency}


def validate_lasso(spec: StudySpec, model: CoxModel, cohort: pd.DataFrame, selection: LassoSelection, *, n_boot: int,
                   rng: np.random.Generator, progress: Progress | None = None) -> LassoResult:
    """Bootstrap optimism of the whole procedure: in each replicate the LASSO at the chosen
    penalty selects the variables, the ordinary Cox model of those is refitted, and its indices
    are measured on the replicate (training) and on the original rows (test)."""
    data = cox_data(spec, cohort, list(selection.variables), init=model.coef)
    coef = np.array([float(model.coef.get(t, 0.0)) for t in data.terms])
    apparent = model_fits(data, coef, model.loglik, model.loglik_null)
    fit_fn = make_lasso_fit_fn(selection.lambda_chosen, selection.cv["lambda"].to_numpy())
    chosen: list[np.ndarray] = []

    def recording(d, counts):  # keeps each replicate's selection for the frequency table
        fits = fit_fn(d, counts)
        chosen.append(fits.selected)
        return fits

    res = bootstrap_optimism(recording, cox_indices, data, n_boot=n_boot, rng=rng, names=INDEX_NAMES,
                             apparent_fits=apparent, progress=progress)
    sel = np.concatenate(chosen) if chosen else np.zeros((0, len(selection.variables)), bool)
    freq = pd.DataFrame({"variable": list(selection.variables), "frequency": sel.mean(axis=0) if len(sel) else np.nan,
                         "selected": [v in selection.selected for v in selection.variables]})
    table = res.table().assign(method="lasso repeated")
    return LassoResult(selection=selection, validation=table[["method", *[c for c in table.columns if c != "method"]]],
                       selection_frequency=freq)
