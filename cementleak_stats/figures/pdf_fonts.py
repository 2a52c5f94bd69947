"""PDF figures' fonts: embedded as TrueType subsets (``pdf.fonttype`` 42) without the OpenType
layout tables, one subset per set of characters per process (:func:`lean_pdf_fonts`, used by
:mod:`.save` while it writes a PDF).
"""

from __future__ import annotations

import functools
import io
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

#: OpenType layout tables (substitution, positioning, kerning, math): a PDF viewer shows the glyphs
#: matplotlib has already placed and never reads them, but subsetting them is most of fontTools' work
_PDF_UNUSED_TABLES = ("GSUB", "GPOS", "GDEF", "kern", "BASE", "JSTF", "MATH")


class _LeanSubset:
    """``fontTools.subset`` as matplotlib's PDF backend sees it inside :func:`lean_pdf_fonts`: the
    same module, but its ``Options`` drop :data:`_PDF_UNUSED_TABLES` from the embedded subset."""

    def __init__(self, module: Any) -> None:
        self._module = module

    def __getattr__(self, name: str) -> Any:
        return getattr(self._module, name)

    def Options(self, *args: Any, **kwargs: Any) -> Any:  # noqa: N802 - the name fontTools gives it
        options = self._module.Options(*args, **kwargs)
        options.drop_tables = [*options.drop_tables, *_PDF_UNUSED_TABLES]
        options.layout_features = []
        return options


@contextmanager
def lean_pdf_fonts() -> Iterator[None]:
    """Embed fonts in PDF (TrueType, subset: ``pdf.fonttype`` 42) without their layout tables.

    matplotlib subsets each font of each PDF with fontTools and keeps the layout tables, which
    costs about two thirds of that work (0.26 s against 0.09 s per DejaVu Sans subset) for
    bytes no viewer uses: the glyphs, their outlines, widths and Unicode map are embedded as
    before, so the page looks the same and its text copies the same.  matplotlib offers no option
    for it, so its (private) reference to ``fontTools.subset`` is swapped while a figure is
    written, and left alone when a matplotlib version no longer has it.  Its subsetting function
    is swapped the same way for :func:`_shared_subset` (one subset per set of characters).
    """
    try:
        from matplotlib.backends import _backend_pdf_ps as pdf_ps
    except ImportError:  # pragma: no cover - another matplotlib layout
        yield
        return
    module = getattr(pdf_ps, "subset", None)
    subset_of = getattr(pdf_ps, "get_glyphs_subset", None)
    if module is None or isinstance(module, _LeanSubset) or not hasattr(module, "Options") or subset_of is None:
        yield
        return
    pdf_ps.subset = _LeanSubset(module)
    pdf_ps.get_glyphs_subset = functools.partial(_shared_subset, subset_of, pdf_ps.font_as_file, pdf_ps.SubsetResults)
    try:
        yield
    finally:
        pdf_ps.subset = module
        pdf_ps.get_glyphs_subset = subset_of


#: printable ASCII: every font subset embeds it, so that most figures need the same subset
_ASCII = "".join(map(chr, range(0x20, 0x7F)))
#: font subsets made in this process: (font file, face, glyphs beyond ASCII) -> (font bytes, glyph map)
_SUBSETS: dict[tuple[str, int, frozenset[int]], tuple[bytes, dict[int, int]]] = {}


@functools.lru_cache(maxsize=16)
def _ascii_glyphs(path: str, face: int) -> frozenset[int]:
    """The glyph indices of printable ASCII in a font (those it has)."""
    from fontTools.ttLib import TTFont

    with TTFont(path, fontNumber=face, lazy=True) as font:
        cmap = font.getBestCmap() or {}
        return frozenset(font.getGlyphID(cmap[ord(c)]) for c in _ASCII if ord(c) in cmap)


def _shared_subset(subset_of: Any, as_file: Any, results: Any, fontfile: Any, glyphs: Any) -> Any:
    """matplotlib's font subset for a PDF, made once per process for each set of glyphs beyond
    printable ASCII: the subset holds printable ASCII and the glyphs asked for, so it depends on
    those glyphs alone (the same figure, the same bytes), and the figures whose text is ASCII, or
    has the same few other characters, embed one subset made once (fontTools reads the whole font
    for each subset: about 50 ms of DejaVu Sans, for each font of each PDF)."""
    from fontTools.ttLib import TTFont

    path, face = os.fspath(fontfile), int(getattr(fontfile, "face_index", 0))
    ascii_ = _ascii_glyphs(path, face)
    wanted = frozenset(int(g) for g in glyphs)
    key = (path, face, wanted - ascii_)
    if key not in _SUBSETS:
        with subset_of(fontfile, sorted(wanted | ascii_)) as made:
            _SUBSETS[key] = (as_file(made.font).getvalue(), dict(made.glyph_index_map))
    data, glyph_map = _SUBSETS[key]
    return results(TTFont(io.BytesIO(data), recalcTimestamp=False), glyph_map)._as_cm()  # as fontTools.subset loads it
