"""The reported Cox model: lifelines ``CoxPHFitter`` (Efron ties) plus the Efron baseline.

The coefficients, standard errors, hazard ratios, Wald confidence intervals and P values come
from lifelines; the baseline survival used for risks at the horizon is the Efron-consistent
one of R ``survfit.coxph`` (lifelines' own baseline is Breslow-type; METHODS.md), computed by
:func:`cementleak_stats.models.coxfit.efron_baseline_cumhaz` for a patient at the covariate
means.  Every risk in the package is ``1 - S0(t) ** exp(lp)`` with ``lp`` centred at the means.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from ..design import Design, Term, encode
from ..spec import StudySpec
from .coxfit import efron_baseline_cumhaz, step_at

#: lifelines stops when the log-likelihood changes by < 1e-9 relative (R's default too); that
#: leaves coefficients ~1e-5 from the optimum on some data.  We converge fully.
LIFELINES_FIT_OPTIONS = {"precision": 1e-12, "r_precision": 1e-15, "max_steps": 200}


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

    def baseline_survival(self, t: float | None = None) -> float:
        """S0(t) for a patient at the means (default t = horizon)."""
        t = self.horizon if t is None else t
        return float(np.exp(-step_at(self.baseline["time"].to_numpy(), self.baseline["cumhaz"].to_numpy(), t)))

    def lp(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        """Linear predictor centred at the means (R ``predict(fit, type = "lp")``)."""
        Xa = X[[t.name for t in self.terms]].to_numpy(float) if isinstance(X, pd.DataFrame) else np.asarray(X, float)
        return (Xa - self.means.to_numpy()) @ self.coef.to_numpy()

    def risk(self, X: pd.DataFrame | np.ndarray, t: float | None = None) -> np.ndarray:
        """Probability of the event by t (default the horizon): 1 - S0(t)^exp(lp)."""
        return 1.0 - self.baseline_survival(t) ** np.exp(self.lp(X))


def _summary_frame(terms: Sequence[Term], coef: np.ndarray, se: np.ndarray, alpha: float) -> pd.DataFrame:
    zcrit = stats.norm.ppf(1 - alpha / 2)
    z = coef / se
    return pd.DataFrame(
        {
            "term": [t.name for t in terms],
            "variable": [t.variable for t in terms],
            "level": [t.level for t in terms],
            "coef": coef,
            "se": se,
            "hr": np.exp(coef),
            "ci_low": np.exp(coef - zcrit * se),
            "ci_high": np.exp(coef + zcrit * se),
            "z": z,
            "p_value": 2 * stats.norm.sf(np.abs(z)),
        }
    )


def fit_cox_model(spec: StudySpec, cohort: pd.DataFrame, variables: Sequence[str]) -> CoxModel:
    """Fit the Cox model on ``variables`` with lifelines (Efron ties), fully converged.

    Notes
    -----
    Wald CI: exp(b +- z_{1-alpha/2} se), P = 2(1 - Phi(|b/se|)), as R ``summary(coxph)``.
    """
    from lifelines import CoxPHFitter

    design: Design = encode(spec, cohort, variables)
    time = cohort[spec.outcome.time].to_numpy(float)
    event = cohort[spec.outcome.event].to_numpy(float)
    frame = design.X.assign(_time=time, _event=event)
    cph = CoxPHFitter(alpha=spec.analysis.alpha)
    cph.fit(frame, duration_col="_time", event_col="_event", fit_options=LIFELINES_FIT_OPTIONS)
    names = design.term_names
    coef = cph.params_[names].to_numpy()
    se = cph.standard_errors_[names].to_numpy()
    means = design.X.mean(axis=0)
    lp = (design.X.to_numpy(float) - means.to_numpy()) @ coef
    bt, bh = efron_baseline_cumhaz(time, event, lp)
    baseline = pd.DataFrame({"time": bt, "cumhaz": bh, "survival": np.exp(-bh)})
    return CoxModel(
        variables=tuple(variables),
        terms=design.terms,
        summary=_summary_frame(design.terms, coef, se, spec.analysis.alpha),
        means=means,
        baseline=baseline,
        loglik=float(cph.log_likelihood_),
        loglik_null=float(cph.log_likelihood_ - cph.log_likelihood_ratio_test().test_statistic / 2),
        n=len(cohort),
        n_events=int(event.sum()),
        horizon=spec.outcome.horizon,
        alpha=spec.analysis.alpha,
    )
