"""On-disk caches that cannot run code and are trusted only when this user's machine wrote them.

Two caches live in a study folder's ``.cementleak-cache/``: the analysis results
(:func:`store_results` / :func:`load_results`, used by ``run_study`` and, by key, by the
documents) and the render execution cache (``render/``: :class:`SignedFiles` handed by
``cementleak report`` to the renderer, :mod:`cementleak_stats.render.execute`, which knows
nothing of this module).  Study folders travel: an auditor
receives one from someone else.  So an entry must not be able to run code when it is read, and
must not be able to show numbers the data do not give:

* **No code.**  An entry is JSON; numeric arrays are ``.npy`` bytes read with
  ``numpy.load(allow_pickle=False)``.  Nothing here unpickles; a ``*.pkl`` file of an older
  version is never opened (a notice says so).
* **Only this user's entries.**  Every entry carries an HMAC-SHA256 of its bytes, keyed by a
  per-user secret created on first use *outside* the study folder
  (``$XDG_CACHE_HOME/cementleak/cache-key``, else ``~/.cache/cementleak/cache-key``, mode 0600;
  :data:`SECRET_ENV` names another file, for tests).  An entry made on another machine or
  account, or edited by hand, fails the check: it is ignored and recomputed, with a one-line
  notice.
* **Only for its inputs.**  A results entry keeps the inputs of its key (study file and data
  hashes, code digest, package versions) and is used only when they equal the current ones.

The serializer (JSON and ``.npy``, only allow-listed dataclasses) is :mod:`cementleak_stats.codec`.

Entries are written atomically (temporary file + ``os.replace``), so an interrupted run never
leaves a half-written entry behind.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import os
import secrets
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from .atomic import write_atomic
from .codec import allowed_dataclasses, decode, encode

CACHE_DIR_NAME = ".cementleak-cache"
#: environment variable naming the per-user secret file (default: see :func:`secret_path`)
SECRET_ENV = "CEMENTLEAK_CACHE_KEY_FILE"
#: bumped when the entry format changes (older entries are then ignored)
FORMAT = 1
_MAGIC = b"CEMENTLEAK-CACHE"
#: results entries kept per cache folder (the newest; older ones are removed when one is stored)
KEEP_ENTRIES = 8

Notify = Callable[[str], None]


class UntrustedEntry(Exception):
    """A cache entry that is not used; the message says why (one line)."""


class CacheUnavailable(Exception):
    """The per-user secret cannot be created or read safely: nothing is cached."""


# --- the per-user secret ---------------------------------------------------------------------
def secret_path() -> Path:
    """Where the per-user HMAC secret lives: ``$CEMENTLEAK_CACHE_KEY_FILE``, else
    ``$XDG_CACHE_HOME/cementleak/cache-key``, else ``~/.cache/cementleak/cache-key``."""
    if os.environ.get(SECRET_ENV):
        return Path(os.environ[SECRET_ENV]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "cementleak" / "cache-key"


def _read_secret(path: Path) -> bytes:
    st = path.stat()
    if os.name == "posix":
        if st.st_uid != os.getuid():
            raise CacheUnavailable(f"{path} belongs to another user; remove it (a new one is created)")
        if st.st_mode & 0o077:
            raise CacheUnavailable(f"{path} can be read or written by other users; run: chmod 600 {path}")
    text = path.read_text(encoding="ascii").strip()
    if len(text) != 64 or any(c not in "0123456789abcdef" for c in text):
        raise CacheUnavailable(f"{path} is not a cementleak cache key; remove it (a new one is created)")
    return bytes.fromhex(text)


def user_secret() -> bytes:
    """The per-user secret (32 random bytes), created with mode 0600 on first use.

    Raises
    ------
    CacheUnavailable
        when it cannot be created, belongs to another user or is readable by others.
    """
    path = secret_path()
    try:
        return _read_secret(path)
    except FileNotFoundError:
        pass
    except (OSError, UnicodeDecodeError) as exc:
        raise CacheUnavailable(f"cannot read {path}: {exc}") from None
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".cache-key-")  # mode 0600
        with os.fdopen(fd, "w", encoding="ascii") as fh:
            fh.write(secrets.token_hex(32) + "\n")
        try:
            os.link(tmp, path)  # atomic and exclusive: a concurrent first run keeps the other's key
        except FileExistsError:
            pass
        finally:
            os.unlink(tmp)
        return _read_secret(path)
    except (OSError, UnicodeDecodeError) as exc:
        raise CacheUnavailable(f"cannot create the cache key {path}: {exc}") from None


# --- signed files ----------------------------------------------------------------------------
def _mac(secret: bytes, kind: str, name: str, body: bytes) -> str:
    msg = b"\x00".join([_MAGIC, str(FORMAT).encode(), kind.encode(), name.encode(), body])
    return hmac.new(secret, msg, hashlib.sha256).hexdigest()


def write_signed(path: Path, body: bytes, *, kind: str) -> None:
    """Write ``body`` to ``path`` with an HMAC header (atomically).  ``kind`` names the cache
    (an entry of one cache is never valid in another) and the file name is signed too."""
    mac = _mac(user_secret(), kind, path.name, body)
    write_atomic(path, _MAGIC + f" {FORMAT} {mac}\n".encode() + body)


def read_signed(path: Path, *, kind: str) -> bytes:
    """The body of a signed entry.

    Raises
    ------
    FileNotFoundError
        when there is no entry.
    UntrustedEntry
        when the entry is not one this user's machine wrote for this cache (wrong format,
        no or wrong HMAC: made elsewhere or altered).
    CacheUnavailable
        when the per-user secret cannot be read.
    """
    raw = path.read_bytes()
    head, sep, body = raw.partition(b"\n")
    parts = head.split(b" ")
    if not sep or len(parts) != 3 or parts[0] != _MAGIC:
        raise UntrustedEntry(f"{path.name} is not a cementleak cache entry")
    if parts[1] != str(FORMAT).encode():
        raise UntrustedEntry(f"{path.name} was written by another cache format")
    if not hmac.compare_digest(parts[2], _mac(user_secret(), kind, path.name, body).encode()):
        raise UntrustedEntry(f"{path.name} is not signed with this user's cache key (made on another machine or "
                             "account, or altered)")
    return body


@dataclasses.dataclass(frozen=True)
class SignedFiles:
    """Signed entries of one cache ``kind``, for a caller that knows nothing of this module
    (the renderer's execution cache): ``read`` raises FileNotFoundError (no entry) or
    ValueError (an entry not to be used, saying why); ``write`` stores, or quietly does not
    when there is no per-user key."""

    kind: str

    def read(self, path: Path) -> bytes:
        try:
            return read_signed(path, kind=self.kind)
        except (UntrustedEntry, CacheUnavailable) as exc:
            raise ValueError(str(exc)) from None

    def write(self, path: Path, body: bytes) -> None:
        try:
            write_signed(path, body, kind=self.kind)
        except CacheUnavailable:
            pass  # no per-user key: nothing is cached (the results cache says why)


# --- the results cache -----------------------------------------------------------------------
_RESULTS_KIND = "results"


def cache_path(base_dir: Path, key: str) -> Path:
    return Path(base_dir) / CACHE_DIR_NAME / f"results-{key}.json"


def _display(path: Path) -> str:
    return f"{CACHE_DIR_NAME}/{path.name}" if path.parent.name == CACHE_DIR_NAME else str(path)


def legacy_pickles(path: Path) -> list[Path]:
    """Pickle files of older versions in the cache folder of ``path`` (never opened)."""
    return sorted(path.parent.glob("*.pkl")) if path.parent.is_dir() else []


def _mtime(p: Path) -> float:
    try:
        return p.stat().st_mtime
    except OSError:  # removed meanwhile by another run
        return 0.0


def store_results(path: Path, obj: Any, *, inputs: Mapping[str, Any], refs: Mapping[str, Any] | None = None,
                  notify: Notify | None = None) -> bool:
    """Store ``obj`` (its type's dataclasses allow-listed) with the ``inputs`` of its key, signed.

    Returns False, with a notice, when it cannot be stored (an unlisted type, no secret, an
    unwritable folder); the analysis goes on uncached.
    """
    try:
        body = {"format": FORMAT, "type": f"{type(obj).__module__}.{type(obj).__qualname__}", "inputs": dict(inputs),
                "value": encode(obj, allowed=allowed_dataclasses(type(obj)), refs=refs)}
        write_signed(path, json.dumps(body, separators=(",", ":"), allow_nan=False).encode("utf-8"), kind=_RESULTS_KIND)
    except (TypeError, ValueError, OSError, CacheUnavailable) as exc:
        if notify is not None:
            notify(f"cache: results not stored ({exc})")
        return False
    # keep the newest entries only (other study files of the folder, recent code versions)
    entries = sorted(path.parent.glob("results-*.json"), key=_mtime, reverse=True)
    for old in entries[KEEP_ENTRIES:]:
        try:
            old.unlink(missing_ok=True)
        except OSError:
            pass
    return True


def load_results(path: Path, cls: type, *, inputs: Mapping[str, Any] | None, refs: Mapping[str, Any] | None = None,
                 notify: Notify | None = None) -> Any | None:
    """The cached ``cls`` object, or None (absent, untrusted or for other inputs: recompute).

    ``inputs=None``: the caller named the entry by its key (a document given the results key
    of the run that stored it), so the entry's own inputs are not compared with anything.
    A present entry that is not used gets a one-line notice saying why.
    """
    def untrusted(reason: str) -> None:
        if notify is not None:
            notify(f"cache: ignored {_display(path)}: {reason}; recomputing")

    pickles = legacy_pickles(path)
    if pickles and notify is not None:
        notify(f"cache: {len(pickles)} pickle file(s) in {CACHE_DIR_NAME}/ never loaded (a pickle can run code); "
               "delete them")
    try:
        body = json.loads(read_signed(path, kind=_RESULTS_KIND))
    except FileNotFoundError:
        return None
    except UntrustedEntry as exc:
        untrusted(str(exc).removeprefix(f"{path.name} "))
        return None
    except CacheUnavailable as exc:
        untrusted(f"no cache key ({exc})")
        return None
    except (OSError, ValueError) as exc:
        untrusted(f"unreadable ({exc})")
        return None
    stored = body.get("inputs") if isinstance(body, dict) else None
    if inputs is not None and stored != json.loads(json.dumps(dict(inputs))):
        changed = sorted(k for k in set(stored or {}) | set(inputs) if (stored or {}).get(k) != inputs.get(k))
        untrusted(f"made for other inputs ({', '.join(changed)})")
        return None
    try:
        obj = decode(body["value"], allowed=allowed_dataclasses(cls), refs=refs)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        untrusted(f"not readable by this version ({type(exc).__name__}: {exc})")
        return None
    return obj if isinstance(obj, cls) else None


__all__ = [
    "CACHE_DIR_NAME", "SECRET_ENV", "CacheUnavailable", "SignedFiles", "UntrustedEntry", "allowed_dataclasses", "cache_path", "decode",
    "encode", "load_results", "read_signed", "secret_path", "store_results", "user_secret", "write_signed",
]
