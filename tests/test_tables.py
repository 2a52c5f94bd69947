"""Tests of cementleak_stats.tables against R (tests/reference/tables.R -> tables_r.json)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from cementleak_stats.spec import parse_spec
from cementleak_stats import table_display
from cementleak_stats.table_display import baseline_display, event_details_display
from cementleak_stats.tables import MISSING, fisher_exact_2xk, table_baseline, table_event_details

REF = Path(__file__).parent / "reference"
R = json.loads((REF / "tables_r.json").read_text())
RTOL = 1e-10

LEVELS = {"sexx": ["f", "m"], "wall": ["n", "y"], "grade": ["g1", "g2", "g3"], "site": ["up", "mid", "low"]}


def make_spec():
    return parse_spec({
        "study": {"title": "t", "id_column": "pid"},
        "cohort_file": "c.csv",
        "outcome": {"time": "fu", "event": "ev", "event_label": "Leak", "horizon": 12, "followup": 12},
        "variables": [
            {"name": "hu", "label": "Density", "unit": "HU", "kind": "continuous", "candidate": True},
            {"name": "vol", "label": "Volume", "unit": "mL", "kind": "continuous", "candidate": True},
            {"name": "delay", "label": "Delay", "unit": "days", "kind": "continuous", "candidate": True},
            {"name": "sexx", "label": "Sex", "kind": "binary", "levels": LEVELS["sexx"], "candidate": True},
            {"name": "wall", "label": "Wall", "kind": "binary", "levels": LEVELS["wall"], "candidate": True},
            {"name": "grade", "label": "Grade", "kind": "ordinal", "levels": LEVELS["grade"], "candidate": True},
            {"name": "site", "label": "Site", "kind": "nominal", "levels": LEVELS["site"], "candidate": True},
        ],
    })


@pytest.fixture(scope="module")
def spec():
    return make_spec()


@pytest.fixture(scope="module")
def cohort():
    df = pd.read_csv(REF / "tables_fixture.csv")
    for c, lv in LEVELS.items():
        df[c] = pd.Categorical(df[c], categories=lv)
    for c in ("hu", "vol", "delay", "fu"):
        df[c] = df[c].astype(float)
    return df


@pytest.fixture(scope="module")
def t1(spec, cohort):
    return table_baseline(spec, cohort)


def _var(t1, v):
    return t1.tidy[t1.tidy["variable"] == v]


def test_tidy_layout(t1):
    assert list(t1.tidy.columns) == ["variable", "label", "level", "statistic", "overall", "ev=0", "ev=1",
                                     "p_value", "test", "smd", "missing", "normal"]
    # 3 continuous rows + 2 + 2 + 3 + 3 level rows, levels in study-file order
    assert len(t1.tidy) == 13
    assert list(_var(t1, "site")["level"]) == ["up", "mid", "low"]
    assert _var(t1, "hu")["label"].item() == "Density (HU)"
    assert t1.groups == {"ev=0": ("Leak: no", 42), "ev=1": ("Leak: yes", 18)}


def test_normality_rule_and_test_choice(t1):
    c = R["continuous"]
    for v in ("hu", "vol", "delay"):
        # R 4.2: shapiro.test(x) in each group; normal iff P >= 0.05 in both
        normal = c[v]["shapiro_p0"] >= 0.05 and c[v]["shapiro_p1"] >= 0.05
        row = _var(t1, v).iloc[0]
        assert row["normal"] == normal
        assert row["test"] == ("Welch t-test" if normal else "Mann-Whitney U")
        assert row["statistic"] == ("mean (SD)" if normal else "median [Q1, Q3]")
    assert [_var(t1, v)["test"].iloc[0] for v in ("sexx", "wall", "grade", "site")] == [
        "Chi-square (Yates)", "Fisher's exact", "Fisher's exact", "Chi-square"]


def test_continuous_p_values_match_r(t1):
    c = R["continuous"]
    # R 4.2: t.test(x0, x1, var.equal = FALSE)
    np.testing.assert_allclose(_var(t1, "hu")["p_value"].item(), c["hu"]["welch_p"], rtol=RTOL)
    # R 4.2: wilcox.test(x0, x1): exact (no ties, both n < 50) for vol, normal + correction for delay
    assert not c["vol"]["ties"] and c["delay"]["ties"]
    np.testing.assert_allclose(_var(t1, "vol")["p_value"].item(), c["vol"]["wilcox_p"], rtol=RTOL)
    np.testing.assert_allclose(_var(t1, "delay")["p_value"].item(), c["delay"]["wilcox_p"], rtol=RTOL)


def test_categorical_p_values_match_r(t1):
    c = R["categorical"]
    # R 4.2: chisq.test(table(level, group)) (Yates for 2 x 2)
    np.testing.assert_allclose(_var(t1, "sexx")["p_value"].iloc[0], c["sexx"]["chisq_p"], rtol=RTOL)
    np.testing.assert_allclose(_var(t1, "site")["p_value"].iloc[0], c["site"]["chisq_p"], rtol=RTOL)
    # R 4.2: fisher.test(table(level, group)) (2 x 2 and 2 x 3)
    np.testing.assert_allclose(_var(t1, "wall")["p_value"].iloc[0], c["wall"]["fisher_p"], rtol=RTOL)
    np.testing.assert_allclose(_var(t1, "grade")["p_value"].iloc[0], c["grade"]["fisher_p"], rtol=RTOL)


def test_fisher_enumeration_matches_r_and_scipy():
    c = R["categorical"]
    for v in ("sexx", "wall", "grade", "site"):
        table = np.array([c[v]["counts0"], c[v]["counts1"]])
        # R 4.2: fisher.test(table)
        np.testing.assert_allclose(fisher_exact_2xk(table), c[v]["fisher_p"], rtol=1e-9)
        np.testing.assert_allclose(fisher_exact_2xk(table.T), c[v]["fisher_p"], rtol=1e-9)
    table = np.array([[8, 2], [1, 5]])
    np.testing.assert_allclose(fisher_exact_2xk(table), stats.fisher_exact(table).pvalue, rtol=1e-12)


def test_summaries_match_r(t1):
    c = R["continuous"]
    s = t1.summary
    for v in ("hu", "vol", "delay"):
        for i, g in enumerate(("ev=0", "ev=1")):
            row = s[(s["variable"] == v) & (s["group"] == g)].iloc[0]
            # R 4.2: mean, sd, median, quantile(type = 7)
            np.testing.assert_allclose([row["mean"], row["sd"], row["median"], row["q1"], row["q3"]],
                                       [c[v]["mean"][i], c[v]["sd"][i], c[v]["median"][i], c[v]["q1"][i],
                                        c[v]["q3"][i]], rtol=RTOL)
        assert _var(t1, v)["missing"].item() == c[v]["missing"]
    hu = _var(t1, "hu").iloc[0]
    assert hu["ev=1"] == f"{c['hu']['mean'][1]:.1f} ({c['hu']['sd'][1]:.1f})"


def test_counts_and_smd_match_r(t1):
    for v, ref in R["categorical"].items():
        rows = t1.summary[(t1.summary["variable"] == v)]
        assert list(rows[rows["group"] == "ev=0"]["count"]) == ref["counts0"]
        assert list(rows[rows["group"] == "ev=1"]["count"]) == ref["counts1"]
        # Yang & Dalton SMD re-implemented in R (tables.R, smd_cat), as R tableone
        np.testing.assert_allclose(_var(t1, v)["smd"].iloc[0], ref["smd"], rtol=1e-9)
        assert _var(t1, v)["missing"].iloc[0] == ref["missing"]
    for v, ref in R["continuous"].items():
        np.testing.assert_allclose(_var(t1, v)["smd"].item(), ref["smd"], rtol=1e-9)


def test_display(t1, spec):
    # worded by the report (table_display) from the tidy rows the analysis keeps
    d = baseline_display(t1, spec)
    assert list(d.columns) == ["Characteristic", "Level", "Overall (n=60)", "Leak: no (n=42)", "Leak: yes (n=18)",
                               "P value", "Test", "SMD", "Missing"]
    assert d["Characteristic"].iloc[0] == "Density (HU), mean (SD)"
    assert d.loc[d["Characteristic"] == "Site, n (%)", "Missing"].item() == "1"
    assert (d["P value"] == "<0.001").any()
    site_rows = d.iloc[10:13]
    assert list(site_rows["Level"]) == ["up", "mid", "low"]
    assert (site_rows["Characteristic"].iloc[1:] == "").all()


def _spec_with(variables: list[dict], event_details: list[str] = ()):
    base = make_spec().model_dump(include={"study", "cohort_file"})
    return parse_spec({**base, "outcome": {"time": "fu", "event": "ev", "event_label": "Leak", "horizon": 12,
                                           "followup": 12, "event_details": list(event_details)},
                       "variables": variables})


def test_table1_describes_every_column_but_identifiers_and_event_details(cohort):
    """Table 1 is not limited to candidate predictors (issue 13): ``table1:`` overrides the default."""
    data = cohort.assign(note=[f"free text {i}" for i in range(len(cohort))])
    variables = [
        {"name": "hu", "label": "Density", "unit": "SD", "kind": "continuous", "candidate": True},
        {"name": "vol", "label": "Volume", "unit": "mL", "kind": "continuous"},  # not a candidate: shown
        {"name": "delay", "label": "Delay", "unit": "days", "kind": "continuous", "table1": False},
        {"name": "site", "label": "Site", "kind": "nominal", "levels": LEVELS["site"]},  # an event detail: left out
        {"name": "grade", "label": "Grade", "kind": "ordinal", "levels": LEVELS["grade"], "table1": True},
        {"name": "note", "label": "Note", "kind": "continuous", "identifying": True, "table1": True},
    ]
    spec = _spec_with(variables, event_details=["site", "grade"])
    assert [v.name for v in spec.table1_variables] == ["hu", "vol", "grade"]
    d = baseline_display(table_baseline(spec, data), spec)
    firsts = [c for c in d["Characteristic"] if c]
    # a unit that is also a word of the statistic is spelled out as units
    assert [c.split(", ")[0] for c in firsts] == ["Density (SD units)", "Volume (mL)", "Grade"]
    assert firsts[2] == "Grade, n (%)" and not any("Note" in c for c in d["Characteristic"])


def test_notes_state_the_rules(t1):
    text = " ".join(t1.notes)
    assert "Shapiro-Wilk" in text and "Fisher" in text and "Yates" in text


def test_categorical_groupby_and_input_unchanged(spec, cohort):
    before = cohort.copy()
    t = table_baseline(spec, cohort, groupby="sexx", variables=["hu", "site"])
    pd.testing.assert_frame_equal(cohort, before)
    assert list(t.groups) == ["sexx=f", "sexx=m"]
    assert t.groups["sexx=f"][0] == "Sex: f"


def test_no_hardcoded_names_errors(spec, cohort):
    with pytest.raises(ValueError, match="lacks column"):
        table_baseline(spec, cohort.drop(columns="vol"))
    with pytest.raises(ValueError, match="fewer than two groups"):
        table_baseline(spec, cohort.assign(ev=1))


def test_event_details_types_all_patients(spec, cohort):
    res = table_event_details(spec, cohort, ["grade", "site"], events_only=False)
    assert res.tidy["n"].sum() == len(cohort) == res.n
    assert list(res.tidy.columns) == ["grade", "site", "n", "percent"]
    assert len(res.tidy) == 3 * 4  # 3 grades x (3 sites + "(missing)")
    display = event_details_display(res, spec)
    assert display.iloc[-1]["Total"] == len(cohort)
    assert display.columns.name == "Site"


def test_event_details_types_among_events_keeps_inconsistent_reference(spec, cohort):
    res = table_event_details(spec, cohort, ["grade", "site"])
    assert res.n == int((cohort["ev"] == 1).sum()) == res.tidy["n"].sum()
    # reference levels g1 / up are "no event" but patients with the event have them: kept and noted
    assert "g1" in set(res.tidy["grade"]) and len(res.notes) == 2


LEAK_SPEC = {
    "study": {"title": "t", "id_column": "i"}, "cohort_file": "c.csv",
    "outcome": {"time": "t", "event": "e", "horizon": 1, "followup": 1},
    "variables": [
        {"name": "kind_a", "label": "A", "kind": "nominal", "levels": ["none", "a", "b"], "candidate": True},
        {"name": "kind_b", "label": "B", "kind": "nominal", "levels": ["none", "x", "y"]}],
}


def test_event_details_types_among_events_drops_unused_reference():
    spec = parse_spec(LEAK_SPEC)
    df = pd.DataFrame({"e": [0, 0, 1, 1, 1],
                       "kind_a": pd.Categorical(["none", "none", "a", "a", "b"], categories=["none", "a", "b"]),
                       "kind_b": pd.Categorical(["none", "none", "x", "x", "y"], categories=["none", "x", "y"])})
    res = table_event_details(spec, df, ["kind_a", "kind_b"])
    assert res.n == 3 and res.notes == ()
    display = event_details_display(res, spec)
    assert list(display["A"]) == ["a", "b", "Total"]
    assert list(display.columns) == ["A", "x", "y", "Total"]
    assert display.set_index("A").loc["a", "x"] == 2


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["none", "a", "b", None]), st.sampled_from(["x", "y", None]),
                          st.integers(0, 1)), min_size=0, max_size=60),
       st.booleans())
def test_event_details_counts_sum_to_n(rows, events_only):
    spec = parse_spec(LEAK_SPEC)
    df = pd.DataFrame({"kind_a": pd.Categorical([r[0] for r in rows], categories=["none", "a", "b"]),
                       "kind_b": pd.Categorical([r[1] for r in rows], categories=["none", "x", "y"]),
                       "e": [r[2] for r in rows]})
    res = table_event_details(spec, df, ["kind_a", "kind_b"], events_only=events_only)
    expected = int((df["e"] == 1).sum()) if events_only else len(df)
    assert res.n == expected == res.tidy["n"].sum()
    wide = event_details_display(res, spec).set_index("A")
    assert wide.loc["Total", "Total"] == expected
    assert (wide.drop(index="Total").drop(columns="Total").sum(axis=1) == wide.drop(index="Total")["Total"]).all()
    one = table_event_details(spec, df, ["kind_a"], events_only=events_only)
    assert one.n == expected == one.tidy["n"].sum() == event_details_display(one, spec).set_index("A").loc["Total", "Patients"]


@settings(max_examples=15, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 1), st.sampled_from(["f", "m", None])), min_size=8, max_size=50)
       .filter(lambda rows: len({r[0] for r in rows}) == 2))
def test_table1_counts_sum_to_group_sizes(rows):
    spec = make_spec()
    df = pd.DataFrame({"ev": [r[0] for r in rows],
                       "sexx": pd.Categorical([r[1] for r in rows], categories=["f", "m"])})
    t = table_baseline(spec, df, variables=["sexx"])
    s = t.summary
    missing = df["sexx"].isna().sum()
    assert s[s["group"] == "overall"]["count"].sum() + missing == len(df)
    for col, (_, n) in t.groups.items():
        g = int(col.split("=")[1])
        assert s[s["group"] == col]["count"].sum() + df.loc[df["ev"] == g, "sexx"].isna().sum() == n


def test_shipped_study_tables():
    """End to end on the shipped synthetic study: the reader's typed cohort goes straight in."""
    root = Path(__file__).resolve().parents[1]
    if not (root / "data" / "cohort.csv").exists():
        pytest.skip("no shipped cohort")
    from cementleak_stats import load_spec
    from cementleak_stats.cohort.io import load_study_data

    spec = load_spec(root / "study.yaml")
    data = load_study_data(spec)
    t = table_baseline(spec, data.analysed)
    assert set(t.tidy["variable"]) == {v.name for v in spec.candidates}
    assert sum(n for _, n in t.groups.values()) == len(data.analysed)
    leak = table_event_details(spec, data.analysed, spec.outcome.event_details)
    assert leak.n == int(data.analysed[spec.outcome.event].sum()) == leak.tidy["n"].sum()
    # DESIGN.md (published facts): 24 intradiscal/endplate untreated, 1 pulmonary embolism treated by
    # respiratory medicine, 2 symptomatic removed endoscopically -> a diagonal table
    display = event_details_display(leak, spec)
    wide = display.set_index(display.columns[0]).drop(index="Total").drop(columns="Total")
    assert sorted(np.diag(wide.to_numpy()).tolist()) == [1, 2, 24]
    assert wide.to_numpy().sum() == 27


def test_fisher_cap_is_checked_before_the_tables_are_built():
    """A 2 x 4 table of 20,000 patients with a rare level: ~10^11 tables with its margins.

    The count comes first (by partial sums, O(k N)), so nothing of that size is allocated (the
    enumeration used to allocate ~1.4 GB before its check); Table 1 then uses the chi-square
    test and says why in the test's name."""
    import tracemalloc

    from cementleak_stats.group_tests import categorical_test

    table = np.array([[3333, 3333, 3333, 1], [3333, 3333, 3334, 1]])
    tracemalloc.start()
    p = fisher_exact_2xk(table)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert np.isnan(p) and peak < 20e6, peak
    test = categorical_test(table.T)
    assert test.__name__ == "Chi-square (expected count < 5; too many tables for Fisher's exact)"
    np.testing.assert_allclose(test(*table.T), stats.chi2_contingency(table).pvalue, rtol=1e-12)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 6), st.integers(0, 6)), min_size=2, max_size=4))
def test_fisher_table_count_equals_enumeration(cells):
    """The count behind the cap equals, by brute force, the largest number of partial tables
    (first j columns of row 1, able to reach the row total) that the enumeration holds."""
    import itertools

    from cementleak_stats.group_tests import _fisher_bounds, _fisher_tables

    t = np.array(cells).T
    cols, r1 = t.sum(axis=0), int(t[0].sum())
    lo, hi, rest_lo, rest_hi = _fisher_bounds(cols, r1, int(t.sum()) - r1)
    brute = max([1] + [sum(1 for x in itertools.product(*(range(lo[i], hi[i] + 1) for i in range(j + 1)))
                           if sum(x) + rest_lo[j] <= r1 <= sum(x) + rest_hi[j]) for j in range(len(cols))])
    assert _fisher_tables(lo, hi, rest_lo, rest_hi, r1) == brute


def test_the_report_words_the_missing_level_the_analysis_counts():
    # reporting imports no statistics (tests/test_architecture.py), so the word is written twice
    assert table_display.MISSING == MISSING


def test_large_groups_note_the_approximate_shapiro_p_and_print_nothing(spec):
    """Above 5000 values (R shapiro.test's limit) SciPy warns at every call; Table 1 says it once in its notes."""
    import warnings

    rng = np.random.default_rng(5)
    n = 12_000
    df = pd.DataFrame({"hu": rng.normal(100, 10, n), "vol": rng.exponential(2, n), "delay": rng.normal(size=n),
                       "ev": np.r_[np.zeros(6_000, int), np.ones(n - 6_000, int)], "fu": 12.0,
                       **{c: pd.Categorical(rng.choice(lv, n), categories=lv) for c, lv in LEVELS.items()}})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        t = table_baseline(spec, df)
    assert any("R shapiro.test accepts at most 5000" in note for note in t.notes)
    assert not any("shapiro" in note for note in table_baseline(spec, df.iloc[::4]).notes)
