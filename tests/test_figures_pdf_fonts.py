"""PDF figures embed their fonts (TrueType subsets) without the OpenType layout tables (issue 16).

The layout tables are most of fontTools' subsetting work and no PDF viewer reads them; the
glyphs, outlines, widths and Unicode map stay (checked by eye: pdffonts lists the same embedded
subsets, pdftotext gives the same text and pdftoppm the same pixels as before).
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import fontTools.subset
import matplotlib.pyplot as plt
import pytest
from matplotlib.backends import _backend_pdf_ps as pdf_ps

from cementleak_stats.figures.save import _PDF_UNUSED_TABLES, save_figure


def test_pdf_fonts_embedded_without_layout_tables(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    embedded = []
    real = pdf_ps.font_as_file

    def spy(font):
        embedded.append(sorted(font.keys()))
        return real(font)

    monkeypatch.setattr(pdf_ps, "font_as_file", spy)
    fig, ax = plt.subplots(figsize=(3, 2))
    ax.plot([1, 2, 3])
    ax.set_title("Calibration AV To", fontweight="bold")
    ax.set_xlabel("Months since surgery")
    [path] = save_figure(fig, tmp_path / "fig", formats=("pdf",))
    plt.close(fig)

    data = path.read_bytes()
    assert b"/FontFile2" in data and b"+DejaVuSans" in data  # TrueType, subset, embedded (print-ready)
    assert embedded and all("glyf" in tables and "cmap" in tables and "hmtx" in tables for tables in embedded)
    assert not any(set(tables) & set(_PDF_UNUSED_TABLES) for tables in embedded)
    assert pdf_ps.subset is fontTools.subset  # matplotlib's own reference is put back


def test_pdf_stays_reproducible(tmp_path) -> None:
    fig, ax = plt.subplots(figsize=(3, 2))
    ax.plot([1, 2, 3])
    ax.set_title("Same bytes")
    a = save_figure(fig, tmp_path / "a", formats=("pdf",))[0].read_bytes()
    b = save_figure(fig, tmp_path / "b", formats=("pdf",))[0].read_bytes()
    plt.close(fig)
    assert a == b
