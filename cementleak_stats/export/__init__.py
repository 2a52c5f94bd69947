"""``cementleak analyze --out DIR``: every table as tidy CSV (and JSON), every figure in the study's
``report.figure_formats`` (PNG and PDF by default; drawn in parallel, after the tables).

File names and columns are a documented contract (README, "Results as files"): auditors and
other tools read them.  The directory is written atomically: into a temporary sibling first,
then swapped in, so a failed run leaves the previous results intact.  No patient identifier is
written (predictions are indexed by row order of the analysed data).

A run killed mid-way (SIGKILL: no clean-up code runs) leaves its hidden temporary sibling
``.<name>-tmp-<pid>-*``; the next run removes the siblings of dead processes and, if the kill
fell between the two renames of the swap, puts the previous results back first.

The results folder's ``model.json`` (the exported model: what ``predict`` scores with) is built
in :mod:`.model` and re-exported here.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from .workers import FigureWorkers
    from ..figure_cache import SharedFigures
    from ..study import StudyResults
    

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
        from ..assessment import results_tables as assessment_tables

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


def stage_results(r: StudyResults, out_dir: Path, *, figures: bool = True, formats: Sequence[str] | None = None,
                  progress: Callable[[str], None] | None = None, parent: Path | None = None,
                  workers: FigureWorkers | None = None, shared: SharedFigures | None = None) -> Path:
    """Write every results table and figure into a new hidden folder and return it;
    :func:`commit_results` swaps it in as ``out_dir``, :func:`discard_results` removes it.

    The folder is a sibling of ``out_dir``, or a child of ``parent`` (same file system): a render
    replaces the whole output folder, so ``cementleak report`` stages beside it, renders, and
    swaps the results in only when the render succeeded — results and report change together.
    The figures are written in ``formats`` (default: the study's ``report.figure_formats``), by
    ``workers`` when given (started before the analysis: :class:`~.figures.save.FigureWorkers`).
    With ``shared`` (a report's figures of these results, :mod:`..figure_cache`), each PNG is the
    one drawing of that figure that the report's documents show too, drawn by whoever came first.
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
            from ..figures.save import save_figures
            from ..i18n import active

            names = workers.run(_draw_figure) if workers is not None else _draw_figure()
            lang = active()
            _, failed = save_figures(partial(_draw_figure, r, lang), names, tmp / "figures",
                                     formats=_formats(r, formats), progress=progress, lang=lang,
                                     executor=workers.executor if workers is not None else None,
                                     png=None if shared is None else shared.in_language(lang))
            if failed:
                (tmp / NOT_DRAWN).write_text("".join(f"{n}: {e}\n" for n, e in failed.items()), encoding="utf-8")
        if not (tmp / NOT_DRAWN).exists():  # a figure not drawn is tried again by the next run
            _write_stamp(tmp, results_key(r, figures=figures, formats=formats))
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return tmp


def _draw_figure(r: StudyResults | None = None, lang: str = "", name: str = "") -> Figure | list[str] | None:
    """Figure ``name`` of ``r`` in language ``lang`` (:data:`.presentation.FIGURES`), drawn in a
    figure worker; without arguments the names of the figures (read where the drawing is done)."""
    from .. import presentation as P
    from ..i18n import language

    if r is None:
        return list(P.FIGURES)
    with language(lang):
        return P.FIGURES[name](r)


def _formats(r: StudyResults, formats: Sequence[str] | None) -> tuple[str, ...]:
    return tuple(r.spec.report.figure_formats if formats is None else formats)


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


def results_key(r: StudyResults, *, figures: bool = True, formats: Sequence[str] | None = None) -> str:
    """What a results folder's bytes are made from: the analysis key
    (:meth:`~.provenance.Provenance.cache_key`: study file, data, code, library versions), the rest
    of the provenance that ``summary.json`` shows (git commit, study file name) and the formats
    the figures were written in (none: ``figures`` False)."""
    import hashlib

    prov = {k: v for k, v in r.provenance.__dict__.items()}
    drawn = list(_formats(r, formats)) if figures else []
    body = json.dumps({"key": r.provenance.cache_key(), "provenance": prov, "figures": drawn}, sort_keys=True, default=str)
    return hashlib.sha256(body.encode()).hexdigest()[:32]


def _folder_files(folder: Path) -> dict[str, str]:
    """SHA-256 of every file under ``folder`` (but the stamp) by relative path."""
    import hashlib

    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and p.name != STAMP}


def _write_stamp(folder: Path, key: str) -> None:
    """Sign ``folder``'s files for ``key`` (HMAC with this user's cache key, :mod:`.cache`); no
    stamp, and so a rewrite next time, when there is no usable cache key."""
    from ..cache import CacheUnavailable, write_signed

    body = json.dumps({"key": key, "files": _folder_files(folder)}, sort_keys=True).encode()
    try:
        write_signed(folder / STAMP, body, kind=_STAMP_KIND)
    except CacheUnavailable:
        pass


def results_current(r: StudyResults, out_dir: Path, *, figures: bool = True, formats: Sequence[str] | None = None) -> bool:
    """True when ``out_dir`` holds exactly the files a write of ``r`` gives, untouched: its stamp
    is signed by this user's machine, has :func:`results_key` and every file's SHA-256 (a file
    missing, added or edited, or a stamp made elsewhere: False, and the folder is rewritten)."""
    from ..cache import CacheUnavailable, UntrustedEntry, read_signed

    out_dir = Path(out_dir)
    try:
        stamp = json.loads(read_signed(out_dir / STAMP, kind=_STAMP_KIND))
        return stamp["key"] == results_key(r, figures=figures, formats=formats) and stamp["files"] == _folder_files(out_dir)
    except (OSError, ValueError, KeyError, TypeError, UntrustedEntry, CacheUnavailable):
        return False


#: the file of a results folder that lists the figures that could not be drawn, with the error
NOT_DRAWN = "figures-not-drawn.txt"


class FiguresNotDrawn(RuntimeError):
    """Some figures could not be drawn; the results tables and the other figures were written."""


def write_results(r: StudyResults, out_dir: Path, *, figures: bool = True, formats: Sequence[str] | None = None,
                  progress: Callable[[str], None] | None = None, workers: FigureWorkers | None = None) -> list[Path]:
    """Write every results table and figure into ``out_dir`` (replaced atomically); ``formats``
    and ``workers`` as :func:`stage_results`.

    Raises
    ------
    FiguresNotDrawn
        after the results were written, when a figure could not be drawn (the tables and the
        other figures are in ``out_dir``; :data:`NOT_DRAWN` there lists the failures).
    """
    files = commit_results(stage_results(r, out_dir, figures=figures, formats=formats, progress=progress,
                                         workers=workers), out_dir)
    failed = Path(out_dir) / NOT_DRAWN
    if failed.exists():
        raise FiguresNotDrawn(f"figures that could not be drawn (the results tables and the other figures were "
                              f"written to {out_dir}):\n" + failed.read_text(encoding="utf-8"))
    return files


# --- the exported model file: export/model.py (re-exported: the names callers have used) ---------
from .model import (  # noqa: E402, F401
    MODEL_FILE,
    MODEL_FORMAT,
    MODEL_FORMAT_VERSION,
    changed_inputs,
    model_file,
    model_is_current,
    model_problem,
    read_model_file,
    scoring_model,
)
