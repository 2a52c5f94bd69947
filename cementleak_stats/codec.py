"""An allow-listed serializer for cached results: JSON and ``.npy`` bytes, never code.

:func:`encode` turns a result object into JSON-ready values and :func:`decode` re-creates it;
numeric arrays are ``.npy`` bytes read with ``numpy.load(allow_pickle=False)``, and only the
dataclasses in ``allowed`` (:func:`allowed_dataclasses` of the cached object's type) are
re-created.  Signing, keys and files are :mod:`cementleak_stats.cache`'s.

Why a small serializer of our own and not a library: pickle,
joblib and cloudpickle run code on load; jsonpickle re-creates any class an entry names; Parquet
and Arrow hold tables, not the nested frozen dataclasses of the results (and no mixed-type object
columns); msgpack, safetensors and ``.npz`` hold plain values or arrays only.  This one writes
JSON and re-creates only the dataclasses reachable from the declared type of the cached object
(an allow-list computed from its type hints), pandas frames, series and indexes column by column
(dtype kept: numeric as ``.npy``, categorical as codes + categories, text as JSON), NumPy arrays
and scalars, paths, tuples and dicts.  Anything else cannot be stored (the entry is then not
written, with a notice) and an entry naming anything else is refused.
"""

from __future__ import annotations

import base64
import dataclasses
import io
import math
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["allowed_dataclasses", "encode", "decode"]


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
