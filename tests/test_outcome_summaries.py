"""The per-time-point summaries the repeated-measures figure draws (outcome_summaries.py),
checked against R (tests/reference/summaries_reference.R -> summaries_r.json)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from cementleak_stats.outcome_summaries import SUMMARY_COLUMNS, outcome_summary
from cementleak_stats.outcomes import describe_outcomes
from test_outcomes import make_spec

REF = Path(__file__).parent / "reference"
R = pd.DataFrame(json.loads((REF / "summaries_r.json").read_text())["outcome_summary"])


def test_mean_interval_and_quartiles_equal_r():
    data = pd.read_csv(REF / "outcomes_fixture.csv")
    s = outcome_summary(describe_outcomes(make_spec(), data))
    assert tuple(s.columns) == SUMMARY_COLUMNS
    assert list(zip(s["measure"], s["timepoint"])) == list(zip(R["measure"], R["timepoint"]))
    assert list(s["n"]) == list(R["n"])  # the patient missing the last visit leaves 26
    # R 4.2: mean(x); t.test(x)$conf.int (95%)
    np.testing.assert_allclose(s[["mean", "ci_low", "ci_high"]], R[["mean", "ci_low", "ci_high"]], rtol=1e-10)
    # R 4.2: quantile(x, c(0.25, 0.5, 0.75), type = 7)
    np.testing.assert_allclose(s[["q1", "median", "q3"]], R[["q1", "median", "q3"]], rtol=1e-12)


def test_one_value_has_no_interval():
    d = pd.DataFrame({"measure": ["m"], "timepoint": ["t"], "n": [1], "mean": [3.0], "sd": [np.nan], "median": [3.0],
                      "q1": [3.0], "q3": [3.0]})
    s = outcome_summary(d)
    assert np.isnan(s.loc[0, "ci_low"]) and np.isnan(s.loc[0, "ci_high"]) and s.loc[0, "mean"] == 3.0
