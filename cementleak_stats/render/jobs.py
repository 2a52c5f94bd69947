"""How a render spends its workers: documents longest first, and the caller's work beside them.

Documents are independent (each runs in its own kernel), so ``jobs`` worker threads execute and
write them.  They are started longest first (most code cells and inline expressions: the
report's main documents before its short ones), so that no worker is left with a long document
while the other idles at the end; their results are still taken in document order and the
first error in that order is raised.  :class:`Alongside` runs work of the caller (the analysis's
results files) in one more thread during the render.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

P = TypeVar("P")
R = TypeVar("R")


def run_longest_first(items: Sequence[P], run: Callable[[P], R], *, work: Callable[[P], int], workers: int) -> list[R]:
    """``[run(x) for x in items]`` on ``workers`` threads, started in decreasing ``work(x)``;
    the results in the order of ``items``, the first exception in that order raised (the
    items not started are then cancelled and the running ones awaited)."""
    with ThreadPoolExecutor(max_workers=workers) as pool:
        order = sorted(range(len(items)), key=lambda i: work(items[i]), reverse=True)
        futures = {i: pool.submit(run, items[i]) for i in order}
        try:
            return [futures[i].result() for i in range(len(items))]
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise


class Alongside:
    """``work`` (or nothing, if None) run in a thread from now on; :meth:`join` waits for it and
    raises what it raised."""

    def __init__(self, work: Callable[[], None] | None) -> None:
        self._error: BaseException | None = None
        self._thread = None if work is None else threading.Thread(target=self._run, args=(work,), name="render-alongside")
        if self._thread is not None:
            self._thread.start()

    def _run(self, work: Callable[[], None]) -> None:
        try:
            work()
        except BaseException as exc:  # noqa: BLE001 - raised in the rendering thread by join()
            self._error = exc

    def join(self, *, raise_error: bool = True) -> None:
        if self._thread is not None:
            self._thread.join()
        if raise_error and self._error is not None:
            raise self._error
