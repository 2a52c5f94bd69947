"""The exported model file: the frozen multivariable model as plain data (``model.json`` of a
results folder), built from an analysis's results, and the model that ``predict`` scores with.

Reading, checking and scoring the file live in :mod:`cementleak_stats.model_file` (standard
library only: ``predict`` stays light).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import InputError
from ..model_file import (
    MODEL_FILE,
    MODEL_FORMAT,
    MODEL_FORMAT_VERSION,
    changed_inputs,
    model_problem,
    read_model_file,
)

if TYPE_CHECKING:
    from ..spec import StudySpec
    from ..study import StudyResults

__all__ = ["MODEL_FILE", "MODEL_FORMAT", "MODEL_FORMAT_VERSION", "changed_inputs", "model_file", "model_is_current",
           "model_problem", "read_model_file", "scoring_model"]


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
    the horizon, and the survival at every horizon of the study; ``penalizer``); ``predictors`` (per predictor: label, unit, kind, coding, its
    terms with coefficients, minimum contribution, and levels, labels and aliases, or the
    nomogram's axis, the study file's range and the development median); ``study_variables``
    (every variable the study file defines); ``nomogram`` (``scale`` points per unit of lp,
    ``intercept``, the ``points`` axis rows: predictor, value, contribution, points);
    ``cohorts`` (where the model was developed and tested: :func:`~.calculator.model_cohorts`).

    Risk by the horizon = 1 - exp(-H0) ** exp(sum coef x - centre).
    """
    from ..calculator import model_cohorts

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
            # S0 at every horizon of the study (outcome.horizons), shortest first: a risk axis each on the nomogram
            "baseline_survival_at_horizons": [{"horizon": float(h), "survival": float(m.baseline_survival(h))}
                                              for h in sorted(r.spec.outcome.all_horizons)],
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
    from ..study import run_study

    return model_file(run_study(spec, progress=progress, notify=notify)), "analysis results"
