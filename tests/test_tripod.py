"""The TRIPOD+AI checklist: what the report answers points at its section; the rest is left to
the authors, never shown as done."""

from __future__ import annotations

from cementleak_stats.tripod import AUTHORS, ITEMS, tripod_checklist


def test_title_abstract_outcome_and_limitations_are_answered_by_the_report() -> None:
    t = tripod_checklist().set_index("item")
    assert list(t.index) == [item for item, _, _ in ITEMS]
    for item, label in (("1", "Title"), ("2", "Abstract"), ("8a", "@sec-cohort"), ("26", "@sec-limitations")):
        assert t.loc[item, "status"] == "answered by the report" and t.loc[item, "where"].startswith(label + " (")
    answered = t[t["status"] != AUTHORS]
    assert answered["where"].str.match(r"^(@sec-[a-z-]+|Title|Abstract) \(").all()
    assert (t.loc[t["status"] == AUTHORS, "where"] == "").all()
    assert t.loc["3a", "status"] == AUTHORS  # the background is the authors' to write


def test_an_item_whose_section_is_left_out_goes_back_to_the_authors() -> None:
    t = tripod_checklist(sections=["sec-cohort"]).set_index("item")
    assert t.loc["8a", "status"] == "answered by the report" and t.loc["1", "status"] == "answered by the report"
    assert t.loc["26", "status"] == AUTHORS and t.loc["26", "where"] == ""
    assert t.loc["22", "status"] == AUTHORS  # @sec-cox is not in the document


def test_every_section_the_checklist_names_is_a_section_of_the_report_in_every_language() -> None:
    """The checklist's cross-references are the documents' own section labels (a renamed or
    removed section fails here, not as a dangling @sec- in the rendered checklist)."""
    import re
    from pathlib import Path

    from cementleak_stats.tripod import ANSWERED_BY_ANALYSIS, ANSWERED_BY_REPORT

    report = Path(__file__).resolve().parents[1] / "report"
    named = {where for where, _ in (*ANSWERED_BY_ANALYSIS.values(), *ANSWERED_BY_REPORT.values()) if where.startswith("@")}
    assert named
    for tree in (sorted(p for p in report.rglob("*.qmd") if "_zh" not in p.parts and not p.name.endswith(".zh.qmd")),
                 sorted(p for p in report.rglob("*.qmd") if "_zh" in p.parts or p.name.endswith(".zh.qmd"))):
        assert tree
        defined = {f"@{m}" for p in tree for m in re.findall(r"\{#(sec-[\w-]+)", p.read_text(encoding="utf-8"))}
        assert named <= defined, f"sections the checklist names but the documents lack: {sorted(named - defined)}"
