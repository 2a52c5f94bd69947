"""The package's one atomic file writer: a failed or interrupted write leaves the previous file intact.

The bytes go to a temporary sibling of the target (same folder, hence same file system), which
:func:`os.replace` then puts in place in one step; on any error the temporary file is removed
and the target is untouched.  The standard library has the two pieces (:func:`tempfile.mkstemp`,
:func:`os.replace`) but not the combination, and the well-kept packages that offer it
(``atomicwrites`` is archived) would be a dependency for ten lines.

Folders (a whole report, an export) are swapped the same way by their writers; this module
writes single files.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any


@contextmanager
def atomic_open(path: str | Path, mode: str = "w", *, permissions: int | None = None,
                encoding: str | None = "utf-8", newline: str | None = "") -> Iterator[IO[Any]]:
    """Open a temporary sibling of ``path`` for writing; on a clean exit it replaces ``path``.

    Parameters
    ----------
    path
        The file to write (its folder is created if missing).
    mode
        ``"w"`` (text: ``encoding``, and ``newline=""`` so that what is written is what lands)
        or ``"wb"`` (bytes).
    permissions
        Mode bits of the new file, e.g. ``0o644`` for data meant to be shared; ``None`` keeps
        :func:`tempfile.mkstemp`'s private ``0o600`` (caches, outputs of one user).
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_open writes a new file: mode 'w' or 'wb', not {mode!r}")
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        text = dict(encoding=encoding, newline=newline) if mode == "w" else {}
        with os.fdopen(fd, mode, **text) as fh:
            yield fh
        if permissions is not None:
            os.chmod(tmp, permissions)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_atomic(path: str | Path, data: str | bytes, *, permissions: int | None = None) -> Path:
    """Write ``data`` (text as UTF-8, or bytes) to ``path`` atomically; return the path."""
    with atomic_open(path, "wb" if isinstance(data, bytes) else "w", permissions=permissions) as fh:
        fh.write(data)
    return Path(path)
