"""``cementleak analyze --out DIR``: every table as tidy CSV (and JSON), every figure as PNG/SVG/PDF.

File names and columns are a documented contract (README, "Results as files"): auditors and
other tools read them.  The directory is written atomically: into a temporary sibling first,
then swapped in, so a failed run leaves the previous results intact.  No patient identifier is
written (predictions are indexed by row order of the analysed data).

A run killed mid-way (SIGKILL: no clean-up code runs) leaves its hidden temporary sibling
``.<name>-tmp-<pid>-*``; the next run removes the siblings of dead processes and, if the kill
fell between the two renames of the swap, puts the previous results back first.
"""

from __future__ import annotations

import json
import os
import re
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
    if r.model_imputed is not None:
        tables["cox_multiple_imputation"] = r.model_imputed.pooled
    if r.validation_cohort is not None:  # the model applied unchanged to another cohort (or a held-out split)
        v = r.validation_cohort
        tables.update({"validation_cohort_discrimination": v.discrimination, "validation_cohort_calibration": v.calibration,
                       "validation_cohort_groups": v.groups, "validation_cohort_decision_curve": v.decision_curve,
                       "validation_cohort_case_mix": v.case_mix, "validation_cohort_table1": v.baseline.tidy,
                       "validation_cohort_predictions": v.predictions})
    if r.outcomes is not None:
        tables["outcomes_tests"] = r.outcomes.tests
        tables["outcomes_descriptive"] = r.outcomes.descriptives
        tables["outcomes_mixed_models"] = r.outcomes.mixed_models
    return tables


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def _recover(out_dir: Path) -> None:
    """Remove the temporary siblings of ``out_dir`` left by killed runs (dead pids only).

    A sibling ``.<name>-old-<pid>`` with no ``out_dir`` means the run was killed between moving
    the previous results aside and moving the new ones in: the previous results are restored.
    """
    pattern = re.compile(rf"\.{re.escape(out_dir.name)}-(tmp|old)-(\d+)(-.*)?")
    for p in sorted(out_dir.parent.glob(f".{out_dir.name}-*")):
        m = pattern.fullmatch(p.name)
        if m is None or not p.is_dir() or _alive(int(m.group(2))):
            continue
        if m.group(1) == "old" and not out_dir.exists():
            os.replace(p, out_dir)
        else:
            shutil.rmtree(p, ignore_errors=True)


def write_results(r: StudyResults, out_dir: Path, *, figures: bool = True,
                  progress: Callable[[str], None] | None = None) -> list[Path]:
    """Write every results table and figure into ``out_dir`` (replaced atomically)."""
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    _recover(out_dir)
    tmp = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}-tmp-{os.getpid()}-"))
    try:
        for name, frame in results_tables(r).items():
            if progress:
                progress(f"table {name}")
            _csv(frame, tmp / f"{name}.csv")
        meta = {"provenance": {k: v for k, v in r.provenance.__dict__.items()},
                "predictors": list(r.predictors), "horizon": r.spec.outcome.horizon,
                "baseline_survival_at_horizon": r.model.baseline_survival(), "n": len(r.analysed),
                "n_events": int(r.analysed[r.spec.outcome.event].sum()),
                "missing_data": r.spec.analysis.missing_data, "penalizer": r.model.penalizer,
                "notes": list(r.notes)}
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
