"""A re-run with unchanged inputs does not write the results folder again (issue 16).

``cementleak analyze`` (cached) and ``cementleak report`` keep ``results/`` as it is when its
signed stamp (:data:`~cementleak_stats.export.STAMP`) has the results key and every file's
SHA-256; a file deleted or edited, a stamp made with another user's key, or other results: the
folder is written again (atomically, as always).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cementleak_stats import export
from cementleak_stats.spec import load_spec
from cementleak_stats.study import run_study

try:
    from test_reliability_support import cli, study_copy, tree
except ImportError:  # pragma: no cover
    from tests.test_reliability_support import cli, study_copy, tree


@pytest.fixture(autouse=True)
def own_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CEMENTLEAK_CACHE_KEY_FILE", str(tmp_path / "key" / "cache-key"))


def _stat(folder: Path) -> dict[str, tuple[int, int]]:
    """(inode, mtime in ns) of every file: a rewrite (new file swapped in) changes both."""
    return {p.relative_to(folder).as_posix(): (p.stat().st_ino, p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_stamp_says_whether_the_folder_is_current(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    r = run_study(load_spec(study_copy(tmp_path / "study")))
    out = tmp_path / "results"
    assert not export.results_current(r, out)  # nothing there yet
    files = export.write_results(r, out, figures=False)
    assert (out / export.STAMP).is_file() and out / export.STAMP not in files  # hidden, not a result
    assert export.results_current(r, out, figures=False) and not export.results_current(r, out)  # figures asked

    (out / "validation.csv").write_text((out / "validation.csv").read_text() + "\n")  # edited
    assert not export.results_current(r, out, figures=False)
    export.write_results(r, out, figures=False)
    assert export.results_current(r, out, figures=False)
    (out / "summary.json").unlink()  # missing
    assert not export.results_current(r, out, figures=False)
    export.write_results(r, out, figures=False)
    (out / "extra.csv").write_text("a\n1\n")  # a file the results do not have
    assert not export.results_current(r, out, figures=False)
    export.write_results(r, out, figures=False)
    assert export.results_current(r, out, figures=False)

    # a stamp signed with another user's key (a folder received from elsewhere) is not trusted
    monkeypatch.setenv("CEMENTLEAK_CACHE_KEY_FILE", str(tmp_path / "other" / "cache-key"))
    assert not export.results_current(r, out, figures=False)


@pytest.mark.slow
def test_analyze_twice_does_not_rewrite_and_repairs_what_changed(tmp_path: Path) -> None:
    root = tmp_path / "project"
    study_copy(root)
    out = root / "_output" / "results"
    first = cli("analyze", "study.yaml", cwd=root)
    assert first.returncode == 0, first.stdout + first.stderr
    assert (out / "figures").is_dir() and (out / export.STAMP).is_file()
    before, content = _stat(out), tree(out)

    second = cli("analyze", "study.yaml", cwd=root)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "already holds these results (unchanged)" in " ".join(second.stdout.split())
    assert _stat(out) == before, "an unchanged re-run wrote the results files again"

    figure = next(p for p in sorted((out / "figures").iterdir()) if p.suffix == ".png")
    figure.unlink()
    (out / "cox_multivariable.csv").write_text("edited\n")
    third = cli("analyze", "study.yaml", cwd=root)
    assert third.returncode == 0, third.stdout + third.stderr
    assert "wrote" in third.stdout
    assert tree(out) == content  # the same files, byte for byte, written again
    assert _stat(out)["summary.json"] != before["summary.json"]  # the whole folder swapped in anew

    forced = cli("analyze", "study.yaml", "--no-cache", cwd=root)  # --no-cache always writes
    assert forced.returncode == 0 and "wrote" in forced.stdout


DOC = """---
title: "Reuse check"
format:
  html: default
---

Two.
"""


@pytest.mark.render
@pytest.mark.slow
def test_report_twice_does_not_rewrite_the_results_files(tmp_path: Path) -> None:
    root = tmp_path / "project"
    study_copy(root)
    (root / "_quarto.yml").write_text("project:\n  type: default\n  output-dir: _output\n", encoding="utf-8")
    (root / "doc.qmd").write_text(DOC, encoding="utf-8")
    out = root / "_output" / "results"

    def report():
        done = cli("report", "study.yaml", "--engine", "builtin", "--to", "html", "--project", ".", cwd=root)
        assert done.returncode == 0, done.stdout + done.stderr
        return " ".join(done.stdout.split())

    assert "results files to" in report()
    before = _stat(out)
    assert "already holds these results (unchanged)" in report()
    assert _stat(out) == before  # the render carried the same files over (hard links: same inodes)

    os.remove(out / "validation.csv")
    assert "results files to" in report()
    assert (out / "validation.csv").is_file() and _stat(out)["summary.json"] != before["summary.json"]
