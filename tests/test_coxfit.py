"""The batched Efron Cox fitter (models/coxfit.py) against lifelines and R.

References: lifelines ``CoxPHFitter`` with ``LIFELINES_FIT_OPTIONS`` (fully converged) on the
original and on resampled rows (tied times included), and R survival 3.5 / rms 6.5
(``tests/reference/rms_rossi.json`` and ``rms_fixture.json``, see rms_reference.R).
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest
from lifelines import CoxPHFitter
from lifelines.datasets import load_rossi

from cementleak_stats.models.cox import LIFELINES_FIT_OPTIONS
from cementleak_stats.models.coxfit import (
    FAILURE_REASONS,
    baseline_cumhaz_batch,
    efron_baseline_cumhaz,
    efron_loglik,
    fit_cox,
    fit_cox_batch,
)
from cementleak_stats.validation.resample import cox_data, draw_bootstrap_counts
from test_resample import REF, rms_case

ROSSI_TERMS = ["fin", "age", "race", "wexp", "mar", "paro", "prio"]


def _rossi() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    df = load_rossi()
    return df[ROSSI_TERMS].to_numpy(float), df["week"].to_numpy(float), df["arrest"].to_numpy(float)


def _lifelines(X: np.ndarray, time: np.ndarray, event: np.ndarray, counts: np.ndarray | None = None) -> CoxPHFitter:
    """lifelines on the resample written out as duplicated rows."""
    k = np.ones(len(time), int) if counts is None else counts.astype(int)
    cols = [f"x{j}" for j in range(X.shape[1])]
    df = pd.DataFrame(np.repeat(X, k, axis=0), columns=cols).assign(t=np.repeat(time, k), e=np.repeat(event, k))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return CoxPHFitter().fit(df, "t", "e", fit_options=LIFELINES_FIT_OPTIONS)


def test_rossi_equals_lifelines_and_r():
    X, time, event = _rossi()
    fit = fit_cox(X, time, event)
    ll = _lifelines(X, time, event)
    np.testing.assert_allclose(fit.coef, ll.params_.to_numpy(), rtol=1e-6)
    np.testing.assert_allclose(fit.se, ll.standard_errors_.to_numpy(), rtol=1e-6)
    assert fit.loglik == pytest.approx(ll.log_likelihood_, rel=1e-10)
    ref = json.loads((REF / "rms_rossi.json").read_text())
    # R survival 3.5: coxph(Surv(week, arrest) ~ fin + age + race + wexp + mar + paro + prio, ties = "efron")
    np.testing.assert_allclose(fit.coef, ref["coef"], rtol=1e-6)
    np.testing.assert_allclose(fit.se, ref["se"], rtol=1e-6)
    np.testing.assert_allclose([fit.loglik_null, fit.loglik], ref["loglik"], rtol=1e-10)


def test_rossi_efron_baseline_equals_r_survfit():
    X, time, event = _rossi()
    fit = fit_cox(X, time, event)
    ref = json.loads((REF / "rms_rossi.json").read_text())
    # survival 3.x centres at fit$means, which are 0 for the 0/1 columns: use R's centring
    lp = (X - np.asarray(ref["means"])) @ fit.coef
    bt, bh = efron_baseline_cumhaz(time, event, lp)
    rt, rh = np.asarray(ref["time"]), np.asarray(ref["cumhaz"])
    # R survival 3.5: survfit(coxph(..., ties = "efron"))$cumhaz (ctype 2)
    keep = np.asarray(ref["n_event"]) > 0
    np.testing.assert_array_equal(bt, rt[keep])
    np.testing.assert_allclose(bh, rh[keep], rtol=1e-6)


def test_fixture_efron_baseline_equals_rms_cph():
    case = rms_case("fixture")
    ref = case.ref["cox"]
    data = cox_data(case.spec, case.cohort, case.model.variables)
    fit = fit_cox(data.X, data.time, data.event)
    # R rms 6.5: cph(..., eps = 1e-12)$coefficients, $loglik
    np.testing.assert_allclose(fit.coef, ref["coef"], rtol=1e-6)
    np.testing.assert_allclose([fit.loglik_null, fit.loglik], ref["loglik"], rtol=1e-10)
    bt, bh = efron_baseline_cumhaz(data.time, data.event, fit.lp(data.X))
    rt, rh = np.asarray(ref["baseline_time"]), np.asarray(ref["baseline_cumhaz"])
    # R rms 6.5: cph(surv = TRUE): -log(fit$surv) at fit$time (Efron, at the column means)
    got = np.array([bh[np.searchsorted(bt, t, side="right") - 1] if t >= bt[0] else 0.0 for t in rt])
    np.testing.assert_allclose(got, rh, rtol=1e-6, atol=1e-12)
    h12, means = baseline_cumhaz_batch(data.X, data.time, data.event, fit.coef[None], t=12)
    np.testing.assert_allclose(means[0], ref["means"], rtol=1e-12)
    # R rms 6.5: Survival(cph(...))(12, 0)
    assert np.exp(-h12[0]) == pytest.approx(ref["s0_u"], rel=1e-7)


@pytest.mark.parametrize("dataset", ["rossi", "fixture"])
def test_resampled_replicates_equal_lifelines(dataset):
    """A sample of bootstrap replicates (tied times, tied copies) against lifelines on the written-out rows."""
    if dataset == "rossi":
        X, time, event = _rossi()
    else:
        case = rms_case("fixture")
        d = cox_data(case.spec, case.cohort, case.model.variables)
        X, time, event = d.X, d.time, d.event
    assert len(np.unique(time[event == 1])) < event.sum()  # tied event times
    counts = draw_bootstrap_counts(len(time), 200, np.random.default_rng(12))
    full = fit_cox_batch(X, time, event)
    batch = fit_cox_batch(X, time, event, counts, init=full.coef[0])
    assert batch.n_failed == 0
    for b in np.random.default_rng(3).choice(200, size=4, replace=False):
        ll = _lifelines(X, time, event, counts[b])
        np.testing.assert_allclose(batch.coef[b], ll.params_.to_numpy(), rtol=1e-6, atol=1e-10)
        assert batch.loglik[b] == pytest.approx(ll.log_likelihood_, rel=1e-9)
        np.testing.assert_allclose(np.linalg.inv(batch.info[b]), ll.variance_matrix_.to_numpy(), rtol=1e-5, atol=1e-12)
        assert efron_loglik(X, time, event, batch.coef[b], counts[b][None])[0] == pytest.approx(batch.loglik[b], rel=1e-12)


def test_warm_start_and_per_replicate_designs_give_the_same_fits():
    X, time, event = _rossi()
    counts = draw_bootstrap_counts(len(time), 50, np.random.default_rng(5))
    cold = fit_cox_batch(X, time, event, counts)
    warm = fit_cox_batch(X, time, event, counts, init=fit_cox_batch(X, time, event).coef[0])
    np.testing.assert_allclose(warm.coef, cold.coef, rtol=1e-9, atol=1e-12)
    assert warm.n_iter <= cold.n_iter
    per = fit_cox_batch(np.broadcast_to(X, (50, *X.shape)), time, event, counts)
    np.testing.assert_allclose(per.coef, cold.coef, rtol=1e-9, atol=1e-12)


def test_fixed_coefficients_fit_the_submodel():
    X, time, event = _rossi()
    free = np.array([True, True, False, True, False, True, True])
    sub = fit_cox_batch(X, time, event, free=free)
    ll = _lifelines(X[:, free], time, event)
    np.testing.assert_allclose(sub.coef[0, free], ll.params_.to_numpy(), rtol=1e-6)
    assert np.all(sub.coef[0, ~free] == 0)


def test_baseline_of_a_resample_equals_the_baseline_of_its_rows():
    X, time, event = _rossi()
    counts = draw_bootstrap_counts(len(time), 3, np.random.default_rng(1))
    fits = fit_cox_batch(X, time, event, counts)
    h, means = baseline_cumhaz_batch(X, time, event, fits.coef, counts, t=30)
    for b in range(3):
        k = counts[b].astype(int)
        Xb = np.repeat(X, k, axis=0)
        single = fit_cox(Xb, np.repeat(time, k), np.repeat(event, k))
        np.testing.assert_allclose(means[b], Xb.mean(axis=0), rtol=1e-12)
        assert np.exp(-h[b]) == pytest.approx(single.baseline_survival(30), rel=1e-9)


def test_failed_replicates_are_counted_with_their_reason():
    """Separation, a level never drawn, no events: counted, NaN, never silently kept."""
    rng = np.random.default_rng(0)
    n = 40
    x_sep = np.r_[np.ones(8), np.zeros(n - 8)]  # the 8 exposed patients all have the earliest events
    x2 = rng.normal(size=n)
    time = np.r_[np.arange(1, 9), rng.uniform(10, 20, n - 8)]
    event = np.r_[np.ones(8), (rng.random(n - 8) < 0.3).astype(float)]
    X = np.column_stack([x_sep, x2])
    sep = fit_cox_batch(X, time, event)
    assert sep.n_failed == 1 and sep.failure[0] in (4, 5) and np.isnan(sep.coef).all()

    no_exposed = np.r_[np.zeros(8), np.ones(n - 8)]  # the exposed level never drawn: x_sep constant
    assert fit_cox_batch(X, time, event, no_exposed[None]).failure[0] == 2
    no_events = np.where(event == 1, 0.0, 1.0)  # only censored rows drawn
    x_ok = np.column_stack([rng.integers(0, 2, n).astype(float), x2])
    fits = fit_cox_batch(x_ok, time, event, np.vstack([np.ones(n), no_events, np.ones(n)]))
    assert fits.converged.tolist() == [True, False, True] and fits.n_failed == 1
    assert FAILURE_REASONS[int(fits.failure[1])].startswith("no events")
    assert np.isnan(fits.coef[1]).all() and np.isnan(fits.loglik[1]) and np.isfinite(fits.coef[[0, 2]]).all()


def test_the_compiled_efron_pass_fits_as_the_numpy_sums(monkeypatch):
    """models/efron_rows.py (the compiled Efron sums) against the numpy sums of
    models/efron.py: the same quantities summed in another order, so equal to rounding; the
    batched fits (shared and per-replicate designs, tied times, a screen's fixed terms) agree."""
    from cementleak_stats.models import compiled as kernels

    if not kernels.AVAILABLE:
        pytest.skip("numba is not installed")
    rng = np.random.default_rng(11)
    n = 400
    X = np.column_stack([rng.normal(size=n), rng.integers(0, 2, n), rng.integers(0, 3, n)]).astype(float)
    time = np.round(rng.exponential(np.exp(-0.5 * X[:, 0])), 1) + 0.1  # tied times
    event = (rng.random(n) < 0.6).astype(float)
    counts = rng.multinomial(n, np.full(n, 1 / n), size=6).astype(float)
    free = np.ones((6, 3), bool)
    free[::2, 2] = False

    def fits():
        return (fit_cox_batch(X, time, event, counts), fit_cox_batch(X, time, event, counts, free=free),
                fit_cox_batch(X[None, :, :1] * rng_x, time, event, counts, init=np.ones((6, 1))))

    rng_x = np.linspace(0.5, 1.5, 6)[:, None, None]
    monkeypatch.setattr(kernels, "ENABLED", False)
    numpy_fits = fits()
    coef = np.nan_to_num(numpy_fits[0].coef)
    h_numpy = baseline_cumhaz_batch(X, time, event, coef, counts, t=1.0)
    monkeypatch.setattr(kernels, "ENABLED", True)
    compiled = fits()
    h_compiled = baseline_cumhaz_batch(X, time, event, coef, counts, t=1.0)
    np.testing.assert_allclose(h_compiled[0], h_numpy[0], rtol=1e-13)
    np.testing.assert_array_equal(h_compiled[1], h_numpy[1])
    for a, b in zip(compiled, numpy_fits):
        np.testing.assert_array_equal(a.failure, b.failure)
        np.testing.assert_allclose(a.coef, b.coef, rtol=1e-11, atol=1e-13)
        np.testing.assert_allclose(a.loglik, b.loglik, rtol=1e-13)
        np.testing.assert_allclose(a.loglik_null, b.loglik_null, rtol=1e-13)
        fixed = np.isnan(a.info) & np.isfinite(b.info)  # the compiled pass leaves out fixed terms' information
        np.testing.assert_allclose(np.where(fixed, b.info, a.info), b.info, rtol=1e-11)


def test_a_collapsed_design_fits_as_its_rows(monkeypatch):
    """models/collapse.py: the distinct (time, event, x) rows with summed counts give the fits of
    the full rows (the honest screen's one-variable refits at large n), to rounding."""
    from cementleak_stats.models.collapse import collapse
    from cementleak_stats.validation import resample

    rng = np.random.default_rng(5)
    n = 3000
    time = np.round(rng.exponential(6, n).clip(0.1, 12), 1)
    event = ((rng.random(n) < 0.4) & (time < 12)).astype(float)
    counts = rng.multinomial(n, np.full(n, 1 / n), size=5).astype(float)
    for X in (rng.integers(0, 2, (n, 1)).astype(float), np.eye(3)[rng.integers(0, 3, n)][:, 1:],
              np.round(rng.normal(0, 1, (n, 1)), 1)):
        X[:, 0] += 0.3 * (time < 3)  # an effect, so that the estimates are away from 0
        c = collapse(X, time, event, max_share=1.0)
        assert len(c.time) < n
        full = fit_cox_batch(X, time, event, counts)
        small = fit_cox_batch(c.X, c.time, c.event, c.counts(counts))
        np.testing.assert_array_equal(c.counts(counts).sum(axis=1), counts.sum(axis=1))
        np.testing.assert_allclose(small.coef, full.coef, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(small.loglik, full.loglik, rtol=1e-12)
        np.testing.assert_allclose(small.info, full.info, rtol=1e-9)
    assert collapse(rng.normal(size=(n, 1)), time, event) is None  # distinct values: does not pay
    # the honest screen's P values with and without collapsing
    from cementleak_stats.validation.resample import CoxData

    X = np.column_stack([rng.integers(0, 2, n), rng.integers(0, 4, n)]).astype(float)
    X[:, 0] += 0.5 * (time < 2)
    data = CoxData(X=X, time=time, event=event, terms=("a", "b"), variables=("a", "b"), groups=((0,), (1,)),
                   init=np.zeros(2), horizon=12.0)
    p_full = resample._screen_p_values(data, counts)
    monkeypatch.setattr(resample, "COLLAPSE_MIN_ROWS", 1)
    np.testing.assert_allclose(resample._screen_p_values(data, counts), p_full, rtol=1e-8)
