"""Batch scoring: every row of a table of new patients scored with the frozen model.

``cementleak predict --input new.csv --out risks.csv`` reads a table (CSV, XLSX, SAV, Parquet)
with the reader of the data layer, checks the model's predictor columns with the study file's
own rules (levels, aliases, ranges, whole numbers; the same pandera checks and problem rows as
``cementleak validate``), and scores each row exactly as
:func:`cementleak_stats.nomogram.predict_risk` scores one patient: the same contributions,
points, linear predictor and risk, computed for all rows at once (100,000 rows in a few
seconds).  A row that cannot be scored (a missing, unknown or out-of-range value) keeps its
place in the output with its problem; no row is ever dropped.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .cohort.io import read_table
from .cohort.schema import as_number, as_text, canonical_levels, check_table, cohort_schema, parsed, parsing
from .errors import InputError, Problem
from .nomogram import Nomogram, _centre, _contributions, _risk, _value_label
from .spec import StudySpec, Variable

__all__ = ["BatchScores", "score_table", "score_file"]


@dataclass(frozen=True)
class BatchScores:
    """Scores of every input row, in file order.

    Attributes
    ----------
    scores : one row per input row: ``row`` (spreadsheet row: header = 1), the id column when
        the input has it, each predictor's value (canonical level or number), ``points_<name>``
        per predictor, ``total_points``, ``lp`` (centred at the development means),
        ``risk_at_horizon``, ``scored`` (False when the row could not be scored; its numbers are
        then empty) and ``problem`` (why not, one "column: rule" per problem).
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


def _axis_problems(var: Variable, values: pd.Series, raw: pd.Series, nomo: Nomogram, file: str) -> list[Problem]:
    """Numbers inside the study file's range but outside the nomogram's axis (as ``predict_risk``)."""
    axis = nomo.points.loc[nomo.points["predictor"] == var.name, "value"].astype(float)
    lo, hi = var.range if var.range is not None else (-math.inf, math.inf)
    lo, hi = max(lo, float(axis.min())), min(hi, float(axis.max()))
    outside = values.notna() & ((values < lo) | (values > hi))
    unit = f" {var.unit}" if var.unit else ""
    return [Problem(file=file, row=int(r), column=str(raw.name), value=_value_label(float(v)),
                    rule=f"{var.label} is outside the range the nomogram covers",
                    fix=f"enter a value from {_value_label(lo)} to {_value_label(hi)}{unit}")
            for r, v in values[outside].items()]


def score_table(spec: StudySpec, nomogram: Nomogram, raw: pd.DataFrame, *, file: str) -> BatchScores:
    """Score every row of a raw table (as :func:`~cementleak_stats.cohort.io.read_table` reads it).

    Parameters
    ----------
    spec : the study file the model was fitted with (levels, aliases, ranges of the predictors).
    nomogram : the frozen model's nomogram (from the analysis or the exported model file).
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
    As :func:`~cementleak_stats.nomogram.predict_risk`: contribution_j = beta_j' x_j
    (uncentred), points_j = (contribution_j - min_j) scale, lp = sum_j contribution_j -
    beta'mean, risk = 1 - S0(u)^exp(lp).  A value must be a level (or an alias), a number in the
    study file's range and inside the nomogram's axis, and present (a model cannot score a
    missing predictor, even where the study file allows missing values).
    """
    model = nomogram.model
    variables = [spec.variable(v) for v in model.variables]
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
        for var, h in zip(variables, headers):
            col = raw[h]
            if var.kind == "continuous":
                typed[var.name] = parsed(as_number, col)  # type: ignore[assignment]
                problems += _axis_problems(var, typed[var.name], col, nomogram, file)
            else:
                typed[var.name] = canonical_levels(col, var)
    order = {h: i for i, h in enumerate(headers)}
    problems.sort(key=lambda p: (p.row or 0, order.get(p.column, len(order)), p.rule))
    why: dict[int, list[str]] = {}
    for p in problems:
        why.setdefault(int(p.row), []).append(f"{p.column}: {p.rule}")  # type: ignore[arg-type]
    ok = ~raw.index.isin(list(why))

    n = len(raw)
    contrib = np.full((n, len(variables)), np.nan)
    for j, var in enumerate(variables):
        values = typed[var.name][ok]
        contrib[ok, j] = _contributions(model, var, values.tolist() if var.kind != "continuous" else values.to_numpy())
    mins = nomogram.points.groupby("predictor", sort=False)["contribution"].min()[list(model.variables)].to_numpy()
    points = (contrib - mins) * nomogram.scale
    lp = contrib.sum(axis=1) - _centre(model)
    out: dict[str, object] = {"row": raw.index.to_numpy(int)}
    id_col = spec.study.id_column
    if id_col in raw.columns:
        out[id_col] = as_text(raw[id_col]).to_numpy(object)
    for var in variables:
        out[var.name] = typed[var.name].where(ok).to_numpy(object)
    for j, var in enumerate(variables):
        out[f"points_{var.name}"] = points[:, j]
    out.update({"total_points": points.sum(axis=1), "lp": lp, "risk_at_horizon": _risk(nomogram.baseline_survival, lp),
                "scored": ok, "problem": ["; ".join(why.get(r, ())) for r in raw.index]})
    return BatchScores(scores=pd.DataFrame(out), problems=tuple(problems), horizon=nomogram.horizon)


def score_file(spec: StudySpec, nomogram: Nomogram, path: str | Path) -> BatchScores:
    """Read a table of new patients (CSV, XLSX, SAV, Parquet) and score every row (:func:`score_table`).

    Raises
    ------
    InputError
        when the file cannot be read (missing, unsupported type, not UTF-8, ragged rows, ...)
        or lacks a predictor's column.
    """
    path = Path(path)
    labelled = [spec.variable(v).header for v in nomogram.model.variables if spec.variable(v).kind != "continuous"]
    raw = read_table(path, labelled=labelled, name=path.name)
    return score_table(spec, nomogram, raw, file=path.name)


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
