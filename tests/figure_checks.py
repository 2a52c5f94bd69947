"""Checks that a drawn figure reads cleanly (used by test_figures and test_figures_studies).

Each function draws the figure with its own renderer and returns what is wrong (empty when
nothing is): overlapping texts, texts outside the figure, data lines that leave their axes
without a clip mark (an artist with gid ``clip-mark`` on that edge), legends over data lines.
"""

from __future__ import annotations

import numpy as np
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Polygon
from matplotlib.text import Text
from matplotlib.transforms import Bbox

#: overlap (in pixels at the figure's dpi) tolerated between two texts: anti-aliasing only
TOLERANCE_PX = 0.5


def drawn_texts(fig: Figure) -> list[tuple[Text, Bbox]]:
    """(text, window extent) of every non-empty text the renderer actually draws."""
    seen: list[tuple[Text, Bbox]] = []
    original = Text.draw

    def record(self: Text, renderer) -> None:
        original(self, renderer)
        if self.get_visible() and self.get_text().strip():
            seen.append((self, self.get_window_extent(renderer)))

    Text.draw = record  # type: ignore[method-assign]
    try:
        fig.canvas.draw()
    finally:
        Text.draw = original  # type: ignore[method-assign]
    return seen


def text_overlaps(fig: Figure, texts: list[tuple[Text, Bbox]] | None = None) -> list[tuple[str, str]]:
    texts = drawn_texts(fig) if texts is None else texts
    bad = []
    for i, (a, ba) in enumerate(texts):
        for b, bb in texts[i + 1:]:
            dx = min(ba.x1, bb.x1) - max(ba.x0, bb.x0)
            dy = min(ba.y1, bb.y1) - max(ba.y0, bb.y0)
            if dx > TOLERANCE_PX and dy > TOLERANCE_PX:
                bad.append((a.get_text(), b.get_text()))
    return bad


def texts_outside(fig: Figure, texts: list[tuple[Text, Bbox]] | None = None) -> list[str]:
    w, h = fig.canvas.get_width_height()
    return [t.get_text() for t, b in (drawn_texts(fig) if texts is None else texts)
            if b.x0 < -1 or b.y0 < -1 or b.x1 > w + 1 or b.y1 > h + 1]


def _paths(artist) -> list[np.ndarray]:
    """Display coordinates of a line's vertices (one array per polyline)."""
    if isinstance(artist, Line2D):
        xy = artist.get_xydata()
        return [artist.get_transform().transform(np.asarray(xy, float))] if len(xy) else []
    if isinstance(artist, Polygon):  # its outline (e.g. a step-filled histogram)
        return [artist.get_transform().transform(np.asarray(artist.get_xy(), float))]
    tr = artist.get_transform()
    return [tr.transform(np.asarray(seg, float)) for seg in artist.get_segments() if len(seg)]


def _axes(fig: Figure, draw: bool) -> list:
    """The figure's axes, after a draw (window extents are only known then) unless already drawn."""
    if draw:
        fig.canvas.draw()
    return list(fig.axes)


def lines_leaving_axes(fig: Figure, *, draw: bool = True) -> list[str]:
    """Data lines (clipped to their axes) that reach beyond them with no clip mark on that edge."""
    bad = []
    for ax in _axes(fig, draw):
        box = ax.get_window_extent()
        marks = [xy for a in ax.get_children() if str(a.get_gid() or "").startswith("clip-mark") for xy in _paths(a)]
        marks_xy = np.vstack(marks) if marks else np.empty((0, 2))
        for artist, xy in _data_paths(ax, (Line2D, LineCollection)):
            if artist.get_clip_on() and not str(artist.get_gid() or "").startswith("clip-mark"):
                bad += [f"{ax.get_title() or ax.get_ylabel()!r}: {artist.get_gid() or artist} leaves by the {edge}"
                        for edge in _edges_left_unmarked(xy, box, marks_xy)]
    return bad


def _edges_left_unmarked(xy: np.ndarray, box: Bbox, marks_xy: np.ndarray) -> list[str]:
    """Edges of ``box`` that the polyline ``xy`` crosses with no mark within 12 px of that edge."""
    out = {"bottom": xy[:, 1] < box.y0 - 1, "top": xy[:, 1] > box.y1 + 1,
           "left": xy[:, 0] < box.x0 - 1, "right": xy[:, 0] > box.x1 + 1}
    gap = {"bottom": np.abs(marks_xy[:, 1] - box.y0), "top": np.abs(marks_xy[:, 1] - box.y1),
           "left": np.abs(marks_xy[:, 0] - box.x0), "right": np.abs(marks_xy[:, 0] - box.x1)}
    return [edge for edge in out if out[edge].any() and not (gap[edge] < 12).any()]


def _data_paths(ax, kinds: tuple[type, ...]):
    """(artist, finite display vertices) of each visible child of ``ax`` of the given kinds."""
    for artist in ax.get_children():
        if isinstance(artist, kinds) and artist.get_visible():
            for xy in _paths(artist):
                yield artist, xy[np.isfinite(xy).all(axis=1)]


def _inside(xy: np.ndarray, box: Bbox) -> bool:
    return bool(((xy[:, 0] > box.x0) & (xy[:, 0] < box.x1) & (xy[:, 1] > box.y0) & (xy[:, 1] < box.y1)).any())


def _dense(xy: np.ndarray, step: float = 2.0) -> np.ndarray:
    """Points every ``step`` pixels along a polyline (so a segment crossing a box is seen)."""
    if len(xy) < 2:
        return xy
    parts = [xy[:1]]
    for a, b in zip(xy[:-1], xy[1:]):
        k = max(1, int(np.hypot(*(b - a)) // step))
        parts.append(a + (b - a) * (np.arange(1, k + 1)[:, None] / k))
    return np.vstack(parts)


def legends_over_lines(fig: Figure, *, draw: bool = True) -> list[str]:
    """Legends whose box covers part of a data line (or a histogram's outline) of their axes."""
    bad = []
    for ax in _axes(fig, draw):
        legend = ax.get_legend()
        if legend is None or not legend.get_visible():
            continue
        box = legend.get_window_extent().padded(-1)
        covered = [artist for artist, xy in _data_paths(ax, (Line2D, LineCollection, Polygon)) if _inside(_dense(xy), box)]
        bad += [f"legend of {ax.get_ylabel()!r} covers {artist.get_gid() or artist}" for artist in dict.fromkeys(covered)]
    return bad


def figure_problems(fig: Figure) -> dict[str, list]:
    """Every check above from a single draw of ``fig``; only the failing checks are returned."""
    texts = drawn_texts(fig)
    found = {"texts overlap": text_overlaps(fig, texts), "texts outside the figure": texts_outside(fig, texts),
             "lines leave the axes without a mark": lines_leaving_axes(fig, draw=False),
             "legends cover data lines": legends_over_lines(fig, draw=False)}
    return {k: v for k, v in found.items() if v}
