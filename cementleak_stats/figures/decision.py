"""Decision curve: net benefit of the model, treat-all and treat-none; interventions avoided."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.ticker import PercentFormatter

from ._util import finish_axes, require_columns
from .theme import COLUMN_WIDTH, GREY, OKABE_ITO, new_axes, themed

_SIZE = (COLUMN_WIDTH, COLUMN_WIDTH * 0.78)


def _threshold_axis(ax: Axes, thresholds: np.ndarray, xlabel: str) -> None:
    ax.set_xlim(0.0, float(np.nanmax(thresholds)))
    ax.xaxis.set_major_formatter(PercentFormatter(xmax=1.0, decimals=0))
    ax.set_xlabel(xlabel)


def clip_marks(ax: Axes, x: np.ndarray, y: np.ndarray, *, ylim: tuple[float, float], color: str) -> int:
    """Mark where a curve leaves the y range: a triangle on the edge, pointing the way it went.

    A mark is drawn at each crossing of the lower (``v``) or upper (``^``) limit, at the
    linearly interpolated x, unclipped so that it sits on the axis line.  Returns the number of
    marks (gid ``clip-mark``).
    """
    n = 0
    for edge, outside, marker in ((ylim[0], y < ylim[0], "v"), (ylim[1], y > ylim[1], "^")):
        if not outside.any():
            continue
        xs = []
        for i in np.flatnonzero(outside[1:] != outside[:-1]):  # a crossing between i and i + 1
            x0, x1, y0, y1 = x[i], x[i + 1], y[i], y[i + 1]
            xs.append(x0 + (edge - y0) * (x1 - x0) / (y1 - y0) if y1 != y0 else x0)
        if outside[0]:
            xs.insert(0, x[0])
        if outside[-1] and not xs:
            xs.append(x[-1])
        ax.plot(xs, [edge] * len(xs), marker, color=color, markersize=5, clip_on=False, zorder=5, gid="clip-mark",
                linestyle="none")
        n += len(xs)
    return n


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
    ylim : y limits.  By default from the data: the top 8 % above the largest net benefit,
        the bottom at the model's lowest net benefit or a tenth of the top below zero
        (whichever is lower).  Treat-all falls steeply at high thresholds and leaves the
        axes there, as in published decision curves; every curve that leaves the axes gets a
        triangle on the edge where it does (gid ``clip-mark``).
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
    model = df["net_benefit_model"].to_numpy(float)
    treat_all = df["net_benefit_all"].to_numpy(float)
    ax.plot(t, model, color=OKABE_ITO["vermillion"], linewidth=1.6, label=model_label, gid="dca-model", zorder=3)
    ax.plot(t, treat_all, color=OKABE_ITO["black"], linewidth=1.1, linestyle="--", label=all_label, gid="dca-all")
    ax.plot(t, df["net_benefit_none"], color=GREY, linewidth=1.1, label=none_label, gid="dca-none")
    if ylim is None:
        top = float(np.nanmax(np.concatenate([model, treat_all])))
        top = top if top > 0 else 0.05
        low = float(np.nanmin(model)) if np.isfinite(model).any() else 0.0
        ylim = (min(-0.1 * top, low - 0.05 * top), 1.08 * top)
    ax.set_ylim(*ylim)
    clip_marks(ax, t, model, ylim=ylim, color=OKABE_ITO["vermillion"])
    clip_marks(ax, t, treat_all, ylim=ylim, color=OKABE_ITO["black"])
    _threshold_axis(ax, t, xlabel)
    return finish_axes(ax, ylabel=ylabel, legend={"loc": "best"}, title=title)


@themed
def plot_interventions_avoided(
    frame: pd.DataFrame,
    *,
    label: str | None = None,
    xlabel: str = "Threshold probability",
    ylabel: str = "Net interventions avoided\nper 100 patients",
    floor: float = 0.5,
    title: str | None = None,
    ax: Axes | None = None,
) -> Axes:
    """Net reduction in interventions per 100 patients against the threshold probability.

    Parameters
    ----------
    frame : columns ``threshold`` (0-1) and ``interventions_avoided`` (per 100 patients).
    label : legend entry for the curve (no legend when None).
    xlabel, ylabel, title : texts.
    floor : the y axis reaches down to the curve's minimum, but not below ``-floor`` times its
        maximum (at least -10); lower values, which arise at thresholds close to 0 where the
        difference from treat-all is divided by a small ``pt / (1 - pt)``, are marked by a
        triangle on the lower edge (gid ``clip-mark``).
    ax : axes to draw into; a new single-column figure by default.

    Returns
    -------
    matplotlib.axes.Axes
        The curve is a line with gid ``dca-avoided``.

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
    low = float(np.nanmin(y)) if np.isfinite(y).any() else 0.0
    bottom = max(min(low, 0.0), -max(floor * top, 10.0))
    ylim = (bottom - 0.03 * (top - bottom), 1.08 * top)
    ax.set_ylim(*ylim)
    clip_marks(ax, t, y, ylim=ylim, color=OKABE_ITO["vermillion"])
    _threshold_axis(ax, t, xlabel)
    return finish_axes(ax, ylabel=ylabel, legend={"loc": "best"} if label else None, title=title)
