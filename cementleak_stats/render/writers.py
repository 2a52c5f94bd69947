"""Write one assembled document to HTML, DOCX, PDF (Typst) or a reveal.js deck.

All writers are pandoc (the binary shipped by PyPI ``pypandoc-binary``) with the engine's Lua
filter; the PDF is compiled by the ``typst`` package from pandoc's Typst output with our own
template.  Nothing written references an external URL:

* HTML: ``--standalone --embed-resources`` (images become ``data:`` URIs), ``--mathml``
  instead of MathJax (no CDN), our print-friendly stylesheet, code folded in ``<details>``.
* Slides: pandoc's ``revealjs`` writer with ``--embed-resources``.  reveal.js normally comes
  from a CDN; we take the files from the PyPI package ``sphinx-revealjs``, which ships
  reveal.js 5 (``dist/`` and ``plugin/``), so a machine behind a PyPI-only mirror can build the
  deck.  We do not use its bundled themes (``simple`` imports Google Fonts; ``white`` embeds
  ~1.5 MB of fonts) but a small theme of our own with system fonts.  Considered and rejected:
  ``dzslides``/``slidy`` (self-contained but plain, no speaker notes or overview) and a
  home-made deck (more code to own than a stylesheet).
* DOCX: tables are Word tables (pandoc's docx writer), captions in Word's caption styles.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path

import pypandoc
import typst

from .config import DocxFormat, HtmlFormat, RevealjsFormat, TypstFormat, _FormatBase
from .parse import EXTERNAL_RESOURCE
from .problems import RenderError, SubsetProblem

TEMPLATES = Path(__file__).parent / "templates"
FILTER = TEMPLATES / "filters.lua"
#: pandoc warnings that mean the output would be wrong: they stop the render
_FATAL_WARNINGS = ("Could not fetch resource", "Citeproc: citation", "Could not find image", "Could not convert image")


@dataclass(frozen=True)
class WriteJob:
    """One document ready for the writers: body markdown, metadata file, directories."""

    display: str
    markdown: Path
    metadata: Path
    doc_dir: Path
    build_dir: Path
    citeproc: bool
    has_title: bool


_PANDOC_CHOICE = threading.Lock()


def _pandoc_path() -> str:
    """pypandoc's pandoc, one thread at a time: pypandoc publishes each candidate it finds while it
    still compares their versions, so a document written in another thread meanwhile could get an
    older pandoc from PATH (seen: pandoc 2.17 refusing ``--embed-resources``)."""
    with _PANDOC_CHOICE:
        return pypandoc.get_pandoc_path()


def _pandoc(job: WriteJob, to: str, out: Path, extra: list[str]) -> list[str]:
    args = [
        _pandoc_path(),
        str(job.markdown),
        "--from=markdown",
        f"--to={to}",
        f"--output={out}",
        f"--metadata-file={job.metadata}",
        f"--lua-filter={FILTER}",
        f"--resource-path={job.doc_dir}{os.pathsep}{job.build_dir}",
        f"--metadata=cl-doc-dir:{job.doc_dir}",
    ]
    if job.citeproc:
        args.append("--citeproc")
    if not job.has_title:
        args.append(f"--metadata=pagetitle:{Path(job.display).stem}")
    proc = subprocess.run(args + extra, capture_output=True, text=True, cwd=job.build_dir, check=False)
    stderr = proc.stderr.strip()
    if proc.returncode != 0:
        lines = stderr.splitlines()
        # our Lua filter's errors start with "cementleak:"; otherwise pandoc's first line
        ours = [line.split("cementleak: ", 1)[1] for line in lines if "cementleak: " in line]
        reason = ours[0] if ours else lines[0] if lines else f"exit code {proc.returncode}"
        raise RenderError([SubsetProblem(job.display, None, f"pandoc could not write {to}: {reason}")], details=stderr)
    warnings = [w for w in stderr.splitlines() if w.startswith("[WARNING]")]
    fatal = [w for w in warnings if any(f in w for f in _FATAL_WARNINGS)]
    if fatal:
        raise RenderError([SubsetProblem(job.display, None, f"pandoc ({to}): {w.removeprefix('[WARNING] ')}") for w in fatal], details=stderr)
    return [f"{job.display} ({to}): {w.removeprefix('[WARNING] ')}" for w in warnings]


def _self_contained(job: WriteJob, out: Path) -> None:
    """Refuse an HTML output that would load anything from the network."""
    m = EXTERNAL_RESOURCE.search(out.read_text(encoding="utf-8"))
    if m:
        raise RenderError([SubsetProblem(job.display, None, f"the {out.suffix} output would load an external resource: {m.group(0)[:120]}", "display self-contained output (no CDN scripts, no remote images)")])


def _toc(fmt: _FormatBase) -> list[str]:
    return ["--toc", f"--toc-depth={fmt.toc_depth}"] if fmt.toc else []


def write_html(job: WriteJob, fmt: HtmlFormat, out: Path) -> list[str]:
    css = [f"--css={TEMPLATES / 'report.css'}"] + [f"--css={(job.doc_dir / c).resolve()}" for c in fmt.css]
    fold = "show" if fmt.code_fold == "show" else str(fmt.code_fold).lower()
    extra = ["--standalone", "--embed-resources", "--mathml", *css, *_toc(fmt), f"--metadata=cl-code-fold:{fold}", f"--metadata=cl-code-summary:{fmt.code_summary}"]
    warnings = _pandoc(job, "html5", out, extra)
    _self_contained(job, out)
    return warnings


def write_docx(job: WriteJob, fmt: DocxFormat, out: Path) -> list[str]:
    extra = _toc(fmt)
    if fmt.reference_doc:
        ref = (job.doc_dir / fmt.reference_doc).resolve()
        if not ref.exists():
            raise RenderError([SubsetProblem(job.display, None, f"reference-doc '{fmt.reference_doc}' does not exist")])
        extra.append(f"--reference-doc={ref}")
    return _pandoc(job, "docx", out, extra)


def write_pdf(job: WriteJob, fmt: TypstFormat, out: Path) -> list[str]:
    typ = out.with_suffix(".typ") if fmt.keep_typ else job.build_dir / (out.stem + ".typ")
    extra = ["--standalone", f"--template={TEMPLATES / 'report.typ'}", f"--variable=papersize:{fmt.papersize}", f"--variable=fontsize:{fmt.fontsize}", *_toc(fmt)]
    if fmt.margin:
        extra.append(f"--variable=margin:{fmt.margin.typst()}")
    for name in fmt.include_in_header:
        header = (job.doc_dir / name).resolve()
        if not header.is_file():
            raise RenderError([SubsetProblem(job.display, None, f"include-in-header '{name}' (format typst) does not exist", "name a Typst file relative to the document, or to the project in _quarto.yml")])
        extra.append(f"--include-in-header={header}")
    warnings = _pandoc(job, "typst", typ, extra)
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    try:
        # root "/" because images are referenced by absolute path (cell figures live in the
        # build directory, document images next to the .qmd)
        _, typst_warnings = typst.compile_with_warnings(str(typ), output=str(out), root="/", timestamp=int(epoch) if epoch else None,
                                                        font_paths=_font_paths(job))
    except typst.TypstError as exc:
        raise RenderError([SubsetProblem(job.display, None, f"typst could not compile the PDF: {exc.message}")], details=f"{exc.diagnostic}\n{typ.read_text(encoding='utf-8')}") from None
    return warnings + [f"{job.display} (typst): {getattr(w, 'message', w)}" for w in typst_warnings]


def _font_paths(job: WriteJob) -> list[str]:
    """Typst's extra font folders: the Chinese fonts for a document in Chinese (``lang: zh``)."""
    import yaml

    from ..fonts import MissingFontError, cjk_font_files

    lang = str((yaml.safe_load(job.metadata.read_text(encoding="utf-8")) or {}).get("lang", "en"))
    if not lang.startswith("zh"):
        return []
    try:
        return [str(cjk_font_files()["serif"].parent)]
    except MissingFontError as exc:
        raise RenderError([SubsetProblem(job.display, None, str(exc), "install the fonts, then render again")]) from None


def reveal_assets(dest: Path) -> Path:
    """A reveal.js tree for pandoc (``dist/``, ``plugin/``) with our theme, built in ``dest``."""
    spec = importlib.util.find_spec("sphinx_revealjs")  # locates the files without importing Sphinx
    src = Path(next(iter(spec.submodule_search_locations))) / "_static" / "revealjs" if spec and spec.submodule_search_locations else None
    if src is None or not (src / "dist" / "reveal.js").exists():
        raise RenderError([SubsetProblem("slides", None, "reveal.js files not found", "pip install sphinx-revealjs (it ships reveal.js; no CDN is used)")])
    if not dest.exists():
        (dest / "dist" / "theme").mkdir(parents=True)
        for name in ("reset.css", "reveal.css", "reveal.js"):
            shutil.copyfile(src / "dist" / name, dest / "dist" / name)
        shutil.copyfile(TEMPLATES / "slides.css", dest / "dist" / "theme" / "cementleak.css")
        for plugin in ("notes", "search", "zoom"):
            (dest / "plugin" / plugin).mkdir(parents=True)
            shutil.copyfile(src / "plugin" / plugin / f"{plugin}.js", dest / "plugin" / plugin / f"{plugin}.js")
    return dest


def write_slides(job: WriteJob, fmt: RevealjsFormat, out: Path) -> list[str]:
    assets = reveal_assets(job.build_dir.parent / "revealjs")
    extra = [
        "--standalone",
        "--embed-resources",
        "--mathml",
        f"--variable=revealjs-url:{assets}",
        "--variable=theme:cementleak",
        f"--slide-level={fmt.slide_level}",
        f"--variable=width:{fmt.width}",
        f"--variable=height:{fmt.height}",
        "--variable=center:false",
        "--variable=transition:none",
        *_toc(fmt),
    ]
    if fmt.slide_number:
        extra.append("--variable=slideNumber:true")
    if fmt.incremental:
        extra.append("--incremental")
    warnings = _pandoc(job, "revealjs", out, extra)
    _self_contained(job, out)
    return warnings


WRITERS = {"html": write_html, "docx": write_docx, "typst": write_pdf, "revealjs": write_slides}
