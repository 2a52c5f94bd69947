"""Built-in renderer, fast part: parsing, the subset check, options and numbering (no kernel)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from cementleak_stats.render import RenderError, check_document, render_project
from cementleak_stats.render.assemble import FigureFloat, TableFloat
from cementleak_stats.render.config import load_project, resolve_document
from cementleak_stats.render.crossref import number, to_markdown
from cementleak_stats.render.parse import CodeCell, MdLine, Origin, parse_document

FIXTURES = Path(__file__).parent / "render_fixtures"


@pytest.fixture()
def fixtures(tmp_path: Path) -> Path:
    """A private copy (the fixtures may sit below a real _quarto.yml in the repository)."""
    dest = tmp_path / "fx"
    shutil.copytree(FIXTURES, dest)
    return dest


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def places(problems) -> set[tuple[str, int | None]]:
    return {(p.file, p.line) for p in problems}


def test_fixture_documents_are_inside_the_subset(fixtures: Path) -> None:
    for name in ("project/report.qmd", "project/slides.qmd", "failing/ok.qmd", "failing/failing.qmd"):
        assert check_document(fixtures / name) == [], name


def test_outside_document_reports_every_construct_with_its_line(fixtures: Path) -> None:
    problems = check_document(fixtures / "outside" / "outside.qmd")
    text = "\n".join(str(p) for p in problems)
    assert places(problems) >= {
        ("outside.qmd", 3),  # toc-location: unknown front-matter option
        ("outside.qmd", 6),  # ```{r}
        ("outside.qmd", 11),  # #| layout-ncol: 2
        ("outside.qmd", 15),  # {{< video >}}
        ("outside.qmd", 17),  # ::: {.columns}
        ("outside.qmd", 21),  # @fig-missing, @lst-code
    }
    assert "'{r}' cells are not supported" in text
    assert "option 'layout-ncol' is not supported" in text
    assert "shortcode 'video'" in text
    assert "unresolved cross-reference '@fig-missing'" in text
    assert "'lst-' cross-references are not supported" in text


def test_render_refuses_a_document_outside_the_subset_naming_file_and_line(fixtures: Path) -> None:
    project = fixtures / "outside"
    with pytest.raises(RenderError) as err:
        render_project(project, to=["html"])
    assert "outside.qmd:6: '{r}' cells are not supported" in str(err.value)
    assert not (project / "_output").exists()


def test_include_cycle_is_reported_at_the_include_line(fixtures: Path) -> None:
    problems = check_document(fixtures / "cycle" / "a.qmd")
    assert len(problems) == 1
    assert str(problems[0]).startswith("_c.qmd:1: include cycle: a.qmd -> _b.qmd -> _c.qmd -> _b.qmd")


def test_includes_keep_the_line_numbers_of_the_included_file(fixtures: Path) -> None:
    doc = parse_document(fixtures / "project" / "report.qmd")
    lines = [b for b in doc.blocks if isinstance(b, MdLine)]
    methods = next(b for b in lines if b.heading and b.heading.ident == "sec-methods")
    assert methods.origin == Origin("parts/_methods.qmd", 1)
    detail_ref = next(b for b in lines if b.refs and b.refs[0].labels == ("sec-intro",))
    assert detail_ref.origin == Origin("parts/_detail.qmd", 3)
    # the include of _methods.qmd sits at line 25 of report.qmd; what follows keeps its own numbering
    results = next(b for b in lines if b.heading and b.heading.ident == "sec-results")
    assert results.origin == Origin("report.qmd", 27)


def test_an_include_inside_an_included_file_is_relative_to_the_main_document(tmp_path: Path) -> None:
    # Quarto 1.10 (quarto.org/docs/authoring/includes): "relative references (links, images, other
    # includes, etc.) inside the included file resolve based on the directory of the main file"
    (tmp_path / "parts").mkdir()
    (tmp_path / "parts" / "_a.qmd").write_text("A.\n\n{{< include parts/_b.qmd >}}\n", encoding="utf-8")
    (tmp_path / "parts" / "_b.qmd").write_text("From b.\n", encoding="utf-8")
    doc = write(tmp_path / "d.qmd", "{{< include parts/_a.qmd >}}\n")
    assert check_document(doc) == []
    (tmp_path / "parts" / "_a.qmd").write_text("A.\n\n{{< include _b.qmd >}}\n", encoding="utf-8")  # relative to _a.qmd
    (problem,) = check_document(doc)
    assert (problem.file, problem.line) == ("parts/_a.qmd", 3) and "main document" in problem.fix


def test_missing_include_names_the_including_line(tmp_path: Path) -> None:
    doc = write(tmp_path / "d.qmd", "Text.\n\n{{< include _nope.qmd >}}\n")
    (problem,) = check_document(doc)
    assert (problem.file, problem.line) == ("d.qmd", 3)
    assert "_nope.qmd" in problem.rule


def test_cell_options_are_parsed_and_checked(tmp_path: Path) -> None:
    doc = write(
        tmp_path / "d.qmd",
        "```{python}\n#| label: fig-a\n#| fig-cap: \"A\"\n#| fig-width: 4\n#| echo: false\nx = 1\n```\n\n"
        "```{python}\n#| label: tbl-b\n#| echo: maybe\n#| fig-alt: no\n```\n",
    )
    parsed = parse_document(doc)
    cell = parsed.cells[0]
    assert isinstance(cell, CodeCell)
    assert (cell.options.label, cell.options.fig_cap, cell.options.fig_width, cell.options.echo) == ("fig-a", "A", 4.0, False)
    assert cell.code == "x = 1"
    assert cell.source.startswith("#| label: fig-a")  # the kernel runs the options too: traceback lines map 1:1
    problems = {(p.line, p.rule.split(":")[0]) for p in parsed.problems}
    assert (11, "option 'echo'") in problems  # a boolean is expected
    assert (12, "option 'fig-alt' is not supported by the built-in engine") in problems
    assert any(p.line == 9 and "needs a 'tbl-cap'" in p.rule for p in parsed.problems)


@pytest.mark.parametrize(
    ("fence", "message"),
    [
        ("```{ojs}", "'{ojs}' cells are not supported"),
        ("```{python echo=FALSE}", "cell options in the fence"),
        ("  ```{python}", "must start at column 0"),
        ("```{{python}}", "escaped cell"),
    ],
)
def test_fences_outside_the_subset(tmp_path: Path, fence: str, message: str) -> None:
    doc = write(tmp_path / "d.qmd", f"Intro.\n\n{fence}\n1\n```\n")
    (problem,) = check_document(doc)
    assert problem.line == 3 and message in problem.rule


def test_plain_code_blocks_are_not_scanned(tmp_path: Path) -> None:
    doc = write(tmp_path / "d.qmd", "```markdown\n```{r}\n@fig-nothing {{< video x >}}\n```\n\nInline code `@fig-x` is code.\n")
    assert check_document(doc) == []


def test_inline_expressions_and_references_are_located(tmp_path: Path) -> None:
    doc = write(tmp_path / "d.qmd", "---\nnumber-sections: true\n---\n\n# A {#sec-a}\n\nValue `{python} 1 + 1`, see [-@sec-a] and @sec-a; mail a@b.org.\n")
    parsed = parse_document(doc)
    (expr,) = parsed.inlines
    assert (expr.code, expr.origin) == ("1 + 1", Origin("d.qmd", 7))
    line = next(b for b in parsed.blocks if isinstance(b, MdLine) and b.inlines)
    assert [r.labels for r in line.refs] == [("sec-a",), ("sec-a",)]
    assert [r.suppress_prefix for r in line.refs] == [(True,), (False,)]
    assert line.citations == ()  # a@b.org is an address, not a citation
    assert check_document(doc) == []


def test_section_reference_requires_numbered_sections_as_in_quarto(tmp_path: Path) -> None:
    doc = write(tmp_path / "d.qmd", "# A {#sec-a}\n\nSee @sec-a.\n")
    (problem,) = check_document(doc)
    assert problem.line == 3 and "number-sections" in problem.fix


def test_citation_without_bibliography_is_an_error(tmp_path: Path) -> None:
    doc = write(tmp_path / "d.qmd", "As shown by @harrell2015.\n")
    (problem,) = check_document(doc)
    assert "citation '@harrell2015' but no bibliography" in problem.rule


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("::: {.callout-note collapse=\"true\"}\nx\n:::\n", 1, "callout attribute 'collapse'"),
        ("::: {.content-visible when-format=\"pptx\"}\nx\n:::\n", 1, "unknown format 'pptx'"),
        ("::: {.callout-tip}\nx\n", 1, "never closed"),
        ("x\n:::\n", 2, "never opened"),
        ("![a](https://example.org/a.png)\n", 1, "external URL"),
        ("<script src=\"https://cdn.example.org/x.js\"></script>\n", 1, "external resource"),
        ("$$x$$ {#eq-one}\n", 1, "'#eq-' cross-reference targets"),
        ("![cap](missing.png){#fig-m}\n", 1, "does not exist"),
        ("## A {#fig-x}\n", 1, "cannot carry the figure/table label"),
        ("::: {.callout-note}\nText first.\n\n## Late heading\n:::\n", 4, "only supported as its first line"),
    ],
)
def test_markdown_outside_the_subset(tmp_path: Path, text: str, line: int, message: str) -> None:
    doc = write(tmp_path / "d.qmd", text)
    problems = check_document(doc)
    assert any(p.line == line and message in p.rule for p in problems), problems


def test_duplicate_labels(tmp_path: Path) -> None:
    doc = write(tmp_path / "d.qmd", "# A {#sec-a}\n\n# B {#sec-a}\n")
    (problem,) = check_document(doc)
    assert problem.line == 3 and "defined twice (first at d.qmd:1)" in problem.rule


def test_quarto_yml_unknown_keys_and_formats_are_errors_with_lines(tmp_path: Path) -> None:
    write(tmp_path / "_quarto.yml", "project:\n  output-dir: _out\n  preview: true\nformat:\n  pdf: default\n  html:\n    theme: cosmo\n")
    with pytest.raises(RenderError) as err:
        load_project(tmp_path)
    found = {(p.line, p.rule) for p in err.value.problems}
    assert any(line == 3 and "'project.preview'" in rule for line, rule in found)
    assert any(line == 5 and "format 'pdf'" in rule for line, rule in found)
    assert any(line == 7 and "'format.html.theme'" in rule for line, rule in found)
    assert any("typst" in p.fix for p in err.value.problems)


def test_execution_options_must_not_differ_between_formats(tmp_path: Path) -> None:
    doc = write(tmp_path / "d.qmd", "---\nformat:\n  html:\n    fig-width: 4\n---\n\nText.\n")
    (problem,) = check_document(doc)
    assert problem.line == 4 and "top level" in problem.fix


def test_project_and_document_options_merge(tmp_path: Path) -> None:
    write(tmp_path / "_quarto.yml", "format:\n  html:\n    code-fold: true\n  docx: default\nexecute:\n  echo: false\ntoc: true\n")
    project = load_project(tmp_path)
    plain = resolve_document(project, {"title": "t"})
    assert list(plain.formats) == ["html", "docx"] and plain.formats["html"].code_fold is True
    assert plain.formats["docx"].toc is True and plain.meta.execute.echo is False
    slides = resolve_document(project, {"format": "revealjs", "execute": {"echo": True}})
    assert list(slides.formats) == ["revealjs"] and slides.meta.execute.echo is True
    html_only = resolve_document(project, {"format": {"html": {"code-summary": "Show"}}})
    assert html_only.formats["html"].code_fold is True and html_only.formats["html"].code_summary == "Show"


def test_unknown_output_name(tmp_path: Path) -> None:
    write(tmp_path / "d.qmd", "Text.\n")
    with pytest.raises(RenderError, match="unknown output 'epub'"):
        render_project(tmp_path, to=["epub"])


def _line(text: str, line: int = 1) -> MdLine:
    doc_lines = [b for b in _parse_text(text) if isinstance(b, MdLine) and b.text.strip()]
    return doc_lines[0]


def _parse_text(text: str) -> tuple:
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        return parse_document(write(Path(d) / "d.qmd", text)).blocks


def test_numbering_like_quarto() -> None:
    blocks = [b for b in _parse_text("## A {#sec-a}\n\n### A1 {#sec-a1}\n\n## B {.unnumbered}\n\n## C {#sec-c}\n\n| x |\n|---|\n| 1 |\n\n: Cap {#tbl-t}\n\nSee @sec-a1, @sec-c, @tbl-t, @fig-f and [@fig-f; -@tbl-t].\n") if isinstance(b, MdLine)]
    origin = Origin("d.qmd", 99)
    fig = FigureFloat("fig-f", MdLine("A figure", origin), Path("/f.png"), 3.0, origin)
    table = TableFloat("tbl-u", MdLine("Second", origin), (MdLine("| y |", origin),), origin)
    pieces = [*blocks, fig, table]
    numbering = number(pieces, number_sections=True)
    assert numbering.labels == {"sec-a": "1", "sec-a1": "1.1", "sec-c": "2", "tbl-t": "1", "fig-f": "1", "tbl-u": "2"}
    text = to_markdown(pieces, numbering, {}, number_sections=True)
    assert "See [Section 1.1](#sec-a1), [Section 2](#sec-c), [Table 1](#tbl-t), [Figure 1](#fig-f) and [Figure 1](#fig-f), [1](#tbl-t)." in text
    assert ": Table 1: Cap {#tbl-t}" in text
    assert "![Figure 1: A figure](/f.png){#fig-f width=3.0in}" in text
    assert "Table 2: Second" in text
    assert "## [1.1]{.header-section-number} A1 {#sec-a1}" in text
    assert "## B {.unnumbered}" in text


def test_unresolved_reference_after_execution_is_an_error() -> None:
    line = _line("See @fig-nowhere.\n")
    with pytest.raises(RenderError, match=r"d.qmd:1: unresolved cross-reference '@fig-nowhere'"):
        to_markdown([line], number([line], number_sections=False), {}, number_sections=False)
