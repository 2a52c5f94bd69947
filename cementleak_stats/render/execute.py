"""Run a document's ``{python}`` cells and inline expressions in one Jupyter kernel (nbclient).

Order (what Quarto's inline code means, replicated): cells and inline expressions run in
document order, in one kernel, so an inline `` `{python} n_events` `` sees the state left by
the cells *above* it and not by those below.  Each inline expression is a hidden cell of its
own (a few milliseconds each), which keeps that order exact and lets an error name the
expression's own line.  Hidden cells run with ``store_history=False``: they do not change
``_``, ``Out`` or the execution counts of the visible cells.

The value of an inline expression is formatted as Quarto does: a ``str`` as is (no quotes,
read as markdown), an object with ``_repr_markdown_`` through it, anything else through its
``text/plain`` repr — so a ``numpy.float64`` prints as ``np.float64(0.3)``, as it would in
Quarto; documents pass formatted strings.

The kernel is the interpreter that runs the renderer (``sys.executable`` through ipykernel),
not whatever ``python3`` kernelspec a user directory may hold, so documents import the same
``cementleak_stats``.  Its working directory is the document's directory, as in Quarto.

Parameters (Quarto's for the Jupyter engine, which are papermill's): a render may pass
``params`` (name -> value).  They are injected as a cell of assignments, written by papermill's
own translator as Quarto writes it, right after the first cell tagged ``parameters``
(``#| tags: [parameters]``), whose values are the defaults; a document without such a cell gets
none (as in Quarto).  ``cementleak report`` passes the study file and the results key this way
to both engines (``quarto render --execute-params``).

Execution cache (as Quarto's ``freeze``): with an :class:`ExecutionCache`, the outputs of a
successful execution are stored keyed by :func:`execution_key` - a hash of everything the
document runs and shows (its text with its includes, the engine's setup code) and the render's
parameters.  The next render with the same key reuses the outputs and starts no kernel; any
change executes the document again.  The caller gives the cache (and the bytes' signing: an
entry that another machine or account wrote, or that was edited, is refused and executed
again, with a notice) and passes it only when the parameters name everything else the outputs
depend on; the renderer itself knows nothing of results, data or signatures.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .config import DocumentMeta
from .parse import CodeCell, InlineExpr, MdLine, Origin, ParsedDocument
from .problems import RenderError, SubsetProblem

#: mime type of the text an inline expression hands back
INLINE_MIME = "text/x-cementleak-inline"
#: the tag of the cell whose values a render's parameters replace (Quarto's, papermill's)
PARAMETERS_TAG = "parameters"
#: bumped when the cached form or the engine's execution changes
_CACHE_FORMAT = 3
_KERNEL_NAME = "cementleak-python"
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_CELL_LINE = re.compile(r"Cell In\[\d+\], line (\d+)")

_SETUP = """\
def _cementleak_setup():
    import types
    from IPython import get_ipython
    from IPython.display import display

    def emit(value):
        if isinstance(value, str):
            text = value
        else:
            data, _ = get_ipython().display_formatter.format(value)
            text = data.get("text/markdown") or data.get("text/plain", "")
        display({{{MIME!r}: text}}, raw=True)

    def figsize(width, height):
        try:
            import matplotlib
        except ImportError:
            return
        matplotlib.rcParams["figure.figsize"] = (width, height)

    try:
        import matplotlib
    except ImportError:
        pass
    else:
        get_ipython().run_line_magic("matplotlib", "inline")
        from matplotlib_inline.backend_inline import set_matplotlib_formats
        set_matplotlib_formats("png")
        matplotlib.rcParams.update({{"figure.figsize": ({W}, {H}), "figure.dpi": {DPI}, "savefig.dpi": {DPI}}})
    return types.SimpleNamespace(emit=emit, figsize=figsize)

_cementleak = _cementleak_setup()
del _cementleak_setup
"""


@dataclass(frozen=True)
class ExecutionResult:
    """Outputs (nbformat dicts) of each executed cell by cell index, and each inline value."""

    cells: dict[int, tuple[dict[str, Any], ...]]
    inlines: dict[int, str]


@dataclass(frozen=True)
class ExecutionCache:
    """Where executed outputs are kept between renders; given by the caller (module docstring).

    ``read(path)`` returns an entry's bytes; it raises FileNotFoundError when there is none and
    ValueError (saying why) when the entry must not be used.  ``write(path, body)`` stores an
    entry, or quietly does not.
    """

    directory: Path
    read: Callable[[Path], bytes]
    write: Callable[[Path, bytes], None]


Params = Mapping[str, Any]


@dataclass(frozen=True)
class _Step:
    source: str
    kind: str  # "setup" | "params" | "cell" | "inline" | "hidden"
    cell: CodeCell | None = None
    inline: InlineExpr | None = None


def _effective(value: bool | None, default: bool) -> bool:
    return default if value is None else value


def injected_parameters(params: Params) -> str:
    """The cell that sets ``params``, as Quarto writes it: papermill's translator for Python
    (``# Injected Parameters`` then one assignment a line)."""
    from papermill.translators import translate_parameters  # imported only when a kernel runs with parameters

    return translate_parameters("python3", "python", dict(params), "Injected Parameters")


def _steps(doc: ParsedDocument, meta: DocumentMeta, params: Params | None = None) -> Iterator[_Step]:
    """What the kernel runs, in order.  The injected parameters (a ``params`` step whose source
    is filled in by :func:`execute_document`: the key hashes the values, not papermill's text) follow
    the first cell tagged ``parameters``."""
    yield _Step(_SETUP.format(MIME=INLINE_MIME, W=meta.fig_width, H=meta.fig_height, DPI=meta.fig_dpi), "setup")
    injected = not params
    for block in doc.blocks:
        if isinstance(block, CodeCell):
            if not _effective(block.options.eval, meta.execute.eval):
                continue
            o = block.options
            sized = o.fig_width is not None or o.fig_height is not None
            if sized:
                yield _Step(f"_cementleak.figsize({o.fig_width or meta.fig_width}, {o.fig_height or meta.fig_height})", "hidden")
            yield _Step(block.source, "cell", cell=block)
            if not injected and PARAMETERS_TAG in o.tags:
                yield _Step("", "params")
                injected = True
            if sized:
                yield _Step(f"_cementleak.figsize({meta.fig_width}, {meta.fig_height})", "hidden")
        elif isinstance(block, MdLine):
            for _, _, idx in block.inlines:
                expr = doc.inlines[idx]
                yield _Step(f"_cementleak.emit((\n{expr.code}\n))", "inline", inline=expr)


def _kernel_manager(kernel_dir: Path) -> Any:
    # the Jupyter stack is imported when a kernel is started: a render whose documents are all
    # cached (execute_document) does not pay for it
    from ipykernel.kernelspec import get_kernel_dict
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import AsyncKernelManager

    from . import forkkernel

    spec_dir = kernel_dir / _KERNEL_NAME
    spec_dir.mkdir(parents=True, exist_ok=True)
    (spec_dir / "kernel.json").write_text(json.dumps(get_kernel_dict()), encoding="utf-8")
    ksm = KernelSpecManager(kernel_dirs=[str(kernel_dir)])
    # IPC sockets in the scratch directory: local only, and no "running over TCP" warning
    km = AsyncKernelManager(kernel_name=_KERNEL_NAME, kernel_spec_manager=ksm, transport="ipc", ip=str(kernel_dir / "ipc"))
    if forkkernel.available():  # a new process forked from the warm server (forkkernel.py), not a new interpreter
        km.kernel_id = str(uuid.uuid4())
        km.provisioner = forkkernel.ForkProvisioner(kernel_id=km.kernel_id, kernel_spec=km.kernel_spec, parent=km)
    return km


def _failure(step: _Step, ename: str, evalue: str, traceback: str) -> RenderError:
    tb = _ANSI.sub("", traceback)
    if step.inline is not None:
        o: Origin = step.inline.origin
        rule = f"inline expression `{step.inline.code}` failed: {ename}: {evalue}"
        return RenderError([SubsetProblem(o.file, o.line, rule)], details=tb)
    assert step.cell is not None
    m = _CELL_LINE.search(tb)
    line = step.cell.origin.line + int(m.group(1)) if m else step.cell.origin.line
    label = f" '{step.cell.options.label}'" if step.cell.options.label else ""
    rule = f"cell{label} (starting at line {step.cell.origin.line}) failed: {ename}: {evalue}"
    return RenderError([SubsetProblem(step.cell.origin.file, line, rule)], details=tb)


def execution_key(doc: ParsedDocument, meta: DocumentMeta, params: Params | None = None) -> str:
    """The execution cache key of ``doc`` rendered with ``params``.

    SHA-256 over: the cache format, the Python version, the document's path, the parameters,
    every line and cell of the document with its includes (as parsed), and the code the engine
    runs (setup with the figure size, inline expressions).
    """
    h = hashlib.sha256()
    head = {"format": _CACHE_FORMAT, "python": sys.version, "path": str(doc.path), "params": dict(params or {})}
    h.update(json.dumps(head, sort_keys=True, default=str).encode())
    for block in doc.blocks:
        text = block.source if isinstance(block, CodeCell) else block.text
        h.update(b"\x00" + type(block).__name__.encode() + b"\x00" + text.encode())
    for step in _steps(doc, meta, params):
        h.update(b"\x01" + step.kind.encode() + b"\x00" + step.source.encode())
    return h.hexdigest()[:32]


def _load(cache: ExecutionCache, path: Path, on_step: Callable[[str], None] | None) -> ExecutionResult | None:
    """The cached outputs, or None (absent, or refused by the cache's reader: execute again);
    a present entry that is refused gets a one-line notice."""
    try:
        data = json.loads(cache.read(path))
        return ExecutionResult(cells={int(k): tuple(v) for k, v in data["cells"].items()},
                               inlines={int(k): v for k, v in data["inlines"].items()})
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        if on_step is not None:
            on_step(f"cache entry ignored ({exc}); executing")
        return None


def _store(cache: ExecutionCache, path: Path, result: ExecutionResult) -> None:
    body = json.dumps({"cells": {str(k): list(v) for k, v in result.cells.items()},
                       "inlines": {str(k): v for k, v in result.inlines.items()}})
    cache.write(path, body.encode("utf-8"))


def execute_document(
    doc: ParsedDocument,
    meta: DocumentMeta,
    *,
    on_step: Callable[[str], None] | None = None,
    startup_timeout: int = 120,
    cache: ExecutionCache | None = None,
    params: Params | None = None,
) -> ExecutionResult:
    """Execute ``doc`` in a fresh kernel (or reuse its cached outputs); raise
    :class:`RenderError` at the first failure.

    Parameters
    ----------
    on_step
        Called with a short description before each visible cell (``"cached"`` on a hit).
    cache
        The execution cache (module docstring); None = execute every time.
    params
        Values injected after the cell tagged ``parameters`` (module docstring).
    """
    steps = list(_steps(doc, meta, params))
    if all(s.kind in ("setup", "params") for s in steps):  # nothing to run, no kernel (Quarto's markdown engine)
        return ExecutionResult(cells={}, inlines={})
    entry = None
    if cache is not None:
        entry = _entry(cache, doc, meta, params)
        cached = _load(cache, entry, on_step)
        if cached is not None:
            if on_step is not None:
                on_step("cached")
            return cached
    if params:
        source = injected_parameters(params)
        steps = [_Step(source, s.kind) if s.kind == "params" else s for s in steps]
    result = _execute(doc, steps, on_step, startup_timeout)
    if cache is not None and entry is not None:
        for old in entry.parent.glob(f"{_doc_prefix(doc)}-*.json"):  # one entry per document, as Quarto's freeze
            old.unlink(missing_ok=True)
        _store(cache, entry, result)
    return result


def _doc_prefix(doc: ParsedDocument) -> str:
    return hashlib.sha256(str(doc.path).encode()).hexdigest()[:12]


def _entry(cache: ExecutionCache, doc: ParsedDocument, meta: DocumentMeta, params: Params | None) -> Path:
    return Path(cache.directory) / f"{_doc_prefix(doc)}-{execution_key(doc, meta, params)}.json"


def needs_kernel(doc: ParsedDocument, meta: DocumentMeta, *, cache: ExecutionCache | None = None,
                 params: Params | None = None) -> bool:
    """Whether :func:`execute_document` would start a kernel: the document runs code and the
    cache has no entry for it (an entry present but refused also starts one, found only then)."""
    if all(s.kind in ("setup", "params") for s in _steps(doc, meta, params)):
        return False
    return cache is None or not _entry(cache, doc, meta, params).is_file()


def start_kernels(preload: tuple[str, ...] = (), *, prepare: str | None = None, params: Params | None = None) -> None:
    """Get ready to start kernels: the fork server (:mod:`.forkkernel`) begins importing the
    kernel's modules and ``preload`` in the background, and with ``params``, calls ``prepare``
    (``"module:function"``) with them once before it forks a kernel (:func:`.forkkernel.prepare`).
    Optional; nothing where fork is unavailable."""
    from . import forkkernel

    if forkkernel.available():
        forkkernel.start_server(preload)
        if prepare and params:
            forkkernel.prepare(prepare, dict(params))


def _execute(doc: ParsedDocument, steps: list[_Step], on_step: Callable[[str], None] | None,
             startup_timeout: int) -> ExecutionResult:
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(s.source) for s in steps]
    # the kernel's IPC sockets need a short path (a Unix socket path has at most 107 bytes)
    kernel_dir = Path(tempfile.mkdtemp(prefix="cementleak-kernel-"))
    try:
        return _run(doc, steps, nb, kernel_dir, on_step, startup_timeout)
    finally:
        shutil.rmtree(kernel_dir, ignore_errors=True)


def _run(doc: ParsedDocument, steps: list[_Step], nb: Any, kernel_dir: Path, on_step: Callable[[str], None] | None, startup_timeout: int) -> ExecutionResult:
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    client = NotebookClient(
        nb,
        km=_kernel_manager(kernel_dir),
        timeout=None,
        startup_timeout=startup_timeout,
        allow_errors=False,
        resources={"metadata": {"path": str(doc.path.parent)}},
    )
    cells: dict[int, tuple[dict[str, Any], ...]] = {}
    inlines: dict[int, str] = {}
    n_visible = sum(1 for s in steps if s.kind == "cell")
    done = 0
    with client.setup_kernel(cleanup_kc=True):
        for i, (step, nb_cell) in enumerate(zip(steps, nb.cells)):
            if step.kind == "cell" and on_step is not None:
                done += 1
                assert step.cell is not None
                on_step(f"cell {done}/{n_visible}" + (f" {step.cell.options.label}" if step.cell.options.label else ""))
            try:
                client.execute_cell(nb_cell, i, store_history=step.kind == "cell")
            except CellExecutionError as exc:
                if step.kind == "params":
                    raise RenderError([SubsetProblem(doc.display, None, f"the injected parameters failed: {exc.ename}: {exc.evalue}")], details=str(exc)) from None
                if step.kind in ("setup", "hidden"):
                    raise RenderError([SubsetProblem(doc.display, None, f"the engine's setup code failed: {exc.ename}: {exc.evalue}")], details=str(exc)) from None
                raise _failure(step, exc.ename, exc.evalue, exc.traceback) from None
            except (CellTimeoutError, DeadKernelError) as exc:
                where = step.cell.origin if step.cell else step.inline.origin if step.inline else Origin(doc.display, 1)
                raise RenderError([SubsetProblem(where.file, where.line, f"the kernel stopped: {exc}")]) from None
            outputs = tuple(dict(o) for o in nb_cell.get("outputs", []))
            if step.cell is not None:
                cells[step.cell.index] = outputs
            elif step.inline is not None:
                texts = [o["data"][INLINE_MIME] for o in outputs if o.get("output_type") == "display_data" and INLINE_MIME in o.get("data", {})]
                inlines[step.inline.index] = texts[-1] if texts else ""
    return ExecutionResult(cells=cells, inlines=inlines)
