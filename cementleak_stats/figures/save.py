"""Write a figure to PNG/SVG/PDF atomically and reproducibly.

Each file is written to a temporary file in the target directory and moved into place with
:func:`os.replace`, so a failed save never leaves a half-written figure (nor destroys the
previous one).  Time stamps are left out of the metadata and SVG ids are salted with a
constant, so the same figure gives byte-identical files in every run.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import matplotlib as mpl
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from .theme import SVG_HASHSALT

#: Metadata that would otherwise carry a time stamp (or a version string) per format.
_METADATA: dict[str, dict[str, None]] = {
    "png": {"Software": None},
    "svg": {"Date": None},
    "pdf": {"CreationDate": None, "Producer": None},
}

_SAVE_RC = {"svg.hashsalt": SVG_HASHSALT, "svg.fonttype": "path", "pdf.fonttype": 42, "ps.fonttype": 42}


def save_figure(
    fig: Figure | Axes,
    path_stem: str | os.PathLike[str],
    *,
    formats: Sequence[str] = ("png", "svg", "pdf"),
    dpi: int = 300,
    pad_inches: float = 0.03,
) -> list[Path]:
    """Save ``fig`` as ``<path_stem>.<format>`` for each format; return the paths written.

    Parameters
    ----------
    fig : the figure (or any of its axes).
    path_stem : path without suffix, e.g. ``_output/figures/fig-forest``; the directory is
        created if missing.
    formats : any of ``png``, ``svg``, ``pdf`` (those are the formats whose time stamps are
        removed; others are refused because their output would not be reproducible).
    dpi : resolution of raster output (PNG), recorded in the file (pHYs chunk).
    pad_inches : white margin around the tight bounding box.

    Notes
    -----
    The bounding box is ``tight`` so that labels drawn outside the axes (forest-plot text
    columns, risk tables) are never clipped.
    """
    if isinstance(fig, Axes):
        fig = fig.figure
    stem = Path(path_stem)
    unknown = [f for f in formats if f not in _METADATA]
    if unknown:
        raise ValueError(f"save_figure: unsupported format(s) {unknown}; use {sorted(_METADATA)}")
    stem.parent.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for fmt in formats:
        target = stem.with_name(f"{stem.name}.{fmt}")
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as fh, mpl.rc_context(_SAVE_RC):
                fig.savefig(
                    fh,
                    format=fmt,
                    dpi=dpi,
                    metadata=_METADATA[fmt],
                    bbox_inches="tight",
                    pad_inches=pad_inches,
                    facecolor="white",
                )
            os.chmod(tmp, 0o644)  # mkstemp creates 0600; figures are meant to be read
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        written.append(target)
    return written
