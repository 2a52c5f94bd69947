"""The rendered study report, as a reader and an auditor receive it (issue 4, evidence).

Every test reads the session render (``rendered_project`` in conftest: the whole project,
all formats, bootstrap B = 50, rendered once) and checks it against the sources and against
:class:`~cementleak_stats.study.StudyResults`:

* every output exists and opens (HTML parses, PDF pages, DOCX with real Word tables);
* cross-references are resolved (no ``??``, no raw ``@fig-``/``@tbl-``/``@sec-``, every
  in-page link has a target);
* each labelled table and figure of the ``.qmd`` sources is in the output, captioned and
  numbered (the labels are counted from the sources by a reader independent of the engine);
* the SYNTHETIC DATA banner is in every output of a synthetic study;
* key numbers in the report equal the results (n, events, C-index, corrected C, every
  multivariable hazard ratio, S0, the worked example).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path

import docx
import numpy as np
import pandas as pd
import pytest
import yaml
from bs4 import BeautifulSoup
from pypdf import PdfReader

from cementleak_stats import presentation as P
from cementleak_stats.document import LINE_CHARS, ReportView, pipe_table
from cementleak_stats.formatting import format_p
from cementleak_stats.models.cox import term_label
from cementleak_stats.nomogram import predict_risk
from cementleak_stats.spec import load_spec
from cementleak_stats.study import StudyResults, run_study

pytestmark = [pytest.mark.render, pytest.mark.xdist_group("render")]

REPO = Path(__file__).resolve().parents[1]
HTML_DOCUMENTS = ("index", "baseline", "cox", "nomogram", "validation", "decision", "outcomes", "slides")
LEFTOVER = re.compile(r"\?\?|@(?:fig|tbl|sec)-")
INCLUDE = re.compile(r"^\{\{<\s*include\s+(\S+?)\s*>\}\}\s*$")
QUOTES = str.maketrans({"’": "'", "‘": "'", "“": '"', "”": '"'})
LABEL = re.compile(r"^#\|\s*label:\s*((?:fig|tbl)-[\w-]+)\s*$|\{#((?:fig|tbl)-[\w-]+)[\s}]")


# --- reading the sources and the outputs (independently of the engine) ----------------------


def source_text(path: Path) -> str:
    """A ``.qmd`` with its ``{{< include >}}`` lines replaced by the included files, recursively."""
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        m = INCLUDE.match(line.strip())
        out.append(source_text(path.parent / m.group(1)) if m else line)
    return "\n".join(out)


WHEN_META = re.compile(r'^:::+\s*\{\.content-(?P<kind>visible|hidden)\s+(?P<when>when|unless)-meta="cl\.(?P<flag>\w+)"\}')
DIV_OPEN = re.compile(r"^:::+\s*\S")
DIV_CLOSE = re.compile(r"^:::+\s*$")


def source_labels(name: str, flags: dict[str, bool]) -> dict[str, list[str]]:
    """The ``fig-``/``tbl-`` labels a document shows, in order, by kind: labels inside a
    ``when-meta`` section that the rendered study does not have are left out (read from the
    sources with the study's section flags, independently of the engine)."""
    labels: dict[str, list[str]] = {"fig": [], "tbl": []}
    stack: list[bool] = []  # per open div: is its content shown
    for line in source_text(REPO / "report" / f"{name}.qmd").splitlines():
        m = WHEN_META.match(line.strip())
        if m:
            truthy = bool(flags.get(m.group("flag")))
            shown = truthy == ((m.group("kind") == "visible") == (m.group("when") == "when"))
            stack.append(shown and all(stack))
            continue
        if DIV_CLOSE.match(line.strip()):
            if stack:
                stack.pop()
            continue
        if DIV_OPEN.match(line.strip()):
            stack.append(all(stack))
            continue
        if not all(stack):
            continue
        for m in LABEL.finditer(line):
            label = m.group(1) or m.group(2)
            labels[label[:3]].append(label)
    return labels


def front_matter(name: str) -> dict:
    text = (REPO / "report" / f"{name}.qmd").read_text(encoding="utf-8")
    return yaml.safe_load(text.split("---")[1])


def words(text: str) -> str:
    """Whitespace collapsed (pandoc, Typst and Word wrap lines anywhere), typographic quotes plain."""
    return re.sub(r"\s+", " ", text).strip().translate(QUOTES)


@dataclass
class Outputs:
    dir: Path
    results: StudyResults

    @cached_property
    def soups(self) -> dict[str, BeautifulSoup]:
        return {n: BeautifulSoup((self.dir / f"{n}.html").read_text(encoding="utf-8"), "html.parser") for n in HTML_DOCUMENTS}

    @cached_property
    def texts(self) -> dict[str, str]:
        """What a reader sees: the text without scripts and style sheets."""
        out = {}
        for name, soup in self.soups.items():
            skip = {id(t) for t in soup(["script", "style"])}
            out[name] = words(" ".join(s for s in soup.find_all(string=True) if id(s.parent) not in skip))
        return out

    def html_text(self, name: str) -> str:
        return self.texts[name]

    @cached_property
    def pdf(self) -> PdfReader:
        return PdfReader(self.dir / "index.pdf")

    @cached_property
    def pdf_text(self) -> str:
        return words(" ".join(page.extract_text() for page in self.pdf.pages))

    @cached_property
    def docx(self):
        return docx.Document(str(self.dir / "index.docx"))

    @cached_property
    def docx_text(self) -> str:
        cells = [c.text for t in self.docx.tables for row in t.rows for c in row.cells]
        return words(" ".join([p.text for p in self.docx.paragraphs] + cells))

    def table_rows(self, name: str, label: str) -> list[dict[str, str]]:
        """Rows of the HTML table ``#label`` as {header: cell text}."""
        table = self.soups[name].find("table", id=label)
        assert table is not None, f"{name}.html has no table #{label}"
        head = [words(th.get_text(" ")) for th in table.find("thead").find_all("th")]
        return [dict(zip(head, (words(td.get_text(" ")) for td in tr.find_all("td")))) for tr in table.find("tbody").find_all("tr")]


@pytest.fixture(scope="module")
def out(rendered_project) -> Outputs:
    # the render stored these results in its cache; this loads them (same inputs, same numbers)
    results = run_study(load_spec(rendered_project.study))
    return Outputs(rendered_project.output / "report", results)


# --- 1. every output exists and opens ---------------------------------------------------------


def _dashes(table: str) -> list[int]:
    return [len(cell) for cell in table.splitlines()[1].strip("|").split("|")]


def test_pipe_table_columns_share_the_page_and_keep_their_longest_word() -> None:
    # a Table 1 of long labels and long test names (as R survival::lung's): the columns want more
    # than the page; each keeps its longest word and cell insets, and together they fit the page
    frame = pd.DataFrame({
        "Characteristic": ["ECOG performance score (physician), n (%): 0", "Calories consumed at meals (kcal), median [Q1, Q3]"],
        "Overall (n=213)": ["61 (28.6)", "975.0 [616.0, 1150.0]"], "Death: no (n=62)": ["26 (41.9)", "975.0 [588.0, 1075.0]"],
        "Death: yes (n=151)": ["35 (23.2)", "975.0 [650.0, 1175.0]"], "P value": ["<0.001", "0.529"],
        "Test": ["Chi-square (Yates)", "Mann-Whitney U"], "SMD": ["0.537", "0.038"], "Missing": ["0", "43"]})
    dashes = _dashes(pipe_table(frame))
    assert sum(dashes) <= LINE_CHARS
    words = [max(len(w) for v in [c, *frame[c]] for w in str(v).split()) for c in frame.columns]
    assert all(d >= max(6, w) + 2 for d, w in zip(dashes, words)), (dashes, words)
    assert dashes[0] == max(dashes)  # the long labels get what is left most
    # a table that fits keeps what its columns want
    small = pd.DataFrame({"Term": ["Age (per year)"], "Points": ["1.25"]})
    assert _dashes(pipe_table(small)) == [len("Age (per year)") + 2, 8]


@pytest.mark.parametrize("name", HTML_DOCUMENTS)
def test_html_output_parses_with_its_title(out: Outputs, name: str) -> None:
    soup = out.soups[name]
    assert soup.find("html") is not None and soup.find("body") is not None
    study = load_spec(REPO / "study.yaml").study
    # the study's title (the study file) replaces the front matter's placeholder
    expected = {"index": study.title, "slides": study.short_title or study.title}.get(name, front_matter(name)["title"])
    assert words(soup.title.get_text()) == expected
    assert len(out.html_text(name)) > 1000, f"{name}.html is nearly empty"


def test_pdf_opens_with_pages_figures_and_tables(out: Outputs) -> None:
    assert len(out.pdf.pages) > 5
    assert "Figure 1" in out.pdf_text and "Table 1" in out.pdf_text
    # every page of a synthetic report starts with its SYNTHETIC DATA line, then the title
    assert out.pdf_text.removeprefix("SYNTHETIC DATA — NOT REAL PATIENTS").lstrip().startswith(load_spec(REPO / "study.yaml").study.title)


def test_docx_has_real_word_tables_and_captions(out: Outputs) -> None:
    d = out.docx
    assert len(d.tables) > 10
    assert all(len(t.rows) >= 2 and len(t.columns) >= 2 for t in d.tables), "a table without a header and body row"
    captions = [p.text for p in d.paragraphs if p.style.name in ("Table Caption", "Image Caption")]
    assert any(c.startswith("Table 1:") for c in captions) and any(c.startswith("Figure 1:") for c in captions)


@pytest.mark.parametrize("name", [n for n in HTML_DOCUMENTS if n not in ("index", "slides")])
def test_audit_documents_fold_the_code_of_every_table_and_figure(out: Outputs, name: str) -> None:
    """An auditor opens the code of each table and figure (folded: ``<details>``)."""
    folded = [words(d.get_text(" ")) for d in out.soups[name].select("details.code-fold")]
    labels = source_labels(name, ReportView(out.results).sections())
    calls = [c for c in folded if re.search(r"R\.(table|figure|example_table)\(", c)]
    assert len(calls) == len(labels["fig"]) + len(labels["tbl"]), f"{name}.html: code of a table or figure is not available"


# --- 2. cross-references resolved ---------------------------------------------------------------


@pytest.mark.parametrize("name", HTML_DOCUMENTS)
def test_html_has_no_unresolved_reference(out: Outputs, name: str) -> None:
    text = out.html_text(name)
    assert not LEFTOVER.search(text), LEFTOVER.search(text) and text[max(0, LEFTOVER.search(text).start() - 80):][:160]
    soup = out.soups[name]
    ids = {el["id"] for el in soup.find_all(id=True)}
    dangling = [a["href"] for a in soup.find_all("a", href=True) if a["href"].startswith("#") and len(a["href"]) > 1
                and not a["href"].startswith("#/") and a["href"][1:] not in ids]
    assert dangling == [], f"{name}.html links to missing targets"


@pytest.mark.parametrize("fmt", ["pdf", "docx"])
def test_pdf_and_docx_have_no_unresolved_reference(out: Outputs, fmt: str) -> None:
    text = out.pdf_text if fmt == "pdf" else out.docx_text
    m = LEFTOVER.search(text)
    assert m is None, text[max(0, m.start() - 80):][:160]


# --- 3. each table and figure present -----------------------------------------------------------


@pytest.mark.parametrize("name", HTML_DOCUMENTS)
def test_html_has_every_labelled_table_and_figure(out: Outputs, name: str) -> None:
    labels = source_labels(name, ReportView(out.results).sections())
    soup = out.soups[name]
    figures = [f for f in soup.find_all("figure") if f.find("img") is not None]
    tables = [t for t in soup.find_all("table") if t.find("caption") is not None]
    assert len(figures) == len(labels["fig"])
    assert len(tables) == len(labels["tbl"])
    assert [f.get("id") for f in figures] == labels["fig"]
    assert [t.get("id") for t in tables] == labels["tbl"]
    for kind, captions in (("Figure", [f.find("figcaption") for f in figures]), ("Table", [t.find("caption") for t in tables])):
        numbers = [re.match(rf"{kind} (\d+): \S", words(c.get_text(" "))) if c is not None else None for c in captions]
        assert all(numbers), f"{name}.html: a {kind.lower()} without a numbered caption"
        assert [int(m.group(1)) for m in numbers] == list(range(1, len(captions) + 1))
    # reveal.js loads slide images lazily from data-src
    sources = [f.find("img").get("src") or f.find("img").get("data-src", "") for f in figures]
    assert all(s.startswith("data:image/png;base64,") for s in sources), "a figure is not embedded"


def test_pdf_numbers_every_table_and_figure(out: Outputs) -> None:
    labels = source_labels("index", ReportView(out.results).sections())
    for kind, key in (("Figure", "fig"), ("Table", "tbl")):
        for k in range(1, len(labels[key]) + 1):
            assert f"{kind} {k}:" in out.pdf_text, f"{kind} {k} missing from the PDF"
        assert f"{kind} {len(labels[key]) + 1}:" not in out.pdf_text


def test_docx_has_every_table_and_figure(out: Outputs) -> None:
    labels = source_labels("index", ReportView(out.results).sections())
    d = out.docx
    table_caps = [p.text for p in d.paragraphs if p.style.name == "Table Caption"]
    figure_caps = [p.text for p in d.paragraphs if p.style.name == "Image Caption"]
    assert [c.split(":")[0] for c in table_caps] == [f"Table {k}" for k in range(1, len(labels["tbl"]) + 1)]
    assert [c.split(":")[0] for c in figure_caps] == [f"Figure {k}" for k in range(1, len(labels["fig"]) + 1)]
    # calculator and banner are HTML-only: every table of the DOCX is a captioned one
    assert len(d.tables) == len(labels["tbl"])
    assert len(d.inline_shapes) == len(labels["fig"])


# --- 5. the SYNTHETIC banner -------------------------------------------------------------------


BANNER = "SYNTHETIC DATA"


@pytest.mark.parametrize("name", HTML_DOCUMENTS)
def test_html_carries_the_synthetic_banner(out: Outputs, name: str) -> None:
    assert out.results.spec.study.synthetic, "the shipped study is flagged synthetic"
    callouts = out.soups[name].select(".callout-warning")
    assert any(BANNER in words(c.get_text(" ")) for c in callouts), f"{name}.html has no SYNTHETIC DATA callout"


def test_pdf_and_docx_carry_the_synthetic_banner(out: Outputs) -> None:
    assert BANNER in words(out.pdf.pages[0].extract_text()), "the banner is not on the first PDF page"
    assert BANNER in out.docx_text


def test_banner_is_absent_for_real_data(out: Outputs) -> None:
    spec = out.results.spec
    real = spec.model_copy(update={"study": spec.study.model_copy(update={"synthetic": False})})
    assert BANNER in ReportView(out.results).banner()
    assert ReportView(replace(out.results, spec=real)).banner() == ""


# --- 4. key numbers equal StudyResults ---------------------------------------------------------


def test_abstract_numbers_equal_the_results(out: Outputs) -> None:
    r = out.results
    n = len(r.analysed)
    events = int(r.analysed[r.spec.outcome.event].sum())
    conc = r.concordance.set_index("measure")
    c = conc.loc["c_index"]
    val = r.validation.set_index(r.validation["index"].str.lower())
    expected = [
        f"{n} patients",
        f"{events} patients ({round(100 * events / n)}%) had {r.spec.outcome.event_label.lower()}",
        f"Harrell's C was {P.fmt_ci(c.estimate, c.ci_low, c.ci_high, 3).replace('(', '(95% CI ', 1)}",
        f"{P.fmt_num(val.loc['c', 'corrected'], 3)} after optimism correction",
        f"calibration slope was {P.fmt_num(val.loc['slope', 'corrected'], 3)}",
        f"B = {r.spec.analysis.bootstrap_b}",
        f"{P.fmt_num(events / len(r.model.terms), 1)} events per coefficient",
    ]
    text = out.html_text("index")
    missing = [e for e in expected if e not in text]
    assert missing == []
    assert r.spec.analysis.bootstrap_b == 50, "the session render uses B = 50"


def test_multivariable_table_equals_the_model(out: Outputs) -> None:
    r = out.results
    s = r.model.summary.set_index("term")
    rows = {row["Predictor"]: row for row in out.table_rows("index", "tbl-cox-multi")}
    assert len(rows) == len(r.model.terms)
    for t in r.model.terms:
        row = rows[term_label(r.spec, t)]
        x = s.loc[t.name]
        assert row["HR (95% CI)"] == P.fmt_ci(x.hr, x.ci_low, x.ci_high), t.name
        assert row["P value"] == format_p(x.p_value), t.name
        # and the printed HR is the estimate rounded, not another model's
        hr = float(row["HR (95% CI)"].split()[0].replace("−", "-"))
        assert abs(hr - x.hr) <= 0.005 + 1e-12


def test_discrimination_and_validation_tables_equal_the_results(out: Outputs) -> None:
    r = out.results
    c = r.concordance.set_index("measure").loc["c_index"]
    conc = {row["Measure"]: row["Estimate (95% CI)"] for row in out.table_rows("index", "tbl-concordance")}
    assert conc["Harrell's C"] == P.fmt_ci(c.estimate, c.ci_low, c.ci_high, 3)
    v = r.validation.set_index(r.validation["index"].str.lower()).loc["c"]
    row = next(x for x in out.table_rows("index", "tbl-validation") if x["Index"] == "C-index")
    assert (row["Apparent"], row["Optimism"], row["Corrected"]) == tuple(P.fmt_num(v[k], 3) for k in ("apparent", "optimism", "corrected"))
    assert abs(v.apparent - c.estimate) < 1e-9, "validation's apparent C is the reported C-index"


def test_nomogram_numbers_equal_the_results(out: Outputs) -> None:
    r = out.results
    text = out.html_text("index")
    horizon = f"{r.spec.outcome.horizon:g} {r.spec.outcome.time_unit}"
    # S<sub>0</sub>(12 months): the subscript is a text node of its own
    assert re.search(rf"S ?0 ?\({horizon}\) = {P.fmt_num(r.model.baseline_survival(), 4)}", text)
    example = r.example  # the worked example, scored in the analysis
    risk = r.predictions["risk_at_horizon"].to_numpy()
    row = r.analysed.iloc[int(np.argmin(np.abs(risk - np.median(risk))))]  # the median patient's values
    again = predict_risk(r.spec, r.nomogram, {v: row[v] if r.spec.variable(v).kind == "continuous" else str(row[v])
                                               for v in r.model.variables})
    assert again.total_points == example.total_points and again.risk == example.risk
    assert f"scores {P.fmt_num(example.total_points, 1)} points, a predicted risk of {P.fmt_pct(example.risk, 1)}" in text
    rows = out.table_rows("index", "tbl-example")
    assert [row["Points"] for row in rows] == [P.fmt_num(x, 1) for x in example.points["points"]]


def test_slides_show_the_same_numbers_as_the_report(out: Outputs) -> None:
    r = out.results
    c = r.concordance.set_index("measure").loc["c_index"]
    val = r.validation.set_index(r.validation["index"].str.lower())
    text = out.html_text("slides")
    assert f"Apparent C-index {P.fmt_ci(c.estimate, c.ci_low, c.ci_high, 3).replace('(', '(95% CI ', 1)}" in text
    assert f"Corrected C {P.fmt_num(val.loc['c', 'corrected'], 3)}" in text
    assert f"{len(r.analysed)} patients" in text
