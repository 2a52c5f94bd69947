"""PDF figures embed their fonts (TrueType subsets) without the OpenType layout tables (issue 16).

The layout tables are most of fontTools' subsetting work and no PDF viewer reads them; the
glyphs, outlines, widths and Unicode map stay (checked by eye: pdffonts lists the same embedded
subsets, pdftotext gives the same text and pdftoppm the same pixels as before).

Each subset holds printable ASCII and the figure's other characters, and is made once per process
for each set of those other characters: figures of the same characters share one fontTools run,
and a figure's bytes do not depend on the figures drawn before it.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import fontTools.subset
import matplotlib.pyplot as plt
import pytest
from matplotlib.backends import _backend_pdf_ps as pdf_ps

from pypdf import PdfReader

from cementleak_stats.figures import pdf_fonts as save_module
from cementleak_stats.figures.pdf_fonts import _PDF_UNUSED_TABLES
from cementleak_stats.figures.save import save_figure


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


def _pdf(path, title: str) -> bytes:
    fig, ax = plt.subplots(figsize=(3, 2))
    ax.plot([1, 2, 3])
    ax.set_xlabel(title)
    [written] = save_figure(fig, path, formats=("pdf",))
    plt.close(fig)
    return written.read_bytes()


def test_font_subset_made_once_for_the_same_characters(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    made = []
    real = pdf_ps.get_glyphs_subset

    def spy(fontfile, glyphs):
        made.append(len(list(glyphs)))
        return real(fontfile, glyphs)

    monkeypatch.setattr(pdf_ps, "get_glyphs_subset", spy)
    monkeypatch.setattr(save_module, "_SUBSETS", {})
    _pdf(tmp_path / "a", "Months since surgery")
    assert len(made) == 1  # one font (DejaVu Sans), one fontTools run
    _pdf(tmp_path / "b", "Hazard ratio (95% CI)")  # other ASCII letters: the same subset
    assert len(made) == 1
    text = "".join(page.extract_text() for page in PdfReader(tmp_path / "b.pdf").pages)
    assert "Hazard ratio (95% CI)" in text  # its characters are embedded and copy as text
    _pdf(tmp_path / "c", "Risk \u2264 5%")  # a character beyond ASCII: a subset of its own
    assert len(made) == 2 and made[1] > made[0]
    assert "Risk \u2264 5%" in "".join(page.extract_text() for page in PdfReader(tmp_path / "c.pdf").pages)
    assert pdf_ps.get_glyphs_subset is spy  # matplotlib's own function is put back


def test_pdf_bytes_do_not_depend_on_the_figures_drawn_before(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(save_module, "_SUBSETS", {})
    alone = _pdf(tmp_path / "alone", "Risk \u2264 5%")
    monkeypatch.setattr(save_module, "_SUBSETS", {})
    _pdf(tmp_path / "before1", "Time \u2013 months")
    _pdf(tmp_path / "before2", "Probability")
    assert _pdf(tmp_path / "after", "Risk \u2264 5%") == alone
