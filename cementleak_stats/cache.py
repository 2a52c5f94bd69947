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

Why a small serializer of our own (:func:`encode` / :func:`decode`) and not a library: pickle,
joblib and cloudpickle run code on load; jsonpickle re-creates any class an entry names; Parquet
and Arrow hold tables, not the nested frozen dataclasses of the results (and no mixed-type object
columns); msgpack, safetensors and ``.npz`` hold plain values or arrays only.  This one writes
JSON and re-creates only the dataclasses reachable from the declared type of the cached object
(an allow-list computed from its type hints), pandas frames, series and indexes column by column
(dtype kept: numeric as ``.npy``, categorical as codes + categories, text as JSON), NumPy arrays
and scalars, paths, tuples and dicts.  Anything else cannot be stored (the entry is then not
written, with a notice) and an entry naming anything else is refused.

Entries are written atomically (temporary file + ``os.replace``), so an interrupted run never
leaves a half-written entry behind.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import io
import json
import math
import os
import secrets
import tempfile
import typing
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .atomic import write_atomic

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


# --- the allow-listed serializer -------------------------------------------------------------
def allowed_dataclasses(root: type) -> dict[str, type]:
    """Every dataclass reachable from ``root`` through field type hints, by qualified name."""
    out: dict[str, type] = {}

    def visit(tp: Any) -> None:
        if isinstance(tp, type) and dataclasses.is_dataclass(tp):
            key = f"{tp.__module__}.{tp.__qualname__}"
            if key in out:
                return
            out[key] = tp
            for hint in typing.get_type_hints(tp).values():
                visit(hint)
        for arg in typing.get_args(tp):
            visit(arg)

    visit(root)
    return out


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _npy(a: np.ndarray) -> dict:
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(a), allow_pickle=False)
    return {"t": "nd", "v": _b64(buf.getvalue())}


def _from_npy(d: Mapping) -> np.ndarray:
    return np.load(io.BytesIO(base64.b64decode(d["v"], validate=True)), allow_pickle=False)


class _Codec:
    """One encode or decode pass: the allow-list and the shared references (by name)."""

    def __init__(self, allowed: Mapping[str, type], refs: Mapping[str, Any]) -> None:
        self.allowed = allowed
        self.refs = refs
        self.ref_ids = {id(v): k for k, v in refs.items()}

    # values ---------------------------------------------------------------------------------
    def enc(self, x: Any) -> Any:
        if id(x) in self.ref_ids:
            return {"t": "ref", "v": self.ref_ids[id(x)]}
        if x is None or type(x) in (bool, str, int):
            return x
        if type(x) is float:
            return x if math.isfinite(x) else {"t": "float", "v": repr(x)}
        if isinstance(x, np.generic):
            if not isinstance(x, (np.number, np.bool_, np.str_)):
                raise TypeError(f"cannot cache a NumPy {x.dtype} scalar")
            return {"t": "np", "dtype": x.dtype.str, "v": self.enc(x.item())}
        if x is pd.NA:
            return {"t": "NA"}
        if x is pd.NaT:
            return {"t": "NaT"}
        if type(x) is list:
            return [self.enc(v) for v in x]
        if type(x) is tuple:
            return {"t": "tuple", "v": [self.enc(v) for v in x]}
        if type(x) is dict:
            return {"t": "dict", "v": [[self.enc(k), self.enc(v)] for k, v in x.items()]}
        if isinstance(x, Path):
            return {"t": "path", "v": str(x)}
        if isinstance(x, pd.DataFrame):
            return {"t": "df", "columns": self.enc_index(x.columns), "index": self.enc_index(x.index),
                    "data": [self.enc_array(x.iloc[:, i].array) for i in range(x.shape[1])], "attrs": self.enc(dict(x.attrs))}
        if isinstance(x, pd.Series):
            return {"t": "series", "v": self.enc_array(x.array), "index": self.enc_index(x.index), "name": self.enc(x.name)}
        if isinstance(x, pd.Index):
            return self.enc_index(x)
        if isinstance(x, np.ndarray):
            if x.dtype == object:
                return {"t": "ndobj", "shape": list(x.shape), "v": [self.enc(v) for v in x.ravel().tolist()]}
            return _npy(x)
        cls = type(x)
        key = f"{cls.__module__}.{cls.__qualname__}"
        if dataclasses.is_dataclass(x) and self.allowed.get(key) is cls:
            return {"t": "dc", "cls": key, "f": {f.name: self.enc(getattr(x, f.name)) for f in dataclasses.fields(x)}}
        raise TypeError(f"cannot cache a {key}")

    def dec(self, d: Any) -> Any:
        if d is None or type(d) in (bool, str, int, float):
            return d
        if type(d) is list:
            return [self.dec(v) for v in d]
        if type(d) is not dict:
            raise ValueError(f"unexpected {type(d).__name__} in a cache entry")
        t = d["t"]
        if t == "ref":
            return self.refs[d["v"]]
        if t == "float":
            if d["v"] not in ("nan", "inf", "-inf"):
                raise ValueError("bad float")
            return float(d["v"])
        if t == "np":
            return np.dtype(d["dtype"]).type(self.dec(d["v"]))
        if t == "NA":
            return pd.NA
        if t == "NaT":
            return pd.NaT
        if t == "tuple":
            return tuple(self.dec(v) for v in d["v"])
        if t == "dict":
            return {self.dec(k): self.dec(v) for k, v in d["v"]}
        if t == "path":
            return Path(d["v"])
        if t == "df":
            index = self.dec_index(d["index"])
            cols = [self.dec_array(c) for c in d["data"]]
            # from the arrays themselves: a Series per column costs a millisecond each (its name setter)
            frame = pd.DataFrame(dict(enumerate(cols)), index=index, copy=False)
            frame.columns = self.dec_index(d["columns"])
            frame.attrs = self.dec(d["attrs"])
            return frame
        if t == "series":
            return pd.Series(self.dec_array(d["v"]), index=self.dec_index(d["index"]), name=self.dec(d["name"]), copy=False)
        if t in ("range", "index", "multi"):
            return self.dec_index(d)
        if t == "nd":
            return _from_npy(d)
        if t == "ndobj":
            out = np.empty(len(d["v"]), dtype=object)
            out[:] = [self.dec(v) for v in d["v"]]
            return out.reshape(d["shape"])
        if t == "dc":
            cls = self.allowed[d["cls"]]  # KeyError: not on the allow-list
            fields = {f.name for f in dataclasses.fields(cls)}
            if set(d["f"]) != fields:
                raise ValueError(f"{d['cls']}: fields differ from the current code")
            obj = object.__new__(cls)  # no __init__/__post_init__: the stored state as is
            for name, value in d["f"].items():
                object.__setattr__(obj, name, self.dec(value))
            return obj
        raise ValueError(f"unknown tag {t!r} in a cache entry")

    # pandas columns and indexes -------------------------------------------------------------
    def enc_array(self, a: Any) -> dict:
        dtype = a.dtype
        if isinstance(dtype, pd.CategoricalDtype):
            return {"t": "cat", "codes": _npy(np.asarray(a.codes)), "cats": self.enc_index(dtype.categories),
                    "ordered": bool(dtype.ordered)}
        if isinstance(dtype, pd.StringDtype):
            return {"t": "str", "storage": dtype.storage, "nan": dtype.na_value is not pd.NA,
                    "v": [None if v is pd.NA or v is None or (isinstance(v, float) and math.isnan(v)) else str(v) for v in a]}
        if isinstance(dtype, np.dtype):
            if dtype == object:
                return {"t": "obj", "v": [self.enc(v) for v in np.asarray(a, dtype=object).tolist()]}
            return _npy(np.asarray(a))
        return {"t": "ext", "dtype": str(dtype), "v": [self.enc(v) for v in a]}  # Int64, boolean, Float64, ...

    def dec_array(self, d: Mapping) -> Any:
        t = d["t"]
        if t == "nd":
            return _from_npy(d)
        if t == "cat":
            return pd.Categorical.from_codes(_from_npy(d["codes"]), categories=self.dec_index(d["cats"]), ordered=d["ordered"])
        if t == "str":
            dtype = pd.StringDtype(storage=d["storage"], na_value=np.nan if d["nan"] else pd.NA)
            return pd.array([pd.NA if v is None else v for v in d["v"]], dtype=dtype)
        if t == "obj":
            out = np.empty(len(d["v"]), dtype=object)
            out[:] = [self.dec(v) for v in d["v"]]
            return out
        if t == "ext":
            return pd.array([self.dec(v) for v in d["v"]], dtype=pd.api.types.pandas_dtype(d["dtype"]))
        raise ValueError(f"unknown column tag {t!r}")

    def enc_index(self, idx: pd.Index) -> dict:
        if isinstance(idx, pd.RangeIndex):
            return {"t": "range", "v": [idx.start, idx.stop, idx.step], "name": self.enc(idx.name)}
        if isinstance(idx, pd.MultiIndex):
            return {"t": "multi", "v": [self.enc_index(idx.get_level_values(i)) for i in range(idx.nlevels)],
                    "names": [self.enc(n) for n in idx.names]}
        return {"t": "index", "v": self.enc_array(idx.array), "name": self.enc(idx.name)}

    def dec_index(self, d: Mapping) -> pd.Index:
        if d["t"] == "range":
            start, stop, step = (int(v) for v in d["v"])
            return pd.RangeIndex(start, stop, step, name=self.dec(d["name"]))
        if d["t"] == "multi":
            return pd.MultiIndex.from_arrays([self.dec_index(v) for v in d["v"]], names=[self.dec(n) for n in d["names"]])
        if d["t"] == "index":
            values = self.dec_array(d["v"])
            return pd.Index(values, name=self.dec(d["name"]), dtype=getattr(values, "dtype", None), copy=False)
        raise ValueError(f"unknown index tag {d['t']!r}")


def encode(obj: Any, *, allowed: Mapping[str, type], refs: Mapping[str, Any] | None = None) -> Any:
    """``obj`` as JSON-ready data (see the module docstring).  Objects in ``refs`` (by identity)
    are written as their name only.  Raises TypeError for anything not on the allow-list."""
    return _Codec(allowed, refs or {}).enc(obj)


def decode(data: Any, *, allowed: Mapping[str, type], refs: Mapping[str, Any] | None = None) -> Any:
    """The object :func:`encode` wrote; ``refs`` supplies the named references."""
    return _Codec(allowed, refs or {}).dec(data)


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
