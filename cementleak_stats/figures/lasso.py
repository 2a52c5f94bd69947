"""The Cox LASSO: coefficient paths and the cross-validation curve (as R ``plot(glmnet)`` and
``plot(cv.glmnet)``), against log(lambda)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.axes import Axes

from ..i18n import T
from ._util import require_columns
from .theme import COLUMN_WIDTH, GREY, OKABE_ITO, PAGE_WIDTH, colours, new_axes, themed


def _chosen(ax: Axes, lambdas: dict[str, float]) -> None:
    for i, (name, lam) in enumerate(lambdas.items()):
        ax.axvline(np.log(lam), color=GREY, linestyle="--" if i == 0 else ":", linewidth=0.9, label=name)


@themed
def plot_lasso_path(path: pd.DataFrame, *, labels: dict[str, str] | None = None, chosen: dict[str, float] | None = None,
                    xlabel: str = "log(λ)", ylabel: str = "Coefficient (standardized term)", ax: Axes | None = None) -> Axes:
    """Coefficient of each term along the penalty path.

    ``path``: ``lambda``, ``term``, ``coef`` (on the standardized scale, so that the paths are
    comparable); ``labels`` names the terms in the legend; ``chosen`` draws vertical lines at the
    named penalties (e.g. lambda.min, lambda.1se).
    """
    require_columns(path, ("lambda", "term", "coef"), what="plot_lasso_path")
    ax = new_axes(ax, size=(PAGE_WIDTH, PAGE_WIDTH * 0.42))
    terms = list(dict.fromkeys(path["term"]))
    styles = ["-", "--", "-.", ":"]
    for i, (term, colour) in enumerate(zip(terms, colours(len(terms)))):
        part = path[path["term"] == term].sort_values("lambda")
        ax.plot(np.log(part["lambda"]), part["coef"], color=colour, linestyle=styles[(i // 8) % 4], linewidth=1.1,
                label=(labels or {}).get(term, term), gid="lasso-path")
    ax.axhline(0, color=GREY, linewidth=0.6)
    if chosen:
        _chosen(ax, chosen)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, fontsize="small")
    return ax


@themed
def plot_lasso_cv(cv: pd.DataFrame, *, chosen: dict[str, float] | None = None, xlabel: str = "log(λ)",
                  ylabel: str = "Cross-validated partial-likelihood deviance", ax: Axes | None = None) -> Axes:
    """Cross-validated deviance (mean ± 1 SE) along the path, the number of terms on top.

    ``cv``: ``lambda``, ``cvm``, ``cvsd``, ``n_nonzero``.
    """
    require_columns(cv, ("lambda", "cvm", "cvsd", "n_nonzero"), what="plot_lasso_cv")
    ax = new_axes(ax, size=(COLUMN_WIDTH * 1.2, COLUMN_WIDTH * 0.9))
    x = np.log(cv["lambda"].to_numpy(float))
    ax.errorbar(x, cv["cvm"], yerr=cv["cvsd"], fmt="o", color=OKABE_ITO["vermillion"], ecolor=GREY, markersize=2.5,
                elinewidth=0.6, capsize=1.2, gid="lasso-cv")
    if chosen:
        _chosen(ax, chosen)
        ax.legend(loc="upper left", frameon=False)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    top = ax.secondary_xaxis("top")
    idx = np.unique(np.linspace(0, len(x) - 1, 6).round().astype(int))
    top.set_ticks(x[idx], [str(int(v)) for v in cv["n_nonzero"].to_numpy()[idx]])
    top.set_xlabel(T("Terms in the model"))
    return ax


__all__ = ["plot_lasso_path", "plot_lasso_cv"]
