"""Atomic, concurrent-safe and deterministic outputs (issue 6, items 4 and 5).

* ``cementleak analyze`` killed with SIGKILL while it writes leaves the previous results intact
  and nothing visible next to them; the next run clears what the killed one left;
* a run that finds the output locked stops with the lock message and a non-zero exit code,
  and the run holding the lock completes;
* two runs on the same inputs write byte-identical files (CSV, JSON, PNG, SVG, PDF);
* the same for ``cementleak report`` (slow: it renders).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from filelock import FileLock

from cementleak_stats.export import write_results
from cementleak_stats.render.lock import lock_path
from cementleak_stats.spec import load_spec
from cementleak_stats.study import compute_study, run_study

try:
    from test_reliability_support import cli, cli_popen, study_copy, tree, visible
except ImportError:  # pragma: no cover
    from tests.test_reliability_support import cli, cli_popen, study_copy, tree, visible

LOCK_MESSAGE = "Another cementleak run is writing"


def _wait_for(condition: Callable[[], bool], proc: subprocess.Popen, *, timeout: float = 240) -> None:
    """Poll until ``condition()`` holds; fail if ``proc`` ends first or the time runs out."""
    end = time.monotonic() + timeout
    while not condition():
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"the command ended (exit {proc.returncode}) before the expected moment:\n{out}\n{err}")
        if time.monotonic() > end:
            proc.kill()
            pytest.fail("timed out waiting for the command")
        time.sleep(0.05)


def _writing(parent: Path, name: str = "results") -> Callable[[], bool]:
    """True once a run's temporary results folder exists and holds a written table."""
    return lambda: any(any(t.glob("*.csv")) for t in parent.glob(f".{name}-tmp-*"))


def _previous_results(out: Path) -> None:
    out.mkdir(parents=True)
    (out / "validation.csv").write_text("index,corrected\nC,0.8\n")
    (out / "figures").mkdir()
    (out / "figures" / "fig-forest.png").write_bytes(b"\x89PNG previous")


@pytest.fixture(scope="module")
def computed(tmp_path_factory: pytest.TempPathFactory):
    """The shipped study (B = 20) computed once in-process."""
    return compute_study(load_spec(study_copy(tmp_path_factory.mktemp("computed"))))


# --- analyze: killed mid-way -----------------------------------------------------------------------
def test_killed_analyze_leaves_previous_results_intact(tmp_path: Path) -> None:
    study = study_copy(tmp_path / "study")
    parent = tmp_path / "out"
    out = parent / "results"
    _previous_results(out)
    before = tree(out)
    proc = cli_popen("analyze", study, "--out", out, "--no-cache", cwd=tmp_path)
    _wait_for(_writing(parent), proc)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate()
    assert proc.returncode == -signal.SIGKILL
    assert tree(out) == before  # the previous results, byte for byte
    assert visible(parent) == ["results"]  # the killed run's folder is hidden (".results-tmp-<pid>-...")
    left = list(parent.glob(".results-tmp-*"))
    assert left, "the kill should have happened while writing"


def test_next_run_clears_what_a_killed_run_left(tmp_path: Path, computed) -> None:
    out = tmp_path / "results"
    _previous_results(out)
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = tmp_path / f".results-tmp-{dead.pid}-abcd"
    stale.mkdir()
    (stale / "half.csv").write_text("a,b\n1,")
    live = tmp_path / f".results-tmp-{os.getpid()}-efgh"  # a live run's folder is left alone
    live.mkdir()
    files = write_results(computed, out, figures=False)
    assert not stale.exists() and live.exists()
    assert (out / "summary.json").exists() and not (out / "figures").exists() and out / "validation.csv" in files
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["results", live.name])


def test_kill_between_the_two_renames_is_repaired(tmp_path: Path, computed) -> None:
    """The previous results moved aside, the new ones not yet in: the next run puts them back first."""
    out = tmp_path / "results"
    dead = subprocess.Popen(["true"])
    dead.wait()
    aside = tmp_path / f".results-old-{dead.pid}"
    _previous_results(aside)
    previous = tree(aside)

    seen = {}

    def progress(step: str) -> None:  # called while the new results are being written
        seen.setdefault("restored", tree(out) if out.exists() else None)

    write_results(computed, out, figures=False, progress=progress)
    assert seen["restored"] == previous  # restored before anything new was written
    assert not aside.exists() and list(tmp_path.iterdir()) == [out]


def test_failed_write_leaves_previous_results_and_no_temporary_folder(tmp_path: Path, computed,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "results"
    _previous_results(out)
    before = tree(out)
    import cementleak_stats.export as export

    def broken(frame, path):  # the disk fills up after the first table
        if any(path.parent.glob("*.csv")):
            raise OSError(28, "No space left on device")
        frame.to_csv(path)

    monkeypatch.setattr(export, "_csv", broken)
    with pytest.raises(OSError):
        write_results(computed, out, figures=False)
    assert tree(out) == before and [p.name for p in tmp_path.iterdir()] == ["results"]


# --- analyze: two runs at once ----------------------------------------------------------------------
def test_locked_output_gives_the_lock_message_and_writes_nothing(tmp_path: Path) -> None:
    study = study_copy(tmp_path / "study")
    out = tmp_path / "out" / "results"
    _previous_results(out)
    before = tree(tmp_path / "out")
    with FileLock(str(lock_path(out.parent)), timeout=0):  # another run is writing
        res = cli("analyze", study, "--out", out, "--no-cache", cwd=tmp_path)
    assert res.returncode != 0 and LOCK_MESSAGE in " ".join(res.stderr.split()), res.stdout + res.stderr
    assert "Traceback" not in res.stdout + res.stderr
    assert tree(tmp_path / "out") == before


@pytest.mark.slow
def test_two_simultaneous_analyze_runs(tmp_path: Path) -> None:
    """The first run writes; the second, arriving meanwhile, stops with the lock message."""
    study = study_copy(tmp_path / "study")
    run_study(load_spec(study))  # cache the results, so that the second run reaches the lock at once
    out = tmp_path / "out" / "results"
    first = cli_popen("analyze", study, "--out", out, "--no-cache", cwd=tmp_path)
    _wait_for(_writing(out.parent), first)
    second = cli("analyze", study, "--out", out, cwd=tmp_path)
    assert first.poll() is None, "the first run should still be writing"
    assert second.returncode != 0 and LOCK_MESSAGE in " ".join(second.stderr.split()), second.stdout + second.stderr
    stdout, stderr = first.communicate(timeout=300)
    assert first.returncode == 0, stdout + stderr
    assert (out / "summary.json").exists() and any((out / "figures").glob("*.pdf"))
    assert visible(out.parent) == ["results"] and not list(out.parent.glob(".results-*"))


# --- determinism ------------------------------------------------------------------------------------
@pytest.mark.slow
def test_two_analyze_runs_write_byte_identical_files(tmp_path: Path) -> None:
    study = study_copy(tmp_path / "study", outcomes=True)
    # the lock of `analyze --out X/Y/results` is X/.render.lock: separate X, separate locks
    runs = [cli_popen("analyze", study, "--out", tmp_path / name / "out" / "results", "--no-cache", cwd=tmp_path)
            for name in ("a", "b")]
    for proc in runs:
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, out + err
    a, b = (tree(tmp_path / name / "out" / "results") for name in ("a", "b"))
    kinds = {Path(p).suffix for p in a}
    assert {".csv", ".json", ".png", ".pdf"} <= kinds  # report.figure_formats: png and pdf by default
    assert a.keys() == b.keys()
    differ = sorted(p for p in a if a[p] != b[p])
    assert differ == [], f"files that differ between two runs: {differ}"


# --- report --------------------------------------------------------------------------------------
@pytest.mark.slow
def test_killed_report_leaves_previous_output_intact(tmp_path: Path, rendered_project) -> None:
    project = tmp_path / "project"
    shutil.copytree(rendered_project.root, project, symlinks=True)
    output = project / "_output"
    before, shown = tree(output), visible(project)
    study = project / "study.yaml"
    proc = cli_popen("report", study, "--to", "html", "--project", project, "--engine", "builtin", cwd=project)
    # the render has started once its scratch folder holds a document's build folder
    _wait_for(lambda: any(any(s.glob("build/*")) for s in project.glob(".render-*")), proc)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate()
    after = tree(output)
    # the rendered documents are untouched; results/ was rewritten (atomically, see above) before the
    # render began and holds the same files (its bytes change only if the package source changed)
    assert {k: v for k, v in after.items() if k.startswith("report")} == {
        k: v for k, v in before.items() if k.startswith("report")}
    assert after.keys() == before.keys()
    assert visible(project) == shown
    before = after

    # and a report that finds the output locked stops with a message, writing nothing
    with FileLock(str(lock_path(output)), timeout=0):
        res = cli("report", study, "--to", "html", "--project", project, "--engine", "builtin", cwd=project)
    assert res.returncode != 0 and LOCK_MESSAGE in " ".join(res.stderr.split()), res.stdout + res.stderr
    assert tree(output) == before


GUARANTEES = [
    ("analyze-killed-while-writing", "SIGKILL mid-write: previous results byte-identical, nothing visible added"),
    ("stale-temporary-folders", "the next run removes folders of dead runs, never a live run's"),
    ("kill-between-renames", "the previous results are restored if a kill fell inside the swap"),
    ("write-fails-half-way", "a failing write (disk full) leaves the previous results and no temporary folder"),
    ("output-locked", "a run that finds the lock held exits non-zero with the lock message, writing nothing"),
    ("two-simultaneous-analyze", "the second of two simultaneous runs gets the lock message; the first completes"),
    ("deterministic-results", "two runs give byte-identical CSV, JSON, PNG, SVG and PDF files"),
    ("report-killed-while-rendering", "a killed `cementleak report` leaves the previous _output/ intact; a locked "
                                      "one stops with the message"),
]
