"""The exported model file (``model.json``): read, check a patient, score — standard library only.

``cementleak analyze`` writes the frozen multivariable model as one JSON file
(:func:`cementleak_stats.export.model_file` builds it; docs/results-files.md and
``model_file.schema.json`` document it).  It is the one source that ``cementleak predict``,
batch scoring (``predict --input``) and the report's calculator score with.

This module imports no pandas, NumPy or study-file parser, so ``cementleak predict`` for one
patient starts, checks and scores in a fraction of a second: the file carries everything a
patient's values are checked against (levels, aliases, the study file's ranges, the nomogram's
axis) and every number of the formula.

Formula (format 2), for predictor j with terms t and the patient's coded values x_t:

    contribution_j = sum_t coef_t x_t                (uncentred, as the nomogram)
    points_j       = (contribution_j - min_contribution_j) * scale
    lp             = sum_j contribution_j - centre   (centre = sum_t coef_t mean_t)
    risk           = 1 - S0(horizon) ** exp(lp)

x_t is the number itself (continuous), 1 for the term's level else 0 (binary, nominal, ordinal
with dummy coding) or the level's position 0, 1, 2, ... (ordinal with ``coding: score``).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import InputError, Problem

#: file name of the exported model in the results folder
MODEL_FILE = "model.json"
MODEL_FORMAT = "cementleak-model"
#: 2: ``predictors`` (everything a value is checked and coded with) and ``study_variables``
#: replace format 1's ``calculator`` section; the calculator's page model is derived from them.
MODEL_FORMAT_VERSION = 2
#: JSON Schema (draft 2020-12) of the model file
SCHEMA_FILE = Path(__file__).with_name("model_file.schema.json")

#: the top-level keys every model file of this format has
REQUIRED_KEYS = ("format", "format_version", "study", "inputs", "provenance", "outcome", "model", "predictors",
                 "study_variables", "nomogram", "cohorts")


def model_problem(path: Path | str, rule: str, fix: str = "run `cementleak analyze` to write it again") -> InputError:
    """An :class:`InputError` about the model file itself."""
    return InputError([Problem(file=str(path), rule=rule, fix=fix)], summary="Cannot use the model file")


def read_model_file(path: Path | str) -> dict[str, Any]:
    """The parsed model file, its format and version checked.  Raises InputError naming the file."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise model_problem(path, "no such file") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise model_problem(path, f"not a readable JSON file ({exc})") from None
    if not isinstance(data, dict) or data.get("format") != MODEL_FORMAT:
        raise model_problem(path, f"not a cementleak model file (no \"format\": \"{MODEL_FORMAT}\")")
    if data.get("format_version") != MODEL_FORMAT_VERSION:
        raise model_problem(path, f"model file format {data.get('format_version')!r}; this version of cementleak reads "
                                  f"format {MODEL_FORMAT_VERSION}")
    missing = [k for k in REQUIRED_KEYS if k not in data]
    if missing:
        raise model_problem(path, f"the model file lacks {missing}")
    each = (data.get("model") or {}).get("baseline_survival_at_horizons")
    if each is not None and not (isinstance(each, list) and each and all(
            isinstance(x, dict) and _number(x.get("horizon")) and x["horizon"] > 0
            and _number(x.get("survival")) and 0 <= x["survival"] <= 1 for x in each)):
        raise model_problem(path, "model.baseline_survival_at_horizons is not a list of {horizon > 0, survival in [0, 1]}")
    return data


def _number(x: object) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def study_matches(data: Mapping[str, Any], study: Path) -> bool:
    """True when ``study`` is the study file the model was fitted with (same SHA-256 of its bytes)."""
    try:
        return _sha256(Path(study)) == data["study"]["sha256"]
    except OSError:
        return False


def changed_inputs(data: Mapping[str, Any], study: Path) -> list[str]:
    """Why the model file does not describe what an analysis of ``study`` would fit now
    (empty when it does): the study file or a data file differs from the one it was fitted from.

    Data files are named relative to the study file's folder, as in ``inputs.files``.  The
    package version is not compared: the file is a frozen model in a versioned format, and it
    scores the same under any version that reads the format (``cementleak audit`` compares code).
    """
    study = Path(study)
    if not study_matches(data, study):
        return [f"{study.name} is not the study file the model was fitted with"]
    files = (data.get("inputs") or {}).get("files") or {}
    if not files:
        return ["the model file names no data files"]
    out = []
    for rel, sha in files.items():
        try:
            if _sha256(study.resolve().parent / rel) != sha:
                out.append(f"{rel} changed since the model was fitted")
        except OSError:
            out.append(f"{rel} is missing")
    return out


# --- a patient's values ------------------------------------------------------------------------
def number_label(v: float) -> str:
    """A number as a person writes it: 12, 0.5, 0.0000001 (12 significant digits, at most 12 decimals)."""
    text = f"{float(f'{v:.12g}'):.12f}".rstrip("0").rstrip(".") if math.isfinite(v) and abs(v) < 1e12 else f"{v:g}"
    return "0" if text in ("-0", "") else text


def horizon_label(h: float, unit: str) -> str:
    """A time in English: '5 years', '1 year', '6 months' (the unit singular for 1)."""
    return f"{h:g} {unit[:-1] if h == 1 and unit.endswith('s') else unit}"


def range_text(p: Mapping[str, Any], lo: float, hi: float) -> str:
    unit = f" {p['unit']}" if p.get("unit") else ""
    return f"{number_label(lo)} to {number_label(hi)}{unit}"


def value_range(p: Mapping[str, Any]) -> tuple[float, float]:
    """The numbers a continuous predictor accepts: the nomogram's axis (``min``, ``max``) within
    the study file's ``range`` (the axis, drawn from R's ``pretty()``, can reach past it)."""
    lo, hi = p.get("range") or (-math.inf, math.inf)
    return max(lo, p["min"]), min(hi, p["max"])


def check_value(p: Mapping[str, Any], raw: object, *, file: str) -> tuple[object, Problem | None]:
    """The canonical value of one predictor (a level, or a float), or the problem with it.

    A level may be written as any of the study file's aliases; a number must be finite, inside
    the study file's range and inside the nomogram's axis (the range the model was drawn over).
    """
    name = p["name"]
    if p["kind"] != "continuous":
        text = str(raw).strip()
        level = (p.get("aliases") or {}).get(text, text)
        if level not in p["levels"]:
            return None, Problem(file=file, column=name, value=str(raw)[:80], rule=f"unknown level of {p['label']}",
                                 fix=f"use one of {list(p['levels'])}")
        return level, None
    try:
        value = float(raw)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        value = math.nan
    lo, hi = value_range(p)
    if isinstance(raw, bool) or not math.isfinite(value):
        return None, Problem(file=file, column=name, value=str(raw)[:80], rule=f"{p['label']} must be a finite number",
                             fix=f"enter a number from {range_text(p, lo, hi)}")
    if not lo <= value <= hi:
        return None, Problem(file=file, column=name, value=number_label(value),
                             rule=f"{p['label']} is outside the range the nomogram covers",
                             fix=f"enter a value from {range_text(p, lo, hi)}")
    return value, None


def patient_values(data: Mapping[str, Any], patient: Mapping[str, object], *, file: str = "patient") -> dict[str, object]:
    """Every predictor's canonical value, checked against the model file.

    Raises
    ------
    InputError
        listing every problem (``file`` names where the values came from): a name that is not a
        variable of the study, a missing predictor, an unknown level, a value that is not a
        number, a number outside the nomogram's range.  Study variables that are not in the
        model are ignored.
    """
    import difflib

    preds = data["predictors"]
    names = [p["name"] for p in preds]
    known = set(data["study_variables"]) | set(names)
    problems = []
    for k in patient:
        if k not in known:
            near = difflib.get_close_matches(str(k), names, n=1)
            problems.append(Problem(file=file, column=str(k), rule="not a variable of the study",
                                    fix=(f"did you mean {near[0]}? " if near else "") + f"use the model's variables: {names}"))
    values: dict[str, object] = {}
    for p in preds:
        raw = patient.get(p["name"])
        if raw is None:
            what = f"a number from {range_text(p, *value_range(p))}" if p["kind"] == "continuous" \
                else f"one of {list(p['levels'])}"
            problems.append(Problem(file=file, column=p["name"], rule=f"{p['label']} is missing",
                                    fix=f"every predictor of the model needs a value: add {p['name']}=<{what}>"))
            continue
        value, problem = check_value(p, raw, file=file)
        if problem is not None:
            problems.append(problem)
        else:
            values[p["name"]] = value
    if problems:
        raise InputError(problems, summary="Cannot score this patient")
    return values


# --- scoring -----------------------------------------------------------------------------------
def coded(p: Mapping[str, Any], value: object) -> list[float]:
    """A predictor's value coded as its terms (design.py's coding rules)."""
    if p["kind"] == "continuous":
        return [float(value)]  # type: ignore[arg-type]
    if p["kind"] == "ordinal" and p.get("coding") == "score":
        return [float(p["levels"].index(value))]
    return [1.0 if value == t["level"] else 0.0 for t in p["terms"]]


def contribution(p: Mapping[str, Any], value: object) -> float:
    """beta_j' x_j of one predictor (uncentred, as the nomogram)."""
    return sum(t["coef"] * x for t, x in zip(p["terms"], coded(p, value)))


@dataclass(frozen=True)
class PatientScore:
    """One patient scored with a model file.

    ``points``: per predictor (name, value, contribution, points), in the model's order.
    """

    points: tuple[tuple[str, object, float, float], ...]
    total_points: float
    lp: float
    risk: float
    horizon: float
    #: (horizon, risk by it) for every horizon of the study, shortest first (:func:`horizon_survival`)
    risks: tuple[tuple[float, float], ...] = ()


def _one(f: Callable[[float], float], x: Any) -> Any:
    return f(x)


def combine(data: Mapping[str, Any], contributions: Sequence[Any], *,
            each: Callable[[Callable[[float], float], Any], Any] = _one) -> tuple[list[Any], Any, Any, Any]:
    """Points per predictor, total points, linear predictor and risk from the predictors'
    contributions (the formula in the module docstring).

    The contributions are floats (one patient) or NumPy arrays (many, :mod:`.scoring`): the
    same additions and multiplications in the same order, and the risk by Python's own
    ``exp`` and ``**`` (``each`` applies it to every element; NumPy's vectorised power can
    differ in the last bit), so a file's row and the same patient typed on the command line
    get the same bits.
    """
    scale, s0 = data["nomogram"]["scale"], data["model"]["baseline_survival_at_horizon"]
    points = [(c - p["min_contribution"]) * scale for p, c in zip(data["predictors"], contributions)]
    lp = sum(contributions) - data["model"]["centre"]
    return points, sum(points), lp, each(lambda x: 1.0 - s0 ** math.exp(x), lp)


def score_patient(data: Mapping[str, Any], values: Mapping[str, object]) -> PatientScore:
    """Points, total points, linear predictor and risk by the horizon (:func:`combine`) of
    checked values (:func:`patient_values`)."""
    preds = data["predictors"]
    contributions = [contribution(p, values[p["name"]]) for p in preds]
    points, total, lp, risk = combine(data, contributions)
    risks = tuple(horizon_risks(data, lp))
    return PatientScore(points=tuple((p["name"], values[p["name"]], c, pts) for p, c, pts in zip(preds, contributions, points)),
                        total_points=total, lp=lp, risk=risk, horizon=float(data["outcome"]["horizon"]), risks=risks)


def horizon_survival(data: Mapping[str, Any]) -> list[dict[str, float]]:
    """``[{"horizon", "survival"}]``: S0 at every horizon of the study, shortest first; a model
    file written before these were added has the main horizon's alone."""
    m = data["model"]
    return [dict(x) for x in m.get("baseline_survival_at_horizons")
            or [{"horizon": data["outcome"]["horizon"], "survival": m["baseline_survival_at_horizon"]}]]


def horizon_risks(data: Mapping[str, Any], lp: Any, *,
                  each: Callable[[Callable[[float], float], Any], Any] = _one) -> list[tuple[float, Any]]:
    """(horizon, risk by it) at every horizon of the study (:func:`horizon_survival`): 1 - S0(h) ** exp(lp),
    by Python's ``exp`` and ``**`` as :func:`combine` (``each`` applies it to every element of an array)."""
    return [(float(h["horizon"]), each(lambda x, s=h["survival"]: 1.0 - s ** math.exp(x), lp))
            for h in horizon_survival(data)]


def page_model(data: Mapping[str, Any]) -> dict[str, Any]:
    """The report calculator's model (the JSON its JavaScript reads), taken from the model file."""
    return {"predictors": [dict(p) for p in data["predictors"]], "scale": data["nomogram"]["scale"],
            "intercept": data["nomogram"]["intercept"], "s0": data["model"]["baseline_survival_at_horizon"],
            "horizons": horizon_survival(data),
            "horizon": data["outcome"]["horizon"], "time_unit": data["outcome"]["time_unit"],
            "event": data["outcome"]["event_label"], "synthetic": data["study"]["synthetic"],
            "cohorts": data["cohorts"]}


def find_model_file(study: Path, *, model: Path | None, results_dir: Path | None) -> tuple[dict[str, Any] | None, str]:
    """The model file to score with, without parsing the study file or reading the data.

    ``model`` given: that file, which must have been fitted with ``study`` (the data are not
    needed).  Otherwise ``results_dir/model.json`` when it was fitted from ``study`` and the
    data files as they are now (:func:`changed_inputs`).  Returns ``(data, path)``, or
    ``(None, why not)`` when the analysis must give the model (no current model file, or no
    study file to check it against: the study file's own error is then the one to show).

    Raises
    ------
    InputError
        naming the ``model`` file: unreadable, not a model file, fitted with another study file.
    """
    study = Path(study)
    if model is not None:
        if not study.is_file():
            return None, f"no study file {study}"
        data = read_model_file(model)
        if not study_matches(data, study):
            raise model_problem(model, f"fitted with another study file ({data['study'].get('file', '?')}, SHA-256 "
                                       f"{str(data['study'].get('sha256'))[:12]}…), not {study}",
                                fix=f"use the study file it was made with, or run `cementleak analyze {study}`")
        return data, str(model)
    if results_dir is None:
        return None, "no results folder"
    path = Path(results_dir) / MODEL_FILE
    if not path.is_file():
        return None, f"no {path}"
    try:
        data = read_model_file(path)
    except InputError as exc:
        return None, f"{path}: {exc.problems[0].rule}"
    reasons = changed_inputs(data, study)
    return (None, f"{path} is not current: {'; '.join(reasons)}") if reasons else (data, str(path))
