"""Bootstrap validation of a Cox model: Dxy, C, R2, slope, D, U, Q, g (R ``rms::validate.cph``).

The indices of one fit are computed for a whole batch of bootstrap replicates at once (case
counts (B, n)), so that :func:`validate_cox` with B = 1000 takes well under a second at n = 100.
The concordance is :func:`cementleak_stats.validation.concordance.concordance_batch`: the
package's one weighted pair-count kernel (also behind ``harrell_c``), for every replicate at once
in O(B n log n), because the bootstrap needs it for every replicate twice.

Definitions (rms ``validate.cph``, ``discrim``), with L0 = -2 log L(beta = 0) on the rows
evaluated, LR the likelihood-ratio chi-square of the model on those rows and n their number:

* Dxy = 2 (C - 1/2), C = Harrell's concordance of the linear predictor (higher = earlier
  event; pairs with the same event time are not comparable, an event and a censoring at the
  same time are);
* R2 = (1 - exp(-LR / n)) / (1 - exp(-L0 / n)) (Nagelkerke);
* Slope: 1 for a fit on its own rows; on other rows the coefficient gamma of a Cox refit on
  the linear predictor xb alone (calibration slope);
* D = (LR - 1) / L0 (discrimination index);
* U = -2 / L0 on its own rows; on other rows U = -2 (log L(1) - log L(gamma)) / L0, where
  log L(1) is the log-likelihood with xb as an offset (unreliability index);
* Q = D - U; g = Gini's mean difference of gamma * xb (g-index; gamma = 1 on its own rows).

References
----------
Harrell FE. Regression Modeling Strategies, 2nd ed. Springer 2015, sec. 4.10, 5.3, 20.9.
Harrell FE. rms 6.5, ``R/validate.cph.s``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..models.cox import CoxModel
from ..models.coxfit import efron_loglik, fit_cox_batch
from ..spec import StudySpec
from .concordance import concordance_batch
from .resample import (
    BootstrapResult,
    CoxData,
    CoxFits,
    Progress,
    bootstrap_optimism,
    cox_data,
    cox_fit_fn,
    draw_bootstrap_counts,
    make_screening_fit_fn,
    model_fits,
)

__all__ = ["INDEX_NAMES", "validate_cox", "cox_indices", "concordance_batch", "gini_md_batch"]

INDEX_NAMES = ("Dxy", "C", "R2", "Slope", "D", "U", "Q", "g")


def _take_rows(a: np.ndarray, order: np.ndarray) -> np.ndarray:
    """``np.take_along_axis(a, order, axis=1)`` for (B, n) arrays, as one flat ``np.take`` (several
    times faster at large n)."""
    a = np.ascontiguousarray(a)
    B, n = order.shape
    return np.take(a.ravel(), order + (np.arange(B, dtype=order.dtype) * n)[:, None]).reshape(B, n)


def gini_md_batch(x: np.ndarray, counts: np.ndarray | None = None, *, order: np.ndarray | None = None) -> np.ndarray:
    """Gini's mean difference of B rows with case counts, (B,) (Hmisc ``GiniMd``).

    Notes
    -----
    g = sum_{i != j} |x_i - x_j| / (N (N - 1)) over the N = sum c rows of the resample; sorted,
    sum_{i,j} c_i c_j |x_i - x_j| = 2 sum_k c_k (x_k W_k - S_k) with W_k, S_k the sums of c and
    c x over the values before k.  ``order``: ``np.argsort(x, axis=1)`` if the caller has it.
    """
    x = np.atleast_2d(np.asarray(x, dtype=float))
    counts = np.ones_like(x) if counts is None else np.atleast_2d(np.asarray(counts, dtype=float))
    order = np.argsort(x, axis=1) if order is None else order
    xs, cs = _take_rows(x, order), _take_rows(counts, order)
    w_before = np.cumsum(cs, axis=1) - cs
    s_before = np.cumsum(cs * xs, axis=1) - cs * xs
    total = 2 * (cs * (xs * w_before - s_before)).sum(axis=1)
    N = counts.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return total / (N * (N - 1))


def _r2(lr: np.ndarray, l0: np.ndarray, n: np.ndarray) -> np.ndarray:
    return (1 - np.exp(-lr / n)) / (1 - np.exp(-l0 / n))


#: the linear predictors of the last fits measured and their order: the engine measures each batch
#: of fits twice (on its own rows, then on the original rows), on the same xb
_LAST: list = []


def _scores(fits: CoxFits, data: CoxData) -> tuple[np.ndarray, np.ndarray]:
    """xb = X b of each fit (B, n), uncentred, and ``np.argsort(xb, axis=1)``, made once per fits."""
    if _LAST and _LAST[0] is fits and _LAST[1] is data:
        return _LAST[2], _LAST[3]
    B = len(fits.ok)
    xb = np.nan_to_num(fits.coef) @ data.X.T if fits.coef.shape[1] else np.zeros((B, len(data)))
    order = np.argsort(xb, axis=1)
    _LAST[:] = [fits, data, xb, order]
    return xb, order


def cox_indices(fits: CoxFits, data: CoxData, counts: np.ndarray, *, training: bool) -> np.ndarray:
    """The :data:`INDEX_NAMES` of B fits on the rows weighted by ``counts``, (B, 8).

    ``training=True``: the rows the fits were made on (their log-likelihoods are used, slope 1);
    ``training=False``: other rows (a Cox refit on the linear predictor gives the slope).  A
    constant linear predictor (a null model) gives Dxy 0, C 1/2, R2 0, slope 1, D, U, Q, g 0
    (as rms).  See the module docstring for the formulas.
    """
    B = len(counts)
    xb, order = _scores(fits, data)
    n = counts.sum(axis=1)
    c = concordance_batch(data.time, data.event, xb, counts, order=order)
    if training:
        lr = 2 * (fits.loglik - fits.loglik_null)
        l0 = -2 * fits.loglik_null
        slope = np.ones(B)
        u = -2 / l0
    else:
        fit = fit_cox_batch(xb[:, :, None], data.time, data.event, counts, init=np.ones((B, 1)))
        slope = fit.coef[:, 0]
        l0 = -2 * fit.loglik_null
        lr = 2 * (fit.loglik - fit.loglik_null)
        ll1 = efron_loglik(xb[:, :, None], data.time, data.event, np.ones((B, 1)), counts)
        u = -2 * (ll1 - fit.loglik) / l0
    d = (lr - 1) / l0
    out = np.column_stack([2 * c - 1, c, _r2(lr, l0, n), slope, d, u, d - u, np.abs(slope) * gini_md_batch(xb, counts, order=order)])
    drawn = counts > 0
    flat = ~(np.where(drawn, xb, -np.inf).max(axis=1) > np.where(drawn, xb, np.inf).min(axis=1))
    out[flat] = (0.0, 0.5, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0)
    out[~np.asarray(fits.ok, bool)] = np.nan
    return out


def validate_cox(
    spec: StudySpec,
    model: CoxModel,
    cohort: pd.DataFrame,
    *,
    n_boot: int,
    rng: np.random.Generator,
    honest: bool = False,
    n_jobs: int = 1,
    progress: Progress | None = None,
) -> pd.DataFrame:
    """Bootstrap validation of a Cox model, as R ``validate(cph(..., x=TRUE, y=TRUE), B = n_boot)``.

    Parameters
    ----------
    spec : the study.
    model : the fitted model (its coefficients and log-likelihoods give the apparent indices).
    cohort : the rows the model was fitted on.
    n_boot : bootstrap replicates B.
    rng : random generator.
    honest : also validate the whole procedure, the univariable screen repeated in every
        replicate (rows with ``method = "honest"``), on the same replicates as the standard
        validation (which refits the model's own predictors, as rms does).  Needs
        ``analysis.selection: univariable_screen``.
    n_jobs, progress : see :func:`~.resample.bootstrap_optimism`.

    Returns
    -------
    pandas.DataFrame
        One row per method and index (``Dxy``, ``C``, ``R2``, ``Slope``, ``D``, ``U``, ``Q``,
        ``g``): ``method`` ("standard" or "honest"), ``index``, ``apparent``, ``training``,
        ``test``, ``optimism``, ``optimism_se`` (Monte-Carlo SE), ``corrected``, ``n_used``,
        ``n_boot``, ``n_failed``.

    Notes
    -----
    optimism = mean over replicates of (index on the bootstrap rows - index on the original
    rows); corrected = apparent - optimism (module docstring for each index).  Refits use the
    batched Efron Newton fitter converged to 1e-9, where rms refits with ``eps = 1e-4``; failed
    refits (a level never drawn, separation) are counted in ``n_failed``.

    References
    ----------
    Harrell FE, Lee KL, Mark DB. Stat Med 1996;15:361-387.  rms ``validate.cph``.
    """
    data = cox_data(spec, cohort, model.variables, init=model.coef)
    apparent = model_fits(data, model.coef[list(data.terms)].to_numpy(float), model.loglik, model.loglik_null)
    counts = draw_bootstrap_counts(len(data), n_boot, rng)
    passes = 2 if honest else 1

    def report(offset: int) -> Progress | None:  # one bar over both passes
        return None if progress is None else (lambda done, total: progress(offset + done, passes * total))

    common = {"n_boot": n_boot, "rng": rng, "names": INDEX_NAMES, "n_jobs": n_jobs, "counts": counts}
    res = bootstrap_optimism(cox_fit_fn, cox_indices, data, apparent_fits=apparent, progress=report(0), **common)
    frames = [res.table().assign(method="standard")]
    if honest:
        frames.append(_honest(spec, model, cohort, {**common, "progress": report(n_boot)}).table().assign(method="honest"))
    out = pd.concat(frames, ignore_index=True)
    return out[["method", *[c for c in out.columns if c != "method"]]]


def _honest(spec: StudySpec, model: CoxModel, cohort: pd.DataFrame, common: dict) -> BootstrapResult:
    if spec.analysis.selection != "univariable_screen":
        raise ValueError("honest validation repeats the univariable screen, but the study prespecifies its predictors "
                         "(analysis.selection: prespecified): the standard validation already is the honest one")
    candidates = [v.name for v in spec.candidates]
    missing = [v for v in model.variables if v not in candidates]
    if missing:
        raise ValueError(f"model variables {missing} are not screening candidates of the study")
    data = cox_data(spec, cohort, candidates, init=model.coef)
    coef = np.array([float(model.coef.get(t, 0.0)) for t in data.terms])
    apparent = model_fits(data, coef, model.loglik, model.loglik_null)
    return bootstrap_optimism(make_screening_fit_fn(spec.analysis.screen_p_value), cox_indices, data,
                              apparent_fits=apparent, **common)
