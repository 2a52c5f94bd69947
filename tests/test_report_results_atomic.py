"""``cementleak report``: the results files and the report change together or not at all (issue 11).

The results are staged beside the output folder and swapped in only after the render succeeded;
a failed render (a document cell that raises) leaves the previous ``_output/`` — report and
``results/`` — byte-identical, and the message says exactly that.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

try:
    from test_reliability_support import cli, study_copy, tree
except ImportError:  # pragma: no cover
    from tests.test_reliability_support import cli, study_copy, tree

DOC_OK = """---
title: "Results check"
format:
  html: default
---

```{python}
x = 1 + 1
```

Two is `{python} str(x)`.
"""

DOC_FAILS = DOC_OK.replace("x = 1 + 1", "x = 1 / 0")


@pytest.fixture(autouse=True)
def own_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CEMENTLEAK_CACHE_KEY_FILE", str(tmp_path / "key" / "cache-key"))


def _project(root: Path) -> Path:
    study = study_copy(root)
    (root / "_quarto.yml").write_text("project:\n  type: default\n  output-dir: _output\n", encoding="utf-8")
    (root / "doc.qmd").write_text(DOC_OK, encoding="utf-8")
    return study


def _report(root: Path):
    return cli("report", "study.yaml", "--engine", "builtin", "--to", "html", "--project", ".", cwd=root)


def _set_seed(study: Path, seed: int) -> None:
    spec = yaml.safe_load(study.read_text(encoding="utf-8"))
    spec["analysis"]["seed"] = seed
    study.write_text(yaml.safe_dump(spec, sort_keys=False, allow_unicode=True), encoding="utf-8")


@pytest.mark.render
@pytest.mark.slow
def test_failed_render_replaces_neither_report_nor_results(tmp_path: Path) -> None:
    root = tmp_path / "project"
    study = _project(root)
    first = _report(root)
    assert first.returncode == 0, first.stdout + first.stderr
    out = root / "_output"
    assert (out / "doc.html").is_file() and (out / "results" / "validation.csv").is_file()
    before = tree(out)

    # new results (another seed) and a document cell that raises
    _set_seed(study, 12345)
    (root / "doc.qmd").write_text(DOC_FAILS, encoding="utf-8")
    failed = _report(root)
    assert failed.returncode == 2, failed.stdout + failed.stderr
    said = " ".join((failed.stdout + failed.stderr).split())
    assert "ZeroDivisionError" in said
    assert "Nothing was replaced: the previous _output/ (report and results files) is unchanged." in said
    assert tree(out) == before, "a failed render changed _output/"
    assert not [p.name for p in root.iterdir() if p.name.startswith(".results-tmp")], "staged results left behind"

    # the document fixed: both change
    (root / "doc.qmd").write_text(DOC_OK, encoding="utf-8")
    ok = _report(root)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    after = tree(out)
    assert after["results/validation.csv"] != before["results/validation.csv"]  # the new seed's bootstrap
    assert "wrote" in ok.stdout and "results files to" in ok.stdout
    assert not [p.name for p in root.iterdir() if p.name.startswith(".results-tmp")]
