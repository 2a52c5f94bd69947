"""The compiled per-cell Kaplan-Meier of the grouped calibration (validation/groupkm.py, used
when numba is installed) gives kaplan_meier's S(u), Greenwood variance and last time bit for bit
(kaplan_meier is checked against R survfit in tests/test_km.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cementleak_stats.km import kaplan_meier
from cementleak_stats.models import compiled
from cementleak_stats.validation import groupkm

pytestmark = pytest.mark.skipif(not compiled.AVAILABLE, reason="numba is not installed")


@pytest.mark.parametrize(("n", "B", "G"), [(1, 1, 1), (9, 2, 3), (80, 4, 6), (3000, 3, 120)])
@pytest.mark.parametrize("at", [0.05, 5.0, 12.000001])
def test_cells_equal_kaplan_meier(n: int, B: int, G: int, at: float) -> None:
    rng = np.random.default_rng(n * 7 + G)
    time = np.round(rng.exponential(6, n).clip(0.1, 12), 1)  # ties, and everyone left censored at 12
    event = ((rng.random(n) < 0.35) & (time < 12)).astype(float)
    counts = rng.multinomial(n, np.full(n, 1 / n), size=B).astype(float)  # zeros: rows not drawn
    groups = rng.integers(0, G, (B, n))
    fit = kaplan_meier(time, event, weights=counts, groups=groups, n_groups=G)
    surv, green, last = groupkm.km_at_cells(time, event, counts, groups, G, at)
    np.testing.assert_array_equal(surv, fit.survival_at(at)[:, :, 0])
    np.testing.assert_array_equal(np.sqrt(green), fit.se_log_at(at)[:, :, 0])
    np.testing.assert_array_equal(last, fit.last)


def test_shared_groups_and_a_cell_reaching_zero() -> None:
    time = np.array([1.0, 2.0, 2.0, 3.0, 4.0, 4.0])
    event = np.array([1.0, 1.0, 0.0, 1.0, 1.0, 1.0])
    counts = np.array([[1.0, 2.0, 1.0, 0.0, 1.0, 1.0], [1.0, 1.0, 1.0, 1.0, 1.0, 1.0]])
    groups = np.array([[0, 0, 1, 1, 2, 2]])
    fit = kaplan_meier(time, event, weights=counts, groups=np.repeat(groups, 2, axis=0), n_groups=4)
    surv, green, last = groupkm.km_at_cells(time, event, counts, groups, 4, 10.0)
    np.testing.assert_array_equal(surv, fit.survival_at(10.0)[:, :, 0])
    np.testing.assert_array_equal(np.sqrt(green), fit.se_log_at(10.0)[:, :, 0])
    np.testing.assert_array_equal(last, fit.last)
    assert surv[0, 2] == 0.0 and np.isinf(green[0, 2]) and last[0, 3] == -np.inf


def test_calibrate_km_is_the_same_on_either_path(monkeypatch: pytest.MonkeyPatch) -> None:
    from test_resample import CASES, rms_case

    from cementleak_stats.validation.calibration import calibrate_km

    case = rms_case(next(iter(CASES)))
    m = case.ref["calibrate"]["m"]
    monkeypatch.setattr(compiled, "ENABLED", False)
    before = calibrate_km(case.spec, case.model, case.cohort, m=m, n_boot=40, rng=np.random.default_rng(5))
    monkeypatch.setattr(compiled, "ENABLED", True)
    after = calibrate_km(case.spec, case.model, case.cohort, m=m, n_boot=40, rng=np.random.default_rng(5))
    # the refits also take the compiled Efron sums (equal to rounding), the cells' KM bit for bit
    pd.testing.assert_frame_equal(after, before, rtol=1e-10, atol=1e-13)


def test_net_benefit_batch_is_the_same_on_either_path(monkeypatch: pytest.MonkeyPatch) -> None:
    from cementleak_stats.validation.intervals import net_benefit_batch

    rng = np.random.default_rng(8)
    n = 500
    time = np.round(rng.exponential(8, n).clip(0.1, 12), 1)
    event = ((rng.random(n) < 0.3) & (time < 12)).astype(int)
    risk = rng.random(n) * 0.6
    counts = rng.multinomial(n, np.full(n, 1 / n), size=7).astype(float)
    thresholds = (0.05, 0.1, 0.2, 0.3, 0.4, 0.59)
    monkeypatch.setattr(compiled, "ENABLED", False)
    before = net_benefit_batch(risk, time, event, counts, horizon=12.0, thresholds=thresholds)
    monkeypatch.setattr(compiled, "ENABLED", True)
    after = net_benefit_batch(risk, time, event, counts, horizon=12.0, thresholds=thresholds)
    for a, b in zip(after, before):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("n", [1, 9, 300])
def test_censoring_left_equals_the_reverse_kaplan_meier(n: int) -> None:
    rng = np.random.default_rng(n)
    time = np.round(rng.exponential(6, n).clip(0.1, 12), 1)
    event = ((rng.random(n) < 0.4) & (time < 12)).astype(float)
    counts = rng.multinomial(n, np.full(n, 1 / n), size=3).astype(float)
    fit = kaplan_meier(time, event, weights=counts, reverse=True)
    left, at = groupkm.censoring_left(time, event, counts, 6.0)
    np.testing.assert_array_equal(left, fit.survival_at(time, left=True)[:, 0, :])
    np.testing.assert_array_equal(at, fit.survival_at(6.0)[:, 0, 0])


def test_reclassification_is_the_same_on_either_path(monkeypatch: pytest.MonkeyPatch) -> None:
    from cementleak_stats.validation.comparison import reclassification

    rng = np.random.default_rng(4)
    n = 400
    time = np.round(rng.exponential(8, n).clip(0.1, 12), 1)
    event = ((rng.random(n) < 0.3) & (time < 12)).astype(int)
    new, old = rng.random(n), rng.random(n)
    counts = rng.multinomial(n, np.full(n, 1 / n), size=6).astype(np.uint8)
    monkeypatch.setattr(compiled, "ENABLED", False)
    before = reclassification(time, event, new, old, 12 * (1 - 1e-6), counts)
    monkeypatch.setattr(compiled, "ENABLED", True)
    np.testing.assert_array_equal(reclassification(time, event, new, old, 12 * (1 - 1e-6), counts), before)


@pytest.mark.parametrize("g", [1, 2, 37, 4000])
def test_cut_groups_equals_numpys_searchsorted(g: int) -> None:
    """Hmisc cut2's groups through the bucket table: numpy's searchsorted, bit for bit, also for
    values equal to a cut, outside the cuts, infinite or NaN."""
    rng = np.random.default_rng(g)
    surv = rng.beta(8, 2, size=(3, 20_000))
    cuts = np.unique(np.quantile(np.r_[0.0, 1.0, surv[0]], np.linspace(0, 1, g + 1)))
    surv[0, :50] = cuts[rng.integers(0, len(cuts), 50)]  # on the cuts themselves
    surv[1, :6] = [-0.5, 1.5, np.inf, -np.inf, np.nan, np.nextafter(cuts[-1], 0)]
    expected = np.clip(np.searchsorted(cuts, surv, side="right") - 1, 0, len(cuts) - 2)
    np.testing.assert_array_equal(groupkm.cut_groups(surv, cuts), expected)
