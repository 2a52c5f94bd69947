"""The reported Cox model (Efron ties) plus the Efron baseline.

The coefficients, standard errors, hazard ratios, Wald confidence intervals and P values of an
ordinary fit come from the package's batched Newton fitter (:mod:`.coxfit`, O(n) per step, the
one the bootstrap uses); a penalized fit, or one the fitter finds irregular (separation, a
singular information), from lifelines ``CoxPHFitter``, whose behaviour there the diagnostics
explain.  Both are checked against R ``coxph``.  The baseline survival used for risks at the horizon is the Efron-consistent
one of R ``survfit.coxph`` (lifelines' own baseline is Breslow-type; METHODS.md), computed by
:func:`cementleak_stats.models.coxfit.efron_baseline_cumhaz` for a patient at the covariate
means.  Every risk in the package is ``1 - S0(t) ** exp(lp)`` with ``lp`` centred at the means.

Centring: the package centres every design column at its mean, as ``rms::cph`` does.  R
``survival`` 3.x ``coxph`` does not centre columns whose values all lie in {-1, 0, 1} (its
``nocenter`` argument), so its ``fit$means``, ``predict(fit, type = "lp")`` and ``survfit(fit)``
refer to a patient with those columns at 0.  The two differ by the constant
``sum(b * (colMeans(X) - fit$means))`` in lp and ``S0_pkg = S0_R ** exp(shift)`` in the
baseline; every predicted risk is identical.  The tests check both against R this way.

Also here: the univariable screen, predictor selection as the study file says, global tests and
the forest-plot frame.  The detection of numerical trouble (separation, runaway coefficients,
near-collinearity, non-finite standard errors, constant or exactly collinear columns; a
ridge-penalized fit is the documented fallback) is :mod:`.diagnostics`; term labels and the units
of the hazard ratios are :mod:`.labels`; the screen's rule is :mod:`.screen`.  Why one module of
about 510 lines after those splits: what is left is one object's life (the fit, its
:class:`CoxModel`, the global tests, the screen run with the same fitter and the forest frame of
its summary), about half of it docstrings naming the R calls, and the pipeline and the tests
import these names from here.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from scipy import stats

from ..design import Design, Term, encode
from ..errors import AnalysisError
from ..spec import StudySpec
from .coxfit import efron_baseline_cumhaz, fit_cox_batch, step_at
# the checks and the labels are modules of their own; what callers import from here stays here
from .diagnostics import (Diagnostic, _check_inputs, _post_fit_diagnostics, _problem_message, monotone_likelihood_terms,
                          time_runs)
from .labels import _describe, hr_unit_notes, hr_units, term_label  # noqa: F401  (hr_unit_notes: study.py)
from .screen import screen_rule, screen_selects

#: lifelines stops when the log-likelihood changes by < 1e-9 relative (R's default too); that
#: leaves coefficients ~1e-5 from the optimum on some data.  We converge fully.  lifelines also
#: stops when the Newton decrement g'H^{-1}g/2 < precision, i.e. with a last step of about
#: sqrt(precision): precision=1e-12 left coefficients 2e-7 (relative) from R's on Rossi, so
#: precision is set below reach and the stop comes from the relative log-likelihood change
#: (1e-15, machine precision); coefficients then agree with R coxph(eps=1e-12) to ~1e-11.
LIFELINES_FIT_OPTIONS = {"precision": 1e-20, "r_precision": 1e-15, "max_steps": 200}

@dataclass(frozen=True)
class CoxModel:
    """A fitted Cox model with its design metadata (as an rms fit carries it).

    Attributes
    ----------
    variables : the study-file variables in the model, in order.
    terms : the design terms (one per coefficient), see :mod:`cementleak_stats.design`.
    summary : tidy table, one row per term: term, variable, level, coef, se, hr, ci_low,
        ci_high, z, p_value.
    means : column means of the design (the centre of ``lp``).
    baseline : time, cumhaz, survival at the distinct event times (Efron, at the means).
    vcov : covariance matrix of the coefficients (inverse information), terms x terms.
    diagnostics : numerical problems found (empty for a clean fit); see :class:`Diagnostic`.
    penalizer : lifelines ridge penalizer (0 = ordinary partial likelihood, as R ``coxph``).
    """

    variables: tuple[str, ...]
    terms: tuple[Term, ...]
    summary: pd.DataFrame
    means: pd.Series
    baseline: pd.DataFrame
    loglik: float
    loglik_null: float
    n: int
    n_events: int
    horizon: float
    alpha: float
    vcov: pd.DataFrame | None = None
    diagnostics: tuple[Diagnostic, ...] = ()
    penalizer: float = 0.0

    @property
    def coef(self) -> pd.Series:
        return self.summary.set_index("term")["coef"]

    @property
    def lr_chisq(self) -> float:
        return 2.0 * (self.loglik - self.loglik_null)

    @property
    def lr_df(self) -> int:
        return len(self.terms)

    @property
    def lr_p_value(self) -> float:
        return float(stats.chi2.sf(self.lr_chisq, self.lr_df))

    @property
    def ok(self) -> bool:
        """True when no diagnostic makes the fit unreportable."""
        return not any(d.fatal for d in self.diagnostics)

    def baseline_survival(self, t: float | None = None) -> float:
        """S0(t) for a patient at the means (default t = horizon)."""
        t = self.horizon if t is None else t
        return float(np.exp(-step_at(self.baseline["time"].to_numpy(), self.baseline["cumhaz"].to_numpy(), t)))

    def lp(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        """Linear predictor centred at the means (R ``predict(fit, type = "lp")`` up to the
        centring constant described in the module docstring)."""
        Xa = X[[t.name for t in self.terms]].to_numpy(float) if isinstance(X, pd.DataFrame) else np.asarray(X, float)
        return (Xa - self.means.to_numpy()) @ self.coef.to_numpy()

    def risk(self, X: pd.DataFrame | np.ndarray, t: float | None = None) -> np.ndarray:
        """Probability of the event by t (default the horizon): 1 - S0(t)^exp(lp)."""
        return 1.0 - self.baseline_survival(t) ** np.exp(self.lp(X))


def _summary_frame(terms: Sequence[Term], coef: np.ndarray, se: np.ndarray, alpha: float,
                   per: np.ndarray | None = None) -> pd.DataFrame:
    zcrit = stats.norm.ppf(1 - alpha / 2)
    per = np.ones(len(coef)) if per is None else np.asarray(per, float)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):  # separation: inf is the honest limit
        z = coef / se
        hr, ci = np.exp(coef * per), (np.exp((coef - zcrit * se) * per), np.exp((coef + zcrit * se) * per))
    return pd.DataFrame(
        {
            "term": [t.name for t in terms],
            "variable": [t.variable for t in terms],
            "level": [t.level for t in terms],
            "coef": coef,
            "se": se,
            "per": per,
            "hr": hr,
            "ci_low": ci[0],
            "ci_high": ci[1],
            "z": z,
            "p_value": 2 * stats.norm.sf(np.abs(z)),
        }
    )


# --- the fit ------------------------------------------------------------------------------
def fit_cox_model(
    spec: StudySpec,
    cohort: pd.DataFrame,
    variables: Sequence[str],
    *,
    penalizer: float = 0.0,
    on_problem: Literal["raise", "record"] = "raise",
) -> CoxModel:
    """Fit the Cox model on ``variables`` (Efron ties), fully converged.

    An ordinary fit uses :func:`.coxfit.fit_cox_batch` (Newton to a step below 1e-7, so the
    estimate is exact to about 1e-14); a penalized fit, or one that is not regular there (no
    convergence, singular information, a runaway coefficient), lifelines ``CoxPHFitter``.

    Parameters
    ----------
    spec : the study file (columns, coding, outcome, alpha).
    cohort : validated cohort (complete cases; categorical columns with the study levels).
    variables : study-file variable names, in model order.
    penalizer : lifelines ridge penalizer, the documented fallback when the ordinary fit
        separates; 0 (default) is the ordinary partial likelihood of R ``coxph``.  lifelines
        standardizes the columns, so the penalty is ``n * penalizer / 2 * sum((b_j sd_j)^2)``:
        R ``coxph(Surv(t, e) ~ ridge(X, theta = n * penalizer, scale = TRUE))`` (tested).  The
        penalized SEs are R's ``fit$var``; P values of a penalized fit are not ordinary tests.
    on_problem : ``"raise"`` (default) raises :class:`AnalysisError` when a diagnostic is
        fatal (separation, runaway coefficient, near-collinearity, non-finite SE,
        non-convergence); ``"record"``
        returns the model with ``diagnostics`` filled in (used by the univariable screen).

    Returns
    -------
    CoxModel

    Raises
    ------
    AnalysisError
        missing values, no events, a constant column or perfectly collinear columns (always;
        the message names the variables), lifelines failing to invert the information matrix,
        or a fatal diagnostic with ``on_problem="raise"``.

    Notes
    -----
    Wald CI: exp(b +- z_{1-alpha/2} se), P = 2(1 - Phi(|b/se|)), as R ``summary(coxph)``.
    Separation is checked exactly per column (:func:`monotone_likelihood_terms`); a
    coefficient is "running away" when |b| * range(x) > ``RUNAWAY_LOG_HR``; a term is nearly
    collinear when its variance inflation factor exceeds ``MAX_VIF``.  lifelines
    reports separation as "high collinearity" (ConvergenceError) or only warns; both are
    translated into these diagnostics.

    References
    ----------
    Therneau TM, Grambsch PM. Modeling Survival Data. Springer 2000.
    Heinze G, Schemper M. Biometrics 2001;57:114-119 (monotone likelihood).
    """
    time = cohort[spec.outcome.time].to_numpy(float)
    event = cohort[spec.outcome.event].to_numpy(float)
    est = _estimate(spec, cohort, variables, time, event, penalizer)
    if on_problem == "raise" and not est.ok:
        raise AnalysisError(_problem_message(variables, est.diagnostics))
    design, coef = est.design, est.coef
    means = design.X.mean(axis=0)
    lp = (design.X.to_numpy(float) - means.to_numpy()) @ coef
    bt, bh = efron_baseline_cumhaz(time, event, lp)
    baseline = pd.DataFrame({"time": bt, "cumhaz": bh, "survival": np.exp(-bh)})
    vcov = pd.DataFrame(est.vcov, index=design.term_names, columns=design.term_names)
    return CoxModel(
        variables=tuple(variables),
        terms=design.terms,
        summary=est.summary(spec),
        means=means,
        baseline=baseline,
        loglik=est.loglik,
        loglik_null=est.loglik_null,
        n=len(cohort),
        n_events=int(event.sum()),
        horizon=spec.outcome.horizon,
        alpha=spec.analysis.alpha,
        vcov=vcov,
        diagnostics=est.diagnostics,
        penalizer=float(penalizer),
    )


@dataclass(frozen=True)
class _Estimates:
    """A fit's estimates and diagnostics, without the baseline hazard: all the univariable
    screen reports of a fit, and the first half of :func:`fit_cox_model`."""

    design: Design
    coef: np.ndarray
    se: np.ndarray
    vcov: np.ndarray
    loglik: float
    loglik_null: float
    diagnostics: tuple[Diagnostic, ...]

    @property
    def ok(self) -> bool:
        """True when no diagnostic makes the fit unreportable (as :attr:`CoxModel.ok`)."""
        return not any(d.fatal for d in self.diagnostics)

    def summary(self, spec: StudySpec) -> pd.DataFrame:
        """The tidy table of :attr:`CoxModel.summary`."""
        terms, alpha = self.design.terms, spec.analysis.alpha
        return _summary_frame(terms, self.coef, self.se, alpha,
                              per=hr_units(spec, terms, self.coef, self.se, self.design.X, alpha))


def _estimate(spec: StudySpec, cohort: pd.DataFrame, variables: Sequence[str], time: np.ndarray, event: np.ndarray,
              penalizer: float, runs: tuple[np.ndarray, np.ndarray] | None = None) -> _Estimates:
    """Encode, check, fit (the batched fitter, else lifelines) and diagnose, as :func:`fit_cox_model`
    says.  ``runs``: :func:`.diagnostics.time_runs` of ``time`` when the caller fits several
    designs on the same rows (then ``time`` and ``event`` read-only, so that the fitter also sorts
    them once: :func:`.efron._prepare`)."""
    design: Design = encode(spec, cohort, variables)
    _check_inputs(spec, design, time, event)
    own = _fit_regular(design.X.to_numpy(float), time, event) if penalizer == 0 else None
    if own is not None:
        coef, vcov, loglik, loglik_null = own
        se = np.sqrt(np.diag(vcov))
        caught: list[warnings.WarningMessage] = []
    else:
        coef, se, vcov, loglik, loglik_null, caught = _fit_lifelines(spec, design, time, event, variables, penalizer)
    diags = _post_fit_diagnostics(spec, design, time, event, coef, se, caught, penalizer > 0, runs)
    return _Estimates(design, coef, se, vcov, loglik, loglik_null, tuple(diags))


def _fit_regular(X: np.ndarray, time: np.ndarray, event: np.ndarray) -> tuple[np.ndarray, np.ndarray, float, float] | None:
    """The ordinary (unpenalized) Efron fit by the package's batched Newton fitter, when it is regular.

    Returns (coef, covariance, loglik, loglik_null), or None when the fit is not regular
    (no convergence, a singular information, a coefficient running away): then lifelines fits
    it, and its diagnostics explain the trouble.  Why not lifelines every time: lifelines needs
    10 s for a one-variable fit at n = 100,000 (its Efron loop), this fitter O(n) per step;
    both converge to the same estimate (tests: 1e-11 against R ``coxph``)."""
    fit = fit_cox_batch(X, time, event)
    if not fit.converged[0]:
        return None
    info = fit.info[0]
    try:
        vcov = np.linalg.inv(info)
    except np.linalg.LinAlgError:
        return None
    if not np.all(np.isfinite(vcov)) or np.any(np.diag(vcov) <= 0):
        return None
    return fit.coef[0], vcov, float(fit.loglik[0]), float(fit.loglik_null[0])


def _fit_lifelines(spec: StudySpec, design: Design, time: np.ndarray, event: np.ndarray, variables: Sequence[str],
                   penalizer: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, float, float, list]:
    """lifelines ``CoxPHFitter`` (penalized fits, and fits the batched fitter finds irregular)."""
    from lifelines import CoxPHFitter
    from lifelines.exceptions import ConvergenceError

    frame = design.X.assign(_time=time, _event=event)
    cph = CoxPHFitter(alpha=spec.analysis.alpha, penalizer=penalizer)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            cph.fit(frame, duration_col="_time", event_col="_event", fit_options=LIFELINES_FIT_OPTIONS)
        except ConvergenceError as exc:
            sep = monotone_likelihood_terms(design.X.to_numpy(float), time, event)
            terms = ", ".join(_describe(spec, design.terms[j]) for j, _ in sep)
            why = (f"separation (monotone likelihood) in {terms}" if sep
                   else "the information matrix could not be inverted")
            raise AnalysisError(
                f"the Cox model on {list(variables)} did not converge: {why}. lifelines said: "
                f"{str(exc).split('Please see')[0].strip()}. Merge rare levels, drop the variable, "
                f"or refit with fit_cox_model(..., penalizer=0.1)."
            ) from None
        names = design.term_names
        coef = cph.params_[names].to_numpy()
        se = cph.standard_errors_[names].to_numpy()  # sqrt of a negative variance warns here
    return (coef, se, cph.variance_matrix_.loc[names, names].to_numpy(), float(cph.log_likelihood_),
            float(cph.log_likelihood_ - cph.log_likelihood_ratio_test().test_statistic / 2), list(caught))


# --- tests of the whole model -------------------------------------------------------------
def model_tests(model: CoxModel) -> pd.DataFrame:
    """Global likelihood-ratio and Wald tests of a Cox model (R ``summary(coxph)``).

    Returns
    -------
    pandas.DataFrame
        Columns ``test`` ("likelihood_ratio", "wald"), ``statistic``, ``df``, ``p_value``.

    Notes
    -----
    LR = 2 (logL(b) - logL(0)); Wald = b' V^{-1} b with V the inverse information; both
    chi-square with p degrees of freedom.  For a penalized fit neither is a valid test.
    """
    b = model.coef.to_numpy()
    wald = np.nan
    if model.vcov is not None:
        try:
            wald = float(b @ np.linalg.solve(model.vcov.to_numpy(), b))
        except np.linalg.LinAlgError:
            wald = np.nan
    df = model.lr_df
    return pd.DataFrame({
        "test": ["likelihood_ratio", "wald"],
        "statistic": [model.lr_chisq, wald],
        "df": [df, df],
        "p_value": [model.lr_p_value, float(stats.chi2.sf(wald, df))],
    })


def compare_nested(full: CoxModel, reduced: CoxModel) -> pd.Series:
    """Likelihood-ratio test of ``reduced`` against ``full`` (R ``anova(reduced, full)``).

    Returns a Series with ``statistic`` = 2 (logL_full - logL_reduced), ``df`` (difference in
    the number of terms) and ``p_value``.  Both models must be fitted on the same patients.
    """
    if not set(reduced.terms) <= set(full.terms) or full.n != reduced.n:
        raise ValueError("compare_nested needs a reduced model whose terms are a subset of the full model's, same patients")
    stat = 2.0 * (full.loglik - reduced.loglik)
    df = len(full.terms) - len(reduced.terms)
    return pd.Series({"statistic": stat, "df": df, "p_value": float(stats.chi2.sf(stat, df))})


# --- univariable screen and selection -------------------------------------------------------
SCREEN_COLUMNS = [
    "term", "variable", "label", "level", "coef", "se", "per", "hr", "ci_low", "ci_high", "p_value",
    "variable_df", "variable_test", "variable_p_value", "lr_chisq", "lr_p_value", "selected", "note",
]


def univariable_screen(spec: StudySpec, cohort: pd.DataFrame) -> pd.DataFrame:
    """One Cox fit per candidate variable (study-file order), and the selection rule applied.

    Returns
    -------
    pandas.DataFrame
        One row per term: ``term``, ``variable``, ``label`` (see :func:`term_label`),
        ``level``, ``coef``, ``se``, ``hr``, ``ci_low``, ``ci_high``, ``p_value`` (Wald, per
        term); per variable (repeated on its rows): ``variable_df`` (number of terms),
        ``variable_test`` ("wald" for a one-term variable, "likelihood_ratio" for a factor with
        several terms or for a fit with a fatal diagnostic such as separation, whose Wald P
        is meaningless), ``variable_p_value`` (that test's P, the one the selection uses),
        ``lr_chisq`` and ``lr_p_value`` (likelihood-ratio test against the null model, for
        every variable), ``selected`` and ``note`` (diagnostics, "" when clean).

    Notes
    -----
    Selection (``analysis.selection``): ``univariable_screen`` selects a variable when
    ``variable_p_value < analysis.screen_p_value`` (the rule of :mod:`.screen`, which honest
    validation applies in every bootstrap replicate); ``prespecified`` selects
    ``analysis.predictors`` (the screen is still reported).  A variable that cannot be fitted
    (constant, separation that lifelines cannot handle) keeps one row with NaN estimates, is not
    selected, and says why in ``note``.  A variable with separation is judged by its (finite)
    LR test and the note says why; if selected, the multivariable fit then stops with the
    explanation and the penalized fallback.
    """
    rows = []
    prespecified = spec.analysis.selection == "prespecified"
    # every candidate is fitted on the same rows: time and event read-only, so that the fitter
    # sorts them once for all (efron._prepare), and their order for the separation check once;
    # no baseline hazard (the screen reports none).  The same numbers as fit_cox_model's.
    time, event = (np.array(cohort[c].to_numpy(float)) for c in (spec.outcome.time, spec.outcome.event))
    time.flags.writeable = event.flags.writeable = False
    runs = time_runs(time)
    for var in spec.candidates:
        try:
            m = _estimate(spec, cohort, [var.name], time, event, 0.0, runs)
        except AnalysisError as exc:
            rows.append(pd.DataFrame([{
                "term": var.name, "variable": var.name, "label": var.label, "level": None,
                "variable_df": np.nan, "variable_test": "", "variable_p_value": np.nan,
                "lr_chisq": np.nan, "lr_p_value": np.nan, "note": str(exc),
            }]))
            continue
        tab = m.summary(spec).drop(columns="z")
        tab.insert(2, "label", [term_label(spec, t, per) for t, per in zip(m.design.terms, tab["per"])])
        df = len(m.design.terms)
        lr_chisq = 2.0 * (m.loglik - m.loglik_null)  # as CoxModel.lr_chisq and lr_p_value
        lr_p = float(stats.chi2.sf(lr_chisq, df))
        test, p = screen_rule(df, m.ok, tab["p_value"].iloc[0], lr_p)  # the rule honest validation uses
        tab["variable_df"] = df
        tab["variable_test"] = str(test)
        tab["variable_p_value"] = float(p)
        tab["lr_chisq"] = lr_chisq
        tab["lr_p_value"] = lr_p
        tab["note"] = "; ".join(d.message for d in m.diagnostics)
        rows.append(tab)
    out = pd.concat(rows, ignore_index=True).reindex(columns=SCREEN_COLUMNS)
    if prespecified:
        out["selected"] = out["variable"].isin(spec.analysis.predictors)
    else:
        out["selected"] = screen_selects(out["variable_p_value"].to_numpy(float), spec.analysis.screen_p_value)
    return out


def select_predictors(spec: StudySpec, screen: pd.DataFrame | None = None) -> tuple[str, ...]:
    """The multivariable model's variables, as ``analysis.selection`` says.

    ``prespecified``: ``analysis.predictors`` (``screen`` may be None).  ``univariable_screen``:
    the variables marked ``selected`` in ``screen`` (from :func:`univariable_screen`), in
    study-file order.

    Raises
    ------
    AnalysisError
        when the screen selects no variable.
    """
    if spec.analysis.selection == "prespecified":
        return tuple(spec.analysis.predictors)
    if screen is None:
        raise ValueError("analysis.selection is 'univariable_screen': pass the screen from univariable_screen()")
    chosen = set(screen.loc[screen["selected"], "variable"])
    out = tuple(v.name for v in spec.candidates if v.name in chosen)
    if not out:
        raise AnalysisError(
            f"no candidate variable reached P < {spec.analysis.screen_p_value:g} in the univariable screen, so "
            "there is no multivariable model; prespecify the predictors (analysis.selection: prespecified)"
        )
    return out


def fit_study_model(
    spec: StudySpec,
    cohort: pd.DataFrame,
    *,
    penalizer: float = 0.0,
    on_problem: Literal["raise", "record"] = "raise",
) -> tuple[CoxModel, pd.DataFrame]:
    """Screen, select (``analysis.selection``) and fit the multivariable model.

    Returns ``(model, screen)``; ``penalizer`` and ``on_problem`` as :func:`fit_cox_model`.
    """
    screen = univariable_screen(spec, cohort)
    model = fit_cox_model(spec, cohort, select_predictors(spec, screen), penalizer=penalizer, on_problem=on_problem)
    return model, screen


# --- forest plot data -----------------------------------------------------------------------
def forest_data(spec: StudySpec, model: CoxModel, *, group: str | None = None) -> pd.DataFrame:
    """Rows for a forest plot of the model's hazard ratios (see ``figures.forest.plot_forest``).

    Returns
    -------
    pandas.DataFrame
        ``term``, ``variable``, ``label`` ("Label: level vs reference", "Label (per 1 unit)"),
        ``hr``, ``ci_low``, ``ci_high``, ``p_value``; plus ``group`` when given (e.g.
        "Multivariable"), so that univariable and multivariable frames can be stacked.
    """
    s = model.summary
    out = pd.DataFrame({
        "term": s["term"],
        "variable": s["variable"],
        "label": [term_label(spec, t, per) for t, per in zip(model.terms, s["per"])],
        "hr": s["hr"],
        "ci_low": s["ci_low"],
        "ci_high": s["ci_high"],
        "p_value": s["p_value"],
    })
    if group is not None:
        out["group"] = group
    return out
