"""Any study from one study file: three unlike studies rendered in every format (issue 9).

The shipped synthetic study (months, univariable screen, event details, repeated measures,
logistic sensitivity analysis), lifelines' rossi (weeks, prespecified, real data, nothing
optional) and R's ``survival::lung`` (days, prespecified, a sparse ordinal level, missing
values) are each rendered once with the built-in engine (B = 50).  Each report must speak of
its own study alone: the words of the other studies (title, outcome, variable labels, time
points, the shipped study's procedure) never appear in it, "synthetic" appears only when its
data are synthetic, its title is the study's, its sections are the ones it has, and its key
numbers are its results.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import docx
import pytest
from bs4 import BeautifulSoup
from pypdf import PdfReader

from cementleak_stats.document import ReportView
from cementleak_stats.spec import StudySpec, load_spec
from cementleak_stats.study import run_study

from conftest import ROOT, RenderedProject, render_once

pytestmark = [pytest.mark.render, pytest.mark.slow, pytest.mark.xdist_group("render")]

STUDIES = {"shipped": None, "rossi": ROOT / "tests" / "studies" / "rossi", "lung": ROOT / "tests" / "studies" / "lung"}
HTML_DOCUMENTS = ("index", "baseline", "cox", "nomogram", "validation", "decision", "outcomes", "slides")
#: words that only the shipped study's own files may bring into a report (its procedure,
#: disease and measures; from its study file, narrative and data dictionary)
SHIPPED_ONLY = ("vertebroplasty", "PVP", "leakage", "cement", "osteoporotic", "Genant", "VAS", "ODI", "Oswestry",
                "vertebral", "fracture")
#: labels too generic to belong to one study (every cohort may have an age)
GENERIC = {"age", "sex", "time", "event", "death", "status"}


@pytest.fixture(scope="session", params=list(STUDIES))
def study(request, tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> tuple[str, RenderedProject]:
    name = request.param
    if name == "shipped":
        return name, request.getfixturevalue("rendered_project")
    return name, render_once(tmp_path_factory, worker_id, f"rendered-{name}", STUDIES[name])


def _spec(name: str) -> StudySpec:
    return load_spec((STUDIES[name] or ROOT) / "study.yaml")


def study_words(spec: StudySpec) -> set[str]:
    """Phrases that belong to this study alone (lower case)."""
    words = {spec.study.title, spec.study.short_title, spec.outcome.event_label, spec.outcome.time_label,
             spec.study.population, spec.outcome.time_origin}
    words |= {v.label for v in spec.variables}
    if spec.repeated:
        words |= {m.label for m in spec.repeated.measures} | {t.label for t in spec.repeated.timepoints}
    return {w.strip().lower() for w in words if w and len(w.strip()) >= 4 and w.strip().lower() not in GENERIC}


def foreign_words(name: str) -> set[str]:
    own = study_words(_spec(name))
    out = set()
    for other in STUDIES:
        if other != name:
            out |= study_words(_spec(other)) - own
    if name != "shipped":
        out |= {w.lower() for w in SHIPPED_ONLY}
    return out


@cache
def output_texts(output: Path) -> dict[str, str]:
    """The reader's text of every rendered file (HTML without scripts/styles, PDF, DOCX)."""
    texts = {}
    for doc in HTML_DOCUMENTS:
        soup = BeautifulSoup((output / "report" / f"{doc}.html").read_text(encoding="utf-8"), "html.parser")
        for tag in soup(["script", "style"]):
            tag.decompose()
        texts[f"{doc}.html"] = soup.get_text(" ")
    texts["index.pdf"] = " ".join(page.extract_text() or "" for page in PdfReader(output / "report" / "index.pdf").pages)
    d = docx.Document(str(output / "report" / "index.docx"))
    texts["index.docx"] = " ".join([p.text for p in d.paragraphs] + [c.text for t in d.tables for row in t.rows for c in row.cells])
    return {k: re.sub(r"\s+", " ", v) for k, v in texts.items()}


def test_every_format_is_written(study):
    _, rendered = study
    out = rendered.output / "report"
    expected = [f"{d}.html" for d in HTML_DOCUMENTS] + ["index.pdf", "index.docx"]
    assert [f for f in expected if not (out / f).is_file()] == []


def test_report_names_no_other_study(study):
    name, rendered = study
    foreign = foreign_words(name)
    found = {}
    for file, text in output_texts(rendered.output).items():
        low = text.lower()
        hits = sorted(w for w in foreign if re.search(r"(?<![\w-])" + re.escape(w) + r"(?![\w-])", low))
        if hits:
            found[file] = hits
    assert found == {}, f"{name}: words of other studies in its report: {found}"


def test_synthetic_only_when_the_data_are(study):
    name, rendered = study
    synthetic = _spec(name).study.synthetic
    for file, text in output_texts(rendered.output).items():
        if synthetic:
            assert "SYNTHETIC" in text.upper(), file
        else:
            assert "synthetic" not in text.lower(), f"{name}: 'synthetic' in {file} of a study with real data"


def test_title_is_the_studys(study):
    name, rendered = study
    spec = _spec(name)
    texts = output_texts(rendered.output)
    title = re.sub(r"\s+", " ", spec.study.title)
    for file in ("index.html", "index.pdf", "index.docx"):
        assert title in texts[file].replace("’", "'"), f"{name}: title missing from {file}"
    slides = BeautifulSoup((rendered.output / "report" / "slides.html").read_text(encoding="utf-8"), "html.parser")
    assert (spec.study.short_title or spec.study.title) in slides.get_text(" ")


def test_sections_follow_what_the_study_has(study):
    name, rendered = study
    spec = _spec(name)
    html = (rendered.output / "report" / "index.html").read_text(encoding="utf-8")
    soup = BeautifulSoup(html, "html.parser")
    ids = {t.get("id") for t in soup.find_all(id=True)}
    assert ("sec-outcomes" in ids) == (spec.repeated is not None)
    assert ("tbl-event-details" in ids) == bool(spec.outcome.event_details)
    assert ("tbl-logistic" in ids) == spec.analysis.logistic_sensitivity
    text = soup.get_text(" ")
    screened = spec.analysis.selection == "univariable_screen"
    assert ("screen repeated" in text) == screened
    assert ("prespecified" in text) == (not screened)
    # every table and figure that is shown is numbered consecutively (hidden ones take no number)
    for kind in ("Table", "Figure"):
        numbers = [int(n) for n in re.findall(rf"{kind} (\d+):", text)]
        assert numbers == list(range(1, len(numbers) + 1)), f"{name}: {kind} numbers {numbers}"


def test_key_numbers_are_the_studys_results(study):
    name, rendered = study
    results = run_study(load_spec(rendered.study))
    R = ReportView(results)
    text = output_texts(rendered.output)["index.html"]
    for value in (f"{R.n} patients", f"{R.n_events} patients ({R.events_pct})", R.c_index, R.c_corrected, R.s0):
        assert value in text, f"{name}: {value!r} not in the report"


def test_worked_example_shows_the_values_as_recorded(study):
    # rossi's ages and prior convictions are whole numbers: 20 and 1, not 20.0 and 1.0
    name, rendered = study
    results = run_study(load_spec(rendered.study))
    soup = BeautifulSoup((rendered.output / "report" / "index.html").read_text(encoding="utf-8"), "html.parser")
    table = soup.find("table", id="tbl-example")
    head = [th.get_text(" ").strip() for th in table.find("thead").find_all("th")]
    shown = [dict(zip(head, (td.get_text(" ").strip() for td in tr.find_all("td")))) for tr in table.find("tbody").find_all("tr")]
    points = results.example.points
    assert len(shown) == len(points)
    for cell, v, value in zip(shown, points["predictor"], points["value"]):
        if results.spec.variable(v).kind == "continuous":
            x = float(value)
            expected = f"{round(x)}" if x == round(x) else f"{x:g}"
            assert cell["Value"] == expected.replace("-", "\u2212"), (name, v, cell)
