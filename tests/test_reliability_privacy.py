"""Privacy (issue 6, item 6): no patient identifier in any output; the HTML loads nothing remote.

* the rendered project (``rendered_project`` fixture: html, pdf, docx, slides and the results
  files) is scanned file by file — HTML, CSV, JSON, SVG and other text as text, PDF through pypdf,
  DOCX through python-docx and its raw XML parts — for every patient id of the cohort and
  outcome files;
* every HTML file: no ``http(s)://`` or ``//`` address in ``script``, ``link``, ``img`` (nor
  ``iframe``, ``source``, ``video``, ``audio``, ``embed``, ``object``), nor in CSS ``url()`` /
  ``@import``;
* fast: a study copy with an ``identifying: true`` column (a hospital number) and an exclusion
  rule: neither the identifying values nor the ids (excluded patients' included) appear in the
  results files, the display tables or the risk calculator.
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from cementleak_stats import presentation as P
from cementleak_stats.calculator import calculator_html
from cementleak_stats.document import pipe_table
from cementleak_stats.export import write_results
from cementleak_stats.spec import load_spec
from cementleak_stats.study import compute_study

try:
    from test_reliability_support import REPO, SHIPPED, study_copy
except ImportError:  # pragma: no cover
    from tests.test_reliability_support import REPO, SHIPPED, study_copy

TEXT_SUFFIXES = {".html", ".htm", ".csv", ".json", ".svg", ".md", ".txt", ".css", ".js", ".typ", ".xml", ".yaml"}
REMOTE = re.compile(r"^\s*(?:[a-z][a-z0-9+.-]*:)?//", re.I)  # http://, https://, //cdn..., ftp://
CSS_REMOTE = re.compile(r"""(?:url\(\s*['"]?|@import\s+['"])\s*(?:[a-z][a-z0-9+.-]*:)?//""", re.I)
LOADING = {"script": "src", "link": "href", "img": "src", "iframe": "src", "source": "src", "video": "src",
           "audio": "src", "embed": "src", "object": "data"}


def file_text(path: Path) -> str:
    """Every piece of text a reader of ``path`` could see (and, for DOCX, its raw XML)."""
    suffix = path.suffix.lower()
    if suffix in TEXT_SUFFIXES:
        return path.read_text(encoding="utf-8", errors="replace")
    if suffix == ".pdf":
        from pypdf import PdfReader

        reader = PdfReader(path)
        return "\n".join((page.extract_text() or "") for page in reader.pages) + str(reader.metadata or "")
    if suffix == ".docx":
        import docx

        d = docx.Document(str(path))
        parts = [p.text for p in d.paragraphs]
        parts += [c.text for t in d.tables for row in t.rows for c in row.cells]
        parts += [p.text for s in d.sections for p in (*s.header.paragraphs, *s.footer.paragraphs)]
        with zipfile.ZipFile(path) as z:  # comments, notes, properties: anything python-docx skips
            parts += [z.read(n).decode("utf-8", "replace") for n in z.namelist() if n.endswith(".xml")]
        return "\n".join(parts)
    return ""


def patient_ids() -> set[str]:
    ids = set(pd.read_csv(REPO / "data" / "cohort.csv", dtype=str)[SHIPPED.study.id_column])
    if SHIPPED.repeated is not None:
        ids |= set(pd.read_csv(REPO / "data" / "outcomes.csv", dtype=str)[SHIPPED.repeated.id])
    return ids


def leaks(text: str, secrets: set[str]) -> list[str]:
    return sorted(s for s in secrets if s in text)


def remote_resources(html: str) -> list[str]:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(html, "html.parser")
    found = [f"<{tag} {attr}={el.get(attr)!r}>" for tag, attr in LOADING.items() for el in soup.find_all(tag)
             if el.get(attr) and REMOTE.match(el.get(attr))]
    found += [f"srcset {el.get('srcset')!r}" for el in soup.find_all(srcset=True) if "//" in el.get("srcset")]
    css = [s.get_text() for s in soup.find_all("style")] + [el.get("style") for el in soup.find_all(style=True)]
    found += [f"css {m.group(0)!r}" for text in css for m in CSS_REMOTE.finditer(text)]
    return found


# --- the helpers catch what they must (so that an empty finding means something) ---------------
def test_scanners_find_planted_leaks(tmp_path: Path) -> None:
    import docx

    doc = docx.Document()
    doc.add_paragraph("Patient SYN-042 had leakage")
    doc.sections[0].footer.paragraphs[0].text = "SYN-077"
    doc.save(tmp_path / "x.docx")
    assert leaks(file_text(tmp_path / "x.docx"), {"SYN-042", "SYN-077", "SYN-001"}) == ["SYN-042", "SYN-077"]
    html = ('<html><head><script src="https://cdn.example/r.js"></script><link rel="stylesheet" href="//cdn/x.css">'
            '<style>@import "https://f.example/a.css"; b {background: url(data:image/png;base64,AA)}</style></head>'
            '<body><img src="figures/a.png"><img src="http://x/y.png"><a href="https://doi.org/10">ok</a></body></html>')
    assert len(remote_resources(html)) == 4  # links (<a href>) load nothing and are allowed


# --- the rendered report (slow: renders once per session) ---------------------------------------
@pytest.mark.slow
def test_no_patient_id_in_any_rendered_or_written_file(rendered_project) -> None:
    files = [p for p in sorted(rendered_project.output.rglob("*")) if p.is_file()]
    kinds = {p.suffix.lower() for p in files}
    assert {".html", ".pdf", ".docx", ".csv", ".json"} <= kinds, kinds  # the scan covers every kind
    ids = patient_ids()
    assert len(ids) >= 100
    found = {}
    for path in files:
        hit = leaks(file_text(path), ids)
        if hit:
            found[path.relative_to(rendered_project.output).as_posix()] = hit[:5]
    assert found == {}, f"patient ids in outputs: {found}"


@pytest.mark.slow
def test_rendered_html_loads_nothing_from_the_network(rendered_project) -> None:
    pages = sorted(rendered_project.output.rglob("*.html"))
    assert pages
    found = {p.name: remote_resources(p.read_text(encoding="utf-8")) for p in pages}
    assert {k: v for k, v in found.items() if v} == {}


# --- an identifying column and excluded patients (fast) ------------------------------------------
HOSPITAL = "hospital_number"


def _with_hospital_number(c: pd.DataFrame) -> pd.DataFrame:
    c.insert(1, HOSPITAL, [73_910_000 + 7919 * i for i in range(len(c))])
    return c


def _identifying(variables: list[dict]) -> None:
    variables.insert(0, {"name": HOSPITAL, "label": "Hospital number", "kind": "continuous", "integer": True,
                         "identifying": True, "description": "identifying: never shown"})


def test_identifying_column_and_excluded_ids_never_written(tmp_path: Path) -> None:
    study = study_copy(tmp_path / "study", edit=_with_hospital_number, variables=_identifying, outcomes=True)
    text = study.read_text(encoding="utf-8").replace(
        "\nanalysis:", "\nexclusions:\n- {column: days_injury_to_surgery, op: '>', value: 20, reason: late surgery}\nanalysis:", 1)
    study.write_text(text, encoding="utf-8")
    r = compute_study(load_spec(study))
    assert len(r.data.excluded) > 0 and HOSPITAL in r.spec.identifying_columns
    cohort = pd.read_csv(tmp_path / "study" / "cohort.csv", dtype=str)
    secrets = set(cohort[SHIPPED.study.id_column]) | set(cohort[HOSPITAL])
    write_results(r, tmp_path / "results", figures=False)
    written = {p.name: file_text(p) for p in (tmp_path / "results").iterdir()}
    shown = {f"table {name}": pipe_table(make(r)) for name, make in P.TABLES.items()}
    shown["calculator"] = calculator_html(r)
    found = {k: leaks(v, secrets)[:5] for k, v in {**written, **shown}.items() if leaks(v, secrets)}
    assert found == {}, f"identifiers in outputs: {found}"


GUARANTEES = [
    ("scanners-find-planted-leaks", "the scanners find an id in DOCX body and footer and 4 kinds of remote resource"),
    ("rendered-outputs-have-no-ids", "no cohort or outcome id in any HTML, PDF, DOCX, CSV, JSON or SVG of a full render"),
    ("html-is-self-contained", "no script, stylesheet, image, frame or CSS import from the network"),
    ("identifying-column-and-excluded-ids", "`identifying: true` values and excluded patients' ids appear in no "
                                            "results file, display table or calculator"),
]
