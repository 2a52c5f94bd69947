"""The output lock both engines and the analysis take before writing an output directory.

Its own small module (filelock only) so that ``cementleak analyze`` can take the lock without
importing the renderer's Jupyter, pandoc and Typst stack.
"""

from __future__ import annotations

from pathlib import Path

from filelock import FileLock, Timeout

from .problems import RenderError, SubsetProblem


def lock_path(output_dir: Path) -> Path:
    """The lock file guarding ``output_dir`` (``<parent>/.render.lock``)."""
    return output_dir.parent / ".render.lock"


def acquire_output_lock(out: Path) -> FileLock:
    """Take the render lock of the output directory ``out`` without waiting (both engines).

    Raises
    ------
    RenderError
        when another render holds it, saying to wait.
    """
    out.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(lock_path(out)), timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise RenderError([SubsetProblem(str(out), None, f"another render is writing this output directory (lock {lock_path(out).name} is held)", "wait for it to finish, then run again")]) from None
    return lock
