"""Helpers shared by tests/test_cox.py, test_ph.py and test_discrimination.py (no tests here).

The R references are ``tests/reference/survival_<case>.json``, written by
``Rscript tests/reference/survival_reference.R`` (R 4.2, survival 3.5, riskRegression):

* ``rossi``   — the test study tests/studies/rossi/ (lifelines' Rossi recidivism data);
* ``lung``    — the test study tests/studies/lung/ (R survival::lung: days, missing values,
  complete-case analysis, an ordinal score with a one-patient level);
* ``gbsg2``   — the test study tests/studies/gbsg2/ (GBSG-2 breast cancer: years, a
  three-level nominal predictor, patients censored before the first event);
* ``fixture`` — a synthetic cohort in the study layout with many tied times
  (tests/reference/data/study_fixture.csv, made by survival_make_fixture.R), with study.yaml;
* ``cohort``  — the shipped synthetic cohort data/cohort.csv, with study.yaml.

Each holds the univariable screen, the selected variables and, per model ("main" = the
study's model; "factor" = one with a three-level factor; "coarse" = two binary variables, so
many tied risk scores), coxph / survfit / predict / cox.zph / concordance / Score results and
the calibration line.  The cohort is the analysed one (after the complete-case step).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cementleak_stats.cohort.io import load_study_data
from cementleak_stats.spec import StudySpec, load_spec

REPO = Path(__file__).resolve().parents[1]
REF = REPO / "tests" / "reference"

#: case -> (study file, cohort file or None for the study file's own)
CASES = {
    "rossi": ("tests/studies/rossi/study.yaml", None),
    "lung": ("tests/studies/lung/study.yaml", None),
    "gbsg2": ("tests/studies/gbsg2/study.yaml", None),
    "fixture": ("study.yaml", "tests/reference/data/study_fixture.csv"),
    "cohort": ("study.yaml", None),
}


@dataclass(frozen=True)
class Case:
    name: str
    spec: StudySpec
    cohort: pd.DataFrame
    ref: dict

    @property
    def time(self) -> np.ndarray:
        return self.cohort[self.spec.outcome.time].to_numpy(float)

    @property
    def event(self) -> np.ndarray:
        return self.cohort[self.spec.outcome.event].to_numpy()

    def model(self, key: str) -> dict:
        return self.ref["models"][key]


def reference(name: str) -> dict | None:
    path = REF / f"survival_{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


@cache
def load_case(name: str) -> Case:
    """The study spec, the validated cohort (the package's own loader) and the R reference."""
    study, data = CASES[name]
    ref = reference(name)
    if ref is None:
        pytest.skip(f"no R reference for {name}: run Rscript tests/reference/survival_reference.R")
    data_path = REPO / ref["source"]["data_file"]
    if not data_path.exists():
        pytest.skip(f"{data_path} does not exist")
    if hashlib.md5(data_path.read_bytes()).hexdigest() != ref["source"]["data_md5"]:
        pytest.fail(f"{data_path} changed after its R reference was computed: rerun "
                    "`Rscript tests/reference/survival_reference.R` and commit the JSON")
    spec = load_spec(REPO / study)
    spec = spec.model_copy(update={"repeated": None, **({"cohort_file": data} if data else {})})
    return Case(name, spec, load_study_data(spec).analysed, ref)


def model_cases() -> list[tuple[str, str]]:
    """(case, model key) pairs that have an R reference, for parametrize."""
    out = []
    for name in CASES:
        ref = reference(name)
        if ref is not None:
            out += [(name, key) for key in ref["models"]]
    return out


def case_ids(cases: list[tuple[str, str]]) -> list[str]:
    return [f"{c}-{m}" for c, m in cases]


def fit_case(name: str, key: str) -> tuple[Case, dict, object]:
    """(case, R model reference, CoxModel fitted on the same variables)."""
    from cementleak_stats.models.cox import fit_cox_model

    case = load_case(name)
    rm = case.model(key)
    return case, rm, fit_cox_model(case.spec, case.cohort, rm["variables"])
