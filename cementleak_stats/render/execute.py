"""Run a document's ``{python}`` cells and inline expressions in one Jupyter kernel (nbclient).

Order (what Quarto's inline code means, replicated): cells and inline expressions run in
document order, in one kernel, so an inline `` `{python} n_events` `` sees the state left by
the cells *above* it and not by those below.  Each inline expression is a hidden cell of its
own or, for the expressions between two cells, one hidden cell for all of them (in their order:
the state they see is the same, and each kernel round trip costs milliseconds; the report's
main documents have 129 and 144 of them, in 29 runs between cells each).  When such a cell fails, its expressions
run again one cell each, so the error names the failing expression's own line.  Hidden cells
run with ``store_history=False``: they do not change ``_``, ``Out`` or the execution counts of
the visible cells.

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
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .config import DocumentMeta
from .parse import CodeCell, Origin, ParsedDocument
from .problems import RenderError, SubsetProblem
from .steps import INLINE_MIME, INLINES_MIME, Params, Step, injected_parameters, kernel_steps, one_inline

#: bumped when the cached form or the engine's execution changes
_CACHE_FORMAT = 4
_KERNEL_NAME = "cementleak-python"
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_CELL_LINE = re.compile(r"Cell In\[\d+\], line (\d+)")

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


def _failure(step: Step, ename: str, evalue: str, traceback: str) -> RenderError:
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
    for step in kernel_steps(doc, meta, params):
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
    steps = list(kernel_steps(doc, meta, params))
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
        steps = [Step(source, s.kind) if s.kind == "params" else s for s in steps]
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
    if all(s.kind in ("setup", "params") for s in kernel_steps(doc, meta, params)):
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


def _execute(doc: ParsedDocument, steps: list[Step], on_step: Callable[[str], None] | None,
             startup_timeout: int) -> ExecutionResult:
    import nbformat

    nb = nbformat.from_dict({"nbformat": 4, "nbformat_minor": 5, "metadata": {},  # as new_notebook(), unchecked (_code_cell)
                             "cells": [_code_cell(s.source, i) for i, s in enumerate(steps)]})
    # the kernel's IPC sockets need a short path (a Unix socket path has at most 107 bytes)
    kernel_dir = Path(tempfile.mkdtemp(prefix="cementleak-kernel-"))
    try:
        return _run(doc, steps, nb, kernel_dir, on_step, startup_timeout)
    finally:
        shutil.rmtree(kernel_dir, ignore_errors=True)


def _code_cell(source: str, i: int) -> Any:
    """A notebook code cell, as ``nbformat.v4.new_code_cell`` makes it without its schema check
    (jsonschema: about a second for the report's documents; these cells are well formed by construction)."""
    import nbformat

    return nbformat.from_dict({"id": f"cell-{i}", "cell_type": "code", "metadata": {}, "execution_count": None,
                               "source": source, "outputs": []})


def _run(doc: ParsedDocument, steps: list[Step], nb: Any, kernel_dir: Path, on_step: Callable[[str], None] | None, startup_timeout: int) -> ExecutionResult:
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
                if step.kind == "inlines":  # again one expression a cell: the error names its own line
                    for expr in step.inlines:
                        one = one_inline(expr)
                        nb.cells.append(_code_cell(one.source, len(nb.cells)))
                        try:
                            client.execute_cell(nb.cells[-1], len(nb.cells) - 1, store_history=False)
                        except CellExecutionError as single:
                            raise _failure(one, single.ename, single.evalue, single.traceback) from None
                    raise _failure(one_inline(step.inlines[0]), exc.ename, exc.evalue, exc.traceback) from None
                if step.kind == "params":
                    raise RenderError([SubsetProblem(doc.display, None, f"the injected parameters failed: {exc.ename}: {exc.evalue}")], details=str(exc)) from None
                if step.kind in ("setup", "hidden"):
                    raise RenderError([SubsetProblem(doc.display, None, f"the engine's setup code failed: {exc.ename}: {exc.evalue}")], details=str(exc)) from None
                raise _failure(step, exc.ename, exc.evalue, exc.traceback) from None
            except (CellTimeoutError, DeadKernelError) as exc:
                where = step.cell.origin if step.cell else step.inline.origin if step.inline else step.inlines[0].origin if step.inlines else Origin(doc.display, 1)
                raise RenderError([SubsetProblem(where.file, where.line, f"the kernel stopped: {exc}")]) from None
            outputs = tuple(dict(o) for o in nb_cell.get("outputs", []))
            if step.cell is not None:
                cells[step.cell.index] = outputs
            elif step.inline is not None:
                texts = [o["data"][INLINE_MIME] for o in outputs if o.get("output_type") == "display_data" and INLINE_MIME in o.get("data", {})]
                inlines[step.inline.index] = texts[-1] if texts else ""
            elif step.inlines:
                many = [o["data"][INLINES_MIME] for o in outputs if o.get("output_type") == "display_data" and INLINES_MIME in o.get("data", {})]
                values = list(many[-1]) if many else []
                for k, expr in enumerate(step.inlines):
                    inlines[expr.index] = str(values[k]) if k < len(values) else ""
    return ExecutionResult(cells=cells, inlines=inlines)
