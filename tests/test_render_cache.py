"""The render cache (issue 16): a re-render of unchanged inputs starts no kernel and runs no writer.

With an execution cache (``cementleak report`` gives one when it passes a results key), an
unchanged document reuses its cell outputs (no kernel) and each unchanged output file is taken
from the previous render (no pandoc, no Typst), byte-identical.  A changed input of a writer
(a file of the document's folder), or an output file replaced since, is written again.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from cementleak_stats.cache import SignedFiles
from cementleak_stats.render import execute, project, render_project

FIXTURES = Path(__file__).parent / "render_fixtures"


@pytest.mark.render
def test_unchanged_inputs_start_no_kernel_and_run_no_writer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "project"
    shutil.copytree(FIXTURES / "project", root)
    kernels: list[Path] = []
    written: list[str] = []
    real_kernel, real_writers = execute._kernel_manager, dict(project.WRITERS)
    monkeypatch.setattr(execute, "_kernel_manager", lambda d: kernels.append(d) or real_kernel(d))

    def counting(fmt: str):
        return lambda job, options, out: written.append(f"{job.display} {fmt}") or real_writers[fmt](job, options, out)

    monkeypatch.setattr(project, "WRITERS", {fmt: counting(fmt) for fmt in real_writers})
    signed = SignedFiles("render")
    cache = execute.ExecutionCache(root / ".cementleak-cache" / "render", signed.read, signed.write)

    def render(**kw) -> dict[str, bytes]:
        kernels.clear()
        written.clear()
        rep = render_project(root, to=["html", "slides"], **kw)
        return {f.path.name: f.path.read_bytes() for f in rep.files}

    first = render(cache=cache, params={"results": "one"})
    assert len(kernels) == 2 and sorted(written) == ["report.qmd html", "slides.qmd revealjs"]
    again = render(cache=cache, params={"results": "one"})
    assert kernels == [] and written == [], "an unchanged re-render started a kernel or a writer"
    assert again == first
    # a file the writers may read changed (the document's folder): written again, not executed
    (root / "extra.css").write_text("p { color: black; }\n", encoding="utf-8")
    render(cache=cache, params={"results": "one"})
    assert kernels == [] and sorted(written) == ["report.qmd html", "slides.qmd revealjs"]
    # an output replaced since (by hand, by real Quarto): written again
    (root / "_output" / "report.html").write_text("edited", encoding="utf-8")
    assert render(cache=cache, params={"results": "one"})["report.html"] == first["report.html"]
    assert written == ["report.qmd html"]
    # without a cache everything runs
    render()
    assert len(kernels) == 2 and len(written) == 2
