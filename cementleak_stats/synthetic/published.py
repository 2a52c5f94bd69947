"""The synthetic cohort checked against every published figure, and the seed search that chose
:data:`~.model.DEFAULT_SEED`.

The checks use lifelines (Cox, Efron ties), SciPy and statsmodels directly, not the package's
analysis: an independent look at the cohort, and the generator stays out of the analysis' layers.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..formatting import format_p_sci
from ..spec import StudySpec
from .files import _default_spec
from .model import ID, NO_EVENT_LEVEL, PUBLISHED, SEARCH_START, TRUE_COEFFICIENTS, _TIMEPOINTS, SyntheticStudy, simulate_study


@dataclass(frozen=True)
class SeedSearch:
    """Result of :func:`search_seed`: the first seed that passes, and how many were tried."""

    seed: int
    tried: int
    checks: pd.DataFrame


def _terms(spec: StudySpec, cohort: pd.DataFrame, variables: list[str]) -> pd.DataFrame:
    """Model terms as the study file codes them: a number as is; a binary variable 1 for its
    non-reference level; an ordinal score 0, 1, 2, ...; otherwise one indicator per non-reference level."""
    cols: dict[str, np.ndarray] = {}
    for name in variables:
        v, x = spec.variable(name), cohort[name]
        if v.kind == "continuous":
            cols[name] = x.to_numpy(float)
        elif v.kind == "ordinal" and v.coding == "score":
            cols[name] = x.astype(str).map({lv: i for i, lv in enumerate(v.levels)}).to_numpy(float)
        else:
            for lv in (lv for lv in v.levels if lv != v.ref_level):
                cols[name if v.kind == "binary" else f"{name}[{lv}]"] = (x.astype(str) == lv).to_numpy(float)
    return pd.DataFrame(cols, index=cohort.index)


def _cox_fits(study: SyntheticStudy, spec: StudySpec) -> tuple[pd.DataFrame, pd.DataFrame, int]:
    """Univariable screen (every candidate) and the multivariable model on the true factors.

    Returns ``screen`` (variable, p_wald_min, p_wald_max, p_lr), ``multi`` (term, coef, hr,
    p_value) and the number of lifelines ``ConvergenceWarning`` warnings raised by the fits.
    """
    from lifelines import CoxPHFitter  # Efron ties, as R coxph
    from lifelines.exceptions import ConvergenceWarning

    cohort = study.cohort
    t, e = spec.outcome.time, spec.outcome.event

    def fit(variables: list[str]) -> CoxPHFitter:
        X = _terms(spec, cohort, variables)
        df = X.assign(**{t: cohort[t].to_numpy(float), e: cohort[e].to_numpy(float)})
        return CoxPHFitter().fit(df, duration_col=t, event_col=e)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        rows = []
        for var in spec.candidates:
            cph = fit([var.name])
            rows.append({"variable": var.name, "p_wald_min": float(cph.summary["p"].min()),
                         "p_wald_max": float(cph.summary["p"].max()),
                         "p_lr": float(cph.log_likelihood_ratio_test().p_value)})
        factors = [v for v, b in TRUE_COEFFICIENTS.items() if b != 0.0]
        summ = fit(factors).summary
    n_warn = sum(issubclass(w.category, ConvergenceWarning) for w in caught)
    multi = pd.DataFrame({"term": summ.index.to_list(), "coef": summ["coef"].to_numpy(),
                          "hr": summ["exp(coef)"].to_numpy(), "p_value": summ["p"].to_numpy()})
    return pd.DataFrame(rows), multi, n_warn


def _paired_tests(outcomes: pd.DataFrame, measure: str) -> pd.DataFrame:
    """All pairwise paired comparisons of time points: Wilcoxon and t, Holm-adjusted per measure."""
    from scipy import stats
    from statsmodels.stats.multitest import multipletests  # R p.adjust(method = "holm")

    def holm(p: np.ndarray) -> np.ndarray:
        return multipletests(p, method="holm")[1]

    def signed_rank_p(x: np.ndarray, y: np.ndarray) -> float:
        # R wilcox.test(x, y, paired = TRUE): zeros dropped; exact when n < 50 without ties or
        # zeros, else the normal approximation with tie-corrected variance and continuity correction
        d = x - y
        exact = d.size < 50 and np.all(d != 0) and np.unique(np.abs(d)).size == d.size
        return float(stats.wilcoxon(x, y, zero_method="wilcox", correction=True,
                                    method="exact" if exact else "approx").pvalue)

    wide = outcomes.pivot(index=ID, columns="timepoint", values=measure)
    pairs = [(b, a) for i, a in enumerate(_TIMEPOINTS) for b in _TIMEPOINTS[i + 1:]]
    rows = []
    for later, earlier in pairs:
        x, y = wide[later].to_numpy(float), wide[earlier].to_numpy(float)
        rows.append({"later": later, "earlier": earlier, "median_diff": float(np.median(x - y)),
                     "p_wilcoxon": signed_rank_p(x, y),
                     "p_t": float(stats.ttest_rel(x, y).pvalue)})
    res = pd.DataFrame(rows)
    res["p_wilcoxon_holm"] = holm(res["p_wilcoxon"].to_numpy())
    res["p_t_holm"] = holm(res["p_t"].to_numpy())
    return res


def check_published_figures(study: SyntheticStudy, *, spec: StudySpec | None = None,
                            alpha: float | None = None) -> pd.DataFrame:
    """Check a (synthetic) study against every published figure of Chen et al. (2025).

    Parameters
    ----------
    study : SyntheticStudy
        The cohort and outcomes (simulated, or read back from the shipped CSV files: category
        columns may then be plain strings).
    spec : StudySpec, optional
        Study file; default ``study.yaml`` in the working directory.
    alpha : float, optional
        Significance level; default the study file's ``analysis.screen_p_value``.

    Returns
    -------
    pandas.DataFrame
        One row per check: ``check`` (str), ``expected`` (str), ``observed`` (str), ``ok`` (bool).

    Notes
    -----
    Cox models are fitted with ``lifelines.CoxPHFitter`` (Efron ties) on the design matrix of
    :func:`_terms` (the study file's coding, as the analysis codes it).  A univariable screen P value is taken to pass in
    the same way whichever test a screen uses: a true factor needs both its Wald and its
    likelihood-ratio P below ``alpha``; a null candidate needs every Wald P and its LR P at or
    above ``alpha``.  The outcome contrasts use the paired Wilcoxon signed-rank test and the
    paired t test, each Holm-adjusted over the three pairs of time points of one measure.
    """
    spec = _default_spec() if spec is None else spec
    alpha = spec.analysis.screen_p_value if alpha is None else alpha
    c, o = study.cohort, study.outcomes
    rows: list[tuple[str, str, str, bool]] = []

    def add(check: str, expected: object, observed: object, ok: bool) -> None:
        rows.append((check, str(expected), str(observed), bool(ok)))

    event = c[spec.outcome.event].to_numpy(int)
    time = c[spec.outcome.time].to_numpy(float)
    horizon = PUBLISHED.horizon_months
    add("patients", PUBLISHED.n, len(c), len(c) == PUBLISHED.n)
    add("leakage events", PUBLISHED.events, int(event.sum()), int(event.sum()) == PUBLISHED.events)
    ltype, mgmt = c["leakage_type"].astype(str).to_numpy(), c["management"].astype(str).to_numpy()
    for t, (m, count) in PUBLISHED.leakage_types.items():
        k = int(((ltype == t) & (mgmt == m) & (event == 1)).sum())
        add(f"leakage type {t}, management {m}", count, k, k == count)
    k = int(((ltype == NO_EVENT_LEVEL) & (mgmt == NO_EVENT_LEVEL) & (event == 0)).sum())
    add("no leakage: type and management 'none'", int((event == 0).sum()), k, k == int((event == 0).sum()))
    k = int((time[event == 0] == horizon).sum())
    add("no leakage: censored at exactly 12 months", int((event == 0).sum()), k, k == int((event == 0).sum()))
    lo, hi = float(time[event == 1].min()), float(time[event == 1].max())
    add("event times in (0, 12)", "0 < t < 12", f"{lo:.2f}..{hi:.2f}", 0 < lo and hi < horizon)

    screen, multi, n_warn = _cox_fits(study, spec)
    add("Cox fits without convergence warnings", 0, n_warn, n_warn == 0)
    factors = [v for v, b in TRUE_COEFFICIENTS.items() if b != 0.0]
    for _, r in multi.iterrows():
        beta = TRUE_COEFFICIENTS[r["term"]]
        ok = r["p_value"] < alpha and np.sign(r["coef"]) == np.sign(beta)
        add(f"multivariable Cox: {r['term']}", f"P < {alpha}, HR {'>' if beta > 0 else '<'} 1",
            f"HR {r['hr']:.3f}, P {format_p_sci(r['p_value'])}", ok)
    for _, r in screen.iterrows():
        if r["variable"] in factors:
            ok = max(r["p_wald_max"], r["p_lr"]) < alpha
            exp = f"P < {alpha}"
        else:
            ok = min(r["p_wald_min"], r["p_lr"]) >= alpha
            exp = f"P >= {alpha}"
        add(f"univariable screen: {r['variable']}", exp,
            f"Wald P {format_p_sci(r['p_wald_min'])}, LR P {format_p_sci(r['p_lr'])}", ok)

    for measure, later, earlier in PUBLISHED.outcome_contrasts:
        tests = _paired_tests(o, measure).set_index(["later", "earlier"]).loc[(later, earlier)]
        ok = tests["median_diff"] < 0 and tests["p_wilcoxon_holm"] < alpha and tests["p_t_holm"] < alpha
        add(f"{measure}: {later} lower than {earlier}", f"lower, Holm P < {alpha} (Wilcoxon and t)",
            f"median diff {tests['median_diff']:.1f}, Wilcoxon P {format_p_sci(tests['p_wilcoxon_holm'])}, "
            f"t P {format_p_sci(tests['p_t_holm'])}", ok)
    return pd.DataFrame(rows, columns=["check", "expected", "observed", "ok"])


def search_seed(*, start: int = SEARCH_START, max_tries: int = 10_000, spec: StudySpec | None = None) -> SeedSearch:
    """Find the first seed ``>= start`` whose 100-patient cohort passes every published check.

    This is how :data:`DEFAULT_SEED` was chosen: ``search_seed()`` returns it.  The search is
    sequential and deterministic; each seed costs one simulation and 14 Cox fits (about 1 s).

    Returns
    -------
    SeedSearch
        ``seed``, ``tried`` (number of seeds simulated) and the passing ``checks`` table.

    Raises
    ------
    RuntimeError
        when no seed in ``[start, start + max_tries)`` passes.
    """
    spec = _default_spec() if spec is None else spec
    for i in range(max_tries):
        checks = check_published_figures(simulate_study(n=PUBLISHED.n, seed=start + i), spec=spec)
        if checks["ok"].all():
            return SeedSearch(seed=start + i, tried=i + 1, checks=checks)
    raise RuntimeError(f"no seed in [{start}, {start + max_tries}) reproduces the published figures")
