"""Kaplan-Meier curves with a number-at-risk table; scaled Schoenfeld residual panels."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.ticker import MaxNLocator

from ..i18n import T
from ..formatting import format_p, format_value
from ._util import require_columns, text_width_pt, wrap_to_width
from .theme import COLUMN_WIDTH, GREY, OKABE_ITO, PAGE_WIDTH, colours, new_panels, ordered_unique, themed


def _size_pt(key: str) -> float:
    return FontProperties(size=mpl.rcParams[key]).get_size_in_points()


def _group_curve(part: pd.DataFrame, failure: bool) -> pd.DataFrame:
    """One group's curve sorted by time, starting at (0, 1), as survival or 1 - survival."""
    part = part.sort_values("time", kind="stable")
    if part["time"].iloc[0] > 0:
        start = {c: 1.0 for c in ("survival", "ci_low", "ci_high") if c in part.columns}
        part = pd.concat([pd.DataFrame([{"time": 0.0, **start}]), part], ignore_index=True)
    if failure:
        part = part.assign(survival=1.0 - part["survival"])
        if {"ci_low", "ci_high"} <= set(part.columns):
            part = part.assign(ci_low=1.0 - part["ci_high"], ci_high=1.0 - part["ci_low"])
    return part


@themed
def plot_km(
    frame: pd.DataFrame,
    *,
    at_risk: pd.DataFrame | None = None,
    failure: bool = False,
    xlabel: str = "Time",
    ylabel: str | None = None,
    at_risk_label: str = "Number at risk",
    legend_title: str | None = None,
    xticks: Sequence[float] | None = None,
    ci: bool = True,
    title: str | None = None,
    width: float = PAGE_WIDTH,
    ax: Axes | None = None,
) -> Axes:
    """Kaplan-Meier curves by group, with an optional number-at-risk table under the axis.

    Parameters
    ----------
    frame : step-function values with columns ``time``, ``survival`` and ``group`` (the
        group's label; categorical order is kept); optionally ``ci_low`` / ``ci_high`` (drawn
        as a band) and ``n_censor`` (censoring marks where > 0).  A curve that does not start
        at time 0 is started at (0, 1).
    at_risk : optional table with columns ``time``, ``group``, ``n_at_risk``; drawn in its
        own axes under the plot (sharing its x axis), one row per group labelled and coloured
        as the group, aligned with the x ticks (which default to the table's times).
    failure : draw cumulative incidence ``1 - S(t)`` instead of survival.
    xlabel, ylabel, at_risk_label, legend_title, title : texts (``ylabel`` defaults to
        "Survival probability" or "Cumulative incidence").
    xticks : x tick positions.
    ci : draw the confidence band when the frame has one.
    width : width in inches of a new figure (page width by default); the legend stands to
        the right of the plot, off the curves.
    ax : axes to draw into; a new figure by default.

    Returns
    -------
    matplotlib.axes.Axes
        One step line per group (gid ``km-<group>``); at-risk numbers are texts with gid
        ``km-at-risk`` in the table's axes (``ax.child_axes[0]`` when ``ax`` was given).
    """
    require_columns(frame, ("time", "survival", "group"), what="plot_km")
    groups = ordered_unique(frame["group"])
    table_ax = None
    if ax is None:
        plot_h = min(width * 0.5, 3.4)
        table_h = 0.2 * (len(groups) + 1) + 0.15 if at_risk is not None else 0.0
        fig = plt.figure(figsize=(width, plot_h + table_h), layout="constrained")
        if at_risk is not None:
            ax, table_ax = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [plot_h, table_h]})
        else:
            ax = fig.subplots()
    elif at_risk is not None:
        table_ax = ax.inset_axes((0.0, -0.2 - 0.09 * (len(groups) + 1), 1.0, 0.09 * (len(groups) + 1)), sharex=ax)
    has_ci = ci and {"ci_low", "ci_high"} <= set(frame.columns)
    palette = dict(zip(groups, colours(len(groups))))
    xmax = max(float(x) for x in xticks) if xticks is not None and len(xticks) else None
    top_value = 0.0
    for g in groups:
        part = _group_curve(frame[frame["group"] == g], failure)
        if xmax is not None and part["time"].max() > xmax:  # end the curve at the axis end
            part = part[part["time"] <= xmax]
            part = pd.concat([part, part.tail(1).assign(time=xmax, **({"n_censor": 0} if "n_censor" in part else {}))],
                             ignore_index=True)
        t = part["time"].to_numpy(float)
        s = part["survival"].to_numpy(float)
        top_value = max(top_value, float(np.nanmax(s)), float(np.nanmax(part["ci_high"])) if has_ci else 0.0)
        ax.step(t, s, where="post", color=palette[g], linewidth=1.5, label=str(g), gid=f"km-{g}")
        if has_ci:
            ax.fill_between(t, part["ci_low"], part["ci_high"], step="post", color=palette[g], alpha=0.15, linewidth=0)
        if "n_censor" in part.columns:
            cens = part["n_censor"].fillna(0).to_numpy(float) > 0
            ax.plot(t[cens], s[cens], "|", color=palette[g], markersize=5, markeredgewidth=1.0)
    if failure:  # cumulative incidence: up to the highest curve (or CI) drawn, not to 1
        ax.set_ylim(0.0, min(1.02, np.ceil(top_value * 1.05 * 10) / 10 + 0.02))
    else:
        ax.set_ylim(0.0, 1.02)
    if xticks is None and at_risk is not None:
        xticks = sorted(at_risk["time"].unique())
    if xticks is not None:
        ax.set_xticks(list(xticks), [format_value(float(x)) for x in xticks])
    else:
        ax.xaxis.set_major_locator(MaxNLocator(nbins=6, steps=[1, 2, 3, 5, 6, 10]))
    ax.set_xlim(0.0, xmax if xmax is not None else float(frame["time"].max()))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(textwrap.fill(ylabel or ("Cumulative incidence" if failure else "Survival probability"), 40))
    ax.legend(title=legend_title, loc="lower left", bbox_to_anchor=(0.0, 1.02), ncol=min(3, len(groups)),
              borderaxespad=0.0, alignment="left")
    if table_ax is not None:
        ax.xaxis.set_tick_params(labelbottom=True)  # sharing x with the table hid them
        _at_risk_table(table_ax, at_risk, groups, palette, at_risk_label)
    if title:
        ax.set_title(title, loc="left")
    return ax


def _at_risk_table(ax: Axes, at_risk: pd.DataFrame, groups: list, palette: dict, header: str) -> None:
    """Rows of at-risk counts in their own axes: one row per group, its label as y tick label."""
    require_columns(at_risk, ("time", "group", "n_at_risk"), what="plot_km (at_risk)")
    size = _size_pt("axes.labelsize")
    ax.set_ylim(len(groups) - 0.5, -0.5)
    ax.set_yticks(range(len(groups)), [str(g) for g in groups])
    for label, g in zip(ax.get_yticklabels(), groups):
        label.set_color(palette[g])
    widest = max(text_width_pt(str(int(n)), size=size) for n in at_risk["n_at_risk"])  # a count is centred on x = 0
    ax.tick_params(axis="y", length=0, labelsize=size, pad=widest / 2 + 6)
    ax.tick_params(axis="x", length=0, labelbottom=False)
    for side in ("top", "right", "bottom", "left"):
        ax.spines[side].set_visible(False)
    ax.set_title(header, loc="left", fontsize=size, fontweight="bold", pad=3)
    for i, g in enumerate(groups):
        rows = at_risk[at_risk["group"] == g]
        for t, n in zip(rows["time"], rows["n_at_risk"]):
            ax.text(float(t), i, str(int(n)), ha="center", va="center", fontsize=size, color=palette[g],
                    clip_on=False, gid="km-at-risk")


@themed
def plot_schoenfeld(
    frame: pd.DataFrame,
    tests: pd.DataFrame,
    *,
    smooth: pd.DataFrame | None = None,
    xlabel: str = "Time (axis spaced on the Kaplan-Meier scale)",
    ylabel: str = "Scaled Schoenfeld residual",
    ncols: int = 3,
    global_term: str = "GLOBAL",
    wrap: int = 34,
) -> Figure:
    """Scaled Schoenfeld residuals against transformed time, one panel per model term.

    Parameters
    ----------
    frame : columns ``term``, ``transformed_time``, ``residual`` (as R ``cox.zph``'s ``x``
        and ``y``) and optionally ``time`` (``cox.zph``'s ``time``: the x ticks are then
        labelled in time at their transformed positions, as R ``plot.cox.zph``) and ``label``
        (the panel title; else the term).
    tests : columns ``term`` and ``p_value`` (``cox.zph`` table); the P value goes into the
        panel title; a ``global_term`` row, if present, into the figure title.  An optional
        ``coef`` column draws the fitted (time-constant) coefficient as a dashed line.
    smooth : the smooth of each term's residuals, columns ``term``, ``transformed_time``,
        ``smooth`` (:func:`cementleak_stats.models.ph.schoenfeld_smooth`, computed with the
        test); drawn as a line when given.
    xlabel, ylabel : shared axis labels.
    ncols : panels per row.
    global_term : name of the global test row in ``tests``.
    wrap : wrap panel titles longer than about this many characters (and always to the panel's width).

    Returns
    -------
    matplotlib.figure.Figure
        Each panel holds the residual points and, with ``smooth``, a line with gid ``zph-smooth``.

    Notes
    -----
    Under proportional hazards the smooth is flat (at the coefficient).  R draws a spline
    with a confidence band; the results carry a LOWESS smooth (R ``lowess``).

    References
    ----------
    Grambsch PM, Therneau TM. Proportional hazards tests and diagnostics based on weighted
    residuals. Biometrika 1994;81:515-26.
    """
    require_columns(frame, ("term", "transformed_time", "residual"), what="plot_schoenfeld")
    time_ticks = _time_ticks(frame) if "time" in frame.columns else None
    require_columns(tests, ("term", "p_value"), what="plot_schoenfeld (tests)")
    if smooth is not None:
        require_columns(smooth, ("term", "transformed_time", "smooth"), what="plot_schoenfeld (smooth)")
    terms = ordered_unique(frame["term"])
    by_term = tests.set_index("term")
    ncols = max(1, min(ncols, len(terms)))
    width = PAGE_WIDTH / ncols if ncols > 1 else COLUMN_WIDTH
    fig, axes = new_panels(len(terms), ncols=ncols, panel_size=(width, width * 0.82), sharex=True)
    for ax, term in zip(axes, terms):
        part = frame[frame["term"] == term]
        x = part["transformed_time"].to_numpy(float)
        y = part["residual"].to_numpy(float)
        ax.scatter(x, y, s=7, color=GREY, alpha=0.7, linewidths=0, zorder=1)
        line = smooth[smooth["term"] == term] if smooth is not None else None
        if line is not None and len(line):
            ax.plot(line["transformed_time"], line["smooth"], color=OKABE_ITO["vermillion"], linewidth=1.6,
                    gid="zph-smooth", zorder=3)
        if term in by_term.index and "coef" in by_term.columns:
            ax.axhline(float(by_term.loc[term, "coef"]), color="black", linestyle="--", linewidth=0.8, zorder=2)
        label = str(part["label"].iloc[0]) if "label" in part.columns else str(term)
        p_text = f"P {_p_phrase(float(by_term.loc[term, 'p_value']))}" if term in by_term.index else ""
        title_width = min(wrap * 0.55 * _size_pt("axes.labelsize"), (width - 0.5) * 72)  # the cell less the y tick labels
        ax.set_title(wrap_to_width(label, title_width, size=_size_pt("axes.labelsize")) + (f"\n{p_text}" if p_text else ""),
                     fontsize=_size_pt("axes.labelsize"))
        if time_ticks is not None:
            ax.set_xticks(time_ticks[0], time_ticks[1])
    fig.supxlabel(xlabel, fontsize=_size_pt("axes.labelsize"))
    fig.supylabel(ylabel, fontsize=_size_pt("axes.labelsize"))
    if global_term in by_term.index:
        fig.suptitle(T("Global test: P {p}", p=_p_phrase(float(by_term.loc[global_term, 'p_value']))), fontsize=_size_pt("axes.titlesize"))
    return fig


def _time_ticks(frame: pd.DataFrame, n: int = 5) -> tuple[list[float], list[str]]:
    """Tick positions on the transformed scale, labelled in time, as R ``plot.cox.zph``.

    R takes 8 points evenly spaced over the transformed range (the even entries of
    ``seq(min, max, length = 17)``), finds their times, rounds them to 2 significant digits
    and puts each rounded time back at its transformed position.  Here ``n`` points (5 fit a
    third of a page) and repeated rounded times are dropped.
    """
    pairs = frame[["transformed_time", "time"]].dropna().drop_duplicates("transformed_time").sort_values("transformed_time")
    x, t = pairs["transformed_time"].to_numpy(float), pairs["time"].to_numpy(float)
    if len(x) < 2 or x[0] == x[-1]:
        return list(x[:1]), [format_value(float(v)) for v in t[:1]]
    at = np.linspace(x[0], x[-1], 2 * n + 1)[1::2]
    times = [float(f"{v:.2g}") for v in np.interp(at, x, t)]
    times = list(dict.fromkeys(times))
    return [float(v) for v in np.interp(times, t, x)], [format_value(v) for v in times]


def _p_phrase(p: float) -> str:
    text = format_p(p)
    return f"< {text[1:]}" if text.startswith("<") else f"= {text}"
