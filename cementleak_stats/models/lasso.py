"""Penalized selection of the predictors: the Cox LASSO with a cross-validated penalty, as R
``glmnet(family = "cox", alpha = 1)`` and ``cv.glmnet`` (``analysis.selection: lasso``).

The path is fitted by scikit-survival's ``CoxnetSurvivalAnalysis`` (``l1_ratio = 1``), a port of
glmnet's coordinate descent for the Cox partial likelihood (Breslow ties), on the candidate
terms standardized as glmnet does (centred, divided by their standard deviation with divisor
n); the coefficients are reported on the terms' own scale.  The penalty is chosen by K-fold
cross-validation of the partial-likelihood deviance as ``cv.glmnet`` does by default
("grouped": for fold k, the deviance of the full data minus that of the data without fold k, at
the coefficients fitted without fold k; Verweij & van Houwelingen 1993), per event of the fold,
on folds stratified by the event (each fold gets its share of the events, so none is without);
``lambda.min`` (the smallest mean deviance) or ``lambda.1se`` (the largest penalty within one SE
of it).  The folds are drawn from the study's seed and exported, so that R reproduces them.

A variable is selected when any of its terms has a non-zero coefficient at the chosen penalty
(a factor's levels are penalized one by one, as glmnet does; a group LASSO would keep them
together).  The reported model is the ordinary Cox model of the selected variables (the common
"LASSO, then Cox" nomogram design), so that its hazard ratios, intervals and nomogram are those
of an ordinary fit; the shrunken LASSO coefficients are reported beside it.

Honest validation repeats the selection in every bootstrap replicate (as rms ``validate(bw =
TRUE)`` repeats its step-down): the LASSO at the chosen penalty picks the variables on the
replicate, then the ordinary Cox model of those is refitted (:func:`make_lasso_fit_fn`).  The
penalty itself is not re-tuned per replicate (cross-validation inside each of B replicates would
multiply the time by the number of folds and penalties); say so.

References
----------
Tibshirani R. The lasso method for variable selection in the Cox model. Stat Med
1997;16:385-395.
Simon N, Friedman J, Hastie T, Tibshirani R. Regularization paths for Cox's proportional hazards
model via coordinate descent. J Stat Softw 2011;39(5):1-13.
Verweij PJM, van Houwelingen HC. Cross-validation in survival analysis. Stat Med
1993;12:2305-2314.
Pölsterl S. scikit-survival: a library for time-to-event analysis built on top of
scikit-learn. J Mach Learn Res 2020;21(212):1-6.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from ..errors import AnalysisError
from ..spec import StudySpec
from .coxfit import fit_cox_batch

__all__ = ["LassoSelection", "lasso_select", "lasso_path", "breslow_deviance", "cv_deviance", "make_lasso_fit_fn"]


def _standardize(X: np.ndarray, w: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Centre and scale as glmnet (weighted mean and SD with divisor sum of weights)."""
    w = np.ones(len(X)) if w is None else w
    mean = (w[:, None] * X).sum(axis=0) / w.sum()
    sd = np.sqrt((w[:, None] * (X - mean) ** 2).sum(axis=0) / w.sum())
    return (X - mean) / np.where(sd > 0, sd, 1.0), mean, sd


def _structured(time: np.ndarray, event: np.ndarray) -> np.ndarray:
    return np.array(list(zip(np.asarray(event, bool), np.asarray(time, float))), dtype=[("event", bool), ("time", float)])


def lasso_path(X: np.ndarray, time: np.ndarray, event: np.ndarray, lambdas: Sequence[float] | None = None, *,
               n_lambda: int = 100) -> tuple[np.ndarray, np.ndarray]:
    """The Cox LASSO path: (lambdas decreasing, coefficients (n_terms, n_lambdas) on X's scale).

    As R ``glmnet(X, Surv(time, event), family = "cox", alpha = 1, standardize = TRUE)``: the
    default lambdas run from the smallest penalty that keeps every coefficient at 0 down to
    1e-4 (n > p) or 1e-2 of it, log-spaced.
    """
    from sksurv.linear_model import CoxnetSurvivalAnalysis

    Z, _, sd = _standardize(np.asarray(X, float))
    est = CoxnetSurvivalAnalysis(l1_ratio=1.0, alphas=None if lambdas is None else np.asarray(lambdas, float),
                                 n_alphas=n_lambda, tol=1e-16, max_iter=10_000_000)
    est.fit(Z, _structured(time, event))
    coef = est.coef_ / np.where(sd > 0, sd, np.inf)[:, None]
    return np.asarray(est.alphas_, float), coef


def breslow_deviance(X: np.ndarray, time: np.ndarray, event: np.ndarray, coef: np.ndarray) -> np.ndarray:
    """Partial-likelihood deviance (Breslow ties) of each column of ``coef`` (n_terms, k), (k,).

    As R ``glmnet::coxnet.deviance``: 2 (l_sat - l(beta)), l(beta) = sum over events of
    x_i'beta - log sum_{T_j >= T_i} exp(x_j'beta), the saturated l_sat = -sum_t d_t log d_t over
    the distinct event times (d_t events tied at t); a censoring at an event time counts as
    after it.
    """
    time = np.asarray(time, float)
    ev = np.asarray(event, bool)
    eta = np.asarray(X, float) @ np.atleast_2d(np.asarray(coef, float).T).T  # (n, k)
    order = np.lexsort((ev, -time))  # decreasing time; at a tie, censored rows before events
    t, e, eta = time[order], ev[order], eta[order]
    cum = np.logaddexp.accumulate(eta, axis=0)  # log sum over the rows with time >= t_i ...
    last = np.r_[t[1:] != t[:-1], True]  # ... taken at the last row of each time (all tied rows in)
    idx = np.flatnonzero(last)[np.searchsorted(np.flatnonzero(last), np.arange(len(t)))]
    ll = (e[:, None] * (eta - cum[idx])).sum(axis=0)
    d = np.unique(t[e], return_counts=True)[1]
    return 2 * (-(d * np.log(d)).sum() - ll)


def cv_deviance(X: np.ndarray, time: np.ndarray, event: np.ndarray, lambdas: np.ndarray,
                folds: np.ndarray) -> pd.DataFrame:
    """Cross-validated deviance per lambda, as R ``cv.glmnet(family = "cox", foldid = folds,
    lambda = lambdas)`` (grouped): ``lambda``, ``cvm``, ``cvsd``, ``n_nonzero`` (terms in the
    full-data fit)."""
    K = int(folds.max()) + 1
    raw = np.full((K, len(lambdas)), np.nan)
    w = np.zeros(K)
    for k in range(K):
        out = folds == k
        _, coef = lasso_path(X[~out], time[~out], event[~out], lambdas)
        if coef.shape[1] < len(lambdas):  # the path stopped early: its last fit stands for the rest (as glmnet)
            coef = np.column_stack([coef, np.repeat(coef[:, -1:], len(lambdas) - coef.shape[1], axis=1)])
        raw[k] = (breslow_deviance(X, time, event, coef) - breslow_deviance(X[~out], time[~out], event[~out], coef))
        w[k] = event[out].sum()
    raw = raw / w[:, None]
    cvm = (w[:, None] * raw).sum(axis=0) / w.sum()
    cvsd = np.sqrt((w[:, None] * (raw - cvm) ** 2).sum(axis=0) / w.sum() / (K - 1))
    return pd.DataFrame({"lambda": lambdas, "cvm": cvm, "cvsd": cvsd})


@dataclass(frozen=True)
class LassoSelection:
    """The Cox LASSO selection of the study's predictors.

    Attributes
    ----------
    terms, variables : the candidate terms and the variable of each.
    path : ``lambda``, ``term``, ``coef`` (terms' own scale) along the path.
    cv : ``lambda``, ``cvm`` (cross-validated deviance per event), ``cvsd``, ``n_nonzero``.
    lambda_min, lambda_1se, lambda_chosen : the two rules of ``cv.glmnet`` and the one used.
    rule : "min" or "1se".
    coef : the LASSO coefficient of each term at ``lambda_chosen`` (a Series by term).
    selected : the variables with a non-zero term there, in study-file order.
    folds : the fold (0-based) of each analysed patient.
    term_sd : the standard deviation of each term (divisor n): coef x term_sd is the coefficient
        of the standardized term, the scale the penalty applies to (and the path figure's).
    notes : how it was done.
    """

    terms: tuple[str, ...]
    variables: tuple[str, ...]
    path: pd.DataFrame
    cv: pd.DataFrame
    lambda_min: float
    lambda_1se: float
    lambda_chosen: float
    rule: str
    coef: pd.Series
    selected: tuple[str, ...]
    folds: np.ndarray
    term_sd: pd.Series
    notes: tuple[str, ...]


def _selected(coef: np.ndarray, groups: Sequence[Sequence[int]]) -> np.ndarray:
    """(B, n_variables) True where any term of the variable has a non-zero coefficient."""
    c = np.atleast_2d(coef)
    return np.column_stack([np.abs(c[:, list(g)]).max(axis=1) > 0 for g in groups])


def lasso_select(spec: StudySpec, cohort: pd.DataFrame, *, rng: np.random.Generator, n_folds: int = 10,
                 rule: Literal["min", "1se"] = "min") -> LassoSelection:
    """Select the predictors among the study's candidates by the cross-validated Cox LASSO.

    Raises
    ------
    AnalysisError
        when the chosen penalty keeps no variable (the null model: the data give no predictor a
        place) or a fold has no event.
    """
    from ..validation.resample import cox_data

    candidates = [v.name for v in spec.candidates]
    data = cox_data(spec, cohort, candidates)
    X, t, e = data.X, data.time, data.event.astype(bool)
    lambdas, coef = lasso_path(X, t, e)
    n = len(t)
    folds = np.empty(n, dtype=int)  # stratified by the event: every fold gets its share of the events
    start = 0
    for rows in (np.flatnonzero(e), np.flatnonzero(~e)):
        folds[rng.permutation(rows)] = (start + np.arange(len(rows))) % n_folds
        start += len(rows)
    if any(not e[folds == k].any() for k in range(n_folds)):
        raise AnalysisError(f"a cross-validation fold of the LASSO has no event ({int(e.sum())} events in {n_folds} folds): "
                            "use `selection: prespecified` or `univariable_screen`, or more data")
    cv = cv_deviance(X, t, e, lambdas, folds)
    cv["n_nonzero"] = (np.abs(coef) > 0).sum(axis=0)
    best = int(np.argmin(cv["cvm"].to_numpy()))
    lam_min = float(lambdas[cv["cvm"].to_numpy() <= cv["cvm"].iloc[best]].max())
    lam_1se = float(lambdas[cv["cvm"].to_numpy() <= cv["cvm"].iloc[best] + cv["cvsd"].iloc[best]].max())
    chosen = lam_min if rule == "min" else lam_1se
    _, at = lasso_path(X, t, e, np.r_[lambdas[lambdas > chosen], chosen])  # the path down to the chosen value
    beta = at[:, -1]
    sel = _selected(beta, data.groups)[0]
    selected = tuple(v for v, s in zip(candidates, sel) if s)
    if not selected:
        raise AnalysisError("the cross-validated LASSO keeps no predictor (the null model fits best): no nomogram can be "
                            "drawn; use `selection: prespecified` with the predictors chosen on clinical grounds")
    path = pd.DataFrame({"lambda": np.repeat(lambdas, len(data.terms)), "term": list(data.terms) * len(lambdas),
                         "coef": coef.T.ravel()})
    notes = (f"Predictors selected by the Cox LASSO (glmnet's coordinate descent, scikit-survival; Breslow ties; terms "
             f"standardized), the penalty chosen by {n_folds}-fold cross-validated partial-likelihood deviance "
             f"(lambda.{rule} = {chosen:.4g}); the reported model is the ordinary Cox model of the "
             f"{len(selected)} selected variables.",)
    return LassoSelection(terms=tuple(data.terms), variables=tuple(candidates), path=path, cv=cv, lambda_min=lam_min,
                          lambda_1se=lam_1se, lambda_chosen=chosen, rule=rule, coef=pd.Series(beta, index=list(data.terms)),
                          selected=selected, folds=folds, term_sd=pd.Series(_standardize(X)[2], index=list(data.terms)),
                          notes=notes)


def make_lasso_fit_fn(lam: float, lambdas: np.ndarray) -> Callable:
    """A fit function (for :func:`cementleak_stats.validation.resample.bootstrap_optimism`) that
    repeats the LASSO selection at penalty ``lam`` in every replicate, then refits the ordinary
    Cox model of the selected variables (the others fixed at 0).

    ``data`` is the :class:`~cementleak_stats.validation.resample.CoxData` of all candidates;
    each replicate's rows are its case counts (the LASSO sees the rows as many times as drawn).
    ``lambdas`` is the original path down to ``lam`` (the warm-start sequence).
    """
    from ..validation.resample import CoxFits

    seq = np.r_[lambdas[lambdas > lam], lam]

    def fit_fn(data, counts: np.ndarray) -> CoxFits:
        B = len(counts)
        selected = np.zeros((B, len(data.groups)), dtype=bool)
        for b in range(B):
            rows = np.repeat(np.arange(len(data)), counts[b].astype(int))
            try:
                _, coef = lasso_path(data.X[rows], data.time[rows], data.event[rows].astype(bool), seq)
                selected[b] = _selected(coef[:, -1], data.groups)[0]
            except (ValueError, ArithmeticError):  # no event or a constant column in the replicate
                continue
        free = np.zeros((B, data.X.shape[1]), dtype=bool)
        for j, cols in enumerate(data.groups):
            free[:, list(cols)] = selected[:, [j]]
        fit = fit_cox_batch(data.X, data.time, data.event, counts, init=np.where(free, data.init, 0.0), free=free)
        return CoxFits(coef=fit.coef, loglik=fit.loglik, loglik_null=fit.loglik_null, ok=fit.ok, failure=fit.failure,
                       selected=selected)

    return fit_fn
