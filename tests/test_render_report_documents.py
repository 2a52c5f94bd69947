"""The project's own report documents stay inside the built-in engine's Quarto subset, and thin.

What Quarto accepts the built-in engine must accept too (DESIGN.md, Rendering): every
``report/*.qmd`` (and every file it includes) is checked without being executed.  Documents
stay thin (STYLE.md): no pandas/lifelines/statsmodels import, a setup cell that only loads the
results, then one call per table or figure and one attribute or call per inline number.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from cementleak_stats.render import check_document
from cementleak_stats.render.config import load_project
from cementleak_stats.render.parse import parse_document
from cementleak_stats.render.project import discover_documents

REPO = Path(__file__).resolve().parents[1]
# Quarto ignores files and folders whose name starts with "_" (they are includes, checked
# through the documents that include them)
DOCUMENTS = sorted(p for p in (REPO / "report").glob("**/*.qmd")
                   if not any(part.startswith("_") for part in p.relative_to(REPO / "report").parts))
#: every source file, includes too
SOURCES = sorted((REPO / "report").glob("**/*.qmd"))
HEAVY_IMPORT = re.compile(r"^\s*(?:import|from)\s+(pandas|lifelines|statsmodels)\b|__import__\(|importlib", re.M)
#: the whole of a setup cell: load the results the document's parameters name, nothing else
SETUP = {"from cementleak_stats.document import load_report", "R = load_report(study, results=results)"}
#: the same in a document in another language (report/*.zh.qmd)
SETUPS = [SETUP, {"from cementleak_stats.document import load_report", "R = load_report(study, results=results, lang='zh')"}]
#: the whole of a parameters cell: the defaults of a render by hand (cementleak report passes both)
PARAMETERS = {"study = None", "results = None"}


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


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.relative_to(REPO).as_posix())
def test_no_document_imports_pandas_lifelines_or_statsmodels(source: Path) -> None:
    m = HEAVY_IMPORT.search(source.read_text(encoding="utf-8"))
    assert m is None, f"{source.name} imports {m.group(0).strip()!r}: compute in cementleak_stats, not in a document"


def _calls(node: ast.AST) -> int:
    return sum(isinstance(n, ast.Call) for n in ast.walk(node))


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: p.relative_to(REPO).as_posix())
def test_each_cell_is_one_call_and_each_inline_value_one_expression(document: Path) -> None:
    doc = parse_document(document)
    cells = doc.cells
    assert cells and cells[0].options.tags == ("parameters",), "the first cell must be the parameters cell"
    assert {ast.unparse(s) for s in ast.parse(cells[0].code).body} == PARAMETERS, f"{cells[0].origin}: parameters study, results"
    assert len(cells) > 1 and cells[1].options.label == "setup", "the second cell must be the setup cell"
    fat = []
    for cell in cells[1:]:
        tree = ast.parse(cell.code)
        if cell.options.label == "setup":
            if {ast.unparse(s) for s in tree.body} not in SETUPS:
                fat.append(f"{cell.origin}: the setup cell does more than load the results")
            continue
        one_call = len(tree.body) == 1 and isinstance(tree.body[0], ast.Expr) and isinstance(tree.body[0].value, ast.Call)
        # print(R.banner()) is one statement: an asis cell prints what one call returns
        if not one_call or _calls(tree) > 2 or any(isinstance(n, (ast.Import, ast.ImportFrom)) for n in ast.walk(tree)):
            fat.append(f"{cell.origin}: {cell.code.strip()!r} is not one call")
    for expr in doc.inlines:
        tree = ast.parse(expr.code, mode="eval")
        names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
        if names != {"R"} or _calls(tree) > 1:
            fat.append(f"{expr.origin}: inline `{expr.code}` is not one value of R")
    assert fat == [], "\n".join(fat)
