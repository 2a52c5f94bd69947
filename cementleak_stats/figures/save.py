"""Write a figure to PNG/SVG/PDF atomically and reproducibly; many figures in parallel.

Each file is written to a temporary file in the target directory and moved into place with
:func:`os.replace`, so a failed save never leaves a half-written figure (nor destroys the
previous one).  Time stamps are left out of the metadata and SVG ids are salted with a
constant, so the same figure gives byte-identical files in every run.  :func:`save_figures`
draws and writes many figures in worker processes, one figure per task; an English figure is
drawn once, as PDF, and its PNG is that PDF rasterized (:func:`drawing`).
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from contextlib import nullcontext
from functools import partial
from pathlib import Path
from typing import IO, NamedTuple

import matplotlib as mpl
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from ..atomic import atomic_open, write_atomic
from .pdf_fonts import lean_pdf_fonts
from .theme import SVG_HASHSALT

#: Metadata that would otherwise carry a time stamp (or a version string) per format.
_METADATA: dict[str, dict[str, None]] = {
    "png": {"Software": None},
    "svg": {"Date": None},
    "pdf": {"CreationDate": None, "Producer": None},
}

#: the resolution of every raster figure: the results folder's PNG files and the documents' figures
DPI = 300


class Drawing(NamedTuple):
    """A figure drawn once for every place that shows it (:func:`drawing`)."""

    #: the 300-dpi PNG (what a results folder holds and a document displays)
    png: bytes
    #: the figure's width in inches (a document displays it at that size)
    width: float
    #: the PDF the PNG was rasterized from (English figures: :func:`png_from_pdf`), else None
    pdf: bytes | None = None


#: a figure's :class:`Drawing`, or None: the results have nothing to draw
Drawn = Drawing | None

#: zlib's fastest level: the same pixels as the default level 6, a quarter less encoding time
#: (0.77 s against 1.04 s for the shipped study's 20 figures at 300 dpi) for files 16% larger
_PNG_PIL = {"compress_level": 1}

_SAVE_RC = {"svg.hashsalt": SVG_HASHSALT, "svg.fonttype": "path", "pdf.fonttype": 42, "ps.fonttype": 42}


def save_figure(
    fig: Figure | Axes,
    path_stem: str | os.PathLike[str],
    *,
    formats: Sequence[str] = ("png", "svg", "pdf"),
    dpi: int = DPI,
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
        # figures are meant to be read: 0o644 (a temporary file is created 0600)
        with atomic_open(target, "wb", permissions=0o644) as fh:
            _savefig(fig, fh, fmt, dpi=dpi, pad_inches=pad_inches)
        written.append(target)
    return written


def _savefig(fig: Figure, fh: IO[bytes], fmt: str, *, dpi: int, pad_inches: float = 0.03) -> None:
    """``fig`` written to ``fh`` in ``fmt``, with the settings of every figure file (module docstring)."""
    with mpl.rc_context(_SAVE_RC), (lean_pdf_fonts() if fmt == "pdf" else nullcontext()):
        fig.savefig(
            fh,
            format=fmt,
            dpi=dpi,
            metadata=_METADATA[fmt],
            bbox_inches="tight",
            pad_inches=pad_inches,
            facecolor="white",
            **({"pil_kwargs": _PNG_PIL} if fmt == "png" else {}),
        )


def png_from_pdf(lang: str) -> bool:
    """Whether a figure in ``lang`` is drawn as PDF and its PNG rasterized from that PDF.

    English, the language of a results folder's figures: its PNG and PDF files are then one
    drawing, pixel for line, and drawing the PDF then rasterizing it with PDFium costs about half
    of drawing the figure twice in matplotlib (PDF, then Agg).  Other languages' figures are shown
    in documents only, as PNG: drawn by Agg, since their PDF would cost more than the PNG (the
    subsets of a CJK font, made anew for each figure's characters).
    """
    from ..i18n import SOURCE

    return lang == SOURCE


def drawing(fig: Figure | None, *, lang: str, dpi: int = DPI) -> Drawn:
    """``fig`` drawn once for the results folder and every document (None for None): its PNG at
    ``dpi`` and width, and in the languages of :func:`png_from_pdf` the PDF the PNG is made from."""
    if fig is None:
        return None
    width = float(fig.get_size_inches()[0])
    buf = io.BytesIO()
    if not png_from_pdf(lang):
        _savefig(fig, buf, "png", dpi=dpi)
        return Drawing(buf.getvalue(), width)
    _savefig(fig, buf, "pdf", dpi=dpi)
    pdf = buf.getvalue()
    return Drawing(_rasterized(pdf, dpi), width, pdf)


def _rasterized(pdf: bytes, dpi: int) -> bytes:
    """The first page of ``pdf`` as PNG at ``dpi`` (PDFium through pypdfium2: white background,
    anti-aliased; the PNG settings of :func:`_savefig`, with the resolution in its pHYs chunk).

    Why PDFium and not matplotlib's Agg drawing the figure again: it costs about a fifth as much
    (0.9 s against 4.2 s for the shipped study's 20 figures) and the PNG is then exactly the
    PDF's drawing.  PDFium is not thread-safe; each process here draws on one thread."""
    import pypdfium2 as pdfium

    doc = pdfium.PdfDocument(pdf)
    try:
        page = doc[0]
        try:
            image = page.render(scale=dpi / 72, may_draw_forms=False).to_pil()
        finally:
            page.close()
    finally:
        doc.close()
    out = io.BytesIO()
    image.save(out, format="png", dpi=(dpi, dpi), **_PNG_PIL)
    return out.getvalue()


# --- many figures, drawn and written in parallel -------------------------------------------------
#: ``png(name, draw)``: the :class:`Drawing` of figure ``name`` from elsewhere (e.g. a cache that
#: other processes fill), calling ``draw()`` to draw it here when it is not there (:func:`save_figures`)
SharedPng = Callable[[str, Callable[[], Drawn]], Drawn]
_Job = tuple[Callable[[str], Figure | None], Path, tuple[str, ...], int, SharedPng | None, str]
#: (draw, out_dir, formats, dpi, png, lang) of the current :func:`save_figures` call, inherited by its forked workers
_JOB: _Job | None = None


def _draw_and_save(name: str) -> tuple[str, list[Path], str]:
    """Draw figure ``name`` and write it in every format: (name, paths, "" or the error)."""
    import matplotlib.pyplot as plt

    assert _JOB is not None
    draw, out_dir, formats, dpi, png, lang = _JOB
    drawn: list[Figure | None] = []

    def figure() -> Figure | None:  # drawn once, for every format that needs it
        if not drawn:
            drawn.append(draw(name))
        return drawn[0]

    try:
        paths: list[Path] = []
        if "png" in formats:  # the figure's one drawing: shared (drawn here only when it is not there yet)
            made = partial(drawing, lang=lang, dpi=dpi)
            one = made(figure()) if png is None else png(name, lambda: made(figure()))
            if one is None:
                return name, [], ""
            paths.append(write_atomic(out_dir / f"{name}.png", one.png, permissions=0o644))
            if one.pdf is not None and "pdf" in formats:
                paths.append(write_atomic(out_dir / f"{name}.pdf", one.pdf, permissions=0o644))
            formats = tuple(f for f in formats if f != "png" and (f != "pdf" or one.pdf is None))
        if formats and figure() is not None:
            paths += save_figure(figure(), out_dir / name, formats=formats, dpi=dpi)
        return name, paths, ""
    except Exception as exc:  # noqa: BLE001 — reported by name; the other figures are still written
        return name, [], f"{type(exc).__name__}: {exc}"
    finally:
        for fig in drawn:
            if fig is not None:
                plt.close(fig)


#: in a worker of an ``executor`` (:func:`save_figures`): the job of the current call, by its id
_SENT: dict[str, _Job] = {}


def _draw_and_save_sent(job_id: str, job: bytes, name: str) -> tuple[str, list[Path], str]:
    """:func:`_draw_and_save` in a worker forked before the job existed (``executor`` of
    :func:`save_figures`): the job comes pickled with every task and is unpickled once per worker."""
    import pickle

    global _JOB
    if job_id not in _SENT:
        _SENT.clear()
        _SENT[job_id] = pickle.loads(job)  # noqa: S301 — pickled by this worker's own parent process
    _JOB = _SENT[job_id]
    return _draw_and_save(name)


def warm_up(modules: Sequence[str] = ()) -> None:
    """Import ``modules`` and what writing PNG and PDF needs (Agg, PIL, the PDF backend with
    fontTools' subsetter, PDFium) and load the theme's fonts, by writing a small figure to memory: what a
    worker forked before the figures' inputs existed does while they are computed
    (:class:`~cementleak_stats.export.workers.FigureWorkers`)."""
    import importlib
    import io

    import matplotlib.pyplot as plt

    from .theme import figure_theme

    for module in modules:
        importlib.import_module(module)
    with figure_theme():
        fig, ax = plt.subplots(figsize=(1, 1), layout="constrained")
        ax.set_title("A", loc="left", fontweight="bold")
        ax.set_xlabel("0 1")
        try:
            for fmt in ("png", "pdf"):
                buf = io.BytesIO()
                with mpl.rc_context(_SAVE_RC), (lean_pdf_fonts() if fmt == "pdf" else nullcontext()):
                    fig.savefig(buf, format=fmt, dpi=72)
            _rasterized(buf.getvalue(), 72)  # loads PDFium
        finally:
            plt.close(fig)


def default_jobs() -> int:
    """Worker processes for :func:`save_figures`: the CPUs this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def save_figures(
    draw: Callable[[str], Figure | None],
    names: Sequence[str],
    out_dir: str | os.PathLike[str],
    *,
    formats: Sequence[str] = ("png", "pdf"),
    dpi: int = DPI,
    jobs: int | None = None,
    progress: Callable[[str], None] | None = None,
    executor: Executor | None = None,
    png: SharedPng | None = None,
    lang: str | None = None,
) -> tuple[list[Path], dict[str, str]]:
    """Draw every figure of ``names`` with ``draw(name)`` and write it with :func:`save_figure`,
    in ``jobs`` worker processes (default: one per usable CPU), or by ``executor`` when given.

    Returns ``(paths written, {name: error})``: a figure that fails to draw or write is reported
    by name and the others are still written (``draw`` returning None writes nothing).

    Notes
    -----
    Drawing and writing a figure is single-threaded matplotlib work, independent between
    figures, so the figures are spread over processes.  The workers are forked here: they inherit
    ``draw`` and the results it reads (nothing is pickled, no package is imported again); where
    ``fork`` is not available, or with ``jobs=1``, the figures are written here one by one.
    An ``executor`` has workers forked earlier (e.g. warming up while the results were computed:
    :class:`~cementleak_stats.export.workers.FigureWorkers`): ``draw`` is pickled once and sent
    with each task (a module-level function, or a :func:`functools.partial` of one with picklable
    arguments); if it cannot be pickled, workers are forked here as without an executor.
    Each file is written atomically by :func:`save_figure`, so the output is the same either way.
    The PNG file is the figure's :func:`drawing` in ``lang`` (the language ``draw`` writes in;
    default: the active one): in English the PDF rasterized, and then the PDF file is that PDF.
    With ``png`` (:data:`SharedPng`, picklable like ``draw``), that drawing is the one it gives:
    made elsewhere already, or here.
    """
    import multiprocessing as mp
    from concurrent.futures import Future, ProcessPoolExecutor, as_completed

    global _JOB
    names = list(names)
    jobs = min(default_jobs() if jobs is None else max(1, int(jobs)), len(names)) or 1
    formats = tuple(formats)
    if lang is None:
        from ..i18n import active

        lang = active()
    _JOB = (draw, Path(out_dir), formats, dpi, png, lang)
    written: list[Path] = []
    failed: dict[str, str] = {}

    def collect(name: str, paths: list[Path], error: str) -> None:
        if error:
            failed[name] = error
        written.extend(paths)
        if progress is not None:
            progress(f"figure {name}" + (" (failed)" if error else ""))

    def gather(futures: dict[Future[tuple[str, list[Path], str]], str]) -> None:
        for fut in as_completed(futures):
            try:
                collect(*fut.result())
            except Exception as exc:  # noqa: BLE001 — a worker that died (e.g. out of memory)
                collect(futures[fut], [], f"{type(exc).__name__}: {exc}")

    try:
        if not formats or not names:
            return written, failed
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        job = _pickled(_JOB) if executor is not None else None
        if executor is not None and job is not None:
            import uuid

            job_id = uuid.uuid4().hex
            gather({executor.submit(_draw_and_save_sent, job_id, job, name): name for name in names})
        elif jobs == 1 or "fork" not in mp.get_all_start_methods():
            for name in names:
                collect(*_draw_and_save(name))
        else:
            with ProcessPoolExecutor(max_workers=jobs, mp_context=mp.get_context("fork")) as pool:
                gather({pool.submit(_draw_and_save, name): name for name in names})
    finally:
        _JOB = None
    order = {n: i for i, n in enumerate(names)}
    written.sort(key=lambda p: (order.get(p.stem, len(order)), formats.index(p.suffix[1:])))  # as asked, not as finished
    failed = {n: failed[n] for n in names if n in failed}
    return written, failed


def _pickled(job: object) -> bytes | None:
    """``job`` pickled for an ``executor`` (:func:`save_figures`), or None when it cannot be (a lambda)."""
    import pickle

    try:
        return pickle.dumps(job, protocol=pickle.HIGHEST_PROTOCOL)
    except (pickle.PicklingError, TypeError, AttributeError):
        return None
