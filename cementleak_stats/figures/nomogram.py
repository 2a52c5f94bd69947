"""The classic nomogram drawing of R ``rms::plot.nomogram``, from tidy points tables.

The points tables (what each predictor value scores, what total points mean as a risk) are
computed elsewhere (:mod:`cementleak_stats.nomogram`); this module only draws them.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.font_manager import FontProperties
from matplotlib.ticker import MaxNLocator

from ._util import format_value, require_columns, text_width_pt
from .theme import PAGE_WIDTH, themed

_TICK = 0.11  # tick length, in row units (one row = 1)
_GAP = 0.05  # between tick end and its label
_ROW_HEIGHT_IN = 0.44
_X_MARGIN = 4.0  # points-scale units left/right of 0-100 kept free for end labels


@dataclass(frozen=True)
class _Tick:
    x: float
    label: str


Lane = int | None  # 0 = label above the line, 1 = below, None = tick without label


def _fits(spans: Sequence[tuple[float, float]]) -> bool:
    ordered = sorted(spans)
    return all(a[1] <= b[0] for a, b in zip(ordered, ordered[1:]))


def _place_labels(ticks: Sequence[_Tick], width_of: Callable[[str], float], gap: float, *, categorical: bool) -> list[Lane]:
    """Where each tick's label goes: above the line, below it, or nowhere.

    All labels above if they fit; else alternating above/below (in x order).  A numeric axis
    that is still too crowded labels every k-th value (k = 2, 3, ...), from the lowest x,
    plus the last value when it fits, so the labelled values stay evenly spaced.  A
    categorical axis labels every level (greedily above, else below, else where it overlaps least).
    """
    order = sorted(range(len(ticks)), key=lambda i: ticks[i].x)
    half = [width_of(t.label) / 2 + gap / 2 for t in ticks]
    span = [(t.x - h, t.x + h) for t, h in zip(ticks, half)]
    out: list[Lane] = [None] * len(ticks)
    if categorical:
        placed: list[list[tuple[float, float]]] = [[], []]
        for i in order:
            free = [ln for ln in (0, 1) if _fits([*placed[ln], span[i]])]
            # neither free: the lane whose labels end further left overlaps least
            lane = free[0] if free else min((0, 1), key=lambda ln: max(b for _, b in placed[ln]))
            placed[lane].append(span[i])
            out[i] = lane
        return out
    for k in range(1, max(2, len(order))):
        chosen = order[::k]
        for alternate in (False, True):
            lanes = [(j % 2 if alternate else 0) for j in range(len(chosen))]
            if all(_fits([span[i] for i, ln in zip(chosen, lanes) if ln == lane]) for lane in (0, 1)):
                for i, ln in zip(chosen, lanes):
                    out[i] = ln
                last = order[-1]
                if out[last] is None:
                    for lane in (0, 1):
                        if _fits([span[i] for i in chosen if out[i] == lane] + [span[last]]):
                            out[last] = lane
                            break
                return out
    out[order[0]] = 0
    return out


def _draw_axis(ax: Axes, y: float, ticks: Sequence[_Tick], lanes: Sequence[Lane], *, minor: Sequence[float] = ()) -> None:
    xs = [t.x for t in ticks]
    ax.plot([min(xs), max(xs)], [y, y], color="black", linewidth=0.9, solid_capstyle="butt")
    for t, lane in zip(ticks, lanes):
        sign = -1.0 if lane == 1 else 1.0
        ax.plot([t.x, t.x], [y, y + sign * _TICK], color="black", linewidth=0.8)
        if lane is not None:
            ax.text(
                t.x,
                y + sign * (_TICK + _GAP),
                t.label,
                ha="center",
                va="top" if lane == 1 else "bottom",
                fontsize=plt.rcParams["xtick.labelsize"],
                gid="nomogram-value",
            )
    for x in minor:
        ax.plot([x, x], [y, y + _TICK * 0.55], color="black", linewidth=0.6)


@themed
def plot_nomogram(
    points: pd.DataFrame,
    total: pd.DataFrame,
    *,
    risk_label: str | None = None,
    title: str | None = None,
    points_label: str = "Points",
    total_label: str = "Total points",
    total_ticks: Sequence[float] | None = None,
    risk_format: Callable[[float], str] = format_value,
    guides: bool = False,
    wrap: int = 36,
    ax: Axes | None = None,
) -> Axes:
    """Draw a nomogram as R ``plot(rms::nomogram(...))`` does.

    Rows, top to bottom: a *Points* axis 0-100; one axis per predictor with each of its
    values at its points position (categorical levels as ticks labelled by level); a *Total
    points* axis; the risk axis.  Tick labels that would overlap alternate above and below
    their axis; a numeric value whose label fits in neither place keeps its tick unlabelled.

    Parameters
    ----------
    points : one row per predictor value with columns ``predictor`` (the label shown),
        ``value`` (level name or number) and ``points`` (0-100).  Predictors are drawn in
        order of first appearance, values in frame order.
    total : risk-axis ticks with columns ``total_points`` and ``risk``.  An optional
        ``label`` column gives the risk axis label when ``risk_label`` is not passed.
    risk_label : label of the risk axis, e.g. "12-month risk of <event>".
    title : axes title.
    points_label, total_label : labels of the Points and Total points rows.
    total_ticks : ticks of the Total points axis; by default 0 to the sum of the predictors'
        maximum points, on a "pretty" 1-2-2.5-5 step (as R ``pretty``).
    risk_format : formats a risk tick label.
    guides : faint vertical lines from the Points axis through the predictor rows.
    wrap : row labels longer than this many characters wrap onto two lines.
    ax : axes to draw into; by default a new page-width figure with fixed margins.

    Returns
    -------
    matplotlib.axes.Axes
        Value labels are texts with gid ``nomogram-value``.

    Notes
    -----
    The Total points axis is drawn on its own scale, ``x = 100 * total / max(total_ticks)``,
    so that it spans the width of the Points axis; risk ticks sit at the ``x`` of their total
    points.  Label overlap is judged from each label's rendered width at the axes' size.

    References
    ----------
    Harrell FE. rms: Regression Modeling Strategies, ``nomogram`` and ``plot.nomogram``
    (R/nomogram.s).
    """
    require_columns(points, ("predictor", "value", "points"), what="plot_nomogram (points)")
    require_columns(total, ("total_points", "risk"), what="plot_nomogram (total)")
    if risk_label is None:
        risk_label = str(total["label"].iloc[0]) if "label" in total.columns else "Risk"
    predictors = list(dict.fromkeys(points["predictor"]))
    row_names = [points_label, *map(str, predictors), total_label, risk_label]
    row_labels = [textwrap.fill(r, wrap) for r in row_names]
    n_rows = len(row_names)
    label_size = FontProperties(size=plt.rcParams["axes.labelsize"]).get_size_in_points()
    tick_size = FontProperties(size=plt.rcParams["xtick.labelsize"]).get_size_in_points()

    if ax is None:
        width = PAGE_WIDTH
        height = _ROW_HEIGHT_IN * n_rows + (0.35 if title else 0.12)
        fig = plt.figure(figsize=(width, height))
        left_in = max(text_width_pt(line, size=label_size) for r in row_labels for line in r.split("\n")) / 72 + 0.18
        top_in = 0.3 if title else 0.05
        ax = fig.add_axes((left_in / width, 0.04 / height, 1 - (left_in + 0.12) / width, 1 - (top_in + 0.04) / height))
    fig = ax.figure
    if fig.get_layout_engine() is not None:
        fig.draw_without_rendering()  # settle the axes' size before measuring labels
    xlim = (-_X_MARGIN, 100 + _X_MARGIN)
    ys = np.arange(n_rows - 1, -1, -1, dtype=float) * 1.0
    ax.set_xlim(*xlim)
    ax.set_ylim(-0.6, n_rows - 0.35)
    ax_width_in = ax.get_position().width * fig.get_figwidth()
    units_per_pt = (xlim[1] - xlim[0]) / (ax_width_in * 72)

    def width_of(s: str) -> float:
        return text_width_pt(s, size=tick_size) * units_per_pt

    gap = 3.0 * units_per_pt

    def draw(y: float, xs: Sequence[float], values: Sequence[object], *, categorical: bool = False, minor: Sequence[float] = ()) -> None:
        ticks = [_Tick(float(x), format_value(v) if not isinstance(v, str) else v) for x, v in zip(xs, values)]
        _draw_axis(ax, y, ticks, _place_labels(ticks, width_of, gap, categorical=categorical), minor=minor)

    # Points axis
    major = np.arange(0, 101, 10, dtype=float)
    draw(ys[0], major, list(major), minor=np.arange(5, 100, 10, dtype=float))
    # Predictor axes (a predictor with any text value is categorical: every level labelled)
    for y, pred in zip(ys[1:], predictors):
        rows = points[points["predictor"] == pred]
        vals = list(rows["value"])
        draw(y, rows["points"].to_numpy(float), vals, categorical=any(isinstance(v, str) for v in vals))
    # Total points and risk axes
    if total_ticks is None:
        sum_max = float(points.groupby("predictor", sort=False)["points"].max().sum())
        reach = max(sum_max, float(total["total_points"].max()))
        total_ticks = [t for t in MaxNLocator(nbins=10, steps=[1, 2, 2.5, 5, 10]).tick_values(0.0, reach) if t >= 0]
        total_ticks = [t for t in total_ticks if t <= reach or t == min(u for u in total_ticks if u >= reach)]
    total_ticks = [float(t) for t in total_ticks]
    scale = 100.0 / max(total_ticks)
    draw(ys[-2], [t * scale for t in total_ticks], total_ticks)
    risk = total.sort_values("total_points")
    draw(ys[-1], risk["total_points"].to_numpy(float) * scale, [risk_format(float(r)) for r in risk["risk"]])

    if guides:
        ax.vlines(major, ys[-3] - 0.3, ys[0], color="#E0E0E0", linewidth=0.5, zorder=0)
    ax.set_yticks(ys, row_labels)
    ax.tick_params(axis="y", length=0, pad=6, labelsize=label_size)
    ax.set_xticks([])
    for side in ("top", "right", "bottom", "left"):
        ax.spines[side].set_visible(False)
    if title:
        ax.set_title(title, loc="left", pad=8)
    return ax
