"""The same numbers however the work is split, and bounded memory at any n.

* bootstrap replicates in joblib workers and on a local Dask cluster (joblib's dask backend)
  give exactly the results of one process for the same generator;
* chunks of replicates (the batched fitter's and the concordance's memory bound) change
  nothing;
* the O(n log n) weighted concordance equals a plain pair count written out here;
* memory of the fitter and the concordance grows with n, not n x (number of event times);
* the renderer's documents run two at a time and reuse their cached cell outputs: a second
  render with the same results key starts no kernel and writes identical files.
"""

from __future__ import annotations

import shutil
import tracemalloc
from functools import cache
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest

from cementleak_stats.cache import SignedFiles
from cementleak_stats.cohort.io import load_study_data
from cementleak_stats.models import coxfit
from cementleak_stats.models.cox import fit_cox_model, select_predictors, univariable_screen
from cementleak_stats.models.coxfit import baseline_cumhaz_batch, fit_cox_batch
from cementleak_stats.render import execute, render_project
from cementleak_stats.spec import load_spec
from cementleak_stats.validation import concordance
from cementleak_stats.validation.calibration import calibrate_km
from cementleak_stats.validation.indices import INDEX_NAMES, concordance_batch, cox_indices, validate_cox
from cementleak_stats.validation.resample import (
    bootstrap_optimism,
    cox_data,
    cox_fit_fn,
    draw_bootstrap_counts,
    make_screening_fit_fn,
    model_fits,
)

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "render_fixtures"


@cache
def shipped():
    """The shipped study, its complete cases and the screened multivariable model."""
    spec = load_spec(REPO / "study.yaml")
    cohort = load_study_data(spec).analysed
    model = fit_cox_model(spec, cohort, select_predictors(spec, univariable_screen(spec, cohort)))
    return spec, cohort, model


def _validation(fit_fn, variables, *, n_jobs: int, chunk_size: int | None = None, B: int = 120):
    spec, cohort, model = shipped()
    data = cox_data(spec, cohort, variables, init=model.coef)
    coef = np.array([float(model.coef.get(t, 0.0)) for t in data.terms])
    return bootstrap_optimism(fit_fn, cox_indices, data, n_boot=B, rng=np.random.default_rng(11), names=INDEX_NAMES,
                              n_jobs=n_jobs, chunk_size=chunk_size,
                              apparent_fits=model_fits(data, coef, model.loglik, model.loglik_null))


def _same(a, b, rtol: float = 0.0) -> None:
    np.testing.assert_allclose(a.training, b.training, rtol=rtol, atol=0)
    np.testing.assert_allclose(a.test, b.test, rtol=rtol, atol=0)
    np.testing.assert_array_equal(a.fit_ok, b.fit_ok)


# --- joblib, dask, chunks ----------------------------------------------------------------------
def test_joblib_workers_give_the_replicates_of_one_process():
    spec, _, model = shipped()
    candidates = [v.name for v in spec.candidates]
    screen = make_screening_fit_fn(spec.analysis.screen_p_value)
    for fit_fn, variables in ((cox_fit_fn, model.variables), (screen, candidates)):
        one = _validation(fit_fn, variables, n_jobs=1, chunk_size=40)
        two = _validation(fit_fn, variables, n_jobs=2, chunk_size=40)  # 3 chunks over 2 loky workers
        _same(one, two)
        # the chunk size is a memory bound, not part of the result (up to the rounding of the
        # BLAS kernels, which depends on the matrix shapes)
        _same(one, _validation(fit_fn, variables, n_jobs=1, chunk_size=120), rtol=1e-12)


@pytest.mark.slow
def test_the_calibration_at_every_horizon_is_the_same_in_workers():
    """``performance_at_horizons(n_jobs=2)``: the calibration bootstraps at the other horizons go to
    joblib workers (more than one chunk of 250 replicates) and give the numbers of one process."""
    from cementleak_stats.validation.horizons import performance_at_horizons

    spec, cohort, model = shipped()
    assert len(spec.outcome.all_horizons) > 1  # the shipped study has other horizons to calibrate at
    one, two = (performance_at_horizons(spec, model, cohort, n_boot=600, rng=np.random.default_rng(7), n_jobs=j)
                for j in (1, 2))
    pd.testing.assert_frame_equal(one.groups, two.groups, check_exact=True)
    pd.testing.assert_frame_equal(one.measures, two.measures, check_exact=True)


def test_the_comparators_paired_bootstrap_is_the_same_in_workers():
    """``compare_with(n_jobs=2)``: the paired resamples (ΔC, NRI/IDI) go to joblib workers in
    groups of replicates (resident.map_replicates) and give the numbers of one process."""
    from cementleak_stats.assessment import fit_comparator
    from cementleak_stats.validation.comparison import compare_with

    spec, cohort, model = shipped()
    comparator = fit_comparator(spec, cohort)
    assert comparator is not None  # the shipped study names a comparator
    one, two = (compare_with(spec, model, comparator, cohort, n_boot=60, rng=np.random.default_rng(3), label="c",
                             n_jobs=j) for j in (1, 2))
    pd.testing.assert_frame_equal(one.discrimination, two.discrimination, check_exact=True)
    pd.testing.assert_frame_equal(one.reclassification, two.reclassification, check_exact=True)
    assert one.discrimination["ci_low"].notna().any()  # the bootstrap ran


def test_the_net_benefit_bootstrap_is_the_same_in_workers():
    """``net_benefit_intervals(n_jobs=2)``: the resamples of the fixed predictions go to joblib
    workers in groups of replicates and give the intervals of one process."""
    from cementleak_stats.validation.intervals import net_benefit_intervals

    spec, cohort, model = shipped()
    from cementleak_stats.design import encode

    risk = model.risk(encode(spec, cohort, model.variables).X)
    one, two = (net_benefit_intervals(spec, risk, cohort, n_boot=80, rng=np.random.default_rng(4), n_jobs=j)
                for j in (1, 2))
    pd.testing.assert_frame_equal(one, two, check_exact=True)
    assert one["ci_low"].notna().any()  # the bootstrap ran


def test_a_local_dask_cluster_gives_the_results_of_one_process():
    distributed = pytest.importorskip("dask.distributed")
    spec, cohort, model = shipped()
    B = 600  # more than one chunk of 250 replicates, so the chunks really go to the workers

    from cementleak_stats.assessment import fit_comparator
    from cementleak_stats.validation.comparison import compare_with

    comparator = fit_comparator(spec, cohort)

    def run(n_jobs: int) -> tuple[pd.DataFrame, ...]:
        val = validate_cox(spec, model, cohort, n_boot=B, rng=np.random.default_rng(5), honest=True, n_jobs=n_jobs)
        cal = calibrate_km(spec, model, cohort, m=25, n_boot=B, rng=np.random.default_rng(6), n_jobs=n_jobs)
        cmp = compare_with(spec, model, comparator, cohort, n_boot=60, rng=np.random.default_rng(3), label="c",
                           n_jobs=n_jobs)
        return val, cal, cmp.discrimination, cmp.reclassification

    local = run(1)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            distributed.Client(cluster), joblib.parallel_backend("dask"):
        remote = run(-1)
    for a, b in zip(local, remote):
        pd.testing.assert_frame_equal(a, b)


def test_chunked_fits_equal_one_batch(monkeypatch):
    spec, cohort, model = shipped()
    data = cox_data(spec, cohort, model.variables, init=model.coef)
    n = len(data)
    counts = draw_bootstrap_counts(n, 40, np.random.default_rng(2))
    free = np.random.default_rng(3).random((40, data.X.shape[1])) < 0.7
    per_design = np.broadcast_to(data.X, (40, *data.X.shape))
    whole = [fit_cox_batch(data.X, data.time, data.event, counts, init=data.init, free=free),
             fit_cox_batch(per_design, data.time, data.event, counts)]
    h_whole = baseline_cumhaz_batch(data.X, data.time, data.event, whole[0].coef, counts, t=12)[0]
    monkeypatch.setattr(coxfit, "CHUNK_ELEMENTS", 7 * n)  # chunks of 7 replicates
    parts = [fit_cox_batch(data.X, data.time, data.event, counts, init=data.init, free=free),
             fit_cox_batch(per_design, data.time, data.event, counts)]
    for w, p in zip(whole, parts):
        np.testing.assert_array_equal(w.failure, p.failure)
        np.testing.assert_allclose(p.coef, w.coef, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(p.loglik, w.loglik, rtol=1e-13)
        np.testing.assert_allclose(p.info, w.info, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(baseline_cumhaz_batch(data.X, data.time, data.event, parts[0].coef, counts, t=12)[0],
                               h_whole, rtol=1e-10)
    # the concordance counts whole (and half) case weights: chunking cannot change a bit
    score = np.nan_to_num(whole[0].coef) @ data.X.T
    c_whole = concordance_batch(data.time, data.event, score, counts)
    monkeypatch.setattr(concordance, "CHUNK_ELEMENTS", 3 * n)  # the C-index kernel lives there
    np.testing.assert_array_equal(concordance_batch(data.time, data.event, score, counts), c_whole)


# --- the O(n log n) concordance against the pairs --------------------------------------------
def _pairs_c(time: np.ndarray, event: np.ndarray, score: np.ndarray, w: np.ndarray) -> float:
    """Harrell's C by the definition, one pair at a time (R survival's comparable pairs)."""
    num = den = 0.0
    for i in range(len(time)):
        if not event[i]:
            continue
        for j in range(len(time)):
            if time[j] > time[i] or (time[j] == time[i] and not event[j]):
                den += w[i] * w[j]
                num += w[i] * w[j] * (1.0 if score[i] > score[j] else 0.5 if score[i] == score[j] else 0.0)
    return num / den


def test_weighted_concordance_equals_the_pair_count():
    rng = np.random.default_rng(9)
    n, B = 45, 6
    time = rng.integers(1, 12, n).astype(float)  # many tied times
    event = rng.random(n) < 0.5
    score = rng.integers(0, 5, (B, n)).astype(float)  # many tied scores
    counts = draw_bootstrap_counts(n, B, rng)  # zeros and repeats
    got = concordance_batch(time, event, score, counts)
    for b in range(B):
        assert got[b] == pytest.approx(_pairs_c(time, event, score[b], counts[b]), abs=1e-12)
    assert concordance_batch(time, event, score[:1])[0] == pytest.approx(_pairs_c(time, event, score[0], np.ones(n)), abs=1e-12)


# --- memory grows with n, never with n x event times -------------------------------------------
def test_memory_of_fits_and_concordance_is_linear_in_n():
    rng = np.random.default_rng(4)
    n, B = 20_000, 40
    X = rng.normal(size=(n, 3))
    time = rng.exponential(np.exp(-X @ np.array([0.5, -0.3, 0.2])))  # continuous: about 10,000 event times
    event = (rng.random(n) < 0.5).astype(float)
    counts = draw_bootstrap_counts(n, B, rng)
    tracemalloc.start()
    try:
        fit = fit_cox_batch(X, time, event, counts)
        concordance_batch(time, event, fit.coef @ X.T, counts)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert fit.n_failed == 0
    # an (n, K) risk-set matrix alone would be 20,000 x ~10,000 x 8 bytes = 1.6 GB
    assert peak < 150 * 2**20, f"peak {peak / 2**20:.0f} MB"


# --- the renderer: parallel documents, execution cache -----------------------------------------
@pytest.mark.render
@pytest.mark.slow
def test_second_render_with_the_same_results_key_starts_no_kernel(tmp_path, monkeypatch):
    project = tmp_path / "project"
    shutil.copytree(FIXTURES / "project", project)
    started: list[int] = []
    real = execute._kernel_manager

    def counting(kernel_dir: Path):
        started.append(1)
        return real(kernel_dir)

    monkeypatch.setattr(execute, "_kernel_manager", counting)
    signed = SignedFiles("render")
    cached = {"cache": execute.ExecutionCache(project / ".cementleak-cache" / "render", signed.read, signed.write),
              "params": {"results": "results-one"}}

    def render(**kw) -> dict[str, bytes]:
        steps: list[tuple[str, str]] = []
        rep = render_project(project, to=["html", "slides"], progress=lambda doc, step: steps.append((doc, step)), **cached, **kw)
        render.steps = steps
        return {f.path.name: f.path.read_bytes() for f in rep.files}

    first = render(jobs=1)
    assert len(started) == 2  # report.qmd and slides.qmd, one kernel each
    entries = sorted((project / ".cementleak-cache" / "render").glob("*.json"))
    assert len(entries) == 2
    second = render(jobs=2)
    assert len(started) == 2, "a cached document started a kernel"
    assert second == first  # identical files
    assert ("report.qmd", "cached") in render.steps
    # other results: executed again, and the stale entries replaced
    cached["params"] = {"results": "results-two"}
    third = render(jobs=2)
    assert len(started) == 4 and third == first
    assert len(list((project / ".cementleak-cache" / "render").glob("*.json"))) == 2
    # an edited document is executed again; without a results key nothing is cached
    (project / "report.qmd").write_text((project / "report.qmd").read_text() + "\nOne more line.\n")
    render()
    assert len(started) == 5
    cached.clear()
    render()
    assert len(started) == 7
