"""On-disk cache of analysis results, keyed by the provenance hash (data + study file + code).

A second run with the same inputs loads the pickled :class:`~cementleak_stats.study.StudyResults`
instead of recomputing the bootstrap.  Only this package writes the cache directory; entries are
written atomically (temporary file + ``os.replace``), so an interrupted run never leaves a
half-written entry behind.
"""

from __future__ import annotations

import os
import pickle
import tempfile
from pathlib import Path
from typing import Any

CACHE_DIR_NAME = ".cementleak-cache"


def cache_path(base_dir: Path, key: str) -> Path:
    return Path(base_dir) / CACHE_DIR_NAME / f"results-{key}.pkl"


def load_cached(path: Path) -> Any | None:
    """The cached object, or None when absent or unreadable (then it is recomputed)."""
    try:
        with open(path, "rb") as fh:
            return pickle.load(fh)  # noqa: S301 - our own cache, written only by this package
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError, TypeError):
        return None


def store_cached(path: Path, obj: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".pkl")
    try:
        with os.fdopen(fd, "wb") as fh:
            pickle.dump(obj, fh, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
