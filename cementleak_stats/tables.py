"""Table 1 (baseline characteristics by outcome group) and the table of what the events were (``outcome.event_details``).

Descriptive statistics, missing counts and standardized mean differences are those of
**tableone** (:class:`tableone.TableOne`), computed here directly with the same NumPy/pandas
calls (tableone's per-cell Python loops took minutes at n = 1,000,000; see the section "Table
1's numbers"); every P value follows one stated rule and equals R:

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

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .formatting import fmt_num
from .group_tests import SHAPIRO_MAX_N, categorical_test, continuous_test, fisher_exact_2xk, is_normal
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

    has_group = cohort[groupby].notna().to_numpy()
    no_group = int((~has_group).sum())
    data = cohort.loc[has_group, [*variables, groupby]] if no_group else cohort  # columns read, never written
    if data[groupby].dtype.name == "category":
        present = set(data[groupby].cat.remove_unused_categories().cat.categories)
        group_values = [lv for lv in data[groupby].cat.categories if lv in present]
    else:
        group_values = sorted(data[groupby].unique().tolist())
    if len(group_values) < 2:
        raise ValueError(f"'{groupby}' has fewer than two groups; Table 1 compares groups")
    group_index, order = _group_index(data[groupby], group_values)
    gcols = {g: f"{groupby}={g}" for g in group_values}
    sizes = np.bincount(group_index, minlength=len(group_values))
    beyond_shapiro = False  # a group with more values than R's shapiro.test takes
    groups = {gcols[g]: (_group_label(spec, groupby, g), int(sizes[i])) for i, g in enumerate(group_values)}

    tidy_rows: list[dict[str, object]] = []
    summary_rows: list[dict[str, object]] = []
    for v in variables:
        var = specs[v]
        row: dict[str, object] = {"variable": v, "label": var.display}
        if var.kind == "continuous":
            x = pd.to_numeric(data[v], errors="raise").to_numpy(dtype=float)
            in_group = [x[group_index == i] for i in range(len(group_values))]
            observed = [g[~np.isnan(g)] for g in in_group]
            normal = is_normal(observed, normality_alpha)
            beyond_shapiro = beyond_shapiro or any(o.size > SHAPIRO_MAX_N for o in observed)
            test = continuous_test([observed[i] for i in order], normal)
            described = dict(zip(["overall", *gcols.values()], _describe(x, group_index, in_group)))
            row |= {"level": None, "statistic": "mean (SD)" if normal else "median [Q1, Q3]"}
            for col, s in described.items():
                summary_rows.append({"variable": v, "level": None, "group": col, **s, "count": np.nan, "percent": np.nan})
                row[col] = (f"{fmt_num(s['mean'], decimals)} ({fmt_num(s['sd'], decimals)})" if normal else
                            f"{fmt_num(s['median'], decimals)} [{fmt_num(s['q1'], decimals)}, {fmt_num(s['q3'], decimals)}]")
            smd = _largest_smd([_continuous_smd(described[gcols[group_values[a]]], described[gcols[group_values[b]]])
                                for a, b in _pairs(order)])
            tidy_rows.append({**row, "p_value": float(test(*(observed[i] for i in order))), "test": test.__name__,
                              "smd": smd, "missing": int(np.isnan(x).sum()), "normal": normal})
            continue
        codes, observed_levels = _level_codes(data[v])
        known = codes >= 0
        # observed levels (sorted as text) x groups
        counts = np.bincount(codes[known] * len(group_values) + group_index[known],
                             minlength=len(observed_levels) * len(group_values)).reshape(len(observed_levels), -1)
        n_valid = counts.sum(axis=0)
        # the test is chosen on the levels x groups table and given one row per group (sorted; a group
        # without any value left out), as tableone's pd.crosstab passed them to its htest hook
        table = counts[:, [i for i in order if n_valid[i] > 0]]
        test = categorical_test(table)
        common = {"p_value": float(test(*(list(r) for r in table.T))), "test": test.__name__,
                  "smd": _largest_smd([_categorical_smd(counts[:, a], counts[:, b]) for a, b in _pairs(order)]),
                  "missing": int((~known).sum()), "normal": None}
        position = {lv: k for k, lv in enumerate(observed_levels)}
        for level in var.levels:
            k = position.get(level)
            row = {"variable": v, "label": var.display, "level": level, "statistic": "n (%)"}
            cells = [("overall", counts.sum(axis=1), int(n_valid.sum())),
                     *((gcols[g], counts[:, i], int(n_valid[i])) for i, g in enumerate(group_values))]
            for col, by_level, n in cells:
                count = int(by_level[k]) if k is not None else 0
                pct = 100.0 * count / n if n else np.nan
                summary_rows.append({"variable": v, "level": level, "group": col, "n": n, "mean": np.nan,
                                     "sd": np.nan, "median": np.nan, "q1": np.nan, "q3": np.nan,
                                     "count": count, "percent": pct})
                row[col] = f"{count} ({fmt_num(pct, decimals)})"
            tidy_rows.append({**row, **common})

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
    if beyond_shapiro:
        notes.append(f"Some groups have more than {SHAPIRO_MAX_N} values of a continuous variable: the Shapiro-Wilk "
                     f"P is approximate there (SciPy; R shapiro.test accepts at most {SHAPIRO_MAX_N}).")
    if no_group:
        notes.append(f"{no_group} patient(s) with a missing '{groupby}' are not in the table.")
    return BaselineTable(tidy=tidy, summary=summary, groups=groups, notes=tuple(notes))


# --- Table 1's numbers, computed directly ---------------------------------------------------
# tableone (0.9) computed these until issue 16; its summaries and test table loop over every cell
# in Python (pd.isna, pd.to_numeric per value): 66-151 s at n = 1,000,000, 0.3 s at n = 100, and
# its import loads statsmodels.  The P values were already ours (through its htest hook); the rest
# is a few reductions per group, done with tableone's NumPy/pandas calls (groupby count/mean/median,
# np.nanstd(ddof=1) with 0 for a one-row group, np.nanpercentile) and SMD formulas: the same bits
# (tests/test_tables_tableone.py compares both on random cohorts and the test studies).

def _group_index(key: pd.Series, group_values: list[object]) -> tuple[np.ndarray, list[int]]:
    """Each row's group as an index into ``group_values``, and the groups in sorted order
    (the order tableone gave its tests and SMD pairs; ``group_values`` order when unsortable)."""
    index = np.full(len(key), -1, dtype=np.int64)
    values = key.astype(object).to_numpy() if key.dtype.name == "category" else key.to_numpy()
    for i, g in enumerate(group_values):
        index[values == g] = i
    try:
        order = sorted(range(len(group_values)), key=group_values.__getitem__)
    except TypeError:
        order = list(range(len(group_values)))
    return index, order


def _level_codes(column: pd.Series) -> tuple[np.ndarray, list[str]]:
    """A categorical column as codes into its observed values written as text, sorted (-1: missing)."""
    if column.dtype.name == "category":
        codes = column.cat.codes.to_numpy(dtype=np.int64)
        names = [str(c) for c in column.cat.categories]
    else:
        codes, uniques = pd.factorize(column.astype(object), use_na_sentinel=True)
        codes = codes.astype(np.int64)
        names = [str(u) for u in uniques]
    used = np.flatnonzero(np.bincount(codes[codes >= 0], minlength=len(names)))
    levels = sorted({names[c] for c in used})
    position = {lv: k for k, lv in enumerate(levels)}
    remap = np.full(len(names) + 1, -1, dtype=np.int64)  # remap[-1] = -1 keeps missing missing
    for c in used:
        remap[c] = position[names[c]]
    return remap[codes], levels


def _describe(x: np.ndarray, group_index: np.ndarray, in_group: list[np.ndarray]) -> list[dict[str, float]]:
    """n, mean, SD, median, Q1, Q3 overall and in each group (missing values left out)."""
    whole = pd.Series(x)
    by = whole.groupby(group_index)
    count, mean, median = by.count(), by.mean(), by.median()
    rows = [(int(whole.count()), whole.mean(), whole.median(), x)]
    rows += [(int(count.get(i, 0)), mean.get(i, np.nan), median.get(i, np.nan), xs) for i, xs in enumerate(in_group)]
    out = []
    for n, m, med, values in rows:
        q1, q3 = np.nanpercentile(values, [25, 75]) if n else (np.nan, np.nan)
        sd = 0.0 if values.size == 1 else float(np.nanstd(values, ddof=1)) if n > 1 else np.nan
        out.append({"n": n, "mean": float(m), "sd": sd, "median": float(med), "q1": float(q1), "q3": float(q3)})
    return out


def _pairs(order: list[int]) -> list[tuple[int, int]]:  # each pair of groups once, in tableone's order
    return [(a, b) for k, a in enumerate(order) for b in order[k + 1:]]


def _largest_smd(values: list[float]) -> float:
    """The largest absolute pairwise SMD (NaN when none is defined)."""
    finite = [abs(v) for v in values if not np.isnan(v)]
    return max(finite) if finite else np.nan


def _continuous_smd(a: dict[str, float], b: dict[str, float]) -> float:
    """(m_b - m_a) / sqrt((s_a^2 + s_b^2) / 2), tableone's ``_cont_smd``."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return float((np.float64(b["mean"]) - a["mean"]) / np.sqrt((a["sd"] ** 2 + b["sd"] ** 2) / 2))


def _categorical_smd(counts_a: np.ndarray, counts_b: np.ndarray) -> float:
    """Yang & Dalton's SMD over the levels after the first (observed levels sorted as text), as
    tableone's ``_cat_smd`` and R tableone: sqrt(d' S^-1 d), d the difference in proportions,
    S the mean of the two multinomial covariance matrices."""
    with np.errstate(divide="ignore", invalid="ignore"):
        p = [np.asarray(c, dtype=float) / c.sum() * 100 / 100 for c in (counts_a, counts_b)]  # tableone's percent / 100
    covariances = []
    for q in (p[0][1:], p[1][1:]):
        cov = -np.outer(q, q)
        cov[np.diag_indices_from(cov)] = q * (1 - q)
        covariances.append(cov)
    diff = np.asarray(p[1][1:] - p[0][1:]).reshape((1, -1))
    try:
        squared = diff @ np.linalg.inv((covariances[0] + covariances[1]) / 2) @ diff.T
    except np.linalg.LinAlgError:
        return np.nan
    with np.errstate(invalid="ignore"):
        return float(np.sqrt(squared)[0][0]) if squared.size else np.nan


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
