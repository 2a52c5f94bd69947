"""The classic nomogram drawing of R ``rms::plot.nomogram``, from tidy points tables.

The points tables (what each predictor value scores, what total points mean as a risk) are
computed elsewhere (:mod:`cementleak_stats.nomogram`); this module only draws them, and
chooses which risks to label (:func:`risk_ticks`).
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

from ..i18n import T
from ..formatting import format_value
from ._util import require_columns, text_width_pt
from .theme import PAGE_WIDTH, themed

_ROW_IN = 0.44  # distance between two axis lines, in inches, when each has at most one label line per side
_TICK_IN = 0.05  # tick length
_GAP_IN = 0.02  # between a tick's end and its label
_LINE_SPACING = 1.2  # label line height / font size
_X_MARGIN = 4.0  # points-scale units left/right of 0-100 kept free for end labels

#: Risks a published nomogram labels (rms ``fun.at`` in the papers): 1-2-5 steps in the tails,
#: tenths in the middle.  :func:`risk_ticks` keeps those the cohort's predictions span.
RISK_TICKS: tuple[float, ...] = (
    0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9,
    0.95, 0.98, 0.99, 0.995, 0.998, 0.999,
)
#: The order in which risk labels claim room on a crowded axis (the axis ends come first).
_RISK_PRIORITY: tuple[float, ...] = (
    0.5, 0.1, 0.9, 0.01, 0.99, 0.3, 0.7, 0.2, 0.8, 0.05, 0.95, 0.4, 0.6, 0.02, 0.98,
    0.001, 0.999, 0.005, 0.995, 0.002, 0.998,
)


@dataclass(frozen=True)
class _Tick:
    x: float
    label: str


#: 0 = first label line above the axis, 1 = first below, 2 = second above, 3 = second below,
#: ...; None = a tick without a label
Lane = int | None


def risk_ticks(spread: Sequence[float], *, reach: tuple[float, float] = (0.0, 1.0),
               candidates: Sequence[float] = RISK_TICKS) -> list[float]:
    """The risk-axis ticks of a nomogram for a cohort's predicted risks.

    The ``candidates`` between the lowest and the highest prediction, widened by one
    candidate on a side where they would not reach the 5th (95th) percentile, and kept
    within ``reach`` (the risks the total-points axis can reach).

    Parameters
    ----------
    spread : the cohort's lowest, 5th percentile, 95th percentile and highest predicted risk
        at the horizon (:func:`cementleak_stats.riskgroups.risk_spread`, computed in the analysis).
    reach : lowest and highest risk on the total-points axis.
    candidates : increasing risks to choose from (default :data:`RISK_TICKS`).

    Returns
    -------
    list of float
        Increasing; they span at least the 5th-95th percentile whenever ``reach`` and
        ``candidates`` allow it.
    """
    lo, p5, p95, hi = (float(x) for x in spread)
    cand = np.asarray([c for c in candidates if reach[0] <= c <= reach[1]], dtype=float)
    if not np.isfinite([lo, p5, p95, hi]).all() or cand.size == 0:
        return [float(c) for c in cand]
    keep = (cand >= lo) & (cand <= hi)
    below, above = cand[cand <= p5], cand[cand >= p95]
    first = below.max() if below.size else cand.min()
    last = above.min() if above.size else cand.max()
    if keep.any():
        first = min(first, cand[keep].min())
        last = max(last, cand[keep].max())
    return [float(c) for c in cand if first <= c <= last]


def _span(x: float, width: float, gap: float, bounds: tuple[float, float]) -> tuple[float, float, str]:
    """Horizontal extent of a label at tick ``x`` and its alignment: centred, unless that
    would cross ``bounds``; then flush with the tick on the inner side."""
    half = width / 2 + gap / 2
    if x - half < bounds[0]:
        return x - gap / 2, x + width + gap / 2, "left"
    if x + half > bounds[1]:
        return x - width - gap / 2, x + gap / 2, "right"
    return x - half, x + half, "center"


def _fits(spans: Sequence[tuple[float, float]]) -> bool:
    ordered = sorted(spans)
    return all(a[1] <= b[0] for a, b in zip(ordered, ordered[1:]))


def _first_free_lane(placed: list[list[tuple[float, float]]], span: tuple[float, float], limit: int | None) -> int | None:
    lane = 0
    while limit is None or lane < limit:
        if lane == len(placed):
            placed.append([])
        if _fits([*placed[lane], span]):
            placed[lane].append(span)
            return lane
        lane += 1
    return None


def _place_labels(ticks: Sequence[_Tick], width_of: Callable[[str], float], gap: float, *, categorical: bool,
                  priority: Sequence[int] | None = None, bounds: tuple[float, float] = (-np.inf, np.inf)) -> list[Lane]:
    """Where each tick's label goes: a lane above or below the line, or nowhere.

    * categorical: every level is labelled, each in the first lane where it overlaps no
      other label (above, below, second line above, second line below, ...);
    * ``priority`` (indices of ``ticks``, most important first): each label in the first of
      the two lanes next to the line where it fits, else unlabelled;
    * numeric: all labels above if they fit; else alternating above/below (in x order); an
      axis still too crowded labels every k-th value (k = 2, 3, ...) from the lowest x, plus
      the last value when it fits, so the labelled values stay evenly spaced; the smallest k
      that labels both ends is preferred to a smaller one that cannot label the last value.
    """
    spans = [_span(t.x, width_of(t.label), gap, bounds)[:2] for t in ticks]
    out: list[Lane] = [None] * len(ticks)
    if categorical or priority is not None:
        placed: list[list[tuple[float, float]]] = []
        order = priority if priority is not None else sorted(range(len(ticks)), key=lambda i: ticks[i].x)
        for i in order:
            out[i] = _first_free_lane(placed, spans[i], None if categorical else 2)
        return out
    order = sorted(range(len(ticks)), key=lambda i: ticks[i].x)
    last = order[-1]
    for both_ends in (True, False):  # 0, 500, 1000 rather than 0, 700 on an axis 0-1000 with room for two
        for k in range(1, max(2, len(order))):
            chosen = order[::k]
            for alternate in (False, True):
                lanes = [(j % 2 if alternate else 0) for j in range(len(chosen))]
                if not all(_fits([spans[i] for i, ln in zip(chosen, lanes) if ln == lane]) for lane in (0, 1)):
                    continue
                out = [None] * len(ticks)
                for i, ln in zip(chosen, lanes):
                    out[i] = ln
                if out[last] is None:
                    for lane in (0, 1):
                        if _fits([spans[i] for i in chosen if out[i] == lane] + [spans[last]]):
                            out[last] = lane
                            break
                if out[last] is not None or not both_ends:
                    return out
    out = [None] * len(ticks)
    out[order[0]] = 0
    return out


@dataclass(frozen=True)
class _Row:
    name: str
    ticks: list[_Tick]
    lanes: list[Lane]
    minor: tuple[float, ...] = ()

    def lines(self, side: int) -> int:
        """Label lines above (side 0) or below (side 1) the axis."""
        used = [ln // 2 + 1 for ln in self.lanes if ln is not None and ln % 2 == side]
        return max(used, default=0)


def _row_positions(rows: Sequence[_Row], line_in: float) -> tuple[list[float], float, float]:
    """y of each axis line (in inches, the first at 0, going down) and the extents above the
    first and below the last."""
    def extent(n: int) -> float:
        return _TICK_IN + _GAP_IN + n * line_in if n else _TICK_IN

    ys = [0.0]
    for upper, lower in zip(rows, rows[1:]):
        need = extent(upper.lines(1)) + extent(lower.lines(0)) + 0.04
        ys.append(ys[-1] - max(_ROW_IN, need))
    return ys, extent(rows[0].lines(0)), extent(rows[-1].lines(1))


def _draw_row(ax: Axes, y: float, row: _Row, *, size: float, line_in: float, bounds: tuple[float, float],
              width_of: Callable[[str], float], gap: float, keep_unlabelled: bool = True) -> None:
    every = sorted(t.x for t in row.ticks)
    comb = any(b - a < gap for a, b in zip(every, every[1:]))  # ticks that close read as a comb, not a scale
    shown = [(t, ln) for t, ln in zip(row.ticks, row.lanes) if (keep_unlabelled and not comb) or ln is not None]
    xs = every if keep_unlabelled else [t.x for t, _ in shown]  # the line spans the values, drawn or not
    ax.plot([min(xs), max(xs)], [y, y], color="black", linewidth=0.9, solid_capstyle="butt")
    for t, lane in shown:
        sign = -1.0 if lane is not None and lane % 2 == 1 else 1.0
        ax.plot([t.x, t.x], [y, y + sign * _TICK_IN], color="black", linewidth=0.8)
        if lane is None:
            continue
        _, _, ha = _span(t.x, width_of(t.label), gap, bounds)
        offset = _TICK_IN + _GAP_IN + (lane // 2) * line_in
        ax.text(t.x, y + sign * offset, t.label, ha=ha, va="top" if sign < 0 else "bottom", fontsize=size,
                gid="nomogram-value")
    for x in row.minor:
        ax.plot([x, x], [y, y + _TICK_IN * 0.55], color="black", linewidth=0.6)


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
    more_risks: Sequence[tuple[str, pd.DataFrame]] = (),
    ax: Axes | None = None,
) -> Axes:
    """Draw a nomogram as R ``plot(rms::nomogram(...))`` does.

    Rows, top to bottom: a *Points* axis 0-100; one axis per predictor with each of its
    values at its points position (categorical levels as ticks labelled by level); a *Total
    points* axis; the risk axis.  Labels never overlap: numeric labels alternate above and
    below their axis and, where still too crowded, every k-th value is labelled; every level
    of a categorical predictor is labelled, on a further line above or below when needed
    (the rows move apart to make room); risk labels are kept by importance (0.5, 0.1, 0.9,
    0.01, 0.99, ...) after the two ends of the axis, and a risk that cannot be labelled is
    not drawn.

    Parameters
    ----------
    points : one row per predictor value with columns ``predictor`` (the label shown),
        ``value`` (level label or number) and ``points`` (0-100).  Predictors are drawn in
        order of first appearance, values in frame order.
    total : risk-axis ticks with columns ``total_points`` and ``risk`` (e.g. from
        :func:`risk_ticks` and ``Nomogram.points_for_risk``).  An optional ``label`` column
        gives the risk axis label when ``risk_label`` is not passed.
    risk_label : label of the risk axis, e.g. "12-month risk of <event>".
    title : axes title.
    points_label, total_label : labels of the Points and Total points rows.
    total_ticks : ticks of the Total points axis; by default 0 to the sum of the predictors'
        maximum points, on a "pretty" 1-2-2.5-5 step (as R ``pretty``).
    risk_format : formats a risk tick label.
    guides : faint vertical lines from the Points axis through the predictor rows.
    more_risks : further risk axes drawn below the first, each ``(label, frame)`` with the
        columns of ``total`` (e.g. the risk by another horizon: one axis per horizon, as
        published nomograms show 1-, 3- and 5-year survival); labelled by the same rules.
    wrap : row labels longer than this many characters wrap onto two lines.
    ax : axes to draw into; by default a new page-width figure with fixed margins whose
        height follows the rows.

    Returns
    -------
    matplotlib.axes.Axes
        Value labels are texts with gid ``nomogram-value``.

    Notes
    -----
    The Total points axis is drawn on its own scale, ``x = 100 * total / max(total_ticks)``,
    so that it spans the width of the Points axis; risk ticks sit at the ``x`` of their total
    points.  Label overlap is judged from each label's rendered width at the axes' size; the
    y axis is in inches of the default figure.

    References
    ----------
    Harrell FE. rms: Regression Modeling Strategies, ``nomogram`` and ``plot.nomogram``
    (R/nomogram.s).
    """
    require_columns(points, ("predictor", "value", "points"), what="plot_nomogram (points)")
    require_columns(total, ("total_points", "risk"), what="plot_nomogram (total)")
    if risk_label is None:
        risk_label = str(total["label"].iloc[0]) if "label" in total.columns else T("Risk")
    predictors = list(dict.fromkeys(points["predictor"]))
    names = [points_label, *map(str, predictors), total_label, risk_label, *(str(lab) for lab, _ in more_risks)]
    row_labels = [textwrap.fill(r, wrap) for r in names]
    label_size = FontProperties(size=plt.rcParams["axes.labelsize"]).get_size_in_points()
    tick_size = FontProperties(size=plt.rcParams["xtick.labelsize"]).get_size_in_points()
    line_in = tick_size * _LINE_SPACING / 72

    width = PAGE_WIDTH
    left_in = max(text_width_pt(line, size=label_size) for r in row_labels for line in r.split("\n")) / 72 + 0.18
    ax_width_in = width - left_in - 0.12
    if ax is not None:
        if ax.figure.get_layout_engine() is not None:
            ax.figure.draw_without_rendering()  # settle the axes' size before measuring labels
        ax_width_in = ax.get_position().width * ax.figure.get_figwidth()
    xlim = (-_X_MARGIN, 100 + _X_MARGIN)
    units_per_pt = (xlim[1] - xlim[0]) / (ax_width_in * 72)

    def width_of(s: str) -> float:
        return text_width_pt(s, size=tick_size) * units_per_pt

    gap = 3.0 * units_per_pt

    def row(name: str, xs: Sequence[float], values: Sequence[object], *, categorical: bool = False,
            priority: Sequence[int] | None = None, minor: Sequence[float] = ()) -> _Row:
        ticks = [_Tick(float(x), v if isinstance(v, str) else format_value(v)) for x, v in zip(xs, values)]
        lanes = _place_labels(ticks, width_of, gap, categorical=categorical, priority=priority, bounds=xlim)
        return _Row(name, ticks, lanes, tuple(minor))

    major = np.arange(0, 101, 10, dtype=float)
    rows = [row(points_label, major, list(major), minor=np.arange(5, 100, 10, dtype=float))]
    for pred in predictors:
        part = points[points["predictor"] == pred]
        vals = list(part["value"])
        rows.append(row(str(pred), part["points"].to_numpy(float), vals, categorical=any(isinstance(v, str) for v in vals)))
    if total_ticks is None:
        sum_max = float(points.groupby("predictor", sort=False)["points"].max().sum())
        reach = max(sum_max, float(total["total_points"].max()))
        total_ticks = [t for t in MaxNLocator(nbins=10, steps=[1, 2, 2.5, 5, 10]).tick_values(0.0, reach) if t >= 0]
        total_ticks = [t for t in total_ticks if t <= reach or t == min(u for u in total_ticks if u >= reach)]
    total_ticks = [float(t) for t in total_ticks]
    scale = 100.0 / max(total_ticks)
    rows.append(row(total_label, [t * scale for t in total_ticks], total_ticks))
    rank = {r: i for i, r in enumerate(_RISK_PRIORITY)}
    first_risk = len(rows)
    for label, frame in ((risk_label, total), *more_risks):
        risk = frame.sort_values("total_points").reset_index(drop=True)
        rv = risk["risk"].to_numpy(float)
        order = [0, len(rv) - 1, *sorted(range(1, len(rv) - 1), key=lambda i: (rank.get(round(rv[i], 6), len(rank)), i))]
        rows.append(row(str(label), risk["total_points"].to_numpy(float) * scale, [risk_format(float(v)) for v in rv],
                        priority=list(dict.fromkeys(order))))

    ys, top_in, bottom_in = _row_positions(rows, line_in)
    y_lo, y_hi = ys[-1] - bottom_in - 0.03, top_in + 0.03
    if ax is None:  # one y unit is one inch
        title_in = 0.3 if title else 0.0
        height = (y_hi - y_lo) + title_in + 0.06
        fig = plt.figure(figsize=(width, height))
        ax = fig.add_axes((left_in / width, 0.03 / height, ax_width_in / width, (y_hi - y_lo) / height))
    ax.set_xlim(*xlim)
    ax.set_ylim(y_lo, y_hi)
    for i, (y, r) in enumerate(zip(ys, rows)):
        _draw_row(ax, y, r, size=tick_size, line_in=line_in, bounds=xlim, width_of=width_of, gap=gap,
                  keep_unlabelled=i < first_risk)
    if guides:
        ax.vlines(major, ys[first_risk - 2] - 0.15, ys[0], color="#E0E0E0", linewidth=0.5, zorder=0)
    ax.set_yticks(ys, row_labels)
    ax.tick_params(axis="y", length=0, pad=6, labelsize=label_size)
    ax.set_xticks([])
    for side in ("top", "right", "bottom", "left"):
        ax.spines[side].set_visible(False)
    if title:
        ax.set_title(title, loc="left", pad=8)
    return ax
