"""Numerical trouble of a Cox fit, found before and after fitting: constant or exactly collinear
columns (refused, with the variables named), separation (monotone likelihood, checked exactly
per column), runaway coefficients, near-collinearity (variance inflation), non-finite standard
errors, and lifelines' own warnings, each as a :class:`Diagnostic` that says which term and why
it matters.  Split from :mod:`.cox` (issue 12); :func:`.cox.fit_cox_model` applies them.

References
----------
Heinze G, Schemper M. A solution to the problem of monotone likelihood in Cox regression.
Biometrics 2001;57:114-119.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import linalg

from ..design import Design, Term
from ..errors import AnalysisError
from ..spec import StudySpec, Variable
from .labels import _describe
from .screen import RUNAWAY_LOG_HR

__all__ = ["MAX_VIF", "FATAL_KINDS", "Diagnostic", "variance_inflation", "monotone_likelihood_terms", "time_runs"]

#: A term whose variance inflation factor exceeds this is reported as nearly collinear
#: (clinical predictors have VIFs below 10; 1000 means R^2 > 0.999 on the other terms).
MAX_VIF = 1000.0

#: Diagnostic kinds that make a fit unreportable (``on_problem="raise"`` raises on them).
FATAL_KINDS = frozenset({"separation", "runaway", "collinear", "nan_se", "not_converged"})

DiagnosticKind = Literal["separation", "runaway", "collinear", "nan_se", "not_converged", "note"]


@dataclass(frozen=True)
class Diagnostic:
    """One numerical problem of a Cox fit, with the term it concerns and why it matters.

    ``kind`` is one of ``separation`` (monotone likelihood: the estimate is infinite),
    ``runaway`` (a coefficient heading to infinity), ``collinear`` (nearly collinear with
    the other terms), ``nan_se`` (information matrix not
    positive definite: standard error not finite), ``not_converged`` (the Newton iterations
    stopped early) and ``note`` (a lifelines warning that does not invalidate the fit).
    """

    kind: DiagnosticKind
    message: str
    term: str | None = None
    variable: str | None = None

    @property
    def fatal(self) -> bool:
        return self.kind in FATAL_KINDS


# --- checks before fitting ----------------------------------------------------------------
def _check_inputs(spec: StudySpec, design: Design, time: np.ndarray, event: np.ndarray) -> None:
    """Raise :class:`AnalysisError` for problems that make any Cox fit impossible."""
    missing = [c for c in design.X.columns if design.X[c].isna().any()]
    if np.isnan(time).any():
        missing.append(spec.outcome.time)
    if np.isnan(event).any():
        missing.append(spec.outcome.event)
    if missing:
        raise AnalysisError(
            f"missing values in {missing}: the Cox model needs complete cases; the study file's "
            f"missing-data rule ({spec.analysis.missing_data}) must be applied before fitting"
        )
    if event.sum() == 0:
        raise AnalysisError(f"no events ('{spec.outcome.event}' is 0 for every patient): a Cox model cannot be fitted")
    problems = []
    X = design.X.to_numpy(float)
    for j, term in enumerate(design.terms):
        col = X[:, j]
        if np.ptp(col) == 0:
            var = spec.variable(term.variable)
            if var.kind == "continuous":
                why = f"takes the single value {col[0]:g} in all {len(col)} patients"
            elif term.level is not None and var.kind != "binary":
                why = f"level '{term.level}' is {'every' if col[0] else 'no'} patient's level"
            else:
                why = f"only one level occurs in the analysed patients ({_only_level(var, col[0])!r})"
            problems.append(f"variable '{term.variable}' ({var.label}) is constant: {why}")
    if problems:
        raise AnalysisError("; ".join(problems) + ". Drop the variable or merge its levels in the study file.")
    collinear = _collinear_terms(X, design.terms)
    if collinear:
        raise AnalysisError(
            "perfectly collinear terms (one is an exact linear combination of others, so their "
            "coefficients are not identifiable): " + "; ".join(collinear)
            + ". Drop one of the variables named."
        )


def _only_level(var: Variable, value: float) -> str:
    if var.kind == "ordinal" and var.coding == "score":
        return var.levels[int(value)]
    other = [lv for lv in var.levels if lv != var.ref_level]
    return other[0] if value else str(var.ref_level)


def _collinear_terms(X: np.ndarray, terms: Sequence[Term]) -> list[str]:
    """Name each column that is an exact linear combination of others (rank-revealing QR).

    numpy/scipy give the rank; naming the columns involved is what lifelines' "high
    collinearity" ConvergenceError does not do.
    """
    if X.shape[1] < 2:
        return []
    Xc = X - X.mean(axis=0)
    Xs = Xc / np.sqrt((Xc**2).sum(axis=0))
    _, R, piv = linalg.qr(Xs, mode="economic", pivoting=True)
    diag = np.abs(np.diag(R))
    rank = int((diag > 1e-9 * max(diag[0], 1e-300) * max(X.shape)).sum())
    if rank == X.shape[1]:
        return []
    indep = piv[:rank]
    out = []
    for d in piv[rank:]:
        b, *_ = np.linalg.lstsq(Xc[:, indep], Xc[:, d], rcond=None)
        parts = [f"{b[k]:+.3g}*'{terms[j].name}'" for k, j in enumerate(indep) if abs(b[k]) > 1e-8]
        out.append(f"'{terms[d].name}' = {' '.join(parts)} + constant")
    return out


def variance_inflation(X: np.ndarray) -> np.ndarray:
    """Variance inflation factor of each column, 1 / (1 - R^2_j) (inf for an exact combination).

    Notes
    -----
    The diagonal of the inverse correlation matrix (statsmodels' ``variance_inflation_factor``
    computes the same by p regressions; one inverse is enough here).
    """
    p = X.shape[1]
    if p < 2:
        return np.ones(p)
    corr = np.corrcoef(X, rowvar=False)
    try:
        return np.abs(np.diag(np.linalg.inv(corr)))
    except np.linalg.LinAlgError:
        return np.full(p, np.inf)


def time_runs(time: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The rows in increasing time (stable) and, for each sorted row, the first sorted row of its
    tie group: what :func:`monotone_likelihood_terms` needs of ``time``, computed once for several
    designs on the same rows (the univariable screen)."""
    order = np.argsort(time, kind="stable")
    ts = np.asarray(time)[order]
    starts = np.flatnonzero(np.r_[True, ts[1:] != ts[:-1]]) if ts.size else np.empty(0, np.int64)
    return order, np.repeat(starts, np.diff(np.r_[starts, ts.size]))


def monotone_likelihood_terms(X: np.ndarray, time: np.ndarray, event: np.ndarray,
                              runs: tuple[np.ndarray, np.ndarray] | None = None) -> list[tuple[int, int]]:
    """Columns along which the partial likelihood is monotone (separation): (column, +1/-1).

    +1 when, at every event time, the patients with the event have the largest value of the
    column in the risk set (the likelihood increases without bound as the coefficient -> +inf);
    -1 for the smallest.  Such a coefficient has no finite maximum-likelihood estimate
    whatever the other terms are (each risk-set factor is monotone in it).

    Notes
    -----
    With rows sorted by time, the risk set of an event at t is every row with time >= t, so
    the largest value in it is a reverse cumulative maximum from the first row of t's tie group.
    ``runs``: :func:`time_runs` of ``time`` when the caller has it already.

    References
    ----------
    Heinze G, Schemper M. A solution to the problem of monotone likelihood in Cox regression.
    Biometrics 2001;57:114-119.
    """
    order, first = time_runs(time) if runs is None else runs  # first: first row of each row's tie group
    es, Xs = event[order].astype(bool), X[order]
    out = []
    for j in range(X.shape[1]):
        col = Xs[:, j]
        top = np.maximum.accumulate(col[::-1])[::-1][first]
        bottom = np.minimum.accumulate(col[::-1])[::-1][first]
        informative = top > bottom  # risk sets where the column varies
        ev = es & informative
        if not ev.any():
            continue
        if np.all(col[es] >= top[es]):
            out.append((j, +1))
        elif np.all(col[es] <= bottom[es]):
            out.append((j, -1))
    return out


# --- checks after fitting -----------------------------------------------------------------
_LIFELINES_FATAL = ("failed to converge", "norm(delta) is still high", "suspiciously close to 0")


def _post_fit_diagnostics(
    spec: StudySpec, design: Design, time: np.ndarray, event: np.ndarray, coef: np.ndarray, se: np.ndarray,
    caught: Sequence[warnings.WarningMessage], penalized: bool, runs: tuple[np.ndarray, np.ndarray] | None = None,
) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    X = design.X.to_numpy(float)
    if not penalized:
        for j, sign in monotone_likelihood_terms(X, time, event, runs):
            t = design.terms[j]
            side = "highest" if sign > 0 else "lowest"
            out.append(Diagnostic(
                "separation",
                f"term {_describe(spec, t)}: at every event time the patients with the event had the {side} "
                f"value in the risk set, so the partial likelihood keeps increasing as the coefficient goes to "
                f"{'+' if sign > 0 else '-'}infinity (monotone likelihood / separation, lifelines #342); the "
                f"estimate {coef[j]:.3g} and its SE are meaningless",
                t.name, t.variable))
    flagged = {d.term for d in out}
    span = np.ptp(X, axis=0)
    vif = variance_inflation(X)
    inflated = [t.name for j, t in enumerate(design.terms) if vif[j] > MAX_VIF]
    for j, t in enumerate(design.terms):
        if t.name in flagged:
            continue
        if vif[j] > MAX_VIF:
            others = ", ".join(f"'{o}'" for o in inflated if o != t.name) or "the other terms"
            out.append(Diagnostic(
                "collinear",
                f"term {_describe(spec, t)} is nearly collinear with {others} (variance inflation factor "
                f"{vif[j]:.3g}): its coefficient ({coef[j]:.3g}) and SE ({se[j]:.3g}) are not estimable in practice",
                t.name, t.variable))
        elif not np.isfinite(se[j]) or not np.isfinite(coef[j]):
            out.append(Diagnostic(
                "nan_se",
                f"term {_describe(spec, t)}: standard error is not finite (the information matrix is not positive "
                f"definite at the estimate, lifelines #412) — usually too few events in a level or near-collinearity",
                t.name, t.variable))
        elif abs(coef[j]) * span[j] > RUNAWAY_LOG_HR:
            out.append(Diagnostic(
                "runaway",
                f"term {_describe(spec, t)}: coefficient {coef[j]:.3g} (SE {se[j]:.3g}) implies a hazard ratio above "
                f"e^{RUNAWAY_LOG_HR:g} across the observed range — it is running away to infinity (quasi-separation)",
                t.name, t.variable))
    if not caught:  # only a lifelines fit records warnings (importing lifelines for its class: ~0.15 s)
        return out
    from lifelines.exceptions import ConvergenceWarning

    explained = any(d.fatal for d in out)
    for w in caught:
        if not issubclass(w.category, ConvergenceWarning):
            continue  # numpy overflow and the like: the checks above say what it means
        text = " ".join(str(w.message).split())
        first = text.split(". ")[0].rstrip(".") + "."
        if any(k in text for k in _LIFELINES_FATAL):
            if not explained:
                out.append(Diagnostic("not_converged", f"lifelines: {first}"))
                explained = True
        elif not explained:  # e.g. lifelines' separation heuristics, already explained above
            out.append(Diagnostic("note", f"lifelines: {first}"))
    return out


def _problem_message(variables: Sequence[str], diags: Sequence[Diagnostic]) -> str:
    lines = [f"the Cox model on {list(variables)} cannot be reported as fitted:"]
    lines += [f"  - {d.message}" for d in diags if d.fatal]
    lines.append(
        "  Options: merge rare levels or drop the variable named; or refit with a ridge penalty, "
        "fit_cox_model(..., penalizer=0.1) (lifelines `penalizer`: coefficients shrunk towards 0, "
        "their SEs and P values are not those of an ordinary Cox fit — report it as penalized)."
    )
    return "\n".join(lines)
