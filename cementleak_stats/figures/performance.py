"""Time-dependent ROC curves (one per horizon or model) and the clinical impact curve."""

from __future__ import annotations

import pandas as pd
from matplotlib.axes import Axes

from ._util import finish_axes, require_columns
from .decision import _threshold_axis
from .theme import COLUMN_WIDTH, GREY, OKABE_ITO, colours, new_axes, themed


@themed
def plot_roc(
    frame: pd.DataFrame,
    *,
    by: str = "curve",
    xlabel: str = "1 − specificity (false-positive rate)",
    ylabel: str = "Sensitivity (true-positive rate)",
    chance_label: str = "Chance",
    title: str | None = None,
    ax: Axes | None = None,
) -> Axes:
    """ROC curves, one per value of ``by`` (a horizon, a model), with the chance diagonal.

    Parameters
    ----------
    frame : columns ``fpr``, ``tpr`` and ``by`` (the legend entry of each curve, e.g.
        "12 months: AUC 0.90 (0.82 to 0.98)"); each curve's rows in drawing order.
    by : the column naming the curves (in order of first appearance).
    ax : axes to draw into; a new single-column square figure by default.

    Returns
    -------
    matplotlib.axes.Axes
        Curves with gid ``roc-curve``; the diagonal ``roc-chance``.
    """
    require_columns(frame, ("fpr", "tpr", by), what="plot_roc")
    ax = new_axes(ax, size=(COLUMN_WIDTH, COLUMN_WIDTH))
    ax.plot([0, 1], [0, 1], color=GREY, linestyle="--", linewidth=0.9, label=chance_label, gid="roc-chance", zorder=1)
    names = list(dict.fromkeys(frame[by]))
    styles = ["-", "--", "-.", ":"]
    for i, (name, colour) in enumerate(zip(names, colours(len(names)))):
        part = frame[frame[by] == name]
        ax.step(part["fpr"], part["tpr"], where="post", color=colour, linewidth=1.3, linestyle=styles[i % len(styles)],
                label=str(name), gid="roc-curve", zorder=3 + i)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_aspect("equal", adjustable="box")
    return finish_axes(ax, xlabel=xlabel, ylabel=ylabel, legend={"loc": "lower right"}, title=title)


@themed
def plot_clinical_impact(
    frame: pd.DataFrame,
    *,
    per: int = 1000,
    high_label: str = "Number classed high risk",
    event_label: str = "Number high risk with the event",
    xlabel: str = "Threshold probability",
    ylabel: str | None = None,
    title: str | None = None,
    ax: Axes | None = None,
) -> Axes:
    """Clinical impact curve (Kerr et al. 2016; rmda ``plot_clinical_impact``): per ``per``
    patients, how many are classed high risk at each threshold, and how many of them have the
    event.

    Parameters
    ----------
    frame : columns ``threshold``, ``high_risk``, ``high_risk_with_event`` (per ``per``).
    ax : axes to draw into; a new single-column figure by default.

    Returns
    -------
    matplotlib.axes.Axes
        Lines with gids ``impact-high-risk`` and ``impact-with-event``.
    """
    require_columns(frame, ("threshold", "high_risk", "high_risk_with_event"), what="plot_clinical_impact")
    df = frame.sort_values("threshold")
    ax = new_axes(ax, size=(COLUMN_WIDTH, COLUMN_WIDTH * 0.78))
    t = df["threshold"].to_numpy(float)
    ax.plot(t, df["high_risk"], color=OKABE_ITO["vermillion"], linewidth=1.5, label=high_label, gid="impact-high-risk")
    ax.plot(t, df["high_risk_with_event"], color=OKABE_ITO["blue"], linewidth=1.5, linestyle="--", label=event_label,
            gid="impact-with-event")
    ax.set_ylim(0, per * 1.02)
    _threshold_axis(ax, t, xlabel)
    # the legend above the axes: never over a line
    return finish_axes(ax, ylabel=ylabel if ylabel is not None else f"Number per {per:,} patients",
                       legend={"loc": "lower left", "bbox_to_anchor": (0.0, 1.0), "frameon": False}, title=title)


__all__ = ["plot_roc", "plot_clinical_impact"]
