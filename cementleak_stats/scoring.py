"""Batch scoring: every row of a table of new patients scored with the frozen model.

``cementleak predict --input new.csv --out risks.csv`` reads a table (CSV, XLSX, SAV, Parquet)
with the reader of the data layer, checks the model's predictor columns with the study file's
own rules (levels, aliases, ranges, whole numbers; the same pandera checks and problem rows as
``cementleak validate``), and scores each row with the exported model file's data
(:mod:`cementleak_stats.model_file`, the one source of ``predict`` and the calculator) with the
functions that score one patient (``contribution`` and ``combine``), on whole columns: the
same contributions, points, linear predictor and risk, to the last bit.  A row that cannot
be scored (a missing, unknown or out-of-range value) keeps its place in the output with its
problem; no row is ever dropped.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .cohort.io import read_table
from .cohort.failures import check_table
from .cohort.schema import as_number, as_text, canonical_levels, cohort_schema, parsed, parsing
from .errors import InputError, Problem
from .model_file import combine, contribution, horizon_risks, number_label, range_text, value_range
from .spec import StudySpec

__all__ = ["BatchScores", "score_table", "score_file"]


@dataclass(frozen=True)
class BatchScores:
    """Scores of every input row, in file order.

    Attributes
    ----------
    scores : one row per input row: ``row`` (spreadsheet row: header = 1), the id column when
        the input has it, each predictor's value (canonical level or number), ``points_<name>``
        per predictor, ``total_points``, ``lp`` (centred at the development means),
        ``risk_at_horizon``, for a study with several horizons ``risk_<h>`` at each (shortest first),
        ``scored`` (False when the row could not be scored; its numbers are then empty) and
        ``problem`` (why not, one "column: rule" per problem).
    problems : every problem found, as the data layer reports them (file, row, column, value,
        rule, fix).
    horizon : the time of the risk.
    """

    scores: pd.DataFrame
    problems: tuple[Problem, ...]
    horizon: float

    @property
    def n_scored(self) -> int:
        return int(self.scores["scored"].sum())

    @property
    def n_not_scored(self) -> int:
        return len(self.scores) - self.n_scored


def _axis_problems(p: Mapping[str, Any], values: pd.Series, raw: pd.Series, file: str) -> list[Problem]:
    """Numbers inside the study file's range but outside the nomogram's axis (as ``predict``)."""
    lo, hi = value_range(p)
    outside = values.notna() & ((values < lo) | (values > hi))
    return [Problem(file=file, row=int(r), column=str(raw.name), value=number_label(float(v)),
                    rule=f"{p['label']} is outside the range the nomogram covers",
                    fix=f"enter a value from {range_text(p, lo, hi)}")
            for r, v in values[outside].items()]


def score_table(spec: StudySpec, model: Mapping[str, Any], raw: pd.DataFrame, *, file: str) -> BatchScores:
    """Score every row of a raw table (as :func:`~cementleak_stats.cohort.io.read_table` reads it).

    Parameters
    ----------
    spec : the study file the model was fitted with (levels, aliases, ranges of the predictors).
    model : the model file's data (:func:`~cementleak_stats.model_file.read_model_file`, or
        :func:`~cementleak_stats.export.model_file` of an analysis).
    raw : raw cells, index = spreadsheet row; columns named as in the data files (the
        predictors' headers; other columns are ignored, the id column is carried over).
    file : the file's name in problems.

    Returns
    -------
    BatchScores

    Raises
    ------
    InputError
        when a predictor's column is missing: no row can be scored.

    Notes
    -----
    Each row as :func:`~cementleak_stats.model_file.score_patient` scores one patient:
    contribution_j = beta_j' x_j (uncentred), points_j = (contribution_j - min_j) scale, lp =
    sum_j contribution_j - beta'mean, risk = 1 - S0(u)^exp(lp).  A value must be a level (or an
    alias), a number in the study file's range and inside the nomogram's axis, and present (a
    model cannot score a missing predictor, even where the study file allows missing values).
    The coding (:func:`~cementleak_stats.model_file.contribution`, once per distinct value) and
    the formula (:func:`~cementleak_stats.model_file.combine`, on columns) are those that score
    one patient, so a row gets the bits that ``predict`` gives the same patient.
    """
    preds = list(model["predictors"])
    variables = [spec.variable(p["name"]) for p in preds]
    headers = [v.header for v in variables]
    full = cohort_schema(spec)
    schema = full.select_columns([h for h in headers if h in full.columns]).update_columns(
        {h: {"nullable": False, "description": "every predictor of the model needs a value to score the patient"}
         for h in headers})
    with parsing(raw):  # each column parsed once, for the checks and for the values scored
        problems = check_table(raw, schema, file=file)
        missing_cols = [p for p in problems if p.row is None]
        if missing_cols:
            raise InputError(missing_cols, summary=f"Cannot score {file}")
        typed: dict[str, pd.Series] = {}
        for p, var, h in zip(preds, variables, headers):
            col = raw[h]
            if var.kind == "continuous":
                typed[var.name] = parsed(as_number, col)  # type: ignore[assignment]
                problems += _axis_problems(p, typed[var.name], col, file)
            else:
                typed[var.name] = canonical_levels(col, var)
    order = {h: i for i, h in enumerate(headers)}
    problems.sort(key=lambda p: (p.row or 0, order.get(p.column, len(order)), p.rule))
    why: dict[int, list[str]] = {}
    for p in problems:
        why.setdefault(int(p.row), []).append(f"{p.column}: {p.rule}")  # type: ignore[arg-type]
    ok = ~raw.index.isin(list(why))

    n, names = len(raw), [p["name"] for p in preds]
    rows = np.flatnonzero(ok)
    # each predictor's contribution by model_file.contribution (the one coding), once per distinct value
    contributions = []
    for p, name in zip(preds, names):
        memo: dict[object, float] = {}
        values = typed[name].to_numpy(object)[rows]
        contributions.append(np.array([memo[v] if v in memo else memo.setdefault(v, contribution(p, v)) for v in values],
                                      dtype=float).reshape(len(rows)))
    each = lambda f, a: np.fromiter(map(f, a), float, len(a))  # noqa: E731 - Python's exp and ** per element
    pts, tot, lin, rsk = combine(model, contributions, each=each)
    points = np.full((n, len(preds)), np.nan)
    total, lp, risk = np.full(n, np.nan), np.full(n, np.nan), np.full(n, np.nan)
    if len(rows):
        points[rows] = np.column_stack(pts)
        total[rows], lp[rows], risk[rows] = tot, lin, rsk
    out: dict[str, object] = {"row": raw.index.to_numpy(int)}
    id_col = spec.study.id_column
    if id_col in raw.columns:
        out[id_col] = as_text(raw[id_col]).to_numpy(object)
    for name in names:
        out[name] = typed[name].where(ok).to_numpy(object)
    for j, name in enumerate(names):
        out[f"points_{name}"] = points[:, j]
    out.update({"total_points": total, "lp": lp, "risk_at_horizon": risk})
    by_horizon = horizon_risks(model, lin, each=each)  # as score_patient, to the last bit
    for h, r in by_horizon if len(by_horizon) > 1 else ():  # the study's other horizons too: risk_<h>, shortest first
        out[f"risk_{h:g}"] = np.full(n, np.nan)
        out[f"risk_{h:g}"][rows] = r
    out.update({"scored": ok, "problem": ["; ".join(why.get(r, ())) for r in raw.index]})
    return BatchScores(scores=pd.DataFrame(out), problems=tuple(problems), horizon=float(model["outcome"]["horizon"]))


def score_file(spec: StudySpec, model: Mapping[str, Any], path: str | Path) -> BatchScores:
    """Read a table of new patients (CSV, XLSX, SAV, Parquet) and score every row (:func:`score_table`)
    with the model file's data ``model``.

    Raises
    ------
    InputError
        when the file cannot be read (missing, unsupported type, not UTF-8, ragged rows, ...)
        or lacks a predictor's column.
    """
    path = Path(path)
    labelled = [spec.variable(p["name"]).header for p in model["predictors"] if p["kind"] != "continuous"]
    raw = read_table(path, labelled=labelled, name=path.name)
    return score_table(spec, model, raw, file=path.name)


def write_scores(batch: BatchScores, path: str | Path, *, inputs: tuple[Path, ...] = ()) -> Path:
    """Write the scores as CSV (UTF-8, ``\\n``, numbers to 10 significant digits), atomically.

    Raises
    ------
    InputError
        when ``path`` is one of ``inputs`` (input files are never written) or a folder.
    """
    from .atomic import atomic_open

    target = Path(path).resolve()
    if any(target == Path(p).resolve() for p in inputs):
        raise InputError([Problem(file=str(path), rule="--out names an input file (input files are never written)",
                                  fix="write the risks to a new file, e.g. --out risks.csv")], summary="Cannot write the risks")
    if target.is_dir():
        raise InputError([Problem(file=str(path), rule="--out names a folder", fix="give a file name, e.g. --out risks.csv")],
                         summary="Cannot write the risks")
    with atomic_open(target) as fh:
        batch.scores.to_csv(fh, index=False, lineterminator="\n", float_format="%.10g")
    return target
