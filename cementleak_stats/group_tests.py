"""The tests of Table 1: which test compares the groups on a variable, and its P value, as R.

* continuous, normal (Shapiro-Wilk P >= alpha in every group, :func:`is_normal`): Welch's
  t-test (R ``t.test(var.equal = FALSE)``), one-way ANOVA for > 2 groups;
* continuous, otherwise: Mann-Whitney U as R ``wilcox.test`` (exact P when both groups have
  < 50 values and no ties, else the normal approximation with tie and continuity corrections),
  Kruskal-Wallis for > 2 groups;
* categorical: chi-square (R ``chisq.test``: Yates' correction for a 2 x 2 table only), or
  Fisher's exact test (R ``fisher.test``, :func:`fisher_exact_2xk`) when an expected count is
  < 5 and the table is 2 x k.

:func:`continuous_test` and :func:`categorical_test` return the function Table 1 calls, named
by the test (the table reports the ``__name__``, as tableone's ``htest`` hook did).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence

import numpy as np
from scipy import stats
from scipy.special import gammaln

__all__ = ["fisher_exact_2xk", "continuous_test", "categorical_test", "is_normal", "SHAPIRO_MAX_N"]

#: Above this many tables with the observed margins, Fisher's exact test is not enumerated.
_FISHER_MAX_TABLES = 2_000_000


# --- tests ------------------------------------------------------------------------------

def fisher_exact_2xk(table: np.ndarray) -> float:
    """Two-sided Fisher's exact test of a 2 x k (or k x 2) contingency table, as R ``fisher.test``.

    Parameters
    ----------
    table
        Non-negative integer counts with one dimension equal to 2.

    Returns
    -------
    float
        Sum of the probabilities of all tables with the observed margins that are no more
        probable than the observed one.

    Notes
    -----
    With the margins fixed, the first row x follows the multivariate hypergeometric law
    P(x) = prod_j C(c_j, x_j) / C(N, r_1).  Every admissible x is enumerated column by column
    (impossible partial sums are pruned) and P = sum P(x) over P(x) <= P(observed) (1 + 1e-7),
    R's relative tolerance.  SciPy's ``fisher_exact`` is exact only for 2 x 2 tables (larger
    tables use Monte Carlo or permutation resampling), hence this enumeration.

    The number of partial tables is counted first (:func:`_fisher_tables`, O(k r_1) memory and
    time); when some step would hold more than ``_FISHER_MAX_TABLES`` of them, NaN is returned
    without building anything, and Table 1 uses the chi-square test instead, saying so in the
    test's name (:func:`categorical_test`).

    References
    ----------
    Mehta CR, Patel NR. A network algorithm for performing Fisher's exact test in r x c
    contingency tables. J Am Stat Assoc 1983;78:427-434.
    """
    t = np.asarray(table, dtype=np.int64)
    if t.ndim != 2 or 2 not in t.shape:
        raise ValueError(f"fisher_exact_2xk needs a 2 x k table, got shape {t.shape}")
    if t.shape[0] != 2:
        t = t.T
    cols = t.sum(axis=0)
    r1, n = int(t[0].sum()), int(t.sum())
    r2 = n - r1

    def log_comb(a: np.ndarray | int, b: np.ndarray | int) -> np.ndarray:
        return gammaln(np.asarray(a) + 1) - gammaln(np.asarray(b) + 1) - gammaln(np.asarray(a) - np.asarray(b) + 1)

    lo, hi, rest_lo, rest_hi = _fisher_bounds(cols, r1, r2)
    if _fisher_tables(lo, hi, rest_lo, rest_hi, r1) > _FISHER_MAX_TABLES:
        return math.nan  # checked before anything is built: the caller falls back (see categorical_test)
    sums = np.zeros(1, dtype=np.int64)
    logp = np.zeros(1)
    for j, c in enumerate(cols):
        # every admissible x_j of every partial table: x_j in [low, high], bounds that keep the
        # remaining columns able to reach r1 (the partial tables are at most the cap, counted above)
        low = np.maximum(lo[j], r1 - rest_hi[j] - sums)
        size = np.maximum(np.minimum(hi[j], r1 - rest_lo[j] - sums) - low + 1, 0)
        parent = np.repeat(np.arange(sums.size), size)
        x = low[parent] + np.arange(parent.size) - np.repeat(np.cumsum(size) - size, size)
        sums, logp = sums[parent] + x, logp[parent] + log_comb(c, x)
    logp -= log_comb(n, r1)
    observed = float(np.sum(log_comb(cols, t[0])) - log_comb(n, r1))
    p = float(np.exp(logp[logp <= observed + np.log1p(1e-7)]).sum())
    return min(1.0, p)


def _fisher_tables(lo: np.ndarray, hi: np.ndarray, rest_lo: np.ndarray, rest_hi: np.ndarray, r1: int) -> float:
    """Largest number of partial tables that :func:`fisher_exact_2xk` holds after any column.

    Counted by partial sum of the first row (r_1 + 1 states), not enumerated: after column j
    the count of partial sums s is the sum of the previous counts at s - x, x in [lo_j, hi_j]
    (a box filter by cumulative sums), then sums that cannot reach r_1 are dropped.  Float
    counts: exact below 2^53, only compared with the cap above that.
    """
    counts = np.zeros(r1 + 1)
    counts[0] = 1.0
    s = np.arange(r1 + 1)
    largest = 1.0
    for j in range(len(lo)):
        c = np.r_[0.0, np.cumsum(counts)]  # c[i] = counts[0] + ... + counts[i - 1]
        counts = c[np.clip(s - lo[j] + 1, 0, r1 + 1)] - c[np.clip(s - hi[j], 0, r1 + 1)]
        counts[(s + rest_lo[j] > r1) | (s + rest_hi[j] < r1)] = 0.0
        largest = max(largest, float(counts.sum()))
    return largest


def _fisher_feasible(table: np.ndarray) -> bool:
    """Whether :func:`fisher_exact_2xk` enumerates ``table`` (2 x k or k x 2) within its cap."""
    t = np.asarray(table, dtype=np.int64)
    if t.shape[0] != 2:
        t = t.T
    r1 = int(t[0].sum())
    return _fisher_tables(*_fisher_bounds(t.sum(axis=0), r1, int(t.sum()) - r1), r1) <= _FISHER_MAX_TABLES


def _fisher_bounds(cols: np.ndarray, r1: int, r2: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Range [lo_j, hi_j] of each first-row cell given the margins, and the sums of those
    bounds over the columns after j (what the rest can still add to the row)."""
    lo, hi = np.maximum(0, cols - r2), np.minimum(cols, r1)
    rest_lo = np.concatenate([np.cumsum(lo[::-1])[::-1][1:], [0]])
    rest_hi = np.concatenate([np.cumsum(hi[::-1])[::-1][1:], [0]])
    return lo, hi, rest_lo, rest_hi


def _named(name: str, fn: Callable[..., float]) -> Callable[..., float]:
    """Table 1 reports a test by its function's ``__name__`` (as tableone's ``htest`` hook)."""
    fn.__name__ = name
    return fn


def _mann_whitney(*groups: np.ndarray) -> float:
    a, b = (np.asarray(g, dtype=float) for g in groups)
    # R wilcox.test: exact when both samples < 50 and no ties; else normal + continuity correction
    small = a.size < 50 and b.size < 50
    tied = small and np.unique(np.concatenate([a, b])).size < a.size + b.size  # looked for only where it matters
    method = "exact" if small and not tied else "asymptotic"
    return float(stats.mannwhitneyu(a, b, use_continuity=True, method=method).pvalue)


def continuous_test(groups: Sequence[np.ndarray], normal: bool) -> Callable[..., float]:
    """``normal`` implies every group has >= 3 values (see :func:`_is_normal`)."""
    if any(g.size == 0 for g in groups):
        return _named("Not tested (empty group)", lambda *g: math.nan)
    if len(groups) == 2:
        if normal:
            return _named("Welch t-test", lambda a, b: float(stats.ttest_ind(a, b, equal_var=False).pvalue))
        return _named("Mann-Whitney U", _mann_whitney)
    if normal:
        return _named("One-way ANOVA", lambda *g: float(stats.f_oneway(*g).pvalue))
    return _named("Kruskal-Wallis", lambda *g: float(stats.kruskal(*g).pvalue))


def categorical_test(table: np.ndarray) -> Callable[..., float]:
    """Test chosen on the levels x groups table without empty rows and columns; called with one row per group."""
    table = table[table.sum(axis=1) > 0][:, table.sum(axis=0) > 0]
    if min(table.shape) < 2:
        return _named("Not tested (one level)", lambda *rows: math.nan)
    expected = stats.contingency.expected_freq(table)
    fisher = expected.min() < 5 and 2 in table.shape
    if fisher and _fisher_feasible(table):
        return _named("Fisher's exact", lambda *rows: fisher_exact_2xk(np.array(rows)))
    yates = table.shape == (2, 2)
    name = "Chi-square (Yates)" if yates else "Chi-square"
    if fisher:
        name += " (expected count < 5; too many tables for Fisher's exact)"
    elif expected.min() < 5:
        name += " (expected count < 5)"
    return _named(name, lambda *rows: float(stats.chi2_contingency(np.array(rows), correction=yates).pvalue))


#: R ``shapiro.test`` accepts at most this many values; SciPy's P is approximate above it (Table 1 says so)
SHAPIRO_MAX_N = 5000


def is_normal(groups: Sequence[np.ndarray], alpha: float) -> bool:
    for g in groups:
        if g.size < 3 or np.ptp(g) == 0:
            return False
        with warnings.catch_warnings():  # above SHAPIRO_MAX_N values: noted in Table 1's notes, not printed per call
            warnings.filterwarnings("ignore", message="scipy.stats.shapiro: For N > 5000", category=UserWarning)
            p = stats.shapiro(g).pvalue
        if p < alpha:
            return False
    return True
