"""Real Quarto renders the project as the built-in engine does (issue 10).

Runs only where a Quarto CLI is found: ``$CEMENTLEAK_QUARTO`` or ``quarto`` on ``PATH`` (CI
installs the verification copy from ``../shared/tools/quarto`` when that folder exists, see
``.ci/run``); skipped with the reason otherwise.  One copy of the project (bootstrap B = 50)
is rendered by ``cementleak report --engine quarto`` and compared, as a reader would, with the
built-in engine's render of the same project that the other report tests share (with
``CEMENTLEAK_TIMING=1`` both engines render this copy one after the other, timed):

* the same files, and each HTML with the same tables, figures and cross-references (captions
  in order, reference links with their text), none unresolved;
* the PDF prints at least 98 % of the words of the HTML (overprinted or clipped table rows
  lose words), with every table and figure caption;
* no HTML other than the slides is a reveal.js deck, and no HTML loads anything from beside
  itself (every ``src`` and stylesheet is embedded; no link to a local file);
* the Quarto render takes at most twice the built-in engine's time (both printed).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest
from bs4 import BeautifulSoup

from cementleak_stats.render.quarto import QUARTO_ENV, find_quarto
from tests.conftest import copy_project

QUARTO = find_quarto()
pytestmark = [
    pytest.mark.render,
    pytest.mark.xdist_group("real-quarto"),
    pytest.mark.skipif(QUARTO is None, reason=f"no Quarto CLI: set {QUARTO_ENV} or put quarto on PATH (CI installs the verification copy from ../shared/tools/quarto)"),
]

CLI = Path(sys.executable).with_name("cementleak")
#: at most this many times the built-in engine's render time
MAX_RATIO = 2.0
#: time both engines (a quiet machine); otherwise the built-in render is the one the report tests share
TIMED = bool(os.environ.get("CEMENTLEAK_TIMING"))
REF_PREFIXES = ("#fig-", "#tbl-", "#sec-")
UNRESOLVED = re.compile(r"\?\?|\?@|(?<![\w.])@(?:fig|tbl|sec)-")


def words(text: str) -> str:
    return re.sub(r"\s+", " ", text.replace("\xa0", " ")).strip()


@dataclass(frozen=True)
class Render:
    engine: str
    dir: Path  # <project>/_output/report
    seconds: float | None  # the render step, as `cementleak report --timings` measured it (timed runs)
    log: str

    def soup(self, name: str) -> BeautifulSoup:
        return BeautifulSoup((self.dir / name).read_text(encoding="utf-8"), "html.parser")


def _report(root: Path, study: Path, engine: str) -> Render:
    timings = root / f"timings-{engine}.json"
    env = dict(os.environ)
    if engine == "quarto":
        env[QUARTO_ENV] = str(QUARTO)
    proc = subprocess.run([str(CLI), "report", str(study), "--project", str(root), "--engine", engine, "--timings", str(timings)],
                          cwd=root, env=env, capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    steps = json.loads(timings.read_text(encoding="utf-8"))
    seconds = next(s["seconds"] for s in steps if s["step"].startswith("render ("))
    out = root / "_output" / "report"
    kept = root / f"_output-{engine}"
    shutil.copytree(out, kept)  # the next engine's render replaces _output
    return Render(engine, kept, seconds, proc.stdout + proc.stderr)


@pytest.fixture(scope="module")
def renders(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Render]:
    root = tmp_path_factory.mktemp("real-quarto")
    study = copy_project(root)
    if not TIMED:
        # the built-in render of the same project (B = 50) that the other report tests read
        shared = request.getfixturevalue("rendered_project")
        builtin = Render("builtin", shared.output / "report", None, shared.log)
        return {"builtin": builtin, "quarto": _report(root, study, "quarto")}
    # timed: both engines in this copy, one after the other, each from a cold start of its own
    # (no previous render outputs); the built-in engine first, which also computes the analysis
    # that the second render reads from the cache
    renders = {engine: _report(root, study, engine) for engine in ("builtin", "quarto")}
    builtin_s, quarto_s = renders["builtin"].seconds, renders["quarto"].seconds
    print(f"\nrender: built-in engine {builtin_s:.1f} s, real Quarto {quarto_s:.1f} s, ratio {quarto_s / builtin_s:.2f}")
    return renders


def _files(d: Path) -> list[str]:
    return sorted(p.relative_to(d).as_posix() for p in d.rglob("*") if p.is_file())


def _html_names(renders: dict[str, Render]) -> list[str]:
    return [n for n in _files(renders["builtin"].dir) if n.endswith(".html")]


def _main(soup: BeautifulSoup) -> BeautifulSoup:
    for el in soup(["script", "style", "nav"]):
        el.decompose()
    return soup


def captions(soup: BeautifulSoup) -> list[str]:
    """Table and figure captions in document order ("Table 2: Baseline ...")."""
    return [words(c.get_text(" ")) for c in soup.find_all(["caption", "figcaption"]) if re.match(r"(Table|Figure)\s\d", words(c.get_text(" ")))]


def headings(soup: BeautifulSoup) -> list[str]:
    """The document's title and section headings, in order (numbers included)."""
    body = _main(soup)
    return [words(h.get_text(" ")) for h in body.find_all(["h1", "h2", "h3", "h4"]) if words(h.get_text(" "))]


def references(soup: BeautifulSoup) -> Counter[tuple[str, str]]:
    """In-text cross-references: (target, text) of each link to a figure, table or section
    (the table of contents left out)."""
    body = _main(soup)
    return Counter((a["href"], words(a.get_text(" "))) for a in body.find_all("a", href=True) if a["href"].startswith(REF_PREFIXES))


def visible_text(soup: BeautifulSoup) -> str:
    """What the PDF also prints: the document's text without code, the calculator and navigation."""
    body = _main(soup)
    for el in body.select("details, pre, .calculator, form, .cl-calculator, [id*=calculator]"):
        el.decompose()
    return words(body.get_text(" "))


def tokens(text: str) -> Counter[str]:
    return Counter(t.lower() for t in re.findall(r"[A-Za-z]{2,}|\d+(?:\.\d+)?", text))


def pdf_text(pdf: Path) -> str:
    """The PDF's text as poppler's pdftotext reads it (pypdf where poppler is not installed)."""
    if shutil.which("pdftotext"):
        return subprocess.run(["pdftotext", "-enc", "UTF-8", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    from pypdf import PdfReader

    return "\n".join(page.extract_text() for page in PdfReader(pdf).pages)


# --- the same files, tables, figures and references -------------------------------------------


def test_same_files(renders: dict[str, Render]) -> None:
    assert _files(renders["quarto"].dir) == _files(renders["builtin"].dir)


@pytest.mark.parametrize("kind", ["headings", "captions", "references"])
def test_each_html_has_the_same_sections_tables_figures_and_references(renders: dict[str, Render], kind: str) -> None:
    read = {"headings": headings, "captions": captions, "references": references}[kind]
    for name in _html_names(renders):
        ours, theirs = (read(renders[e].soup(name)) for e in ("builtin", "quarto"))
        assert ours or name != "index.html", f"{name}: no {kind} found"
        assert theirs == ours, f"{name}: real Quarto's {kind} differ from the built-in engine's"


def test_no_unresolved_reference(renders: dict[str, Render]) -> None:
    for engine, render in renders.items():
        for name in _html_names(renders):
            soup = render.soup(name)
            text = words(_main(soup).get_text(" "))
            m = UNRESOLVED.search(text)
            assert m is None, f"{engine} {name}: unresolved reference: {text[max(0, m.start() - 60):m.end() + 40]}"
            ids = {el["id"] for el in soup.find_all(id=True)}
            dangling = [a["href"] for a in soup.find_all("a", href=True) if a["href"].startswith(REF_PREFIXES) and a["href"][1:] not in ids]
            assert dangling == [], f"{engine} {name}: links to missing targets"
        m = UNRESOLVED.search(words(pdf_text(render.dir / "index.pdf")))
        assert m is None, f"{engine} index.pdf: unresolved reference"


# --- the PDF prints what the HTML says -----------------------------------------------------------


@pytest.mark.parametrize("engine", ["quarto", "builtin"])
def test_pdf_prints_the_words_of_the_html(renders: dict[str, Render], engine: str) -> None:
    render = renders[engine]
    html = tokens(visible_text(render.soup("index.html")))
    raw = pdf_text(render.dir / "index.pdf")
    # a word hyphenated at a line end counts when its halves are joined
    pdf = tokens(raw) + tokens(re.sub(r"(\w)-\n(\w)", r"\1\2", raw))
    missing = html - pdf
    share = 1 - sum(missing.values()) / sum(html.values())
    print(f"{engine}: the PDF prints {share:.1%} of the HTML's {sum(html.values())} words; missing: {missing.most_common(12)}")
    assert share >= 0.98
    text = words(raw)
    for caption in captions(render.soup("index.html")):
        assert caption.split(":")[0] + ":" in text, f"{caption.split(':')[0]} is not in the PDF"


# --- self-contained HTML, slides only in the deck ------------------------------------------------


def test_only_the_slides_are_a_revealjs_deck(renders: dict[str, Render]) -> None:
    for engine, render in renders.items():
        for name in _html_names(renders):
            deck = render.soup(name).select_one("div.reveal") is not None
            slides = name.split(".")[0] == "slides"  # slides.html, slides.zh.html
            assert deck == slides, f"{engine} {name}: {'not ' if not deck else ''}a reveal.js deck"


def test_html_loads_nothing_from_beside_itself(renders: dict[str, Render]) -> None:
    for engine, render in renders.items():
        for name in _html_names(renders):
            soup = render.soup(name)
            local = []
            for el in soup.find_all(src=True):
                if not el["src"].startswith("data:"):
                    local.append(f"<{el.name} src={el['src'][:80]}>")
            for el in soup.find_all(href=True):
                href = el["href"]
                if el.name == "link" and not href.startswith("data:"):
                    local.append(f"<link href={href[:80]}>")
                elif not re.match(r"(#|data:|https?:|mailto:)", href):
                    local.append(f"<{el.name} href={href[:80]}>")
            assert local == [], f"{engine} {name} loads or links files beside it: {local[:5]}"


# --- time ------------------------------------------------------------------------------------------


@pytest.mark.skipif(not TIMED, reason="a timing ratio is measured on a quiet machine: set CEMENTLEAK_TIMING=1")
def test_quarto_takes_at_most_twice_the_builtin_time(renders: dict[str, Render]) -> None:
    builtin, quarto = renders["builtin"].seconds, renders["quarto"].seconds
    print(f"render: built-in engine {builtin:.1f} s, real Quarto {quarto:.1f} s, ratio {quarto / builtin:.2f}")
    assert quarto <= MAX_RATIO * builtin
