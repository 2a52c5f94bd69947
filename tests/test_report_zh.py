"""The report in Simplified Chinese (issue 15): the same documents, cells and numbers in Chinese.

* The Chinese documents (``report/*.zh.qmd`` and ``report/_zh/``) define the same figure,
  table and section labels and the same conditional sections, in the same order, as the
  English ones: they cannot drift apart (fast, no render).
* The catalog (``cementleak_stats/i18n/zh.yaml``) keeps every message's fields; English is the
  messages themselves, and a study's words given per language change no English output.
* The session render (``rendered_project``: the shipped study asks for ``[en, zh]``, so one run
  writes both languages) has the Chinese report in every format with no English sentence left
  outside names, abbreviations and the English abstract, every table and figure of the English
  report, the Chinese fonts embedded in the PDF, and the same numbers as the English report.
"""

from __future__ import annotations

import re
import subprocess
from collections import Counter
from pathlib import Path

import docx
import pytest
import yaml
from bs4 import BeautifulSoup
from pypdf import PdfReader

from cementleak_stats import i18n
from cementleak_stats.document import ReportView
from cementleak_stats.spec import load_spec, parse_spec

REPO = Path(__file__).resolve().parents[1]
REPORT = REPO / "report"
INCLUDE = re.compile(r"^\{\{<\s*include\s+(\S+?)\s*>\}\}\s*$")
#: what must match between the languages: labels of cells, figures, tables and sections, and
#: the conditions that switch sections on and off
STRUCTURE = re.compile(r"^#\|\s*label:\s*(\S+)|\{#((?:fig|tbl|sec)-[\w-]+)[\s}]|(when-(?:meta|format)=\"[^\"]+\")|"
                       r"(content-(?:visible|hidden))")


def expanded(path: Path, main: Path | None = None) -> list[str]:
    """The lines of a ``.qmd`` with its includes expanded (paths relative to the main document, as in Quarto)."""
    main = main or path
    out: list[str] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        m = INCLUDE.match(line.strip())
        out += expanded(main.parent / m.group(1), main) if m else [line]
    return out


def structure(path: Path, *, skip_condition: str | None = None) -> list[str]:
    """Labels and conditions in document order; a block under ``skip_condition`` is left out."""
    out, depth, skipping = [], 0, 0
    for line in expanded(path):
        if skip_condition and skip_condition in line and line.startswith(":::"):
            skipping = depth = 1
            continue
        if skipping:
            depth += line.startswith("::: ") or line.startswith(":::{")
            depth -= line.strip() == ":::"
            skipping = depth > 0
            continue
        out += [next(g for g in m.groups() if g) for m in STRUCTURE.finditer(line)]
    return out


@pytest.mark.parametrize("name", ["index", "slides"])
def test_chinese_documents_have_the_english_structure(name: str) -> None:
    english = structure(REPORT / f"{name}.qmd")
    chinese = structure(REPORT / f"{name}.zh.qmd", skip_condition='when-meta="cl.english_abstract"')
    assert english, f"{name}.qmd has no labels"
    assert chinese == english, ("report/{0}.zh.qmd (and report/_zh/) must define the labels and conditions of "
                                "report/{0}.qmd in the same order; translate the English change".format(name))


# --- the catalog ---------------------------------------------------------------------------------


def test_catalog_loads_and_keeps_every_field() -> None:
    words = i18n.catalog("zh")  # raises on a message translated twice or a field lost
    assert len(words) > 300
    assert words["Harrell's C"] == "Harrell C指数" and words["Nomogram"] == "列线图"
    assert all(v.strip() for v in words.values())


def test_english_is_the_message_itself() -> None:
    assert i18n.T("{n} months", n=12) == "12 months"
    with i18n.language("zh"):
        assert i18n.T("{n} months", n=12) == "12个月"
        assert i18n.text("Time-dependent AUC just before 12 months") == "时间依赖AUC（12个月前）"
        assert i18n.series(["a", "b", "c"]) == "a、b和c"
    assert i18n.series(["a", "b", "c"]) == "a, b and c"
    assert i18n.document_language("report/index.zh.qmd") == "zh" and i18n.document_language("index.qmd") == "en"


def test_study_words_per_language() -> None:
    spec = load_spec(REPO / "study.yaml")
    ct = spec.variable("ct_value_hu")
    assert ct.label == "CT value" and ct.localized("zh").label == "CT值"
    zh = spec.localized("zh")
    assert zh.outcome.event_label == "骨水泥渗漏" and zh.variable("sex").level_label("female") == "女"
    assert spec.variable("sex").level_label("female") == "female"  # English unchanged: the level itself
    assert spec.missing_translations("zh") == []
    data = yaml.safe_load((REPO / "study.yaml").read_text(encoding="utf-8"))
    data["variables"][0]["label"] = {"zh": "年龄"}
    with pytest.raises(Exception, match="English text is missing"):
        parse_spec(data)


def _english_words(data: object) -> object:
    """The study file with every per-language text replaced by its English."""
    if isinstance(data, dict):
        if data and set(data) <= {"en", "zh"} and "en" in data:
            return data["en"]
        return {k: _english_words(v) for k, v in data.items() if not (isinstance(v, dict) and set(v) == {"zh"})}
    if isinstance(data, list):
        return [_english_words(v) for v in data]
    return data


@pytest.mark.slow
def test_per_language_words_change_no_english_output(tmp_path: Path) -> None:
    """The English report of the shipped study equals that of the same study written in English only."""
    from conftest import copy_project

    study = copy_project(tmp_path / "both", bootstrap_b=20)
    plain = tmp_path / "plain"
    copy_project(plain, bootstrap_b=20)
    data = yaml.safe_load((plain / "study.yaml").read_text(encoding="utf-8"))
    (plain / "study.yaml").write_text(yaml.safe_dump(_english_words(data), sort_keys=False, allow_unicode=True), encoding="utf-8")
    from cementleak_stats.presentation import TABLES
    from cementleak_stats.study import run_study

    a, b = (ReportView(run_study(load_spec(p))) for p in (study, plain / "study.yaml"))
    assert b.spec.variable("ct_value_hu").translations == {}
    for name in ("setting", "within", "selection", "coding", "predictors", "conclusion", "population", "title"):
        assert getattr(a, name) == getattr(b, name), name
    assert a.limitations() == b.limitations()
    for name in TABLES:
        if name != "colophon":  # the study file's hash differs
            assert a.table(name).frame.equals(b.table(name).frame), name


# --- the rendered Chinese report -----------------------------------------------------------------

#: words that stay Latin in a Chinese report: names, abbreviations, software, statistics
ALLOWED = re.compile(
    r"Harrell|Somers|Dxy|Kaplan[- ]Meier|Cox(?:-Snell)?|Efron|Schoenfeld|LOWESS|Bootstrap|Riley|Nagelkerke|"
    r"van|Houwelingen|Welch|Mann-Whitney|Fisher|Friedman|Wilcoxon|Holm|Yates|Vickers|Steyerberg|Crowson|Atkinson|"
    r"Therneau|Noma|Collins|Genant|Oswestry|Chen|Liu|Zhang|TRIPOD|AI|BMJ|PVP|CT|HU|VAS|ODI|BMD|SMD|HR|OR|CI|AUC|"
    r"ICI|IPCW|SE|SD|Brier|Poisson|Shapiro-Wilk|Rubin|Barnard|R|rms|survival|riskRegression|lifelines|statsmodels|"
    r"tableone|numpy|scipy|pandas|python|cementleak\S*|Git|SHA-256|E50|E90|Emax|LR|O/E|pt|vs|S0|lp|exp|log|df|"
    r"logistic|Cox|Quarto|Typst|Noto|mL|kg|m²|cox\.zph|plot|survfit\.coxph|validate|calibrate|nomogram|"
    r"concordance|val\.surv|Score|coxph|CoxPHFitter|friedman\.test|wilcox\.test|t\.test|simulate|newdata|fit|"
    r"Global|NA|C|D|U|Q|g|n|B|P|t|x|S|T|CIs?")
#: a run of four or more Latin words: an English sentence, unless its words are all allowed
RUN = re.compile(r"(?:[A-Za-z][A-Za-z'’.-]*[\s,;:()/]+){3,}[A-Za-z][A-Za-z'’.-]*")


#: two Latin words in a row (a table header, a legend): English unless both are allowed
PAIR = re.compile(r"(?<![A-Za-z])([A-Za-z][A-Za-z'’-]{2,})[ \t]+([A-Za-z][A-Za-z'’-]{2,})(?![A-Za-z])")


def english_sentences(text: str) -> list[str]:
    """Runs of four or more Latin words that are not all names, abbreviations or software, and
    two words in a row of which one is neither."""
    out = []
    for m in RUN.finditer(text):
        words = re.findall(r"[A-Za-z][A-Za-z'’.-]*[A-Za-z]|[A-Za-z]", m.group(0))
        if sum(not ALLOWED.fullmatch(w.rstrip(".")) for w in words) >= 2:
            out.append(m.group(0).strip())
    for line in text.splitlines():
        for m in PAIR.finditer(line):
            if not all(ALLOWED.fullmatch(w.strip("'’")) for w in m.groups()):
                out.append(m.group(0))
    return out


def _html_text(path: Path, *, drop_english_abstract: bool = True) -> str:
    soup = BeautifulSoup(path.read_text(encoding="utf-8"), "html.parser")
    for tag in soup(["script", "style", "code", "pre", "details"]):
        tag.decompose()
    if drop_english_abstract:  # the English abstract the study asks for (report.language: [en, zh])
        heading = soup.find(lambda t: t.name in ("h1", "h2") and t.get_text(strip=True) == "Abstract")
        if heading is not None:
            for sibling in list(heading.find_next_siblings()):
                if sibling.name in ("h1", "h2") or sibling.find(["h1", "h2"]) is not None:
                    break
                sibling.decompose()
            heading.decompose()
    text = soup.get_text(" ")
    assert "Objective." not in text and len(text) > 1000, "the page's text was not read"
    return text


@pytest.fixture(scope="module")
def zh(rendered_project) -> Path:
    out = rendered_project.output / "report"
    for name in ("index.zh.html", "index.zh.pdf", "index.zh.docx", "slides.zh.html"):
        assert (out / name).is_file(), f"{name} not written (study.yaml report.language asks for zh)"
    return out


@pytest.mark.render
@pytest.mark.xdist_group("render")
@pytest.mark.parametrize("name", ["index.zh.html", "slides.zh.html"])
def test_no_english_sentence_in_the_chinese_html(zh: Path, name: str) -> None:
    left = english_sentences(_html_text(zh / name))
    assert left == [], f"{name}: English left (translate it in cementleak_stats/i18n/zh.yaml): {left[:10]}"


@pytest.mark.render
@pytest.mark.xdist_group("render")
def test_no_english_sentence_in_the_chinese_pdf_and_docx(zh: Path) -> None:
    pdf = "\n".join(page.extract_text() or "" for page in PdfReader(str(zh / "index.zh.pdf")).pages)
    pdf = re.sub(r"Abstract\n.*?(?=\n1\s*引言)", "", pdf, count=1, flags=re.S)  # the English abstract (on purpose)
    d = docx.Document(str(zh / "index.zh.docx"))
    paragraphs = [p.text for p in d.paragraphs]
    if "Abstract" in paragraphs:  # the English abstract: its heading and paragraph
        i = paragraphs.index("Abstract")
        paragraphs = paragraphs[:i] + paragraphs[i + 2:]
    cells = [c.text for t in d.tables for row in t.rows for c in row.cells]
    for where, text in (("PDF", pdf), ("DOCX", "\n".join(paragraphs + cells))):
        left = [s for s in english_sentences(text) if "SHA-256" not in s]
        assert left == [], f"{where}: English left: {left[:10]}"


CJK = "\u3000-\u303f\u4e00-\u9fff\uff00-\uffef"


@pytest.mark.render
@pytest.mark.xdist_group("render")
@pytest.mark.parametrize("name", ["index.zh.html", "slides.zh.html"])
def test_no_space_between_chinese_characters(zh: Path, name: str) -> None:
    soup = BeautifulSoup((zh / name).read_text(encoding="utf-8"), "html.parser")
    for tag in soup(["script", "style", "code", "pre"]):
        tag.decompose()
    spaced = []
    for element in soup.find_all(["p", "li", "td", "th", "figcaption", "h1", "h2", "h3", "h4"]):
        spaced += re.findall(rf".{{0,8}}[{CJK}][ \t]+[{CJK}].{{0,8}}", element.get_text(""))
    assert spaced == [], f"{name}: a space between Chinese characters: {spaced[:10]}"


@pytest.mark.render
@pytest.mark.xdist_group("render")
def test_every_table_and_figure_and_the_english_abstract(zh: Path) -> None:
    en = BeautifulSoup((zh / "index.html").read_text(encoding="utf-8"), "html.parser").get_text(" ")
    cn = BeautifulSoup((zh / "index.zh.html").read_text(encoding="utf-8"), "html.parser").get_text(" ")
    for english, chinese in (("Table", "表"), ("Figure", "图")):
        n_en = len(set(re.findall(rf"{english} (\d+):", en)))
        n_cn = len(set(re.findall(rf"{chinese} (\d+):", cn)))
        assert n_en > 5 and n_cn == n_en, f"{english}s: {n_en} in English, {n_cn} in Chinese"
    assert "Objective." in cn and "目的：" in cn, "the Chinese report carries the English abstract too"
    assert "合成数据" in cn and "cl-calculator" in (zh / "index.zh.html").read_text(encoding="utf-8")


def _numbers(text: str) -> Counter:
    """Decimal numbers with two or more decimals (estimates, CIs, P values), as printed."""
    return Counter(x.replace("−", "-") for x in re.findall(r"(?<![\d.])[−-]?\d+\.\d{2,}(?![\d.])", text))


@pytest.mark.render
@pytest.mark.xdist_group("render")
def test_the_numbers_are_those_of_the_english_report(zh: Path) -> None:
    def tables(name: str) -> Counter:
        soup = BeautifulSoup((zh / name).read_text(encoding="utf-8"), "html.parser")
        return sum((_numbers(t.get_text(" ")) for t in soup.find_all("table")), Counter())

    en, cn = tables("index.html"), tables("index.zh.html")
    assert sum(en.values()) > 200
    assert cn == en, f"numbers only in English: {en - cn}; only in Chinese: {cn - en}"


@pytest.mark.render
@pytest.mark.xdist_group("render")
def test_the_chinese_fonts_are_embedded_in_the_pdf(zh: Path) -> None:
    fonts = subprocess.run(["pdffonts", str(zh / "index.zh.pdf")], capture_output=True, text=True, check=True).stdout
    embedded = [line.split()[0] for line in fonts.splitlines()[2:] if " yes " in line]
    assert any("NotoSerifSC" in f for f in embedded) and any("NotoSansSC" in f for f in embedded), fonts
    d = docx.Document(str(zh / "index.zh.docx"))
    defaults = d.styles.element.xpath("//w:docDefaults//w:rFonts/@w:eastAsia")
    assert defaults == ["SimSun"], "the DOCX names a Chinese font for East Asian text (report/_reference.zh.docx)"


def test_reference_docx_is_the_one_the_code_writes(tmp_path: Path) -> None:
    from cementleak_stats.fonts import write_docx_reference

    made = docx.Document(str(write_docx_reference(tmp_path / "ref.docx")))
    shipped = docx.Document(str(REPORT / "_reference.zh.docx"))
    fonts = "//w:rFonts/@w:eastAsia"
    assert made.styles.element.xpath(fonts) == shipped.styles.element.xpath(fonts)


def test_validate_lists_the_words_still_in_english(tmp_path: Path) -> None:
    from cementleak_stats.narrative import translation_problems

    data = yaml.safe_load((REPO / "study.yaml").read_text(encoding="utf-8"))
    data["variables"][0]["label"] = "Age"  # no Chinese label any more
    (tmp_path / "narrative").mkdir()
    (tmp_path / "narrative" / "background.md").write_text("English only.\n", encoding="utf-8")
    spec = parse_spec(data, base_dir=tmp_path)
    problems = translation_problems(spec)
    assert {p.column for p in problems} == {"variable 'age_years': label", "narrative/background.zh.md"}
    assert all("Chinese report shows it in English" in p.rule or "English text" in p.rule for p in problems)
    assert translation_problems(spec.model_copy(update={"report": spec.report.model_copy(update={"language": ("en",)})})) == []
