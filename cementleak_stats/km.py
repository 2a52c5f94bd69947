"""Kaplan-Meier curves by group, with numbers at risk, for the cumulative-incidence figure.

lifelines' ``KaplanMeierFitter`` does the estimation (product-limit, exponential Greenwood
intervals as R ``survfit(conf.type = "log-log")``); this module only tidies its output.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd


def km_by_group(time: np.ndarray, event: np.ndarray, group: Sequence[str] | pd.Series, *,
                at_risk_times: Sequence[float], alpha: float = 0.05) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Kaplan-Meier estimates per group.

    Returns
    -------
    curves : time, survival, ci_low, ci_high, n_censor, group (ordered as the groups appear
        in a categorical ``group``, else sorted).
    at_risk : time, group, n_at_risk at ``at_risk_times``.
    """
    from lifelines import KaplanMeierFitter

    g = pd.Series(group).reset_index(drop=True)
    levels = list(g.cat.categories) if isinstance(g.dtype, pd.CategoricalDtype) else sorted(g.dropna().unique())
    time = np.asarray(time, float)
    event = np.asarray(event, int)
    curves, risk = [], []
    for lv in levels:
        m = (g == lv).to_numpy()
        if not m.any():
            continue
        km = KaplanMeierFitter(alpha=alpha).fit(time[m], event[m])
        ci = km.confidence_interval_survival_function_
        tab = km.event_table
        curves.append(pd.DataFrame({
            "time": km.survival_function_.index.to_numpy(float),
            "survival": km.survival_function_.iloc[:, 0].to_numpy(),
            "ci_low": ci.iloc[:, 0].to_numpy(),
            "ci_high": ci.iloc[:, 1].to_numpy(),
            "n_censor": tab["censored"].reindex(km.survival_function_.index, fill_value=0).to_numpy(),
            "group": lv,
        }))
        risk.append(pd.DataFrame({"time": list(at_risk_times), "group": lv,
                                  "n_at_risk": [int((time[m] >= t).sum()) for t in at_risk_times]}))
    cat = pd.CategoricalDtype(levels, ordered=True)
    out = pd.concat(curves, ignore_index=True)
    out["group"] = out["group"].astype(cat)
    ar = pd.concat(risk, ignore_index=True)
    ar["group"] = ar["group"].astype(cat)
    return out, ar


def risk_groups(risk: np.ndarray, *, k: int = 3, labels: Sequence[str] = ("Low", "Intermediate", "High")) -> pd.Categorical:
    """Groups of predicted risk by its tertiles (k quantile groups), labelled with their ranges."""
    risk = np.asarray(risk, float)
    codes = pd.qcut(pd.Series(risk).rank(method="first"), k, labels=False).to_numpy()
    names = []
    for j in range(k):
        r = risk[codes == j]
        names.append(f"{labels[j] if j < len(labels) else j + 1} risk ({100 * r.min():.0f}-{100 * r.max():.0f}%)")
    return pd.Categorical.from_codes(codes, categories=names, ordered=True)
