"""One theme for every figure: journal sizes, sans-serif fonts, the Okabe-Ito palette.

The theme is a set of matplotlib rcParams applied only inside the context manager
:func:`figure_theme`; nothing here mutates the global rcParams.  Every ``plot_*`` function of
:mod:`cementleak_stats.figures` draws inside the theme unless the caller already entered one
(then the caller's settings win, e.g. ``with figure_theme(base_size=9): plot_km(...)``).

Sizes follow the usual journal grid: a single column is 85 mm wide, a full page 170 mm.  At
those widths the theme's 8 pt text is printed at 8 pt, inside the 6-9 pt most journals ask for.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator, Sequence
from contextvars import ContextVar
from typing import Any, ParamSpec, TypeVar

import matplotlib as mpl
import matplotlib.pyplot as plt
from matplotlib import cycler
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from ..i18n import is_cjk

#: Okabe & Ito (2008) colour-blind safe palette, by name.
OKABE_ITO: dict[str, str] = {
    "black": "#000000",
    "orange": "#E69F00",
    "sky_blue": "#56B4E9",
    "bluish_green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "reddish_purple": "#CC79A7",
}

#: Order in which groups, models and measures get colours (yellow last: weak on white).
PALETTE: tuple[str, ...] = tuple(
    OKABE_ITO[k] for k in ("blue", "vermillion", "bluish_green", "orange", "reddish_purple", "sky_blue", "black", "yellow")
)

#: Individual trajectories, rugs, reference lines.
GREY = "#8C8C8C"
LIGHT_GREY = "#C8C8C8"

MM_PER_INCH = 25.4
#: Journal single-column and full-page widths, in inches (85 mm and 170 mm).
COLUMN_WIDTH = 85.0 / MM_PER_INCH
PAGE_WIDTH = 170.0 / MM_PER_INCH

#: Salt for SVG element ids: the same figure gives the same bytes in every run.
SVG_HASHSALT = "cementleak"

_ACTIVE: ContextVar[int] = ContextVar("cementleak_figure_theme_depth", default=0)


def theme_rc(*, font: str = "DejaVu Sans", base_size: float = 8.0) -> dict[str, Any]:
    """The rcParams of the house theme (a plain dict; nothing is applied).

    Parameters
    ----------
    font : preferred sans-serif family; DejaVu Sans (shipped with matplotlib, so always
        available offline) is the fallback.
    base_size : body text size in points at print size; tick labels and legends are 0.9x,
        titles 1.1x.
    """
    small = round(base_size * 0.9, 2)
    fallback = []
    if is_cjk():  # a figure of a Chinese report: Chinese characters from the CJK font, glyph by glyph
        from ..fonts import matplotlib_cjk_family

        fallback = [matplotlib_cjk_family()]
    return {
        # a list of families, not the generic "sans-serif": matplotlib falls back along the list only
        "font.family": [font, "DejaVu Sans", *fallback] if fallback else "sans-serif",
        "font.sans-serif": list(dict.fromkeys([font, "DejaVu Sans", *fallback])),
        "font.size": base_size,
        "axes.titlesize": round(base_size * 1.1, 2),
        "axes.titleweight": "normal",
        "axes.titlepad": 4.0,
        "axes.labelsize": base_size,
        "axes.labelpad": 3.0,
        "xtick.labelsize": small,
        "ytick.labelsize": small,
        "legend.fontsize": small,
        "legend.title_fontsize": base_size,
        "legend.frameon": False,
        "legend.handlelength": 1.8,
        "legend.borderaxespad": 0.3,
        "figure.titlesize": round(base_size * 1.2, 2),
        "axes.spines.top": False,
        "axes.spines.right": False,
        "axes.linewidth": 0.8,
        "axes.edgecolor": "black",
        "axes.grid": False,
        "axes.prop_cycle": cycler(color=list(PALETTE)),
        "axes.unicode_minus": True,
        "xtick.major.width": 0.8,
        "ytick.major.width": 0.8,
        "xtick.minor.width": 0.6,
        "ytick.minor.width": 0.6,
        "xtick.major.size": 3.0,
        "ytick.major.size": 3.0,
        "xtick.minor.size": 1.8,
        "ytick.minor.size": 1.8,
        "xtick.major.pad": 2.5,
        "ytick.major.pad": 2.5,
        "lines.linewidth": 1.4,
        "lines.markersize": 4.5,
        "patch.linewidth": 0.6,
        "errorbar.capsize": 0,
        "mathtext.default": "regular",
        "figure.dpi": 150,
        "figure.facecolor": "white",
        "figure.constrained_layout.h_pad": 0.03,
        "figure.constrained_layout.w_pad": 0.03,
        "savefig.dpi": 300,
        "savefig.facecolor": "white",
        "savefig.bbox": "tight",
        "savefig.pad_inches": 0.03,
        "pdf.fonttype": 42,  # TrueType in PDF (journals reject Type 3 fonts)
        "ps.fonttype": 42,
        "svg.fonttype": "path",  # the SVG looks the same without the font installed
        "svg.hashsalt": SVG_HASHSALT,
    }


@contextlib.contextmanager
def figure_theme(*, font: str = "DejaVu Sans", base_size: float = 8.0) -> Iterator[dict[str, Any]]:
    """Apply the house theme inside a ``with`` block; rcParams are restored on exit.

    Examples
    --------
    >>> with figure_theme(base_size=9):
    ...     ax = plot_forest(frame)            # doctest: +SKIP
    """
    rc = theme_rc(font=font, base_size=base_size)
    token = _ACTIVE.set(_ACTIVE.get() + 1)
    try:
        with mpl.rc_context(rc):
            yield rc
    finally:
        _ACTIVE.reset(token)


P = ParamSpec("P")
R = TypeVar("R")


def themed(func: Callable[P, R]) -> Callable[P, R]:
    """Draw ``func`` inside :func:`figure_theme` unless a theme is already active."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        if _ACTIVE.get():
            return func(*args, **kwargs)
        with figure_theme():
            return func(*args, **kwargs)

    return wrapper


def new_axes(ax: Axes | None, *, size: tuple[float, float]) -> Axes:
    """``ax`` itself, or the axes of a new constrained-layout figure of ``size`` inches."""
    if ax is not None:
        return ax
    _, new = plt.subplots(figsize=size, layout="constrained")
    return new


def new_panels(n: int, *, ncols: int, panel_size: tuple[float, float], **kwargs: Any) -> tuple[Figure, list[Axes]]:
    """A constrained-layout figure with ``n`` panels on a grid of ``ncols`` columns.

    Unused grid cells are removed.  ``panel_size`` is (width, height) of one cell in inches.
    """
    ncols = max(1, min(ncols, n))
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(panel_size[0] * ncols, panel_size[1] * nrows), layout="constrained", squeeze=False, **kwargs
    )
    flat = list(axes.ravel())
    for i, extra in enumerate(flat[n:], start=n):
        above = axes[i // ncols - 1, i % ncols] if i >= ncols else None
        if above is not None:  # shared x: the panel above the empty cell keeps its tick labels
            above.xaxis.set_tick_params(labelbottom=True)
        extra.remove()
    return fig, flat[:n]


def panel_letter(ax: Axes, index: int) -> None:
    """Bold panel letter (A, B, ...) above the top left corner of the axes."""
    ax.set_title(chr(ord("A") + index), loc="left", fontweight="bold")


def colours(n: int) -> list[str]:
    """``n`` colours of :data:`PALETTE`, repeating if there are more than eight groups."""
    return [PALETTE[i % len(PALETTE)] for i in range(n)]


def ordered_unique(values: Sequence[Any]) -> list[Any]:
    """Distinct values in categorical order if categorical, else in order of appearance."""
    cat = getattr(values, "cat", None)
    if cat is not None:
        present = set(values.dropna())
        return [c for c in cat.categories if c in present]
    return list(dict.fromkeys(v for v in values if v == v))  # drops NaN
