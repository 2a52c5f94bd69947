"""Decision curve: net benefit of the model, treat-all and treat-none; interventions avoided."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.ticker import PercentFormatter

from ._util import require_columns
from .theme import COLUMN_WIDTH, GREY, OKABE_ITO, new_axes, themed

_SIZE = (COLUMN_WIDTH, COLUMN_WIDTH * 0.78)


def _threshold_axis(ax: Axes, thresholds: np.ndarray, xlabel: str) -> None:
    ax.set_xlim(0.0, float(np.nanmax(thresholds)))
    ax.xaxis.set_major_formatter(PercentFormatter(xmax=1.0, decimals=0))
    ax.set_xlabel(xlabel)


@themed
def plot_decision_curve(
    frame: pd.DataFrame,
    *,
    model_label: str = "Model",
    all_label: str = "Treat all",
    none_label: str = "Treat none",
    xlabel: str = "Threshold probability",
    ylabel: str = "Net benefit",
    ylim: tuple[float, float] | None = None,
    title: str | None = None,
    ax: Axes | None = None,
) -> Axes:
    """Decision curve (Vickers & Elkin 2006): net benefit against the threshold probability.

    Parameters
    ----------
    frame : one row per threshold with columns ``threshold`` (0-1), ``net_benefit_model``,
        ``net_benefit_all`` and ``net_benefit_none``.
    model_label, all_label, none_label : legend entries.
    xlabel, ylabel, title : texts; the threshold axis is labelled in percent.
    ylim : y limits.  By default the top is 8 % above the largest net benefit and the bottom
        20 % of that below zero (at least -0.02): treat-all falls steeply at high thresholds
        and is clipped there, as in published decision curves.
    ax : axes to draw into; a new single-column figure by default.

    Returns
    -------
    matplotlib.axes.Axes
        Lines with gids ``dca-model``, ``dca-all``, ``dca-none``.

    References
    ----------
    Vickers AJ, Elkin EB. Decision curve analysis: a novel method for evaluating prediction
    models. Med Decis Making 2006;26:565-74.
    """
    cols = ("threshold", "net_benefit_model", "net_benefit_all", "net_benefit_none")
    require_columns(frame, cols, what="plot_decision_curve")
    df = frame.sort_values("threshold")
    ax = new_axes(ax, size=_SIZE)
    t = df["threshold"].to_numpy(float)
    ax.plot(t, df["net_benefit_model"], color=OKABE_ITO["vermillion"], linewidth=1.6, label=model_label, gid="dca-model", zorder=3)
    ax.plot(t, df["net_benefit_all"], color=OKABE_ITO["black"], linewidth=1.1, linestyle="--", label=all_label, gid="dca-all")
    ax.plot(t, df["net_benefit_none"], color=GREY, linewidth=1.1, label=none_label, gid="dca-none")
    if ylim is None:
        top = float(np.nanmax(df[["net_benefit_model", "net_benefit_all"]].to_numpy(float)))
        top = top if top > 0 else 0.05
        ylim = (-max(0.02, 0.2 * top), 1.08 * top)
    ax.set_ylim(*ylim)
    _threshold_axis(ax, t, xlabel)
    ax.set_ylabel(ylabel)
    ax.legend(loc="upper right")
    if title:
        ax.set_title(title, loc="left")
    return ax


@themed
def plot_interventions_avoided(
    frame: pd.DataFrame,
    *,
    label: str | None = None,
    xlabel: str = "Threshold probability",
    ylabel: str = "Net interventions avoided\nper 100 patients",
    title: str | None = None,
    ax: Axes | None = None,
) -> Axes:
    """Net reduction in interventions per 100 patients against the threshold probability.

    Parameters
    ----------
    frame : columns ``threshold`` (0-1) and ``interventions_avoided`` (per 100 patients).
    label : legend entry for the curve (no legend when None).
    xlabel, ylabel, title : texts.
    ax : axes to draw into; a new single-column figure by default.

    Returns
    -------
    matplotlib.axes.Axes
        The curve is a line with gid ``dca-avoided``; negative values at low thresholds
        are clipped at a quarter of the curve's maximum below zero.

    Notes
    -----
    The frame's values are, by the usual definition,
    ``100 * (NB_model - NB_all) / (pt / (1 - pt))`` (Vickers et al. 2006).
    """
    require_columns(frame, ("threshold", "interventions_avoided"), what="plot_interventions_avoided")
    df = frame.sort_values("threshold")
    ax = new_axes(ax, size=_SIZE)
    t = df["threshold"].to_numpy(float)
    y = df["interventions_avoided"].to_numpy(float)
    ax.axhline(0.0, color=GREY, linewidth=0.8)
    ax.plot(t, y, color=OKABE_ITO["vermillion"], linewidth=1.6, label=label, gid="dca-avoided")
    top = float(np.nanmax(y)) if np.isfinite(y).any() else 1.0
    top = top if top > 0 else 1.0
    bottom = max(float(np.nanmin(y)), -0.25 * top)
    ax.set_ylim(min(bottom, 0.0) - 0.02 * top, 1.08 * top)
    _threshold_axis(ax, t, xlabel)
    ax.set_ylabel(ylabel)
    if label:
        ax.legend(loc="lower right")
    if title:
        ax.set_title(title, loc="left")
    return ax
