"""What ``cementleak validate`` reports about valid data: counts, missing values, flow, hashes.

:func:`check_summary` computes (a tidy DataFrame); :func:`print_check_summary`
only formats it, with the missing-value table, the patient flow and the file digests, for a
:class:`rich.console.Console`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import pandas as pd
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ..errors import Problem
from ..formatting import format_g
from ..km import median_followup
from .io import StudyData


def _counts(frame: pd.DataFrame, time: str, event: str) -> list[float]:
    n_events = int(frame[event].sum())
    return [len(frame), n_events, len(frame) - n_events,
            median_followup(frame[time].to_numpy(float), frame[event].to_numpy(float))]


def check_summary(data: StudyData) -> pd.DataFrame:
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


def _rows(console: Console, title: str, header: tuple[str, ...], rows: list[tuple[str, ...]],
          *, right: tuple[str, ...] = (), styles: list[str | None] | None = None) -> None:
    """A table on a terminal; elsewhere (a log) a title line and one unwrapped line per row."""
    if console.is_terminal:
        table = Table(title=title)
        for col in header:
            table.add_column(col, justify="right" if col in right else "left", overflow="fold")
        for i, r in enumerate(rows):
            table.add_row(*(escape(c) for c in r), style=None if styles is None else styles[i])
        console.print(table)
        return
    console.print(f"{title}:", soft_wrap=True, markup=False, highlight=False)
    for r in rows:
        cells = [f"{h}={c}" if h else c for h, c in zip(header, r) if c != ""]
        console.print("  " + "; ".join(cells), soft_wrap=True, markup=False, highlight=False)


def print_check_summary(data: StudyData, *, console: Console, analysis_errors: Sequence[Problem] = (),
                        analysis_warnings: Sequence[Problem] = (), show_all: bool = False) -> None:
    """Print the check report of valid data to ``console``: rich tables on a terminal, one
    unwrapped line per row elsewhere (so a log keeps every column and file name on one line).

    ``analysis_errors`` / ``analysis_warnings``: what the analysis needs and the data do not give
    (:func:`cementleak_stats.needs.analysis_needs`), printed after the summary.
    """
    from ..messages import print_problems

    spec = data.spec
    plain = not console.is_terminal

    def say(text: str, markup: str | None = None) -> None:
        if plain or markup is None:
            console.print(text, soft_wrap=True, markup=False, highlight=False)
        else:
            console.print(markup)

    say(spec.study.title, f"[bold]{escape(spec.study.title)}[/]")
    if spec.study.synthetic:
        say("SYNTHETIC data: the study file flags these data as generated, not observed patients.",
            "[bold yellow]SYNTHETIC data[/]: the study file flags these data as generated, not observed patients.")
    else:
        say("Data flagged as observed patients (study.synthetic: false).")

    summary = check_summary(data)
    names = {"patients": "Patients", "events": spec.outcome.event_label, "censored": "Censored",
             "median_followup": f"Median follow-up, {spec.outcome.time_unit} (reverse Kaplan-Meier)",
             "repeated_rows": "Repeated-measure rows", "repeated_patients": "Patients with repeated measures"}
    def cell(x: float) -> str:
        return format_g(x, missing="", infinite="not reached")

    _rows(console, "Cohort", ("", "all rows", "analysed"),
          [(names[r.quantity], cell(r.all_rows), cell(r.analysed)) for r in summary.itertuples(index=False)],
          right=("all rows", "analysed"))
    _rows(console, "Missing values (all rows)", ("column", "label", "missing"),
          [(r.column, r.label, str(r.n_missing)) for r in data.missing.itertuples(index=False)], right=("missing",),
          styles=["yellow" if r.n_missing else None for r in data.missing.itertuples(index=False)])
    _rows(console, "Flow of patients", ("step", "patients", "excluded", "reason"),
          [(str(r.step), str(r.n), str(r.excluded), r.reason) for r in data.flow.itertuples(index=False)],
          right=("step", "patients", "excluded"))
    if data.warnings:
        print_problems(list(data.warnings), console=console, title="Warnings (not errors)", show_all=show_all,
                       level="warning")

    say("Files (SHA-256 of the bytes validated)", "[bold]Files[/] (SHA-256 of the bytes validated)")
    for name, digest in data.sha256.items():  # one unwrapped line each, so the digest can be copied
        console.print(f"  {digest}  {name}", soft_wrap=True, highlight=False, markup=False)
    if analysis_warnings:
        print_problems(list(analysis_warnings), console=console, show_all=show_all, level="warning",
                       title="What the analysis needs: warnings (the analysis runs, but is weak)")
    if analysis_errors:
        print_problems(list(analysis_errors), console=console, show_all=show_all,
                       title="What the analysis needs: the analysis would refuse these data")
        say("The data are valid, but `cementleak analyze` would refuse them: fix the problems above. Nothing was "
            "written.", "[bold red]The data are valid, but `cementleak analyze` would refuse them[/]: fix the problems "
            "above. Nothing was written.")
        return
    say("Valid: every rule of the study file holds; nothing was written.",
        "[bold green]Valid[/]: every rule of the study file holds; nothing was written.")
