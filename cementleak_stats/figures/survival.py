"""Kaplan-Meier curves with a number-at-risk table; scaled Schoenfeld residual panels."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence

import matplotlib as mpl
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.ticker import MaxNLocator
from matplotlib.transforms import offset_copy
from statsmodels.nonparametric.smoothers_lowess import lowess

from ._util import format_p, format_value, require_columns, text_width_pt
from .theme import COLUMN_WIDTH, GREY, OKABE_ITO, PAGE_WIDTH, colours, new_axes, new_panels, ordered_unique, themed


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
    ax: Axes | None = None,
) -> Axes:
    """Kaplan-Meier curves by group, with an optional number-at-risk table under the axis.

    Parameters
    ----------
    frame : step-function values with columns ``time``, ``survival`` and ``group`` (the
        group's label; categorical order is kept); optionally ``ci_low`` / ``ci_high`` (drawn
        as a band) and ``n_censor`` (censoring marks where > 0).  A curve that does not start
        at time 0 is started at (0, 1).
    at_risk : optional table with columns ``time``, ``group``, ``n_at_risk``; drawn as rows
        under the x-axis label, one per group in the group's colour, aligned with the x ticks
        (which default to the table's times).
    failure : draw cumulative incidence ``1 - S(t)`` instead of survival.
    xlabel, ylabel, at_risk_label, legend_title, title : texts (``ylabel`` defaults to
        "Survival probability" or "Cumulative incidence").
    xticks : x tick positions.
    ci : draw the confidence band when the frame has one.
    ax : axes to draw into; a new single-column figure by default.

    Returns
    -------
    matplotlib.axes.Axes
        One step line per group (gid ``km-<group>``); at-risk numbers are texts with gid
        ``km-at-risk``.
    """
    require_columns(frame, ("time", "survival", "group"), what="plot_km")
    groups = ordered_unique(frame["group"])
    n_table = len(groups) + 1 if at_risk is not None else 0
    ax = new_axes(ax, size=(COLUMN_WIDTH, COLUMN_WIDTH * 0.78 + 0.17 * n_table))
    has_ci = ci and {"ci_low", "ci_high"} <= set(frame.columns)
    palette = dict(zip(groups, colours(len(groups))))
    for g in groups:
        part = _group_curve(frame[frame["group"] == g], failure)
        t = part["time"].to_numpy(float)
        s = part["survival"].to_numpy(float)
        ax.step(t, s, where="post", color=palette[g], linewidth=1.5, label=str(g), gid=f"km-{g}")
        if has_ci:
            ax.fill_between(t, part["ci_low"], part["ci_high"], step="post", color=palette[g], alpha=0.15, linewidth=0)
        if "n_censor" in part.columns:
            cens = part["n_censor"].fillna(0).to_numpy(float) > 0
            ax.plot(t[cens], s[cens], "|", color=palette[g], markersize=5, markeredgewidth=1.0)
    if failure:  # cumulative incidence: up to the highest curve (or CI), not to 1
        top_value = float(np.nanmax(frame["survival"].rsub(1).to_numpy(float)))
        if has_ci:
            top_value = max(top_value, float(np.nanmax(frame["ci_low"].rsub(1).to_numpy(float))))
        ax.set_ylim(0.0, min(1.02, np.ceil(top_value * 1.05 * 10) / 10 + 0.02))
    else:
        ax.set_ylim(0.0, 1.02)
    if xticks is None and at_risk is not None:
        xticks = sorted(at_risk["time"].unique())
    if xticks is not None:
        ax.set_xticks(list(xticks), [format_value(float(x)) for x in xticks])
    else:
        ax.xaxis.set_major_locator(MaxNLocator(nbins=6, steps=[1, 2, 3, 5, 6, 10]))
    ax.set_xlim(0.0, max([float(frame["time"].max()), *(xticks if xticks is not None else [])]))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(textwrap.fill(ylabel or ("Cumulative incidence" if failure else "Survival probability"), 32))
    ax.legend(title=legend_title, loc="upper left" if failure else "lower left")
    if at_risk is not None:
        _at_risk_table(ax, at_risk, groups, palette, at_risk_label)
    if title:
        ax.set_title(title, loc="left")
    return ax


def _at_risk_table(ax: Axes, at_risk: pd.DataFrame, groups: list, palette: dict, header: str) -> None:
    """Rows of at-risk counts below the x-axis label (x in data units, y in points)."""
    require_columns(at_risk, ("time", "group", "n_at_risk"), what="plot_km (at_risk)")
    rc = mpl.rcParams
    size = _size_pt("xtick.labelsize")
    line = 1.45 * size
    # Below: tick, pad, tick labels, label pad, x label, then a gap.
    top = rc["xtick.major.size"] + rc["xtick.major.pad"] + 1.25 * size + rc["axes.labelpad"] + 1.25 * _size_pt("axes.labelsize") + 6
    fig = ax.figure
    base = ax.get_xaxis_transform()  # x in data, y in axes fraction (0 = the x axis)
    left = ax.transAxes
    widest = max(text_width_pt(str(int(n)), size=size) for n in at_risk["n_at_risk"])
    ax.text(0, 0, header, transform=offset_copy(left, fig=fig, x=-(widest / 2 + 6), y=-top, units="points"),
            ha="right", va="top", fontsize=size, fontweight="bold", clip_on=False)
    for i, g in enumerate(groups, start=1):
        y = -top - i * line
        ax.text(0, 0, str(g), transform=offset_copy(left, fig=fig, x=-(widest / 2 + 6), y=y, units="points"),
                ha="right", va="top", fontsize=size, color=palette[g], clip_on=False)
        rows = at_risk[at_risk["group"] == g]
        tr = offset_copy(base, fig=fig, y=y, units="points")
        for t, n in zip(rows["time"], rows["n_at_risk"]):
            ax.text(float(t), 0, str(int(n)), transform=tr, ha="center", va="top", fontsize=size,
                    color=palette[g], clip_on=False, gid="km-at-risk")


@themed
def plot_schoenfeld(
    frame: pd.DataFrame,
    tests: pd.DataFrame,
    *,
    xlabel: str = "Time (Kaplan-Meier transformed)",
    ylabel: str = "Scaled Schoenfeld residual",
    frac: float = 2 / 3,
    ncols: int = 3,
    global_term: str = "GLOBAL",
    wrap: int = 34,
) -> Figure:
    """Scaled Schoenfeld residuals against transformed time, one panel per model term.

    Parameters
    ----------
    frame : columns ``term``, ``transformed_time``, ``residual`` (as R ``cox.zph``'s ``x``
        and ``y``) and optionally ``label`` (the panel title; else the term).
    tests : columns ``term`` and ``p_value`` (``cox.zph`` table); the P value goes into the
        panel title; a ``global_term`` row, if present, into the figure title.  An optional
        ``coef`` column draws the fitted (time-constant) coefficient as a dashed line.
    xlabel, ylabel : shared axis labels.
    frac : LOWESS span (statsmodels ``lowess`` ``frac``; 2/3 as R ``lowess``).
    ncols : panels per row.
    global_term : name of the global test row in ``tests``.
    wrap : wrap panel titles longer than this.

    Returns
    -------
    matplotlib.figure.Figure
        Each panel holds the residual points and a LOWESS line with gid ``zph-smooth``.

    Notes
    -----
    Under proportional hazards the smooth is flat (at the coefficient).  R draws a spline
    with a confidence band; a LOWESS smooth (Cleveland 1979, ``statsmodels``) is used here.

    References
    ----------
    Grambsch PM, Therneau TM. Proportional hazards tests and diagnostics based on weighted
    residuals. Biometrika 1994;81:515-26.
    """
    require_columns(frame, ("term", "transformed_time", "residual"), what="plot_schoenfeld")
    require_columns(tests, ("term", "p_value"), what="plot_schoenfeld (tests)")
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
        if len(x) >= 3:
            fit = lowess(y, x, frac=frac, return_sorted=True)
            ax.plot(fit[:, 0], fit[:, 1], color=OKABE_ITO["vermillion"], linewidth=1.6, gid="zph-smooth", zorder=3)
        if term in by_term.index and "coef" in by_term.columns:
            ax.axhline(float(by_term.loc[term, "coef"]), color="black", linestyle="--", linewidth=0.8, zorder=2)
        label = str(part["label"].iloc[0]) if "label" in part.columns else str(term)
        p_text = f"P {_p_phrase(float(by_term.loc[term, 'p_value']))}" if term in by_term.index else ""
        ax.set_title(textwrap.fill(label, wrap) + (f"\n{p_text}" if p_text else ""), fontsize=_size_pt("axes.labelsize"))
    fig.supxlabel(xlabel, fontsize=_size_pt("axes.labelsize"))
    fig.supylabel(ylabel, fontsize=_size_pt("axes.labelsize"))
    if global_term in by_term.index:
        fig.suptitle(f"Global test: P {_p_phrase(float(by_term.loc[global_term, 'p_value']))}", fontsize=_size_pt("axes.titlesize"))
    return fig


def _p_phrase(p: float) -> str:
    text = format_p(p)
    return f"< {text[1:]}" if text.startswith("<") else f"= {text}"
