"""The built-in engine's parameters: Quarto's for the Jupyter engine (papermill's rule).

The values are injected, as papermill's translator writes them (as Quarto does), in a cell right
after the first cell tagged ``parameters``; cells above it see nothing, cells below see the
values; without values the document runs with its defaults.  The execution cache is keyed by the
values, and the renderer imports nothing of the statistics (it is a leaf).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from papermill.translators import translate_parameters

from cementleak_stats.render import render_project
from cementleak_stats.render.config import DocumentMeta
from cementleak_stats.render.execute import execution_key, injected_parameters
from cementleak_stats.render.parse import parse_document

DOC = """---
title: "Parameters"
format: html
---

```{python}
before = globals().get("results", "unset")
```

```{python}
#| tags: [parameters]
#| include: false
study = None
results = None
```

Before: `{python} str(before)`; results: `{python} str(results)`; study: `{python} str(study)`.
"""


def _project(tmp_path: Path) -> Path:
    (tmp_path / "_quarto.yml").write_text("project:\n  type: default\n", encoding="utf-8")
    (tmp_path / "doc.qmd").write_text(DOC, encoding="utf-8")
    return tmp_path


def test_injected_cell_is_papermill_s_as_quarto_writes_it() -> None:
    params = {"study": "/a b/study.yaml", "results": "0123e456"}
    text = injected_parameters(params)
    assert text == translate_parameters("python3", "python", params, "Injected Parameters")
    assert text.startswith("# Injected Parameters")
    assert {ast.unparse(s) for s in ast.parse(text).body} == {"study = '/a b/study.yaml'", "results = '0123e456'"}


@pytest.mark.render
def test_values_follow_the_parameters_cell_and_defaults_stay_without_them(tmp_path: Path) -> None:
    root = _project(tmp_path)
    rep = render_project(root, to=["html"], params={"study": "/s/study.yaml", "results": "k123"})
    html = rep.files[0].path.read_text(encoding="utf-8")
    assert "Before: unset; results: k123; study: /s/study.yaml" in html
    assert "Injected Parameters" not in html, "the injected cell shows nothing (the parameters cell's include: false)"
    rep = render_project(root, to=["html"])
    assert "Before: unset; results: None; study: None" in rep.files[0].path.read_text(encoding="utf-8")


def test_the_execution_key_depends_on_the_values(tmp_path: Path) -> None:
    root = _project(tmp_path)
    doc, meta = parse_document(root / "doc.qmd", root=root), DocumentMeta()
    one = execution_key(doc, meta, {"results": "one"})
    assert one == execution_key(doc, meta, {"results": "one"})
    assert len({one, execution_key(doc, meta, {"results": "two"}), execution_key(doc, meta, None)}) == 3


def test_the_renderer_is_a_leaf() -> None:
    """render/ imports nothing of the package outside it but fonts (which files to embed)."""
    folder = Path(__file__).resolve().parents[1] / "cementleak_stats" / "render"
    outside = set()
    for path in folder.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level >= 2:
                outside.add(node.module)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("cementleak_stats"):
                outside.add(node.module)
    assert outside <= {"fonts"}, f"the renderer imports {sorted(outside - {'fonts'})}"
