"""The ``cementleak`` command line: validate, simulate, analyze, report, predict.

Every command reads the study file (default ``study.yaml``).  Invalid input prints one table of
every problem (file, row, column, value, rule, fix) and exits with code 2; nothing is written.

Why one module of about 600 lines: it is the typer application, seven commands each with its
options, their help texts and the printing of its outcome (progress, tables of problems, where
the files went), sharing one error handler and the exit codes; the work of each command is in
the module it calls.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .errors import EXIT_INPUT_ERROR, AnalysisError, InputError

app = typer.Typer(
    name="cementleak",
    help="A clinical prediction study from one study file: create a study folder, validate its data, "
    "run the Cox/nomogram analysis and render the study report (and the shipped example's synthetic cohort).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # plain help: rich help panels import rich.markdown/markdown_it (~0.3 s) on every `--help`
    rich_markup_mode=None,
)
console = Console(stderr=False)
err_console = Console(stderr=True)

StudyArg = Annotated[
    Path,
    typer.Argument(help="Study file (YAML) naming the data files, variables and analysis options."),
]


def print_input_error(exc: InputError, *, show_all: bool = False) -> None:
    """Every problem, on stderr: grouped in a table on a terminal, one unbroken line each in a log."""
    from .messages import print_input_error as show

    show(exc, console=err_console, show_all=show_all)


def _fail(exc: Exception) -> None:
    if isinstance(exc, InputError):
        print_input_error(exc)
        raise typer.Exit(EXIT_INPUT_ERROR)
    if isinstance(exc, AnalysisError):
        if err_console.is_terminal:
            err_console.print(f"[bold red]The analysis cannot be run:[/] {escape(str(exc))}")
        else:  # a log: never wrapped
            err_console.print(f"The analysis cannot be run: {exc}", soft_wrap=True, markup=False, highlight=False)
        raise typer.Exit(EXIT_INPUT_ERROR)
    raise exc


@app.command()
def validate(
    study: StudyArg = Path("study.yaml"),
    show_all: Annotated[bool, typer.Option("--all", help="List every problem, not one line per column and rule.")] = False,
    problems_csv: Annotated[Path | None, typer.Option("--problems", help="Also write every problem to this CSV file "
                                                      "(file,row,column,value,rule,fix).")] = None,
    fmt: Annotated[str, typer.Option("--format", help="text (a table on a terminal, one line per problem in a log) "
                                     "or json (on standard output).")] = "text",
) -> None:
    """Check the study file and the data files, and what the analysis needs from them (events, events by
    the horizon, events in every level, events per parameter); print n, events, missing values and the
    patient flow.  Exit 2 when the data or the study file are invalid, or the analysis would refuse them."""
    from .cohort.io import load_study_data
    from .cohort.summary import check_summary, print_check_summary
    from .messages import problems_document, write_problems_csv
    from .needs import analysis_needs
    from .spec import load_spec

    if fmt not in ("text", "json"):
        err_console.print(f"--format must be text or json (got {fmt!r})", markup=False)
        raise typer.Exit(EXIT_INPUT_ERROR)
    inputs: list[Path] = [study]
    spec = None

    def save(problems: list) -> None:
        if problems_csv is not None:
            write_problems_csv(problems_csv, problems, inputs=inputs)

    try:
        spec = load_spec(study)
        inputs += [p for p in (spec.cohort_path, spec.repeated_path, getattr(spec, "validation_path", None)) if p is not None]
        data = load_study_data(spec)
    except InputError as exc:
        try:
            save(exc.problems)
        except InputError as bad:
            _fail(bad)
        if fmt == "json":
            console.print(problems_document("invalid", exc.problems, summary=exc.summary), soft_wrap=True,
                          markup=False, highlight=False)
            raise typer.Exit(EXIT_INPUT_ERROR) from None
        print_input_error(exc, show_all=show_all)
        raise typer.Exit(EXIT_INPUT_ERROR) from None
    except AnalysisError as exc:
        _fail(exc)
    findings = analysis_needs(spec, data.analysed)
    errors = [f.problem(spec.cohort_file) for f in findings if f.severity == "error"]
    warnings = [f.problem(spec.cohort_file) for f in findings if f.severity == "warning"]
    from .narrative import translation_problems

    warnings += translation_problems(spec)  # words a report in another language shows in English
    try:
        save(errors + warnings)
    except InputError as bad:
        _fail(bad)
    if fmt == "json":
        summary = check_summary(data)
        console.print(problems_document(
            "analysis_refused" if errors else "valid", errors, summary="What the analysis needs" if errors else "Valid",
            warnings=[*data.warnings, *warnings], sha256=data.sha256,
            cohort={r.quantity: {"all_rows": r.all_rows, "analysed": r.analysed} for r in summary.itertuples()}),
            soft_wrap=True, markup=False, highlight=False)
    else:
        print_check_summary(data, console=console, analysis_errors=errors, analysis_warnings=warnings,
                            show_all=show_all)
    if errors:
        raise typer.Exit(EXIT_INPUT_ERROR)


@app.command()
def new(
    folder: Annotated[Path, typer.Argument(help="The study folder to create (must not exist or be empty).")],
    title: Annotated[str, typer.Option(help="The study's title (default: from the folder name); edit it in study.yaml later.")] = "",
) -> None:
    """Create a new study folder: a commented study.yaml, narrative files to fill in, data/, and the report's documents."""
    from .new_study import create_study

    try:
        made = create_study(folder, title=title)
    except InputError as exc:
        _fail(exc)
    console.print(f"Created {made.folder}/ with study.yaml, narrative/, data/, _quarto.yml and report/.", highlight=False)
    console.print("Next:", highlight=False)
    console.print(f"  1. put your cohort file in {made.folder}/data/ and describe its columns in {made.folder}/study.yaml", highlight=False)
    console.print(f"  2. cd {made.folder} && cementleak validate", highlight=False)
    console.print("  3. write narrative/background.md, discussion.md, limitations.md (optional; neutral text otherwise)", highlight=False)
    console.print("  4. cementleak report        (HTML, PDF, Word and slides into _output/)", highlight=False)


@app.command()
def simulate(
    out: Annotated[Path, typer.Option(help="Directory to write cohort.csv, outcomes.csv and the data dictionary into.")] = Path("data"),
    seed: Annotated[int | None, typer.Option(help="Random seed (default: the documented seed of the shipped cohort).")] = None,
    n: Annotated[int, typer.Option(help="Number of patients.")] = 100,
) -> None:
    """Generate the shipped example's SYNTHETIC cohort (seeded; same seed, byte-identical files)."""
    from .synthetic import DEFAULT_SEED, write_synthetic

    try:
        paths = write_synthetic(out, seed=DEFAULT_SEED if seed is None else seed, n=n)
    except InputError as exc:
        _fail(exc)
    for p in paths:
        console.print(f"wrote {p}")
    console.print("[bold yellow]These data are SYNTHETIC[/] — generated, not observed patients.")



def _progress_runner():
    """A rich progress display and a callback ``progress(step, done, total)`` for run_study."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    bar = Progress(TextColumn("{task.description:<40}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                   console=err_console, transient=False)
    tasks: dict[str, int] = {}

    def progress(step: str, done: int, total: int) -> None:
        if step not in tasks:
            tasks[step] = bar.add_task(step, total=total or 1)
        bar.update(tasks[step], completed=done if total else 1, total=total or 1)

    return bar, progress


def _analysis(study: Path, *, use_cache: bool = True, n_jobs: int = 1, dask_scheduler: str | None = None,
              on_compute=None):
    """Validate and analyse (or load the cached results); ``on_compute()`` is called once if the
    results are computed (not in the cache)."""
    import time
    from contextlib import ExitStack

    from .spec import load_spec
    from .study import run_study

    spec = load_spec(study)
    bar, progress = _progress_runner()
    if on_compute is not None:
        shown, started = progress, []

        def progress(step: str, done: int, total: int) -> None:
            if not started:
                started.append(on_compute())
            shown(step, done, total)
    t0 = time.perf_counter()
    with bar, ExitStack() as stack:
        if dask_scheduler:  # the bootstrap chunks on a Dask cluster, through joblib's dask backend
            import joblib
            from dask.distributed import Client

            stack.enter_context(Client(None if dask_scheduler == "local" else dask_scheduler))
            stack.enter_context(joblib.parallel_backend("dask"))
            n_jobs = -1
        results = run_study(spec, progress=progress, use_cache=use_cache, notify=_notice, n_jobs=n_jobs)
    for row in results.checks.itertuples():
        if not row.ok:
            err_console.print(f"[bold yellow]warning[/]: {row.check}: {row.note}", highlight=False)
    return spec, results, time.perf_counter() - t0


#: what the figure workers of ``analyze`` import while the statistics run (the figures' functions)
FIGURE_PRELOAD = ("cementleak_stats.presentation",)
_FIGURE_FORMATS = ("png", "svg", "pdf")


def _figure_formats(value: str | None) -> tuple[str, ...] | None:
    """``--figures``: None (the study file's formats), () for 'none', or the formats listed."""
    if value is None:
        return None
    listed = [f.strip().lower() for f in value.split(",") if f.strip()]
    if listed == ["none"]:
        return ()
    unknown = [f for f in listed if f not in _FIGURE_FORMATS]
    if unknown or not listed or len(set(listed)) < len(listed):
        why = (f"{', '.join(map(repr, unknown))} is not a figure format" if unknown else
               "no format given" if not listed else "a format is listed twice")
        raise typer.BadParameter(f"{why}; list png, svg and/or pdf once each (e.g. --figures png,pdf), or 'none'",
                                 param_hint="--figures")
    return tuple(listed)


@app.command()
def analyze(
    study: StudyArg = Path("study.yaml"),
    out: Annotated[Path, typer.Option(help="Directory for the results tables (CSV/JSON) and figures (PNG, SVG, PDF at 300 dpi).")] = Path("_output/results"),
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Recompute even if cached results for these inputs exist.")] = False,
    n_jobs: Annotated[int, typer.Option("--n-jobs", help="Processes for the bootstrap (-1: all cores); the numbers do not change.")] = 1,
    dask_scheduler: Annotated[str | None, typer.Option("--dask-scheduler", help="Run the bootstrap on a Dask cluster: its scheduler address (tcp://host:8786), or 'local' (needs the dask extra).")] = None,
    figures: Annotated[str | None, typer.Option("--figures", help="Figure formats to write, comma-separated from png, svg and pdf (e.g. 'png' for HTML only), or 'none' for the tables alone; default: the study file's report.figure_formats.")] = None,
) -> None:
    """Run the whole analysis (Cox, nomogram, bootstrap validation and calibration, decision curve, outcomes)."""
    from filelock import FileLock, Timeout

    from .export import FiguresNotDrawn, results_current, write_results
    from .export.workers import FigureWorkers
    from .render.lock import lock_path

    from contextlib import nullcontext

    from . import study as _pipeline  # noqa: F401 - imported before the figure workers fork: they inherit it

    formats = _figure_formats(figures)
    draw = formats != ()
    # the figure workers warm up (import the drawing stack, load fonts) on the core the statistics leave idle
    with FigureWorkers(modules=FIGURE_PRELOAD) if draw else nullcontext() as workers:
        try:
            spec, results, secs = _analysis(study, use_cache=not no_cache, n_jobs=n_jobs, dask_scheduler=dask_scheduler)
        except (InputError, AnalysisError) as exc:
            _fail(exc)
        out.parent.mkdir(parents=True, exist_ok=True)
        try:
            # the same lock as a render of the output directory that holds the results
            with FileLock(str(lock_path(out.parent)), timeout=0):
                # the folder already holds these results, untouched (its signed stamp): not written again
                current = not no_cache and results_current(results, out, figures=draw, formats=formats)
                files = [] if current else write_results(results, out, figures=draw, formats=formats, workers=workers)
        except Timeout:
            err_console.print(f"[bold red]Another cementleak run is writing {out.parent}[/]; wait for it to finish, then run again.")
            raise typer.Exit(EXIT_INPUT_ERROR) from None
        except FiguresNotDrawn as exc:  # the statistics are written; a drawing failed
            err_console.print(f"[bold red]Some figures could not be drawn[/]: {escape(str(exc))}", highlight=False)
            raise typer.Exit(1) from None
    console.print(f"analysis: {secs:.1f} s; " + (f"{out} already holds these results (unchanged)" if current
                                                  else f"wrote {len(files)} files to {out}"), highlight=False)
    if spec.study.synthetic:
        console.print("[bold yellow]SYNTHETIC DATA[/]: these results describe a generated cohort, not real patients.")


def _commit_report_results(staged: Path | None, results_dir: Path, lock: Path) -> None:
    """Swap the staged results files in after a successful render (or say what was not replaced);
    ``staged`` None: the results folder was already current and is kept (the render carries it over)."""
    import atexit

    from filelock import FileLock, Timeout

    from .export import NOT_DRAWN, commit_results, discard_results

    if staged is None:
        console.print(f"{results_dir} already holds these results (unchanged)", highlight=False)
        return
    atexit.unregister(discard_results)
    try:
        with FileLock(str(lock), timeout=60):
            files = commit_results(staged, results_dir)
    except (Timeout, OSError) as exc:
        discard_results(staged)
        err_console.print(f"[bold red]The report was replaced, but the results files were not[/] ({escape(str(exc))}): "
                          f"{results_dir} holds the previous results; run `cementleak analyze --out {results_dir}`.")
        raise typer.Exit(1) from None
    console.print(f"wrote {len(files)} results files to {results_dir}", highlight=False)
    not_drawn = results_dir / NOT_DRAWN
    if not_drawn.exists():  # the report and the tables are written; say which figure files are missing
        err_console.print(f"[bold yellow]Some figure files could not be drawn[/] (listed in {not_drawn}):\n"
                          + escape(not_drawn.read_text(encoding="utf-8")), highlight=False)


def _document_inputs(study: Path, spec, results, project: Path):
    """What the documents get from this run: their parameters (the study file and the key of
    the results just validated and computed or loaded; both engines inject them after each
    document's ``parameters`` cell) and the built-in engine's execution cache.

    The key is passed, and outputs are cached, only when the results are stored under it: the
    key then names everything the documents show besides their own text (data, study file,
    narrative, code and library versions).  Otherwise each document runs the analysis itself.
    """
    from .cache import CACHE_DIR_NAME, SignedFiles, cache_path
    from .render.execute import ExecutionCache

    key = results.provenance.cache_key()
    params = {"study": str(Path(study).resolve())}
    if not cache_path(spec.base_dir, key).is_file():
        return params, None
    signed = SignedFiles("render")
    cache = ExecutionCache(project.resolve() / CACHE_DIR_NAME / "render", read=signed.read, write=signed.write)
    return {**params, "results": key}, cache


def _shared_figures(spec, params):
    """The figures the documents and the results folder share (drawn once: :mod:`.figure_cache`),
    when the documents read the results by key; else None."""
    from .figure_cache import shared_figures

    return shared_figures(spec.base_dir, params["results"]) if "results" in params else None


#: what the documents' kernels import (report/_setup.qmd: cementleak_stats.document; its
#: statistics and figure stack through presentation, which leaves matplotlib's backend alone):
#: the same modules as the figure workers'
REPORT_PRELOAD = FIGURE_PRELOAD
#: what that server does with the documents' parameters before it forks their kernels: reads the results once
REPORT_PREPARE = "cementleak_stats.document:preload_reports"


@app.command()
def report(
    study: StudyArg = Path("study.yaml"),
    engine: Annotated[str, typer.Option(help="auto: the Quarto CLI when it is on PATH, else the built-in engine; quarto; builtin.")] = "auto",
    to: Annotated[str, typer.Option(help="Comma-separated formats: html, pdf, docx, slides.")] = "html,pdf,docx,slides",
    project: Annotated[Path, typer.Option(help="Quarto project directory (holds _quarto.yml).")] = Path("."),
    timings_json: Annotated[Path | None, typer.Option("--timings", help="Also write the time breakdown (step, seconds) to this JSON file.")] = None,
    lang: Annotated[str, typer.Option("--lang", help="Language(s) of the report, comma-separated: en, zh (Simplified Chinese), "
                                      "or zh,en; default the study file's report.language. Chinese documents are *.zh.qmd "
                                      "(index.zh.html, index.zh.pdf, ...).")] = "",
) -> None:
    """Validate, analyse (cached) and render the study report, the audit documents and the slides into _output/."""
    import atexit
    import time

    from filelock import FileLock, Timeout

    from .export import discard_results, results_current, stage_results
    from .render import RenderError, render_project
    from .render.config import load_project
    from .render.lock import lock_path
    from .render.quarto import QUARTO_ENV, find_quarto, render_with_quarto

    if engine not in ("auto", "quarto", "builtin"):
        err_console.print(f"[bold red]--engine must be auto, quarto or builtin[/] (got {engine!r})")
        raise typer.Exit(EXIT_INPUT_ERROR)
    formats = [f.strip() for f in to.split(",") if f.strip()]
    bad = [f for f in formats if f not in ("html", "pdf", "docx", "slides")]
    if bad:
        err_console.print(f"[bold red]Unknown format(s) {bad}[/]; choose from html, pdf, docx, slides")
        raise typer.Exit(EXIT_INPUT_ERROR)
    quarto = find_quarto() if engine != "builtin" else None
    use_quarto = quarto is not None
    if engine == "quarto" and quarto is None:
        err_console.print(f"[bold red]No quarto CLI found[/] (on PATH, or named by {QUARTO_ENV}); use --engine builtin (or auto).")
        raise typer.Exit(EXIT_INPUT_ERROR)
    from .i18n import LANGUAGES, document_language

    languages = [x.strip() for x in lang.split(",") if x.strip()]
    unknown = [x for x in languages if x not in LANGUAGES]
    if unknown:
        err_console.print(f"[bold red]Unknown language(s) {unknown}[/]; choose from {', '.join(LANGUAGES)} (e.g. --lang zh,en)")
        raise typer.Exit(EXIT_INPUT_ERROR)
    from contextlib import nullcontext

    from .export.workers import FigureWorkers

    def start_kernels(params=None) -> None:  # new results: every document will run; its kernels' server imports beside the analysis
        from .render.execute import start_kernels

        start_kernels(REPORT_PRELOAD, prepare=REPORT_PREPARE, params=params)
        kernels.append(params)

    kernels: list[object] = []
    from . import study as _pipeline  # noqa: F401 - imported before the figure workers fork: they inherit it

    # the results figures' workers warm up on the core the analysis leaves idle (as analyze's);
    # ended at once when the results folder turns out to be current already
    workers = FigureWorkers(modules=FIGURE_PRELOAD)
    try:
        spec, results, secs = _analysis(study, on_compute=None if use_quarto else start_kernels)
    except (InputError, AnalysisError) as exc:
        workers.close()
        _fail(exc)
    languages = languages or list(spec.report.language)

    def wanted(document: Path) -> bool:  # the documents of the report's languages
        return document_language(document) in languages
    timings = [("analysis (validate + compute or load cache)", secs)]
    params, render_cache = _document_inputs(study, spec, results, project)
    if kernels:  # the server reads the results for the documents while this process gets the render ready
        start_kernels(params)
    out = (project / load_project(project).output_dir).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    try:  # another run writing this output: stop before writing
        with FileLock(str(lock_path(out)), timeout=0):
            # the results folder already holds these results, untouched (its signed stamp)?
            current = results_current(results, out / "results")
    except Timeout:
        workers.close()
        err_console.print(f"[bold red]Another cementleak run is writing {out}[/]; wait for it to finish, then run again.")
        raise typer.Exit(EXIT_INPUT_ERROR) from None
    if current:
        workers.close()
    # if not, the results files are written by the figure workers while the documents run (built-in engine)
    with nullcontext() if current else workers:
        # the results files are staged beside the output folder (a render replaces it) and swapped in
        # only after the render succeeded: the results files and the report change together or not at all
        staging: dict[str, object] = {"path": None, "seconds": 0.0}

        def stage_files() -> None:  # under the output lock: the render's (built-in engine) or its own
            t = time.perf_counter()
            if not current:
                staging["path"] = stage_results(results, out / "results", parent=out.parent, workers=workers,
                                                shared=_shared_figures(spec, params))
                atexit.register(discard_results, staging["path"])  # any failure below: the staged files go
                workers.close()  # the results figures are written: their workers end now, not after the render
            staging["seconds"] = time.perf_counter() - t

        def show(document: str, step: str) -> None:
            err_console.print(f"[dim]render[/] {document} — {step}", highlight=False)

        t0 = time.perf_counter()
        try:
            if quarto is not None:  # the real Quarto CLI, with this interpreter (render/quarto.py)
                try:
                    with FileLock(str(lock_path(out)), timeout=0):
                        stage_files()
                except Timeout:
                    err_console.print(f"[bold red]Another cementleak run is writing {out}[/]; wait for it to finish, then run again.")
                    raise typer.Exit(EXIT_INPUT_ERROR) from None
                rep = render_with_quarto(project, quarto=quarto, to=formats, progress=show, select=wanted, params=params)
            else:  # the results files are written while the documents run; kernels forked with the documents' imports done
                rep = render_project(project, to=formats, progress=show, select=wanted, params=params, cache=render_cache,
                                     preload=REPORT_PRELOAD, prepare=REPORT_PREPARE, alongside=stage_files)
        except RenderError as exc:
            if quarto is not None and exc.details:
                err_console.print(escape(exc.details), highlight=False, soft_wrap=True)
            err_console.print(f"[bold red]Render failed[/]: {escape(str(exc))}")
            err_console.print(f"Nothing was replaced: the previous {out.name}/ (report and results files) is unchanged.")
            if staging["path"] is not None:
                discard_results(staging["path"])
            raise typer.Exit(EXIT_INPUT_ERROR) from None
        staged = staging["path"]
        timings.append(("results files (CSV, figures)", staging["seconds"]))  # built-in engine: during the render
        for f in rep.files:
            console.print(f"wrote {f.path}")
        timings.append((f"render ({'quarto' if use_quarto else 'built-in engine'}: {', '.join(formats)})", time.perf_counter() - t0))
        _commit_report_results(staged, out / "results", lock_path(out))
    # per document and format (the built-in engine runs documents two at a time)
    timings += [(f"  {document}: {step}", sec) for document, step, sec in rep.timings]
    table = Table(title="Time")
    table.add_column("step")
    table.add_column("seconds", justify="right")
    for name, sec in timings:
        table.add_row(name, f"{sec:.1f}")
    console.print(table)
    if timings_json is not None:
        import json

        timings_json.write_text(json.dumps([{"step": name.strip(), "seconds": round(sec, 3)} for name, sec in timings], indent=1) + "\n")
    if spec.study.synthetic:
        console.print("[bold yellow]SYNTHETIC DATA[/]: the report describes a generated cohort, not real patients.")


def _notice(message: str) -> None:
    """One line on stderr (a cache entry ignored, ...), never wrapped."""
    err_console.print(f"[yellow]notice[/]: {escape(message)}", highlight=False, soft_wrap=True)


def _predict_file(study: Path, input_file: Path | None, out: Path | None, *, model: Path | None, results: Path) -> None:
    """``predict --input new.csv --out risks.csv``: every row scored with the frozen model; rows that cannot be
    scored are listed (as validate lists problems) and kept in the output, never dropped; exit 2 if any."""
    from .export import scoring_model
    from .messages import print_problems
    from .scoring import score_file, write_scores
    from .spec import load_spec

    if input_file is None or out is None:
        err_console.print("give predictor values (name=value ...), or --input FILE --out risks.csv", markup=False)
        raise typer.Exit(EXIT_INPUT_ERROR)
    try:
        spec = load_spec(study)
        bar, progress = _progress_runner()
        bar.transient = True  # shown only while an analysis is computed, then removed
        with bar:
            data, source = scoring_model(spec, model=model, results_dir=results, notify=_notice, progress=progress)
        batch = score_file(spec, data, input_file)
        write_scores(batch, out, inputs=(input_file, study, *([model] if model else [])))
    except (InputError, AnalysisError) as exc:
        _fail(exc)
    console.print(f"scored {batch.n_scored} of {len(batch.scores)} rows: risk of {spec.outcome.event_label.lower()} by "
                  f"{batch.horizon:g} {spec.outcome.time_unit}; wrote {out}", markup=False, highlight=False, soft_wrap=True)
    console.print(_model_line(data, source, study), markup=False, highlight=False, soft_wrap=True)
    if spec.study.synthetic:
        console.print("[bold yellow]SYNTHETIC DATA[/]: a model fitted to a generated cohort; for teaching only.")
    if batch.problems:
        print_problems(batch.problems, console=err_console, title=f"{batch.n_not_scored} row(s) of {input_file.name} not scored")
        err_console.print(f"These rows are in {out} with scored = False and their problem; the other rows were scored.",
                          markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(EXIT_INPUT_ERROR)


def _model_line(data: dict, source: str, study: Path, why_not: str = "") -> str:
    """Which model file (or analysis) and which study the prediction used."""
    dev = (data.get("cohorts") or {}).get("development") or {}
    fitted = f" to {dev['n']} patients ({dev['events']} events)" if dev.get("n") is not None else ""
    title = data["study"].get("title") or ""
    if source == "analysis results":  # no current model file: the model file's data built from the analysis
        return (f"Model: fitted by the analysis of {study} (\"{title}\"){fitted}; no current model file"
                + (f" ({why_not})" if why_not else ""))
    return f"Model: {source}, fitted with {data['study'].get('file') or study} (\"{title}\"){fitted}"


@app.command()
def predict(
    values: Annotated[list[str] | None, typer.Argument(help="Predictor values as name=value, e.g. ct_value_hu=75 cement_viscosity=low.")] = None,
    study: Annotated[Path, typer.Option(help="Study file.")] = Path("study.yaml"),
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    model: Annotated[Path | None, typer.Option(help="Score with this exported model file (model.json written by analyze); the data are not needed.")] = None,
    results: Annotated[Path, typer.Option(help="Results folder whose model.json is used when it is current (same study file and data).")] = Path("_output/results"),
    input_file: Annotated[Path | None, typer.Option("--input", help="Score every row of this table of new patients (CSV, XLSX, SAV, Parquet) instead; needs --out.")] = None,
    out: Annotated[Path | None, typer.Option("--out", help="With --input: the CSV of risks to write, one row per input row (rows that cannot be scored are kept, with their problem).")] = None,
) -> None:
    """Score one patient with the exported model file: points per predictor, total points, risk at the horizon
    (and at the study's other horizons).

    Reads the model file (model.json, written by analyze; docs/results-files.md) when it was
    fitted from this study file and these data, or the one given by --model; else builds the
    same model from the cached analysis (computed only when no cache exists).  Prints the
    prediction and the model and study it came from (the study's warnings are printed by
    validate, analyze and report).  Bad values: every problem listed, exit code 2.
    """
    import contextlib
    import json

    from .model_file import find_model_file, patient_values, score_patient

    if input_file is not None or not values:
        _predict_file(study, input_file, out, model=model, results=results)
        return
    patient: dict[str, object] = {}
    for item in values:
        if "=" not in item:
            err_console.print(f"[bold red]{escape(repr(item))} is not name=value[/]; e.g. ct_value_hu=75")
            raise typer.Exit(EXIT_INPUT_ERROR)
        k, v = item.split("=", 1)
        patient[k.strip()] = v.strip()
    try:
        # the model file alone (no study-file parse, no data, no pandas) when it is current
        data, source = find_model_file(study, model=model, results_dir=results)
        why_not = ""
        if data is None:  # no current model file: the cached analysis gives the model file's data
            from .export import scoring_model
            from .spec import load_spec

            why_not = source
            spec = load_spec(study)
            bar, progress = _progress_runner() if err_console.is_terminal else (contextlib.nullcontext(), None)
            if progress is not None:
                bar.transient = True  # shown only while an analysis is computed, then removed
            with bar:
                data, source = scoring_model(spec, model=model, results_dir=results, notify=_notice, progress=progress)
        res = score_patient(data, patient_values(data, patient, file="command line"))
    except (InputError, AnalysisError) as exc:
        _fail(exc)
    outcome, preds = data["outcome"], {p["name"]: p for p in data["predictors"]}
    if as_json:
        console.print_json(json.dumps({"points": {name: pts for name, _, _, pts in res.points},
                                       "total_points": res.total_points, "lp": res.lp, "risk": res.risk,
                                       "horizon": res.horizon, "model_file": source,
                                       "risks": [{"horizon": h, "risk": r} for h, r in res.risks],
                                       "study_file": data["study"].get("file"), "study_sha256": data["study"]["sha256"],
                                       "synthetic": data["study"]["synthetic"]}))
        return
    from .model_file import horizon_label, number_label

    def by(h: float) -> str:
        return horizon_label(h, outcome["time_unit"])

    t = Table(title=f"Predicted risk of {outcome['event_label'].lower()} by {by(res.horizon)}")
    t.add_column("predictor")
    t.add_column("value")
    t.add_column("points", justify="right")
    for name, value, _, pts in res.points:
        shown = number_label(value) if isinstance(value, float) else str(value)
        t.add_row(escape(preds[name].get("display") or name), escape(shown), f"{pts:.1f}")
    t.add_row("[bold]Total points[/]", "", f"[bold]{res.total_points:.1f}[/]")
    console.print(t)
    console.print(f"Risk by {by(res.horizon)}: [bold]{100 * res.risk:.1f}%[/] (linear predictor {res.lp:.4f})")
    if len(res.risks) > 1:  # the study's other horizons too (a risk axis each on the nomogram)
        console.print("Risk by each horizon: " + "; ".join(f"{by(h)} {100 * r:.1f}%" for h, r in res.risks))
    console.print(_model_line(data, source, study, why_not), markup=False, highlight=False, soft_wrap=True)
    if data["study"]["synthetic"]:
        console.print("[bold yellow]SYNTHETIC DATA[/]: a model fitted to a generated cohort; for teaching only.")


@app.command()
def audit(
    study: StudyArg = Path("study.yaml"),
    output: Annotated[Path, typer.Option(help="The delivered output folder: results/ and the rendered report.")] = Path("_output"),
    fmt: Annotated[str, typer.Option("--format", help="text: a table on a terminal, one line per finding otherwise; json.")] = "text",
) -> None:
    """Recompute everything from the data and the study file (no cache) and compare it with a delivered output.

    Compared: every number in results/*.csv, summary.json and model.json, cell by cell
    (numbers within 2e-9 relative); the inputs the results were made from (study file and
    data SHA-256, code digest, library versions) with the inputs now; the rendered report's
    colophon with the recomputation.
    Verdict per file: identical, different (which cells) or not reproducible (which input changed).
    Exit code 0 only when everything matches, 1 when something differs, 2 when there is nothing to audit.
    """
    import contextlib
    import json

    from .audit import audit_study
    from .spec import load_spec

    if fmt not in ("text", "json"):
        err_console.print(f"[bold red]--format must be text or json[/] (got {escape(fmt)!r})")
        raise typer.Exit(EXIT_INPUT_ERROR)
    try:
        spec = load_spec(study)
        bar, progress = _progress_runner() if err_console.is_terminal and fmt == "text" else (contextlib.nullcontext(), None)
        with bar:
            rep = audit_study(spec, output, progress=progress)
    except (InputError, AnalysisError) as exc:
        _fail(exc)
    if fmt == "json":
        print(json.dumps(rep.to_dict(), indent=1, ensure_ascii=False))
    elif console.is_terminal:
        _print_audit_table(rep)
    else:
        for line in rep.lines():
            print(line)
    raise typer.Exit(0 if rep.ok else 1)


def _print_audit_table(rep) -> None:
    """The audit on a terminal: inputs that changed, a verdict per file, the differing cells."""
    if rep.input_changes:
        t = Table(title="Inputs that changed since the delivered results were made")
        for col in ("input", "delivered", "now"):
            t.add_column(col, overflow="fold")
        for c in rep.input_changes:
            t.add_row(escape(c.input), escape(c.delivered), escape(c.now))
        console.print(t)
    t = Table(title=f"Audit of {escape(str(rep.output_dir))}")
    t.add_column("file", overflow="fold")
    t.add_column("verdict")
    t.add_column("detail", overflow="fold")
    colour = {"identical": "green", "different": "red", "not reproducible": "yellow"}
    for f in rep.files:
        t.add_row(escape(f.file), f"[{colour.get(f.verdict, 'red')}]{f.verdict}[/]",
                  escape(f.detail + (f" ({f.n_cells} value{'s' * (f.n_cells != 1)})" if f.n_cells else "")))
    console.print(t)
    cells = [(f, c) for f in rep.files for c in f.cells]
    if cells:
        t = Table(title="Values that differ")
        for col in ("file", "row", "column", "delivered", "recomputed"):
            t.add_column(col, overflow="fold")
        for f, c in cells:
            t.add_row(escape(f.file), escape(f"{c.row} ({c.key})" if c.row is not None else c.key), escape(c.column),
                      escape(c.delivered), escape(c.recomputed))
        console.print(t)
    for n in rep.notes:
        console.print(escape(n), highlight=False)
    console.print(escape(rep.bootstrap_note), highlight=False)
    if rep.ok:
        console.print("[bold green]Audit passed[/]: every number and the provenance match the recomputation.", highlight=False)
    else:
        console.print(f"[bold red]Audit failed[/]: {escape(rep.summary())}.", highlight=False)


def main() -> None:
    """The console entry point: the command, then an exit without the interpreter's teardown.

    Once a command has returned, its files are written and closed and its output printed; what
    is left is CPython freeing every object and module of the scientific stack (numba's compiled
    code, pandas, scipy), about 0.6 s after an analysis, for nothing.  So the exit does what
    finalization does that anyone can see, in its order: join the threads that are not daemons
    (``concurrent.futures``' exit hooks among them), run the ``atexit`` handlers (staged files
    discarded, workers and kernel servers ended, logging flushed), flush the standard streams; and
    then ends the process with the command's exit status.  An exception that is not a
    ``SystemExit`` (a bug) leaves as usual, traceback and all.
    """
    try:
        app()
        code: object = 0
    except SystemExit as exc:
        code = exc.code
    if code is not None and not isinstance(code, int):  # sys.exit("message"): printed, status 1
        print(code, file=sys.stderr)
        code = 1
    import atexit
    import os
    import threading

    shutdown = getattr(threading, "_shutdown", None)  # what Py_Finalize does first (CPython)
    if shutdown is not None:
        shutdown()
    else:  # pragma: no cover - another interpreter
        for thread in threading.enumerate():
            if thread is not threading.main_thread() and not thread.daemon:
                thread.join()
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe: nothing more can be said
            pass
    os._exit(code or 0)


if __name__ == "__main__":  # pragma: no cover
    main()
