"""Kernels forked from the warm server (render/forkkernel.py) and the render's scheduling (render/jobs.py).

A forked kernel must be what a freshly launched one is: its own process (one per document), the
document's folder as working directory, the renderer's environment, modules the server imported
available without changing what a document shows; a kernel that dies is reported as before.
Documents are started longest first and their results come back in document order.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from cementleak_stats.render import RenderError, render_project
from cementleak_stats.render import forkkernel
from cementleak_stats.render.jobs import Alongside, run_longest_first

pytestmark = pytest.mark.skipif(not forkkernel.available(), reason="kernels are forked on POSIX only")

DOC = """---
title: "{name}"
format: html
---

```{{python}}
import os, sys
here = os.getcwd()
```

pid `{{python}} str(os.getpid())`; server `{{python}} str(os.getppid())`; cwd `{{python}} os.path.basename(here)`;
env `{{python}} os.environ.get("CEMENTLEAK_TEST_FORK", "unset")`; preloaded `{{python}} str("colorsys" in sys.modules)`;
argv `{{python}} os.path.basename(sys.argv[0])`; prepared `{{python}} "+".join(__import__("prepmod").CALLS) or "none"`.
"""

#: a module whose function the server calls once with the render's parameters (prepare=)
PREPARE = "CALLS = []\n\n\ndef prepare(**params):\n    CALLS.append(params['study'])\n"


def _values(html: str) -> dict[str, str]:
    import re

    return dict(re.findall(r"(pid|server|cwd|env|preloaded|argv|prepared)\s+([^;.\s]+(?:\.py)?)", html))


@pytest.mark.render
def test_each_document_runs_in_its_own_forked_kernel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd) -> None:
    (tmp_path / "_quarto.yml").write_text("project:\n  type: default\n", encoding="utf-8")
    for name in ("a", "b"):
        (tmp_path / "sub" / name).mkdir(parents=True)
        (tmp_path / "sub" / name / f"{name}.qmd").write_text(DOC.format(name=name), encoding="utf-8")
    monkeypatch.setenv("CEMENTLEAK_TEST_FORK", "seen")
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "prepmod.py").write_text(PREPARE, encoding="utf-8")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(tmp_path / "lib"), os.environ.get("PYTHONPATH")])))
    # a module the documents import, done once in the server; the first start fixes the preload,
    # so a server left running by an earlier test is replaced
    if forkkernel._server is not None:
        # ended by signal: a process this test process forked since (a figure worker of another
        # test) may hold a copy of the server's socket, so closing ours need not reach it
        forkkernel._server._sock.close()
        forkkernel._server.process.terminate()
        forkkernel._server.process.wait(timeout=30)
        forkkernel._server = None
    rep = render_project(tmp_path, to=["html"], preload=("colorsys",), prepare="prepmod:prepare", params={"study": "s"})
    got = {f.path.stem: _values(f.path.read_text(encoding="utf-8")) for f in rep.files}
    assert got["a"]["pid"] != got["b"]["pid"] and os.getpid() not in {int(v["pid"]) for v in got.values()}
    assert got["a"]["server"] == got["b"]["server"] == str(forkkernel._server.process.pid)
    assert (got["a"]["cwd"], got["b"]["cwd"]) == ("a", "b")  # the document's folder, as in Quarto
    assert all(v["env"] == "seen" and v["preloaded"] == "True" and v["argv"] == "ipykernel_launcher.py" for v in got.values()), got
    # prepared once, in the server, with the render's parameters, before it forked the kernels
    assert got["a"]["prepared"] == got["b"]["prepared"] == "s", got
    assert "Debugger warning" not in capfd.readouterr().err, "debugpy's warning about frozen modules is not the user's business"
    for v in got.values():  # every kernel has ended with its document
        with pytest.raises(ProcessLookupError):
            for _ in range(100):
                os.kill(int(v["pid"]), 0)
                time.sleep(0.05)


@pytest.mark.render
def test_a_kernel_that_dies_is_reported_at_its_line(tmp_path: Path) -> None:
    (tmp_path / "_quarto.yml").write_text("project:\n  type: default\n", encoding="utf-8")
    (tmp_path / "dies.qmd").write_text('---\ntitle: "x"\nformat: html\n---\n\n```{python}\nimport os\nos._exit(3)\n```\n',
                                       encoding="utf-8")
    with pytest.raises(RenderError, match="kernel"):
        render_project(tmp_path, to=["html"])
    assert not (tmp_path / "_output").exists()


def test_longest_first_results_in_order_first_error_raised() -> None:
    started: list[str] = []
    lock = threading.Lock()

    def run(item: str) -> str:
        with lock:
            started.append(item)
        if item == "bad":
            raise ValueError(item)
        return item.upper()

    items = ["s", "long", "mid"]
    assert run_longest_first(items, run, work=len, workers=1) == ["S", "LONG", "MID"]
    assert started == ["long", "mid", "s"]
    with pytest.raises(ValueError, match="bad"):
        run_longest_first(["ok", "bad", "x"], run, work=len, workers=2)


def test_alongside_runs_beside_and_raises_at_join() -> None:
    seen: list[int] = []
    Alongside(lambda: seen.append(threading.get_ident())).join()
    assert seen and seen[0] != threading.get_ident()

    def fails() -> None:
        raise OSError("disk full")

    beside = Alongside(fails)
    beside.join(raise_error=False)
    with pytest.raises(OSError, match="disk full"):
        beside.join()
    Alongside(None).join()


def test_the_server_ends_with_a_killed_renderer_even_if_its_children_hold_the_socket(tmp_path: Path) -> None:
    import signal
    import subprocess
    import sys

    # the renderer starts the server, then forks a child that keeps its end of the socket open
    code = ("import os, sys, time\n"
            "from cementleak_stats.render import forkkernel\n"
            "forkkernel.start_server()\n"
            "print(forkkernel._server.process.pid, flush=True)\n"
            "child = os.fork()\n"
            "if child == 0:\n"
            "    time.sleep(60); os._exit(0)\n"
            "print(child, flush=True)\n"
            "time.sleep(60)\n")
    renderer = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    server = int(renderer.stdout.readline())
    child = int(renderer.stdout.readline())
    os.kill(renderer.pid, signal.SIGKILL)
    renderer.wait()
    try:
        for _ in range(300):  # the server notices within a second of its preload
            os.kill(server, 0)
            if open(f"/proc/{server}/stat").read().split()[2] == "Z":
                break
            time.sleep(0.1)
        else:
            pytest.fail("the fork server outlived its killed renderer")
    except (ProcessLookupError, FileNotFoundError):
        pass
    finally:
        try:
            os.kill(child, signal.SIGKILL)  # the renderer's sleeping child
        except ProcessLookupError:
            pass
