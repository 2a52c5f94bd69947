"""Validate the study's data files against the study file, type them and apply the patient flow.

Reading (raw cells, structure, digests) is :mod:`cementleak_stats.cohort.read`; the rules on
the cells live in :mod:`cementleak_stats.cohort.schema` (pandera); this module runs both on
the files the study file names, types the validated columns and applies the patient flow.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ..errors import InputError, Problem
from ..spec import Exclusion, StudySpec
from .read import MISSING_TOKENS, SUPPORTED_SUFFIXES, read_table, read_with_digest
from .failures import check_table, unknown_columns
from .schema import (as_number, as_text, canonical_levels, cohort_schema, date_time, event_codes, parsed, parsing,
                     repeated_schema)

__all__ = ["MISSING_TOKENS", "SUPPORTED_SUFFIXES", "read_table", "PatientFlow", "patient_flow", "StudyData",
           "validation_spec", "load_study_data"]


# --- typing -------------------------------------------------------------------------------
def _typed_cohort(raw: pd.DataFrame, spec: StudySpec) -> pd.DataFrame:
    """The validated raw table -> one typed column per ``spec.columns`` (read from its header).

    Called inside :func:`~cementleak_stats.cohort.schema.parsing`, so each column's parse from
    validation is reused.
    """
    def number(header: str) -> pd.Series:
        return parsed(as_number, raw[header])  # type: ignore[return-value]

    out: dict[str, object] = {spec.study.id_column: parsed(as_text, raw[spec.study.id_column]).astype("string")}  # type: ignore[attr-defined]
    for var in spec.variables:
        if var.kind == "continuous":
            out[var.name] = number(var.header)
        else:
            out[var.name] = pd.Categorical(canonical_levels(raw[var.header], var), categories=list(var.levels),
                                           ordered=var.kind == "ordinal")
    oc = spec.outcome
    out[oc.time] = date_time(raw, oc) if oc.time_header is None else number(oc.time_header)
    out[oc.event] = parsed(event_codes, raw[oc.event_header], oc).astype("int64")  # type: ignore[attr-defined]
    return pd.DataFrame(out).reset_index(drop=True)


def _typed_repeated(raw: pd.DataFrame, spec: StudySpec) -> pd.DataFrame:
    rep = spec.repeated
    assert rep is not None
    out: dict[str, object] = {
        rep.id: as_text(raw[rep.id]).astype("string"),
        rep.timepoint: pd.Categorical(as_text(raw[rep.timepoint]), categories=[t.name for t in rep.timepoints],
                                      ordered=True),
    }
    for m in rep.measures:
        out[m.name] = parsed(as_number, raw[m.header])
    return pd.DataFrame(out).reset_index(drop=True)


# --- patient flow -------------------------------------------------------------------------
_OPS: dict[str, Callable[[object, object], object]] = {
    "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge, "==": operator.eq, "!=": operator.ne,
}


def _study_name(spec: StudySpec) -> str:
    return spec.source.name if spec.source is not None else "study file"


def _exclusion_problems(spec: StudySpec) -> list[Problem]:
    """Rules of ``exclusions:`` that cannot be applied to their column (a study-file problem)."""
    out = []
    for i, ex in enumerate(spec.exclusions):
        where = f"exclusions.{i}"
        if ex.op == "missing":
            continue
        if ex.value is None:
            out.append(Problem(file=_study_name(spec), column=where, rule=f"exclusion '{ex.op}' needs a value",
                               fix="add `value:` to the rule"))
            continue
        var = next((v for v in spec.variables if v.name == ex.column), None)
        if var is None or var.kind == "continuous":
            if isinstance(ex.value, str):
                out.append(Problem(file=_study_name(spec), column=where, value=ex.value,
                                   rule=f"exclusion on numeric column '{ex.column}' needs a number", fix="write a number"))
            continue
        level = var.aliases.get(str(ex.value), str(ex.value))
        if level not in var.levels:
            out.append(Problem(file=_study_name(spec), column=where, value=str(ex.value),
                               rule=f"exclusion value is not a level of '{ex.column}'",
                               fix="use one of: " + ", ".join(var.levels)))
        elif ex.op not in ("==", "!=") and var.kind != "ordinal":
            out.append(Problem(file=_study_name(spec), column=where, value=ex.op,
                               rule=f"'{ex.op}' does not apply to the {var.kind} variable '{ex.column}'",
                               fix="use == or != (order comparisons apply to ordinal variables only)"))
    return out


def _excluded_by(cohort: pd.DataFrame, ex: Exclusion, spec: StudySpec) -> pd.Series:
    """Boolean mask of the rows the rule excludes (a missing value never satisfies a comparison)."""
    col = cohort[ex.column]
    if ex.op == "missing":
        return col.isna()
    if isinstance(col.dtype, pd.CategoricalDtype):
        var = spec.variable(ex.column)
        level = var.aliases.get(str(ex.value), str(ex.value))
        lhs, rhs = col.cat.codes, var.levels.index(level)  # ordinal comparisons by level position
    else:
        lhs, rhs = col.astype(float), float(ex.value)  # type: ignore[arg-type]
    return pd.Series(_OPS[ex.op](lhs, rhs), index=cohort.index).astype(bool) & col.notna()


def _complete_case_columns(spec: StudySpec) -> list[str]:
    wanted = {v.name for v in spec.candidates} | set(spec.analysis.predictors)
    return [v.name for v in spec.variables if v.name in wanted]


@dataclass(frozen=True, eq=False)
class PatientFlow:
    """Patients through the exclusion steps.

    Attributes
    ----------
    steps
        One row per step: ``step`` (0 = the cohort file), ``n`` (patients left after the
        step), ``excluded`` (patients removed by it), ``reason``.
    analysed
        The cohort rows left after the last step.
    excluded
        One row per excluded patient: ``id``, ``step``, ``reason``.
    """

    steps: pd.DataFrame
    analysed: pd.DataFrame
    excluded: pd.DataFrame


def patient_flow(cohort: pd.DataFrame, spec: StudySpec) -> PatientFlow:
    """Apply ``spec.exclusions`` in order, then (complete-case analysis) drop rows with a
    missing candidate predictor, counting every removed patient.

    Parameters
    ----------
    cohort
        The typed cohort (as in :attr:`StudyData.cohort`).
    spec
        The study file.

    Returns
    -------
    PatientFlow

    Notes
    -----
    A patient is counted at the first step that excludes them.  The complete-case step is
    present (possibly excluding 0) whenever ``analysis.missing_data == "complete_case"``;
    with multiple imputation rows with missing predictors stay in ``analysed``.
    """
    id_col = spec.study.id_column
    keep = pd.Series(True, index=cohort.index)
    steps = [{"step": 0, "n": len(cohort), "excluded": 0, "reason": "patients in the cohort file"}]
    excluded: list[dict[str, object]] = []

    def apply(reason: str, mask: pd.Series) -> None:
        hit = keep & mask
        keep[hit] = False
        steps.append({"step": len(steps), "n": int(keep.sum()), "excluded": int(hit.sum()), "reason": reason})
        excluded.extend({"id": pid, "step": len(steps) - 1, "reason": reason} for pid in cohort.loc[hit, id_col])

    for ex in spec.exclusions:
        apply(ex.reason, _excluded_by(cohort, ex, spec))
    if spec.analysis.missing_data == "complete_case":
        miss = cohort[_complete_case_columns(spec)].isna()
        counts = [f"{spec.label(c)} ({n})" for c, n in miss[keep].sum().items() if n]  # among patients still in
        reason = "missing value in a candidate predictor (complete-case analysis)"
        apply(reason + (": " + ", ".join(counts) if counts else ""), miss.any(axis=1))
    return PatientFlow(
        steps=pd.DataFrame(steps, columns=["step", "n", "excluded", "reason"]),
        analysed=cohort.loc[keep].reset_index(drop=True),
        excluded=pd.DataFrame(excluded, columns=["id", "step", "reason"]),
    )


# --- the whole study ----------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class StudyData:
    """The study's data, read, validated and typed; see :func:`load_study_data`.

    Attributes
    ----------
    spec
        The study file the data were validated against.
    cohort
        One row per patient, columns ``spec.columns``: id as string, continuous as float,
        categorical as ``Categorical`` (study-file levels in order, canonical spellings;
        ordered for ordinal variables), time float, event int.
    repeated
        Long repeated-measures table (id string, timepoint ordered ``Categorical``,
        measures float), or ``None`` when the study has none.
    flow, analysed, excluded
        See :class:`PatientFlow`.
    missing
        ``column``, ``label``, ``n_missing`` for every cohort column (all rows).
    sha256
        Data file name (as written in the study file) -> SHA-256 hex digest of its bytes.
    files
        Resolved paths of the data files.
    warnings
        Problems that do not stop the analysis (unknown extra columns).
    """

    spec: StudySpec
    cohort: pd.DataFrame
    repeated: pd.DataFrame | None
    flow: pd.DataFrame
    analysed: pd.DataFrame
    excluded: pd.DataFrame
    missing: pd.DataFrame
    sha256: dict[str, str]
    files: tuple[Path, ...]
    warnings: tuple[Problem, ...] = ()
    #: the validation cohort (``validation: cohort_file:``), read and checked by the same rules;
    #: its files and digests are also in ``files`` and ``sha256``
    validation: StudyData | None = None


def _column_label(spec: StudySpec, column: str) -> str:
    return "Identifier" if column == spec.study.id_column else spec.label(column)


def validation_spec(spec: StudySpec) -> StudySpec:
    """The study file with its validation cohort as the cohort file: same variables, levels, ranges,
    aliases and exclusions; no repeated measures."""
    if spec.validation is None or spec.validation.cohort_file is None:
        raise ValueError("the study file names no validation cohort file")
    return spec.model_copy(update={"cohort_file": spec.validation.cohort_file, "repeated": None, "validation": None})


def load_study_data(spec: StudySpec) -> StudyData:
    """Read and validate the cohort (and repeated-measures) files named by the study file.

    Parameters
    ----------
    spec
        The parsed study file.

    Returns
    -------
    StudyData

    Raises
    ------
    InputError
        Every problem of both files (and of the exclusion rules) at once; each names the
        file, the spreadsheet row, the column, the value and the rule, with a fix.

    Notes
    -----
    The repeated-measures table is checked against the ids of the cohort table even when
    the cohort table has other problems, so that one run reports everything.  Nothing is
    written; the files are opened read-only.
    """
    problems = _exclusion_problems(spec)
    warnings: list[Problem] = []
    digests: dict[str, str] = {}

    def load(path: Path, name: str, labelled: Collection[str]) -> pd.DataFrame | None:
        try:
            frame, digests[name] = read_with_digest(path, name, labelled)
        except InputError as exc:
            problems.extend(exc.problems)
            return None
        return frame

    id_col = spec.study.id_column
    labelled = [v.header for v in spec.variables if v.kind != "continuous"]
    cohort_raw = load(spec.cohort_path, spec.cohort_file, labelled)
    cohort = None
    if cohort_raw is not None:
        schema = cohort_schema(spec)
        with parsing(cohort_raw):  # each column parsed once, for the checks and for the typed cohort
            found = check_table(cohort_raw, schema, file=spec.cohort_file)
            if not found and not problems:
                cohort = _typed_cohort(cohort_raw, spec)
        problems.extend(found)
        warnings.extend(unknown_columns(cohort_raw, schema, file=spec.cohort_file))
    rep_raw = repeated = None
    if spec.repeated is not None:
        rep_path = spec.repeated_path
        assert rep_path is not None
        rep_raw = load(rep_path, spec.repeated.file, [spec.repeated.timepoint])
        if rep_raw is not None:
            ids = None
            if cohort_raw is not None and id_col in cohort_raw.columns:
                ids = set(as_text(cohort_raw[id_col]).dropna())
            schema = repeated_schema(spec, cohort_ids=ids)
            with parsing(rep_raw):
                found = check_table(rep_raw, schema, file=spec.repeated.file)
                repeated = None if found else _typed_repeated(rep_raw, spec)
            problems.extend(found)
            warnings.extend(unknown_columns(rep_raw, schema, file=spec.repeated.file))
    validation = None
    if spec.validation_path is not None:  # checked in the same run, so that one run reports everything
        try:
            validation = load_study_data(validation_spec(spec))
        except InputError as exc:
            problems.extend(exc.problems)
    if problems:
        problems = list(dict.fromkeys(problems))  # a study-file problem the validation cohort repeats is one problem
        files = ", ".join(dict.fromkeys(p.file for p in problems))
        raise InputError(problems, summary=f"Invalid input ({files})")
    assert cohort is not None
    flow = patient_flow(cohort, spec)
    missing = pd.DataFrame({
        "column": list(spec.columns),
        "label": [_column_label(spec, c) for c in spec.columns],
        "n_missing": [int(cohort[c].isna().sum()) for c in spec.columns],
    })
    files = (spec.cohort_path,) + (() if spec.repeated_path is None else (spec.repeated_path,))
    if validation is not None:
        files += validation.files
        digests.update(validation.sha256)
        warnings.extend(validation.warnings)
    return StudyData(
        spec=spec, cohort=cohort, repeated=repeated,
        flow=flow.steps, analysed=flow.analysed, excluded=flow.excluded, missing=missing,
        sha256=digests, files=files, warnings=tuple(warnings), validation=validation,
    )
