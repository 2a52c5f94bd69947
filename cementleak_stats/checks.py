"""Study-level checks: events per parameter, the Riley et al. minimum sample size, and a
logistic-regression sensitivity analysis of the event detected by the horizon.

These are the honest limits a prediction study should state (TRIPOD+AI items 10 and 21): with
27 events and 5 predictors there are 5.4 events per parameter, and fewer per *candidate*
parameter when the predictors were screened.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from .design import encode, variable_terms
from .spec import StudySpec

CHECK_COLUMNS = ["check", "value", "threshold", "ok", "note"]
LOGISTIC_COLUMNS = ["term", "variable", "level", "coef", "se", "odds_ratio", "ci_low", "ci_high", "z", "p_value"]

#: pmsampsize's arbitrary reference size for the null log-likelihood of criterion (ii).
_PMSAMPSIZE_N = 10_000


@dataclass(frozen=True)
class RileySampleSize:
    """Minimum sample size for a survival prediction model (Riley et al.), as R ``pmsampsize``."""

    n_criterion_1: int
    n_criterion_2: int
    n_criterion_3: int
    n_final: int
    shrinkage_1: float
    shrinkage_2: float
    shrinkage_final: float
    r2_cs: float
    max_r2_cs: float
    r2_nagelkerke: float
    #: events per parameter at each criterion's n (rounded to 2 decimals, as pmsampsize)
    epp: tuple[float, float, float, float]
    #: 95% CI of the overall risk at the timepoint for n = max(n1, n2), and the risk itself
    risk: float
    risk_ci: tuple[float, float]


def _risk_ci(rate: float, person_time: float, timepoint: float) -> tuple[float, float, float]:
    """Exponential-model risk at ``timepoint`` and its 95% CI (pmsampsize criterion iii)."""
    half = 1.96 * math.sqrt(rate / person_time)
    risk = 1 - math.exp(-rate * timepoint)
    return risk, 1 - math.exp(-(rate - half) * timepoint), 1 - math.exp(-(rate + half) * timepoint)


def riley_sample_size(
    *,
    r2_cs: float,
    n_parameters: int,
    rate: float,
    timepoint: float,
    meanfup: float,
    shrinkage: float = 0.9,
    delta: float = 0.05,
) -> RileySampleSize:
    """Riley et al. minimum sample size for developing a time-to-event prediction model.

    Parameters
    ----------
    r2_cs
        Anticipated (optimism-adjusted) Cox-Snell R-squared of the model.
    n_parameters
        Number of candidate predictor parameters.
    rate
        Overall event rate (events per unit of follow-up time).
    timepoint
        Time of interest for prediction (same units).
    meanfup
        Mean follow-up time (same units).
    shrinkage
        Target expected uniform shrinkage (criterion i), default 0.9.
    delta
        Acceptable optimism in Nagelkerke's R-squared (criterion ii), default 0.05.

    Returns
    -------
    RileySampleSize

    Notes
    -----
    Criterion (i): n1 = ceil(p / ((S - 1) ln(1 - R2_CS / S))).
    Criterion (ii): max R2_CS = 1 - exp(2 lnL_0 / n) with the exponential null log-likelihood
    lnL_0 = E ln(E/n) - E, time in units of the mean follow-up (pmsampsize uses n = 10000 and
    E = ceil(rate x meanfup x n)); S2 = R2_CS / (R2_CS + delta max R2_CS) and n2 as in (i)
    with S2.  Criterion (iii) does not raise n: it reports the 95% CI of the overall risk
    1 - exp(-rate t) for n3 = max(n1, n2), from rate +- 1.96 sqrt(rate / (meanfup n3)).
    Reproduces R ``pmsampsize`` 1.1.3 ``pmsampsize_surv`` (including its rounding of the
    person-time to one decimal); checked against its test suite in the tests.

    References
    ----------
    Riley RD, Snell KIE, Ensor J, et al. Minimum sample size for developing a multivariable
    prediction model: Part II - binary and time-to-event outcomes. Stat Med 2019;38:1276-1296.
    Riley RD, Ensor J, Snell KIE, et al. Calculating the sample size required for developing
    a clinical prediction model. BMJ 2020;368:m441.
    """
    if not 0 < r2_cs < shrinkage:
        raise ValueError(f"r2_cs must lie in (0, shrinkage={shrinkage}); got {r2_cs}")
    if n_parameters < 1 or rate <= 0 or meanfup <= 0 or timepoint <= 0:
        raise ValueError("n_parameters, rate, meanfup and timepoint must be positive")

    def n_for(s: float) -> int:
        return math.ceil(n_parameters / ((s - 1) * math.log(1 - r2_cs / s)))

    n1 = n_for(shrinkage)
    events = math.ceil(rate * meanfup * _PMSAMPSIZE_N)
    ln_l0 = events * math.log(events / _PMSAMPSIZE_N) - events
    max_r2 = 1 - math.exp(2 * ln_l0 / _PMSAMPSIZE_N)
    if r2_cs > max_r2:
        raise ValueError(f"r2_cs = {r2_cs} exceeds the maximum possible Cox-Snell R-squared {max_r2:.4f}")
    s2 = r2_cs / (r2_cs + delta * max_r2)
    n2 = n_for(s2)
    n3 = max(n1, n2)
    risk, lo, hi = _risk_ci(rate, round(meanfup * n3, 1), timepoint)
    nfinal = max(n1, n2, n3)

    def epp(n: int) -> float:
        return round(n * rate * meanfup / n_parameters, 2)

    return RileySampleSize(
        n_criterion_1=n1, n_criterion_2=n2, n_criterion_3=n3, n_final=nfinal,
        shrinkage_1=shrinkage, shrinkage_2=s2, shrinkage_final=max(shrinkage, s2),
        r2_cs=r2_cs, max_r2_cs=max_r2, r2_nagelkerke=r2_cs / max_r2,
        epp=(epp(n1), epp(n2), epp(n3), epp(nfinal)), risk=risk, risk_ci=(lo, hi),
    )


def r2_cs_from_lr(lr_statistic: float, n: int, *, n_parameters: int | None = None) -> float:
    """Cox-Snell R-squared from a model's likelihood-ratio chi-square.

    R2_CS,app = 1 - exp(-LR / n).  With ``n_parameters`` the value is shrunk by the
    van Houwelingen heuristic factor S_VH = 1 - p / LR (= 1 + p / (n ln(1 - R2_CS,app))),
    R2_CS,adj = S_VH x R2_CS,app, the optimism-adjusted value Riley et al. recommend feeding into
    the sample-size formulas; a model with LR <= p gives 0.

    References
    ----------
    Riley RD et al. Stat Med 2019;38:1276-1296 (section 4).  van Houwelingen JC, le Cessie S.
    Predictive value of statistical models. Stat Med 1990;9:1303-1325.
    """
    if lr_statistic < 0 or n < 1:
        raise ValueError("lr_statistic must be >= 0 and n >= 1")
    apparent = 1 - math.exp(-lr_statistic / n)
    if n_parameters is None:
        return apparent
    if lr_statistic <= n_parameters:
        return 0.0
    return (1 - n_parameters / lr_statistic) * apparent


def r2_cs_from_c_statistic(c_statistic: float, *, n: int, events: int) -> float:
    """Approximate Cox-Snell R-squared of a survival model from its C-statistic.

    Notes
    -----
    C -> Royston's D (Jinks et al. 2015): D = 5.50 (C - 0.5) + 10.26 (C - 0.5)^3;
    D -> R2_D = (pi/8) D^2 / (pi^2/6 + (pi/8) D^2) (Royston & Sauerbrei 2004);
    R2_D -> O'Quigley's R2_OQ = (-(pi^2/6) R2_D) / ((1 - pi^2/6) R2_D - 1);
    LR = -E ln(1 - R2_OQ); R2_CS = 1 - exp(-LR / n).
    This is the route Riley et al. (2019, Part II) describe for time-to-event models; R
    ``pmsampsize``'s own ``cstatistic`` option is for binary outcomes only (a simulation with
    a logistic model), so it is not used here.

    References
    ----------
    Jinks RC, Royston P, Parmar MKB. Discrimination-based sample size calculations for
    multivariable prognostic models for time-to-event data. BMC Med Res Methodol 2015;15:82.
    Royston P, Sauerbrei W. A new measure of prognostic separation in survival data. Stat Med
    2004;23:723-748.
    """
    if not 0.5 <= c_statistic < 1:
        raise ValueError("c_statistic must lie in [0.5, 1)")
    if events < 1 or n < events:
        raise ValueError("need 1 <= events <= n")
    x = c_statistic - 0.5
    d = 5.50 * x + 10.26 * x**3
    k = math.pi**2 / 6
    r2_d = (math.pi / 8) * d**2 / (k + (math.pi / 8) * d**2)
    r2_oq = (-k * r2_d) / ((1 - k) * r2_d - 1)
    lr = -events * math.log(1 - r2_oq)
    return 1 - math.exp(-lr / n)


def candidate_parameters(spec: StudySpec) -> int:
    """Number of model terms (parameters) of all candidate predictors, as the design codes them."""
    return sum(len(variable_terms(v)) for v in spec.candidates)


def _anticipated_r2(
    n: int, events: int, n_parameters: int, *, r2_cs: float | None, lr_statistic: float | None,
    c_statistic: float | None,
) -> tuple[float | None, str]:
    """The anticipated Cox-Snell R-squared and where it came from (first source given wins)."""
    if r2_cs is not None:
        return r2_cs, "given"
    if lr_statistic is not None:
        return (r2_cs_from_lr(lr_statistic, n, n_parameters=n_parameters),
                f"from the LR χ² of {lr_statistic:.2f} on {n} patients, shrunk by van Houwelingen's factor 1 − p/LR")
    if c_statistic is not None and events:
        return (r2_cs_from_c_statistic(c_statistic, n=n, events=events),
                f"from the C-statistic {c_statistic:.3f} (Royston's D → O'Quigley's R² → LR)")
    return None, ""


def study_checks(
    spec: StudySpec,
    cohort: pd.DataFrame,
    *,
    n_parameters: int,
    c_statistic: float | None = None,
    lr_statistic: float | None = None,
    r2_cs: float | None = None,
    shrinkage: float = 0.9,
    delta: float = 0.05,
    margin: float = 0.05,
    epv_threshold: float = 10.0,
) -> pd.DataFrame:
    """Events per parameter and the Riley et al. sample-size criteria for this cohort.

    Parameters
    ----------
    spec, cohort
        Study specification and validated cohort (time and event columns named by the spec).
    n_parameters
        Parameters of the fitted model (e.g. 5).  The Riley criteria are computed for this
        number and, in a second set of rows, for all candidate parameters of the study file.
    c_statistic, lr_statistic, r2_cs
        Source of the anticipated Cox-Snell R-squared, first given wins: ``r2_cs`` as is;
        ``lr_statistic`` (the model's likelihood-ratio chi-square) via
        :func:`r2_cs_from_lr` shrunk by S_VH; ``c_statistic`` via
        :func:`r2_cs_from_c_statistic`.  Without any, the Riley rows are omitted.
    shrinkage, delta, margin
        Riley targets: expected shrinkage >= 0.9, optimism in Nagelkerke's R-squared <= 0.05,
        margin of error of the overall risk at the horizon <= 0.05.
    epv_threshold
        Events-per-parameter warning level.

    Returns
    -------
    pandas.DataFrame
        Columns ``check``, ``value``, ``threshold``, ``ok`` (bool), ``note``.  Sample-size rows
        hold the study's n as ``value`` and the required n as ``threshold``.

    Notes
    -----
    Events are all events within follow-up.  The event rate is events / total follow-up time,
    the mean follow-up is total time / n and the timepoint is the horizon, as pmsampsize expects.
    Criterion (iii) is evaluated at the study's own n: the half-width of the 95% CI of the
    exponential-model risk at the horizon must not exceed ``margin``.
    """
    t = pd.to_numeric(cohort[spec.outcome.time]).to_numpy(dtype=float)
    e = pd.to_numeric(cohort[spec.outcome.event]).to_numpy()
    n, events = len(cohort), int(np.sum(e == 1))
    n_cand = candidate_parameters(spec)
    rows: list[dict[str, object]] = []

    def add(check: str, value: float, threshold: float, ok: bool, note: str) -> None:
        rows.append({"check": check, "value": value, "threshold": threshold, "ok": bool(ok), "note": note})

    for label, p in (("model", n_parameters), ("candidate", n_cand)):
        epv = events / p if p else math.nan
        add(f"events per {label} parameter", epv, epv_threshold, epv >= epv_threshold,
            f"{events} events / {p} {label} parameters" + ("" if epv >= epv_threshold else
                                                          f"; below {epv_threshold:g}: high risk of overfitting"))

    r2, source = _anticipated_r2(n, events, n_parameters, r2_cs=r2_cs, lr_statistic=lr_statistic,
                                 c_statistic=c_statistic)
    if r2 is None or events == 0:
        return pd.DataFrame(rows, columns=CHECK_COLUMNS)
    person_time = float(t.sum())
    rate, meanfup, horizon = events / person_time, person_time / n, spec.outcome.horizon
    _, _, hi = _risk_ci(rate, person_time, horizon)
    risk = 1 - math.exp(-rate * horizon)
    half = hi - risk
    unit = spec.outcome.time_unit.removesuffix("s")
    for label, p in (("model", n_parameters), ("candidate", n_cand)):
        if not 0 < r2 < shrinkage:
            add(f"Riley minimum n ({label} parameters)", n, math.nan, False,
                f"anticipated Cox-Snell R² = {r2:.4f} ({source}) is outside (0, {shrinkage}); criteria not computable")
            continue
        try:
            res = riley_sample_size(r2_cs=r2, n_parameters=p, rate=rate, timepoint=horizon, meanfup=meanfup,
                                    shrinkage=shrinkage, delta=delta)
        except ValueError as exc:
            add(f"Riley minimum n ({label} parameters)", n, math.nan, False, f"not computable: {exc}")
            continue
        common = f"{p} {label} parameters, Cox-Snell R² = {r2:.4f} ({source})"
        add(f"Riley (i) shrinkage ≥ {shrinkage:g}: minimum n, {label} parameters", n, res.n_criterion_1,
            n >= res.n_criterion_1, common)
        add(f"Riley (ii) optimism in Nagelkerke R² ≤ {delta:g}: minimum n, {label} parameters", n,
            res.n_criterion_2, n >= res.n_criterion_2,
            f"{common}; max R² = {res.max_r2_cs:.4f}, Nagelkerke R² = {res.r2_nagelkerke:.4f}")
    add(f"Riley (iii) margin of error of the risk at {horizon:g} {spec.outcome.time_unit}", half, margin,
        half <= margin, f"risk {risk:.3f} (exponential model, {rate:.4f} events per person-{unit}); "
        f"upper 95% limit {hi:.3f} for n = {n}")
    return pd.DataFrame(rows, columns=CHECK_COLUMNS)


# --- logistic sensitivity analysis --------------------------------------------------------

@dataclass(frozen=True)
class LogisticResult:
    """Logistic regression of the event detected by the horizon (a sensitivity analysis)."""

    #: term, variable, level, coef, se, odds_ratio, ci_low, ci_high, z, p_value
    table: pd.DataFrame
    n: int
    n_events: int
    #: censored before the horizon (status at the horizon unknown)
    n_excluded_censored: int
    #: with a missing predictor value
    n_excluded_missing: int
    converged: bool
    notes: tuple[str, ...]


def logistic_sensitivity(
    spec: StudySpec,
    cohort: pd.DataFrame,
    *,
    predictors: Sequence[str],
) -> LogisticResult:
    """Logistic regression of "event by the horizon" on the model's predictors.

    Parameters
    ----------
    spec, cohort
        Study specification and validated cohort.
    predictors
        Variable names (coded by :func:`cementleak_stats.design.encode`, as the Cox model).

    Returns
    -------
    LogisticResult
        ``table`` has one row per term plus ``(Intercept)``: ``coef`` (log odds), ``se``,
        ``odds_ratio`` = exp(coef), Wald CI ``ci_low``/``ci_high`` at level
        1 - ``spec.analysis.alpha``, ``z`` and two-sided Wald ``p_value`` — as R
        ``summary(glm(family = binomial))`` with ``confint.default``.

    Notes
    -----
    Outcome y = 1 if the event occurred at or before the horizon.  Patients censored before
    the horizon have an unknown outcome and are excluded (counted); patients with a missing
    predictor are excluded (counted).  When the event is found at one moment (e.g. during an
    intervention), its timing carries little information and a binary model is a natural
    alternative to the Cox model: similar odds ratios and hazard ratios support the
    Cox results.  Fitted by Newton-Raphson (:class:`statsmodels.discrete.discrete_model.Logit`);
    separation or non-convergence is reported in ``notes`` rather than hidden.
    """
    from statsmodels.discrete.discrete_model import Logit  # here, and not statsmodels.api: ~0.45 s less import
    predictors = list(predictors)
    t = pd.to_numeric(cohort[spec.outcome.time]).to_numpy(dtype=float)
    e = pd.to_numeric(cohort[spec.outcome.event]).to_numpy()
    horizon = spec.outcome.horizon
    censored_early = (e == 0) & (t < horizon)
    design = encode(spec, cohort, predictors)
    missing = design.X.isna().any(axis=1).to_numpy()
    keep = ~censored_early & ~missing
    y = ((e == 1) & (t <= horizon)).astype(float)[keep]
    X = pd.concat([pd.DataFrame({"(Intercept)": 1.0}, index=design.X.index[keep]), design.X[keep]], axis=1)
    notes: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit = Logit(y, X).fit(disp=0, maxiter=100)
    messages = dict.fromkeys(str(w.message) for w in caught)
    notes.extend(f"statsmodels: {m}" for m in messages if "separation" in m.lower() or "converge" in m.lower())
    converged = bool(fit.mle_retvals.get("converged", False))
    if not converged:
        notes.append("the logistic model did not converge; estimates are unreliable")
    z_crit = stats.norm.ppf(1 - spec.analysis.alpha / 2)
    coef, se = fit.params.to_numpy(), fit.bse.to_numpy()
    with np.errstate(over="ignore"):  # a separated term honestly gets an infinite upper limit
        odds, ci_low, ci_high = np.exp(coef), np.exp(coef - z_crit * se), np.exp(coef + z_crit * se)
    names = fit.params.index
    term_of = {tm.name: tm for tm in design.terms}
    table = pd.DataFrame({
        "term": names,
        "variable": [term_of[c].variable if c in term_of else None for c in names],
        "level": [term_of[c].level if c in term_of else None for c in names],
        "coef": coef, "se": se, "odds_ratio": odds, "ci_low": ci_low, "ci_high": ci_high,
        "z": fit.tvalues.to_numpy(), "p_value": fit.pvalues.to_numpy(),
    }, columns=LOGISTIC_COLUMNS)
    n_events = int(y.sum())
    notes.insert(0, f"Outcome: {spec.outcome.event_label.lower()} by {horizon:g} {spec.outcome.time_unit}; "
                    f"{int(keep.sum())} patients, {n_events} events; Wald confidence intervals.")
    return LogisticResult(table=table, n=int(keep.sum()), n_events=n_events,
                          n_excluded_censored=int(censored_early.sum()), n_excluded_missing=int((missing & ~censored_early).sum()),
                          converged=converged, notes=tuple(notes))
