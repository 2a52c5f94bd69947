"""``cementleak analyze --out DIR``: every table as tidy CSV (and JSON), every figure as PNG/SVG/PDF.

File names and columns are a documented contract (README, "Results as files"): auditors and
other tools read them.  The directory is written atomically: into a temporary sibling first,
then swapped in, so a failed run leaves the previous results intact.  No patient identifier is
written (predictions are indexed by row order of the analysed data).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from . import presentation as P
from .figures import save_figure
from .study import StudyResults


def _csv(frame: pd.DataFrame, path: Path) -> None:
    frame.to_csv(path, index=False, lineterminator="\n", float_format="%.10g")


def results_tables(r: StudyResults) -> dict[str, pd.DataFrame]:
    """The tidy result tables by file stem (the README documents each one's columns)."""
    ph = r.ph.table
    tables = {
        "cox_univariable": r.screen,
        "cox_multivariable": r.model.summary,
        "cox_model_tests": r.model_tests,
        "ph_test": ph,
        "concordance": r.concordance,
        "nomogram_points": r.nomogram.points,
        "nomogram_total": r.nomogram.total,
        "predictions": r.predictions,
        "validation": r.validation,
        "calibration": r.calibration.groups,
        "calibration_metrics": r.calibration.metrics,
        "decision_curve": r.decision_curve,
        "table1": r.baseline.tidy,
        "study_checks": r.checks,
        "logistic_sensitivity": r.logistic.table,
        "patient_flow": r.data.flow,
        "baseline_survival": r.model.baseline,
    }
    if r.validation_honest is not None:
        tables["validation_honest"] = r.validation_honest
    if r.event_details is not None:
        tables["event_details"] = r.event_details.tidy
    if r.outcomes is not None:
        tables["outcomes_tests"] = r.outcomes.tests
        tables["outcomes_descriptive"] = r.outcomes.descriptives
        tables["outcomes_mixed_models"] = r.outcomes.mixed_models
    return tables


def write_results(r: StudyResults, out_dir: Path, *, figures: bool = True,
                  progress: Callable[[str], None] | None = None) -> list[Path]:
    """Write every results table and figure into ``out_dir`` (replaced atomically)."""
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}-tmp-"))
    try:
        for name, frame in results_tables(r).items():
            if progress:
                progress(f"table {name}")
            _csv(frame, tmp / f"{name}.csv")
        meta = {"provenance": {k: v for k, v in r.provenance.__dict__.items()},
                "predictors": list(r.predictors), "horizon": r.spec.outcome.horizon,
                "baseline_survival_at_horizon": r.model.baseline_survival(), "n": len(r.analysed),
                "n_events": int(r.analysed[r.spec.outcome.event].sum())}
        (tmp / "summary.json").write_text(json.dumps(meta, indent=2, sort_keys=True, default=str) + "\n")
        if figures:
            fig_dir = tmp / "figures"
            for name, make in P.FIGURES.items():
                if progress:
                    progress(f"figure {name}")
                fig = make(r)
                if fig is None:
                    continue
                save_figure(fig, fig_dir / name, formats=("png", "svg", "pdf"), dpi=300)
                plt.close(fig)
        old = None
        if out_dir.exists():
            old = out_dir.with_name(f".{out_dir.name}-old-{os.getpid()}")
            os.replace(out_dir, old)
        os.replace(tmp, out_dir)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return sorted(p for p in out_dir.rglob("*") if p.is_file())
