"""Each figure of a report drawn once per results key and language, by whichever process asks first.

``cementleak report`` shows the same figures in several places: the report's documents (each
executed in a kernel of its own) and the results folder's figure files (drawn by the figure
workers of :mod:`.export`).  All of them ask :meth:`SharedFigures.get` for figure ``name`` in
language ``lang``: under a lock per figure (``filelock``, across processes), the first one
draws it (:func:`~.figures.save.drawing`: the results folder's PNG, in English with the PDF it
is rasterized from, so the files and the document's picture are the same bytes) and stores it;
the others wait for that lock, then read the stored drawing.

Entries are signed (:class:`~.cache.SignedFiles`, kind ``figures``) in a folder per results key
beside that key's results entry: ``.cementleak-cache/figures/<key>/<lang>-<name>.png``.  The key
names everything the results depend on (data, study file, code, library versions), so a changed
input is a new folder and never reuses a figure; the folders of results no longer stored go.
An entry that is not this user's signed one (made elsewhere, altered) is drawn again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the drawing stack is the workers' and the kernels': the process that hands this out does not import it
    from .figures.save import Drawn

#: the signed entries' kind (:class:`~.cache.SignedFiles`)
_KIND = "figures"
#: what :func:`_read` returns for no usable entry (None is a stored "nothing to draw")
_ABSENT = object()


def _read(path: Path) -> Drawn | object:
    """The stored :class:`~.figures.save.Drawing`, None (the results have nothing to draw), or
    :data:`_ABSENT` (no entry, or one not to be used)."""
    from .cache import SignedFiles
    from .figures.save import Drawing

    try:
        head, _, body = SignedFiles(_KIND).read(path).partition(b"\n")
        if head == b"none":
            return None
        width, size = head.split(b" ")  # the width in inches, the PDF's size (0: no PDF), then PDF and PNG
        n = int(size)
        return Drawing(body[n:], float(width), body[:n] if n else None)
    except (OSError, ValueError):
        return _ABSENT


def _write(path: Path, drawn: Drawn) -> None:
    from .cache import SignedFiles

    try:
        if drawn is None:
            body = b"none\n"
        else:
            pdf = drawn.pdf or b""
            body = f"{drawn.width!r} {len(pdf)}\n".encode() + pdf + drawn.png
        SignedFiles(_KIND).write(path, body)
    except OSError:
        pass  # not shared: whoever asks next draws it again


@dataclass(frozen=True)
class SharedFigures:
    """The drawn figures of one results key (module docstring); picklable, for the figure workers."""

    folder: Path

    def entry(self, lang: str, name: str) -> Path:
        return self.folder / f"{lang}-{name}.png"

    def get(self, lang: str, name: str, draw: Callable[[], Drawn]) -> Drawn:
        """Figure ``name`` in ``lang``: the stored drawing, or ``draw()`` stored for the others."""
        from filelock import FileLock

        path = self.entry(lang, name)
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            lock = FileLock(str(self.folder / f".{lang}-{name}.lock"))
            lock.acquire()
        except OSError:  # nowhere to share it: drawn here
            return draw()
        try:
            stored = _read(path)
            if stored is not _ABSENT:
                return stored  # type: ignore[return-value]
            drawn = draw()
            _write(path, drawn)
            return drawn
        finally:
            lock.release()

    def in_language(self, lang: str) -> Callable[[str, Callable[[], Drawn]], Drawn]:
        """``get`` in ``lang``: the ``png`` of :func:`~.figures.save.save_figures`."""
        from functools import partial

        return partial(self.get, lang)


def shared_figures(spec_dir: Path, key: str) -> SharedFigures:
    """The drawn figures of the results stored under ``key`` (beside that entry); the folders of
    results no longer stored go."""
    from .cache import cache_path

    entry = cache_path(spec_dir, key)
    folder = entry.parent / "figures" / key
    if not folder.is_dir() and folder.parent.is_dir():
        import shutil

        for old in folder.parent.iterdir():
            if not cache_path(spec_dir, old.name).exists():
                shutil.rmtree(old, ignore_errors=True)
    return SharedFigures(folder)
