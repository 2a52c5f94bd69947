"""What ``cementleak validate`` reports about valid data: counts, missing values, flow, hashes.

:func:`validation_summary` computes (a tidy DataFrame); :func:`print_validation_summary`
only formats it, with the missing-value table, the patient flow and the file digests, for a
:class:`rich.console.Console`.
"""

from __future__ import annotations

import math

import pandas as pd
from lifelines import KaplanMeierFitter
from rich.console import Console
from rich.table import Table

from .io import StudyData


def _reverse_km_median(time: pd.Series, event: pd.Series) -> float:
    if len(time) == 0:
        return math.nan
    # lifelines' Kaplan-Meier with the censoring indicator as the "event" (reverse KM)
    km = KaplanMeierFitter().fit(time.to_numpy(float), event_observed=1 - event.to_numpy(int))
    return float(km.median_survival_time_)


def _counts(frame: pd.DataFrame, time: str, event: str) -> list[float]:
    n_events = int(frame[event].sum())
    return [len(frame), n_events, len(frame) - n_events, _reverse_km_median(frame[time], frame[event])]


def validation_summary(data: StudyData) -> pd.DataFrame:
    """Patients, events, censored and median follow-up, for all rows and for the analysed set.

    Parameters
    ----------
    data
        From :func:`~cementleak_stats.cohort.io.load_study_data`.

    Returns
    -------
    pandas.DataFrame
        Columns ``quantity`` (``patients``, ``events``, ``censored``,
        ``median_followup``; plus ``repeated_rows`` and ``repeated_patients`` when the
        study has a repeated-measures table), ``all_rows`` and ``analysed`` (float; NaN
        where not applicable or, for the median, not reached).

    Notes
    -----
    Median follow-up is the reverse Kaplan-Meier estimate (Schemper & Smith): the
    Kaplan-Meier median of the time to *censoring*, treating events as censored.  It does
    not shrink because of early events, unlike the median of observed times.

    References
    ----------
    Schemper M, Smith TL. A note on quantifying follow-up in studies of failure time.
    Control Clin Trials 1996;17:343-346.
    """
    out = data.spec.outcome
    rows = {
        "quantity": ["patients", "events", "censored", "median_followup"],
        "all_rows": _counts(data.cohort, out.time, out.event),
        "analysed": _counts(data.analysed, out.time, out.event),
    }
    if data.repeated is not None and data.spec.repeated is not None:
        rows["quantity"] += ["repeated_rows", "repeated_patients"]
        rows["all_rows"] += [len(data.repeated), data.repeated[data.spec.repeated.id].nunique()]
        rows["analysed"] += [math.nan, math.nan]
    frame = pd.DataFrame(rows)
    frame[["all_rows", "analysed"]] = frame[["all_rows", "analysed"]].astype(float)
    return frame


def _fmt(x: float) -> str:
    if math.isnan(x):
        return ""
    return "not reached" if math.isinf(x) else f"{x:g}"


def print_validation_summary(data: StudyData, *, console: Console) -> None:
    """Print the validation report of valid data to ``console`` (rich tables)."""
    spec = data.spec
    console.print(f"[bold]{spec.study.title}[/]")
    if spec.study.synthetic:
        console.print("[bold yellow]SYNTHETIC data[/]: the study file flags these data as generated, not observed patients.")
    else:
        console.print("Data flagged as observed patients (study.synthetic: false).")

    summary = validation_summary(data)
    names = {"patients": "Patients", "events": spec.outcome.event_label, "censored": "Censored",
             "median_followup": f"Median follow-up, {spec.outcome.time_unit} (reverse Kaplan-Meier)",
             "repeated_rows": "Repeated-measure rows", "repeated_patients": "Patients with repeated measures"}
    table = Table(title="Cohort")
    for col in ("", "all rows", "analysed"):
        table.add_column(col, justify="left" if not col else "right")
    for r in summary.itertuples(index=False):
        table.add_row(names[r.quantity], _fmt(r.all_rows), _fmt(r.analysed))
    console.print(table)

    table = Table(title="Missing values (all rows)")
    for col in ("column", "label", "missing"):
        table.add_column(col, justify="right" if col == "missing" else "left")
    for r in data.missing.itertuples(index=False):
        table.add_row(r.column, r.label, str(r.n_missing), style="yellow" if r.n_missing else None)
    console.print(table)

    table = Table(title="Flow of patients")
    for col in ("step", "patients", "excluded", "reason"):
        table.add_column(col, justify="left" if col == "reason" else "right", overflow="fold")
    for r in data.flow.itertuples(index=False):
        table.add_row(str(r.step), str(r.n), str(r.excluded), r.reason)
    console.print(table)

    if data.warnings:
        table = Table(title="Warnings (not errors)")
        for col in ("file", "column", "warning", "fix"):
            table.add_column(col, overflow="fold")
        for w in data.warnings:
            table.add_row(w.file, w.column or "", w.rule, w.fix)
        console.print(table)

    console.print("[bold]Files[/] (SHA-256 of the bytes validated)")
    for name, digest in data.sha256.items():  # one unwrapped line each, so the digest can be copied
        console.print(f"  {digest}  {name}", soft_wrap=True, highlight=False)
    console.print("[bold green]Valid[/]: every rule of the study file holds; nothing was written.")
