"""The ``cementleak`` command line: validate, simulate, analyze, report, predict.

Every command reads the study file (default ``study.yaml``).  Invalid input prints one table of
every problem (file, row, column, value, rule, fix) and exits with code 2; nothing is written.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from .errors import EXIT_INPUT_ERROR, AnalysisError, InputError

app = typer.Typer(
    name="cementleak",
    help="Cement leakage after vertebroplasty: validate data, simulate the synthetic cohort, "
    "run the Cox/nomogram analysis and render the study report.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console(stderr=False)
err_console = Console(stderr=True)

StudyArg = Annotated[
    Path,
    typer.Argument(help="Study file (YAML) naming the data files, variables and analysis options."),
]


def print_input_error(exc: InputError) -> None:
    """Print every problem as one table, on stderr."""
    table = Table(title=f"{exc.summary}: {len(exc.problems)} problem(s)", show_lines=False, expand=False)
    for col in ("file", "row", "column", "value", "rule", "fix"):
        table.add_column(col, overflow="fold")
    for p in exc.problems[:500]:
        table.add_row(p.file, "" if p.row is None else str(p.row), p.column or "", "" if p.value is None else str(p.value), p.rule, p.fix)
    err_console.print(table)
    if len(exc.problems) > 500:
        err_console.print(f"... and {len(exc.problems) - 500} more problems")
    err_console.print("[bold red]Nothing was written; the input files are unchanged.[/] Fix the problems above and run again.")


def _fail(exc: Exception) -> None:
    if isinstance(exc, InputError):
        print_input_error(exc)
        raise typer.Exit(EXIT_INPUT_ERROR)
    if isinstance(exc, AnalysisError):
        err_console.print(f"[bold red]The analysis cannot be run:[/] {exc}")
        raise typer.Exit(EXIT_INPUT_ERROR)
    raise exc


@app.command()
def validate(study: StudyArg = Path("study.yaml")) -> None:
    """Check the study file and the data files; print n, events, missing values and the patient flow."""
    from .cohort.io import load_study_data
    from .cohort.summary import print_validation_summary

    try:
        from .spec import load_spec

        spec = load_spec(study)
        data = load_study_data(spec)
    except (InputError, AnalysisError) as exc:
        _fail(exc)
    print_validation_summary(data, console=console)


@app.command()
def simulate(
    out: Annotated[Path, typer.Option(help="Directory to write cohort.csv, outcomes.csv and the data dictionary into.")] = Path("data"),
    seed: Annotated[int | None, typer.Option(help="Random seed (default: the documented seed of the shipped cohort).")] = None,
    n: Annotated[int, typer.Option(help="Number of patients.")] = 100,
) -> None:
    """Generate the SYNTHETIC PVP cohort (seeded; same seed, byte-identical files)."""
    from .cohort.simulate import DEFAULT_SEED, write_synthetic

    try:
        paths = write_synthetic(out, seed=DEFAULT_SEED if seed is None else seed, n=n)
    except InputError as exc:
        _fail(exc)
    for p in paths:
        console.print(f"wrote {p}")
    console.print("[bold yellow]These data are SYNTHETIC[/] — generated, not observed patients.")


def main() -> None:  # pragma: no cover - console entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
