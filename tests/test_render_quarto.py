"""How ``cementleak report --engine quarto`` drives the Quarto CLI (render/quarto.py), checked
with a stand-in ``quarto`` (no Quarto needed; tests/test_real_quarto.py runs the real one).

The stand-in records each call (arguments and the environment the documents get) and writes
the files a real render would write, or fails as a real one can.  Checked: one ``quarto render``
per document, in the formats its front matter lists (no ``--to`` then), a kept-alive kernel
only for documents with several formats; this interpreter as ``QUARTO_PYTHON`` and as the
``python3`` kernel; outputs swapped in atomically, the previous output intact when Quarto
fails, and the CLI's exit code 2 with Quarto's message and no traceback.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cementleak_stats.cli import app
from cementleak_stats.errors import EXIT_INPUT_ERROR
from cementleak_stats.render import RenderError
from cementleak_stats.render.quarto import QUARTO_ENV, find_quarto, render_with_quarto
from cementleak_stats.spec import load_spec
from cementleak_stats.study import run_study

FIXTURE = Path(__file__).parent / "render_fixtures" / "project"
EXT = {"html": ".html", "typst": ".pdf", "docx": ".docx", "revealjs": ".html"}

FAKE = '''#!{python}
"""Stand-in for the Quarto CLI: records the call, writes the outputs (or fails)."""
import json, os, sys
from pathlib import Path
import yaml

args = sys.argv[1:]
assert args[0] == "render", args
target, root = Path(args[1]), Path.cwd()
out = Path(args[args.index("--output-dir") + 1])
if target.is_dir():  # the project: its documents, each in its own formats
    docs = [root / d for d in yaml.safe_load((target / "_quarto.yml").read_text())["project"]["render"]]
else:
    docs = [target]
# Quarto's parameters file (--execute-params): what every document's parameters cell gets
text = Path(args[args.index("--execute-params") + 1]).read_text() if "--execute-params" in args else None
params = None if text is None else yaml.safe_load(text)
with open(os.environ["FAKE_QUARTO_LOG"], "a") as log:
    kernel = Path(os.environ["JUPYTER_PATH"].split(os.pathsep)[0]) / "kernels" / "python3" / "kernel.json"
    log.write(json.dumps({{"args": args, "docs": [d.name for d in docs], "python": os.environ.get("QUARTO_PYTHON"),
                          "kernel": json.loads(kernel.read_text())["argv"][0],
                          "params": params, "params_text": text, "cwd": str(root)}}) + "\\n")
for i, doc in enumerate(docs):
    if target.is_dir():
        print(f"[{{i + 1}}/{{len(docs)}}] {{doc.relative_to(root).as_posix()}}")
    if os.environ.get("FAKE_QUARTO_FAIL"):
        print("Executing " + str(doc))
        print("ERROR: " + os.environ["FAKE_QUARTO_FAIL"])
        sys.exit(1)
    front = yaml.safe_load(doc.read_text().split("---")[1])
    fmt = front["format"]
    formats = [fmt] if isinstance(fmt, str) else list(fmt)
    if "--to" in args:
        formats = args[args.index("--to") + 1].split(",")
    for f in formats:
        made = out / doc.relative_to(root).parent / (doc.stem + {ext})
        made.parent.mkdir(parents=True, exist_ok=True)
        made.write_text("<html>" + f + "</html>")
'''


@pytest.fixture
def fake_quarto(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    script = tmp_path / "bin" / "quarto"
    script.parent.mkdir()
    script.write_text(FAKE.format(python=sys.executable, ext="{" + ", ".join(f"{k!r}: {v!r}" for k, v in EXT.items()) + "}[f]"))
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    log = tmp_path / "calls.jsonl"
    monkeypatch.setenv("FAKE_QUARTO_LOG", str(log))
    monkeypatch.setenv(QUARTO_ENV, str(script))
    return script


def calls(fake: Path) -> list[dict]:
    log = Path(os.environ["FAKE_QUARTO_LOG"])
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    shutil.copytree(FIXTURE, root)
    previous = root / "_output"
    (previous / "results").mkdir(parents=True)
    (previous / "results" / "summary.json").write_text("{}")
    (previous / "report.html").write_text("previous")
    return root


def test_find_quarto_prefers_the_environment_variable(fake_quarto: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert find_quarto() == str(fake_quarto)
    monkeypatch.setenv(QUARTO_ENV, str(fake_quarto.parent / "missing"))
    assert find_quarto() is None


def test_each_document_is_rendered_once_in_its_own_formats(fake_quarto: Path, tmp_path: Path) -> None:
    root = project(tmp_path)
    rep = render_with_quarto(root, quarto=str(fake_quarto), jobs=2)
    # two runs at a time, each of a copy of the project with its share of the documents
    runs = {doc: c for c in calls(fake_quarto) for doc in c["docs"]}
    assert sorted(runs) == ["report.qmd", "slides.qmd"] and len(calls(fake_quarto)) == 2
    for c in runs.values():
        assert "--to" not in c["args"], "a document is rendered to the formats it lists"
        assert c["python"] == sys.executable and c["kernel"] == sys.executable
        assert Path(c["cwd"]).parent.name.startswith(".render-"), "Quarto runs in a copy of the project"
    # the report has three formats: one kernel for all of them; the slides have one
    assert "--execute-daemon" in runs["report.qmd"]["args"] and "--execute-daemon" not in runs["slides.qmd"]["args"]
    assert not (root / ".quarto").exists(), "Quarto's own files stay out of the project"
    out = root / "_output"
    assert sorted(str(f.path.relative_to(out)) for f in rep.files) == ["report.docx", "report.html", "report.pdf", "slides.html"]
    assert (out / "report.html").read_text() == "<html>html</html>"
    assert (out / "results" / "summary.json").exists(), "files of the analysis are carried over"
    assert not list(root.glob(".render-*")), "the temporary output directory is removed"


def test_parameters_reach_every_document_as_quarto_s_parameters_file(fake_quarto: Path, tmp_path: Path) -> None:
    root = project(tmp_path)
    params = {"study": "/a folder/study.yaml", "results": "0123e456"}
    render_with_quarto(root, quarto=str(fake_quarto), jobs=2, params=params)
    assert [c["params"] for c in calls(fake_quarto)] == [params, params]
    # quoted: Quarto reads YAML 1.2, where 0123e456 unquoted is a number
    assert all('"0123e456"' in c["params_text"] for c in calls(fake_quarto))
    render_with_quarto(root, quarto=str(fake_quarto), jobs=1)
    assert "--execute-params" not in calls(fake_quarto)[-1]["args"], "no parameters: Quarto's defaults"


def test_a_subset_of_formats_renders_only_those(fake_quarto: Path, tmp_path: Path) -> None:
    root = project(tmp_path)
    rep = render_with_quarto(root, quarto=str(fake_quarto), to=("html",))
    assert [c["docs"] for c in calls(fake_quarto)] == [["report.qmd"]], "the slides are not rendered"
    assert [f.path.name for f in rep.files] == ["report.html"]
    assert not (root / "_output" / "report.pdf").exists()
    assert (root / "report.qmd").read_text() == (FIXTURE / "report.qmd").read_text(), "the project's documents are not changed"


def test_a_failing_quarto_leaves_the_previous_output(fake_quarto: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = project(tmp_path)
    monkeypatch.setenv("FAKE_QUARTO_FAIL", "NameError: name 'x' is not defined")
    with pytest.raises(RenderError) as err:
        render_with_quarto(root, quarto=str(fake_quarto))
    assert "quarto render failed (exit code 1): ERROR: NameError" in str(err.value)
    assert "Executing" in err.value.details
    assert (root / "_output" / "report.html").read_text() == "previous"
    assert not list(root.glob(".render-*"))


@pytest.mark.render
@pytest.mark.xdist_group("render")
def test_cli_reports_a_failing_quarto_with_exit_code_2(fake_quarto: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                       rendered_project) -> None:
    # the session's rendered study: its analysis is cached, so the CLI reaches the render quickly
    study = rendered_project.study
    root = tmp_path / "project"
    shutil.copytree(rendered_project.root / "report", root / "report")
    shutil.copy2(rendered_project.root / "_quarto.yml", root / "_quarto.yml")
    (root / "_output").mkdir()
    (root / "_output" / "previous.txt").write_text("previous")
    monkeypatch.setenv("FAKE_QUARTO_FAIL", "Unable to start Jupyter kernel")
    result = CliRunner().invoke(app, ["report", str(study), "--project", str(root), "--engine", "quarto", "--to", "html"])
    assert result.exit_code == EXIT_INPUT_ERROR, result.output
    assert "quarto render failed" in result.output and "Traceback" not in result.output
    assert "previous _output/" in result.output
    assert sorted(p.name for p in (root / "_output").iterdir()) == ["previous.txt"]
    # the documents get the study file and the results key as parameters, not through the environment
    key = run_study(load_spec(study)).provenance.cache_key()
    assert calls(fake_quarto) and all(c["params"] == {"study": str(study.resolve()), "results": key} for c in calls(fake_quarto))


def test_cli_without_quarto_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(QUARTO_ENV, str(tmp_path / "no-quarto-here"))
    result = CliRunner().invoke(app, ["report", str(tmp_path / "study.yaml"), "--engine", "quarto"])
    assert result.exit_code == EXIT_INPUT_ERROR
    assert "No quarto CLI found" in result.output and "Traceback" not in result.output
