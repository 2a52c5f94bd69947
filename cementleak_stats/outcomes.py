"""Repeated patient-reported outcomes (e.g. a pain score and a disability index before and after an intervention).

Everything is driven by ``spec.repeated``: the id and timepoint columns, the timepoints in
their clinical order and the measures (name, label, unit).  The input is the long table the
study file declares — one row per patient and timepoint, one column per measure.

What is computed, per measure:

* descriptives per timepoint: n, mean (SD), median [Q1, Q3], min, max;
* omnibus tests over all timepoints: Friedman (complete cases), one-way repeated-measures
  ANOVA (complete cases, sphericity assumed; closed-form sums of squares, :func:`rm_anova`)
  and a linear mixed model with a random intercept per patient (all available observations,
  REML, :func:`random_intercept_lmm`; joint Wald test of the timepoint terms);
* pairwise comparisons of every pair of timepoints (later minus earlier): Wilcoxon
  signed-rank test computed exactly as R's ``wilcox.test(later, earlier, paired = TRUE)`` and
  the paired t-test, each family of pairwise P values Holm-adjusted within measure and test.

All functions are pure: they return tidy DataFrames or a frozen :class:`OutcomesResult`.  The
statistics themselves take arrays and live in :mod:`cementleak_stats.repeated_measures`; this
module turns the study's long table into those arrays and the results into tables.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from .repeated_measures import (MixedModelResult, RMAnovaResult, SignedRankResult, holm,
                                random_intercept_lmm, rm_anova, signed_rank_test)
from .spec import Repeated, StudySpec

__all__ = ["TEST_COLUMNS", "OutcomesResult", "outcomes_long", "describe_outcomes", "outcomes_tests",
           "analyze_outcomes", "holm", "signed_rank_test", "rm_anova", "random_intercept_lmm",
           "SignedRankResult", "RMAnovaResult", "MixedModelResult"]

#: Column order of :func:`outcomes_tests`.
TEST_COLUMNS = [
    "measure", "test", "comparison", "statistic", "df", "p_value", "p_adjusted",
    "effect_size", "effect_size_name", "estimate", "n",
]


@dataclass(frozen=True)
class OutcomesResult:
    """All outcome analyses of :func:`analyze_outcomes`."""

    #: long data with labels, for trajectory plots: id, measure, measure_label, timepoint,
    #: timepoint_label, timepoint_index, value
    long: pd.DataFrame
    descriptives: pd.DataFrame
    tests: pd.DataFrame
    #: fixed effects of the mixed models: measure, term, estimate, se, ci_low, ci_high, p_value
    #: (Wald z intervals and P values; nlme's ``summary(lme)`` uses t with its own df)
    mixed_models: pd.DataFrame
    notes: tuple[str, ...]

    def trajectories(self, measure: str) -> pd.DataFrame:
        """One measure as :func:`cementleak_stats.figures.outcomes.plot_trajectories` takes it.

        Columns ``id`` (0, 1, 2, ...: an anonymous index, never the patient identifier),
        ``timepoint`` (ordered ``Categorical`` of the timepoint labels) and ``value``.
        """
        sub = self.long[self.long["measure"] == measure]
        if sub.empty:
            raise KeyError(f"no measure {measure!r}; measures: {list(self.long['measure'].unique())}")
        return pd.DataFrame({"id": pd.factorize(sub["id"])[0], "timepoint": sub["timepoint_label"].array,
                             "value": sub["value"].to_numpy()})


def _repeated(spec: StudySpec) -> Repeated:
    if spec.repeated is None:
        raise ValueError("the study file has no 'repeated' section: there are no repeated outcomes to analyse")
    return spec.repeated


def outcomes_long(spec: StudySpec, repeated: pd.DataFrame) -> pd.DataFrame:
    """The repeated table in long form with labels, one row per patient, timepoint and measure.

    Parameters
    ----------
    spec
        Study specification; ``spec.repeated`` names the columns.
    repeated
        Long table: id column, timepoint column, one column per measure.

    Returns
    -------
    pandas.DataFrame
        Columns ``id``, ``measure``, ``measure_label`` (label with unit), ``timepoint`` and
        ``timepoint_label`` (ordered ``Categorical`` in study-file order), ``timepoint_index``
        (0, 1, 2, ...) and ``value`` (float; missing values are kept as NaN).

    Raises
    ------
    ValueError
        If a column is missing, a timepoint is not declared in the study file, or a patient
        has two rows for one timepoint.
    """
    rep = _repeated(spec)
    measures = [m.name for m in rep.measures]
    missing = [c for c in (rep.id, rep.timepoint, *measures) if c not in repeated.columns]
    if missing:
        raise ValueError(f"repeated-outcomes table lacks column(s) {missing} named in the study file")
    tp_names = [t.name for t in rep.timepoints]
    tp = repeated[rep.timepoint].astype("string")
    if tp.isna().any():
        raise ValueError(f"column '{rep.timepoint}' of the repeated-outcomes table has missing timepoints")
    unknown = sorted(set(tp.dropna()) - set(tp_names))
    if unknown:
        raise ValueError(f"timepoint(s) {unknown} in column '{rep.timepoint}' are not declared in the study file {tp_names}")
    dup = repeated.assign(_tp=tp).duplicated([rep.id, "_tp"])
    if dup.any():
        first = repeated.loc[dup, rep.id].iloc[0]
        raise ValueError(f"patient {first!r} has more than one row for one timepoint in the repeated-outcomes table")
    labels = {t.name: t.label for t in rep.timepoints}
    index = {t.name: i for i, t in enumerate(rep.timepoints)}
    names = pd.Categorical(tp.to_numpy(dtype=object), categories=tp_names, ordered=True)
    shown = pd.Categorical(tp.map(labels).to_numpy(dtype=object), categories=[t.label for t in rep.timepoints],
                           ordered=True)
    frames = []
    for m in rep.measures:
        frames.append(pd.DataFrame({
            "id": repeated[rep.id].to_numpy(),
            "measure": m.name,
            "measure_label": m.display,
            "timepoint": names,
            "timepoint_label": shown,
            "timepoint_index": tp.map(index).to_numpy(dtype=int),
            "value": pd.to_numeric(repeated[m.name], errors="raise").to_numpy(dtype=float),
        }))
    out = pd.concat(frames, ignore_index=True)
    order = {m.name: i for i, m in enumerate(rep.measures)}
    out["_order"] = out["measure"].map(order)
    out = out.sort_values(["_order", "id", "timepoint_index"], kind="stable")
    return out.drop(columns="_order").reset_index(drop=True)


def _wide(rep: Repeated, long: pd.DataFrame, measure: str) -> pd.DataFrame:
    """patients x timepoints (study-file order) for one measure."""
    sub = long[long["measure"] == measure]
    wide = sub.assign(timepoint=sub["timepoint"].astype(str)).pivot(index="id", columns="timepoint", values="value")
    return wide.reindex(columns=[t.name for t in rep.timepoints])


def describe_outcomes(spec: StudySpec, repeated: pd.DataFrame) -> pd.DataFrame:
    """Descriptive statistics of every measure at every timepoint.

    Returns
    -------
    pandas.DataFrame
        Columns ``measure``, ``measure_label``, ``timepoint``, ``timepoint_label``, ``n``
        (non-missing values), ``missing``, ``mean``, ``sd`` (n - 1 denominator), ``median``,
        ``q1``, ``q3``, ``min``, ``max``.

    Notes
    -----
    Quartiles are linear-interpolation quantiles (R ``quantile(type = 7)``, NumPy's default).
    """
    return _describe(_repeated(spec), outcomes_long(spec, repeated))


def _describe(rep: Repeated, long: pd.DataFrame) -> pd.DataFrame:
    rows = []
    measure, index, value = (long[c].to_numpy() for c in ("measure", "timepoint_index", "value"))
    for m in rep.measures:
        this = measure == m.name
        for i, t in enumerate(rep.timepoints):
            v = value[this & (index == i)]
            x = v[~np.isnan(v)]
            has = x.size > 0
            rows.append({
                "measure": m.name, "measure_label": m.display, "timepoint": t.name, "timepoint_label": t.label,
                "n": int(x.size), "missing": int(v.size - x.size),
                "mean": float(np.mean(x)) if has else np.nan,
                "sd": float(np.std(x, ddof=1)) if x.size > 1 else np.nan,
                "median": float(np.median(x)) if has else np.nan,
                "q1": float(np.percentile(x, 25)) if has else np.nan,
                "q3": float(np.percentile(x, 75)) if has else np.nan,
                "min": float(np.min(x)) if has else np.nan,
                "max": float(np.max(x)) if has else np.nan,
            })
    return pd.DataFrame(rows)


def _pairwise(rep: Repeated, measure: str, wide: pd.DataFrame) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for a, b in itertools.combinations([t.name for t in rep.timepoints], 2):
        pair = wide[[a, b]].dropna()
        comparison = f"{b} vs {a}"
        x_a, x_b = pair[a].to_numpy(), pair[b].to_numpy()
        d = x_b - x_a
        if len(pair) < 2:
            continue
        w = signed_rank_test(x_b, x_a)
        rows.append({
            "measure": measure, "test": "Wilcoxon signed-rank", "comparison": comparison,
            "statistic": w.statistic, "df": np.nan, "p_value": w.p_value,
            "effect_size": abs(w.z) / np.sqrt(w.n) if w.n else np.nan, "effect_size_name": "r = |z|/sqrt(n)",
            "estimate": float(np.median(d)), "n": len(pair),
        })
        sd = np.std(d, ddof=1)
        t = stats.ttest_rel(x_b, x_a)
        rows.append({
            "measure": measure, "test": "paired t-test", "comparison": comparison,
            "statistic": float(t.statistic), "df": float(len(pair) - 1), "p_value": float(t.pvalue),
            "effect_size": float(np.mean(d) / sd) if sd > 0 else np.nan, "effect_size_name": "Cohen's dz",
            "estimate": float(np.mean(d)), "n": len(pair),
        })
    return rows


def _omnibus(measure: str, wide: pd.DataFrame) -> list[dict[str, object]]:
    complete = wide.dropna()
    n, k = complete.shape
    rows: list[dict[str, object]] = []
    if k >= 3 and n >= 2:
        fr = stats.friedmanchisquare(*(complete[c].to_numpy() for c in complete.columns))
        rows.append({
            "measure": measure, "test": "Friedman", "comparison": "all timepoints",
            "statistic": float(fr.statistic), "df": float(k - 1), "p_value": float(fr.pvalue),
            # Kendall's W = chi2 / (n (k - 1))
            "effect_size": float(fr.statistic / (n * (k - 1))), "effect_size_name": "Kendall's W",
            "estimate": np.nan, "n": n,
        })
    if k >= 2 and n >= 2:
        av = rm_anova(complete.to_numpy(dtype=float))
        rows.append({
            "measure": measure, "test": "repeated-measures ANOVA", "comparison": "all timepoints",
            "statistic": av.f, "df": av.df1, "p_value": av.p_value,
            "effect_size": av.partial_eta_squared, "effect_size_name": "partial eta squared",
            "estimate": np.nan, "n": n,
        })
    return rows


def _mixed_model(rep: Repeated, measure: str, long: pd.DataFrame) -> tuple[dict[str, object] | None, pd.DataFrame, list[str]]:
    data = long[(long["measure"] == measure)].dropna(subset=["value"])
    if data["id"].nunique() < 2 or data["timepoint_index"].nunique() < 2:
        return None, pd.DataFrame(), []
    # treatment contrasts against the first timepoint (R's contr.treatment); a timepoint
    # without any observation has no column
    index = data["timepoint_index"].to_numpy()
    present = [i for i in range(1, len(rep.timepoints)) if (index == i).any()]
    x = np.column_stack([np.ones(len(data))] + [(index == i).astype(float) for i in present])
    fit = random_intercept_lmm(data["value"].to_numpy(dtype=float), x, data["id"].to_numpy())
    messages = [f"mixed model for {measure}: the random-intercept variance is estimated at zero (boundary)"] \
        if fit.boundary else []
    se = np.sqrt(np.diag(fit.cov))
    z = stats.norm.ppf(0.975)
    table = pd.DataFrame({
        "measure": measure,
        "term": ["(Intercept)"] + [f"{rep.timepoints[i].name} vs {rep.timepoints[0].name}" for i in present],
        "estimate": fit.coef, "se": se, "ci_low": fit.coef - z * se, "ci_high": fit.coef + z * se,
        "p_value": 2 * stats.norm.sf(np.abs(fit.coef / se)),
    })
    b = fit.coef[1:]
    chi2 = float(b @ np.linalg.solve(fit.cov[1:, 1:], b))
    row = {
        "measure": measure, "test": "linear mixed model (Wald)", "comparison": "all timepoints",
        "statistic": chi2, "df": float(len(b)), "p_value": float(stats.chi2.sf(chi2, len(b))),
        "effect_size": np.nan, "effect_size_name": "", "estimate": np.nan, "n": int(data["id"].nunique()),
    }
    return row, table, messages


def _analyze(spec: StudySpec, repeated: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, list[str]]:
    rep = _repeated(spec)
    long = outcomes_long(spec, repeated)
    rows: list[dict[str, object]] = []
    models = []
    messages: list[str] = []
    for m in rep.measures:
        wide = _wide(rep, long, m.name)
        rows.extend(_omnibus(m.name, wide))
        row, table, msg = _mixed_model(rep, m.name, long)
        messages.extend(msg)
        if row is not None:
            rows.append(row)
            models.append(table)
        rows.extend(_pairwise(rep, m.name, wide))
    tests = pd.DataFrame(rows, columns=[c for c in TEST_COLUMNS if c != "p_adjusted"])
    tests["p_adjusted"] = np.nan
    pairwise = tests["comparison"] != "all timepoints"
    for _, idx in tests[pairwise].groupby(["measure", "test"]).groups.items():
        tests.loc[idx, "p_adjusted"] = holm(tests.loc[idx, "p_value"].to_numpy())
    tests["n"] = tests["n"].astype(int)
    mixed = pd.concat(models, ignore_index=True) if models else pd.DataFrame(
        columns=["measure", "term", "estimate", "se", "ci_low", "ci_high", "p_value"])
    return long, tests[TEST_COLUMNS], mixed, messages


def outcomes_tests(spec: StudySpec, repeated: pd.DataFrame) -> pd.DataFrame:
    """Omnibus and pairwise tests of every measure over the timepoints.

    Returns
    -------
    pandas.DataFrame
        One row per measure, test and comparison, columns:

        ``measure``; ``test`` (Friedman, repeated-measures ANOVA, linear mixed model (Wald),
        Wilcoxon signed-rank, paired t-test); ``comparison`` ("all timepoints" or
        "<later> vs <earlier>", the difference being later minus earlier); ``statistic``
        (chi-square, F, Wald chi-square, R's V = W+, t); ``df`` (numerator df for F); ``p_value``;
        ``p_adjusted`` (Holm within measure and test over the pairwise comparisons; NaN for
        omnibus tests); ``effect_size`` and ``effect_size_name`` (Kendall's W, partial eta
        squared, r = |z|/sqrt(n) with z the signed-rank normal statistic without continuity
        correction and n the non-zero differences, Cohen's dz = mean(d)/sd(d)); ``estimate``
        (median difference for Wilcoxon, mean difference for t); ``n`` (patients used).

    Notes
    -----
    Friedman and repeated-measures ANOVA use patients with every timepoint (complete cases);
    the ANOVA assumes sphericity (no Greenhouse-Geisser correction).  The mixed model uses all
    available observations (random intercept, REML).  Pairwise tests use the patients with
    both timepoints.  The Wilcoxon test is R's (see :func:`signed_rank_test`).

    References
    ----------
    Friedman M. J Am Stat Assoc 1937;32:675-701.  Holm S. Scand J Stat 1979;6:65-70.
    """
    return _analyze(spec, repeated)[1]


def analyze_outcomes(spec: StudySpec, repeated: pd.DataFrame) -> OutcomesResult:
    """Descriptives, tests, mixed-model fixed effects and the labelled long data, in one result.

    See :func:`describe_outcomes`, :func:`outcomes_tests` and :func:`outcomes_long`.
    """
    rep = _repeated(spec)
    long, tests, mixed, messages = _analyze(spec, repeated)
    notes = (
        "Friedman test and repeated-measures ANOVA (sphericity assumed) on patients with all "
        f"{len(rep.timepoints)} timepoints; linear mixed model with a random intercept per patient "
        "(REML) on all available observations, timepoints tested jointly by a Wald test.",
        "Pairwise comparisons are later minus earlier timepoint: Wilcoxon signed-rank test as R "
        "wilcox.test(paired = TRUE) (statistic V = W+; exact P when n < 50 without ties or zero "
        "differences, otherwise normal approximation with continuity correction) and paired t-test; "
        "P values Holm-adjusted within each measure and test.",
        "Effect sizes: Kendall's W (Friedman), partial eta squared (ANOVA), r = |z|/sqrt(n) "
        "(Wilcoxon), Cohen's dz (paired t).",
        *messages,
    )
    return OutcomesResult(long=long, descriptives=_describe(rep, long), tests=tests,
                          mixed_models=mixed, notes=notes)
