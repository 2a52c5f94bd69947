"""The project's own report documents stay inside the built-in engine's Quarto subset.

What Quarto accepts the built-in engine must accept too (DESIGN.md, Rendering): every
``report/*.qmd`` (and every file it includes) is checked without being executed.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from cementleak_stats.render import check_document
from cementleak_stats.render.config import load_project
from cementleak_stats.render.project import discover_documents

REPO = Path(__file__).resolve().parents[1]
# Quarto ignores files and folders whose name starts with "_" (they are includes, checked
# through the documents that include them)
DOCUMENTS = sorted(p for p in (REPO / "report").glob("**/*.qmd")
                   if not any(part.startswith("_") for part in p.relative_to(REPO / "report").parts))


@pytest.mark.parametrize(
    "document",
    DOCUMENTS or [pytest.param(None, marks=pytest.mark.skip(reason="no report/*.qmd written yet"))],
    ids=lambda p: p.relative_to(REPO).as_posix() if p else "none",
)
def test_report_document_is_inside_the_subset(document: Path) -> None:
    problems = check_document(document)
    assert problems == [], "\n".join(str(p) for p in problems)


def test_project_renders_only_the_report_documents() -> None:
    if not (REPO / "_quarto.yml").exists():
        pytest.skip("no _quarto.yml written yet")
    project = load_project(REPO)
    documents = discover_documents(project, REPO / project.output_dir)
    assert documents, "_quarto.yml selects no document"
    outside = [d for d in documents if (REPO / "report") not in d.parents]
    assert outside == [], f"_quarto.yml would render documents outside report/: {outside}"
