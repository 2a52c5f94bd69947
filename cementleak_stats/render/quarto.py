"""Render the project with the real Quarto CLI, into the same files as the built-in engine.

``cementleak report --engine quarto`` (or ``auto`` when a Quarto CLI is found) calls
:func:`render_with_quarto`.  What it guarantees, and how:

* **Each document in its own formats.**  ``quarto render`` of a project (no ``--to``)
  renders each document to exactly the formats its front matter lists; the ``format:``
  options of ``_quarto.yml`` are their defaults and add no format (Quarto's rule, which the
  built-in engine follows too).  Quarto renders a project's documents one after the other, so
  two runs go at a time (as the built-in engine's two workers), each on a copy of the project
  (hard links: no data is duplicated) whose ``_quarto.yml`` lists its share of the documents:
  Quarto's start-up, its Jupyter probes and its Sass build are paid once per run, and its own
  files (``.quarto/``, intermediate notebooks) stay out of the project.  For a subset of the
  formats (``--to``) the copy's front matter lists only those.
* **Executed once for all its formats.**  Quarto executes a document once per format; for a
  document with several formats the kernel is kept alive between them
  (``--execute-daemon``), and the document's ``load_report()`` returns the results it read
  for the first format, with each figure drawn once (:mod:`cementleak_stats.document`).  The
  kernels belong to this run (their transports live in a temporary ``XDG_RUNTIME_DIR``) and
  are stopped at its end.
* **The package's interpreter.**  ``QUARTO_PYTHON`` is this interpreter (``sys.executable``),
  and its ``python3`` Jupyter kernel is a kernelspec written for the run (first on
  ``JUPYTER_PATH``), so the cells import this ``cementleak_stats`` whatever kernels the user
  has installed.
* **Parameters, as the built-in engine passes them.**  ``params`` (the CLI's study file and
  results key) go to every document as Quarto's parameters (``--execute-params``, a YAML file,
  so that no value is re-read as a number); Quarto injects them after the document's
  ``parameters`` cell with papermill's translator, which must be installed in ``QUARTO_PYTHON``
  (a dependency of this package).
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
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ..fonts import cjk_font_dir
from .config import FORMAT_EXTENSIONS, ProjectConfig, normalize_formats, requested_formats
from .problems import RenderError, SubsetProblem, display_path
from .lock import acquire_output_lock
from .project import Progress, RenderedFile, RenderReport, _swap, discover_documents

#: environment variable naming the Quarto executable (else ``quarto`` on ``PATH``)
QUARTO_ENV = "CEMENTLEAK_QUARTO"
#: a kernel kept alive between the formats of a document exits after this long unused
DAEMON_SECONDS = 60
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
#: Quarto's line when it starts a document of a project: "[2/8] report/cox.qmd"
_STARTED = re.compile(r"^\[\s*\d+/\d+\]\s+(\S+)")
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


#: a document's front matter (the YAML between its first two ``---`` lines)
_FRONT = re.compile(r"---[ \t]*\r?\n(.*?\r?\n)(?:---|\.\.\.)[ \t]*(?:\r?\n|$)", re.S)


def _front_matter(path: Path) -> dict:
    m = _FRONT.match(path.read_text(encoding="utf-8"))
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


def _run(command: list[str], *, cwd: Path, env: dict[str, str], source: Path, root: Path,
         progress: Progress, name: str | None = None) -> dict[str, float]:
    """Run Quarto in the copy ``source`` of the project ``root``; report each document it
    starts; return the seconds each took.  A failure raises :class:`RenderError` with the end
    of Quarto's log (the copy's paths written as the project's)."""
    try:
        proc = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace")
    except OSError as exc:
        raise RenderError([SubsetProblem(command[0], None, f"cannot run Quarto: {exc.strerror or exc}", f"install Quarto, or name it with {QUARTO_ENV}, or use --engine builtin")]) from None
    assert proc.stdout is not None
    lines: list[str] = []
    seconds: dict[str, float] = {}
    current, t0 = None, time.perf_counter()
    for raw in proc.stdout:
        line = _ANSI.sub("", raw.rstrip()).replace(str(source), str(root))
        lines.append(line)
        m = _STARTED.match(line)
        if m:
            now = time.perf_counter()
            if current:
                seconds[current] = now - t0
            current, t0 = m.group(1), now
            progress(current, "quarto render")
    code = proc.wait()
    if current:
        seconds[current] = time.perf_counter() - t0
    if code != 0:
        errors = [line for line in lines if line.startswith("ERROR") or "Error:" in line]
        reason = errors[-1] if errors else f"exit code {code}"
        raise RenderError(
            [SubsetProblem(current or name or display_path(root, None), None, f"quarto render failed (exit code {code}): {reason[:300]}", "see Quarto's log above; --engine builtin renders without Quarto")],
            details="\n".join(lines[-60:]),
        )
    return seconds


@dataclass(frozen=True)
class _Unit:
    """Formats of one document that one Quarto run renders."""

    document: _Document
    formats: tuple[str, ...]

    @property
    def weight(self) -> float:
        """Work, in audit documents (measured: the report in HTML, PDF and Word takes about five
        times as long as an audit document in HTML; Quarto's filters run once per format on the
        largest document, and later formats reuse the kept-alive kernel)."""
        return 1 + 2 * (len(self.formats) - 1)


def _units(docs: list[_Document], formats: dict[Path, list[str]]) -> list[_Unit]:
    """What the runs render: each document in the wanted formats it lists."""
    return [_Unit(d, tuple(formats[d.path])) for d in docs]


def _groups(units: list[_Unit], n: int) -> list[list[_Unit]]:
    """``n`` groups of about equal work: the heaviest first, each to the lightest group."""
    groups: list[list[_Unit]] = [[] for _ in range(n)]
    load = [0.0] * n
    for u in sorted(units, key=lambda u: -u.weight):
        i = load.index(min(load))
        groups[i].append(u)
        load[i] += u.weight
    return [g for g in groups if g]


def _copy_project(root: Path, dest: Path, units: list[_Unit], settings: dict, skip: set[Path]) -> None:
    """A copy of the project in ``dest`` whose ``_quarto.yml`` renders the units' documents,
    each only in the unit's formats (the copy's front matter lists just those).

    Files are hard links (no data is duplicated; Quarto writes new files and never edits a
    source; a changed file is written anew); hidden entries and ``skip`` (the output and
    scratch directories) are left out.
    """
    def ignore(folder: str, names: list[str]) -> set[str]:
        return {n for n in names if n.startswith(".") or Path(folder, n).resolve() in skip}

    def link(src: str, dst: str) -> None:
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)

    def rewrite(path: Path, text: str) -> None:
        path.unlink(missing_ok=True)
        path.write_text(text, encoding="utf-8")

    shutil.copytree(root, dest, ignore=ignore, copy_function=link, symlinks=True)
    config = dict(settings)
    config["project"] = {**(settings.get("project") or {}), "render": [u.document.path.relative_to(root).as_posix() for u in units]}
    rewrite(dest / "_quarto.yml", yaml.safe_dump(config, allow_unicode=True, sort_keys=False))
    for u in units:
        if list(u.formats) != list(u.document.outputs):
            copy = dest / u.document.path.relative_to(root)
            text = copy.read_text(encoding="utf-8")
            m = _FRONT.match(text)
            front = _front_matter(copy)
            front["format"] = {f: o for f, o in _formats(front.get("format")).items() if f in u.formats}
            rewrite(copy, "---\n" + yaml.safe_dump(front, allow_unicode=True, sort_keys=False) + "---\n" + (text[m.end():] if m else text))


def render_with_quarto(
    project_dir: str | Path = ".",
    *,
    quarto: str,
    to: Iterable[str] = ("html", "pdf", "docx", "slides"),
    progress: Progress | None = None,
    jobs: int | None = None,
    select: Callable[[Path], bool] | None = None,
    params: Mapping[str, Any] | None = None,
) -> RenderReport:
    """Render the project with the Quarto CLI ``quarto`` into its ``output-dir``, all or nothing.

    ``to`` and ``params`` as for :func:`~.project.render_project`: a document is rendered to the
    formats it lists that are also in ``to``; ``params`` are Quarto's parameters.  Returns the files written (the same as the built-in
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
    lock = acquire_output_lock(out)
    try:
        scratch = Path(tempfile.mkdtemp(prefix=".render-", dir=out.parent))
        # short: a Unix socket's path has at most 107 bytes
        runtime = Path(tempfile.mkdtemp(prefix="cl-quarto-"))
        try:
            staging = scratch / "output"
            given = []
            if params:
                # every value quoted: Quarto reads YAML 1.2, where a key such as 0123e456 is a number
                text = yaml.safe_dump(dict(params), allow_unicode=True, default_style='"')
                (scratch / "params.yml").write_text(text, encoding="utf-8")
                given = ["--execute-params", str(scratch / "params.yml")]
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
            formats = {d.path: [f for f in d.outputs if f in wanted] for d in todo}
            workers = max(1, min(len(todo), jobs if jobs is not None else min(2, os.cpu_count() or 1)))
            seconds: dict[str, float] = {}

            def render_group(i: int, group: list[_Unit]) -> None:
                """One Quarto run renders the group's documents in their formats, in a copy of the
                project (its own .quarto/ and intermediate files: runs at the same time do not meet)."""
                source, output = scratch / f"source-{i}", scratch / f"output-{i}"
                _copy_project(root, source, group, settings, skip={out, scratch})
                command = [quarto, "render", str(source), "--output-dir", str(output), *given]
                # Quarto executes a document once per format: with the kernel kept alive between
                # them, the document reads the results and draws each figure once
                daemon = ["--execute-daemon", str(DAEMON_SECONDS)] if any(len(u.formats) > 1 for u in group) else []
                run = {"cwd": source, "env": env, "source": source, "root": root, "progress": report,
                       "name": group[0].document.display if len(group) == 1 else None}
                if len(group) == 1:  # Quarto names the documents of a run only when there are several
                    report(group[0].document.display, f"quarto render ({', '.join(group[0].formats)})")
                t0 = time.perf_counter()
                try:
                    times = _run(command + daemon, **run)
                except RenderError as exc:
                    # Quarto restarts a kept-alive kernel when a module it imported changed on
                    # disk meanwhile, and may then lose the connection: run it again without
                    if not daemon or not _KERNEL_LOST.search(exc.details):
                        raise
                    report(exc.problems[0].file, "quarto render again, one kernel per format")
                    times = _run(command, **run)
                if len(group) == 1:
                    times = {group[0].document.display: time.perf_counter() - t0}
                for name, sec in times.items():
                    seconds[name] = seconds.get(name, 0.0) + sec
                for u in group:
                    for f in u.formats:
                        made = output / u.document.outputs[f]
                        if made.is_file():
                            (staging / u.document.outputs[f]).parent.mkdir(parents=True, exist_ok=True)
                            os.replace(made, staging / u.document.outputs[f])

            staging.mkdir()
            with ThreadPoolExecutor(max_workers=workers) as pool:
                futures = [pool.submit(render_group, i, g) for i, g in enumerate(_groups(_units(todo, formats), workers))]
                try:
                    for future in futures:
                        future.result()
                except BaseException:
                    pool.shutdown(wait=True, cancel_futures=True)
                    raise
            timings = tuple((d.display, "quarto render", seconds.get(d.display, 0.0)) for d in todo)
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
