"""Repeated outcomes (e.g. pain and disability scores): individual trajectories and the summary
per time point that the analysis computed (:mod:`cementleak_stats.outcome_summaries`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from ..i18n import T
from ._util import require_columns
from .theme import COLUMN_WIDTH, GREY, PAGE_WIDTH, PALETTE, new_axes, new_panels, ordered_unique, panel_letter, themed

Summary = Literal["mean", "median"]
_SUMMARY_LABEL = {"mean": "Mean (95% CI)", "median": "Median (IQR)"}


def _centre_of(centres: pd.DataFrame | None, levels: list) -> pd.DataFrame | None:
    """The summary rows of ``centres`` in the order of the time points (``levels``), or None."""
    if centres is None:
        return None
    require_columns(centres, ("timepoint", "centre", "low", "high"), what="plot_trajectories (centres)")
    return centres.assign(timepoint=centres["timepoint"].astype(str)).set_index("timepoint").reindex([str(x) for x in levels])


def _legend_handles(n: int, colour: str, summary: Summary, *, centre: bool = True) -> list[Line2D]:
    return [
        Line2D([], [], color=GREY, linewidth=0.8, alpha=0.8, label=T("Individual patients (n = {n})", n=n)),
        *([Line2D([], [], color=colour, marker="o", linewidth=1.8, markersize=5, label=T(_SUMMARY_LABEL[summary]))]
          if centre else []),
    ]


@themed
def plot_trajectories(
    long: pd.DataFrame,
    *,
    measure_label: str,
    centres: pd.DataFrame | None = None,
    summary: Summary = "mean",
    ylim: tuple[float, float] | None = None,
    xlabel: str | None = None,
    colour: str = PALETTE[0],
    legend: bool = True,
    title: str | None = None,
    ax: Axes | None = None,
) -> Axes:
    """Individual trajectories (thin grey lines) with the mean and 95% CI (or median and IQR).

    Parameters
    ----------
    long : one row per patient and time point with columns ``id`` (an anonymised index; it
        is only used to join a patient's points and is never shown), ``timepoint`` (ordered
        categorical whose categories are the labels shown, in time order) and ``value``.
        Missing values break a patient's line.
    measure_label : y-axis label, e.g. "Pain score (0-10)".
    centres : the summary per time point, computed in the analysis: ``timepoint`` (the labels
        of ``long``), ``centre``, ``low``, ``high`` (from
        :func:`cementleak_stats.outcome_summaries.outcome_summary`: the mean and its t interval,
        or the median and quartiles); without it only the individual lines are drawn.
    summary : what ``centres`` holds, for the legend: "mean" (mean, 95% CI) or "median"
        (median, interquartile range).
    ylim : y limits, e.g. the measure's possible range.
    xlabel : x-axis label (none by default: the time point labels speak for themselves).
    colour : colour of the summary.
    legend : draw a legend (above the axes, off the lines).
    title : axes title.
    ax : axes to draw into; a new single-column figure by default.

    Returns
    -------
    matplotlib.axes.Axes
        Individual lines are one ``LineCollection`` (gid ``trajectory-individual``, one
        segment per patient); the summary line has gid ``trajectory-summary``.
    """
    require_columns(long, ("id", "timepoint", "value"), what="plot_trajectories")
    levels = ordered_unique(long["timepoint"])
    wide = long.pivot_table(index="id", columns="timepoint", values="value", aggfunc="first", observed=False, dropna=False)
    wide = wide.reindex(columns=levels)
    x = np.arange(len(levels), dtype=float)
    ax = new_axes(ax, size=(COLUMN_WIDTH, COLUMN_WIDTH * 0.8))
    segments = [np.column_stack([x, row]) for row in wide.to_numpy(float)]
    individual = LineCollection(segments, colors=GREY, linewidths=0.6, alpha=0.45, zorder=1)
    individual.set_gid("trajectory-individual")
    ax.add_collection(individual)
    summ = _centre_of(centres, levels)
    if summ is not None:
        err = np.vstack([summ["centre"] - summ["low"], summ["high"] - summ["centre"]])
        ax.errorbar(x, summ["centre"], yerr=err, fmt="none", ecolor=colour, elinewidth=1.3, capsize=3, capthick=1.3,
                    zorder=3)
        ax.plot(x, summ["centre"], "o-", color=colour, linewidth=1.8, markersize=5, zorder=4, gid="trajectory-summary")
    ax.set_xticks(x, [str(lv) for lv in levels])
    ax.set_xlim(-0.25, len(levels) - 0.75)
    if ylim is not None:
        ax.set_ylim(*ylim)
    else:
        ax.autoscale_view(scalex=False)
    ax.set_ylabel(measure_label)
    if xlabel:
        ax.set_xlabel(xlabel)
    if legend:  # above the axes: individual lines fill the plot
        ax.legend(handles=_legend_handles(len(wide), colour, summary, centre=summ is not None), loc="lower left", bbox_to_anchor=(0.0, 1.02),
                  ncol=2, borderaxespad=0.0)
    if title:
        ax.set_title(title, loc="left")
    return ax


@themed
def plot_outcome_panels(
    long_all: pd.DataFrame,
    *,
    centres: pd.DataFrame | None = None,
    summary: Summary = "mean",
    ylims: Mapping[str, tuple[float, float]] | None = None,
    ncols: int = 2,
    panel_letters: bool = True,
) -> Figure:
    """One :func:`plot_trajectories` panel per measure, side by side on a page-width figure.

    Parameters
    ----------
    long_all : as for :func:`plot_trajectories` plus a ``measure`` column whose values are
        the measures' labels (used as the panels' y labels), in categorical order if
        categorical.
    centres : as for :func:`plot_trajectories` plus a ``measure`` column (the measures' labels).
    summary : "mean" or "median", as in :func:`plot_trajectories`.
    ylims : y limits per measure label (e.g. the measure's possible range).
    ncols : panels per row.
    panel_letters : label the panels A, B, C ... in bold at the top left.

    The legend stands above the panels, off the lines; ``n`` in it is the number of patients
    of the first panel.

    Returns
    -------
    matplotlib.figure.Figure
    """
    require_columns(long_all, ("measure", "id", "timepoint", "value"), what="plot_outcome_panels")
    measures = ordered_unique(long_all["measure"])
    ncols = max(1, min(ncols, len(measures)))
    fig, axes = new_panels(len(measures), ncols=ncols, panel_size=(PAGE_WIDTH / ncols, PAGE_WIDTH / ncols * 0.8))
    for i, (ax, measure) in enumerate(zip(axes, measures)):
        part = long_all[long_all["measure"] == measure]
        plot_trajectories(
            part,
            measure_label=str(measure),
            centres=None if centres is None else centres[centres["measure"] == measure],
            summary=summary,
            ylim=(ylims or {}).get(str(measure)),
            legend=False,
            ax=ax,
        )
        if panel_letters:
            panel_letter(ax, i)
    n_first = long_all.loc[long_all["measure"] == measures[0], "id"].nunique()
    fig.legend(handles=_legend_handles(n_first, PALETTE[0], summary, centre=centres is not None), loc="outside upper center",
               ncol=2)
    return fig
