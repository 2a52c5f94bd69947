"""Render the project with the real Quarto CLI, into the same files as the built-in engine.

``cementleak report --engine quarto`` (or ``auto`` when a Quarto CLI is found) calls
:func:`render_with_quarto`.  What it guarantees, and how:

* **Each document in its own formats, in one Quarto run.**  ``quarto render FILE`` (no
  ``--to``) renders a document to exactly the formats its front matter lists; the
  ``format:`` options of ``_quarto.yml`` are their defaults and add no format (Quarto's rule,
  which the built-in engine follows too).  Documents run two at a time, as in the built-in
  engine (Quarto renders a project's documents one after the other); ``--to`` a subset of
  the formats passes that subset.
* **Executed once for all its formats.**  Quarto executes a document once per format; for a
  document with several formats the kernel is kept alive between them
  (``--execute-daemon``), and the document's ``load_report()`` returns the results it read
  for the first format, with each figure drawn once (:mod:`cementleak_stats.document`).  The
  kernels belong to this run (their transports live in a temporary ``XDG_RUNTIME_DIR``) and
  are stopped at its end.
* **The package's interpreter.**  ``QUARTO_PYTHON`` is this interpreter (``sys.executable``),
  and its ``python3`` Jupyter kernel is a kernelspec written for the run (first on
  ``JUPYTER_PATH``), so the cells import this ``cementleak_stats`` whatever kernels the user
  has installed.  The study and the results key reach the documents through
  ``CEMENTLEAK_STUDY`` and ``CEMENTLEAK_RESULTS_KEY`` in the environment (set by the CLI).
* **All or nothing.**  Quarto writes into a temporary output directory (``--output-dir``);
  only when every document succeeded and every expected file is there does it replace the
  previous output directory (the built-in engine's lock and swap, :mod:`.project`).  A
  failing ``quarto`` is a :class:`RenderError` with the end of Quarto's log, never a
  traceback.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import yaml
from filelock import FileLock, Timeout

from ..fonts import cjk_font_dir
from .config import FORMAT_EXTENSIONS, ProjectConfig, normalize_formats, requested_formats
from .problems import RenderError, SubsetProblem, display_path
from .project import Progress, RenderedFile, RenderReport, _swap, discover_documents, lock_path

#: environment variable naming the Quarto executable (else ``quarto`` on ``PATH``)
QUARTO_ENV = "CEMENTLEAK_QUARTO"
#: a kernel kept alive between the formats of a document exits after this long unused
DAEMON_SECONDS = 120
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_KERNEL_LOST = re.compile(r"ConnectionReset|ConnectionRefused|Connection reset|Unable to start Jupyter kernel")


def find_quarto() -> str | None:
    """The Quarto CLI to use: ``$CEMENTLEAK_QUARTO`` if set, else ``quarto`` on ``PATH``."""
    named = os.environ.get(QUARTO_ENV)
    if named:
        return named if shutil.which(named) else None
    return shutil.which("quarto")


@dataclass(frozen=True)
class _Document:
    path: Path
    display: str
    #: Quarto format -> output path relative to the output directory
    outputs: dict[str, Path]


def _front_matter(path: Path) -> dict:
    text = path.read_text(encoding="utf-8")
    m = re.match(r"---[ \t]*\r?\n(.*?)\r?\n(?:---|\.\.\.)[ \t]*(?:\r?\n|$)", text, re.S)
    data = yaml.safe_load(m.group(1)) if m else None
    return data if isinstance(data, dict) else {}


def _formats(options: object) -> dict[str, dict]:
    formats = normalize_formats(options)
    return {k: (v if isinstance(v, dict) else {}) for k, v in formats.items()} if isinstance(formats, dict) else {}


def _plan(root: Path, settings: dict, out: Path) -> list[_Document]:
    """Each document and the file each of its formats writes (Quarto's rules, read leniently:
    the built-in engine's subset is not required)."""
    project = settings.get("project") or {}
    config = ProjectConfig(root=root, output_dir=str(out), render=tuple(project.get("render") or ()), metadata={})
    project_formats = _formats(settings.get("format"))
    docs = []
    for path in discover_documents(config, out):
        own = _formats(_front_matter(path).get("format"))
        names = list(own) or list(project_formats) or ["html"]
        rel = path.relative_to(root)
        outputs = {}
        for name in names:
            if name not in FORMAT_EXTENSIONS:
                raise RenderError([SubsetProblem(display_path(path, root), None, f"format '{name}' is not one that cementleak reports (html, typst, docx, revealjs)")])
            name_opt = {**project_formats.get(name, {}), **own.get(name, {})}.get("output-file")
            outputs[name] = rel.parent / (name_opt or rel.stem + FORMAT_EXTENSIONS[name])
        docs.append(_Document(path, display_path(path, root), outputs))
    return docs


def _kernel_dir(dest: Path) -> Path:
    """A Jupyter data directory whose ``python3`` kernel is this interpreter."""
    from ipykernel.kernelspec import write_kernel_spec

    write_kernel_spec(dest / "kernels" / "python3", overrides={"display_name": "Python 3 (cementleak)"})
    return dest


def _stop_kernels(transports: Path) -> None:
    """Ask each kernel Quarto kept alive in this run to exit now (best effort: one that does
    not answer exits by itself ``DAEMON_SECONDS`` after its last use).

    Quarto's keep-alive server (``resources/jupyter/jupyter.py``) reads one JSON line per
    connection; ``{"command": "abort"}`` with the transport's secret makes it exit.  The
    transport is a Unix socket, or a file with the TCP port and secret.
    """
    if not transports.is_dir():
        return
    for path in transports.iterdir():
        try:
            if path.is_socket():
                conn, secret = socket.socket(socket.AF_UNIX), ""
                conn.settimeout(5)
                conn.connect(str(path))
            else:
                info = json.loads(path.read_text(encoding="utf-8"))
                conn, secret = socket.create_connection(("127.0.0.1", int(info["port"])), timeout=5), info["secret"]
            with conn:
                conn.sendall((json.dumps({"command": "abort", "secret": secret, "options": {}}) + "\n").encode())
        except (OSError, ValueError, KeyError):
            continue


def _run(command: list[str], *, cwd: Path, env: dict[str, str], root: Path) -> None:
    """Run Quarto; a failure raises :class:`RenderError` with the end of its log."""
    try:
        proc = subprocess.run(command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace", check=False)
    except OSError as exc:
        raise RenderError([SubsetProblem(command[0], None, f"cannot run Quarto: {exc.strerror or exc}", f"install Quarto, or name it with {QUARTO_ENV}, or use --engine builtin")]) from None
    if proc.returncode != 0:
        lines = [_ANSI.sub("", line) for line in proc.stdout.splitlines()]
        errors = [line for line in lines if line.startswith("ERROR") or "Error:" in line]
        reason = errors[-1] if errors else f"exit code {proc.returncode}"
        document = display_path(Path(command[2]), root)
        raise RenderError(
            [SubsetProblem(document, None, f"quarto render failed (exit code {proc.returncode}): {reason[:300]}", "see Quarto's log above; --engine builtin renders without Quarto")],
            details="\n".join(lines[-60:]),
        )


def render_with_quarto(
    project_dir: str | Path = ".",
    *,
    quarto: str,
    to: Iterable[str] = ("html", "pdf", "docx", "slides"),
    progress: Progress | None = None,
    jobs: int | None = None,
    select: Callable[[Path], bool] | None = None,
) -> RenderReport:
    """Render the project with the Quarto CLI ``quarto`` into its ``output-dir``, all or nothing.

    ``to`` as for :func:`~.project.render_project`: a document is rendered to the formats it
    lists that are also in ``to``.  Returns the files written (the same as the built-in
    engine's) and Quarto's elapsed time; raises :class:`RenderError` when Quarto fails or does
    not write an expected file, or when another render holds the output directory's lock.
    """
    started = time.perf_counter()
    report = progress or (lambda document, step: None)
    root = Path(project_dir).resolve()
    settings = yaml.safe_load((root / "_quarto.yml").read_text(encoding="utf-8")) if (root / "_quarto.yml").exists() else {}
    settings = settings if isinstance(settings, dict) else {}
    out = (root / ((settings.get("project") or {}).get("output-dir") or "_output")).resolve()
    wanted = set(requested_formats(to))
    docs = [d for d in _plan(root, settings, out) if select is None or select(d.path)]
    out.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(lock_path(out)), timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise RenderError([SubsetProblem(str(out), None, f"another render is writing this output directory (lock {lock_path(out).name} is held)", "wait for it to finish, then run again")]) from None
    try:
        scratch = Path(tempfile.mkdtemp(prefix=".render-", dir=out.parent))
        # short: a Unix socket's path has at most 107 bytes
        runtime = Path(tempfile.mkdtemp(prefix="cl-quarto-"))
        try:
            staging = scratch / "output"
            env = {
                **os.environ,
                # Typst's extra font folders (the Chinese fonts of a document in Chinese)
                **({"TYPST_FONT_PATHS": str(font_dir)} if (font_dir := cjk_font_dir()) is not None else {}),
                "QUARTO_PYTHON": sys.executable,
                "JUPYTER_PATH": os.pathsep.join(filter(None, [str(_kernel_dir(scratch / "jupyter")), os.environ.get("JUPYTER_PATH")])),
                # kernels kept alive between formats are this run's alone (their sockets live here)
                "XDG_RUNTIME_DIR": str(runtime),
            }
            todo = [d for d in docs if set(d.outputs) & wanted]

            def render_one(d: _Document) -> float:
                formats = [f for f in d.outputs if f in wanted]
                to = [] if formats == list(d.outputs) else ["--to", ",".join(formats)]
                # Quarto executes a document once per format: in one kernel kept alive, the
                # document reads the results and draws its figures once (document.load_report)
                daemon = ["--execute-daemon", str(DAEMON_SECONDS)] if len(formats) > 1 else []
                report(d.display, f"quarto render ({', '.join(formats)})")
                t0 = time.perf_counter()
                command = [quarto, "render", str(d.path), *to, "--output-dir", str(staging)]
                try:
                    _run(command + daemon, cwd=root, env=env, root=root)
                except RenderError as exc:
                    # Quarto restarts a kept-alive kernel when a module it imported changed on
                    # disk meanwhile, and may then lose the connection: run it once without
                    if not daemon or not _KERNEL_LOST.search(exc.details):
                        raise
                    report(d.display, "quarto render again, one kernel per format")
                    _run(command, cwd=root, env=env, root=root)
                return time.perf_counter() - t0

            # the document with the most formats first: it takes longest
            order = sorted(todo, key=lambda d: -len(d.outputs))
            workers = max(1, min(len(order), jobs if jobs is not None else min(2, os.cpu_count() or 1)))
            with ThreadPoolExecutor(max_workers=workers) as pool:
                try:
                    seconds = dict(zip((d.display for d in order), pool.map(render_one, order)))
                except BaseException:
                    pool.shutdown(wait=True, cancel_futures=True)
                    raise
            timings = tuple((d.display, "quarto render", seconds[d.display]) for d in todo)
            files = [RenderedFile(d.display, f, rel) for d in todo for f, rel in d.outputs.items() if f in wanted]
            missing = [str(f.path) for f in files if not (staging / f.path).is_file()]
            if missing:
                raise RenderError([SubsetProblem(display_path(root, None), None, f"quarto render did not write {', '.join(missing)}")])
            report(display_path(out, root), "swap")
            _swap(staging, out, scratch)
        finally:
            _stop_kernels(runtime / "jt")
            shutil.rmtree(runtime, ignore_errors=True)
            shutil.rmtree(scratch, ignore_errors=True)
    finally:
        lock.release()
    final = tuple(RenderedFile(f.document, f.format, out / f.path) for f in files)
    return RenderReport(root, out, final, (), round(time.perf_counter() - started, 2), timings)
