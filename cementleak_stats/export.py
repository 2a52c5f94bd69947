"""``cementleak analyze --out DIR``: every table as tidy CSV (and JSON), every figure in the study's
``report.figure_formats`` (PNG and PDF by default; drawn in parallel, after the tables).

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
import math
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from .errors import InputError

if TYPE_CHECKING:
    from .spec import StudySpec
    from .study import StudyResults
    

def _csv(frame: pd.DataFrame, path: Path) -> None:
    frame.to_csv(path, index=False, lineterminator="\n", float_format="%.10g")


def _write_json(data: object, path: Path) -> None:
    path.write_text(json.dumps(data, indent=1, sort_keys=False, allow_nan=False) + "\n", encoding="utf-8")


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
        "patient_flow": r.data.flow,
        "baseline_survival": r.model.baseline,
    }
    if r.validation_honest is not None:
        tables["validation_honest"] = r.validation_honest
    if r.event_details is not None:
        tables["event_details"] = r.event_details.tidy
    if r.logistic is not None:
        tables["logistic_sensitivity"] = r.logistic.table
    if r.model_imputed is not None:
        tables["cox_multiple_imputation"] = r.model_imputed.pooled
    if r.validation_cohort is not None:  # the model applied unchanged to another cohort (or a held-out split)
        v = r.validation_cohort
        tables.update({"validation_cohort_discrimination": v.discrimination, "validation_cohort_calibration": v.calibration,
                       "validation_cohort_groups": v.groups, "validation_cohort_decision_curve": v.decision_curve,
                       "validation_cohort_case_mix": v.case_mix, "validation_cohort_table1": v.baseline.tidy,
                       "validation_cohort_predictions": v.predictions})
    if r.assessment is not None:  # every horizon with intervals, both cohorts (assessment.py)
        from .assessment import results_tables as assessment_tables

        tables.update(assessment_tables(r.assessment))
    if r.lasso is not None:  # analysis.selection: lasso (the result's own tidy tables)
        tables.update(r.lasso.tables())
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


def stage_results(r: StudyResults, out_dir: Path, *, figures: bool = True,
                  progress: Callable[[str], None] | None = None, parent: Path | None = None) -> Path:
    """Write every results table and figure into a new hidden folder and return it;
    :func:`commit_results` swaps it in as ``out_dir``, :func:`discard_results` removes it.

    The folder is a sibling of ``out_dir``, or a child of ``parent`` (same file system): a render
    replaces the whole output folder, so ``cementleak report`` stages beside it, renders, and
    swaps the results in only when the render succeeded — results and report change together.
    """
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    parent = out_dir.parent if parent is None else Path(parent)
    _recover(out_dir)
    _recover(parent / out_dir.name)
    tmp = Path(tempfile.mkdtemp(dir=parent, prefix=f".{out_dir.name}-tmp-{os.getpid()}-"))
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
        _write_json(model_file(r), tmp / MODEL_FILE)
        if figures:  # after the tables: a figure that cannot be drawn costs no statistics
            from . import presentation as P
            from .figures.save import save_figures

            _, failed = save_figures(lambda name: P.FIGURES[name](r), list(P.FIGURES), tmp / "figures",
                                     formats=r.spec.report.figure_formats, dpi=300, progress=progress)
            if failed:
                (tmp / NOT_DRAWN).write_text("".join(f"{n}: {e}\n" for n, e in failed.items()), encoding="utf-8")
        if not (tmp / NOT_DRAWN).exists():  # a figure not drawn is tried again by the next run
            _write_stamp(tmp, results_key(r, figures=figures))
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return tmp


def commit_results(staged: Path, out_dir: Path) -> list[Path]:
    """Replace ``out_dir`` by the staged results (two renames; a run killed between them is
    repaired by the next run, see the module docstring).  Returns the files written."""
    out_dir = Path(out_dir)
    try:
        old = None
        if out_dir.exists():
            old = out_dir.with_name(f".{out_dir.name}-old-{os.getpid()}")
            os.replace(out_dir, old)
        os.replace(staged, out_dir)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staged, ignore_errors=True)
        raise
    return sorted(p for p in out_dir.rglob("*") if p.is_file() and p.name != STAMP)


def discard_results(staged: Path) -> None:
    """Remove staged results that will not be used (the previous results stay)."""
    shutil.rmtree(staged, ignore_errors=True)


# --- a results folder that is already current is not written again ---------------------------------
#: the signed stamp of a results folder: its results key and the SHA-256 of each of its files
STAMP = ".results-stamp"
_STAMP_KIND = "results-folder"


def results_key(r: StudyResults, *, figures: bool = True) -> str:
    """What a results folder's bytes are made from: the analysis key
    (:meth:`~.provenance.Provenance.cache_key`: study file, data, code, library versions), the rest
    of the provenance that ``summary.json`` shows (git commit, study file name) and whether
    figures were drawn (their formats are in the study file)."""
    import hashlib

    prov = {k: v for k, v in r.provenance.__dict__.items()}
    body = json.dumps({"key": r.provenance.cache_key(), "provenance": prov, "figures": figures}, sort_keys=True, default=str)
    return hashlib.sha256(body.encode()).hexdigest()[:32]


def _folder_files(folder: Path) -> dict[str, str]:
    """SHA-256 of every file under ``folder`` (but the stamp) by relative path."""
    import hashlib

    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and p.name != STAMP}


def _write_stamp(folder: Path, key: str) -> None:
    """Sign ``folder``'s files for ``key`` (HMAC with this user's cache key, :mod:`.cache`); no
    stamp, and so a rewrite next time, when there is no usable cache key."""
    from .cache import CacheUnavailable, write_signed

    body = json.dumps({"key": key, "files": _folder_files(folder)}, sort_keys=True).encode()
    try:
        write_signed(folder / STAMP, body, kind=_STAMP_KIND)
    except CacheUnavailable:
        pass


def results_current(r: StudyResults, out_dir: Path, *, figures: bool = True) -> bool:
    """True when ``out_dir`` holds exactly the files a write of ``r`` gives, untouched: its stamp
    is signed by this user's machine, has :func:`results_key` and every file's SHA-256 (a file
    missing, added or edited, or a stamp made elsewhere: False, and the folder is rewritten)."""
    from .cache import CacheUnavailable, UntrustedEntry, read_signed

    out_dir = Path(out_dir)
    try:
        stamp = json.loads(read_signed(out_dir / STAMP, kind=_STAMP_KIND))
        return stamp["key"] == results_key(r, figures=figures) and stamp["files"] == _folder_files(out_dir)
    except (OSError, ValueError, KeyError, TypeError, UntrustedEntry, CacheUnavailable):
        return False


#: the file of a results folder that lists the figures that could not be drawn, with the error
NOT_DRAWN = "figures-not-drawn.txt"


class FiguresNotDrawn(RuntimeError):
    """Some figures could not be drawn; the results tables and the other figures were written."""


def write_results(r: StudyResults, out_dir: Path, *, figures: bool = True,
                  progress: Callable[[str], None] | None = None) -> list[Path]:
    """Write every results table and figure into ``out_dir`` (replaced atomically).

    Raises
    ------
    FiguresNotDrawn
        after the results were written, when a figure could not be drawn (the tables and the
        other figures are in ``out_dir``; :data:`NOT_DRAWN` there lists the failures).
    """
    files = commit_results(stage_results(r, out_dir, figures=figures, progress=progress), out_dir)
    failed = Path(out_dir) / NOT_DRAWN
    if failed.exists():
        raise FiguresNotDrawn(f"figures that could not be drawn (the results tables and the other figures were "
                              f"written to {out_dir}):\n" + failed.read_text(encoding="utf-8"))
    return files


# --- the exported model file -------------------------------------------------------------------
# reading, checking and scoring live in model_file.py (standard library only: ``predict`` stays light)
from .model_file import (  # noqa: E402  (re-exported: the names callers have used)
    MODEL_FILE,
    MODEL_FORMAT,
    MODEL_FORMAT_VERSION,
    changed_inputs,
    model_problem,
    read_model_file,
)


def _predictors(r: StudyResults) -> list[dict[str, Any]]:
    """Per predictor of the model: what a value is checked against and how it is coded and scored."""
    nomo, model = r.nomogram, r.model
    mins = nomo.points.groupby("predictor", sort=False)["contribution"].min()
    out = []
    for name in model.variables:
        var = r.spec.variable(name)
        entry: dict[str, Any] = {
            "name": name, "label": var.label, "unit": var.unit or "", "display": var.display, "kind": var.kind,
            "coding": var.coding, "terms": [{"term": t.name, "level": t.level, "coef": float(model.coef[t.name])}
                                            for t in model.terms if t.variable == name],
            "min_contribution": float(mins[name])}
        if var.kind == "continuous":
            axis = nomo.points.loc[nomo.points["predictor"] == name, "value"].astype(float)
            entry.update({"min": float(axis.min()), "max": float(axis.max()),
                          "range": [float(x) for x in var.range] if var.range is not None else None,
                          "default": float(r.analysed[name].astype(float).median())})
        else:
            entry.update({"levels": list(var.levels), "reference": var.ref_level,
                          "level_labels": [var.level_label(lv) for lv in var.levels], "aliases": dict(var.aliases)})
        out.append(entry)
    return out


def model_file(r: StudyResults) -> dict[str, Any]:
    """The frozen multivariable model as plain data (format 2): the one file that ``predict``,
    batch scoring and the report's calculator read (``model.json`` in the results folder;
    docs/results-files.md and ``model_file.schema.json`` document it; :mod:`.model_file` reads it).

    Keys: ``format``/``format_version``; ``study`` (title, file name, SHA-256, synthetic);
    ``inputs`` (what the model was fitted from: the study file's SHA-256, every data file's
    SHA-256 by path relative to the study file, the package version with its source digest);
    ``provenance`` (seed, B, git commit, library versions); ``outcome`` (event, label, time
    unit, horizon); ``model`` (per term: ``term``, ``variable``, ``level``, ``coef`` per unit and
    ``mean``; ``centre`` = sum coef x mean; the Efron baseline cumulative hazard and survival at
    the horizon; ``penalizer``); ``predictors`` (per predictor: label, unit, kind, coding, its
    terms with coefficients, minimum contribution, and levels, labels and aliases, or the
    nomogram's axis, the study file's range and the development median); ``study_variables``
    (every variable the study file defines); ``nomogram`` (``scale`` points per unit of lp,
    ``intercept``, the ``points`` axis rows: predictor, value, contribution, points);
    ``cohorts`` (where the model was developed and tested: :func:`~.calculator.model_cohorts`).

    Risk by the horizon = 1 - exp(-H0) ** exp(sum coef x - centre).
    """
    from .calculator import model_cohorts

    m, nomo, prov = r.model, r.nomogram, r.provenance
    base = r.spec.base_dir
    coef, means = m.coef, m.means
    names = [t.name for t in m.terms]
    h0 = -math.log(m.baseline_survival()) if m.baseline_survival() > 0 else math.inf
    files = {os.path.relpath(p, base).replace(os.sep, "/"): prov.data_sha256.get(Path(p).name, "")
             for p in r.data.files}
    points = [{"predictor": row.predictor, "value": row.value if isinstance(row.value, str) else float(row.value),
               "contribution": float(row.contribution), "points": float(row.points)}
              for row in nomo.points.itertuples()]
    return {
        "format": MODEL_FORMAT,
        "format_version": MODEL_FORMAT_VERSION,
        "study": {"title": r.spec.study.title, "file": prov.study_file, "sha256": prov.study_sha256,
                  "synthetic": bool(r.spec.study.synthetic)},
        "inputs": {"study_sha256": prov.study_sha256, "files": files, "code": prov.package_version},
        "provenance": {"seed": prov.seed, "bootstrap_b": prov.bootstrap_b, "git_commit": prov.git_commit,
                       "versions": prov.versions},
        "outcome": {"event": r.spec.outcome.event, "event_label": r.spec.outcome.event_label,
                    "time_unit": r.spec.outcome.time_unit, "horizon": float(m.horizon)},
        "model": {
            "variables": list(m.variables),
            "terms": [{"term": t.name, "variable": t.variable, "level": t.level, "coef": float(coef[t.name]),
                       "mean": float(means[t.name])} for t in m.terms],
            "centre": float(means[names].to_numpy(float) @ coef[names].to_numpy(float)),  # as nomogram._centre
            "baseline_cumhaz_at_horizon": h0,
            "baseline_survival_at_horizon": float(m.baseline_survival()),
            "penalizer": float(m.penalizer),
        },
        "predictors": _predictors(r),
        "study_variables": [v.name for v in r.spec.variables],
        "nomogram": {"scale": float(nomo.scale), "intercept": float(nomo.intercept), "points": points},
        "cohorts": model_cohorts(r),
    }


def model_is_current(data: dict[str, Any], spec: StudySpec) -> bool:
    """True when the model file was fitted from this study file and these data files (as they
    are now), so it is the model a fresh analysis fits (:func:`~.model_file.changed_inputs`)."""
    return spec.source is not None and not changed_inputs(data, spec.source)


def _another_study(path: Path | str, data: dict[str, Any], spec: StudySpec) -> InputError:
    return model_problem(path, f"fitted with another study file (SHA-256 {data['study']['sha256'][:12]}…, "
                               f"this one {spec.digest()[:12]}…)",
                         fix=f"use the study file it was made with, or run `cementleak analyze {spec.source or ''}`".rstrip())


def scoring_model(spec: StudySpec, *, model: Path | None = None, results_dir: Path | None = None,
                  notify: Callable[[str], None] | None = None,
                  progress: Callable[[str, int, int], None] | None = None) -> tuple[dict[str, Any], str]:
    """The model file's data that ``predict`` (and batch scoring) score with, and where it came from.

    ``model`` given: that model file, as it is (it must have been made with this study file;
    the data are not needed).  Otherwise the model file in ``results_dir`` when it is current
    (:func:`model_is_current`: same study file and data), else the model file's data built from
    the analysis results — loaded from the cache, computed only when no valid cache entry exists.
    """
    if model is not None:
        data = read_model_file(model)
        if data["study"]["sha256"] != spec.digest():
            raise _another_study(model, data, spec)
        return data, str(model)
    path = Path(results_dir) / MODEL_FILE if results_dir is not None else None
    if path is not None and path.is_file():
        try:
            data = read_model_file(path)
            if model_is_current(data, spec):
                return data, str(path)
        except InputError:
            pass  # not a usable model file: the analysis gives the model
    from .study import run_study

    return model_file(run_study(spec, progress=progress, notify=notify)), "analysis results"
