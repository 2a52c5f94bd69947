"""The analysis imports a library when a step uses it, not before (issue 16).

Checked on ``sys.modules`` in a new process, not on a clock: importing the pipeline
(``cementleak_stats.study``, the CLI), reading and checking clean data, Table 1 and an ordinary
Cox fit and the risk groups (their log-rank test written out) load neither statsmodels (its ``api``
alone ~0.45 s), lifelines (~0.15 s, needed for penalized or irregular fits only), tableone (Table 1 is computed directly;
tests/test_tables_tableone.py) nor pandera (~0.3 s; it reports the tables that break a rule);
the calibration line then imports statsmodels' GLM module and the logistic sensitivity analysis
its Logit module, not ``statsmodels.api``.
The pre-check that spares pandera agrees with pandera on random edits of clean tables.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]

_PROBE = """
import json, sys
seen = {}
def loaded(step):
    seen[step] = sorted(m for m in ("statsmodels", "statsmodels.api", "lifelines", "tableone", "pandera")
                        if m in sys.modules)

import cementleak_stats.cli, cementleak_stats.study
loaded("import")
from cementleak_stats import load_spec
from cementleak_stats.checks import logistic_sensitivity
from cementleak_stats.cohort.io import load_study_data
from cementleak_stats.models.cox import fit_cox_model
from cementleak_stats.tables import table_baseline
spec = load_spec(sys.argv[1])
cohort = load_study_data(spec).analysed
table_baseline(spec, cohort)
loaded("table 1")
predictors = [v.name for v in spec.candidates][:3]
model = fit_cox_model(spec, cohort, predictors)
loaded("cox")
from cementleak_stats.nomogram import build_nomogram
from cementleak_stats.riskgroups import risk_groups_in
risk_groups_in(spec, build_nomogram(spec, model, cohort), cohort)
loaded("risk groups")
from cementleak_stats.validation.calibration import calibration_line
calibration_line(spec, model, cohort)
loaded("calibration line")
logistic_sensitivity(spec, cohort, predictors=predictors)
loaded("logistic")
print("SEEN=" + json.dumps(seen))
"""


def test_analysis_steps_import_only_what_they_use():
    if not (ROOT / "data" / "cohort.csv").exists():
        pytest.skip("no shipped cohort")
    proc = subprocess.run([sys.executable, "-c", _PROBE, str(ROOT / "study.yaml")], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("SEEN=")]
    assert line, proc.stderr
    seen = json.loads(line[-1].split("=", 1)[1])
    assert seen["import"] == seen["table 1"] == seen["cox"] == seen["risk groups"] == []
    # the GLM module (calibration slope) and the Logit module, not statsmodels.api
    assert seen["calibration line"] == seen["logistic"] == ["statsmodels"]


# --- a clean table is checked without pandera; the pre-check agrees with pandera -------------
BAD = ROOT / "tests" / "bad_inputs"
_CELLS = ["", "12", "12,5", "0", "-3", "999", "1e3", "abc", "female", "F", "male", "mild", "severe", "lumbar",
          "P01", "P02", "2020-01-01", "1", "yes", None]


def _pandera_finds_nothing(frame, schema) -> bool:
    from pandera.errors import SchemaErrors

    from cementleak_stats.cohort.cells import parsing

    with parsing(frame):
        try:
            schema.to_pandera().validate(frame, lazy=True)
        except SchemaErrors:
            return False
    return True


def _raw_tables():
    from cementleak_stats.cohort.read import read_table
    from cementleak_stats.cohort.schema import cohort_schema, repeated_schema
    from cementleak_stats.spec import load_spec

    spec = load_spec(BAD / "study.yaml")
    cohort = read_table(BAD / "base_cohort.csv", labelled=[v.header for v in spec.variables if v.kind != "continuous"])
    repeated = read_table(BAD / "base_outcomes.csv", labelled=[spec.repeated.timepoint])
    ids = set(cohort[spec.study.id_column].astype(str))
    return [(cohort, cohort_schema(spec)), (repeated, repeated_schema(spec, cohort_ids=ids))]


def test_clean_tables_pass_the_pre_check_and_pandera():
    for frame, schema in _raw_tables():
        assert schema.passes(frame) and _pandera_finds_nothing(frame, schema)


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_pre_check_passes_exactly_when_pandera_finds_nothing(data):
    """Random cells, a dropped column or a duplicated row in the clean tables: the pre-check
    (cohort/schema.py TableRules.passes) lets a table through only when pandera finds nothing."""
    from cementleak_stats.cohort.cells import parsing

    frame, schema = data.draw(st.sampled_from(_raw_tables()))
    frame = frame.copy()
    for _ in range(data.draw(st.integers(0, 3))):
        row = data.draw(st.sampled_from(list(frame.index)))
        column = data.draw(st.sampled_from(list(frame.columns)))
        frame.at[row, column] = data.draw(st.sampled_from(_CELLS))
    action = data.draw(st.sampled_from(["none", "drop", "duplicate"]))
    if action == "drop":
        frame = frame.drop(columns=data.draw(st.sampled_from(list(frame.columns))))
    elif action == "duplicate":
        frame = pd.concat([frame, frame.iloc[[0]].set_axis([frame.index.max() + 1])])
    with parsing(frame):
        fast = schema.passes(frame)
    assert fast == _pandera_finds_nothing(frame, schema)
