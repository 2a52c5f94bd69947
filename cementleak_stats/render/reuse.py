"""Reuse of the previous render's output files (the second half of the render cache).

The execution cache (:mod:`.execute`) spares the kernels of unchanged documents; pandoc and
Typst would still write every format again, which is most of a re-render.  So, with the same
:class:`~.execute.ExecutionCache`, each written file is remembered in a signed entry: the key
of everything its writer read (:func:`output_key`) and the SHA-256 of the file.  The next
render whose writer inputs have the same key takes the file of the previous output directory
instead of writing it, when that file is still the one remembered (its SHA-256): a file
replaced meanwhile (by real Quarto, by hand) is written again.

What a writer reads, and the key hashes: the assembled markdown and metadata and the figure
files (with the render's scratch directory written as a placeholder, since its name changes
every render), the format and its options, every file of the document's folder (style sheets,
Typst headers, reference documents, bibliographies, images), the renderer's own source and
templates, the versions of pandoc, Typst and reveal.js, and ``SOURCE_DATE_EPOCH``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from .execute import ExecutionCache

#: the distributions whose programs write the outputs
_WRITER_PACKAGES = ("pypandoc-binary", "typst", "sphinx-revealjs")
_FORMAT = 1


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()  # outputs and resources: a few MB at most


def _tree(folder: Path, skip: frozenset[Path] = frozenset()) -> str:
    """SHA-256 over the relative names and bytes of every file under ``folder`` (hidden
    entries and ``skip`` left out)."""
    h = hashlib.sha256()
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and Path(dirpath, d).resolve() not in skip)
        for name in sorted(n for n in filenames if not n.startswith(".")):
            path = Path(dirpath, name)
            h.update(path.relative_to(folder).as_posix().encode() + b"\x00" + _sha256(path).encode())
    return h.hexdigest()


@cache
def _writers() -> str:
    """The renderer's source and templates, and the writer programs' versions."""
    versions = {}
    for name in _WRITER_PACKAGES:
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            versions[name] = "not installed"
    return json.dumps({"code": _tree(Path(__file__).parent), "versions": versions}, sort_keys=True)


def output_key(fmt: str, options: Any, build_dir: Path, resources: str) -> str:
    """The key of one output: the writer's inputs (module docstring).  ``build_dir`` holds the
    assembled document; ``resources`` is :func:`folder_digest` of the document's folder."""
    h = hashlib.sha256()
    head = {"format": _FORMAT, "to": fmt, "options": options, "writers": _writers(), "resources": resources,
            "epoch": os.environ.get("SOURCE_DATE_EPOCH")}
    h.update(json.dumps(head, sort_keys=True, default=str).encode())
    placeholder = str(build_dir).encode()
    for path in sorted(p for p in build_dir.rglob("*") if p.is_file()):
        h.update(b"\x00" + path.relative_to(build_dir).as_posix().encode() + b"\x00")
        h.update(path.read_bytes().replace(placeholder, b"<build>"))
    return h.hexdigest()[:32]


def folder_digest(folder: Path, skip: frozenset[Path] = frozenset()) -> str:
    """What the writers may read from a document's folder (every file but ``skip``)."""
    return _tree(folder, skip)


def _entry(cache: ExecutionCache, document: str, fmt: str) -> Path:
    return Path(cache.directory) / "outputs" / f"{hashlib.sha256(document.encode()).hexdigest()[:12]}-{fmt}.json"


def reuse(cache: ExecutionCache, document: str, fmt: str, key: str, previous: Path, dest: Path) -> list[str] | None:
    """Link ``previous`` (the file of the last render) to ``dest`` when the remembered entry has
    ``key`` and ``previous`` is still the file it remembers; return that render's warnings, or
    None (write the output)."""
    try:
        data = json.loads(cache.read(_entry(cache, document, fmt)))
        if data["key"] != key or not previous.is_file() or _sha256(previous) != data["sha256"]:
            return None
        warnings = [str(w) for w in data["warnings"]]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(previous, dest)
    except OSError:
        shutil.copy2(previous, dest)
    return warnings


def remember(cache: ExecutionCache, document: str, fmt: str, key: str, written: Path, warnings: list[str]) -> None:
    """Remember the file just written for ``key`` (its SHA-256 and the writer's warnings)."""
    body = {"key": key, "sha256": _sha256(written), "warnings": list(warnings)}
    cache.write(_entry(cache, document, fmt), json.dumps(body).encode("utf-8"))
