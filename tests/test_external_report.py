"""The report's validation-cohort section: tables, figures, prose numbers and the section flag
(cementleak_stats/external_report.py, report/_sections/external.qmd).  Every number shown is one
of ``StudyResults.validation_cohort`` (checked against R in tests/test_external.py)."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from cementleak_stats import presentation as P  # noqa: E402
from cementleak_stats.document import ReportView  # noqa: E402
from cementleak_stats.spec import load_spec  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
REF = ROOT / "tests" / "reference" / "data"
SECTION = ROOT / "report" / "_sections" / "external.qmd"
TABLES = ("external_cohorts", "external_performance", "external_case_mix", "external_comparison")
FIGURES = ("external_calibration", "external_decision")


@cache
def results(name: str, with_validation: bool = True):
    from cementleak_stats.study import compute_study

    spec = load_spec(REF / f"external_{name}_study.yaml")
    return compute_study(spec if with_validation else spec.model_copy(update={"validation": None}))


@pytest.mark.parametrize("name", ["rossi", "lung"])
def test_tables_show_the_results_numbers(name):
    r = results(name)
    v = r.validation_cohort
    for t in TABLES:
        frame = P.TABLES[t](r)
        assert len(frame) > 0, t
        assert not frame.astype(str).isin(["nan", "None"]).any().any(), t
    perf = P.TABLES["external_performance"](r).set_index("Measure")
    c = v.discrimination.set_index("measure").loc["c_index"]
    assert perf.loc["Harrell's C", "Estimate (95% CI)"] == P.fmt_ci(c.estimate, c.ci_low, c.ci_high, 3)
    mix = P.TABLES["external_case_mix"](r)
    assert mix["Patients"].tolist() == [len(r.analysed), v.n]
    cohorts = P.TABLES["external_cohorts"](r)
    assert any(col.startswith(v.label) for col in cohorts.columns) and "SMD" in cohorts.columns
    comp = P.TABLES["external_comparison"](r).set_index("Measure")
    assert comp.loc["Harrell's C"].iloc[-1].startswith(P.fmt_num(c.estimate, 3))


@pytest.mark.parametrize("name", ["rossi", "lung"])
def test_figures_draw_the_validation_cohort(name):
    r = results(name)
    fig = P.FIGURES["external_calibration"](r)
    gids = {a.get_gid() for a in fig.axes[0].get_children()}
    assert "calibration-apparent" in gids and "calibration-smooth" in gids
    assert "calibration-corrected" not in gids  # nothing to correct in a validation cohort
    plt.close(fig)
    fig = P.FIGURES["external_decision"](r)
    assert len(fig.axes) == 2
    plt.close(fig)


def test_without_a_validation_cohort_everything_is_empty_and_the_section_hidden():
    r = results("lung", with_validation=False)
    assert r.validation_cohort is None
    assert all(P.TABLES[t](r).empty for t in TABLES)
    assert all(P.FIGURES[f](r) is None for f in FIGURES)
    R = ReportView(r)
    assert R.sections()["validation_cohort"] is False and R.sections()["validation_split"] is False
    assert R.external.c_index == "–" and R.external.label == "–"
    assert "cl:" in R.metadata() and "validation_cohort: false" in R.metadata()
    # the checklist does not point at a section the document does not have
    assert not P.TABLES["tripod"](r)["Answered in"].str.contains("@sec-external").any()


def test_flags_and_prose_numbers():
    split, other = ReportView(results("rossi")), ReportView(results("lung"))
    assert split.sections()["validation_cohort"] and split.sections()["validation_split"]
    assert other.sections()["validation_cohort"] and not other.sections()["validation_split"]
    v = results("lung").validation_cohort
    c = v.discrimination.set_index("measure").loc["c_index"]
    assert other.external.c_index == P.fmt_ci(c.estimate, c.ci_low, c.ci_high, 3)
    assert other.external.n == str(v.n) and other.external.events == str(v.n_events)
    assert other.external.label == "Institutions 12-33" and "another centre" in other.external.kind
    assert split.external.split_share == "50%" and "split-sample" in split.external.kind
    assert not split.external.lp_development.startswith("−0.00")  # a mean of 0 by construction


def test_the_section_is_conditional_thin_and_names_no_study():
    text = SECTION.read_text(encoding="utf-8")
    assert text.startswith('::: {.content-visible when-meta="cl.validation_cohort"}\n## Validation in another cohort {#sec-external}')
    assert text.rstrip().endswith(":::")
    assert 'when-meta="cl.validation_split"' in text
    calls = re.findall(r'R\.(table|figure)\("([a-z_]+)"\)', text)
    assert {n for k, n in calls if k == "table"} == set(TABLES) and {n for k, n in calls if k == "figure"} == set(FIGURES)
    labels = re.findall(r"#\| label: ((?:tbl|fig)-[a-z-]+)", text)
    assert len(labels) == len(calls) == len(set(labels))
    assert all(f"@{lab}" in text for lab in labels)  # every table and figure is cited
    for attr in re.findall(r"R\.external\.([a-z_]+)", text):
        assert hasattr(ReportView(results("lung")).external, attr), attr
    banned = ("vertebroplasty", "PVP", "leakage", "Genant", "osteoporotic", "VAS", "ODI", "cement", "fracture")
    assert not [w for w in banned if w.lower() in text.lower()]
    assert "import" not in text


def test_calculator_and_model_file_say_where_the_model_was_developed_and_tested():
    import json

    from cementleak_stats.calculator import calculator_html, export_model, model_cohorts, tested_note
    from cementleak_stats.export import model_file

    r = results("lung")
    v = r.validation_cohort
    cohorts = model_cohorts(r)
    json.dumps(cohorts, allow_nan=False)  # the page parses it: no NaN
    assert cohorts["development"]["n"] == len(r.analysed) and cohorts["horizon"] == r.spec.outcome.horizon
    c = v.discrimination.set_index("measure").loc["c_index"]
    assert cohorts["validation"]["c_index"] == {"estimate": c.estimate, "ci_low": c.ci_low, "ci_high": c.ci_high}
    assert cohorts["validation"]["o_e"]["estimate"] == v.estimate("o_e_km")
    assert model_file(r)["cohorts"] == cohorts and export_model(r)["cohorts"] == cohorts
    note = tested_note(cohorts)
    assert "Tested in Institutions 12-33 (external validation; 108 patients" in note
    assert f"C {c.estimate:.3f} (95% CI {c.ci_low:.3f} to {c.ci_high:.3f})" in note
    assert "Risks by 365 days" in note
    assert 'id="cl-tested"' in calculator_html(r)
    bare = results("lung", with_validation=False)
    assert model_cohorts(bare)["validation"] is None
    assert tested_note(model_cohorts(bare)).endswith("Not tested in another cohort.")
