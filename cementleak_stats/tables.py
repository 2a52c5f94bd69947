"""Table 1 (baseline characteristics by outcome group) and the table of what the events were (``outcome.event_details``).

Descriptive statistics, missing counts and standardized mean differences come from
**tableone** (:class:`tableone.TableOne`); the hypothesis tests are passed to it through its
``htest`` hook so that every P value follows one stated rule and equals R:

* continuous, normal (Shapiro-Wilk P >= 0.05 in every group): mean (SD), Welch's t-test
  (R ``t.test(var.equal = FALSE)``, tableone's default), one-way ANOVA for > 2 groups;
* continuous, otherwise: median [Q1, Q3], Mann-Whitney U computed as R ``wilcox.test``
  (exact P when both groups have < 50 values and there are no ties, else the normal
  approximation with tie correction and continuity correction), Kruskal-Wallis for > 2 groups;
* categorical: n (%), chi-square test (R ``chisq.test``: Yates' continuity correction for a
  2 x 2 table only); Fisher's exact test (R ``fisher.test``) when any expected count is < 5.

Every label, unit and level comes from the study specification.  Which test a variable gets,
and its P value, is :mod:`cementleak_stats.group_tests`'s (this module builds the tables).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from tableone import TableOne

from .formatting import fmt_num
from .group_tests import categorical_test, continuous_test, fisher_exact_2xk, is_normal
from .spec import StudySpec

__all__ = ["TIDY_LEAD", "TIDY_TAIL", "SUMMARY_COLUMNS", "MISSING", "BaselineTable", "CrossCounts", "table_baseline",
           "table_event_details", "fisher_exact_2xk"]

#: the level a missing value gets in the event-details counts (worded for display by the report)
MISSING = "(missing)"
#: Columns of :attr:`BaselineTable.tidy` before and after the group columns.
TIDY_LEAD = ["variable", "label", "level", "statistic", "overall"]
TIDY_TAIL = ["p_value", "test", "smd", "missing", "normal"]
#: Columns of :attr:`BaselineTable.summary` (numbers behind every cell).
SUMMARY_COLUMNS = ["variable", "level", "group", "n", "mean", "sd", "median", "q1", "q3", "count", "percent"]

@dataclass(frozen=True)
class BaselineTable:
    """Table 1 as data (``tidy``, ``summary``); worded for display by :func:`.table_display.baseline_display`."""

    #: one row per continuous variable and per level of a categorical variable: variable,
    #: label, level, statistic, overall, one column per group, p_value, test, smd, missing, normal
    tidy: pd.DataFrame
    #: the numbers behind each cell (long): variable, level, group ("overall" or a group
    #: column), n, mean, sd, median, q1, q3, count, percent
    summary: pd.DataFrame
    #: group column name -> (label in English, n)
    groups: dict[str, tuple[str, int]]
    notes: tuple[str, ...]


@dataclass(frozen=True)
class CrossCounts:
    """Counts of one categorical variable by another (e.g. the type of an event by how it was treated)."""

    #: long: type, management, n, percent (of the patients tabulated); worded for display by
    #: :func:`.table_display.event_details_display`
    tidy: pd.DataFrame
    #: patients tabulated (the counts sum to it)
    n: int
    notes: tuple[str, ...] = ()


# --- Table 1 ----------------------------------------------------------------------------

def _group_label(spec: StudySpec, groupby: str, value: object) -> str:
    if groupby == spec.outcome.event:
        return f"{spec.outcome.event_label}: {'yes' if int(value) == 1 else 'no'}"  # worded for display: table_display
    try:
        return f"{spec.variable(groupby).label}: {value}"
    except KeyError:
        return f"{groupby}: {value}"


def table_baseline(
    spec: StudySpec,
    cohort: pd.DataFrame,
    *,
    groupby: str | None = None,
    variables: Sequence[str] | None = None,
    decimals: int = 1,
    normality_alpha: float = 0.05,
) -> BaselineTable:
    """Baseline characteristics by group (Table 1), with P values, SMD and missing counts.

    Parameters
    ----------
    spec
        Study specification (names, labels, units, levels).
    cohort
        Validated cohort: categorical columns as pandas ``Categorical`` with the study-file
        levels, continuous columns as float.
    groupby
        Grouping column; default the outcome event (``spec.outcome.event``).
    variables
        Variables to show; default ``spec.table1_variables`` (every variable that is neither
        identifying nor an event detail, unless the study file says ``table1:``), in study-file
        order.
    decimals
        Decimals for continuous summaries and percentages.
    normality_alpha
        Shapiro-Wilk level: a continuous variable is summarised as median [Q1, Q3] and tested
        with a rank test when P < ``normality_alpha`` in any group.

    Returns
    -------
    BaselineTable
        ``tidy`` columns: ``variable``, ``label`` (label with unit), ``level`` (None for
        continuous), ``statistic`` ("mean (SD)", "median [Q1, Q3]" or "n (%)"), ``overall``,
        one column per group named ``<groupby>=<value>``, ``p_value``, ``test``, ``smd``
        (absolute; the largest pairwise one with > 2 groups), ``missing`` and ``normal``.
        Variable-level values (p_value, test, smd, missing) are repeated on each level row.

    Notes
    -----
    SMD: continuous |m1 - m0| / sqrt((s0^2 + s1^2)/2); categorical, the Mahalanobis form of
    Yang & Dalton over the levels after the first (as R tableone).  Quartiles are linear
    interpolation (R type 7).  Missing values are excluded variable by variable and counted;
    rows with a missing group are excluded and counted in ``notes``.

    References
    ----------
    Pollard TJ, Johnson AEW, Raffa JD, Mark RG. tableone: an open source Python package for
    producing summary statistics for research papers. JAMIA Open 2018;1:26-31.
    Yang D, Dalton JE. A unified approach to measuring the effect size between two groups
    using SAS. SAS Global Forum 2012, paper 335.
    """
    groupby = groupby or spec.outcome.event
    if variables is None:
        variables = [v.name for v in spec.table1_variables if v.name != groupby]
    variables = list(variables)
    missing_cols = [c for c in (*variables, groupby) if c not in cohort.columns]
    if missing_cols:
        raise ValueError(f"cohort lacks column(s) {missing_cols}")
    specs = {name: spec.variable(name) for name in variables}
    continuous = [v for v in variables if specs[v].kind == "continuous"]
    categorical = [v for v in variables if specs[v].kind != "continuous"]

    data = cohort[[*variables, groupby]].reset_index(drop=True)
    no_group = int(data[groupby].isna().sum())
    data = data[data[groupby].notna()].copy()
    if data[groupby].dtype.name == "category":
        present = set(data[groupby].astype(object))
        group_values = [lv for lv in data[groupby].cat.categories if lv in present]
        data[groupby] = data[groupby].astype(object)
    else:
        group_values = sorted(data[groupby].unique().tolist())
    if len(group_values) < 2:
        raise ValueError(f"'{groupby}' has fewer than two groups; Table 1 compares groups")
    for c in categorical:
        data[c] = data[c].astype(object).where(data[c].notna(), None)
        data[c] = [None if v is None else str(v) for v in data[c]]
    for c in continuous:
        data[c] = pd.to_numeric(data[c], errors="raise").astype(float)

    def by_group(v: str) -> list[np.ndarray]:
        return [data.loc[data[groupby] == g, v].dropna().to_numpy(dtype=float) for g in group_values]

    normal = {v: is_normal(by_group(v), normality_alpha) for v in continuous}
    htest: dict[str, Callable[..., float]] = {v: continuous_test(by_group(v), normal[v]) for v in continuous}
    for v in categorical:
        ct = pd.crosstab(data[v], data[groupby]).reindex(columns=group_values, fill_value=0)
        htest[v] = categorical_test(ct.to_numpy())

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=UserWarning)  # tableone's low-count remarks
        warnings.simplefilter("ignore", category=RuntimeWarning)  # its SMD standard error (unused) when a group is empty
        t1 = TableOne(
            data, columns=variables, categorical=categorical, continuous=continuous, groupby=groupby,
            nonnormal=[v for v in continuous if not normal[v]], pval=True, htest=htest, htest_name=True,
            smd=True, missing=True, include_null=False, overall=True, decimals=decimals,
            order={v: list(specs[v].levels) for v in categorical}, label_suffix=False,
        )

    gcols = {g: f"{groupby}={g}" for g in group_values}
    groups = {gcols[g]: (_group_label(spec, groupby, g), int((data[groupby] == g).sum())) for g in group_values}
    htab = t1.htest_table
    smd_tab = t1.smd_table.astype(float).abs()

    tidy_rows: list[dict[str, object]] = []
    summary_rows: list[dict[str, object]] = []
    for v in variables:
        var = specs[v]
        common = {
            "p_value": float(htab.loc[v, "P-Value"]), "test": str(htab.loc[v, "Test"]),
            "smd": float(smd_tab.loc[v].max()), "missing": int(data[v].isna().sum()),
        }
        if var.kind == "continuous":
            sources = {"overall": (t1.cont_describe_all, "Overall"), **{gcols[g]: (t1.cont_describe, g) for g in group_values}}
            row = {"variable": v, "label": var.display, "level": None,
                   "statistic": "mean (SD)" if normal[v] else "median [Q1, Q3]"}
            for col, (desc, key) in sources.items():
                s = {stat: float(desc[stat][key].loc[v]) for stat in ("count", "mean", "std", "median", "q25", "q75")}
                summary_rows.append({"variable": v, "level": None, "group": col, "n": int(s["count"]),
                                     "mean": s["mean"], "sd": s["std"], "median": s["median"],
                                     "q1": s["q25"], "q3": s["q75"], "count": np.nan, "percent": np.nan})
                row[col] = (f"{fmt_num(s['mean'], decimals)} ({fmt_num(s['std'], decimals)})" if normal[v] else
                            f"{fmt_num(s['median'], decimals)} [{fmt_num(s['q25'], decimals)}, {fmt_num(s['q75'], decimals)}]")
            tidy_rows.append({**row, **common, "normal": normal[v]})
            continue
        sources = {"overall": (t1.cat_describe_all, "Overall"), **{gcols[g]: (t1.cat_describe, g) for g in group_values}}
        for level in var.levels:
            row = {"variable": v, "label": var.display, "level": level, "statistic": "n (%)"}
            for col, (desc, key) in sources.items():
                hit = (v, level) in desc.index
                count = int(desc["freq"][key].loc[(v, level)]) if hit else 0
                in_group = data[v] if key == "Overall" else data.loc[data[groupby] == key, v]
                n_valid = int(in_group.notna().sum())
                pct = 100.0 * count / n_valid if n_valid else np.nan
                summary_rows.append({"variable": v, "level": level, "group": col, "n": n_valid, "mean": np.nan,
                                     "sd": np.nan, "median": np.nan, "q1": np.nan, "q3": np.nan,
                                     "count": count, "percent": pct})
                row[col] = f"{count} ({fmt_num(pct, decimals)})"
            tidy_rows.append({**row, **common, "normal": None})

    tidy = pd.DataFrame(tidy_rows, columns=[*TIDY_LEAD, *gcols.values(), *TIDY_TAIL])
    summary = pd.DataFrame(summary_rows, columns=SUMMARY_COLUMNS)
    notes = [
        f"Continuous variables: mean (SD) and Welch's t-test when the Shapiro-Wilk test gave P >= {normality_alpha} "
        "in every group; otherwise median [Q1, Q3] and the Mann-Whitney U test (exact P when both groups have "
        "fewer than 50 values and no ties, else normal approximation with continuity correction, as R wilcox.test)"
        + ("; one-way ANOVA / Kruskal-Wallis for more than two groups." if len(group_values) > 2 else "."),
        "Categorical variables: n (%), chi-square test (Yates' continuity correction for 2 x 2 tables), "
        "Fisher's exact test when any expected count is below 5.",
        "SMD: absolute standardized mean difference (Yang & Dalton for categorical variables). "
        "Percentages are of patients with a known value; missing values are counted per variable.",
    ]
    if no_group:
        notes.append(f"{no_group} patient(s) with a missing '{groupby}' are not in the table.")
    return BaselineTable(tidy=tidy, summary=summary, groups=groups, notes=tuple(notes))


# --- details of the event ---------------------------------------------------------------

def table_event_details(
    spec: StudySpec,
    cohort: pd.DataFrame,
    columns: tuple[str, ...] | list[str],
    *,
    events_only: bool = True,
) -> CrossCounts:
    """Counts of patients by the variables that describe the event (``outcome.event_details``).

    One column gives a frequency table; two give a cross table (first column in rows, second
    in columns) with row and column totals.

    Parameters
    ----------
    spec
        Study specification; the columns should be categorical variables in it (their levels
        give the order and include levels nobody has).
    cohort
        Validated cohort.
    columns
        One or two column names, read by the caller from the study file.
    events_only
        Tabulate the patients with the event (``spec.outcome.event == 1``), the default; the
        reference level of each column ("no event") is then left out unless somebody with
        the event has it, which is shown, counted and noted as an inconsistency.  With
        ``False`` every patient is tabulated.

    Returns
    -------
    CrossCounts
        ``tidy`` has one column per detail variable (named as the variable), ``n`` and
        ``percent`` (of the patients tabulated); every level combination is listed and missing
        values form a ``MISSING`` level, so the counts sum to ``n``.  The wide table with totals
        and study-file labels is the report's (:func:`.table_display.event_details_display`).
    """
    columns = list(columns)
    if not 1 <= len(columns) <= 2:
        raise ValueError(f"event details take one or two columns (got {columns})")
    for col in columns:
        if col not in cohort.columns:
            raise ValueError(f"cohort lacks column '{col}'")
    data = cohort
    if events_only:
        data = cohort[pd.to_numeric(cohort[spec.outcome.event]) == 1]
    notes: list[str] = []
    known = {v.name for v in spec.variables}

    def as_text(col: str) -> pd.Series:
        return data[col].astype(object).where(data[col].notna(), MISSING).astype(str)

    def levels(col: str) -> list[str]:
        var = spec.variable(col) if col in known else None
        if var is None or not var.levels:
            lv = sorted(data[col].dropna().astype(str).unique())
        else:
            lv = list(var.levels)
            if events_only and var.ref_level is not None:
                used = int((as_text(col) == var.ref_level).sum())
                if used:
                    notes.append(f"{used} patient(s) with the event have '{col}' = '{var.ref_level}' (no event)")
                else:
                    lv.remove(var.ref_level)
        if data[col].isna().any():
            lv.append(MISSING)
        return lv

    first = columns[0]
    if len(columns) == 1:
        counts = as_text(first).value_counts().reindex(levels(first), fill_value=0)
        tidy = counts.rename_axis(first).rename("n").reset_index()
    else:
        second = columns[1]
        ct = pd.crosstab(as_text(first), as_text(second)).reindex(index=levels(first), columns=levels(second), fill_value=0)
        tidy = ct.rename_axis(index=first, columns=second).stack().rename("n").reset_index()
    n = len(data)
    tidy["n"] = tidy["n"].astype(int)
    tidy["percent"] = 100.0 * tidy["n"] / n if n else np.nan
    return CrossCounts(tidy=tidy, n=n, notes=tuple(notes))
