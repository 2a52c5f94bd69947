"""Shared fixtures.

``rendered_project`` renders the whole project ONCE per test session (all formats) into a
temporary copy of the repository's report project, with the bootstrap reduced to B = 50 so
that CI stays fast; report, privacy and reliability tests read its output.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
CLI = Path(sys.executable).with_name("cementleak")


@dataclass(frozen=True)
class RenderedProject:
    root: Path  # the temporary project (study.yaml, data/, report/, _quarto.yml)
    output: Path  # its _output/ directory
    study: Path  # its study file
    log: str  # what `cementleak report` printed


def copy_project(dest: Path, *, bootstrap_b: int = 50, study_dir: Path | None = None) -> Path:
    """A copy of the report project with a smaller bootstrap; returns the study file path.

    ``study_dir`` names another study folder (study.yaml, its data, its narrative) to copy
    instead of the shipped study; the report's documents are always the repository's.
    """
    source = study_dir or ROOT
    if study_dir is None:
        for name in ("data", "narrative"):
            shutil.copytree(ROOT / name, dest / name)
    else:
        shutil.copytree(study_dir, dest, dirs_exist_ok=True, ignore=shutil.ignore_patterns("_output", ".cementleak-cache"))
    shutil.copytree(ROOT / "report", dest / "report")
    shutil.copy2(ROOT / "_quarto.yml", dest / "_quarto.yml")
    spec = yaml.safe_load((source / "study.yaml").read_text(encoding="utf-8"))
    spec["analysis"]["bootstrap_b"] = bootstrap_b
    study = dest / "study.yaml"
    study.write_text(yaml.safe_dump(spec, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return study


def render_once(tmp_path_factory: pytest.TempPathFactory, worker_id: str, name: str,
                study_dir: Path | None = None) -> RenderedProject:
    """Render a study's whole project once per test run, also under pytest-xdist.

    xdist gives every worker its own session, and ``--dist loadgroup`` does not keep the
    render tests on one worker with pytest >= 9.2 (pytest-xdist #1386); so the first worker
    to get here renders into a directory shared by all workers, under a file lock, and the
    others wait for it and reuse the result.
    """
    from filelock import FileLock

    shared = tmp_path_factory.getbasetemp() if worker_id == "master" else tmp_path_factory.getbasetemp().parent
    root = shared / name
    done = shared / f"{name}.log"
    with FileLock(str(shared / f"{name}.lock")):
        if not done.exists():
            root.mkdir(exist_ok=True)
            study = copy_project(root, study_dir=study_dir)
            env = dict(os.environ)
            proc = subprocess.run([str(CLI), "report", str(study), "--project", str(root), "--engine", "builtin"], cwd=root,
                                  env=env, capture_output=True, text=True, timeout=1200)
            assert proc.returncode == 0, proc.stdout + proc.stderr
            done.write_text(proc.stdout + proc.stderr, encoding="utf-8")
    return RenderedProject(root=root, output=root / "_output", study=root / "study.yaml", log=done.read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def rendered_project(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> RenderedProject:
    """The shipped study, rendered once per test run (all formats, B = 50)."""
    return render_once(tmp_path_factory, worker_id, "rendered-project")
