"""What the repeated-measures figure draws at each time point, computed in the analysis: the
mean with its t interval and the median with the quartiles (from :func:`.outcomes.describe_outcomes`).

Kept apart from :mod:`.outcomes` (the tests of the repeated measures) so that the figures only
draw: ``run_study`` stores :func:`outcome_summary` in ``StudyResults.outcome_summary``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

__all__ = ["outcome_summary", "SUMMARY_COLUMNS"]

#: columns of :func:`outcome_summary`
SUMMARY_COLUMNS = ("measure", "timepoint", "n", "mean", "ci_low", "ci_high", "median", "q1", "q3")


def outcome_summary(descriptives: pd.DataFrame, *, level: float = 0.95) -> pd.DataFrame:
    """Per measure and time point: the mean with its t interval, the median and quartiles.

    Parameters
    ----------
    descriptives : :func:`cementleak_stats.outcomes.describe_outcomes` (``measure``,
        ``timepoint``, ``n``, ``mean``, ``sd``, ``median``, ``q1``, ``q3``).
    level : confidence level of the interval of the mean.

    Returns
    -------
    pandas.DataFrame
        :data:`SUMMARY_COLUMNS`, one row per row of ``descriptives`` (same order); the interval
        is NaN with fewer than 2 values.

    Notes
    -----
    mean -/+ t(1 - (1 - level)/2, n - 1) SD / sqrt(n), as R ``t.test(x)$conf.int``; the
    quartiles are R ``quantile(type = 7)`` (as ``describe_outcomes`` computes them).
    """
    d = descriptives
    n = d["n"].to_numpy(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        q = stats.t.ppf(1 - (1 - level) / 2, np.where(n > 1, n - 1, np.nan))
        half = q * d["sd"].to_numpy(float) / np.sqrt(n)
    mean = d["mean"].to_numpy(float)
    return pd.DataFrame({"measure": d["measure"].to_numpy(), "timepoint": d["timepoint"].to_numpy(), "n": d["n"].to_numpy(),
                         "mean": mean, "ci_low": mean - half, "ci_high": mean + half, "median": d["median"].to_numpy(float),
                         "q1": d["q1"].to_numpy(float), "q3": d["q3"].to_numpy(float)})
