"""The bootstrap's data kept in each worker process between its tasks (joblib's loky workers, or
the workers of a Dask cluster through joblib's Dask backend).

Why: the fitter and the indices keep what they derive from the data (the rows sorted by time, the
sorted and centred designs, the honest screen's warm starts and collapsed designs) in caches keyed
by the *identity* of the arrays, so that the replicates fitted one chunk after another share it.
A task sent to a worker arrives as a fresh copy of its arguments, so without this every task of a
few replicates missed those caches: at n = 10^6 the honest screen's starts and collapsed rows alone
(about 7 s) were redone for every two replicates.  :class:`Resident` gives the copies of one object
a token: the first copy a process unpickles is kept, every later one with the same token is
replaced by it, so the caches hit from the second task of a process on.  Those caches take only
read-only arrays (an array that may change cannot be known by its identity): the arrays the
caller made read-only are read-only again in the kept copy (pickling drops the flag), plain arrays
(joblib hands large arrays to its workers as memory maps) with numpy's own dtype object (an
unpickled array has an equal copy of it): else ``np.asarray(x, dtype=float)`` in the fitter
returns a new view of x on every call, and the caches miss all the same.

On Dask (joblib's Dask backend), :func:`everywhere` broadcasts it to every worker once per call:
by itself the backend scatters a large argument to one worker only, and the scheduler then keeps
the tasks beside that copy (moving 10^8 bytes looks dearer than waiting), one worker at a time.
``sys.getsizeof`` of a :class:`Resident` is the size of what it holds, so that even without
:func:`everywhere` it is scattered once, not sent with every task (a dataclass of arrays looked
small to the backend).
"""

from __future__ import annotations

import uuid
from collections import OrderedDict
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import numpy as np

__all__ = ["Resident", "KEEP", "everywhere", "tasks", "map_replicates"]

#: objects a process keeps by token (the latest used): a bootstrap uses one; the previous call's is
#: let go when the next but one arrives
KEEP = 2
_KEPT: OrderedDict[str, Any] = OrderedDict()


def _nbytes(value: Any) -> int:
    """The bytes of the arrays ``value`` holds (its attributes, one level deep)."""
    fields = getattr(value, "__dict__", None) or {}
    return int(sum(a.nbytes for a in fields.values() if isinstance(a, np.ndarray)))


class Resident:
    """``value`` with a token that stays the same in every copy pickled from it (see module)."""

    __slots__ = ("value", "token", "nbytes", "frozen", "__weakref__")

    def __init__(self, value: Any, token: str | None = None, nbytes: int | None = None) -> None:
        self.value = value
        self.token = uuid.uuid4().hex if token is None else token
        self.nbytes = _nbytes(value) if nbytes is None else nbytes
        #: the names of the read-only arrays among ``value``'s attributes
        self.frozen = tuple(k for k, a in (getattr(value, "__dict__", None) or {}).items()
                            if isinstance(a, np.ndarray) and not a.flags.writeable)

    def __reduce__(self) -> tuple:
        return _restore, (self.token, self.value, self.nbytes, self.frozen)

    def __sizeof__(self) -> int:
        return self.nbytes


def _restore(token: str, value: Any, nbytes: int, frozen: tuple[str, ...] = ()) -> Resident:
    """Unpickling in a process: the value this process first received with ``token``."""
    kept = _KEPT.get(token)
    if kept is None:
        for name in frozen:  # this process's own copy: its arrays read-only and plain, as the caller's
            a = np.asarray(getattr(value, name))
            a = a.view(np.dtype(a.dtype.str))
            a.flags.writeable = False
            object.__setattr__(value, name, a)  # also through a frozen dataclass (a fresh copy, ours alone)
        kept = _KEPT[token] = value
        while len(_KEPT) > KEEP:
            _KEPT.popitem(last=False)
    else:
        _KEPT.move_to_end(token)
    return Resident(kept, token, nbytes)


def everywhere(resident: Resident) -> AbstractContextManager:
    """Under joblib's Dask backend, the same backend with ``resident`` broadcast to every worker
    (joblib then passes it by reference); otherwise nothing to do."""
    from joblib import parallel_config
    from joblib.parallel import get_active_backend

    if type(get_active_backend()[0]).__name__ != "DaskDistributedBackend":
        return nullcontext()
    return parallel_config(backend="dask", scatter=[resident])


#: tasks per worker in a bootstrap: the chunks of replicates go to the workers in this many
#: tasks each (one task = one transfer of its arguments; more tasks = finer progress and load
#: balance)
TASKS_PER_WORKER = 4


def tasks(n_chunks: int, n_jobs: int) -> list[range]:
    """The chunks, numbered 0 .. n_chunks - 1, in consecutive groups, one group per task."""
    from joblib import effective_n_jobs

    k = min(n_chunks, TASKS_PER_WORKER * max(1, effective_n_jobs(n_jobs)))
    bounds = np.linspace(0, n_chunks, k + 1).round().astype(int)
    return [range(a, b) for a, b in zip(bounds[:-1], bounds[1:]) if b > a]


def _map_task(fn: Callable[[Any, np.ndarray], tuple[np.ndarray, ...]], data: Resident,
              counts: np.ndarray) -> tuple[np.ndarray, ...]:
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):  # thin matrices: a threaded BLAS only spins
        return fn(data.value, counts)


def map_replicates(fn: Callable[[Any, np.ndarray], tuple[np.ndarray, ...]], data: Any, counts: np.ndarray, *,
                   n_jobs: int = 1) -> tuple[np.ndarray, ...]:
    """``fn(data, counts)`` for the (B, n) case counts of B resamples that are not refitted (the
    paired bootstraps of fixed predictions), run in consecutive groups of replicates on the
    joblib workers when ``n_jobs`` is not 1, with ``data`` kept in each worker.  ``fn`` returns
    arrays of one row per replicate, computed replicate by replicate, so the rows, concatenated
    in order, do not depend on ``n_jobs``."""
    if n_jobs == 1 or len(counts) < 2:
        return fn(data, counts)
    from joblib import Parallel, delayed

    resident = Resident(data)
    with everywhere(resident):
        parts = Parallel(n_jobs=n_jobs)(delayed(_map_task)(fn, resident, counts[t.start:t.stop])
                                        for t in tasks(len(counts), n_jobs))
    return tuple(np.concatenate(a) for a in zip(*parts))
