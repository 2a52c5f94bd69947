"""Forest plot of hazard ratios, laid out like a journal table-figure."""

from __future__ import annotations

import math
import textwrap
from typing import Literal

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator
from matplotlib.transforms import offset_copy

from ..formatting import format_p
from ._util import require_columns, text_width_pt
from .theme import GREY, PAGE_WIDTH, colours, new_axes, ordered_unique, themed

_REQUIRED = ("label", "hr", "ci_low", "ci_high", "p_value")
_TICK_CANDIDATES = np.array([m * 10.0**e for e in range(-3, 4) for m in (1, 2, 5)])


def _log_ticks(lo: float, hi: float) -> list[float]:
    """1-2-5 ticks inside [lo, hi]; beyond nine of them, decades plus the two ends."""
    ticks = [float(t) for t in _TICK_CANDIDATES if lo * (1 - 1e-9) <= t <= hi * (1 + 1e-9)]
    if len(ticks) > 9:
        ends = {ticks[0], ticks[-1]}
        ticks = [t for t in ticks if t in ends or math.isclose(math.log10(t), round(math.log10(t)))]
    return ticks


def _wrap(label: str, width: int) -> str:
    """Wrap a row label, keeping its leading indent on the first line."""
    indent = label[: len(label) - len(label.lstrip())]
    return indent + textwrap.fill(label.strip(), width, break_long_words=False) if len(label) > width else label


def _hr_text(hr: float, lo: float, hi: float, digits: int, reference: str) -> str:
    if not np.isfinite(hr):
        return reference
    def f(x: float) -> str:
        return "∞" if np.isposinf(x) else ("NA" if not np.isfinite(x) else f"{x:.{digits}f}")
    return f"{f(hr)} ({f(lo)}–{f(hi)})"


@themed
def plot_forest(
    frame: pd.DataFrame,
    *,
    ax: Axes | None = None,
    xlabel: str = "Hazard ratio (95% CI)",
    hr_header: str = "HR (95% CI)",
    p_header: str = "P",
    reference_text: str = "Reference",
    digits: int = 2,
    xlim: tuple[float, float] | None = None,
    show_p: bool = True,
    label_align: Literal["left", "right"] = "left",
    title: str | None = None,
    fontsize: float = 9.0,
    wrap: int = 44,
) -> Axes:
    """Forest plot: one row per term, HR with its CI on a log axis, text columns at the right.

    Parameters
    ----------
    frame : one row per term with columns ``label``, ``hr``, ``ci_low``, ``ci_high``,
        ``p_value`` and optionally ``group`` (e.g. "Univariable" / "Multivariable"; rows are
        then shown in one section per group, under a bold heading, in group order).  A row
        with a missing ``hr`` is drawn as a reference row (text only).
    ax : axes to draw into; a new page-width figure by default.
    xlabel, hr_header, p_header, reference_text : texts (defaults are generic).
    digits : decimals of the HR and its limits.
    xlim : HR axis limits; by default the CIs with a margin, always including 1.  CIs that
        reach beyond it (or are infinite, e.g. under separation) end in an arrow.
    show_p : draw the P column.
    label_align : row labels flush left, as in a table (leading spaces indent a level under
        its variable), or flush right against the plot.
    title : axes title.
    fontsize : size in points of every text of the figure (9 pt by default: the forest plot
        is read like a table, at its printed width).
    wrap : row labels longer than this many characters wrap onto further lines (the row is
        made taller).

    Returns
    -------
    matplotlib.axes.Axes
        The CI lines of each section are one ``LineCollection`` with gid ``forest-ci``.
    """
    require_columns(frame, _REQUIRED, what="plot_forest")
    df = frame.reset_index(drop=True)
    has_group = "group" in df.columns
    sections = ordered_unique(df["group"]) if has_group else [None]
    labels = [_wrap(str(lab), wrap) for lab in df["label"]]
    lines = [lab.count("\n") + 1 for lab in labels]
    # rows top to bottom; a row of k label lines is 1 + 0.7 (k - 1) units high
    heights = ([1.0] * len(sections) if has_group else []) + [1.0 + 0.7 * (k - 1) for k in lines]
    n_rows = sum(heights)
    ax = new_axes(ax, size=(PAGE_WIDTH, 0.8 + 0.24 * n_rows * fontsize / 9.0))
    fig = ax.figure

    # Rows top to bottom: y = n_rows - 1 ... 0; one header row above for the column titles.
    lo_all = df["ci_low"].to_numpy(float)
    hi_all = df["ci_high"].to_numpy(float)
    hr_all = df["hr"].to_numpy(float)
    finite = np.concatenate(
        [v[np.isfinite(v) & (v > 0)] for v in (lo_all, hi_all, hr_all)] + [np.array([1.0])]
    )
    if xlim is None:  # the axis ends on 1-2-5 ticks around the CIs
        lo_t = _TICK_CANDIDATES[_TICK_CANDIDATES <= finite.min() / 1.05]
        hi_t = _TICK_CANDIDATES[_TICK_CANDIDATES >= finite.max() * 1.05]
        xlim = (
            float(lo_t.max()) if lo_t.size else float(finite.min()) / 1.25,
            float(hi_t.min()) if hi_t.size else float(finite.max()) * 1.25,
        )
    ax.set_xscale("log")
    ax.set_xlim(*xlim)

    text_size = fontsize
    y = n_rows - 0.5
    tick_pos: list[float] = []
    tick_lab: list[str] = []
    bold_ticks: set[int] = set()
    texts: list[tuple[float, str, str]] = []
    for colour, section in zip(colours(len(sections)), sections):
        rows = df if section is None else df[df["group"] == section]
        if section is not None:
            bold_ticks.add(len(tick_pos))
            tick_pos.append(y - 0.5)
            tick_lab.append(str(section))
            y -= 1
        row_h = np.array([1.0 + 0.7 * (lines[i] - 1) for i in rows.index])
        ys = y - np.cumsum(row_h) + row_h / 2
        y -= float(row_h.sum())
        hr = rows["hr"].to_numpy(float)
        lo = rows["ci_low"].to_numpy(float)
        hi = rows["ci_high"].to_numpy(float)
        drawn = np.isfinite(hr)
        lo_c = np.clip(np.where(np.isfinite(lo) & (lo > 0), lo, xlim[0]), *xlim)
        hi_c = np.clip(np.where(np.isfinite(hi), hi, xlim[1]), *xlim)
        ci = ax.hlines(ys[drawn], lo_c[drawn], hi_c[drawn], color=colour, linewidth=1.1)
        ci.set_gid("forest-ci")
        ax.plot(hr[drawn], ys[drawn], "s", color=colour, markersize=4.5, zorder=3)
        left_cut = drawn & ~(np.isfinite(lo) & (lo > xlim[0]))
        right_cut = drawn & ~(np.isfinite(hi) & (hi < xlim[1]))
        for cut, edge, marker in ((left_cut, xlim[0], "<"), (right_cut, xlim[1], ">")):
            if cut.any():  # an empty unclipped line would stretch the tight bbox to (0, 0)
                ax.plot(np.full(cut.sum(), edge), ys[cut], marker, color=colour, markersize=4, clip_on=False)
        for yy, i, h, l_, u, p in zip(ys, rows.index, hr, lo, hi, rows["p_value"]):
            tick_pos.append(yy)
            tick_lab.append(labels[i])
            texts.append((yy, _hr_text(h, l_, u, digits, reference_text), format_p(p) if np.isfinite(h) else ""))

    ax.axvline(1.0, color=GREY, linestyle="--", linewidth=0.8, zorder=0)
    ax.set_ylim(-0.2, n_rows + 1)
    ax.yaxis.set_major_locator(FixedLocator(tick_pos))
    ax.set_yticklabels(tick_lab)
    for i, tl in enumerate(ax.get_yticklabels()):
        if i in bold_ticks:
            tl.set_fontweight("bold")
    if label_align == "left":  # flush left: pad each label by the widest one
        widest = max(
            text_width_pt(line, size=text_size, weight="bold" if i in bold_ticks else "normal")
            for i, lab in enumerate(tick_lab) for line in lab.split("\n")
        )
        ax.tick_params(axis="y", length=0, pad=widest + 8, labelsize=text_size)
        for tl in ax.get_yticklabels():
            tl.set_horizontalalignment("left")
            tl.set_multialignment("left")
    else:
        ax.tick_params(axis="y", length=0, pad=4, labelsize=text_size)
    ax.tick_params(axis="x", labelsize=text_size)

    ax.spines["left"].set_visible(False)
    ax.xaxis.set_major_locator(FixedLocator(_log_ticks(*xlim)))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.set_xlabel(xlabel, fontsize=text_size)
    if title:
        ax.set_title(title, loc="left")

    # Text columns just right of the axes (x in axes coordinates, y in data, offset in points).
    hr_width = max(text_width_pt(t[1], size=text_size) for t in texts)
    hr_width = max(hr_width, text_width_pt(hr_header, size=text_size, weight="bold"))
    base = ax.get_yaxis_transform()
    hr_tr = offset_copy(base, fig=fig, x=10, units="points")
    p_tr = offset_copy(base, fig=fig, x=10 + hr_width + 12, units="points")
    header_y = n_rows + 0.4
    ax.text(1.0, header_y, hr_header, transform=hr_tr, ha="left", va="center", fontweight="bold", fontsize=text_size, clip_on=False)
    if show_p:
        ax.text(1.0, header_y, p_header, transform=p_tr, ha="left", va="center", fontweight="bold", fontsize=text_size, fontstyle="italic", clip_on=False)
    for yy, hr_s, p_s in texts:
        ax.text(1.0, yy, hr_s, transform=hr_tr, ha="left", va="center", fontsize=text_size, clip_on=False)
        if show_p and p_s:
            ax.text(1.0, yy, p_s, transform=p_tr, ha="left", va="center", fontsize=text_size, clip_on=False)
    return ax
