"""Helpers shared by tests/test_io.py and tests/test_validate_corpus.py (no tests here).

* :func:`valid_cohort` / :func:`valid_repeated` generate a small valid table from *any*
  study file (nothing about the PVP study is assumed);
* :func:`write_table` writes a frame as CSV, XLSX, SAV (categorical columns as SPSS value
  labels) or Parquet, so binary inputs are generated, not committed;
* :func:`snapshot` records every file's SHA-256 and mtime, to prove inputs are unchanged
  and nothing was written.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from cementleak_stats.spec import StudySpec

REPO = Path(__file__).resolve().parents[1]
BAD = REPO / "tests" / "bad_inputs"


def valid_cohort(spec: StudySpec, *, n: int, rng: np.random.Generator) -> pd.DataFrame:
    """A cohort that satisfies every rule of ``spec`` (ids ``P001``...; every level used when n allows)."""
    cols: dict[str, object] = {spec.study.id_column: [f"P{i:03d}" for i in range(1, n + 1)]}
    for var in spec.variables:
        if var.kind == "continuous":
            lo, hi = var.range if var.range is not None else (-10.0, 10.0)
            x = rng.uniform(lo, hi, n)
            cols[var.name] = np.clip(np.round(x), np.ceil(lo), np.floor(hi)) if var.integer else np.round(x, 1).clip(lo, hi)
        else:
            cols[var.name] = rng.permutation(np.resize(np.array(var.levels, dtype=object), n))
    out = spec.outcome
    event = (rng.random(n) < 0.3).astype(int)
    cols[out.time] = np.where(event == 1, np.round(rng.uniform(0.05, 1.0, n) * out.followup, 2), out.followup)
    cols[out.event] = event
    return pd.DataFrame(cols)


def valid_repeated(spec: StudySpec, ids: Sequence[str], *, rng: np.random.Generator) -> pd.DataFrame:
    """A long repeated-measures table: every id at every timepoint, measures inside their ranges."""
    rep = spec.repeated
    assert rep is not None
    rows = []
    for pid in ids:
        for tp in rep.timepoints:
            rows.append({rep.id: pid, rep.timepoint: tp.name,
                         **{m.name: round(float(rng.uniform(*m.range)), 1) for m in rep.measures}})
    return pd.DataFrame(rows)


def categorical_levels(spec: StudySpec) -> dict[str, tuple[str, ...]]:
    """Column -> levels for every categorical variable (what SPSS stores as value labels)."""
    return {v.name: v.levels for v in spec.variables if v.kind != "continuous"}


def _plain(frame: pd.DataFrame) -> pd.DataFrame:
    """Columns mixing text and numbers (an edited cell) become text columns, as SPSS/Parquet need."""
    out = frame.copy()
    for c in out.columns:
        vals = out[c].dropna()
        if out[c].dtype == object and vals.map(lambda v: isinstance(v, str)).any() and not vals.map(
                lambda v: isinstance(v, str)).all():
            out[c] = out[c].map(lambda v: None if pd.isna(v) else str(v))
    return out


def write_table(frame: pd.DataFrame, path: Path, *, labels: Mapping[str, Sequence[str]] | None = None) -> Path:
    """Write ``frame`` in the format of ``path``'s extension.

    ``labels`` (SAV only): column -> levels, stored as numeric codes 1, 2, ... with value
    labels; a text not among the levels gets a further code without a label.
    """
    suffix = path.suffix
    if suffix == ".csv":
        frame.to_csv(path, index=False, lineterminator="\n")
    elif suffix == ".xlsx":
        import openpyxl

        wb = openpyxl.Workbook()
        ws = wb.active
        ws.append([str(c) for c in frame.columns])
        for row in frame.astype(object).itertuples(index=False):
            ws.append([None if (not isinstance(v, str) and pd.isna(v)) else v for v in row])
        wb.save(path)
    elif suffix == ".sav":
        import pyreadstat

        data, value_labels = _plain(frame), {}
        for col, levels in (labels or {}).items():
            if col in data.columns and data[col].map(lambda v: isinstance(v, str) or pd.isna(v)).all():
                codes = {lv: float(i) for i, lv in enumerate(levels, start=1)}
                for v in data[col].dropna().unique():
                    codes.setdefault(v, float(len(codes) + 1))
                data[col] = data[col].map(codes).astype(float)
                value_labels[col] = {code: lv for lv, code in codes.items() if lv in levels}
        for c in data.columns:  # SPSS needs one type per column
            if data[c].dtype == object and not len(data[c].dropna()):
                data[c] = data[c].astype(float)
        pyreadstat.write_sav(data, path, variable_value_labels=value_labels)
    elif suffix == ".parquet":
        _plain(frame).to_parquet(path, index=False)
    else:
        raise ValueError(suffix)
    return path


def write_study(base: Path | dict, directory: Path, **files: Path | None) -> Path:
    """Copy a study file into ``directory`` with data paths replaced by absolute ones.

    ``files``: ``cohort=...`` and/or ``outcomes=...`` (``outcomes=None`` drops the repeated table).
    """
    spec = yaml.safe_load(base.read_text(encoding="utf-8")) if isinstance(base, Path) else dict(base)
    if isinstance(base, Path) and (spec.get("validation") or {}).get("cohort_file"):  # keep it pointing at its file
        spec["validation"] = {**spec["validation"],
                              "cohort_file": str((base.parent / spec["validation"]["cohort_file"]).resolve())}
    if "cohort" in files:
        spec["cohort_file"] = str(Path(files["cohort"]).resolve())
    if "outcomes" in files and files["outcomes"] is None:
        spec.pop("repeated", None)
    elif "outcomes" in files:
        spec["repeated"] = {**spec["repeated"], "file": str(Path(files["outcomes"]).resolve())}
    out = directory / "study.yaml"
    out.write_text(yaml.safe_dump(spec, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return out


def snapshot(*dirs: Path) -> dict[Path, tuple[str, int]]:
    """SHA-256 and mtime of every file under ``dirs``, and every folder (detects any change or new entry)."""
    out = {}
    for d in dirs:
        for p in sorted(d.rglob("*")):
            out[p] = (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns) if p.is_file() else ("dir", 0)
    return out
