"""Small helpers shared by the figure modules: input checks and text measures (numbers are :mod:`..formatting`'s)."""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd


def require_columns(frame: pd.DataFrame, columns: Iterable[str], *, what: str) -> None:
    """Raise ``ValueError`` naming the missing columns of ``frame`` (an input of ``what``)."""
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"{what} expects a pandas DataFrame, got {type(frame).__name__}")
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{what}: the frame lacks column(s) {missing}; it has {list(frame.columns)}")
    if frame.empty:
        raise ValueError(f"{what}: the frame has no rows")


def finish_axes(ax, *, xlabel: str | None = None, ylabel: str | None = None, legend: dict | None = None,
                title: str | None = None):
    """The figures' common last steps: axis labels (those given), a legend (``legend``: its
    keyword arguments; None draws none) and the title at the left; returns ``ax``."""
    if xlabel is not None:
        ax.set_xlabel(xlabel)
    if ylabel is not None:
        ax.set_ylabel(ylabel)
    if legend is not None:
        ax.legend(**legend)
    if title:
        ax.set_title(title, loc="left")
    return ax


def text_width_pt(text: str, *, size: float, weight: str = "normal") -> float:
    """Advance width of ``text`` in points with the current sans-serif font.

    Measured from the font itself, so it needs no renderer and works before drawing.
    """
    from matplotlib.font_manager import FontProperties
    from matplotlib.textpath import TextToPath

    if not text:
        return 0.0
    prop = FontProperties(family="sans-serif", size=size, weight=weight)
    if any(ord(c) >= 0x2E80 for c in text):  # CJK: measured as Agg draws it, with the fallback fonts
        import matplotlib as mpl
        from matplotlib.font_manager import fontManager, get_font

        prop = FontProperties(family=mpl.rcParams["font.family"], size=size, weight=weight)
        font = get_font(fontManager._find_fonts_by_props(prop))
        font.set_size(size, 72)
        font.set_text(text, 0.0)
        return float(font.get_width_height()[0]) / 64.0
    return float(TextToPath().get_text_width_height_descent(text, prop, ismath=False)[0])


def wrap_to_width(text: str, width_pt: float, *, size: float, weight: str = "normal") -> str:
    """``text`` broken at spaces into lines no wider than ``width_pt`` at ``size`` points
    (a single word wider than that keeps a line of its own)."""
    lines: list[str] = []
    if any(ord(c) >= 0x2E80 for c in text):  # Chinese has no spaces: any character may start a line
        return _wrap_cjk(text, width_pt, size=size, weight=weight)
    for word in text.split():
        if lines and text_width_pt(f"{lines[-1]} {word}", size=size, weight=weight) <= width_pt:
            lines[-1] = f"{lines[-1]} {word}"
        else:
            lines.append(word)
    return "\n".join(lines)


def _wrap_cjk(text: str, width_pt: float, *, size: float, weight: str) -> str:
    """``text`` with Chinese characters broken into lines no wider than ``width_pt`` (words of
    Latin letters or digits and closing punctuation stay with what precedes them)."""
    import re

    tokens = re.findall(r"[A-Za-z0-9.\-−%/²]+|\s+|.", text)
    lines = [""]
    for tok in tokens:
        candidate = lines[-1] + tok
        closing = tok in "，。；：、）】》”％" or tok.isspace()
        if lines[-1] and not closing and text_width_pt(candidate.strip(), size=size, weight=weight) > width_pt:
            opening = re.search(r"[（【《“]+$", lines[-1])  # an opening mark goes with what it opens
            lines[-1], carried = (lines[-1][:opening.start()], opening.group(0)) if opening else (lines[-1], "")
            lines.append(carried + tok.lstrip())
        else:
            lines[-1] = candidate
    return "\n".join(line.strip() for line in lines if line.strip())
