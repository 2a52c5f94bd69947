"""``cementleak new`` and the narrative a study owns (issue 9)."""

from __future__ import annotations

import subprocess

import pytest

from cementleak_stats.errors import InputError
from cementleak_stats.narrative import PARTS, read_narrative
from cementleak_stats.spec import load_spec

from conftest import CLI, ROOT


def run(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([str(CLI), *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def test_new_creates_a_complete_study_folder(tmp_path):
    folder = tmp_path / "hernia-study"
    proc = run("new", str(folder), "--title", "Incisional hernia after laparotomy")
    assert proc.returncode == 0, proc.stderr
    for rel in ("study.yaml", "_quarto.yml", "report/index.qmd", "report/_setup.qmd", "data/README.md",
                *(f"narrative/{p}.md" for p in PARTS)):
        assert (folder / rel).is_file(), rel
    assert "cementleak validate" in proc.stdout and "cementleak report" in proc.stdout
    spec = load_spec(folder / "study.yaml")  # the template is a valid study file
    assert spec.study.title == "Incisional hernia after laparotomy"
    assert spec.study.synthetic is False
    # the guidance comments are not narrative: a fresh folder has none (neutral text is used)
    assert read_narrative(spec) == {}
    # the documents are the project's, unchanged
    assert (folder / "report" / "index.qmd").read_bytes() == (ROOT / "report" / "index.qmd").read_bytes()
    # no data yet: validate says which file is missing, exit 2
    proc = run("validate", "study.yaml", cwd=folder)
    assert proc.returncode == 2
    assert "cohort.csv" in proc.stdout + proc.stderr


def test_new_refuses_a_folder_with_files(tmp_path):
    (tmp_path / "x.txt").write_text("keep me")
    proc = run("new", str(tmp_path))
    assert proc.returncode == 2
    assert "not empty" in proc.stdout + proc.stderr
    assert [p.name for p in tmp_path.iterdir()] == ["x.txt"]


@pytest.mark.parametrize("line, rule", [
    ("<script>alert(1)</script>", "HTML that runs"),
    ("```{python}", "executable or raw blocks"),
    ("Risk was `{python} 1/0`.", "inline code"),
    ("---", "metadata block"),
    ("{{< include /etc/passwd >}}", "shortcodes"),
    ("```{=html}", "executable or raw blocks"),
])
def test_narrative_that_would_run_or_switch_sections_is_refused(tmp_path, line, rule):
    folder = tmp_path / "s"
    assert run("new", str(folder)).returncode == 0
    path = folder / "narrative" / "background.md"
    path.write_text(f"Some background.\n\n{line}\n", encoding="utf-8")
    before = path.read_bytes()
    with pytest.raises(InputError) as info:
        read_narrative(load_spec(folder / "study.yaml"))
    (problem,) = info.value.problems
    assert problem.row == 3 and rule in problem.rule and problem.file.endswith("background.md") and problem.fix
    assert path.read_bytes() == before


def test_shipped_narrative_is_read():
    text = read_narrative(load_spec(ROOT / "study.yaml"))
    # every part, in English and in Chinese (background.zh.md, ...)
    assert set(text) == set(PARTS) | {f"{p}.zh" for p in PARTS}
