"""Figure workers started before the analysis, so that drawing starts at once when it ends.

An analysis leaves a core idle (its statistics run on one).  :class:`FigureWorkers` forks the
processes that will draw the figures at the start: on that idle core they import the drawing
stack (matplotlib, the modules named, the PDF backend with fontTools' subsetter) and load the
fonts while the statistics run, one worker after the other so that the statistics keep a core.
Forked before the results existed, the workers receive them pickled with each task
(:func:`~cementleak_stats.figures.save.save_figures` with ``executor``).

This module imports no plotting library: the process that starts the workers does not pay
for what only the workers use.
"""

from __future__ import annotations

import multiprocessing as mp
import os
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from typing import Any


def _usable_cpus() -> int:
    """As :func:`~cementleak_stats.figures.save.default_jobs` (which imports matplotlib)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


#: how often a worker checks that the process that forked it is still there (seconds)
_PARENT_EVERY = 0.5


def _end_with(parent: int) -> None:
    """End this worker when ``parent`` does.  A killed ``analyze`` or ``report`` would otherwise
    leave its workers waiting for tasks for ever (each holds both ends of the executor's queue, so
    it never reads an end of file), and holding the terminal's output open."""
    import threading
    import time

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(_PARENT_EVERY)
        os._exit(1)  # the parent is gone: nothing of this worker's is wanted any more

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _warm_up(lock: Any, modules: tuple[str, ...], parent: int) -> None:
    """Initializer of a figure worker: end with ``parent``, then warm up (one worker at a time)."""
    _end_with(parent)
    from ..figures.save import warm_up

    with lock:
        warm_up(modules)


class FigureWorkers:
    """Forked figure workers, warming up from the start; ``None`` :attr:`executor` where ``fork``
    is not available (:func:`~cementleak_stats.figures.save.save_figures` then forks its own).

    Use it as a context manager around the analysis and the writing of its results: the workers
    are ended on leaving it (:meth:`close`).
    """

    def __init__(self, jobs: int | None = None, *, modules: Sequence[str] = ()) -> None:
        from concurrent.futures import ProcessPoolExecutor

        self.jobs = _usable_cpus() if jobs is None else max(1, int(jobs))
        self.executor: Executor | None = None
        self._children: list[Any] = []
        if "fork" not in mp.get_all_start_methods():
            return
        ctx = mp.get_context("fork")
        before = set(mp.active_children())
        self.executor = ProcessPoolExecutor(max_workers=self.jobs, mp_context=ctx, initializer=_warm_up,
                                            initargs=(ctx.Lock(), tuple(modules), os.getpid()))
        self.executor.submit(int)  # the first task forks every worker now (start method fork)
        self._children = [p for p in mp.active_children() if p not in before]

    def run(self, func: Callable[..., Any], *args: Any) -> Any:
        """``func(*args)`` in a worker (here without workers): e.g. what a module the workers have
        imported, and this process has not, says."""
        return func(*args) if self.executor is None else self.executor.submit(func, *args).result()

    def close(self) -> None:
        """End the workers now, whatever they are doing: when the figures are written, or when none
        will be (an error, results already current), an exit does not wait for a warm-up."""
        if self.executor is None:
            return
        for child in self._children:
            child.terminate()
        import time

        deadline = time.monotonic() + 5
        for child in self._children:
            child.join(timeout=5)
            # join returns when the child's end of its sentinel pipe closes, which can come a moment
            # before the exiting process can be reaped: wait for that too
            while child.is_alive() and time.monotonic() < deadline:
                time.sleep(0.002)
        self.executor.shutdown(wait=False, cancel_futures=True)
        self.executor = None

    def __enter__(self) -> FigureWorkers:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
