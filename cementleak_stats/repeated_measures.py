"""Statistics of repeated measures on arrays: signed-rank test, Holm, repeated-measures ANOVA, random-intercept model.

Arrays in, frozen results out; :mod:`cementleak_stats.outcomes` applies them to the study's
repeated-outcomes table.  Each equals R (tests/test_outcomes.py, tests/reference/outcomes.R):
``wilcox.test(paired = TRUE)``, ``p.adjust(method = "holm")``, ``aov(y ~ time + Error(id/time))``
and ``nlme::lme(y ~ time, random = ~ 1 | id, method = "REML")``.

Why the ANOVA, the mixed model and Holm are written here rather than taken from statsmodels
(``AnovaRM``, ``MixedLM``, ``multipletests``): ``AnovaRM`` fits an ordinary least-squares model
with one dummy column per patient (at 10,000 patients minutes and more than a gigabyte for an
SVD), ``MixedLM`` goes through patsy and a generic optimizer (seconds per thousand patients),
and importing statsmodels alone costs about 0.4 s.  A one-way repeated-measures ANOVA is three
sums of squares, a random-intercept model has a closed-form inverse covariance per patient (a
one-parameter REML profile over sufficient statistics), and Holm is a sorted cumulative
maximum: O(n) each, checked against R (``aov(... + Error(id/time))``, ``nlme::lme``,
``p.adjust``) in tests/test_outcomes.py.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import optimize, stats

__all__ = ["SignedRankResult", "signed_rank_test", "holm", "RMAnovaResult", "rm_anova", "MixedModelResult",
           "random_intercept_lmm"]


@dataclass(frozen=True)
class SignedRankResult:
    """Wilcoxon signed-rank test of paired differences, as R ``wilcox.test(paired = TRUE)``."""

    #: R's V: sum of the ranks of the positive differences (W+).
    statistic: float
    p_value: float
    #: normal-approximation z without continuity correction (for the effect size r)
    z: float
    #: number of non-zero differences (the n the test uses)
    n: int
    method: str


def signed_rank_test(later: np.ndarray, earlier: np.ndarray) -> SignedRankResult:
    """Wilcoxon signed-rank test of ``later - earlier``, matching R ``wilcox.test(later, earlier, paired = TRUE)``.

    Parameters
    ----------
    later, earlier
        Paired observations (equal length, no missing values).

    Returns
    -------
    SignedRankResult
        ``statistic`` is R's V (sum of the ranks of the positive differences, W+), not SciPy's
        two-sided default min(W+, W-).

    Notes
    -----
    Zero differences are dropped (R's and SciPy's ``zero_method="wilcox"``); the remaining n
    absolute differences are ranked with mid-ranks.  As R does, the P value is exact (the
    signed-rank distribution) when n < 50 and there are neither ties nor zeros; otherwise it is
    the normal approximation with tie-corrected variance and a continuity correction of 0.5:

    .. math:: z = (V - n(n+1)/4 - 0.5\\,\\mathrm{sign}(\\cdot)) /
              \\sqrt{n(n+1)(2n+1)/24 - \\sum (t^3 - t)/48}.

    SciPy's defaults differ (no continuity correction, exact up to n = 50 inclusive, statistic
    min(W+, W-)), so the method is chosen here explicitly and V computed here; SciPy supplies
    the P value.  ``z`` is the same statistic without the continuity correction, used for the
    effect size r = |z| / sqrt(n).

    References
    ----------
    R Core Team. ``wilcox.test`` (R 4.2, package stats), source ``wilcox.test.R``.
    """
    d = np.asarray(later, dtype=float) - np.asarray(earlier, dtype=float)
    if np.isnan(d).any():
        raise ValueError("signed_rank_test needs complete pairs (no NaN)")
    zeros = bool(np.any(d == 0))
    d = d[d != 0]
    n = d.size
    if n == 0:
        return SignedRankResult(statistic=0.0, p_value=np.nan, z=np.nan, n=0, method="all differences are zero")
    ranks = stats.rankdata(np.abs(d))
    v = float(ranks[d > 0].sum())
    _, counts = np.unique(ranks, return_counts=True)
    ties = bool(np.any(counts > 1))
    sigma = np.sqrt(n * (n + 1) * (2 * n + 1) / 24 - np.sum(counts**3 - counts) / 48)
    z = (v - n * (n + 1) / 4) / sigma if sigma > 0 else np.nan
    if n < 50 and not ties and not zeros:
        method = "exact"
        p = stats.wilcoxon(d, method="exact").pvalue
    else:
        method = "normal approximation with continuity correction"
        p = stats.wilcoxon(d, zero_method="wilcox", correction=True, method="asymptotic").pvalue
    return SignedRankResult(statistic=v, p_value=float(min(1.0, p)), z=float(z), n=int(n), method=method)


def holm(p_values: np.ndarray | list[float]) -> np.ndarray:
    """Holm step-down adjusted P values, equal to R ``p.adjust(p, method = "holm")``.

    Missing P values (NaN) stay missing and do not count towards the number of tests, as in R.

    Notes
    -----
    With the m P values sorted, p_(1) <= ... <= p_(m), the adjusted value of p_(i) is
    min(1, max_{j <= i} (m - j + 1) p_(j)).  Five lines, so written here rather than importing
    statsmodels (``multipletests``, about 0.4 s of import) for it; SciPy has no Holm.

    References
    ----------
    Holm S. A simple sequentially rejective multiple test procedure. Scand J Stat 1979;6:65-70.
    """
    p = np.asarray(p_values, dtype=float)
    out = np.full(p.shape, np.nan)
    ok = np.flatnonzero(~np.isnan(p))
    m = ok.size
    if m:
        order = ok[np.argsort(p[ok], kind="stable")]
        # the i-th smallest (i = 0, 1, ...) times m - i, made monotone by a running maximum
        out[order] = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * p[order]))
    return out


@dataclass(frozen=True)
class RMAnovaResult:
    """One-way repeated-measures ANOVA (sphericity assumed), as R ``aov(y ~ time + Error(id/time))``."""

    f: float
    df1: float
    df2: float
    p_value: float
    ss_time: float
    ss_subject: float
    ss_error: float

    @property
    def partial_eta_squared(self) -> float:
        """SS_time / (SS_time + SS_error) = F df1 / (F df1 + df2)."""
        return self.ss_time / (self.ss_time + self.ss_error)


def rm_anova(y: np.ndarray) -> RMAnovaResult:
    """One-way repeated-measures ANOVA of a complete patients x timepoints matrix.

    Parameters
    ----------
    y
        (n, k) values, one row per patient, one column per timepoint, no missing values
        (n >= 2, k >= 2).

    Returns
    -------
    RMAnovaResult

    Notes
    -----
    With row (patient) means, column (timepoint) means and the grand mean,
    SS_time = n sum_j (ybar_.j - ybar)^2, SS_subject = k sum_i (ybar_i. - ybar)^2 and SS_error
    the sum of squared residuals y_ij - ybar_i. - ybar_.j + ybar (the patient x time
    interaction stratum of R's ``Error(id/time)``); F = (SS_time / (k - 1)) / (SS_error /
    ((n - 1)(k - 1))) on k - 1 and (n - 1)(k - 1) degrees of freedom.  No sphericity
    correction (the same F as statsmodels' ``AnovaRM``, in O(nk) instead of a least-squares fit
    with one dummy per patient).
    """
    y = np.asarray(y, dtype=float)
    n, k = y.shape
    if n < 2 or k < 2 or np.isnan(y).any():
        raise ValueError("rm_anova needs a complete matrix of at least 2 patients x 2 timepoints")
    grand = y.mean()
    col = y.mean(axis=0) - grand
    row = y.mean(axis=1) - grand
    resid = y - grand - row[:, None] - col[None, :]
    ss_time, ss_subject, ss_error = n * float(col @ col), k * float(row @ row), float(np.sum(resid**2))
    df1, df2 = k - 1.0, (n - 1.0) * (k - 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        f = (ss_time / df1) / (ss_error / df2)
    return RMAnovaResult(f=float(f), df1=df1, df2=df2, p_value=float(stats.f.sf(f, df1, df2)), ss_time=ss_time,
                         ss_subject=ss_subject, ss_error=ss_error)


@dataclass(frozen=True)
class MixedModelResult:
    """Random-intercept linear mixed model fitted by REML (:func:`random_intercept_lmm`)."""

    #: (p,) fixed effects
    coef: np.ndarray
    #: (p, p) their covariance sigma^2 (X' H^-1 X)^-1, as nlme's ``vcov(lme)``
    cov: np.ndarray
    #: residual variance sigma^2 and random-intercept variance tau^2
    sigma2: float
    tau2: float
    #: True when tau^2 is estimated at (numerically) zero
    boundary: bool


def random_intercept_lmm(y: np.ndarray, x: np.ndarray, groups: np.ndarray) -> MixedModelResult:
    """REML fit of y = X beta + u_group + e, u ~ N(0, tau^2), e ~ N(0, sigma^2), as R
    ``nlme::lme(y ~ x, random = ~ 1 | group, method = "REML")``.

    Parameters
    ----------
    y : (N,) responses.  x : (N, p) fixed-effects design (with its intercept column).
    groups : (N,) group (patient) labels.

    Returns
    -------
    MixedModelResult

    Notes
    -----
    With gamma = tau^2 / sigma^2, a group of size n_i has H_i = I + gamma 11' and
    H_i^-1 = I - w_i 11', w_i = gamma / (1 + n_i gamma).  So X'H^-1X = X'X - sum_i w_i s_i s_i'
    (s_i the group's column sums of X), and likewise X'H^-1y and y'H^-1y: every evaluation of
    the REML criterion costs O(G p^2) from sufficient statistics.  With sigma^2 profiled out
    (sigma^2 = Q / (N - p), Q the generalized residual sum of squares),

    .. math:: -2 l_R(\\gamma) = (N - p) \\log(Q / (N - p)) + \\sum_i \\log(1 + n_i \\gamma) +
              \\log |X' H^{-1} X| + \\text{const},

    minimized over log gamma (a grid over [-15, 15], then Brent's method within the best grid
    step).  beta is the generalized least-squares estimate at that gamma and its covariance
    sigma^2 (X'H^-1X)^-1, nlme's.

    References
    ----------
    Pinheiro JC, Bates DM. Mixed-Effects Models in S and S-PLUS. Springer, 2000 (chapter 2).
    """
    y = np.asarray(y, dtype=float)
    x = np.asarray(x, dtype=float)
    codes, sizes = np.unique(np.asarray(groups), return_inverse=True, return_counts=True)[1:]
    n_obs, p = x.shape
    s = np.zeros((len(sizes), p))
    np.add.at(s, codes, x)
    t = np.bincount(codes, weights=y, minlength=len(sizes))
    xtx, xty, yty = x.T @ x, x.T @ y, float(y @ y)

    def solve(theta: float) -> tuple[float, np.ndarray, np.ndarray, float]:
        gamma = np.exp(theta)
        w = gamma / (1.0 + sizes * gamma)
        a = xtx - s.T @ (w[:, None] * s)
        b = xty - s.T @ (w * t)
        beta = np.linalg.solve(a, b)
        q = yty - float(w @ t**2) - float(b @ beta)
        crit = (n_obs - p) * np.log(q / (n_obs - p)) + float(np.sum(np.log1p(sizes * gamma)))
        return crit + float(np.linalg.slogdet(a)[1]), beta, a, q

    grid = np.arange(-15.0, 15.0 + 1e-9, 0.5)
    best = int(np.argmin([solve(g)[0] for g in grid]))
    lo, hi = grid[max(best - 1, 0)], grid[min(best + 1, len(grid) - 1)]
    theta = float(optimize.minimize_scalar(lambda th: solve(th)[0], bounds=(lo, hi), method="bounded",
                                           options={"xatol": 1e-10}).x)
    _, beta, a, q = solve(theta)
    sigma2 = q / (n_obs - p)
    return MixedModelResult(coef=beta, cov=sigma2 * np.linalg.inv(a), sigma2=sigma2, tau2=sigma2 * np.exp(theta),
                            boundary=best == 0)
