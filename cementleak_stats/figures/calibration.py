"""Calibration at the horizon and the distribution of predicted risks."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.colors import to_rgba
from matplotlib.ticker import MultipleLocator, PercentFormatter

from ..i18n import T
from ._util import require_columns
from .theme import COLUMN_WIDTH, GREY, OKABE_ITO, colours, new_axes, ordered_unique, themed


@themed
def plot_calibration(
    frame: pd.DataFrame,
    *,
    horizon_label: str,
    smooth: pd.DataFrame | None = None,
    predictions: Sequence[float] | None = None,
    limits: tuple[float, float] = (0.0, 1.0),
    apparent_label: str = "Apparent",
    corrected_label: str = "Bias-corrected",
    smooth_label: str = "Smoothed",
    ideal_label: str = "Ideal",
    xlabel: str | None = None,
    ylabel: str = "Observed probability (Kaplan-Meier)",
    note: str | None = None,
    title: str | None = None,
    ax: Axes | None = None,
) -> Axes:
    """Calibration plot: observed (Kaplan-Meier) against predicted probability at the horizon.

    Parameters
    ----------
    frame : one row per risk group with columns ``predicted`` (mean predicted probability),
        ``observed`` (Kaplan-Meier estimate), optionally ``corrected`` (bootstrap
        bias-corrected observed; not drawn when absent) and ``ci_low`` / ``ci_high`` (CI of
        ``observed``).
    horizon_label : completes the x label "Predicted probability of <horizon_label>",
        e.g. "death by 365 days".
    smooth : optional smooth calibration curve with columns ``predicted``, ``observed``;
        drawn only over the range of ``predictions`` when they are given.
    predictions : optional individual predicted probabilities, drawn as a spike histogram
        along the bottom of the plot (as R ``rms`` ``riskdist``).
    limits : limits of both axes.
    apparent_label, corrected_label, smooth_label, ideal_label : legend entries.
    xlabel, ylabel : override the axis labels.
    note : optional text in the lower right corner (e.g. "B = 1000; ICI = 0.03").
    title : axes title.
    ax : axes to draw into; a new single-column square figure by default.

    Returns
    -------
    matplotlib.axes.Axes
        Artists carry gids ``calibration-apparent``, ``calibration-corrected``,
        ``calibration-smooth``, ``calibration-ideal`` and ``calibration-histogram``.
    """
    require_columns(frame, ("predicted", "observed"), what="plot_calibration")
    df = frame.sort_values("predicted")
    ax = new_axes(ax, size=(COLUMN_WIDTH, COLUMN_WIDTH))
    lo, hi = limits
    ax.plot([lo, hi], [lo, hi], color=GREY, linestyle="--", linewidth=0.9, label=ideal_label, gid="calibration-ideal", zorder=1)
    blue, vermillion, green = OKABE_ITO["blue"], OKABE_ITO["vermillion"], OKABE_ITO["bluish_green"]
    x = df["predicted"].to_numpy(float)
    if {"ci_low", "ci_high"} <= set(df.columns):
        obs = df["observed"].to_numpy(float)
        err = np.vstack([obs - df["ci_low"].to_numpy(float), df["ci_high"].to_numpy(float) - obs])
        ax.errorbar(x, obs, yerr=err, fmt="none", ecolor=blue, elinewidth=0.8, alpha=0.7, zorder=2)
    ax.plot(x, df["observed"], "o-", color=blue, markersize=4, linewidth=1.1, label=apparent_label, gid="calibration-apparent", zorder=3)
    if "corrected" in df.columns:  # absent where there is nothing to correct (a validation cohort)
        ax.plot(x, df["corrected"], "^--", color=vermillion, markersize=4.5, linewidth=1.1, label=corrected_label,
                gid="calibration-corrected", zorder=4)
    if smooth is not None:
        require_columns(smooth, ("predicted", "observed"), what="plot_calibration (smooth)")
        s = smooth.sort_values("predicted")
        if predictions is not None:  # a smooth curve says nothing beyond the predictions
            p = np.asarray(predictions, float)
            s = s[(s["predicted"] >= np.nanmin(p)) & (s["predicted"] <= np.nanmax(p))]
        ax.plot(s["predicted"], s["observed"], "-", color=green, linewidth=1.3, label=smooth_label, gid="calibration-smooth", zorder=2)
    if predictions is not None:
        _spike_histogram(ax, np.asarray(predictions, float), limits=limits)
    ax.set_xlim(lo, hi)
    ax.set_ylim(lo, hi)
    ax.set_aspect("equal", adjustable="box")
    step = 0.2 if hi - lo > 0.5 else 0.1
    ax.xaxis.set_major_locator(MultipleLocator(step))
    ax.yaxis.set_major_locator(MultipleLocator(step))
    ax.set_xlabel(textwrap.fill(xlabel if xlabel is not None else f"Predicted probability of {horizon_label}", 44))
    ax.set_ylabel(textwrap.fill(ylabel, 44))
    ax.legend(loc="upper left")
    if note:
        ax.text(0.98, 0.1, note, transform=ax.transAxes, ha="right", va="bottom", fontsize=ax.xaxis.label.get_fontsize() * 0.9)
    if title:
        ax.set_title(title, loc="left")
    return ax


def _spike_histogram(ax: Axes, values: np.ndarray, *, limits: tuple[float, float], bins: int = 100, height: float = 0.06) -> None:
    """Spikes along the bottom of ``ax``, tallest = ``height`` of the axis range (rms riskdist)."""
    values = values[np.isfinite(values)]
    if values.size == 0:
        return
    counts, edges = np.histogram(values, bins=bins, range=limits)
    centres = (edges[:-1] + edges[1:]) / 2
    keep = counts > 0
    scale = height * (limits[1] - limits[0]) / counts.max()
    ax.vlines(
        centres[keep], limits[0], limits[0] + counts[keep] * scale, color="black", linewidth=0.7, gid="calibration-histogram", zorder=1
    )


@themed
def plot_risk_distribution(
    frame: pd.DataFrame,
    *,
    bins: int = 20,
    xlabel: str = "Predicted risk",
    ylabel: str = "Patients",
    legend_title: str | None = None,
    as_percent: bool = True,
    title: str | None = None,
    ax: Axes | None = None,
) -> Axes:
    """Histogram of predicted risks, one overlaid histogram per observed outcome group.

    Parameters
    ----------
    frame : one row per patient with columns ``predicted`` (risk in [0, 1]) and ``group``
        (the observed outcome, labelled, e.g. "Death" / "No death"; categorical order is
        kept).
    bins : number of bins shared by all groups, from 0 to the largest prediction.
    xlabel, ylabel, legend_title, title : texts.
    as_percent : x tick labels in percent.
    ax : axes to draw into; a new single-column figure by default.

    Returns
    -------
    matplotlib.axes.Axes
        One step-filled histogram (a patch with gid ``risk-<group>``) per group.
    """
    require_columns(frame, ("predicted", "group"), what="plot_risk_distribution")
    ax = new_axes(ax, size=(COLUMN_WIDTH, COLUMN_WIDTH * 0.72))
    groups = ordered_unique(frame["group"])
    upper = float(np.nanmax(frame["predicted"].to_numpy(float)))
    upper = min(1.0, np.ceil(upper * 10) / 10) if upper > 0 else 1.0  # end on a round tick
    edges = np.linspace(0.0, upper, bins + 1)
    for colour, g in zip(colours(len(groups)), groups):
        vals = frame.loc[frame["group"] == g, "predicted"].to_numpy(float)
        _, _, patches = ax.hist(
            vals,
            bins=edges,
            histtype="stepfilled",
            facecolor=to_rgba(colour, 0.3),
            edgecolor=colour,
            linewidth=1.1,
            label=T("{group} (n = {n})", group=g, n=len(vals)),
        )
        for p in patches:
            p.set_gid(f"risk-{g}")
    ax.set_xlim(0, edges[-1])
    if as_percent:
        ax.xaxis.set_major_formatter(PercentFormatter(xmax=1.0, decimals=0))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend(title=legend_title, loc="lower left", bbox_to_anchor=(0.0, 1.02), borderaxespad=0.0,
              alignment="left")  # above the axes: the histograms fill the plot
    if title:
        ax.set_title(title, loc="left", pad=12 + 12 * (len(groups) + bool(legend_title)))
    return ax
