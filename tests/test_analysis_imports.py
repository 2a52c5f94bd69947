"""The analysis imports a library when a step uses it, not before (issue 16).

Checked on ``sys.modules`` in a new process, not on a clock: importing the pipeline
(``cementleak_stats.study``, the CLI), Table 1 and an ordinary Cox fit load neither
statsmodels (its ``api`` alone ~0.45 s), lifelines (~0.15 s, needed for penalized or irregular
fits only) nor tableone (Table 1 is computed directly; tests/test_tables_tableone.py); the
logistic sensitivity analysis then imports statsmodels' Logit module, not ``statsmodels.api``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

_PROBE = """
import json, sys
seen = {}
def loaded(step):
    seen[step] = sorted(m for m in ("statsmodels", "statsmodels.api", "lifelines", "tableone") if m in sys.modules)

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
fit_cox_model(spec, cohort, predictors)
loaded("cox")
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
    assert seen["import"] == seen["table 1"] == seen["cox"] == []
    assert seen["logistic"] == ["statsmodels"]  # the Logit module, not statsmodels.api
