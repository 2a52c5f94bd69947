"""When the numba-compiled kernels run (one rule for all of them), and compiling them ahead.

The kernels: the Efron sums and the baseline hazard (:mod:`.efron_rows`), Harrell's C by a
Fenwick-tree sweep (:mod:`cementleak_stats.validation.concordance_bit`), the grouped and
reverse Kaplan-Meier of the calibration and decision-curve bootstraps
(:mod:`cementleak_stats.validation.groupkm`), and the integrated Brier score's residuals per
patient (:mod:`cementleak_stats.validation.brier`).  Each gives the numbers of its numpy path to
rounding (the tests compare both paths), and every R reference test runs through them.

Why one rule, "always, when numba is installed": the numpy paths are whole-array passes, and
below about 20,000 rows their cost is the number of calls, not the rows.  The shipped study
(n = 100, B = 1000) refits about 13,000 Cox models (validation, the honest screen, calibration
at each horizon, the two-stage intervals): 4.2 s of CPU on the numpy paths, 1.9 s with the
kernels.  From 20,000 rows on the kernels were already the only practical path.  The numpy paths
remain for an install without numba (:data:`ENABLED` false; the tests switch it off too).

numba compiles a kernel the first time it runs (about 10 s for all of them on the 2-core
machine) and keeps the machine code in ``__pycache__`` beside the package (or in the user's
cache folder when the package is read-only).  ``python -m cementleak_stats.models.compiled``
compiles them all ahead (:func:`compile_all`); ``make`` runs it once when it installs, so the
first analysis does not pay it.
"""

from __future__ import annotations

import importlib.util
import sys
import time

import numpy as np

__all__ = ["AVAILABLE", "ENABLED", "jit", "frozen", "compile_all"]

#: numba is a dependency; without it (a broken install) the numpy paths serve every n
AVAILABLE = importlib.util.find_spec("numba") is not None
#: whether the kernels are used (tests set it false to take the numpy paths)
ENABLED = AVAILABLE

_JITTED: dict = {}


def jit(kernel):  # noqa: ANN001, ANN201 - a numba dispatcher
    """``kernel`` compiled by numba (``nogil``; machine code cached on disk across processes),
    made once per process at its first call: numba itself is imported only then.  Division by
    zero gives inf or NaN as in numpy (``error_model="numpy"``), not Python's exception: an
    extreme covariate can underflow a risk-set sum to 0 in one Newton step, and the fit then goes
    on (step halving) as on the numpy path, to R's estimates (tests/test_reliability_numeric.py)."""
    if kernel not in _JITTED:
        from numba import njit

        _JITTED[kernel] = njit(cache=True, nogil=True, error_model="numpy")(kernel)
    return _JITTED[kernel]


def frozen(a: np.ndarray, dtype: type) -> np.ndarray:
    """``a`` as a C-contiguous read-only array of ``dtype`` (copied only when its type or layout
    differ): a kernel's inputs.  numba compiles one version of a kernel per argument type, and
    read-only is a type: the cached, read-only arrays of the bootstrap would otherwise need
    versions of their own, compiled in the first analysis instead of by :func:`compile_all`."""
    view = np.ascontiguousarray(a, dtype).view()
    view.flags.writeable = False
    return view


def compile_all() -> float:
    """Run every kernel once on a tiny made-up cohort, with each argument type the analysis
    passes (the inputs are :func:`frozen`; concordance weights come as float or compact uint8
    counts), so that numba compiles and caches them; returns the seconds it took."""
    from ..validation import brier, concordance_bit, groupkm
    from . import efron_rows

    start = time.perf_counter()
    rng = np.random.default_rng(0)
    n, B, p = 12, 2, 2
    event = np.r_[np.ones(6), np.zeros(6)]
    starts = np.r_[np.arange(0, n, 2), n]
    X = rng.normal(size=(n, p))
    counts = rng.integers(0, 3, size=(B, n)).astype(float)
    beta = np.zeros((B, p))
    for design in (X, np.broadcast_to(X, (B, n, p))):
        for need_info in (True, False):
            efron_rows.efron_rows(beta, design, counts, event, starts, need_info=need_info)
    efron_rows.baseline_hazard(beta, X, np.zeros(B), counts, event, starts, np.ones(n, bool))
    time_ = np.arange(n, 0, -1, dtype=float)
    score = rng.normal(size=(B, n))
    key = 2 * np.arange(n) + (1 - event).astype(np.int64)
    for weights in (counts, counts.astype(np.uint8)):
        concordance_bit.pair_totals(key, score, np.argsort(score, axis=1), weights)
    groupkm.km_at_cells(time_, event, counts, np.zeros((1, n), np.int64), 1, 5.0)
    groupkm.censoring_left(time_, event, counts, 5.0)
    groupkm.cut_groups(score, np.array([-1.0, 0.0, 1.0]))
    brier.integrated_brier(time_, event, brier.CoxRisk(lambda t: 0.9, np.ones(n)), np.array([2.0, 5.0, 8.0]))
    return time.perf_counter() - start


if __name__ == "__main__":  # pragma: no cover - exercised by `make`
    if not AVAILABLE:
        print("numba is not installed: the numpy paths will be used", file=sys.stderr)
        raise SystemExit(0)
    print(f"compiled the numba kernels in {compile_all():.1f} s (cached beside the package)", file=sys.stderr)
