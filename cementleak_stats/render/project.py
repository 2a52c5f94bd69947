"""Render a Quarto project with the built-in engine, atomically.

``render_project`` reads ``_quarto.yml``, finds the documents, and for each: parses it
(:mod:`.parse`), checks it stays inside the subset, executes it once in a Jupyter kernel
(:mod:`.execute`), assembles pandoc markdown with numbered figures, tables and sections
(:mod:`.assemble`, :mod:`.crossref`) and writes every requested format (:mod:`.writers`).

Documents are independent (each runs in its own kernel, forked from a server that has done
their imports: :mod:`.forkkernel`), so they are executed and written by ``jobs`` worker threads,
longest first (default 2: the kernels and pandoc/typst are separate processes; :mod:`.jobs`); the
checks of every document run first, in order, so a problem is reported before any kernel
starts.  With an execution cache given by the caller, a document whose inputs and parameters
are unchanged reuses its cached cell outputs and starts no kernel (:func:`.execute.execute_document`),
and each output whose writer's inputs are unchanged is the previous render's file (:mod:`.reuse`).
The renderer knows no statistics: what the documents read reaches them as ``params`` (Quarto's
parameters, injected after each document's ``parameters`` cell).

Atomicity: everything is written into a temporary directory ``.render-XXXX`` next to the
output directory.  Only when every document and every format succeeded is the new tree
swapped in (``os.replace``); files of the previous output that this render does not produce
(other formats, ``results/`` written by the analysis) are carried over as hard links.  Any
failure removes the temporary directory and leaves the previous output untouched.  A lock
file (``filelock``) stops a second render of the same output directory.
"""

from __future__ import annotations

import fnmatch
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import yaml
from pydantic import ValidationError

from .assemble import document_metadata, document_pieces
from .config import FORMAT_EXTENSIONS, DocumentConfig, ProjectConfig, load_project, requested_formats, resolve_document
from .crossref import number, to_markdown
from .execute import ExecutionCache, Params, execute_document, needs_kernel, start_kernels
from .parse import CodeCell, ParsedDocument, find_project_root, parse_document, static_problems
from .jobs import Alongside, run_longest_first
from .lock import acquire_output_lock
from .problems import RenderError, SubsetProblem, display_path
from .reuse import folder_digest, output_key, remember, reuse
from .writers import WRITERS, WriteJob

Progress = Callable[[str, str], None]


@dataclass(frozen=True)
class RenderedFile:
    """One output file: the source document, its Quarto format and the final path."""

    document: str
    format: str
    path: Path


@dataclass(frozen=True)
class RenderReport:
    """What a successful render wrote (paths are inside ``output_dir``)."""

    project_dir: Path
    output_dir: Path
    files: tuple[RenderedFile, ...]
    warnings: tuple[str, ...]
    seconds: float
    #: (document, step, seconds) for each document's "execute" (or "execute (cached)") and
    #: each format written; the steps of different documents overlap when ``jobs`` > 1
    timings: tuple[tuple[str, str, float], ...] = ()


def discover_documents(project: ProjectConfig, output_dir: Path) -> list[Path]:
    """The ``.qmd`` files to render: ``project.render`` globs (``!glob`` excludes), else every
    ``.qmd`` whose path has no part starting with ``_`` or ``.`` (Quarto's rule)."""
    root = project.root
    if project.render:
        chosen: dict[Path, None] = {}
        for pattern in project.render:
            if pattern.startswith("!"):
                for p in list(chosen):
                    if fnmatch.fnmatch(p.relative_to(root).as_posix(), pattern[1:]):
                        del chosen[p]
            else:
                matches = sorted(root.glob(pattern))
                if not matches:
                    raise RenderError([SubsetProblem("_quarto.yml", None, f"project.render entry '{pattern}' matches no file")])
                chosen.update((m.resolve(), None) for m in matches if m.is_file())
        return list(chosen)
    out = []
    for p in sorted(root.rglob("*.qmd")):
        rel = p.relative_to(root)
        if any(part.startswith(("_", ".")) for part in rel.parts):
            continue
        if output_dir in p.resolve().parents:
            continue
        out.append(p.resolve())
    return out


def _front_problems(doc: ParsedDocument, project: ProjectConfig) -> tuple[DocumentConfig | None, list[SubsetProblem]]:
    problems = list(doc.problems)
    config: DocumentConfig | None
    try:
        config = resolve_document(project, doc.front_matter)
    except (ValidationError, KeyError):
        config = None  # the front matter's problems are already among doc.problems
    meta = config.meta if config else None
    problems += static_problems(
        doc,
        number_sections=meta.number_sections if meta else bool(doc.front_matter.get("number-sections")),
        has_bibliography=bool(meta.bibliography) if meta else "bibliography" in doc.front_matter,
    )
    return (None if problems else config), problems


def check_document(path: str | Path) -> list[SubsetProblem]:
    """Every reason the built-in engine would refuse ``path``, without executing it.

    Checks the front matter and ``_quarto.yml`` options, the includes, every cell's options,
    fenced divs, shortcodes, and that each ``@fig-``/``@tbl-``/``@sec-`` reference has a
    target.  An empty list means the document is inside the supported subset.
    """
    path = Path(path).resolve()
    root = find_project_root(path)
    try:
        project = load_project(root)
    except RenderError as exc:
        return list(exc.problems)
    return _front_problems(parse_document(path, root=root), project)[1]


def _metadata_file(config: DocumentConfig, doc_dir: Path, dest: Path, printed: dict[str, object]) -> Path:
    """pandoc's metadata: the front matter's, then what the cells printed (``printed``) over it."""
    m = config.meta
    data: dict[str, object] = {"lang": m.lang}
    for key in ("title", "subtitle", "date", "abstract"):
        value = printed.get(key) or getattr(m, key)
        if value:
            data[key] = value if isinstance(value, str) else str(value)
    if m.toc_title:
        data["toc-title"] = m.toc_title
    if m.author:
        # plain strings: pandoc's HTML and DOCX writers print a structured author as "true"
        data["author"] = [a if isinstance(a, str) else ", ".join(filter(None, (a.name, a.affiliation, a.email))) for a in m.author]
    if m.keywords:
        data["keywords"] = list(m.keywords)
    if m.bibliography:
        data["bibliography"] = [str((doc_dir / b).resolve()) for b in m.bibliography]
    if m.csl:
        data["csl"] = str((doc_dir / m.csl).resolve())
    dest.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return dest


def _output_name(doc: Path, root: Path, fmt: str, config: DocumentConfig) -> Path:
    rel = doc.relative_to(root)
    name = config.formats[fmt].output_file or (rel.stem + FORMAT_EXTENSIONS[fmt])
    return rel.parent / name


@dataclass(frozen=True)
class _Plan:
    """A checked document and the outputs it will write (relative to the output directory)."""

    path: Path
    display: str
    doc: ParsedDocument
    config: DocumentConfig
    outputs: dict[str, Path]


def _plan_document(doc_path: Path, project: ProjectConfig, formats: Iterable[str], *, progress: Progress,
                   claimed: dict[Path, str]) -> _Plan | None:
    display = display_path(doc_path, project.root)
    progress(display, "check")
    doc = parse_document(doc_path, root=project.root)
    config, problems = _front_problems(doc, project)
    if problems:
        raise RenderError(problems)
    assert config is not None
    targets = [f for f in config.formats if f in formats]
    if not targets:
        return None
    outputs = {}
    for fmt in targets:
        rel = _output_name(doc_path, project.root, fmt, config)
        if rel in claimed:
            raise RenderError([SubsetProblem(display, None, f"output '{rel}' ({fmt}) is also written by {claimed[rel]}", "set 'output-file' in one of the formats")])
        claimed[rel] = f"{display} ({fmt})"
        outputs[fmt] = rel
    return _Plan(doc_path, display, doc, config, outputs)


def _render_document(plan: _Plan, *, staging: Path, build: Path, progress: Progress, previous: Path,
                     cache: ExecutionCache | None, params: Params | None) -> tuple[list[RenderedFile], list[str], list[tuple[str, str, float]]]:
    display, config = plan.display, plan.config
    work = Path(tempfile.mkdtemp(prefix=plan.path.stem + "-", dir=build))
    progress(display, "execute")
    t0 = time.perf_counter()
    cached: list[bool] = []

    def on_step(step: str) -> None:
        cached.append(step == "cached")
        progress(display, step)

    result = execute_document(plan.doc, config.meta, on_step=on_step, cache=cache, params=params)
    timings = [(display, "execute (cached)" if any(cached) else "execute", time.perf_counter() - t0)]
    echo_default = not all(f == "revealjs" for f in config.formats)
    pieces = document_pieces(plan.doc, config.meta, result, files_dir=work / "figures", echo_default=echo_default)
    printed = document_metadata(plan.doc, config.meta, result)
    body = to_markdown(pieces, number(pieces, number_sections=config.meta.number_sections), result.inlines,
                       number_sections=config.meta.number_sections, lang=config.meta.lang)
    (work / "body.md").write_text(body, encoding="utf-8")
    job = WriteJob(
        display=display,
        markdown=work / "body.md",
        metadata=_metadata_file(config, plan.path.parent, work / "meta.yaml", printed),
        doc_dir=plan.path.parent,
        build_dir=work,
        citeproc=bool(config.meta.bibliography),
        has_title=bool(printed.get("title") or config.meta.title),
    )
    files, warnings = [], []
    # the writers' inputs, before any writer adds its own files to the build directory
    keys = {} if cache is None else _output_keys(plan, work, skip=frozenset({previous, staging.parent}))
    for fmt, rel in plan.outputs.items():
        t0 = time.perf_counter()
        out = staging / rel
        out.parent.mkdir(parents=True, exist_ok=True)
        kept = None if cache is None else reuse(cache, display, fmt, keys[fmt], previous / rel, out)
        if kept is not None:  # the previous render's file: its writer's inputs are unchanged
            progress(display, f"{fmt} (unchanged)")
            warnings += kept
            files.append(RenderedFile(display, fmt, rel))
            timings.append((display, f"{fmt} (unchanged)", time.perf_counter() - t0))
            continue
        progress(display, fmt)
        written = WRITERS[fmt](job, config.formats[fmt], out)  # type: ignore[operator]
        if cache is not None:
            remember(cache, display, fmt, keys[fmt], out, written)
        warnings += written
        files.append(RenderedFile(display, fmt, rel))
        timings.append((display, fmt, time.perf_counter() - t0))
    return files, warnings, timings


def _output_keys(plan: _Plan, work: Path, *, skip: frozenset[Path]) -> dict[str, str]:
    """Each output's :func:`.reuse.output_key` (the document's folder read once)."""
    resources = folder_digest(plan.path.parent, skip)
    return {fmt: output_key(fmt, plan.config.formats[fmt].model_dump(mode="json"), work, resources) for fmt in plan.outputs}


def _work(plan: _Plan) -> int:
    """A document's share of the execution: its code cells and inline expressions."""
    return sum(isinstance(b, CodeCell) for b in plan.doc.blocks) + len(plan.doc.inlines)


def _carry_over(previous: Path, staging: Path) -> None:
    """Hard-link (or copy) files of the previous output that this render did not produce."""
    for dirpath, _, filenames in os.walk(previous):
        rel_dir = Path(dirpath).relative_to(previous)
        for name in filenames:
            target = staging / rel_dir / name
            if target.exists() or any(p.is_file() for p in target.parents if p.is_relative_to(staging)):
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(Path(dirpath) / name, target)
            except OSError:
                shutil.copy2(Path(dirpath) / name, target)


def _swap(staging: Path, output: Path, scratch: Path) -> None:
    if output.exists():
        _carry_over(output, staging)
        old = scratch / "previous"
        os.replace(output, old)
        try:
            os.replace(staging, output)
        except OSError:
            os.replace(old, output)
            raise
    else:
        os.replace(staging, output)


def render_project(
    project_dir: str | Path = ".",
    *,
    to: Iterable[str] = ("html", "pdf", "docx", "slides"),
    output_dir: str | Path | None = None,
    progress: Progress | None = None,
    jobs: int | None = None,
    cache: ExecutionCache | None = None,
    params: Params | None = None,
    select: Callable[[Path], bool] | None = None,
    preload: tuple[str, ...] = (),
    prepare: str | None = None,
    alongside: Callable[[], None] | None = None,
) -> RenderReport:
    """Render every document of a Quarto project into ``output_dir``, all or nothing.

    Parameters
    ----------
    project_dir
        Directory holding ``_quarto.yml`` (optional: without it every ``.qmd`` is rendered
        to HTML).
    to
        Outputs wanted: ``html``, ``pdf`` (Typst), ``docx``, ``slides`` (reveal.js), or the
        Quarto names ``typst`` / ``revealjs``.  A document is rendered to the formats it
        declares that are also in ``to``.
    output_dir
        Where the outputs go, relative to ``project_dir``; ``None`` = ``project.output-dir``
        of ``_quarto.yml`` (default ``_output``).  The layout below it mirrors the sources
        (``report/study.qmd`` -> ``_output/report/study.html``), as in Quarto.
    progress
        ``progress(document, step)`` is called at each step (check, execute, each cell or
        ``cached``, each format, swap); the CLI shows it.  With ``jobs`` > 1 it is called
        from worker threads.
    jobs
        Documents executed and written at the same time (default ``min(2, CPU count)``).
    select
        Render only the documents for which ``select(path)`` is true (e.g. the languages a
        study asks for); all by default.
    cache
        Reuse the cached cell outputs of unchanged documents (see :mod:`.execute`): give one
        only when ``params`` name everything else the outputs depend on.  None: execute all.
    params
        Values for each document's ``parameters`` cell (Quarto's ``-P name:value``).
    preload
        Modules the documents import: when a document is to be executed, its kernel is forked
        from a server that has imported them (:mod:`.forkkernel`), not paid for per document.
    prepare
        ``"module:function"`` that server calls with ``params`` before it forks the kernels (:func:`.execute.start_kernels`).
    alongside
        Work of the caller done in a thread while the documents are executed, under this
        render's output lock (e.g. writing the analysis's files); an exception it raises is
        raised here, after the documents, and the output is then not replaced.

    Returns
    -------
    RenderReport
        The files written, pandoc/typst warnings, the elapsed time and each step's time.

    Raises
    ------
    RenderError
        On the first document that cannot be rendered (outside the subset, failing cell,
        unresolved reference, writer error) or when another render holds the lock.  The
        previous output directory is then unchanged.
    """
    started = time.perf_counter()
    root = Path(project_dir).resolve()
    project = load_project(root)
    out = (root / (output_dir if output_dir is not None else project.output_dir)).resolve()
    formats = requested_formats(to)
    report = progress or (lambda document, step: None)
    documents = [d for d in discover_documents(project, out) if select is None or select(d)]
    if not documents:
        raise RenderError([SubsetProblem(display_path(root, None), None, "no .qmd document to render")])
    lock = acquire_output_lock(out)
    beside = Alongside(alongside)
    try:
        scratch = Path(tempfile.mkdtemp(prefix=".render-", dir=out.parent))
        try:
            staging, build = scratch / "output", scratch / "build"
            staging.mkdir()
            build.mkdir()
            claimed: dict[Path, str] = {}
            plans = [p for doc in documents if (p := _plan_document(doc, project, formats, progress=report, claimed=claimed))]
            if any(needs_kernel(p.doc, p.config.meta, cache=cache, params=params) for p in plans):
                start_kernels(preload, prepare=prepare, params=params)

            def build_one(plan: _Plan) -> tuple[list[RenderedFile], list[str], list[tuple[str, str, float]]]:
                return _render_document(plan, staging=staging, build=build, progress=report, previous=out, cache=cache,
                                        params=params)

            workers = max(1, min(len(plans), jobs if jobs is not None else min(2, os.cpu_count() or 1)))
            files: list[RenderedFile] = []
            warnings: list[str] = []
            timings: list[tuple[str, str, float]] = []
            for f, w, t in run_longest_first(plans, build_one, work=_work, workers=workers):  # jobs.py
                files += f
                warnings += w
                timings += t
            beside.join()
            report(display_path(out, root), "swap")
            _swap(staging, out, scratch)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    finally:
        beside.join(raise_error=False)
        lock.release()
    final = tuple(RenderedFile(f.document, f.format, out / f.path) for f in files)
    return RenderReport(root, out, final, tuple(warnings), round(time.perf_counter() - started, 2), tuple(timings))
