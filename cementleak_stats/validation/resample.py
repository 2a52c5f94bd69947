"""One bootstrap engine for optimism correction (R ``rms::predab.resample``), and Cox refits.

Validation (:mod:`.indices`) and calibration (:mod:`.calibration`) only pass a fit function and
a measure function to :func:`bootstrap_optimism`, as ``validate.cph`` and ``calibrate.cph`` do
in rms.  A replicate is a vector of case counts (how often each original row was drawn), so a
fit function receives a whole batch of replicates, shape (B, n), and can fit them at once
(:func:`cementleak_stats.models.coxfit.fit_cox_batch`); batches run in parallel with joblib.

Cox fit functions live here too, because validation and calibration refit the same model:
:func:`cox_fit_fn` (the model's terms, warm-started at the full-data estimate) and
:func:`make_screening_fit_fn` ("honest" validation: the univariable screen is repeated inside
every replicate, which rms does not do).  Why one module of about 475 lines: the engine's one
contract (a batch of replicates as case counts of shape (B, n)) is what these fit functions
implement, so the two halves are read and changed together.

References
----------
Harrell FE, Lee KL, Mark DB. Multivariable prognostic models. Stat Med 1996;15:361-387.
Efron B, Tibshirani R. An Introduction to the Bootstrap. Chapman & Hall 1993, ch. 17.
Harrell FE. rms 6.5, ``R/predab.resample.s``.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from scipy import stats
from threadpoolctl import threadpool_limits

from ..design import encode
from ..errors import AnalysisError
from ..models.collapse import Collapsed, collapse
from ..models.coxfit import CHUNK_ELEMENTS, fit_cox_batch
from ..models.screen import regular_fit, screen_rule, screen_selects
from ..spec import StudySpec
from .resident import Resident, everywhere, tasks

__all__ = [
    "Fits",
    "BootstrapResult",
    "draw_bootstrap_counts",
    "as_weights",
    "bootstrap_optimism",
    "CoxData",
    "CoxFits",
    "cox_data",
    "cox_fit_fn",
    "make_screening_fit_fn",
    "model_fits",
]


class Fits(Protocol):
    """What a fit function returns for a batch of B replicates: at least which fits are usable."""

    @property
    def ok(self) -> np.ndarray:  # (B,) bool
        ...


FitFn = Callable[[Any, np.ndarray], Fits]
MeasureFn = Callable[..., np.ndarray]
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class BootstrapResult:
    """Apparent, training and test values of k indices over B bootstrap replicates.

    Attributes
    ----------
    names : the k index names.
    apparent : (k,) indices of the original fit on the original data.
    training : (B, k) indices of each replicate's fit on its own (bootstrap) rows.
    test : (B, k) indices of each replicate's fit on the original rows.
    fit_ok : (B,) False where the replicate's fit failed (its rows are NaN).
    """

    names: tuple[str, ...]
    apparent: np.ndarray
    training: np.ndarray
    test: np.ndarray
    fit_ok: np.ndarray

    @property
    def n_boot(self) -> int:
        return int(self.fit_ok.size)

    @property
    def n_failed(self) -> int:
        """Replicates whose fit failed (counted, never hidden)."""
        return int((~self.fit_ok).sum())

    @property
    def used(self) -> np.ndarray:
        """(B, k) replicates where both the training and the test value exist (rms ``n``)."""
        return np.isfinite(self.training) & np.isfinite(self.test)

    @property
    def n_used(self) -> np.ndarray:
        return self.used.sum(axis=0)

    def _mean(self, a: np.ndarray) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.used, a, 0.0).sum(axis=0) / self.n_used

    @property
    def optimism(self) -> np.ndarray:
        """mean(training - test) over the replicates used."""
        return self._mean(self.training - self.test)

    @property
    def optimism_se(self) -> np.ndarray:
        """Monte-Carlo standard error of ``optimism``: sd(training - test) / sqrt(n_used)."""
        dev = np.where(self.used, self.training - self.test - self.optimism, 0.0)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.sqrt((dev**2).sum(axis=0) / (self.n_used - 1) / self.n_used)

    @property
    def corrected(self) -> np.ndarray:
        return self.apparent - self.optimism

    def table(self) -> pd.DataFrame:
        """index, apparent, training, test, optimism, optimism_se, corrected, n_used, n_boot, n_failed."""
        return pd.DataFrame({
            "index": list(self.names),
            "apparent": self.apparent,
            "training": self._mean(self.training),
            "test": self._mean(self.test),
            "optimism": self.optimism,
            "optimism_se": self.optimism_se,
            "corrected": self.corrected,
            "n_used": self.n_used,
            "n_boot": self.n_boot,
            "n_failed": self.n_failed,
        })


def draw_bootstrap_counts(n: int, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """Case counts of ``n_boot`` bootstrap samples of n rows drawn with replacement, (B, n).

    Drawing n row numbers uniformly with replacement and counting them is exactly R's
    ``sample(n, replace = TRUE)`` per replicate (the order of the draws does not matter to
    any fit or index).

    The counts are unsigned integers of the smallest width that holds them (one byte unless
    a row was drawn more than 255 times): B = 200 replicates of 10^6 rows take 200 MB, not
    1.6 GB of floats.  Consumers convert a chunk of replicates at a time (:func:`as_weights`).
    """
    if n < 1 or n_boot < 0:
        raise ValueError("need n >= 1 rows and n_boot >= 0")
    out = np.empty((n_boot, n), dtype=np.uint8)
    step = max(1, CHUNK_ELEMENTS // n)  # drawn in blocks of rows (bounded memory); the same stream
    for s in range(0, n_boot, step):
        b = min(step, n_boot - s)
        draws = rng.integers(0, n, size=(b, n)) + n * np.arange(b)[:, None]
        block = np.bincount(draws.ravel(), minlength=b * n).reshape(b, n)
        top = int(block.max(initial=0))
        if top > np.iinfo(out.dtype).max:  # exact whatever the counts: widen, never wrap
            out = out.astype(np.min_scalar_type(top))
        out[s:s + b] = block
    return out


def as_weights(counts: np.ndarray) -> np.ndarray:
    """Case counts as the float weights the fits and indices take (a chunk at a time)."""
    return np.asarray(counts, dtype=float)


def _chunk(fit_fn: FitFn, measure_fn: MeasureFn, data: Any, counts: np.ndarray) -> tuple[np.ndarray, ...]:
    counts = as_weights(counts)
    fits = fit_fn(data, counts)
    ok = np.asarray(fits.ok, dtype=bool)
    train = np.asarray(measure_fn(fits, data, counts, training=True), dtype=float)
    test = np.asarray(measure_fn(fits, data, np.ones_like(counts), training=False), dtype=float)
    train[~ok] = np.nan
    test[~ok] = np.nan
    return train, test, ok


def _run_task(fit_fn: FitFn, measure_fn: MeasureFn, data: Resident, counts: np.ndarray,
              chunk_size: int) -> tuple[np.ndarray, ...]:
    """Consecutive chunks of ``chunk_size`` replicates in a joblib worker (loky process, or a dask
    worker), on the data it keeps between tasks (:mod:`.resident`)."""
    # The matrices are thin: a multi-threaded BLAS only spins (and stalls on a busy machine).
    with threadpool_limits(limits=1, user_api="blas"):
        parts = [_chunk(fit_fn, measure_fn, data.value, counts[i:i + chunk_size])
                 for i in range(0, len(counts), chunk_size)]
    return tuple(np.concatenate(a) for a in zip(*parts))


def bootstrap_optimism(
    fit_fn: FitFn,
    measure_fn: MeasureFn,
    data: Any,
    *,
    n_boot: int,
    rng: np.random.Generator,
    names: Sequence[str] | None = None,
    n_jobs: int = 1,
    progress: Progress | None = None,
    counts: np.ndarray | None = None,
    apparent_fits: Fits | None = None,
    chunk_size: int | None = None,
) -> BootstrapResult:
    """Harrell's bootstrap estimate of optimism (R ``rms::predab.resample``, ``method = "boot"``).

    Parameters
    ----------
    fit_fn : ``fit_fn(data, counts) -> fits`` fits a batch of replicates given their case
        counts (b, n) (a row of ones is the original data); ``fits.ok`` (b,) marks usable fits.
    measure_fn : ``measure_fn(fits, data, counts, *, training) -> (b, k)`` the indices of each
        fit on the rows weighted by ``counts``; ``training`` is True for the rows the fit was
        made on (rms ``evalfit = TRUE``), False for the original rows.  NaN = not defined.
    data : the original data; ``len(data)`` is the number of rows n.
    n_boot : number of replicates B.
    rng : random generator; the counts are drawn before any fitting, so the result does not
        depend on ``n_jobs`` or ``chunk_size``.
    names : the k index names (default ``index1``, ...).
    n_jobs : joblib workers for chunks of replicates (1 = in this process).
    progress : called as ``progress(0, total)`` before the first chunk and ``progress(done,
        total)`` after each (the CLI draws a bar; a timer sees when the bootstrap starts).
    counts : pre-drawn (B, n) case counts (e.g. to validate two procedures on the same
        replicates); then ``n_boot`` must equal B and ``rng`` is not used.
    apparent_fits : the original fit, if already made (e.g. the reported model); default
        ``fit_fn(data, ones)``.
    chunk_size : replicates per batch; default ``min(250, CHUNK_ELEMENTS // n)``, so that a
        batch's (replicates x rows) arrays stay at most about 16 MB each at any n.

    Returns
    -------
    BootstrapResult

    Notes
    -----
    apparent = index of the original fit on the original data; for each replicate b, a fit on
    a sample of n rows drawn with replacement gives training_b (on those rows) and test_b (on
    the original rows); optimism = mean_b (training_b - test_b) over the replicates where both
    exist; corrected = apparent - optimism.  Replicates whose fit fails are counted
    (``n_failed``) and left out, as rms does (it only prints their number).

    References
    ----------
    Harrell FE, Lee KL, Mark DB. Stat Med 1996;15:361-387.  rms ``predab.resample``.
    """
    n = len(data)
    if counts is None:
        counts = draw_bootstrap_counts(n, n_boot, rng)
    counts = np.asarray(counts)  # integer counts stay compact; each chunk becomes float in _chunk
    if counts.shape != (n_boot, n):
        raise ValueError(f"counts must be ({n_boot}, {n})")
    ones = np.ones((1, n))
    fits0 = fit_fn(data, ones) if apparent_fits is None else apparent_fits
    if not bool(np.asarray(fits0.ok)[0]):
        raise AnalysisError("the model cannot be fitted on the original data, so it cannot be validated")
    apparent = np.asarray(measure_fn(fits0, data, ones, training=True), dtype=float)[0]
    k = apparent.size
    if chunk_size is None:
        chunk_size = min(250, CHUNK_ELEMENTS // n)
    chunk_size = max(1, chunk_size)
    chunks = [counts[i:i + chunk_size] for i in range(0, n_boot, chunk_size)]
    train, test, ok = [], [], []
    done = 0
    if progress is not None:
        progress(0, n_boot)
    with ExitStack() as stack:
        if n_jobs == 1 or len(chunks) <= 1:
            stack.enter_context(threadpool_limits(limits=1, user_api="blas"))  # once, not per chunk
            results = (_chunk(fit_fn, measure_fn, data, c) for c in chunks)
        else:  # the same chunks, a few consecutive ones per task; the data sent once per task
            resident = Resident(data)
            stack.enter_context(everywhere(resident))
            results = Parallel(n_jobs=n_jobs, return_as="generator")(
                delayed(_run_task)(fit_fn, measure_fn, resident, counts[t.start * chunk_size:t.stop * chunk_size],
                                   chunk_size) for t in tasks(len(chunks), n_jobs)
            )
        for tr, te, o in results:
            train.append(tr)
            test.append(te)
            ok.append(o)
            done += len(o)
            if progress is not None:
                progress(done, n_boot)
    return BootstrapResult(
        names=tuple(names) if names is not None else tuple(f"index{i + 1}" for i in range(k)),
        apparent=apparent,
        training=np.concatenate(train) if train else np.empty((0, k)),
        test=np.concatenate(test) if test else np.empty((0, k)),
        fit_ok=np.concatenate(ok) if ok else np.empty(0, dtype=bool),
    )


# --- Cox refits ---------------------------------------------------------------------------
@dataclass(frozen=True)
class CoxData:
    """The original rows of a Cox model: design, outcome, and the terms of each variable.

    ``init`` is the full-data estimate (warm start of every refit); ``groups`` gives the
    design columns of each variable (used by the screen).
    """

    X: np.ndarray
    time: np.ndarray
    event: np.ndarray
    terms: tuple[str, ...]
    variables: tuple[str, ...]
    groups: tuple[tuple[int, ...], ...]
    init: np.ndarray
    horizon: float

    def __len__(self) -> int:
        return len(self.time)


def cox_data(spec: StudySpec, cohort: pd.DataFrame, variables: Sequence[str], *,
             init: Mapping[str, float] | pd.Series | None = None) -> CoxData:
    """Encode ``variables`` of ``cohort`` (study-file coding) into :class:`CoxData`.

    ``init`` maps term names to starting values (default 0 for every term).
    """
    design = encode(spec, cohort, variables)
    X = design.X.to_numpy(float)
    if not np.isfinite(X).all():
        raise AnalysisError("the design has missing values; validate and complete the data first")
    names = tuple(design.term_names)
    groups = tuple(tuple(i for i, t in enumerate(design.terms) if t.variable == v) for v in variables)
    start = np.array([0.0 if init is None else float(init.get(t, 0.0)) for t in names])
    time, event = (cohort[c].to_numpy(float).copy() for c in (spec.outcome.time, spec.outcome.event))
    for a in (X, time, event):  # read-only: the fitter then prepares these rows once for every chunk
        a.flags.writeable = False
    return CoxData(X=X, time=time, event=event, terms=names, variables=tuple(variables), groups=groups, init=start,
                   horizon=spec.outcome.horizon)


@dataclass(frozen=True)
class CoxFits:
    """B Cox fits on the columns of :class:`CoxData` (coefficients 0 for terms not in a fit).

    ``selected`` (B, n_variables) says which variables each fit used (all, without a screen).
    """

    coef: np.ndarray
    loglik: np.ndarray
    loglik_null: np.ndarray
    ok: np.ndarray
    failure: np.ndarray
    selected: np.ndarray = field(default_factory=lambda: np.empty((0, 0), dtype=bool))

    def __len__(self) -> int:
        return len(self.ok)


def model_fits(data: CoxData, coef: np.ndarray, loglik: float, loglik_null: float) -> CoxFits:
    """One fit given by its estimates (e.g. the reported lifelines model) as :class:`CoxFits`."""
    return CoxFits(coef=np.asarray(coef, float)[None, :], loglik=np.array([loglik]), loglik_null=np.array([loglik_null]),
                   ok=np.array([True]), failure=np.zeros(1, np.int8),
                   selected=np.ones((1, len(data.variables)), dtype=bool))


def cox_fit_fn(data: CoxData, counts: np.ndarray) -> CoxFits:
    """Refit the model on each replicate (Efron ties, warm start at the full-data estimate)."""
    fit = fit_cox_batch(data.X, data.time, data.event, counts, init=data.init)
    return CoxFits(coef=fit.coef, loglik=fit.loglik, loglik_null=fit.loglik_null, ok=fit.ok, failure=fit.failure,
                   selected=np.ones((len(counts), len(data.variables)), dtype=bool))


def _screen_designs(data: CoxData) -> list[np.ndarray]:
    """Each candidate variable's columns of the design, read-only (the fitter prepares each once
    for every chunk of replicates)."""
    out = []
    for cols in data.groups:
        X = data.X[:, list(cols)]
        X.flags.writeable = False
        out.append(X)
    return out


def _screen_starts(data: CoxData, designs: Sequence[np.ndarray] | None = None) -> list[np.ndarray]:
    """Each candidate variable's univariable fit on the original rows: the warm start of its
    refits in every replicate."""
    designs = _screen_designs(data) if designs is None else designs
    return [np.nan_to_num(fit_cox_batch(X, data.time, data.event).coef[0]) for X in designs]


#: from this many rows on, a screened variable with few distinct (time, event, value) rows is
#: refitted on those rows with summed counts (:mod:`cementleak_stats.models.collapse`)
COLLAPSE_MIN_ROWS = 20_000


def _screen_collapsed(data: CoxData, designs: Sequence[np.ndarray]) -> list[Collapsed | None]:
    if len(data) < COLLAPSE_MIN_ROWS:
        return [None] * len(designs)
    return [collapse(X, data.time, data.event) for X in designs]


#: (data, its screen parts) of the last data screened: each variable's warm start, design and
#: collapsed rows, made once per data, not per chunk (a worker keeps the data between its tasks,
#: :mod:`.resident`); let go with the data
_SCREENED: list = []


def _screen_parts(data: CoxData) -> tuple[list[np.ndarray], list[np.ndarray], list[Collapsed | None]]:
    if _SCREENED and _SCREENED[0]() is data:
        return _SCREENED[1]
    designs = _screen_designs(data)
    parts = (_screen_starts(data, designs), designs, _screen_collapsed(data, designs))
    _SCREENED[:] = [weakref.ref(data, lambda _: _SCREENED.clear()), parts]
    return parts


def _screen_p_values(data: CoxData, counts: np.ndarray, starts: Sequence[np.ndarray] | None = None,
                     designs: Sequence[np.ndarray] | None = None,
                     collapsed: Sequence[Collapsed | None] | None = None) -> np.ndarray:
    """Univariable P value of every variable in every replicate, (B, n_variables).

    The study screen's rule (:func:`cementleak_stats.models.screen.screen_rule`): Wald P for a
    one-term variable whose fit is regular, likelihood-ratio P for a factor with several terms
    or a fit that is not (separation, a runaway coefficient); NaN where the variable cannot be
    fitted in the replicate (no events, a constant term).
    """
    B = len(counts)
    out = np.full((B, len(data.groups)), np.nan)
    designs = _screen_designs(data) if designs is None else designs
    starts = _screen_starts(data, designs) if starts is None else starts
    collapsed = _screen_collapsed(data, designs) if collapsed is None else collapsed
    for j, cols in enumerate(data.groups):
        # one variable's design is the same in every replicate: a shared (n, k) design, O(B n)
        # memory; warm start at the variable's fit on the original rows (fewer Newton steps)
        X = designs[j]
        c = collapsed[j]
        fit = (fit_cox_batch(X, data.time, data.event, counts, init=starts[j]) if c is None else
               fit_cox_batch(c.X, c.time, c.event, c.counts(counts), init=starts[j]))
        with np.errstate(invalid="ignore", divide="ignore"):
            wald = 2 * stats.norm.sf(np.abs(fit.coef[:, 0] * np.sqrt(fit.info[:, 0, 0])))
            lr = stats.chi2.sf(2 * (fit.loglik_last - fit.loglik_null), len(cols))
        regular = regular_fit(fit.ok, fit.coef, np.ptp(X, axis=0))
        out[:, j] = screen_rule(len(cols), regular, wald, lr)[1]
    return out


def make_screening_fit_fn(p_value: float) -> FitFn:
    """A fit function that repeats the univariable screen inside every replicate.

    ``data`` must be the :class:`CoxData` of *all candidate variables*.  In each replicate a
    variable enters the multivariable fit when its univariable P < ``p_value`` (the study's
    rule, see :func:`_screen_p_values`); the other coefficients are fixed at 0.  A replicate
    where no variable passes gets the null model (lp = 0), which is a valid fit.

    Notes
    -----
    This is Harrell's advice for validating a data-driven model: every step that looked at
    the outcome, the selection included, is repeated in each bootstrap sample; otherwise the
    optimism of the selection is missed (Harrell, Regression Modeling Strategies, 2nd ed.,
    sec. 5.3).  rms ``validate`` only repeats a backwards step-down (``bw = TRUE``).
    """

    def fit_fn(data: CoxData, counts: np.ndarray) -> CoxFits:
        selected = screen_selects(_screen_p_values(data, counts, *_screen_parts(data)), p_value)
        free = np.zeros((len(counts), data.X.shape[1]), dtype=bool)
        for j, cols in enumerate(data.groups):
            free[:, list(cols)] = selected[:, [j]]
        init = np.where(free, data.init, 0.0)
        fit = fit_cox_batch(data.X, data.time, data.event, counts, init=init, free=free)
        return CoxFits(coef=fit.coef, loglik=fit.loglik, loglik_null=fit.loglik_null, ok=fit.ok, failure=fit.failure,
                       selected=selected)

    return fit_fn
