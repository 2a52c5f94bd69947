"""Make the input of tests/reference/reliability_mi.R: m = 5 imputed copies of the shipped cohort.

Run from the repository root: ``.venv/bin/python tests/reference/reliability_mi_make.py``.
It blanks a fixed set of cells of data/cohort.csv (seed 6), imputes them with
:func:`cementleak_stats.imputation.impute_cohort` (seed 2025) and writes the long table
``reliability_mi_imputations.csv`` (``.imp`` 0 = the incomplete data, 1..5 = the imputations;
``.id`` = row), which R ``mice::as.mids`` reads.  The R script then fits ``coxph`` on each
imputation and pools with ``mice::pool``; the Python test pools the same stored imputations with
:func:`cementleak_stats.imputation.pool_cox` and compares.  The stored imputations are data, not
expected numbers: the reference numbers all come from R.
"""

from pathlib import Path

import numpy as np
import pandas as pd

from cementleak_stats.imputation import impute_cohort
from cementleak_stats.spec import load_spec

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
PREDICTORS = ["ct_value_hu", "fracture_severity", "cortical_fracture", "cement_viscosity", "cement_volume_ml"]
BLANK = {"ct_value_hu": 10, "fracture_severity": 6, "cement_viscosity": 8}


def incomplete_cohort() -> pd.DataFrame:
    spec = load_spec(REPO / "study.yaml")
    cohort = pd.read_csv(REPO / "data" / "cohort.csv")
    rng = np.random.default_rng(6)
    for col, k in BLANK.items():
        cohort.loc[rng.choice(len(cohort), k, replace=False), col] = None
    keep = [spec.study.id_column, *PREDICTORS, spec.outcome.time, spec.outcome.event]
    return cohort[keep]


def main() -> None:
    spec = load_spec(REPO / "study.yaml")
    cohort = incomplete_cohort()
    done = impute_cohort(spec, cohort, PREDICTORS, m=5, rng=np.random.default_rng(2025))
    frames = [cohort.assign(**{".imp": 0})] + [d.assign(**{".imp": k}) for k, d in enumerate(done, start=1)]
    long = pd.concat([f.assign(**{".id": np.arange(1, len(f) + 1)}) for f in frames], ignore_index=True)
    long = long[[".imp", ".id", *[c for c in cohort.columns if c != spec.study.id_column]]]
    for c in PREDICTORS:
        if spec.variable(c).kind != "continuous":
            long[c] = long[c].astype(object)
    long.to_csv(HERE / "reliability_mi_imputations.csv", index=False, lineterminator="\n", float_format="%.10g")


if __name__ == "__main__":
    main()
