"""Built-in renderer end to end: the toy project rendered to HTML, DOCX, PDF and slides.

The project (tests/render_fixtures/project) has a figure cell, two table cells (markdown repr
and pandas' HTML repr), inline values before and between cells, nested includes, a callout,
HTML-only content and references to figures, tables and sections.
"""

from __future__ import annotations

import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import docx
import pytest
from bs4 import BeautifulSoup
from filelock import FileLock
from pypdf import PdfReader

from cementleak_stats.render import RenderError, render_project
from cementleak_stats.render.lock import lock_path

pytestmark = pytest.mark.render
FIXTURES = Path(__file__).parent / "render_fixtures"
LEFTOVERS = re.compile(r"\?\?|@(fig|tbl|sec)-")


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict:
    project = tmp_path_factory.mktemp("render") / "project"
    shutil.copytree(FIXTURES / "project", project)
    steps: list[tuple[str, str]] = []
    report = render_project(project, progress=lambda doc, step: steps.append((doc, step)))
    return {"project": project, "report": report, "steps": steps, "out": project / "_output"}


class _ResourceURLs(HTMLParser):
    """Every URL an element would load (script/link/img/iframe/source/...)."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[tuple[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("src", "href", "data-src") and value is not None and tag != "a":
                self.urls.append((tag, value))


def _words(element) -> str:
    """Text of an element with whitespace collapsed (pandoc wraps long lines)."""
    return re.sub(r"\s+", " ", element.get_text(" ", strip=True))


def _external(html: str) -> list[tuple[str, str]]:
    parser = _ResourceURLs()
    parser.feed(html)
    return [(t, u) for t, u in parser.urls if re.match(r"^\s*(https?:)?//", u)]


@pytest.mark.slow
def test_report_lists_every_output_and_progress(rendered: dict) -> None:
    report = rendered["report"]
    names = sorted((f.document, f.format, f.path.name) for f in report.files)
    assert names == [
        ("report.qmd", "docx", "report.docx"),
        ("report.qmd", "html", "report.html"),
        ("report.qmd", "typst", "report.pdf"),
        ("slides.qmd", "revealjs", "slides.html"),
    ]
    assert all(f.path.exists() and f.path.parent == rendered["out"] for f in report.files)
    steps = rendered["steps"]
    assert ("report.qmd", "cell 2/6 fig-line") in steps and ("slides.qmd", "revealjs") in steps
    assert not list(rendered["project"].glob(".render-*")), "temporary directory left behind"


@pytest.mark.slow
def test_html_is_self_contained_with_numbered_figure_and_tables(rendered: dict) -> None:
    html = (rendered["out"] / "report.html").read_text(encoding="utf-8")
    assert _external(html) == []
    assert "mathjax" not in html.lower() and "cdn." not in html
    soup = BeautifulSoup(html, "html.parser")
    figure = soup.find("figure", id="fig-line")
    assert figure.find("img")["src"].startswith("data:image/png;base64,")
    assert _words(figure.find("figcaption")) == "Figure 1: A line through three points."
    assert _words(soup.find("table", id="tbl-counts").find("caption")) == "Table 1: Counts by group."
    frame = soup.find("table", id="tbl-frame")
    assert _words(frame.find("caption")).startswith("Table 2:")
    text = _words(soup)
    assert "We studied 100 patients (see Table 1 , Table 2 and Figure 1 ; methods in Section 2 )" in text
    assert "Inline code before any cell: 5." in text  # inline value before the first cell
    assert "Order check: first." in text and "Order check again: second." in text  # document order
    assert "a value from an included file: included value." in text and "A nested include, see Section 1" in text
    assert "Only shown in HTML." in text
    callout = soup.find("div", class_="callout-note")
    assert callout.find(class_="callout-title").get_text(strip=True) == "Synthetic data"
    assert "figure 1 is a toy" in _words(callout)  # -@fig-line: number only
    assert [s.get_text(strip=True) for s in soup.select("h2 .header-section-number")] == ["1", "2", "3"]
    folded = soup.find_all("details", class_="code-fold")
    assert folded and "n_patients = 100" in folded[0].get_text()
    assert soup.find("style", string=re.compile("--accent")) is not None  # our stylesheet, embedded
    assert not LEFTOVERS.search(text)


@pytest.mark.slow
def test_docx_has_word_tables_and_captions(rendered: dict) -> None:
    document = docx.Document(str(rendered["out"] / "report.docx"))
    assert len(document.tables) == 2
    counts = document.tables[0]
    assert [c.text for c in counts.rows[1].cells] == ["leakage", "27"]
    frame = document.tables[1]
    assert [c.text for c in frame.rows[0].cells][-2:] == ["arm", "value"]  # parsed from pandas' HTML
    captions = {p.text for p in document.paragraphs if p.style.name in ("Image Caption", "Table Caption")}
    assert {"Figure 1: A line through three points.", "Table 1: Counts by group."} <= captions
    assert len(document.inline_shapes) == 1
    text = "\n".join(p.text for p in document.paragraphs)
    assert "Test Author, Nowhere Hospital" in text
    assert "Only shown in HTML." not in text
    assert not LEFTOVERS.search(text)


@pytest.mark.slow
def test_pdf_has_pages_numbered_figure_and_references(rendered: dict) -> None:
    reader = PdfReader(str(rendered["out"] / "report.pdf"))
    assert len(reader.pages) > 0
    text = " ".join(page.extract_text() for page in reader.pages)
    text = re.sub(r"\s+", " ", text)
    assert "Figure 1: A line through three points." in text
    assert "Table 1: Counts by group." in text
    assert "see Table 1, Table 2 and Figure 1; methods in Section 2" in text
    assert f"Page 1 of {len(reader.pages)}" in text
    assert "Synthetic data" in text and "Only shown in HTML." not in text
    assert not LEFTOVERS.search(text)


@pytest.mark.slow
def test_slides_are_a_self_contained_revealjs_deck(rendered: dict) -> None:
    html = (rendered["out"] / "slides.html").read_text(encoding="utf-8")
    assert _external(html) == []
    assert "Reveal.initialize" in html
    soup = BeautifulSoup(html, "html.parser")
    titles = [s.get_text(strip=True) for s in soup.select("section.slide h2")]
    assert titles == ["First slide", "A figure"]
    figure = soup.find("figure", id="fig-slide")
    assert figure.find("img")["data-src"].startswith("data:image/png;base64,")  # reveal.js lazy-loads
    assert "Figure 1: A slide figure." in _words(figure)
    assert "one plus one is 2" in _words(soup)
    assert soup.find("aside", class_="notes") is not None
    assert soup.find("pre", class_="cell-code") is None  # echo is off by default in slides (Quarto)


def _copy(name: str, dest: Path) -> Path:
    shutil.copy(FIXTURES / "failing" / name, dest / name)
    return dest / name


def test_failing_cell_stops_render_and_keeps_previous_output(tmp_path: Path) -> None:
    project = tmp_path / "p"
    project.mkdir()
    _copy("ok.qmd", project)
    first = render_project(project, to=["html", "docx"])
    html, word = project / "_output" / "ok.html", project / "_output" / "ok.docx"
    before = (html.read_bytes(), word.read_bytes())
    results = project / "_output" / "results" / "numbers.json"  # written by the analysis, not the renderer
    results.parent.mkdir()
    results.write_text("{}", encoding="utf-8")

    _copy("failing.qmd", project)
    with pytest.raises(RenderError) as err:
        render_project(project, to=["html", "docx"])
    (problem,) = err.value.problems
    # the cell starts at line 5; line 8 is `b = a / 0`
    assert (problem.file, problem.line) == ("failing.qmd", 8)
    assert "cell 'boom'" in problem.rule and "ZeroDivisionError: division by zero" in problem.rule
    assert "ZeroDivisionError" in err.value.details
    assert (html.read_bytes(), word.read_bytes()) == before
    assert not (project / "_output" / "failing.html").exists()
    assert not list(project.glob(".render-*"))

    # a partial render replaces what it writes and keeps the rest (other formats, results/)
    (project / "failing.qmd").unlink()
    again = render_project(project, to=["html"])
    assert [f.path.name for f in again.files] == ["ok.html"] and first.files
    assert word.read_bytes() == before[1] and results.read_text(encoding="utf-8") == "{}"


def test_a_second_render_is_refused_while_the_lock_is_held(tmp_path: Path) -> None:
    project = tmp_path / "p"
    project.mkdir()
    _copy("ok.qmd", project)
    with FileLock(str(lock_path(project / "_output"))):
        with pytest.raises(RenderError, match="another render is writing this output directory"):
            render_project(project, to=["html"])
    assert not (project / "_output").exists()


_INLINES = """---
title: "Inline values"
format:
  html: default
---

Before any cell: `{python} 1 + 1` and `{python} "x"`.

```{python}
a = 5
```

A is `{python} a`, twice `{python} a * 2`,
a string `{python} f"{a}!"`.

```{python}
a = 7
```

Now `{python} a`.
"""


def test_inline_values_between_two_cells_see_the_cells_above_only(tmp_path: Path) -> None:
    # the inline expressions between two cells run as one kernel cell (execute.py): each keeps its
    # own value, in order, and sees the state of the cells above it, not of those below
    (tmp_path / "doc.qmd").write_text(_INLINES, encoding="utf-8")
    render_project(tmp_path, to=["html"])
    text = _words(BeautifulSoup((tmp_path / "_output" / "doc.html").read_text(encoding="utf-8"), "html.parser"))
    assert "Before any cell: 2 and x." in text
    assert "A is 5, twice 10, a string 5!." in text
    assert "Now 7." in text


def test_a_failing_inline_expression_among_others_names_its_own_line(tmp_path: Path) -> None:
    body = _INLINES.replace("a string `{python} f\"{a}!\"`", "a string `{python} undefined_name + a`")
    (tmp_path / "doc.qmd").write_text(body, encoding="utf-8")
    with pytest.raises(RenderError) as err:
        render_project(tmp_path, to=["html"])
    (problem,) = err.value.problems
    assert (problem.file, problem.line) == ("doc.qmd", 14)  # the second line of the paragraph
    assert problem.rule == "inline expression `undefined_name + a` failed: NameError: name 'undefined_name' is not defined"
    assert not (tmp_path / "_output" / "doc.html").exists()
