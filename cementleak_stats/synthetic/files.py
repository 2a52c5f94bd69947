"""The synthetic cohort's files: the CSV files (the same seed, the same bytes), the data dictionary
and ``README.md``, filled in from the Markdown template ``templates/synthetic_README.md``."""

from __future__ import annotations

from dataclasses import fields
from importlib.resources import files as _resources
from pathlib import Path

import numpy as np
import pandas as pd

from ..atomic import write_atomic
from ..errors import InputError, Problem
from ..spec import StudySpec, load_spec
from .model import (_COLUMNS, _DECIMALS, _LEVELS, _OUTCOME_COLUMNS, _TIMEPOINTS, DEFAULT_SEED, EVENT, LATENCY_MONTHS,
                    PUBLISHED, SEARCH_START, SECOND_CENTRE_FILE, SECOND_CENTRE_HAZARD_RATIO, SECOND_CENTRE_LOST,
                    SECOND_CENTRE_MIX, TIME, TRUE_COEFFICIENTS, WEIBULL_SHAPE, CaseMix, SyntheticStudy,
                    simulate_second_centre, simulate_study)


def _default_spec() -> StudySpec:
    """The project's study file, ``study.yaml`` in the working directory (as every CLI command)."""
    path = Path("study.yaml")
    if not path.is_file():
        raise InputError([Problem(file=str(path.resolve()), rule="study file not found",
                                  fix="run `cementleak simulate` from the project directory, which holds study.yaml")],
                         summary="Invalid study file")
    return load_spec(path)


def _spec_problems(spec: StudySpec) -> list[Problem]:
    """Differences between the study file and the columns this simulator generates."""
    file = str(spec.source or "study file")
    problems = []
    if tuple(spec.columns) != _COLUMNS:
        problems.append(Problem(file=file, rule=f"the simulator writes the columns {list(_COLUMNS)}; "
                                f"the study file declares {list(spec.columns)}",
                                fix="simulate with the project's own study.yaml"))
    for name, levels in _LEVELS.items():
        if name in spec.columns and spec.variable(name).levels != levels:
            problems.append(Problem(file=file, column=name, rule=f"levels differ from the simulator's {list(levels)}",
                                    value=str(list(spec.variable(name).levels))))
    rep = spec.repeated
    if rep is None or (rep.id, rep.timepoint, *(m.name for m in rep.measures)) != _OUTCOME_COLUMNS \
            or tuple(tp.name for tp in rep.timepoints) != _TIMEPOINTS:
        problems.append(Problem(file=file, column="repeated", rule=f"the simulator writes outcomes with columns "
                                f"{list(_OUTCOME_COLUMNS)} at time points {list(_TIMEPOINTS)}"))
    return problems


def _csv_text(df: pd.DataFrame) -> str:
    """CSV with fixed decimals per column, '\\n' newlines, no index: the same data, the same bytes."""
    out = pd.DataFrame(index=df.index)
    for col in df.columns:
        s = df[col]
        if col in _DECIMALS:
            out[col] = [f"{v:.{_DECIMALS[col]}f}" for v in s.to_numpy(float)]
        else:
            out[col] = s.astype(str)
    return out.to_csv(index=False, lineterminator="\n")


def _second_centre_file(spec: StudySpec) -> str:
    """The second centre's file name: the study file's ``validation: cohort_file:``, else the default."""
    v = spec.validation
    return Path(v.cohort_file).name if v is not None and v.cohort_file is not None else SECOND_CENTRE_FILE


def _dictionary(spec: StudySpec) -> pd.DataFrame:
    """Data dictionary of the three files, generated from the study file."""
    rows = []
    for file in (Path(spec.cohort_file).name, _second_centre_file(spec)):
        rows.append((file, spec.study.id_column, "Patient identifier", "", "identifier", "",
                     "Synthetic study number; identifying, never shown in any output"))
        for v in spec.variables:
            notes = [v.description.rstrip(".")] if v.description else []
            if v.range is not None:
                notes.append(f"{'Integer, a' if v.integer else 'A'}llowed range {v.range[0]:g} to {v.range[1]:g}")
            desc = ". ".join(notes) + ("." if notes else "")
            rows.append((file, v.name, v.label, v.unit or "", v.kind, "|".join(v.levels), desc))
        out = spec.outcome
        lost = "" if file == Path(spec.cohort_file).name else " or when lost to follow-up"
        rows.append((file, out.time, out.time_label, out.time_unit, "time", "",
                     f"Time from surgery to leakage; patients without leakage are censored at {out.followup:g} "
                     f"{out.time_unit}{lost}"))
        rows.append((file, out.event, out.event_label, "", "event", "0|1", "1 = leakage within follow-up, 0 = censored"))
    rep = spec.repeated
    if rep is not None:
        f = Path(rep.file).name
        rows.append((f, rep.id, "Patient identifier", "", "identifier", "", f"Links to {spec.study.id_column} of the cohort"))
        rows.append((f, rep.timepoint, "Time point", "", "nominal", "|".join(tp.name for tp in rep.timepoints),
                     "; ".join(f"{tp.name} = {tp.label}" for tp in rep.timepoints)))
        for m in rep.measures:
            rows.append((f, m.name, m.label, m.unit or "", "continuous", "",
                         f"Repeated measure of {rep.population or 'the cohort'}. Allowed range {m.range[0]:g} to {m.range[1]:g}."))
    return pd.DataFrame(rows, columns=["file", "column", "label", "unit", "kind", "levels", "description"])


def _readme(study: SyntheticStudy, spec: StudySpec, second: pd.DataFrame) -> str:
    """data/README.md, generated so that it always states the coefficients and seed actually used."""
    pub_types = PUBLISHED.leakage_types
    coef_rows = "\n".join(
        f"| `{name}` | {spec.variable(name).label} | {beta:+.3f} | {np.exp(beta):.3f} |"
        for name, beta in TRUE_COEFFICIENTS.items())
    type_rows = "\n".join(f"| `{t}` | `{m}` | {k} |" for t, (m, k) in pub_types.items())
    is_default = study.seed == DEFAULT_SEED and study.n == PUBLISHED.n
    note = ("These are the shipped files: they pass every check below."
            if is_default else
            f"**This copy was generated with seed {study.seed} and n = {study.n}, not the shipped defaults "
            f"(seed {DEFAULT_SEED}, n = {PUBLISHED.n}); the published checks apply to the defaults only.**")
    n_events = int(study.cohort[EVENT].sum())
    centre2 = _second_centre_file(spec)
    mix, base = SECOND_CENTRE_MIX, CaseMix()
    mix_rows = "\n".join(f"| `{f.name}` | {getattr(base, f.name)} | {getattr(mix, f.name)} |"
                         for f in fields(CaseMix) if getattr(base, f.name) != getattr(mix, f.name))
    lost = int(((second[EVENT] == 0) & (second[TIME] < PUBLISHED.horizon_months)).sum())
    this_copy = "" if is_default else f"\ncementleak simulate --seed {study.seed} --n {study.n} --out DIR   # this copy"
    template = _resources("cementleak_stats").joinpath("templates", "synthetic_README.md").read_text(encoding="utf-8")
    return template.format(
        citation=spec.study.citation, n=study.n, n_events=n_events, centre2=centre2, second_n=len(second),
        second_events=int(second[EVENT].sum()), this_copy=this_copy, default_seed=DEFAULT_SEED,
        published_n=PUBLISHED.n, published_events=PUBLISHED.events, note=note, weibull_shape=WEIBULL_SHAPE,
        latency_months=LATENCY_MONTHS, baseline_cumhaz=study.baseline_cumhaz, coef_rows=coef_rows,
        type_rows=type_rows, mix_rows=mix_rows, second_centre_hazard_ratio=SECOND_CENTRE_HAZARD_RATIO,
        second_centre_lost=SECOND_CENTRE_LOST, lost=lost, search_start=SEARCH_START,
        seeds_tried=DEFAULT_SEED - SEARCH_START + 1)


def write_synthetic(out_dir: str | Path, *, seed: int = DEFAULT_SEED, n: int = 100,
                    spec: StudySpec | None = None) -> list[Path]:
    """Simulate the study and write ``cohort.csv``, ``outcomes.csv``, the second centre's cohort
    (:func:`simulate_second_centre`; ``validation: cohort_file:`` of the study file, else
    ``cohort_centre2.csv``), ``dictionary.csv`` and ``README.md``.

    Parameters
    ----------
    out_dir : str or Path
        Directory (created if missing).
    seed, n : int
        Passed to :func:`simulate_study`.
    spec : StudySpec, optional
        Study file the columns are checked against; default ``study.yaml`` in the working directory.

    Returns
    -------
    list of Path
        The files written (each one written atomically).

    Raises
    ------
    InputError
        when the study file is missing or does not declare the columns and levels this simulator
        generates, or ``n < 2``; nothing is written then.
    """
    spec = _default_spec() if spec is None else spec
    problems = _spec_problems(spec)
    if n < 2:
        problems.append(Problem(file="(command line)", column="n", value=str(n), rule="n must be at least 2"))
    if problems:
        raise InputError(problems, summary="The study file does not match the synthetic PVP cohort")
    study = simulate_study(n=n, seed=seed)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cohort_name = Path(spec.cohort_file).name
    outcomes_name = Path(spec.repeated.file).name  # type: ignore[union-attr]  # checked above
    second = simulate_second_centre(baseline_cumhaz=study.baseline_cumhaz, seed=seed)
    files = {
        out / cohort_name: _csv_text(study.cohort),
        out / outcomes_name: _csv_text(study.outcomes),
        out / _second_centre_file(spec): _csv_text(second),
        out / "dictionary.csv": _dictionary(spec).to_csv(index=False, lineterminator="\n"),
        out / "README.md": _readme(study, spec, second),
    }
    for path, text in files.items():
        write_atomic(path, text, permissions=0o644)  # data files are meant to be shared
    return list(files)
