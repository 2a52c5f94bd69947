"""R's ``pretty()``: round axis breakpoints, ported from ``src/appl/pretty.c`` (R 4.2).

Every axis of an rms nomogram comes from it (:mod:`cementleak_stats.nomogram`); no Python
library reproduces R's choice of unit and breakpoints exactly (matplotlib's ``MaxNLocator`` and
numpy pick other ticks), and the nomogram's points must equal R's.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence

import numpy as np

__all__ = ["pretty"]

_DBL_EPS = sys.float_info.epsilon
_DBL_MIN = sys.float_info.min
_DBL_MAX = sys.float_info.max


def _r_pretty_bounds(lo: float, up: float, ndiv: int, min_n: int, shrink_sml: float, h: float, h5: float,
                     f_min: float) -> tuple[float, float, int]:
    """``R_pretty()`` of R's ``src/appl/pretty.c`` (eps_correction = 0, return_bounds = TRUE)."""
    rounding_eps = 1e-10
    dx = up - lo
    if dx == 0 and up == 0:
        cell, i_small = 1.0, True
    else:
        cell = max(abs(lo), abs(up))
        U = 1 + ((1 / (1 + h)) if h5 >= 1.5 * h + 0.5 else (1.5 / (1 + h5)))
        U *= max(1, ndiv) * _DBL_EPS
        i_small = dx < cell * U * 3
    if i_small:
        if cell > 10:
            cell = 9 + cell / 10
        cell *= shrink_sml
        if min_n > 1:
            cell /= min_n
    else:
        cell = dx
        if math.isfinite(dx):
            if ndiv > 1:
                cell /= ndiv
        elif ndiv >= 2:
            cell = up / ndiv - lo / ndiv
    subsmall = f_min * _DBL_MIN or _DBL_MIN
    if cell < subsmall:
        cell = subsmall
    elif cell > _DBL_MAX / 1.25:
        cell = _DBL_MAX / 1.25
    base = 10.0 ** math.floor(math.log10(cell))
    unit = base
    if 2 * base - cell < h * (cell - unit):
        unit = 2 * base
        if 5 * base - cell < h5 * (cell - unit):
            unit = 5 * base
            if 10 * base - cell < h * (cell - unit):
                unit = 10 * base
    ns = math.floor(lo / unit + rounding_eps)
    nu = math.ceil(up / unit - rounding_eps)
    while ns * unit > lo + rounding_eps * unit:
        ns -= 1
    while not math.isfinite(ns * unit):
        ns += 1
    while nu * unit < up - rounding_eps * unit:
        nu += 1
    while not math.isfinite(nu * unit):
        nu -= 1
    k = int(0.5 + nu - ns)
    if k < min_n:
        k = min_n - k
        if lo == 0 and ns == 0 and up != 0:
            nu += k
        elif up == 0 and nu == 0 and lo != 0:
            ns -= k
        elif ns >= 0:
            nu += k // 2
            ns -= k // 2 + k % 2
        else:
            ns -= k // 2
            nu += k // 2 + k % 2
        ndiv = min_n
    else:
        ndiv = k
    out_lo = ns * unit if ns * unit < lo else lo
    out_up = nu * unit if nu * unit > up else up
    return out_lo, out_up, ndiv


def pretty(x: Sequence[float] | np.ndarray, n: int = 5, *, min_n: int | None = None, shrink_sml: float = 0.75,
           high_u_bias: float = 1.5, u5_bias: float | None = None, f_min: float = 2.0**-20) -> np.ndarray:
    """R's ``pretty(x, n)``: about n + 1 equally spaced round values covering ``range(x)``.

    A faithful port of ``base::pretty.default`` and ``R_pretty()`` (R 4.2), checked against R
    on a few hundred ranges (``tests/reference/rms_pretty.csv``).

    Parameters
    ----------
    x : values; only the finite ones count, through their minimum and maximum.
    n : desired number of intervals.
    min_n, shrink_sml, high_u_bias, u5_bias, f_min : as in R (defaults ``n %/% 3``, 0.75, 1.5,
        ``0.5 + 1.5 * high_u_bias``, 2^-20).

    Returns
    -------
    numpy.ndarray
        The breakpoints, increasing.

    Notes
    -----
    The unit is 1, 2, 5 or 10 times a power of ten, chosen near ``range / n`` with a bias to
    larger units (``high_u_bias``, and ``u5_bias`` for 5); the breakpoints are the multiples of
    the unit from floor(min / unit) to ceiling(max / unit).

    References
    ----------
    R Core Team. R: A language and environment for statistical computing, ``?pretty``;
    ``src/appl/pretty.c``.
    """
    arr = np.asarray(x, dtype=float).ravel()
    arr = arr[np.isfinite(arr)]
    if arr.size == 0:
        return arr
    min_n = n // 3 if min_n is None else min_n
    u5_bias = 0.5 + 1.5 * high_u_bias if u5_bias is None else u5_bias
    lo, up, ndiv = _r_pretty_bounds(float(arr.min()), float(arr.max()), int(n), int(min_n), shrink_sml,
                                    high_u_bias, u5_bias, f_min)
    # seq.int(lo, up, length.out = ndiv + 1): endpoints exact, inner points lo + i * by
    if ndiv == 0:
        return np.array([lo])
    s = lo + np.arange(ndiv + 1) * ((up - lo) / ndiv)
    s[0], s[-1] = lo, up
    delta = (up - lo) / ndiv
    s[np.abs(s) < 1e-14 * delta] = 0.0
    return s
