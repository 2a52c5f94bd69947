"""The compiled Fenwick-tree sweep of Harrell's C (validation/concordance_bit.py, the compiled
path of concordance_batch) counts exactly the pairs of the numpy kernel (validation/concordance.py),
which tests/test_discrimination.py checks against R survival's concordance()."""

from __future__ import annotations

import numpy as np
import pytest

from cementleak_stats.validation import concordance as C
from cementleak_stats.models import compiled
from cementleak_stats.validation import concordance_bit

pytestmark = pytest.mark.skipif(not compiled.AVAILABLE, reason="numba is not installed")


@pytest.mark.parametrize("n", [1, 2, 7, 60, 2500])
def test_the_sweep_counts_the_numpy_kernels_pairs(n: int) -> None:
    rng = np.random.default_rng(n)
    time = np.round(rng.exponential(5, n), 1)  # tied times, events and censorings at one time
    event = (rng.random(n) < 0.4).astype(float)
    score = np.round(rng.normal(size=(4, n)), 1)  # tied scores
    counts = rng.multinomial(n, np.full(n, 1 / n), size=4).astype(np.uint8)
    key = C._time_key(time, event)
    want = np.concatenate([C._concordance_kernel(key, score[b:b + 1], counts[b:b + 1].astype(float))[0]
                           for b in range(4)])
    order = np.argsort(score, axis=1)
    np.testing.assert_array_equal(concordance_bit.pair_totals(key, score, order, counts), want)
    np.testing.assert_array_equal(concordance_bit.pair_totals(key, score, order, counts.astype(float)), want)


def test_concordance_batch_is_the_same_on_either_path(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(3)
    n = 400
    time, event = np.round(rng.exponential(5, n), 1), (rng.random(n) < 0.3).astype(float)
    lp = rng.normal(size=n)
    counts = rng.multinomial(n, np.full(n, 1 / n), size=5)
    scores = np.round(rng.normal(size=(5, n)), 2)
    monkeypatch.setattr(compiled, "ENABLED", False)
    numpy_path = [C.concordance_batch(time, event, scores, counts),
                  C.concordance_batch(time, event, np.broadcast_to(lp, counts.shape), counts)]
    monkeypatch.setattr(compiled, "ENABLED", True)
    sweep = [C.concordance_batch(time, event, scores, counts),
             C.concordance_batch(time, event, np.broadcast_to(lp, counts.shape), counts),
             C.concordance_batch(time, event, scores, counts, order=np.argsort(scores, axis=1))]
    np.testing.assert_array_equal(sweep[0], numpy_path[0])
    np.testing.assert_array_equal(sweep[1], numpy_path[1])
    np.testing.assert_array_equal(sweep[2], numpy_path[0])
