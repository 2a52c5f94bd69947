"""Multiple imputation of missing predictor values (MICE) and Rubin's rules for the Cox model.

Selected in the study file with ``analysis.missing_data: multiple_imputation`` (and
``analysis.imputations``, m).  The imputations come from statsmodels' chained equations
(:class:`statsmodels.imputation.mice.MICEData`, predictive mean matching); the multivariable
Cox model (lifelines, Efron ties, as :func:`~cementleak_stats.models.cox.fit_cox_model`) is
fitted on each completed data set and the coefficients are pooled with Rubin's rules, with the
Barnard-Rubin degrees of freedom, as R ``mice::pool`` does.

Why not statsmodels' own ``MICE``: it fits statsmodels models (``PHReg``), not the package's
Cox model, and its ``combine`` gives the pooled covariance without degrees of freedom, CIs or
P values.  The pooling itself is a few lines (:func:`pool_rubin`) and is checked against
``mice::pool`` in the tests.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from .errors import AnalysisError
from .models.cox import CoxModel, fit_cox_model
from .spec import StudySpec

#: MICE cycles before the first imputation and between two imputations (statsmodels ``MICE``
#: defaults: ``fit(n_burnin=10)``, ``n_skip=3``, i.e. ``update_all(n_skip + 1)`` per imputation).
BURN_IN = 10
SKIP = 3

POOLED_COLUMNS = [
    "term", "variable", "level", "coef", "se", "hr", "ci_low", "ci_high", "statistic", "df", "p_value",
    "within_variance", "between_variance", "total_variance", "riv", "lambda", "fmi", "m", "dfcom",
]

#: column name of the Nelson-Aalen cumulative hazard added to the imputation model
_CUMHAZ = "nelson_aalen_cumhaz_"


@dataclass(frozen=True)
class ImputedCoxModel:
    """The multivariable Cox model pooled over m imputed data sets.

    Attributes
    ----------
    pooled : one row per term, columns :data:`POOLED_COLUMNS` (see :func:`pool_rubin`).
    estimates : per imputation and term: ``imputation`` (1..m), ``term``, ``coef``, ``variance``.
    missing : per imputed variable: ``variable``, ``label``, ``n_missing`` (cells imputed).
    n : patients in every imputed data set.
    n_events : events among them.
    m : number of imputations.
    penalizer : the ridge penalizer of every fit (0 = ordinary Cox).
    """

    pooled: pd.DataFrame
    estimates: pd.DataFrame
    missing: pd.DataFrame
    n: int
    n_events: int
    m: int
    penalizer: float = 0.0


def pool_rubin(
    estimates: np.ndarray,
    variances: np.ndarray,
    *,
    dfcom: float = np.inf,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Pool m estimates of k parameters with Rubin's rules (R ``mice::pool.scalar`` per column).

    Parameters
    ----------
    estimates : (m, k) point estimates Q_i, one row per imputed data set.
    variances : (m, k) their squared standard errors U_i.
    dfcom : complete-data degrees of freedom (``mice`` uses events - parameters for a Cox
        model; ``inf`` gives Rubin's 1987 large-sample df).
    alpha : 1 - confidence level.

    Returns
    -------
    pandas.DataFrame
        One row per parameter: ``coef`` (pooled estimate), ``se`` (sqrt of the total
        variance), ``ci_low``, ``ci_high`` (t-based), ``statistic`` (coef / se), ``df``,
        ``p_value`` (two-sided, t with ``df``), ``within_variance``, ``between_variance``,
        ``total_variance``, ``riv``, ``lambda``, ``fmi``, ``m``, ``dfcom``.

    Notes
    -----
    With Qbar = mean(Q_i), W = mean(U_i), B = var(Q_i) (denominator m - 1):

    * total variance T = W + (1 + 1/m) B;
    * relative increase in variance riv = (1 + 1/m) B / W; lambda = (1 + 1/m) B / T;
    * Barnard-Rubin df, with lambda floored at 1e-4 (as ``mice``): nu_old = (m - 1) / lambda^2,
      nu_obs = (dfcom + 1) / (dfcom + 3) dfcom (1 - lambda), df = nu_old nu_obs / (nu_old + nu_obs)
      (nu_old when dfcom = inf);
    * fraction of missing information fmi = (riv + 2 / (df + 3)) / (1 + riv);
    * CI Qbar +- t_{df, 1 - alpha/2} sqrt(T); P = 2 P(t_df > |Qbar| / sqrt(T)).

    References
    ----------
    Rubin DB. Multiple Imputation for Nonresponse in Surveys. Wiley 1987.
    Barnard J, Rubin DB. Small-sample degrees of freedom with multiple imputation.
    Biometrika 1999;86:948-955.
    van Buuren S. Flexible Imputation of Missing Data, 2nd ed. CRC 2018, sec. 2.3-2.4.
    """
    q = np.atleast_2d(np.asarray(estimates, dtype=float))
    u = np.atleast_2d(np.asarray(variances, dtype=float))
    if q.shape != u.shape:
        raise ValueError("estimates and variances must have the same shape (m, k)")
    m = q.shape[0]
    if m < 2:
        raise ValueError("Rubin's rules need at least two imputations")
    qbar, w, b = q.mean(axis=0), u.mean(axis=0), q.var(axis=0, ddof=1)
    f = 1.0 + 1.0 / m
    t = w + f * b
    riv = f * b / w
    lam = f * b / t
    floored = np.maximum(lam, 1e-4)  # mice's barnard.rubin: no infinite df when B = 0
    df_old = (m - 1) / floored**2
    if np.isinf(dfcom):
        df = df_old
    else:
        df_obs = (dfcom + 1) / (dfcom + 3) * dfcom * (1 - floored)
        df = df_old * df_obs / (df_old + df_obs)
    fmi = (riv + 2 / (df + 3)) / (1 + riv)
    se = np.sqrt(t)
    crit = stats.t.ppf(1 - alpha / 2, df)
    stat = qbar / se
    return pd.DataFrame({
        "coef": qbar, "se": se, "ci_low": qbar - crit * se, "ci_high": qbar + crit * se, "statistic": stat,
        "df": df, "p_value": 2 * stats.t.sf(np.abs(stat), df), "within_variance": w, "between_variance": b,
        "total_variance": t, "riv": riv, "lambda": lam, "fmi": fmi, "m": m, "dfcom": dfcom,
    })


def _codes(spec: StudySpec, cohort: pd.DataFrame, variables: Sequence[str]) -> pd.DataFrame:
    """Numeric columns for the imputation model: continuous as is, categorical as level index."""
    out = {}
    for name in variables:
        var = spec.variable(name)
        col = cohort[name]
        if var.kind == "continuous":
            out[name] = pd.to_numeric(col, errors="raise").astype(float)
        else:
            pos = {lv: float(i) for i, lv in enumerate(var.levels)}
            out[name] = col.astype("string").map(pos).astype(float)
    return pd.DataFrame(out, index=cohort.index)


def _nelson_aalen(time: np.ndarray, event: np.ndarray) -> np.ndarray:
    """Nelson-Aalen cumulative hazard at each patient's own time (ties: all events at t count)."""
    from lifelines import NelsonAalenFitter

    naf = NelsonAalenFitter(nelson_aalen_smoothing=False).fit(time, event)
    return naf.cumulative_hazard_at_times(time).to_numpy(float)


def impute_cohort(
    spec: StudySpec,
    cohort: pd.DataFrame,
    variables: Sequence[str],
    *,
    m: int,
    rng: np.random.Generator,
) -> tuple[pd.DataFrame, ...]:
    """m completed copies of ``cohort`` with the missing values of ``variables`` imputed.

    Parameters
    ----------
    spec : the study file (variable kinds and levels).
    cohort : validated cohort, missing values as NaN / missing categories.
    variables : the variables to impute (and to impute from), e.g. the model's predictors.
    m : number of imputed data sets.
    rng : random generator (passed to statsmodels ``MICEData``; no global state is used).

    Returns
    -------
    tuple of pandas.DataFrame
        Copies of ``cohort`` with ``variables`` completed (categorical columns keep the
        study-file levels); every other column unchanged.

    Notes
    -----
    Chained equations with predictive mean matching (statsmodels ``MICEData``: for each
    incomplete variable a linear model on all the others with parameters drawn from their
    posterior approximation, then a donor drawn among the 20 observed values with the nearest
    prediction).  PMM only ever imputes observed values, so binary and ordinal variables
    (coded 0, 1, 2, ... by level) get valid levels; a nominal variable with more than two
    levels is imputed on its level index too, which treats it as ordered (a limitation; R
    ``mice`` would use polytomous regression).  The outcome enters the imputation model as
    the event indicator and the Nelson-Aalen cumulative hazard at the patient's time (White
    and Royston 2009).  ``BURN_IN`` cycles precede the first data set and ``SKIP + 1`` cycles
    separate two data sets (statsmodels ``MICE`` defaults).

    References
    ----------
    White IR, Royston P. Imputing missing covariate values for the Cox model. Stat Med
    2009;28:1982-1998.
    van Buuren S, Groothuis-Oudshoorn K. mice: Multivariate Imputation by Chained Equations
    in R. J Stat Softw 2011;45(3).
    """
    from statsmodels.imputation.mice import MICEData

    if m < 1:
        raise ValueError("m must be at least 1")
    time = cohort[spec.outcome.time].to_numpy(float)
    event = cohort[spec.outcome.event].to_numpy(float)
    frame = _codes(spec, cohort, variables)
    incomplete = [v for v in variables if frame[v].isna().any()]
    if not incomplete:
        return tuple(cohort.copy() for _ in range(m))
    empty = [v for v in incomplete if frame[v].notna().sum() < 2]
    if empty:
        raise AnalysisError(f"cannot impute {empty}: fewer than two observed values")
    frame[spec.outcome.event] = event
    frame[_CUMHAZ] = _nelson_aalen(time, event)
    frame = frame.reset_index(drop=True)
    mice = MICEData(frame, rng=rng)
    out = []
    mice.update_all(BURN_IN)
    for k in range(m):
        if k:
            mice.update_all(SKIP + 1)
        done = cohort.copy()
        for name in incomplete:
            var = spec.variable(name)
            vals = mice.data[name].to_numpy(float)
            if var.kind == "continuous":
                done[name] = vals
            else:
                levels = np.asarray(var.levels, dtype=object)
                done[name] = pd.Categorical(levels[vals.round().astype(int)], categories=list(var.levels),
                                            ordered=var.kind == "ordinal")
        out.append(done)
    return tuple(out)


def pool_cox(
    spec: StudySpec,
    completed: Sequence[pd.DataFrame],
    variables: Sequence[str],
    *,
    penalizer: float = 0.0,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Fit the Cox model on each completed data set and pool it with Rubin's rules.

    Returns ``(pooled, estimates)``: the :func:`pool_rubin` table with ``term``, ``variable``,
    ``level`` first and ``hr`` = exp(coef), CI on the HR scale (columns
    :data:`POOLED_COLUMNS`), and the per-imputation ``imputation``, ``term``, ``coef``,
    ``variance``.

    Notes
    -----
    Complete-data degrees of freedom dfcom = events - parameters, as ``mice`` uses for a
    ``coxph`` fit (``mice:::get.dfcom``).  A fit that fails on any imputed data set raises
    :class:`AnalysisError` naming the imputation.
    """
    fits: list[CoxModel] = []
    for k, frame in enumerate(completed, start=1):
        try:
            fits.append(fit_cox_model(spec, frame, variables, penalizer=penalizer))
        except AnalysisError as exc:
            raise AnalysisError(f"multiple imputation, imputed data set {k} of {len(completed)}: {exc}") from None
    first = fits[0]
    names = [t.name for t in first.terms]
    q = np.vstack([f.coef[names].to_numpy(float) for f in fits])
    u = np.vstack([f.summary.set_index("term").loc[names, "se"].to_numpy(float) ** 2 for f in fits])
    dfcom = max(first.n_events - len(names), 1)
    pooled = pool_rubin(q, u, dfcom=dfcom, alpha=spec.analysis.alpha)
    pooled.insert(0, "term", names)
    pooled.insert(1, "variable", [t.variable for t in first.terms])
    pooled.insert(2, "level", [t.level for t in first.terms])
    pooled.insert(5, "hr", np.exp(pooled["coef"]))
    pooled["ci_low"], pooled["ci_high"] = np.exp(pooled["ci_low"]), np.exp(pooled["ci_high"])
    estimates = pd.DataFrame({
        "imputation": np.repeat(np.arange(1, len(fits) + 1), len(names)),
        "term": names * len(fits),
        "coef": q.ravel(),
        "variance": u.ravel(),
    })
    return pooled[POOLED_COLUMNS], estimates


def fit_imputed_cox(
    spec: StudySpec,
    cohort: pd.DataFrame,
    variables: Sequence[str],
    *,
    m: int,
    rng: np.random.Generator,
    penalizer: float = 0.0,
) -> ImputedCoxModel:
    """Impute (:func:`impute_cohort`), fit and pool (:func:`pool_cox`) the Cox model on ``variables``.

    ``cohort`` holds every analysed patient, including those with missing predictor values.
    """
    completed = impute_cohort(spec, cohort, variables, m=m, rng=rng)
    pooled, estimates = pool_cox(spec, completed, variables, penalizer=penalizer)
    missing = pd.DataFrame({
        "variable": list(variables),
        "label": [spec.variable(v).label for v in variables],
        "n_missing": [int(cohort[v].isna().sum()) for v in variables],
    })
    return ImputedCoxModel(
        pooled=pooled, estimates=estimates, missing=missing, n=len(cohort),
        n_events=int(cohort[spec.outcome.event].sum()), m=m, penalizer=float(penalizer),
    )

