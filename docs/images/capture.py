"""Regenerate the README screenshots from a rendered report.

    cementleak report                        # renders into _output/
    python docs/images/capture.py _output    # writes docs/images/*.png

Needs headless Chromium (Debian ``chromium``), ``pdftoppm`` (poppler-utils) and Pillow.
Four images: the HTML report's first screen, the PDF page with the nomogram, the
journal-club slide with the worked example, and the nomogram page of the report in Chinese.  Each is downscaled to stay under 400 KB.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from PIL import Image
from pypdf import PdfReader

HERE = Path(__file__).resolve().parent
MAX_BYTES = 400_000


def chromium_screenshot(url: str, out: Path, *, width: int, height: int) -> None:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        sys.exit("no chromium binary (Debian: apt-get install chromium)")
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run([exe, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                        "--disable-component-update", "--disable-sync", f"--user-data-dir={profile}", "--hide-scrollbars",
                        f"--window-size={width},{height}", "--virtual-time-budget=5000", f"--screenshot={out}", url],
                       check=True, capture_output=True, timeout=120)


def pdf_page_with(pdf: Path, text: str) -> int:
    """1-based number of the first page whose text contains ``text``."""
    for i, page in enumerate(PdfReader(pdf).pages, start=1):
        if text in page.extract_text():
            return i
    raise SystemExit(f"no page of {pdf} contains {text!r}")


def save_small(im: Image.Image, out: Path, *, width: int) -> None:
    """Downscale to ``width`` pixels (keeping the aspect ratio), palette PNG, under 400 KB."""
    im = im.convert("RGB")
    if im.width > width:
        im = im.resize((width, round(im.height * width / im.width)), Image.LANCZOS)
    im.quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(out, optimize=True)
    if out.stat().st_size > MAX_BYTES:
        raise SystemExit(f"{out} is {out.stat().st_size} bytes; lower the width")
    print(f"wrote {out} ({im.width}x{im.height}, {out.stat().st_size // 1000} KB)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("output", type=Path, help="the rendered output directory (holds report/index.html)")
    args = ap.parse_args()
    report = args.output.resolve() / "report"
    with tempfile.TemporaryDirectory() as tmp:
        shot = Path(tmp) / "shot.png"
        # the HTML report: title, contents, SYNTHETIC banner, abstract (the text column only)
        chromium_screenshot((report / "index.html").as_uri(), shot, width=1280, height=1400)
        save_small(Image.open(shot).crop((200, 0, 1080, 1400)), HERE / "report-html.png", width=800)
        # the PDF page with the nomogram
        page = pdf_page_with(report / "index.pdf", "Figure 4:")
        subprocess.run(["pdftoppm", "-r", "110", "-png", "-singlefile", "-f", str(page), "-l", str(page),
                        str(report / "index.pdf"), str(Path(tmp) / "page")], check=True)
        save_small(Image.open(Path(tmp) / "page.png"), HERE / "report-pdf-nomogram.png", width=900)
        # the slide with the worked example (reveal.js: #/<index>, the title slide is 0)
        chromium_screenshot((report / "slides.html").as_uri() + "#/6", shot, width=1280, height=720)
        save_small(Image.open(shot), HERE / "slides.png", width=960)
        # the same nomogram page of the report in Chinese (report.language: [en, zh])
        zh = report / "index.zh.pdf"
        if zh.exists():
            page = pdf_page_with(zh, "图 4:")
            subprocess.run(["pdftoppm", "-r", "110", "-png", "-singlefile", "-f", str(page), "-l", str(page),
                            str(zh), str(Path(tmp) / "page")], check=True)
            save_small(Image.open(Path(tmp) / "page.png"), HERE / "report-pdf-zh.png", width=900)


if __name__ == "__main__":
    main()
