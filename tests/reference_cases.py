"""The R-referenced study cases shared by the horizon, risk-group and comparator tests: the
reference JSON (refused when its data file changed since R wrote it), the study and its data."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from cementleak_stats.cohort.io import load_study_data
from cementleak_stats.spec import load_spec

ROOT = Path(__file__).resolve().parents[1]
REF = ROOT / "tests" / "reference"
CASES = {"shipped": ROOT / "study.yaml", "gbsg2": ROOT / "tests" / "studies" / "gbsg2" / "study.yaml"}


def reference_case(kind: str, name: str):
    """(reference dict, spec, study data) of ``tests/reference/<kind>_<name>.json``."""
    ref = json.loads((REF / f"{kind}_{name}.json").read_text())
    data_file = ROOT / ref["source"]["data_file"]
    if hashlib.md5(data_file.read_bytes()).hexdigest() != ref["source"]["data_md5"]:
        pytest.fail(f"{data_file} changed after its R reference: rerun Rscript tests/reference/{kind}_reference.R")
    spec = load_spec(CASES[name])
    return ref, spec, load_study_data(spec)
