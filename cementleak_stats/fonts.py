"""The fonts of a report in Chinese: Noto Sans SC and Noto Serif SC (SIL Open Font License 1.1).

They come from the PyPI package ``pylopdf-fonts-zh-cn`` (a dependency, so ``pip install`` of
this package is the whole set-up, with no system fonts), which ships the two OpenType files and
their paths.  The report uses them as Chinese books and journals do: the serif (宋体-like) for
text, the sans (黑体-like) for headings, emphasis and figures.  They are found at run time by:

* Typst (the PDF): ``font_paths`` of the compiler, so the PDF embeds them (``pdffonts`` lists them);
* matplotlib (the figures): registered with ``font_manager`` and listed after the Latin font,
  so Chinese characters fall back to them glyph by glyph (matplotlib >= 3.6);
* HTML and slides: named in the style sheet (the reader's browser has a Chinese font);
* DOCX: the East Asian font of the styles (``w:eastAsia``), which Word substitutes when absent.

A missing package is an error that names the install command, never a page of empty boxes.
"""

from __future__ import annotations

import functools
from pathlib import Path

#: family names as the font files declare them
SANS = "Noto Sans SC"
SERIF = "Noto Serif SC"
#: the package that ships them, and how to install it
PACKAGE = "pylopdf-fonts-zh-cn"
INSTALL = f"pip install {PACKAGE}"


class MissingFontError(RuntimeError):
    """The Chinese fonts are not installed (the message says how to install them)."""


@functools.cache
def cjk_font_files() -> dict[str, Path]:
    """``{"sans": path, "serif": path}`` of the Chinese fonts; raise :class:`MissingFontError`."""
    try:
        import pylopdf_fonts_zh_cn as fonts
    except ImportError:
        raise MissingFontError(f"the Chinese report needs the fonts Noto Sans SC and Noto Serif SC: {INSTALL} "
                               f"(or reinstall cementleak-stats, which depends on it)") from None
    files = {"sans": Path(fonts.sans_path()), "serif": Path(fonts.serif_path())}
    lost = [str(p) for p in files.values() if not p.is_file()]
    if lost:
        raise MissingFontError(f"font file(s) missing: {', '.join(lost)}; reinstall them: pip install --force-reinstall {PACKAGE}")
    return files


def cjk_font_dir() -> Path | None:
    """The folder holding the Chinese fonts (Typst's ``--font-path``), or None when not installed."""
    try:
        return cjk_font_files()["sans"].parent
    except MissingFontError:
        return None


@functools.cache
def matplotlib_cjk_family() -> str:
    """Register the sans font with matplotlib (once) and return its family name."""
    from matplotlib import font_manager

    font_manager.fontManager.addfont(str(cjk_font_files()["sans"]))
    return SANS


#: the East Asian fonts a Chinese DOCX names (Word substitutes its own when they are absent;
#: DOCX does not embed fonts): 宋体 for text, 黑体 for headings, as Chinese journals ask
DOCX_TEXT_FONT = "SimSun"
DOCX_HEADING_FONT = "SimHei"


def write_docx_reference(dest: str | Path) -> Path:
    """A pandoc reference document for a Chinese DOCX: pandoc's own, with East Asian fonts
    (``w:eastAsia``) and the East Asian language set on the default run properties and the
    heading and title styles.  ``report/_reference.zh.docx`` is made by it (a test checks)."""
    import io
    import subprocess

    import docx
    import pypandoc
    from docx.oxml.ns import qn

    ref = subprocess.run([pypandoc.get_pandoc_path(), "--print-default-data-file", "reference.docx"],
                         capture_output=True, check=True).stdout
    document = docx.Document(io.BytesIO(ref))

    def east_asian(rpr, font: str) -> None:
        fonts = rpr.find(qn("w:rFonts"))
        if fonts is None:
            fonts = rpr.makeelement(qn("w:rFonts"), {})
            rpr.insert(0, fonts)
        fonts.set(qn("w:eastAsia"), font)
        fonts.set(qn("w:hint"), "eastAsia")
        lang = rpr.find(qn("w:lang"))
        if lang is None:
            lang = rpr.makeelement(qn("w:lang"), {})
            rpr.append(lang)
        lang.set(qn("w:eastAsia"), "zh-CN")

    defaults = document.styles.element.find(qn("w:docDefaults")).find(qn("w:rPrDefault")).find(qn("w:rPr"))
    east_asian(defaults, DOCX_TEXT_FONT)
    for style in document.styles:
        name = style.name or ""
        if style.type == 1 and (name.startswith("Heading") or name in ("Title", "Subtitle", "TOC Heading")):
            east_asian(style.element.get_or_add_rPr(), DOCX_HEADING_FONT)
    dest = Path(dest)
    document.save(str(dest))
    return dest
