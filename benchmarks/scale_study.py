"""The whole analysis (``compute_study``) of one SYNTHETIC cohort of n patients: seconds per step,
total, peak memory; optionally the bootstrap on a local Dask cluster.

Issue 16's scale goal is n = 1,000,000 with B = 200 in at most 10 minutes and 4 GB on a 2-core
machine.  This script measures it in one process (run it under ``/usr/bin/time -v`` for the
process's own peak RSS; the script also prints ``ru_maxrss``)::

    python -m benchmarks.scale_study --n 1000000 --B 200 --data /tmp/cl-1m     # simulate once, reuse
    python -m benchmarks.scale_study --n 100000 --B 20 --dask-workers 2       # bootstrap on Dask

What runs: ``compute_study`` of the shipped study file on ``write_synthetic(n)`` data (the
development cohort and the simulated second centre), with ``analysis.bootstrap_b = B``; the
repeated measures are left out (``benchmarks/run.py`` times them apart) and so is the two-stage
bootstrap of the corrected indices unless ``--interval-bootstrap OUTER INNER`` asks for it (B x 25
more refits: the "full analysis" row of ``benchmarks/RESULTS.md`` does not include it).  Steps are
timed from ``compute_study``'s progress events, so a step's time is up to the next event.

Output: one line per step, then a JSON object (``--json FILE`` also writes it): n, B, steps
(seconds), load_s (reading and validating the data), analysis_s, total_s, peak_rss_mb, n_jobs,
dask_workers.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import sys
import tempfile
import time
import warnings
from contextlib import ExitStack
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def _prepare(data_dir: Path, n: int, seed: int) -> Path:
    """``data_dir`` with study.yaml and simulated data of n patients (simulated once, then reused)."""
    from cementleak_stats.spec import load_spec
    from cementleak_stats.synthetic import write_synthetic

    data_dir.mkdir(parents=True, exist_ok=True)
    study = data_dir / "study.yaml"
    stamp = data_dir / "simulated.json"
    want = {"n": n, "seed": seed}
    if not (study.exists() and stamp.exists() and json.loads(stamp.read_text()) == want):
        shutil.copy(ROOT / "study.yaml", study)
        write_synthetic(data_dir / "data", n=n, seed=seed, spec=load_spec(study))
        stamp.write_text(json.dumps(want))
    return study


def run(n: int, B: int, *, seed: int, data_dir: Path, n_jobs: int = 1, dask_workers: int = 0,
        interval_bootstrap: tuple[int, int] = (0, 0)) -> dict[str, Any]:
    """Simulate (or reuse) the cohort, run ``compute_study`` once, return the timings."""
    from cementleak_stats.cohort.io import load_study_data
    from cementleak_stats.spec import load_spec
    from cementleak_stats.study import compute_study

    warnings.simplefilter("ignore")
    spec = load_spec(_prepare(data_dir, n, seed))
    analysis = spec.analysis.model_copy(update={"bootstrap_b": B, "interval_bootstrap": tuple(interval_bootstrap)})
    spec = spec.model_copy(update={"analysis": analysis, "repeated": None})
    steps: dict[str, float] = {}
    t0 = time.perf_counter()
    data = load_study_data(spec)
    load_s = time.perf_counter() - t0
    mark = [time.perf_counter(), "start"]

    shown = [time.perf_counter()]

    def progress(name: str, done: int, total: int) -> None:
        if total and time.perf_counter() - shown[0] > 30:  # a long bootstrap: its pace, every 30 s
            shown[0] = time.perf_counter()
            print(f"          {name}: {done}/{total} after {shown[0] - float(mark[0]):.0f} s", flush=True)
        if name != mark[1]:
            now = time.perf_counter()
            steps[str(mark[1])] = steps.get(str(mark[1]), 0.0) + now - float(mark[0])
            print(f"{now - float(mark[0]):9.2f} s  {mark[1]}", flush=True)
            mark[:] = [now, name]

    with ExitStack() as stack:
        if dask_workers:
            import joblib
            from dask.distributed import Client, LocalCluster

            cluster = stack.enter_context(LocalCluster(n_workers=dask_workers, threads_per_worker=1, processes=True,
                                                       dashboard_address=None))
            stack.enter_context(Client(cluster))
            stack.enter_context(joblib.parallel_backend("dask"))
            n_jobs = -1
        t1 = time.perf_counter()
        compute_study(spec, data=data, progress=progress, n_jobs=n_jobs)
        analysis_s = time.perf_counter() - t1
    progress("end", 0, 0)
    steps.pop("start", None)
    return {"n": n, "B": B, "seed": seed, "steps": steps, "load_s": load_s, "analysis_s": analysis_s,
            "total_s": load_s + analysis_s, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "n_jobs": n_jobs, "dask_workers": dask_workers, "interval_bootstrap": list(interval_bootstrap)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=100_000, help="patients (default 100,000)")
    ap.add_argument("--B", type=int, default=200, help="bootstrap replicates (default 200)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--data", type=Path, default=None,
                    help="directory for the simulated cohort, kept and reused (default: a temporary one)")
    ap.add_argument("--n-jobs", type=int, default=1, help="joblib workers for the bootstrap chunks")
    ap.add_argument("--dask-workers", type=int, default=0, help="run the bootstrap on a local Dask cluster of K processes")
    ap.add_argument("--interval-bootstrap", type=int, nargs=2, default=(0, 0), metavar=("OUTER", "INNER"))
    ap.add_argument("--json", type=Path, default=None, help="also write the result here")
    a = ap.parse_args(argv)
    with ExitStack() as stack:
        data_dir = a.data or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="cementleak-scale-")))
        res = run(a.n, a.B, seed=a.seed, data_dir=data_dir, n_jobs=a.n_jobs, dask_workers=a.dask_workers,
                  interval_bootstrap=tuple(a.interval_bootstrap))
    text = json.dumps(res, indent=1)
    print(text)
    if a.json:
        a.json.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
