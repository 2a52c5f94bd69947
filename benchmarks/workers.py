"""The measurements of ``make bench`` that run inside one Python process each.

``python -m benchmarks.workers NAME JSON-ARGS`` runs one and prints its result as one JSON line;
:mod:`benchmarks.run` starts each in a fresh process, so that its imports and its peak memory are
its own.  Nothing here prints or writes outside the temporary folders it is given.
"""

from __future__ import annotations

import json
import resource
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any



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
        ("Table 1", lambda s: table_baseline(spec, cohort(s))),
        ("univariable screen", lambda s: s.__setitem__(
            "pred", select_predictors(spec, univariable_screen(spec, cohort(s))))),
        ("multivariable Cox", lambda s: s.__setitem__("model", fit_cox_model(spec, cohort(s), s["pred"]))),
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
        steps.append(("repeated measures (outcomes step)", lambda s: analyze_outcomes(spec, s["data"].repeated)))
    return steps


def worker_scale(args: dict[str, Any]) -> dict[str, Any]:
    """The whole analysis of a simulated cohort of n patients, each step timed."""
    import warnings

    from cementleak_stats.synthetic import write_synthetic
    from cementleak_stats.spec import load_spec

    warnings.simplefilter("ignore")
    n, B, seed = int(args["n"]), int(args["B"]), int(args["seed"])
    with tempfile.TemporaryDirectory(prefix="cementleak-scale-") as tmp:
        shutil.copy(args["study"], Path(tmp) / "study.yaml")
        spec = load_spec(Path(tmp) / "study.yaml")
        write_synthetic(Path(tmp) / "data", n=n, seed=seed, spec=spec)
        spec = spec.model_copy(update={"analysis": spec.analysis.model_copy(update={"bootstrap_b": B})})
        rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        state: dict[str, Any] = {}
        steps = {}
        todo = _scale_steps(spec, B, bool(args.get("outcomes")))
        if args.get("outcomes"):  # the repeated-measures step alone, in its own process (its own peak memory)
            todo = [todo[0], todo[-1]]
        for name, step in todo:
            t0 = time.perf_counter()
            step(state)
            steps[name] = time.perf_counter() - t0
    return {"n": n, "B": B, "steps": steps, "total_s": sum(steps.values()), "rss_before_analysis_mb": rss0}




def worker_design(args: dict[str, Any]) -> dict[str, Any]:
    """The study's fitted model as R reads it: ``time``, ``event`` and the model's encoded terms
    written to ``args["csv"]``; also one patient's predictor values for ``cementleak predict``."""
    import pandas as pd

    from cementleak_stats.validation.resample import cox_data

    spec, cohort, model = _study_model(args["study"])
    data = cox_data(spec, cohort, model.variables, init=model.coef)
    frame = pd.DataFrame(data.X, columns=list(data.terms))
    frame.insert(0, "event", data.event.astype(int))
    frame.insert(0, "time", data.time)
    frame.to_csv(args["csv"], index=False)

    def typed(x: Any) -> str:
        return str(int(x)) if isinstance(x, float) and x.is_integer() else str(x)

    return {"n": len(frame), "events": int(data.event.sum()), "terms": list(data.terms),
            "coef": [float(model.coef[t]) for t in data.terms], "horizon": float(spec.outcome.horizon),
            "m": int(spec.analysis.calibration_group_size), "B": int(spec.analysis.bootstrap_b),
            "seed": int(spec.analysis.seed),
            "patient": {v: typed(cohort[v].iloc[0]) for v in model.variables}}


def _import_seconds(frame: Any) -> float:
    """Seconds a pyinstrument frame spent importing modules (the outermost imports under it)."""
    if frame.function == "_find_and_load":
        return frame.time
    return sum(_import_seconds(c) for c in frame.children)


def _find_frame(root: Any, function: str) -> Any | None:
    todo = [root]
    while todo:
        f = todo.pop(0)
        if f.function == function:
            return f
        todo.extend(f.children)
    return None


def worker_breakdown(args: dict[str, Any]) -> dict[str, Any]:
    """``cementleak analyze --no-cache`` in this process under pyinstrument: where its time goes.

    imports: every module import, wherever it happens (lazy imports inside steps included);
    statistics: ``compute_study`` without its imports, by call; reading: the rest of ``run_study``
    (read + validate the data, provenance); writing: ``write_results`` without its imports."""
    import os

    from pyinstrument import Profiler

    here = os.getcwd()
    os.chdir(args["project"])
    profiler = Profiler(interval=0.002)
    profiler.start()
    try:
        from cementleak_stats.cli import app

        app(["analyze", "study.yaml", "--no-cache", "--out", args["out"]], standalone_mode=False)
    except SystemExit as exc:  # typer may exit with 0
        if exc.code not in (0, None):
            raise
    finally:
        os.chdir(here)
    session = profiler.stop()
    root = session.root_frame()
    total, imports = root.time, _import_seconds(root)

    def net(name: str) -> tuple[float, Any]:
        f = _find_frame(root, name)
        return (0.0, None) if f is None else (f.time - _import_seconds(f), f)

    stats_s, stats = net("compute_study")
    run_s, _ = net("run_study")
    write_s, _ = net("write_results")
    parts = [] if stats is None else sorted(
        ((c.function, c.time - _import_seconds(c)) for c in stats.children), key=lambda x: -x[1])
    merged: dict[str, float] = {}
    for name, s in parts:
        merged[name] = merged.get(name, 0.0) + s
    return {"total_s": total, "imports_s": imports, "statistics_s": stats_s, "reading_s": run_s - stats_s,
            "writing_s": write_s, "other_s": total - imports - run_s - write_s,
            "statistics_parts": sorted(merged.items(), key=lambda x: -x[1]), "cpu_s": session.cpu_time}


def worker_reference(args: dict[str, Any]) -> dict[str, Any]:
    """A fixed numpy workload on one thread (sorting and dense linear algebra): how fast this
    machine is at this moment, the unit the other times are also shown in."""
    import numpy as np
    from threadpoolctl import threadpool_limits

    rng = np.random.default_rng(0)
    x = rng.random(1_000_000)
    a = rng.random((400, 400)) + 400 * np.eye(400)
    with threadpool_limits(1):
        t0 = time.perf_counter()
        for _ in range(int(args.get("repeat", 5))):
            np.sort(x)
            np.linalg.solve(a @ a.T, np.ones(400))
        seconds = time.perf_counter() - t0
    return {"seconds": seconds}


WORKERS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "engine": worker_engine, "lifelines": worker_lifelines, "scale": worker_scale, "design": worker_design,
    "breakdown": worker_breakdown, "reference": worker_reference,
}


if __name__ == "__main__":
    print(json.dumps(WORKERS[sys.argv[1]](json.loads(sys.argv[2]))))
