"""Table 1 computed directly equals Table 1 through tableone (issue 16).

Until issue 16 :func:`cementleak_stats.tables.table_baseline` built its summaries with
``tableone.TableOne`` (66-151 s at n = 1,000,000: per-cell Python loops); it now computes them
with the same NumPy/pandas calls.  This test keeps tableone as the reference: the former
implementation is below (``_through_tableone``) and both must give the same tidy and summary
frames, bit for bit, on random cohorts (missing values, ties, a group of one row, levels nobody
has, a categorical grouping, three groups).  The numbers themselves are checked against R in
tests/test_tables.py.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cementleak_stats.formatting import fmt_num
from cementleak_stats.group_tests import categorical_test, continuous_test, is_normal
from cementleak_stats.spec import parse_spec
from cementleak_stats.tables import SUMMARY_COLUMNS, TIDY_LEAD, TIDY_TAIL, table_baseline

tableone = pytest.importorskip("tableone")

LEVELS = {"sexx": ["f", "m"], "grade": ["g1", "g2", "g3"], "site": ["up", "mid", "low", "none"]}


def _spec():
    return parse_spec({
        "study": {"title": "t", "id_column": "pid"}, "cohort_file": "c.csv",
        "outcome": {"time": "fu", "event": "ev", "event_label": "Leak", "horizon": 12, "followup": 12},
        "variables": [
            {"name": "hu", "label": "Density", "unit": "HU", "kind": "continuous", "candidate": True},
            {"name": "vol", "label": "Volume", "unit": "mL", "kind": "continuous", "candidate": True},
            {"name": "sexx", "label": "Sex", "kind": "binary", "levels": LEVELS["sexx"], "candidate": True},
            {"name": "grade", "label": "Grade", "kind": "ordinal", "levels": LEVELS["grade"], "candidate": True},
            {"name": "site", "label": "Site", "kind": "nominal", "levels": LEVELS["site"], "candidate": True},
        ],
    })


def _through_tableone(spec, cohort, groupby, decimals=1, normality_alpha=0.05):
    """Table 1 as cementleak_stats.tables built it with tableone.TableOne before issue 16."""
    variables = [v.name for v in spec.table1_variables if v.name != groupby]
    specs = {name: spec.variable(name) for name in variables}
    continuous = [v for v in variables if specs[v].kind == "continuous"]
    categorical = [v for v in variables if specs[v].kind != "continuous"]
    data = cohort[[*variables, groupby]].reset_index(drop=True)
    data = data[data[groupby].notna()].copy()
    if data[groupby].dtype.name == "category":
        present = set(data[groupby].astype(object))
        group_values = [lv for lv in data[groupby].cat.categories if lv in present]
        data[groupby] = data[groupby].astype(object)
    else:
        group_values = sorted(data[groupby].unique().tolist())
    for c in categorical:
        data[c] = data[c].astype(object).where(data[c].notna(), None)
        data[c] = [None if v is None else str(v) for v in data[c]]
    for c in continuous:
        data[c] = pd.to_numeric(data[c], errors="raise").astype(float)

    def by_group(v):
        return [data.loc[data[groupby] == g, v].dropna().to_numpy(dtype=float) for g in group_values]

    normal = {v: is_normal(by_group(v), normality_alpha) for v in continuous}
    htest = {v: continuous_test(by_group(v), normal[v]) for v in continuous}
    for v in categorical:
        ct = pd.crosstab(data[v], data[groupby]).reindex(columns=group_values, fill_value=0)
        htest[v] = categorical_test(ct.to_numpy())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t1 = tableone.TableOne(
            data, columns=variables, categorical=categorical, continuous=continuous, groupby=groupby,
            nonnormal=[v for v in continuous if not normal[v]], pval=True, htest=htest, htest_name=True,
            smd=True, missing=True, include_null=False, overall=True, decimals=decimals,
            order={v: list(specs[v].levels) for v in categorical}, label_suffix=False)
    gcols = {g: f"{groupby}={g}" for g in group_values}
    htab, smd_tab = t1.htest_table, t1.smd_table.astype(float).abs()
    tidy, summary = [], []
    for v in variables:
        var = specs[v]
        common = {"p_value": float(htab.loc[v, "P-Value"]), "test": str(htab.loc[v, "Test"]),
                  "smd": float(smd_tab.loc[v].max()), "missing": int(data[v].isna().sum())}
        if var.kind == "continuous":
            sources = {"overall": (t1.cont_describe_all, "Overall"), **{gcols[g]: (t1.cont_describe, g) for g in group_values}}
            row = {"variable": v, "label": var.display, "level": None,
                   "statistic": "mean (SD)" if normal[v] else "median [Q1, Q3]"}
            for col, (desc, key) in sources.items():
                s = {stat: float(desc[stat][key].loc[v]) for stat in ("count", "mean", "std", "median", "q25", "q75")}
                summary.append({"variable": v, "level": None, "group": col, "n": int(s["count"]), "mean": s["mean"],
                                "sd": s["std"], "median": s["median"], "q1": s["q25"], "q3": s["q75"],
                                "count": np.nan, "percent": np.nan})
                row[col] = (f"{fmt_num(s['mean'], decimals)} ({fmt_num(s['std'], decimals)})" if normal[v] else
                            f"{fmt_num(s['median'], decimals)} [{fmt_num(s['q25'], decimals)}, {fmt_num(s['q75'], decimals)}]")
            tidy.append({**row, **common, "normal": normal[v]})
            continue
        sources = {"overall": (t1.cat_describe_all, "Overall"), **{gcols[g]: (t1.cat_describe, g) for g in group_values}}
        for level in var.levels:
            row = {"variable": v, "label": var.display, "level": level, "statistic": "n (%)"}
            for col, (desc, key) in sources.items():
                count = int(desc["freq"][key].loc[(v, level)]) if (v, level) in desc.index else 0
                in_group = data[v] if key == "Overall" else data.loc[data[groupby] == key, v]
                n_valid = int(in_group.notna().sum())
                pct = 100.0 * count / n_valid if n_valid else np.nan
                summary.append({"variable": v, "level": level, "group": col, "n": n_valid, "mean": np.nan, "sd": np.nan,
                                "median": np.nan, "q1": np.nan, "q3": np.nan, "count": count, "percent": pct})
                row[col] = f"{count} ({fmt_num(pct, decimals)})"
            tidy.append({**row, **common, "normal": None})
    return (pd.DataFrame(tidy, columns=[*TIDY_LEAD, *gcols.values(), *TIDY_TAIL]),
            pd.DataFrame(summary, columns=SUMMARY_COLUMNS))


def _assert_same(spec, cohort, groupby):
    ours = table_baseline(spec, cohort, groupby=groupby)
    tidy, summary = _through_tableone(spec, cohort, groupby)
    pd.testing.assert_frame_equal(ours.tidy, tidy, check_exact=True)
    pd.testing.assert_frame_equal(ours.summary, summary, check_exact=True)


def _cohort(draw, n_groups):
    n = draw(st.integers(8, 60))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    ev = rng.integers(0, n_groups, n)
    ev[:n_groups] = np.arange(n_groups)  # every group present
    # continuous: normal, skewed with ties (rounded), each with some missing values
    hu = rng.normal(100, 20, n)
    vol = np.round(rng.exponential(3, n), draw(st.integers(0, 1)))
    for x in (hu, vol):
        x[rng.random(n) < draw(st.floats(0, 0.3))] = np.nan
    cats = {}
    for name, levels in LEVELS.items():
        used = levels[: draw(st.integers(1, len(levels)))]  # levels nobody has
        values = np.array(used, dtype=object)[rng.integers(0, len(used), n)]
        values[rng.random(n) < draw(st.floats(0, 0.2))] = None
        cats[name] = pd.Categorical(values, categories=levels)
    return pd.DataFrame({"hu": hu, "vol": vol, **cats, "ev": ev, "fu": 12.0})


@st.composite
def cohorts(draw):
    return _cohort(draw, draw(st.sampled_from([2, 2, 3])))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cohorts())
def test_table1_equals_tableone_on_random_cohorts(cohort):
    _assert_same(_spec(), cohort, "ev")


def test_table1_equals_tableone_edge_cases():
    spec = _spec()
    rng = np.random.default_rng(3)
    n = 30
    base = pd.DataFrame({
        "hu": rng.normal(size=n), "vol": rng.exponential(size=n),
        "sexx": pd.Categorical(rng.choice(["f", "m"], n), categories=LEVELS["sexx"]),
        "grade": pd.Categorical(rng.choice(["g1", "g2", "g3"], n), categories=LEVELS["grade"]),
        "site": pd.Categorical(rng.choice(["up", "mid"], n), categories=LEVELS["site"]),
        "ev": np.r_[[1], np.zeros(n - 1, dtype=int)], "fu": 12.0})
    _assert_same(spec, base, "ev")  # a group of one row (SD 0, as tableone)
    grouped = base.assign(ev=rng.integers(0, 2, n))
    grouped.loc[grouped["ev"] == 1, "site"] = None  # a group without any value of a categorical variable
    grouped.loc[:3, "hu"] = np.nan
    _assert_same(spec, grouped, "ev")
    # a categorical grouping whose category order is not sorted, and a missing group
    by_site = base.assign(site=pd.Categorical(rng.choice(["up", "mid", "low"], n), categories=["up", "mid", "low", "none"]))
    by_site.loc[0, "site"] = None
    spec2 = parse_spec({**spec.model_dump(include={"study", "cohort_file"}),
                        "outcome": {"time": "fu", "event": "ev", "horizon": 12, "followup": 12},
                        "variables": [v for v in spec.model_dump()["variables"]]})
    _assert_same(spec2, by_site, "site")


@pytest.mark.parametrize("study", ["rossi", "lung", "gbsg2"])
def test_table1_equals_tableone_on_the_test_studies(study):
    """Real cohorts: lung has missing values and Fisher's exact tests, gbsg2 a three-level nominal."""
    from pathlib import Path

    from cementleak_stats.cohort.io import load_study_data
    from cementleak_stats.spec import load_spec

    spec = load_spec(Path(__file__).parent / "studies" / study / "study.yaml")
    _assert_same(spec, load_study_data(spec).analysed, spec.outcome.event)
