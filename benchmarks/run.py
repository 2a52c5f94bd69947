"""``make bench``: what a user waits for, against the goals of issue 16, measured in one run.

The goal table (one row per line of issue 16), each measured in a fresh process on a scratch
copy of the project (``data/`` and ``_output/`` of the project are never written):

1. ``cementleak analyze --no-cache`` on the shipped study, process start to exit, against R rms
   ``validate`` + ``calibrate(cmethod = "KM")`` on the same rows and B in the same run
   (``benchmarks/rms_bench.R`` through ``Rscript``; the row says when R is absent), with the
   breakdown of one more run under pyinstrument: imports, statistics, reading, writing files;
   and, for comparison with the same R time, the same command without figures and a fresh
   Python that only imports the libraries (how far below them the goal lies).
2. ``cementleak report`` (what ``make report`` runs), all formats, empty caches, then unchanged
   inputs; shown also relative to the analyze time and to a fixed numpy workload of this run.
3. ``cementleak predict`` of one patient, after the analyze of row 1.
4. The repeated-measures step at n = 10,000 (simulated cohort).
5. The full analysis at n = 1,000,000, B = 200, through ``benchmarks/scale_study.py``
   (``--full`` / ``make bench BENCH_FULL=1``; otherwise the row says how to run it).
6. The same with the bootstrap on a local Dask cluster (``--full``).

The package measured is the committed one (``git archive HEAD``), copied with this harness into
the scratch folder for the whole run, so that edits made to the tree meanwhile change nothing.

Below the goal table: the bootstrap engine against lifelines refits (and the coefficient
agreement), the report's time breakdown, and the analysis step by step on simulated cohorts.

Usage: ``python -m benchmarks.run [--full] [--quick] [--bootstrap-b B] [--out FILE] [--skip NAMES]``; NAMES from
``analyze,r,report,predict,repeated,engine,scale`` (a skipped row says so in the table).
``--quick`` is the smoke version (tiny B and n): the harness, not the numbers.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
HERE = Path(__file__).resolve().parent
RESULTS = HERE / "RESULTS.md"
R_SCRIPT = HERE / "rms_bench.R"
STUDY = str(ROOT / "study.yaml")  # the shipped study (read only)
#: everything below this line of RESULTS.md is kept when the file is rewritten
NOTES_MARKER = "<!-- notes: written by hand; benchmarks/run.py keeps everything below this line -->"
PROJECT_FILES = ("report", "narrative", "_quarto.yml", "study.yaml", "data")
SECTIONS = ("analyze", "r", "report", "predict", "repeated", "engine", "scale")
#: the libraries of the field that ``analyze`` cannot do without (row 1g: their import alone)
FLOOR_IMPORTS = ("numpy", "pandas", "scipy.stats", "matplotlib.pyplot")
HOW_FULL = "`make bench BENCH_FULL=1` (`python -m benchmarks.run --full`)"


# ============================================================================================
# results
# ============================================================================================
@dataclass(frozen=True)
class Row:
    """One line of the engine table: seconds of the baseline and of ours (None = not measured)."""

    what: str
    baseline: float | None
    ours: float | None
    peak_mb: float | None
    note: str = ""

    @property
    def ratio(self) -> float | None:
        if self.baseline is None or self.ours is None or self.ours <= 0:
            return None
        return self.baseline / self.ours


@dataclass(frozen=True)
class Goal:
    """One line of the goal table.  ``value`` is compared with ``limit`` (at most); ``peak_mb``
    with ``peak_limit_mb`` when given.  ``value`` None with a ``skipped`` reason: not measured."""

    key: str
    what: str
    measured: str = ""
    baseline: str = ""
    ratio: str = ""
    value: float | None = None
    limit: float | None = None
    goal: str = ""
    peak_mb: float | None = None
    peak_limit_mb: float | None = None
    skipped: str = ""
    failed: bool = False

    @property
    def result(self) -> str:
        if self.skipped:
            return "SKIPPED"
        if self.failed:
            return "FAILED"
        if self.limit is None:
            return ""
        if self.value is None:
            return "MISS"
        ok = self.value <= self.limit
        if self.peak_limit_mb is not None:
            ok = ok and self.peak_mb is not None and self.peak_mb <= self.peak_limit_mb
        return "PASS" if ok else "MISS"


GOAL_HEADER = "| # | what a user runs | measured | baseline (same run) | ratio | peak RSS | goal | result |"


def _fmt_s(x: float | None) -> str:
    if x is None:
        return "-"
    return f"{x:.3g} s" if x < 10 else f"{x:.1f} s"


def _fmt_mb(x: float | None) -> str:
    return "-" if x is None else f"{x:.0f} MB"


def goal_markdown(goals: Sequence[Goal]) -> str:
    """The goal table (markdown)."""
    lines = [GOAL_HEADER, "|---|---|---:|---|---:|---:|---|---|"]
    for g in goals:
        measured = f"skipped: {g.skipped}" if g.skipped else (g.measured or "-")
        result = f"**{g.result}**" if g.result else ""
        lines.append(f"| {g.key} | {g.what} | {measured} | {g.baseline or '-'} | {g.ratio or '-'} | "
                     f"{_fmt_mb(g.peak_mb)} | {g.goal or ''} | {result} |")
    return "\n".join(lines)


def table_markdown(rows: Sequence[Row]) -> str:
    """The engine table (markdown): what, baseline, ours, ratio, peak memory, note."""
    lines = ["| what | baseline | ours | ratio | peak memory | note |", "|---|---:|---:|---:|---:|---|"]
    for r in rows:
        ratio = "-" if r.ratio is None else f"{r.ratio:.1f}x"
        lines.append(f"| {r.what} | {_fmt_s(r.baseline)} | {_fmt_s(r.ours)} | {ratio} | {_fmt_mb(r.peak_mb)} | {r.note} |")
    return "\n".join(lines)


def growth_exponent(n: Sequence[float], y: Sequence[float]) -> float:
    """Least-squares slope of log(y) on log(n): y ~ n^k."""
    ln = [math.log(v) for v in n]
    ly = [math.log(max(v, 1e-9)) for v in y]
    mx, my = sum(ln) / len(ln), sum(ly) / len(ly)
    sxx = sum((a - mx) ** 2 for a in ln)
    return sum((a - mx) * (b - my) for a, b in zip(ln, ly)) / sxx if sxx > 0 else float("nan")


# ============================================================================================
# the machine
# ============================================================================================
def machine() -> dict[str, str]:
    """CPU model, cores, RAM, Python, numpy, BLAS, R, load average, git commit."""
    import numpy as np
    from threadpoolctl import threadpool_info

    from cementleak_stats.provenance import git_commit

    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram = "unknown"
    try:
        kb = int(next(ln.split()[1] for ln in Path("/proc/meminfo").read_text().splitlines() if ln.startswith("MemTotal")))
        ram = f"{kb / 1024**2:.1f} GiB"
    except (OSError, StopIteration, ValueError):
        pass
    blas = "; ".join(f"{i.get('internal_api')} {i.get('version')} ({i.get('threading_layer', '?')}, {i.get('num_threads')} threads)"
                     for i in threadpool_info() if i.get("user_api") == "blas") or "none found"
    return {
        "CPU": cpu,
        "cores (os.cpu_count)": str(os.cpu_count()),
        "RAM": ram,
        "OS": platform.platform(),
        "Python": platform.python_version(),
        "numpy": np.__version__,
        "BLAS (threadpoolctl)": blas,
        "Rscript": shutil.which("Rscript") or "not found",
        "load average at start (1, 5, 15 min)": ", ".join(f"{x:.2f}" for x in os.getloadavg()),
        "git commit": git_commit(ROOT),
    }


# ============================================================================================
# running workers and commands
# ============================================================================================
class Timeout(RuntimeError):
    """A measured command ran longer than its limit (and was stopped)."""


def run_child(cmd: Sequence[str], *, cwd: Path = ROOT, env: dict[str, str] | None = None,
              timeout: float | None = None) -> tuple[float, float, str]:
    """Run a command; return its wall time, its peak RSS (MB, from wait4: the largest of the
    process and its waited-for children) and its stdout.  Past ``timeout`` seconds the command's
    process group is stopped and :class:`Timeout` raised."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(list(cmd), cwd=cwd, env=env, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                                start_new_session=True)
        status, usage = None, None
        while status is None:
            pid, st, ru = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                status, usage = st, ru
            elif timeout is not None and time.perf_counter() - t0 > timeout:
                os.killpg(proc.pid, signal.SIGKILL)  # the group of the command this function started
                os.wait4(proc.pid, 0)
                proc.returncode = -9
                raise Timeout(f"{' '.join(cmd)}: stopped after {timeout:.0f} s")
            else:
                time.sleep(0.01)
        seconds = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(errors="replace"), err.read().decode(errors="replace")
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{stderr[-3000:]}")
    return seconds, usage.ru_maxrss / 1024, stdout


def run_worker(name: str, args: dict[str, Any], *, isolated: bool = True, timeout: float | None = None,
               code: Path | None = None, env: dict[str, str] | None = None) -> dict[str, Any]:
    """A worker's result with ``peak_mb`` and ``wall_s``: in a fresh process (``isolated``, with the
    package and the harness of ``code`` when given, see :func:`snapshot_code`) or in this one."""
    if not isolated:
        from benchmarks import workers

        t0 = time.perf_counter()
        res = workers.WORKERS[name](args)
        return {**res, "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                "wall_s": time.perf_counter() - t0}
    if env is None:
        env = clean_env() if code is None else clean_env(PYTHONPATH=str(code))
    seconds, peak, stdout = run_child([sys.executable, "-m", "benchmarks.workers", name, json.dumps(args)],
                                      cwd=code or ROOT, env=env, timeout=timeout)
    return {**json.loads(stdout.strip().splitlines()[-1]), "peak_mb": peak, "wall_s": seconds}


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without the variables a report run sets for its kernels."""
    env = {k: v for k, v in os.environ.items() if k not in ("CEMENTLEAK_STUDY", "CEMENTLEAK_RESULTS_KEY")}
    return {**env, **extra}


def snapshot_code(dest: Path) -> str:
    """The code measured, frozen for the whole run: the package as committed (``git archive HEAD``;
    the working tree's copy without git) and this harness, byte-compiled as an installed package is.
    Others may edit the tree during a run; the caches' code digest and every row then see one version.
    Returns what was copied, for the table header."""
    dest.mkdir()
    try:
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", "HEAD", "cementleak_stats"], capture_output=True,
                                 check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
        what = "the package as committed (`git archive HEAD`; uncommitted edits are not measured)"
    except (OSError, subprocess.CalledProcessError):
        shutil.copytree(ROOT / "cementleak_stats", dest / "cementleak_stats",
                        ignore=shutil.ignore_patterns("__pycache__"))
        what = "the package as it is in the working tree (no git)"
    shutil.copytree(HERE, dest / "benchmarks", ignore=shutil.ignore_patterns("__pycache__", "RESULTS.md"))
    shutil.copy(ROOT / "study.yaml", dest / "study.yaml")  # scale_study.py reads the study beside its package
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(dest)], check=True, capture_output=True)
    # as `make` installs: numba compiles its kernels once, not in the first measured analysis
    compiled = subprocess.run([sys.executable, "-m", "cementleak_stats.models.compiled"], cwd=dest, check=True,
                              capture_output=True, text=True, env=clean_env(PYTHONPATH=str(dest)))
    return f"{what}; {compiled.stderr.strip()} as `make` does when it installs"


def cli() -> list[str]:
    """The command a user types: the venv's ``cementleak`` script, else ``python -m cementleak_stats.cli``."""
    script = Path(sys.executable).parent / "cementleak"
    return [str(script)] if script.exists() else [sys.executable, "-m", "cementleak_stats.cli"]


def scratch_project(root: Path, name: str, *, bootstrap_b: int | None = None) -> Path:
    """A copy of the project's study, data, narrative and documents under ``root/name``."""
    project = root / name
    project.mkdir()
    for item in PROJECT_FILES:
        src = ROOT / item
        if src.exists():
            (shutil.copytree if src.is_dir() else shutil.copy)(src, project / item)
    if bootstrap_b is not None:
        set_bootstrap_b(project / "study.yaml", bootstrap_b)
    return project


def set_bootstrap_b(study: Path, B: int) -> None:
    """Set ``analysis.bootstrap_b`` of a (scratch) study file, keeping its comments."""
    text, k = re.subn(r"(?m)^(\s*bootstrap_b:\s*)\d+", rf"\g<1>{B}", study.read_text(encoding="utf-8"))
    if k != 1:
        raise RuntimeError(f"{study}: expected one `bootstrap_b:` line, found {k}")
    study.write_text(text, encoding="utf-8")


def run_report(project: Path, label: str, env: dict[str, str]) -> dict[str, Any]:
    """``cementleak report`` (as ``make report``) in ``project``: wall time, peak RSS, its own breakdown."""
    timings = project.parent / f"timings-{project.name}-{label}.json"  # outside the project: not an input
    seconds, peak, _ = run_child([*cli(), "report", "study.yaml", "--timings", str(timings)], cwd=project, env=env)
    return {"seconds": seconds, "peak_mb": peak, "steps": json.loads(timings.read_text())}


# ============================================================================================
# the benchmark
# ============================================================================================
@dataclass(frozen=True)
class Config:
    B: int | None = None  # None: the study file's bootstrap_b
    k_lifelines: int = 50
    k_honest: int = 10
    k_agree: int = 25
    sizes: tuple[int, ...] = (1_000, 10_000)
    full_sizes: tuple[int, ...] = (1_000, 10_000, 100_000)
    scale_B: int = 200
    repeated_n: int = 10_000
    repeated_timeout_s: float = 300.0
    predict_runs: int = 3
    full: bool = False
    full_n: int = 1_000_000
    full_B: int = 200
    full_timeout_s: float = 1800.0
    dask_workers: int = 2
    isolated: bool = True
    seed: int = 20250427
    skip: frozenset[str] = field(default_factory=frozenset)


QUICK = Config(B=20, k_lifelines=2, k_honest=1, k_agree=2, sizes=(150, 300), scale_B=4, repeated_n=300, predict_runs=1,
               isolated=False, skip=frozenset({"analyze", "r", "report", "predict"}))


def _ratio(a: float | None, b: float | None, fmt: str = "{:.2f}") -> str:
    return "-" if a is None or b is None or b <= 0 else fmt.format(a / b)


def _relative(seconds: float, ref: dict[str, float]) -> str:
    """``seconds`` in units of the baselines of this run ("4.1x analyze; 12x ref")."""
    return "; ".join(f"{_num(seconds / v)}x {k}" for k, v in ref.items() if v)


def _num(x: float) -> str:
    return f"{x:.0f}" if x >= 100 else f"{x:.1f}" if x >= 10 else f"{x:.2g}"


@dataclass
class Run:
    """What the sections of one benchmark run share."""

    cfg: Config
    tmp: Path
    env: dict[str, str]
    log: Callable[[str], None]
    goals: list[Goal] = field(default_factory=list)
    rows: list[Row] = field(default_factory=list)
    sec: dict[str, Any] = field(default_factory=dict)
    project: Path | None = None
    analyze_s: float | None = None
    code: Path | None = None

    def worker(self, name: str, args: dict[str, Any], timeout: float | None = None) -> dict[str, Any]:
        return run_worker(name, args, isolated=self.cfg.isolated, timeout=timeout, code=self.code, env=self.env)

    @property
    def design(self) -> dict[str, Any]:
        return self.sec["design"]


def _failed(exc: BaseException) -> str:
    """The line of an error that says what went wrong (an exception's own line when there is one)."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    named = [ln for ln in lines if re.match(r"^[A-Za-z_.]*(Error|Exception|Timeout)\b", ln)]
    return ((named or lines or [type(exc).__name__])[-1])[:200].replace("|", "/")


def section_analyze(run: Run) -> None:
    """Row 1: analyze against R rms, and its breakdown."""
    cfg, sec, design = run.cfg, run.sec, run.design
    B, n = design["B"], design["n"]
    run.log(f"analyze --no-cache, shipped study, n={n}, B={B} ...")
    s, peak, _ = run_child([*cli(), "analyze", "study.yaml", "--no-cache"], cwd=run.project, env=run.env)
    run.analyze_s = s
    sec["analyze"] = {"seconds": s, "peak_mb": peak}
    r_s, r_note = None, "`--skip r`" if "r" in cfg.skip else ""
    if not r_note and shutil.which("Rscript") is None:
        r_note = "R absent (no `Rscript` on PATH)"
    if not r_note:
        run.log(f"R rms validate + calibrate(KM), B={B} ...")
        try:
            r_wall, r_peak, _ = run_child(["Rscript", str(R_SCRIPT), str(run.tmp / "design.csv"), str(B),
                                           repr(design["horizon"]), str(design["m"]), str(cfg.seed),
                                           str(run.tmp / "r.json")], env=run.env)
            r = json.loads((run.tmp / "r.json").read_text())
            r_s = r["validate_s"] + r["calibrate_s"]
            sec["r"] = {**r, "wall_s": r_wall, "peak_mb": r_peak,
                        "coef_max_abs_diff": max(abs(a - b) for a, b in zip(r["coef"], design["coef"]))}
        except (RuntimeError, OSError, ValueError, KeyError) as exc:  # rms missing or failing: the row says why
            r_note = "R failed: " + _failed(exc)
    base = (f"R rms `validate` + `calibrate(cmethod=\"KM\")`, B = {B}: {_fmt_s(r_s)}" if r_s is not None
            else f"R not measured: {r_note}")
    run.goals.append(Goal("1", ANALYZE_WHAT.format(n=n, B=B), measured=_fmt_s(s), baseline=base,
                          ratio=_ratio(s, r_s), value=None if r_s is None else s / r_s, limit=0.2,
                          goal="ratio ≤ 0.2", peak_mb=peak))
    guarded(run, "1a", "breakdown of analyze (pyinstrument)", lambda: _breakdown(run))
    guarded(run, "1f", "floors of row 1", lambda: _floors(run, r_s))


def _floors(run: Run, r_s: float | None) -> None:
    """Rows 1f-1g: what row 1 costs without any figure, and what the libraries alone cost to import,
    each against the same R time: how far below them row 1's goal lies."""
    run.log("analyze --no-cache --figures none (results tables only) ...")
    tables_s, peak, _ = run_child([*cli(), "analyze", "study.yaml", "--no-cache", "--figures", "none",
                                   "--out", str(run.tmp / "tables-only")], cwd=run.project, env=run.env)
    run.log("a fresh Python importing the libraries alone ...")
    imports_s, imports_peak, _ = run_child([sys.executable, "-c", f"import {', '.join(FLOOR_IMPORTS)}"], env=run.env)
    base = "R rms as in row 1" + (f": {_fmt_s(r_s)}" if r_s is not None else " (not measured)")
    run.goals.append(Goal("1f", "for comparison: row 1 without figures (`--figures none`: the results tables alone)",
                          measured=_fmt_s(tables_s), baseline=base, ratio=_ratio(tables_s, r_s),
                          peak_mb=peak))
    run.goals.append(Goal("1g", "for comparison: a fresh Python that only imports "
                          + ", ".join(f"`{m}`" for m in FLOOR_IMPORTS) + " (no cementleak code)",
                          measured=_fmt_s(imports_s), baseline=base, ratio=_ratio(imports_s, r_s),
                          peak_mb=imports_peak))


def _breakdown(run: Run) -> None:
    run.log("analyze under pyinstrument (breakdown) ...")
    bd = run.worker("breakdown", {"project": str(run.project), "out": str(run.tmp / "breakdown-results")})
    sec = run.sec
    sec["breakdown"] = bd
    for key, label, v in (("1a", "imports (every module import, lazy ones included)", bd["imports_s"]),
                          ("1b", "reading + validating the data, provenance", bd["reading_s"]),
                          ("1c", "statistics (`compute_study` without imports)", bd["statistics_s"]),
                          ("1d", "writing the results files and figures (without imports)", bd["writing_s"]),
                          ("1e", "the rest (CLI, messages)", bd["other_s"])):
        run.goals.append(Goal(key, f"of which: {label}", measured=_fmt_s(v),
                              ratio=f"{v / bd['total_s']:.0%} of the profiled run"))


def section_report(run: Run) -> None:
    """Row 2: ``cementleak report`` twice in a fresh copy."""
    rep = scratch_project(run.tmp, "report", bootstrap_b=run.cfg.B)
    run.log("report: first run (empty caches) ...")
    first = run_report(rep, "first", run.env)
    run.log("report: second run (unchanged inputs) ...")
    second = run_report(rep, "second", run.env)
    run.sec["report"] = {"first": first, "second": second}
    engine = "built-in engine" if any("built-in" in s["step"] for s in first["steps"]) else "Quarto"
    ref = {"analyze": run.analyze_s, "ref": run.sec["reference_start"]}
    for key, label, r, limit in (("2a", "empty caches", first, 25.0), ("2b", "unchanged inputs", second, 5.0)):
        run.goals.append(Goal(key, f"{REPORT_WHAT} ({engine}), {label}", measured=_fmt_s(r["seconds"]),
                              baseline=f"row 1 analyze {_fmt_s(run.analyze_s)}; reference workload {_fmt_s(ref['ref'])}",
                              ratio=_relative(r["seconds"], ref), value=r["seconds"], limit=limit,
                              goal=f"≤ {limit:g} s", peak_mb=r["peak_mb"]))


def section_predict(run: Run) -> None:
    """Row 3: predict one patient in row 1's project (its results folder)."""
    if run.analyze_s is None:
        run.goals.append(Goal("3", PREDICT_WHAT, goal="≤ 0.5 s", skipped="needs row 1 (analyze)"))
        return
    run.log("predict one patient ...")
    values = [f"{k}={v}" for k, v in run.design["patient"].items()]
    runs = sorted(run_child([*cli(), "predict", *values], cwd=run.project, env=run.env)[:2]
                  for _ in range(run.cfg.predict_runs))
    s, peak = runs[len(runs) // 2]
    run.sec["predict"] = {"runs": [x for x, _ in runs], "values": values}
    run.goals.append(Goal("3", PREDICT_WHAT + " (after row 1's analyze), process start to exit",
                          measured=_fmt_s(s) + (f" (median of {len(runs)})" if len(runs) > 1 else ""),
                          ratio=_relative(s, {"ref": run.sec["reference_start"]}),
                          value=s, limit=0.5, goal="≤ 0.5 s", peak_mb=peak))


def section_repeated(run: Run) -> None:
    """Row 4: the repeated-measures step alone on a simulated cohort."""
    cfg = run.cfg
    what = REPEATED_WHAT.format(n=cfg.repeated_n)
    run.log(f"repeated measures alone, n={cfg.repeated_n} ...")
    try:
        res = run.worker("scale", {"study": STUDY, "n": cfg.repeated_n, "B": cfg.scale_B, "seed": cfg.seed, "outcomes": True},
                         timeout=cfg.repeated_timeout_s)
    except Timeout:
        run.goals.append(Goal("4", what, measured=f"> {cfg.repeated_timeout_s:.0f} s (stopped)", value=math.inf,
                              limit=2.0, goal="≤ 2 s"))
        return
    s = next(v for k, v in res["steps"].items() if k.startswith("repeated"))
    run.sec["repeated"] = res
    run.goals.append(Goal("4", what, measured=_fmt_s(s), ratio=_relative(s, {"ref": run.sec["reference_start"]}),
                          value=s, limit=2.0, goal="≤ 2 s", peak_mb=res["peak_mb"]))


def section_full(run: Run) -> None:
    """Row 5: the whole analysis of a simulated million; row 6: the same with the bootstrap on a
    local Dask cluster.  Both through ``benchmarks/scale_study.py`` (``compute_study`` of the shipped
    study file on ``write_synthetic(n)`` data, repeated measures apart), each in a fresh process."""
    cfg = run.cfg
    if not cfg.full:
        run.goals.append(Goal("5", FULL_WHAT.format(n=cfg.full_n, B=cfg.full_B), goal="≤ 10 min, ≤ 4 GB",
                              skipped=f"run {HOW_FULL}"))
        run.goals.append(Goal("6", DASK_WHAT.format(w=cfg.dask_workers, n=cfg.full_n, B=cfg.full_B),
                              goal="runs", skipped=f"run {HOW_FULL}"))
        return
    data = run.tmp / "million"
    run.log(f"simulating n={cfg.full_n:,} ...")  # once, in its own process: not in the rows' time or memory
    sim_s, _, _ = run_child([sys.executable, "-c", "import sys; from pathlib import Path; "
                             "from benchmarks.scale_study import _prepare; "
                             "_prepare(Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]))",
                             str(data), str(cfg.full_n), str(cfg.seed)], cwd=run.code or ROOT, env=run.env)
    run.sec["full_simulate_s"] = sim_s
    for key, what, extra in (("5", FULL_WHAT.format(n=cfg.full_n, B=cfg.full_B), ["--n-jobs", "-1"]),
                             ("6", DASK_WHAT.format(w=cfg.dask_workers, n=cfg.full_n, B=cfg.full_B),
                              ["--dask-workers", str(cfg.dask_workers)])):
        guarded(run, key, what, lambda key=key, what=what, extra=extra: _scale_study(run, key, what, data, extra),
                "≤ 10 min, ≤ 4 GB" if key == "5" else "runs")


def _scale_study(run: Run, key: str, what: str, data: Path, extra: list[str]) -> None:
    cfg = run.cfg
    run.log(f"row {key}: {what} ...")
    out = run.tmp / f"scale-{key}.json"
    wall, peak, _ = run_child([sys.executable, "-m", "benchmarks.scale_study", "--n", str(cfg.full_n), "--B",
                               str(cfg.full_B), "--seed", str(cfg.seed), "--data", str(data), "--json", str(out), *extra],
                              cwd=run.code or ROOT, env=run.env, timeout=cfg.full_timeout_s)
    res = json.loads(out.read_text())
    run.sec[f"scale_study_{key}"] = {**res, "wall_s": wall, "peak_mb": peak}
    s = res["total_s"]
    measured = (f"{_fmt_s(s)} (reading + validating {_fmt_s(res['load_s'])}, analysis {_fmt_s(res['analysis_s'])}; "
                f"simulating the data {_fmt_s(run.sec['full_simulate_s'])} and results files not counted)")
    if key == "5":
        run.goals.append(Goal(key, what, measured=measured, value=s, limit=600.0, goal="≤ 10 min, ≤ 4 GB",
                              peak_mb=peak, peak_limit_mb=4096.0))
    else:
        run.goals.append(Goal(key, what, measured=measured, value=0.0, limit=0.0, goal="runs", peak_mb=peak))


def section_engine(run: Run) -> None:
    """The bootstrap engine against lifelines refits, and the coefficient agreement."""
    cfg, B = run.cfg, run.design["B"]
    study = STUDY
    run.log(f"engine: validation + calibration, B={B} ...")
    ours = run.worker("engine", {"study": study, "B": B, "seed": cfg.seed, "honest": True})
    run.log(f"lifelines baseline: {cfg.k_lifelines} + {cfg.k_honest} replicates ...")
    base = run.worker("lifelines", {"study": study, "B": B, "seed": cfg.seed, "k": cfg.k_lifelines,
                                    "k_honest": cfg.k_honest, "k_agree": cfg.k_agree})
    run.rows += [
        Row(f"bootstrap validation + KM calibration, B={B}, n={ours['n']}", base["per_replicate_s"] * B,
            ours["validation_s"] + ours["calibration_s"], ours["peak_mb"],
            f"baseline: lifelines refits, {base['k']} replicates timed, x{B / base['k']:g}"),
        Row(f"honest validation (screen in every replicate), B={B}, n={ours['n']}",
            base["per_honest_replicate_s"] * B, ours["honest_s"], ours["peak_mb"],
            f"baseline: lifelines refits, {base['k_honest']} replicates timed, x{B / max(base['k_honest'], 1):g}"),
    ]
    run.sec["engine"], run.sec["lifelines"] = ours, base


def section_scale(run: Run) -> None:
    """The analysis step by step on simulated cohorts of increasing n."""
    cfg = run.cfg
    runs = run.sec["scale"] = []
    for size in (cfg.full_sizes if cfg.full else cfg.sizes):
        run.log(f"scale: n={size}, B={cfg.scale_B} ...")
        runs.append(run.worker("scale", {"study": STUDY, "n": size, "B": cfg.scale_B, "seed": cfg.seed}))


ANALYZE_WHAT = "`cementleak analyze --no-cache`, shipped study (n = {n}, B = {B}), process start to exit"
REPORT_WHAT = "`cementleak report` (`make report`), all formats"
PREDICT_WHAT = "`cementleak predict` one patient"
REPEATED_WHAT = "repeated-measures step alone, simulated n = {n:,}"
FULL_WHAT = ("full analysis (`benchmarks/scale_study.py`: read + validate + `compute_study`), "
             "simulated n = {n:,}, B = {B}, the bootstrap on every core (`--n-jobs -1`, as `cementleak analyze --n-jobs -1`)")
DASK_WHAT = "the same with the bootstrap on a local Dask cluster ({w} workers), n = {n:,}, B = {B}"
#: section, its row in the goal table (key, what, goal) when it is skipped or fails, its function
PLAN: tuple[tuple[str, tuple[str, str, str] | None, Callable[[Run], None]], ...] = (
    ("analyze", ("1", "`cementleak analyze --no-cache`, shipped study", "ratio ≤ 0.2"), section_analyze),
    ("report", ("2", REPORT_WHAT, "≤ 25 s / ≤ 5 s"), section_report),
    ("predict", ("3", PREDICT_WHAT, "≤ 0.5 s"), section_predict),
    ("repeated", ("4", "repeated-measures step alone", "≤ 2 s"), section_repeated),
    ("full", ("5", "full analysis, simulated n = 1,000,000", "≤ 10 min, ≤ 4 GB"), section_full),
    ("engine", None, section_engine),
    ("scale", None, section_scale),
)


def guarded(run: Run, key: str | None, what: str, fn: Callable[[], None], goal: str = "") -> None:
    """Run one measurement; when it fails, its row says so (FAILED) and the run goes on."""
    try:
        fn()
    except Exception as exc:  # noqa: BLE001 - any failure of a measured command is a result, not a crash
        run.log(f"  FAILED: {_failed(exc)}")
        run.sec.setdefault("failures", []).append(f"{key or what}: {exc}"[-3000:])
        if key is not None:
            run.goals.append(Goal(key, what, measured=f"failed: {_failed(exc)}", failed=True, goal=goal))


def bench(cfg: Config, *, log: Callable[[str], None] = print,
          checkpoint: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Run every measurement; return the goal rows, the engine rows and the details for RESULTS.md.
    ``checkpoint`` receives the results so far after every section (rows not reached yet say so)."""
    machine_info = machine()

    def results(run: Run, *, final: bool) -> dict[str, Any]:
        info = dict(machine_info)
        if final:
            info["load average at end (1, 5, 15 min)"] = ", ".join(f"{x:.2f}" for x in os.getloadavg())
        done = {g.key[0] for g in run.goals}
        rows = [row for _, row, _ in PLAN if row is not None] + [("6", "local Dask cluster, n = 1,000,000", "runs")]
        pending = [Goal(k, what, goal=goal, skipped="not reached yet (the run was still going or was stopped)")
                   for k, what, goal in rows if k not in done]
        return {"machine": info, "config": {**cfg.__dict__, "skip": sorted(cfg.skip)},
                "goals": sorted(run.goals + pending, key=lambda g: g.key), "rows": run.rows, "sections": run.sec}

    with tempfile.TemporaryDirectory(prefix="cementleak-bench-") as tmp_name:
        tmp = Path(tmp_name)
        # the cache's signing key in the scratch folder: no file of this user's is touched
        run = Run(cfg, tmp, clean_env(CEMENTLEAK_CACHE_KEY_FILE=str(tmp / "cache-key")), log)
        if cfg.isolated:
            run.code = tmp / "code"
            machine_info["code measured"] = snapshot_code(run.code)
            run.env["PYTHONPATH"] = str(run.code)
        log("reference workload (numpy, one thread) ...")
        run.sec["reference_start"] = run.worker("reference", {})["seconds"]
        run.project = scratch_project(tmp, "analyze", bootstrap_b=cfg.B)
        run.sec["design"] = run.worker("design", {"study": str(run.project / "study.yaml"), "csv": str(tmp / "design.csv")})
        for name, row, fn in PLAN:
            key, what, goal = row if row is not None else (None, name, "")
            if name in cfg.skip:
                if key is not None:
                    run.goals.append(Goal(key, what, goal=goal, skipped=f"`--skip {name}`"))
                continue
            guarded(run, key, what, lambda fn=fn: fn(run), goal)
            if checkpoint is not None:
                checkpoint(results(run, final=False))
        run.sec["reference_end"] = run.worker("reference", {})["seconds"]
    return results(run, final=True)


# ============================================================================================
# RESULTS.md
# ============================================================================================
def _scale_markdown(runs: list[dict[str, Any]]) -> str:
    sizes = [r["n"] for r in runs]
    names = list(dict.fromkeys(name for r in runs for name in r["steps"]))
    head = "| step | " + " | ".join(f"n={s:,}" for s in sizes) + " | exponent (last two sizes) |"
    lines = [head, "|---|" + "---:|" * (len(sizes) + 1)]
    for name in names:
        vals = [r["steps"].get(name) for r in runs]
        cells = ["-" if v is None else f"{v:.2f}" for v in vals]
        both = [(s, v) for s, v in zip(sizes, vals) if v is not None][-2:]
        k = growth_exponent([s for s, _ in both], [v for _, v in both]) if len(both) == 2 else float("nan")
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {k:.2f} |")
    total = [r["total_s"] for r in runs]
    peak = [r["peak_mb"] for r in runs]
    lines.append("| **total (s)** | " + " | ".join(f"**{v:.1f}**" for v in total)
                 + f" | {growth_exponent(sizes[-2:], total[-2:]):.2f} |")
    lines.append("| **peak RSS (MB)** | " + " | ".join(f"{v:.0f}" for v in peak)
                 + f" | {growth_exponent(sizes[-2:], peak[-2:]):.2f} |")
    lines.append("")
    lines.append(f"Growth exponent of the total time over all sizes (log-log slope): "
                 f"**{growth_exponent(sizes, total):.2f}**; of the peak memory: **{growth_exponent(sizes, peak):.2f}**.  "
                 "Times in seconds; the exponent of a step is its log-log slope between the two largest sizes "
                 "(at small n fixed costs dominate, so early slopes understate the growth).")
    return "\n".join(lines)


def _load_sentence(m: dict[str, str], ref: tuple[float | None, float | None] = (None, None)) -> str:
    """Whether others shared the machine: the 1-minute load before the run started (the load at the
    end also counts this run's own processes, up to two at a time), and whether the reference
    workload ran more than 25 % slower at the end than at the start."""
    def one(key: str) -> float | None:
        return float(m[key].split(",")[0]) if key in m else None

    start, end = one("load average at start (1, 5, 15 min)"), one("load average at end (1, 5, 15 min)")
    slower = ref[0] is not None and ref[1] is not None and ref[1] > 1.25 * ref[0]
    loads = f"1-minute load average {start:.2f} at the start" + ("" if end is None else f", {end:.2f} at the end "
                                                                 "(this run's own processes included)")
    refs = "" if ref[0] is None or ref[1] is None else f"; reference workload {ref[0]:.3f} s at the start, {ref[1]:.3f} s at the end"
    if (start is not None and start > 1) or slower:
        return (f"**The machine was shared during this run** ({loads}{refs}, on {m.get('cores (os.cpu_count)', '?')} "
                "cores): wall times are longer than on a quiet machine; the ratios within this run and the reference "
                "workload show how much.")
    return f"The machine was quiet when this run started ({loads}{refs})."


def results_markdown(res: dict[str, Any], *, notes: str = "") -> str:
    m, cfg, sec = res["machine"], res["config"], res["sections"]
    ref0, ref1 = sec.get("reference_start"), sec.get("reference_end")
    parts = ["# Benchmarks", "",
             "Written by `make bench` (`python -m benchmarks.run`" + (" --full" if cfg["full"] else "") + ").  "
             "Every ratio compares two measurements made in the same run on this machine; times are wall-clock "
             "seconds, peak RSS is the peak resident set size of the process that ran the measurement (a fresh "
             "process each, in a scratch copy of the project).", "",
             _load_sentence(m, (ref0, ref1)), "",
             "## Machine", "", "| | |", "|---|---|", *[f"| {k} | {v} |" for k, v in m.items()],
             f"| reference workload at start / end (numpy, one thread) | {_fmt_s(ref0)} / {_fmt_s(ref1)} |", "",
             "## Goals (issue 16)", "", goal_markdown(res["goals"]), "",
             "Ratios: row 1 is our time over R's; rows 2-4 show the time also in units of row 1's analyze and/or of "
             "the reference workload (a fixed numpy sort + solve on one thread, run at the start and the end).  "
             f"Skipped rows: run {HOW_FULL} for rows 5 and 6 (tens of minutes on two cores; each stops after 30 min).", ""]
    if "r" in sec:
        r = sec["r"]
        parts += ["## R rms baseline (row 1)", "",
                  f"`benchmarks/rms_bench.R` ({r['r_version']}, rms {r['rms_version']}, survival {r['survival_version']}) "
                  f"on the rows of the study's model written out by `benchmarks/workers.py` (n = {r['n']}, {r['events']} "
                  f"events, terms {', '.join(r['terms'])}), B = {r['B']}, u = {r['u']:g}, m = {r['m']}: "
                  f"`validate` {r['validate_s']:.2f} s, `calibrate(cmethod=\"KM\")` {r['calibrate_s']:.2f} s; "
                  f"outside the ratio: loading the libraries {r['libraries_s']:.2f} s, fitting {r['fit_s']:.2f} s, "
                  f"Rscript start to exit {r['wall_s']:.1f} s.  R's coefficients equal ours to "
                  f"{r['coef_max_abs_diff']:.1e} (largest absolute difference).", ""]
    if "breakdown" in sec:
        bd = sec["breakdown"]
        parts += ["## Where `analyze` spends its time (row 1)", "",
                  f"pyinstrument over one more `cementleak analyze --no-cache` in one process: {bd['total_s']:.2f} s "
                  f"profiled ({bd['cpu_s']:.2f} s CPU).  Statistics by call of `compute_study`, without imports:", "",
                  "| call | seconds |", "|---|---:|",
                  *[f"| `{f}` | {s:.2f} |" for f, s in bd["statistics_parts"] if s >= 0.01], ""]
    if "predict" in sec:
        parts += [f"Row 3 ran `cementleak predict {' '.join(sec['predict']['values'])}` "
                  f"({', '.join(f'{s:.2f}' for s in sec['predict']['runs'])} s).", ""]
    if "engine" in sec:
        b, e = sec["lifelines"], sec["engine"]
        parts += ["## Bootstrap engine against lifelines", "", table_markdown(res["rows"]), "",
                  f"Coefficients of {b['agree_k']} bootstrap replicates (the engine's own case counts) against lifelines "
                  f"`CoxPHFitter` fully converged on the same rows written out: largest relative difference "
                  f"**{b['agree_max_rel_diff']:.1e}** (required: 1e-6).  {b['agree_tied']} of these replicates have tied "
                  f"event times (a patient drawn twice ties with itself), {b['agree_tied_distinct_patients']} also between "
                  f"different patients.", "",
                  f"Engine details: standard validation {e['validation_s']:.2f} s, KM calibration {e['calibration_s']:.2f} s, "
                  f"honest validation {e['honest_s']:.2f} s (n = {e['n']}, B = {e['B']}); failed replicates: "
                  f"validation {e['failed_validation']}, calibration {e['failed_calibration']}.  lifelines: "
                  f"{b['per_replicate_s'] * 1000:.0f} ms per replicate (3 Cox fits, 2 C-indices, KM per calibration "
                  f"group), {b['per_honest_replicate_s'] * 1000:.0f} ms per honest replicate.", ""]
    if "report" in sec:
        first, second = sec["report"]["first"], sec["report"]["second"]
        parts += ["## Report time breakdown (row 2)", "",
                  "`cementleak report` (HTML, PDF, DOCX, slides) in a scratch copy of the project; seconds as the "
                  "command reports them.  Documents are executed two at a time, so their rows overlap.", "",
                  "| step | first run | second run |", "|---|---:|---:|"]
        second_steps = {s["step"]: s["seconds"] for s in second["steps"]}
        for s in first["steps"]:
            other = second_steps.get(s["step"], second_steps.get(s["step"].replace("execute", "execute (cached)")))
            parts.append(f"| {s['step']} | {s['seconds']:.1f} | {'-' if other is None else f'{other:.1f}'} |")
        parts += [f"| **wall clock (process start to exit)** | **{first['seconds']:.1f}** | **{second['seconds']:.1f}** |", ""]
    if sec.get("scale"):
        parts += ["## The analysis step by step", "", f"Simulated cohorts (`simulate_study`), bootstrap B = {cfg['scale_B']}, "
                  "one process per size; each step is a function `compute_study` calls, timed on its own.", "",
                  _scale_markdown(sec["scale"]), ""]
    runs = [(k, sec[f"scale_study_{k}"]) for k in ("5", "6") if f"scale_study_{k}" in sec]
    if runs:
        names = list(dict.fromkeys(name for _, r in runs for name in r["steps"]))
        parts += ["## Rows 5 and 6 step by step", "",
                  "Seconds per step as `benchmarks/scale_study.py` reports them (a step lasts until the next "
                  "progress event of `compute_study`).", "",
                  "| step | " + " | ".join(f"row {k}" for k, _ in runs) + " |", "|---|" + "---:|" * len(runs),
                  "| reading + validating the data | " + " | ".join(f"{r['load_s']:.1f}" for _, r in runs) + " |",
                  *[f"| {name} | " + " | ".join("-" if name not in r["steps"] else f"{r['steps'][name]:.1f}" for _, r in runs) + " |"
                    for name in names],
                  "| **total** | " + " | ".join(f"**{r['total_s']:.1f}**" for _, r in runs) + " |",
                  "| peak RSS (MB) | " + " | ".join(f"{r['peak_mb']:.0f}" for _, r in runs) + " |", ""]
    if sec.get("failures"):
        parts += ["## Failures", "", "What the FAILED rows' commands said (last lines):", ""]
        for f in sec["failures"]:
            parts += ["```", *f.splitlines()[-25:], "```", ""]
    parts += [NOTES_MARKER, notes.rstrip(), ""]
    return "\n".join(parts)


def _existing_notes(path: Path) -> str:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return ""
    return text.split(NOTES_MARKER, 1)[1].strip("\n") if NOTES_MARKER in text else ""


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smoke version: tiny B and n, in this process")
    ap.add_argument("--full", action="store_true", default=os.environ.get("BENCH_FULL", "") not in ("", "0"),
                    help="also rows 5 and 6: n = 1,000,000 (also set by the environment variable BENCH_FULL)")
    ap.add_argument("--out", type=Path, default=RESULTS, help="where to write the results (markdown)")
    ap.add_argument("--bootstrap-b", type=int, default=None, help="B of rows 1-3 (default: the study file's)")
    ap.add_argument("--skip", default="", help="comma-separated: " + ", ".join(SECTIONS))
    ns = ap.parse_args(argv)
    skip = {s.strip() for s in ns.skip.split(",") if s.strip()}
    if skip - set(SECTIONS):
        ap.error(f"--skip: unknown {', '.join(sorted(skip - set(SECTIONS)))}; choose from {', '.join(SECTIONS)}")
    base = QUICK if ns.quick else Config()
    cfg = Config(**{**base.__dict__, "full": ns.full and not ns.quick,
                    "B": ns.bootstrap_b or base.B, "skip": frozenset(base.skip | skip)})
    notes = _existing_notes(ns.out)
    ns.out.parent.mkdir(parents=True, exist_ok=True)

    def write(res: dict[str, Any]) -> None:
        ns.out.write_text(results_markdown(res, notes=notes), encoding="utf-8")

    res = bench(cfg, log=lambda msg: print(msg, file=sys.stderr, flush=True), checkpoint=write)
    print(goal_markdown(res["goals"]))
    write(res)
    print(f"\nwrote {ns.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
