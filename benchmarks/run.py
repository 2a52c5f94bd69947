"""``make bench``: speed and scale of cementleak, as ratios against baselines measured in this run.

What is measured (each measurement in a fresh Python process, so that its peak memory is its own):

engine
    Harrell's bootstrap validation and KM calibration (R ``rms::validate`` / ``calibrate``) of
    the study's Cox model, B replicates on the shipped cohort, with the batched Efron fitter
    (:mod:`cementleak_stats.validation.resample`); and the "honest" validation that repeats the
    univariable screen inside every replicate.
lifelines
    The baseline: the same replicates (same case counts) refitted one at a time with lifelines
    ``CoxPHFitter`` on the written-out rows, C by ``lifelines.utils.concordance_index``, the
    calibration slope by a lifelines refit on the linear predictor, the KM calibration groups by
    ``KaplanMeierFitter``.  Only a subset of the replicates is timed and the time is scaled
    linearly to B (the replicates are independent and alike); the table says which.  The same
    process checks that our replicate coefficients equal lifelines' on the same rows.
report
    ``cementleak report`` (all formats, B from the study file) in a scratch copy of the project
    with empty caches, then again with unchanged inputs; the time breakdown of each run.
scale
    Simulated cohorts (``simulate_study``) of increasing n: every step of the analysis with the
    bootstrap at B = 200, wall time per step, the process's peak memory, growth exponents.
profile
    pyinstrument over the whole analysis of the shipped study: where the time goes.

Usage: ``python -m benchmarks.run [--quick] [--out FILE] [--skip report,scale,profile]``.
``--quick`` is the smoke version (tiny B and n, in-process): the harness, not the numbers.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
#: everything below this line of RESULTS.md is kept when the file is rewritten
NOTES_MARKER = "<!-- notes: written by hand; benchmarks/run.py keeps everything below this line -->"
PROJECT_FILES = ("report", "_quarto.yml", "study.yaml", "data")


# ============================================================================================
# results
# ============================================================================================
@dataclass(frozen=True)
class Row:
    """One line of the table: seconds of the baseline and of ours (None = not measured)."""

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


def _fmt_s(x: float | None) -> str:
    if x is None:
        return "-"
    return f"{x:.3g} s" if x < 10 else f"{x:.1f} s"


def table_markdown(rows: Sequence[Row]) -> str:
    """The results table (markdown): what, baseline, ours, ratio, peak memory, note."""
    lines = ["| what | baseline | ours | ratio | peak memory | note |", "|---|---:|---:|---:|---:|---|"]
    for r in rows:
        ratio = "-" if r.ratio is None else f"{r.ratio:.1f}x"
        peak = "-" if r.peak_mb is None else f"{r.peak_mb:.0f} MB"
        lines.append(f"| {r.what} | {_fmt_s(r.baseline)} | {_fmt_s(r.ours)} | {ratio} | {peak} | {r.note} |")
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
    """CPU model, cores, RAM, Python, numpy, BLAS, load average, git commit."""
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
        "load average at start (1, 5, 15 min)": ", ".join(f"{x:.2f}" for x in os.getloadavg()),
        "git commit": git_commit(ROOT),
    }


# ============================================================================================
# workers: each runs in its own process (``--worker NAME ARGS``) and returns a JSON object
# ============================================================================================
def _study_model(study: str) -> tuple[Any, Any, Any]:
    from cementleak_stats.cohort.io import load_study_data
    from cementleak_stats.models.cox import fit_cox_model, select_predictors, univariable_screen
    from cementleak_stats.spec import load_spec

    spec = load_spec(Path(study))
    cohort = load_study_data(spec).analysed
    model = fit_cox_model(spec, cohort, select_predictors(spec, univariable_screen(spec, cohort)))
    return spec, cohort, model


def worker_engine(args: dict[str, Any]) -> dict[str, Any]:
    """Our engine: standard validation, calibration and the honest validation, B replicates."""
    import numpy as np

    from cementleak_stats.validation.calibration import calibrate_km
    from cementleak_stats.validation.indices import INDEX_NAMES, cox_indices, validate_cox
    from cementleak_stats.validation.resample import bootstrap_optimism, cox_data, make_screening_fit_fn, model_fits

    spec, cohort, model = _study_model(args["study"])
    B, seed = int(args["B"]), int(args["seed"])
    t0 = time.perf_counter()
    val = validate_cox(spec, model, cohort, n_boot=B, rng=np.random.default_rng(seed))
    t1 = time.perf_counter()
    cal = calibrate_km(spec, model, cohort, m=spec.analysis.calibration_group_size, n_boot=B,
                       rng=np.random.default_rng(seed + 1))
    t2 = time.perf_counter()
    out: dict[str, Any] = {"validation_s": t1 - t0, "calibration_s": t2 - t1, "n": len(cohort), "B": B,
                           "failed_validation": int(val["n_failed"].max()), "failed_calibration": int(cal["n_failed"].max())}
    if args.get("honest"):
        # what validate_cox(honest=True) adds: the screen repeated inside every replicate
        candidates = [v.name for v in spec.candidates]
        data = cox_data(spec, cohort, candidates, init=model.coef)
        coef = np.array([float(model.coef.get(t, 0.0)) for t in data.terms])
        t3 = time.perf_counter()
        bootstrap_optimism(make_screening_fit_fn(spec.analysis.screen_p_value), cox_indices, data, n_boot=B,
                           rng=np.random.default_rng(seed), names=INDEX_NAMES,
                           apparent_fits=model_fits(data, coef, model.loglik, model.loglik_null))
        out["honest_s"] = time.perf_counter() - t3
    return out


def worker_lifelines(args: dict[str, Any]) -> dict[str, Any]:
    """The lifelines baseline on the first k replicates, and the coefficient agreement check."""
    import warnings

    import numpy as np
    import pandas as pd
    from lifelines import CoxPHFitter, KaplanMeierFitter
    from lifelines.utils import concordance_index

    from cementleak_stats.models.cox import LIFELINES_FIT_OPTIONS
    from cementleak_stats.validation.resample import cox_data, cox_fit_fn, draw_bootstrap_counts

    warnings.simplefilter("ignore")
    spec, cohort, model = _study_model(args["study"])
    B, seed, k, k_honest, k_agree = (int(args[x]) for x in ("B", "seed", "k", "k_honest", "k_agree"))
    data = cox_data(spec, cohort, model.variables, init=model.coef)
    X, t, e, terms = data.X, data.time, data.event, list(data.terms)
    n, u = len(t), spec.outcome.horizon
    counts = draw_bootstrap_counts(n, B, np.random.default_rng(seed))  # the replicates of the engine
    frame = pd.DataFrame(X, columns=terms).assign(_t=t, _e=e)

    def fit(df: pd.DataFrame, options: dict | None = None) -> CoxPHFitter:
        return CoxPHFitter().fit(df, "_t", "_e", fit_options=options)

    surv = 1 - model.risk(pd.DataFrame(X, columns=terms))  # rms calibrate: groups cut on predicted survival
    g = max(1, n // spec.analysis.calibration_group_size)
    cuts = np.unique(np.quantile(np.r_[0.0, 1.0, surv], np.linspace(0, 1, g + 1)))

    def km_groups(surv: np.ndarray, tt: np.ndarray, ee: np.ndarray) -> list[float]:
        grp = np.clip(np.searchsorted(cuts, surv, side="right") - 1, 0, len(cuts) - 2)
        out = []
        for j in range(len(cuts) - 1):
            m = grp == j
            if m.sum() < 2:
                out.append(float("nan"))
                continue
            km = KaplanMeierFitter().fit(tt[m], ee[m])
            out.append(float(km.predict(u)) - float(surv[m].mean()))
        return out

    def replicate(c: np.ndarray) -> None:
        rows = np.repeat(np.arange(n), c.astype(int))
        boot = frame.iloc[rows].reset_index(drop=True)
        # validation (rms validate.cph): refit, indices on the bootstrap and on the original rows
        cph = fit(boot)
        beta = cph.params_[terms].to_numpy()
        concordance_index(t[rows], -(X[rows] @ beta), e[rows])
        xb = X @ beta
        concordance_index(t, -xb, e)
        fit(pd.DataFrame({"xb": xb, "_t": t, "_e": e}))  # calibration slope on the original rows
        # calibration (rms calibrate.cph, KM): its own refit with the baseline survival at u
        cal = fit(boot)
        s_orig = cal.predict_survival_function(frame[terms], times=[u]).to_numpy()[0]
        s_boot = s_orig[rows]
        km_groups(s_boot, t[rows], e[rows])
        km_groups(s_orig, t, e)

    t0 = time.perf_counter()
    for b in range(k):
        replicate(counts[b])
    per_rep = (time.perf_counter() - t0) / k

    # honest: the univariable screen (one lifelines fit per candidate) inside each replicate
    candidates = [v.name for v in spec.candidates]
    cand = cox_data(spec, cohort, candidates)
    cframe = pd.DataFrame(cand.X, columns=list(cand.terms)).assign(_t=t, _e=e)
    t0 = time.perf_counter()
    for b in range(k_honest):
        rows = np.repeat(np.arange(n), counts[b].astype(int))
        boot = cframe.iloc[rows].reset_index(drop=True)
        keep = []
        for j, cols in enumerate(cand.groups):
            names = [cand.terms[i] for i in cols]
            try:
                f = fit(boot[[*names, "_t", "_e"]])
            except Exception:  # noqa: BLE001 - a failed replicate fit is skipped, as the engine counts it
                continue
            p = f.log_likelihood_ratio_test().p_value if len(names) > 1 else float(f.summary["p"].iloc[0])
            if p < spec.analysis.screen_p_value:
                keep += names
        if keep:
            f = fit(boot[[*keep, "_t", "_e"]])
            beta = f.params_[keep].to_numpy()
            xb = cframe[keep].to_numpy() @ beta
            concordance_index(t[rows], -(cframe[keep].to_numpy()[rows] @ beta), e[rows])
            concordance_index(t, -xb, e)
            fit(pd.DataFrame({"xb": xb, "_t": t, "_e": e}))
    per_honest = (time.perf_counter() - t0) / max(k_honest, 1)

    # agreement: our replicate coefficients vs lifelines (fully converged) on the same rows
    sample = np.arange(min(k_agree, B))
    ours = cox_fit_fn(data, counts[sample]).coef
    worst, ties_rows, ties_any = 0.0, 0, 0
    for i, b in enumerate(sample):
        rows = np.repeat(np.arange(n), counts[b].astype(int))
        ll = fit(frame.iloc[rows].reset_index(drop=True), LIFELINES_FIT_OPTIONS).params_[terms].to_numpy()
        worst = max(worst, float(np.max(np.abs(ours[i] - ll) / np.maximum(np.abs(ll), 1e-8))))
        ev_times = t[rows][e[rows] == 1]
        ties_any += int(np.unique(ev_times).size < ev_times.size)
        ev_distinct = t[(counts[b] > 0) & (e == 1)]
        ties_rows += int(np.unique(ev_distinct).size < ev_distinct.size)
    return {"per_replicate_s": per_rep, "k": k, "per_honest_replicate_s": per_honest, "k_honest": k_honest,
            "agree_max_rel_diff": worst, "agree_k": int(sample.size), "agree_tied": ties_any,
            "agree_tied_distinct_patients": ties_rows, "B": B, "n": n}


def _scale_steps(spec: Any, B: int, outcomes: bool) -> list[tuple[str, Callable[[dict], Any]]]:
    """The steps of ``compute_study`` (same functions, same order), each timed on its own."""
    import numpy as np

    from cementleak_stats.checks import logistic_sensitivity, study_checks
    from cementleak_stats.cohort.io import load_study_data
    from cementleak_stats.decision import net_benefit, threshold_grid
    from cementleak_stats.design import encode
    from cementleak_stats.models.cox import fit_cox_model, select_predictors, univariable_screen
    from cementleak_stats.models.ph import proportional_hazards_test
    from cementleak_stats.nomogram import build_nomogram
    from cementleak_stats.outcomes import analyze_outcomes
    from cementleak_stats.tables import table_baseline
    from cementleak_stats.validation.calibration import calibrate_km, calibrate_smooth, calibration_summary
    from cementleak_stats.validation.discrimination import concordance_table
    from cementleak_stats.validation.indices import validate_cox

    o = spec.outcome

    def cohort(s: dict) -> Any:
        return s["data"].analysed

    steps: list[tuple[str, Callable[[dict], Any]]] = [
        ("read + validate data", lambda s: s.__setitem__("data", load_study_data(spec))),
        ("Table 1 (tableone)", lambda s: table_baseline(spec, cohort(s))),
        ("univariable screen (lifelines)", lambda s: s.__setitem__(
            "pred", select_predictors(spec, univariable_screen(spec, cohort(s))))),
        ("multivariable Cox (lifelines)", lambda s: s.__setitem__("model", fit_cox_model(spec, cohort(s), s["pred"]))),
        ("PH test (cox.zph)", lambda s: proportional_hazards_test(spec, cohort(s), s["model"])),
        ("C-index + time-dependent AUC", lambda s: concordance_table(spec, cohort(s), s["model"])),
        ("nomogram", lambda s: build_nomogram(spec, s["model"], cohort(s))),
        (f"bootstrap validation, standard + honest (B={B})", lambda s: validate_cox(
            spec, s["model"], cohort(s), n_boot=B, rng=np.random.default_rng(1), honest=True)),
        (f"bootstrap KM calibration (B={B})", lambda s: calibrate_km(
            spec, s["model"], cohort(s), m=spec.analysis.calibration_group_size, n_boot=B, rng=np.random.default_rng(2))),
        ("smooth calibration, ICI, Brier", lambda s: (calibrate_smooth(spec, s["model"], cohort(s)),
                                                      calibration_summary(spec, s["model"], cohort(s)))),
        ("decision curve", lambda s: net_benefit(
            s["model"].risk(encode(spec, cohort(s), s["pred"]).X), cohort(s)[o.time].to_numpy(float),
            cohort(s)[o.event].to_numpy(), horizon=o.horizon, thresholds=threshold_grid(spec))),
        ("study checks + logistic sensitivity", lambda s: (
            study_checks(spec, cohort(s), n_parameters=len(s["model"].terms), c_statistic=0.7, lr_statistic=s["model"].lr_chisq),
            logistic_sensitivity(spec, cohort(s), predictors=s["pred"]))),
    ]
    if outcomes:
        steps.append(("VAS/ODI outcomes (statsmodels)", lambda s: analyze_outcomes(spec, s["data"].repeated)))
    return steps


def worker_scale(args: dict[str, Any]) -> dict[str, Any]:
    """The whole analysis of a simulated cohort of n patients, each step timed."""
    import warnings

    from cementleak_stats.cohort.simulate import write_synthetic
    from cementleak_stats.spec import load_spec

    warnings.simplefilter("ignore")
    n, B, seed = int(args["n"]), int(args["B"]), int(args["seed"])
    with tempfile.TemporaryDirectory(prefix="cementleak-scale-") as tmp:
        shutil.copy(ROOT / "study.yaml", Path(tmp) / "study.yaml")
        spec = load_spec(Path(tmp) / "study.yaml")
        write_synthetic(Path(tmp) / "data", n=n, seed=seed, spec=spec)
        spec = spec.model_copy(update={"analysis": spec.analysis.model_copy(update={"bootstrap_b": B})})
        rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        state: dict[str, Any] = {}
        steps = {}
        todo = _scale_steps(spec, B, bool(args.get("outcomes")))
        if args.get("outcomes"):  # the VAS/ODI step alone, in its own process (its own peak memory)
            todo = [todo[0], todo[-1]]
        for name, step in todo:
            t0 = time.perf_counter()
            step(state)
            steps[name] = time.perf_counter() - t0
    return {"n": n, "B": B, "steps": steps, "total_s": sum(steps.values()), "rss_before_analysis_mb": rss0}


def worker_profile(args: dict[str, Any]) -> dict[str, Any]:
    """pyinstrument over ``compute_study`` of the study: seconds of its top-level calls."""
    from pyinstrument import Profiler

    from cementleak_stats.cohort.io import load_study_data
    from cementleak_stats.spec import load_spec
    from cementleak_stats.study import compute_study

    spec = load_spec(Path(args["study"]))
    data = load_study_data(spec)
    profiler = Profiler(interval=0.001)
    profiler.start()
    compute_study(spec, data=data)
    session = profiler.stop()
    root = session.root_frame()
    found = [root]
    while found and found[0].function != "compute_study":
        found = [c for f in found for c in f.children]
    top = found[0] if found else root
    parts = sorted(((c.function, c.time) for c in top.children), key=lambda x: -x[1])
    return {"total_s": top.time, "parts": parts, "cpu_s": session.cpu_time}


WORKERS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "engine": worker_engine, "lifelines": worker_lifelines, "scale": worker_scale, "profile": worker_profile,
}


# ============================================================================================
# running workers and commands
# ============================================================================================
def run_child(cmd: Sequence[str], *, cwd: Path = ROOT, env: dict[str, str] | None = None) -> tuple[float, float, str]:
    """Run a command; return its wall time, its peak RSS (MB, from wait4) and its stdout."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(list(cmd), cwd=cwd, env=env, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(errors="replace"), err.read().decode(errors="replace")
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{stderr[-3000:]}")
    return seconds, usage.ru_maxrss / 1024, stdout


def run_worker(name: str, args: dict[str, Any], *, isolated: bool) -> dict[str, Any]:
    """A worker's result with ``peak_mb``: in a fresh process (``isolated``) or in this one."""
    if not isolated:
        res = WORKERS[name](args)
        return {**res, "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    _, peak, stdout = run_child([sys.executable, "-m", "benchmarks.run", "--worker", name, json.dumps(args)])
    return {**json.loads(stdout.strip().splitlines()[-1]), "peak_mb": peak}


def run_report(project: Path, label: str) -> dict[str, Any]:
    """``cementleak report`` in ``project``: wall time, peak RSS and its own time breakdown."""
    timings = project / f".timings-{label}.json"
    cmd = [sys.executable, "-m", "cementleak_stats.cli", "report", "study.yaml", "--project", ".", "--timings", str(timings)]
    env = {k: v for k, v in os.environ.items() if k not in ("CEMENTLEAK_STUDY", "CEMENTLEAK_RESULTS_KEY")}
    seconds, peak, _ = run_child(cmd, cwd=project, env=env)
    return {"seconds": seconds, "peak_mb": peak, "steps": json.loads(timings.read_text())}


# ============================================================================================
# the benchmark
# ============================================================================================
@dataclass(frozen=True)
class Config:
    B: int = 1000
    k_lifelines: int = 50
    k_honest: int = 10
    k_agree: int = 25
    sizes: tuple[int, ...] = (1_000, 10_000, 100_000)
    scale_B: int = 200
    outcomes_up_to: int = 10_000  # the VAS/ODI step is run up to this n (see RESULTS.md)
    isolated: bool = True
    seed: int = 20250427


QUICK = Config(B=20, k_lifelines=2, k_honest=1, k_agree=2, sizes=(150, 300), scale_B=4, outcomes_up_to=300, isolated=False)


def bench(cfg: Config, *, skip: set[str], log: Callable[[str], None] = print) -> dict[str, Any]:
    """Run every measurement; return the rows and the details for RESULTS.md."""
    study = str(ROOT / "study.yaml")
    out: dict[str, Any] = {"machine": machine(), "config": cfg.__dict__, "rows": [], "sections": {}}
    rows: list[Row] = out["rows"]

    log(f"engine: validation + calibration, B={cfg.B} ...")
    ours = run_worker("engine", {"study": study, "B": cfg.B, "seed": cfg.seed, "honest": True}, isolated=cfg.isolated)
    log(f"lifelines baseline: {cfg.k_lifelines} + {cfg.k_honest} replicates ...")
    base = run_worker("lifelines", {"study": study, "B": cfg.B, "seed": cfg.seed, "k": cfg.k_lifelines,
                                    "k_honest": cfg.k_honest, "k_agree": cfg.k_agree}, isolated=cfg.isolated)
    n = ours["n"]
    rows.append(Row(f"bootstrap validation + KM calibration, B={cfg.B}, n={n}",
                    base["per_replicate_s"] * cfg.B, ours["validation_s"] + ours["calibration_s"], ours["peak_mb"],
                    f"baseline: lifelines refits, {base['k']} replicates timed, x{cfg.B / base['k']:g}"))
    rows.append(Row(f"honest validation (screen in every replicate), B={cfg.B}, n={n}",
                    base["per_honest_replicate_s"] * cfg.B, ours["honest_s"], ours["peak_mb"],
                    f"baseline: lifelines refits, {base['k_honest']} replicates timed, x{cfg.B / max(base['k_honest'], 1):g}"))
    out["sections"]["engine"] = ours
    out["sections"]["lifelines"] = base

    if "report" not in skip:
        with tempfile.TemporaryDirectory(prefix="cementleak-bench-report-") as tmp:
            project = Path(tmp)
            for name in PROJECT_FILES:
                src = ROOT / name
                (shutil.copytree if src.is_dir() else shutil.copy)(src, project / name)
            log("report: first run (empty caches) ...")
            first = run_report(project, "first")
            log("report: second run (unchanged inputs) ...")
            second = run_report(project, "second")
        rows.append(Row(f"cementleak report, all formats, B={cfg.B}: first run", None, first["seconds"], first["peak_mb"],
                        "empty caches; target < 90 s"))
        rows.append(Row("cementleak report: second run, unchanged inputs", first["seconds"], second["seconds"],
                        second["peak_mb"], "baseline: the first run; target < 20 s"))
        out["sections"]["report"] = {"first": first, "second": second}

    if "scale" not in skip:
        runs, outcome_runs = [], []
        for size in cfg.sizes:
            log(f"scale: n={size}, B={cfg.scale_B} ...")
            res = run_worker("scale", {"n": size, "B": cfg.scale_B, "seed": cfg.seed}, isolated=cfg.isolated)
            runs.append(res)
            rows.append(Row(f"full analysis, simulated n={size:,}, bootstrap B={cfg.scale_B}", None, res["total_s"],
                            res["peak_mb"], "Cox, screen, C/AUC, validation, calibration, decision curve, Table 1, checks"))
        for size in [s for s in cfg.sizes if s <= cfg.outcomes_up_to]:
            log(f"scale: VAS/ODI outcomes alone, n={size} ...")
            res = run_worker("scale", {"n": size, "B": cfg.scale_B, "seed": cfg.seed, "outcomes": True}, isolated=cfg.isolated)
            outcome_runs.append(res)
            rows.append(Row(f"VAS/ODI outcomes step alone, simulated n={size:,}", None,
                            res["steps"]["VAS/ODI outcomes (statsmodels)"], res["peak_mb"], "statsmodels AnovaRM: see notes"))
        out["sections"]["scale"] = runs
        out["sections"]["outcomes"] = outcome_runs

    if "profile" not in skip:
        log("profile: the whole analysis of the study ...")
        out["sections"]["profile"] = run_worker("profile", {"study": study}, isolated=cfg.isolated)
    out["machine"]["load average at end (1, 5, 15 min)"] = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return out


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


def results_markdown(res: dict[str, Any], *, notes: str = "") -> str:
    m, cfg, sec = res["machine"], res["config"], res["sections"]
    parts = ["# Benchmarks", "",
             "Written by `make bench` (`python -m benchmarks.run`).  Every ratio compares two measurements made "
             "in the same run on this machine; times are wall-clock seconds, peak memory is the peak resident set "
             "size of the process that ran the measurement (a fresh Python process each).", "",
             "## Machine", "", "| | |", "|---|---|", *[f"| {k} | {v} |" for k, v in m.items()], "",
             "## Results", "", table_markdown(res["rows"]), ""]
    if "lifelines" in sec:
        b, e = sec["lifelines"], sec["engine"]
        parts += ["## Agreement with lifelines", "",
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
        parts += ["## Report time breakdown", "",
                  "`cementleak report` (HTML, PDF, DOCX, slides) in a scratch copy of the project; seconds as the "
                  "command reports them.  Documents are executed two at a time, so their rows overlap.", "",
                  "| step | first run | second run |", "|---|---:|---:|"]
        second_steps = {s["step"]: s["seconds"] for s in second["steps"]}
        for s in first["steps"]:
            other = second_steps.get(s["step"], second_steps.get(s["step"].replace("execute", "execute (cached)")))
            parts.append(f"| {s['step']} | {s['seconds']:.1f} | {'-' if other is None else f'{other:.1f}'} |")
        parts += [f"| **wall clock (process start to exit)** | **{first['seconds']:.1f}** | **{second['seconds']:.1f}** |", ""]
    if "scale" in sec:
        parts += ["## Scale", "", f"Simulated cohorts (`simulate_study`), bootstrap B = {cfg['scale_B']}, one process per "
                  "size; each step is the function `compute_study` calls, in its order.  The VAS/ODI outcomes step "
                  "is measured apart (its own process, below): it does not scale and is not run at the largest size.",
                  "", _scale_markdown(sec["scale"]), ""]
        if sec.get("outcomes"):
            runs = sec["outcomes"]
            k = growth_exponent([r["n"] for r in runs], [r["steps"]["VAS/ODI outcomes (statsmodels)"] for r in runs]) \
                if len(runs) > 1 else float("nan")
            parts += ["VAS/ODI outcomes step alone (statsmodels): " + "; ".join(
                f"n = {r['n']:,}: {r['steps']['VAS/ODI outcomes (statsmodels)']:.2f} s, peak {r['peak_mb']:.0f} MB"
                for r in runs) + f"; growth exponent {k:.2f}.", ""]
    if "profile" in sec:
        p = sec["profile"]
        parts += ["## Profile of the analysis (after)", "",
                  f"pyinstrument over `compute_study` of the shipped study (B = {cfg['B']}): {p['total_s']:.2f} s.", "",
                  "| call | seconds |", "|---|---:|", *[f"| `{f}` | {s:.2f} |" for f, s in p["parts"] if s >= 0.01], ""]
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
    ap.add_argument("--out", type=Path, default=RESULTS, help="where to write the results (markdown)")
    ap.add_argument("--skip", default="", help="comma-separated: report, scale, profile")
    ap.add_argument("--worker", nargs=2, metavar=("NAME", "ARGS"), help=argparse.SUPPRESS)
    ns = ap.parse_args(argv)
    if ns.worker:
        print(json.dumps(WORKERS[ns.worker[0]](json.loads(ns.worker[1]))))
        return 0
    skip = {s.strip() for s in ns.skip.split(",") if s.strip()}
    cfg = QUICK if ns.quick else Config()
    if ns.quick:
        skip |= {"report", "profile"}
    res = bench(cfg, skip=skip, log=lambda msg: print(msg, file=sys.stderr, flush=True))
    print(table_markdown(res["rows"]))
    ns.out.parent.mkdir(parents=True, exist_ok=True)
    ns.out.write_text(results_markdown(res, notes=_existing_notes(ns.out)), encoding="utf-8")
    print(f"\nwrote {ns.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
