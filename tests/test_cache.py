"""The analysis and render caches cannot run code and trust only this user's own entries (issue 11).

A study folder an auditor receives may hold a hostile ``.cementleak-cache/``: a pickle that runs
code when loaded, or an entry with numbers the data do not give.  Entries are JSON (arrays as
``.npy`` read without pickle), HMAC-signed with a per-user key kept outside the study folder;
anything else is ignored with a one-line notice and recomputed.
"""

from __future__ import annotations

import ast
import io
import json
import os
import pickle
import re
import stat
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cementleak_stats import cache, codec, study
from cementleak_stats.cache import SECRET_ENV, SignedFiles, cache_path
from cementleak_stats.codec import allowed_dataclasses, decode, encode
from cementleak_stats.export import write_results
from cementleak_stats.render.execute import ExecutionCache, ExecutionResult, _load, _store
from cementleak_stats.spec import load_spec
from cementleak_stats.study import StudyResults, compute_study, run_study

try:
    from test_reliability_support import REPO, allow_missing, study_copy
except ImportError:  # pragma: no cover
    from tests.test_reliability_support import REPO, allow_missing, study_copy


@pytest.fixture(autouse=True)
def own_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test its own per-user key (outside the study folders of the test)."""
    key = tmp_path / "home-cache" / "cementleak" / "cache-key"
    monkeypatch.setenv(SECRET_ENV, str(key))
    return key


def _key_and_path(spec, cache_dir: Path) -> tuple[dict, Path]:
    from cementleak_stats.cohort.io import load_study_data
    from cementleak_stats.provenance import collect_provenance

    data = load_study_data(spec)
    prov = collect_provenance(spec, study._input_files(spec, data))
    return prov.key_inputs(), cache_path(cache_dir, prov.cache_key())


def _results_files(r: StudyResults, out: Path) -> dict[str, bytes]:
    write_results(r, out, figures=False)
    return {p.name: p.read_bytes() for p in sorted(out.iterdir())}


def _no_compute(*args, **kwargs):
    raise AssertionError("recomputed although a valid cache entry exists")


# --- the per-user key ----------------------------------------------------------------------------
def test_key_is_created_once_with_mode_0600_outside_the_study(own_key: Path) -> None:
    first = cache.user_secret()
    assert own_key.is_file() and len(first) == 32
    assert stat.S_IMODE(own_key.stat().st_mode) == 0o600
    assert cache.user_secret() == first  # created once, then read


def test_default_key_lives_in_the_user_cache_folder(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(SECRET_ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache.secret_path() == tmp_path / "xdg" / "cementleak" / "cache-key"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert cache.secret_path() == Path.home() / ".cache" / "cementleak" / "cache-key"


def test_a_key_readable_by_others_disables_the_cache_with_a_notice(own_key: Path, tmp_path: Path) -> None:
    cache.user_secret()
    own_key.chmod(0o644)
    spec = load_spec(study_copy(tmp_path / "s"))
    notices: list[str] = []
    run_study(spec, notify=notices.append)
    assert any("results not stored" in n and "chmod 600" in n for n in notices), notices
    assert not list((tmp_path / "s" / ".cementleak-cache").glob("*.json"))


# --- the results cache ---------------------------------------------------------------------------
@pytest.mark.parametrize("case", ["shipped-with-outcomes", "multiple-imputation"])
def test_valid_entry_round_trips_to_byte_identical_results(case: str, tmp_path: Path, monkeypatch) -> None:
    if case == "multiple-imputation":
        def blank(c: pd.DataFrame) -> pd.DataFrame:
            c.loc[[3, 17, 40], "ct_value_hu"] = None
            return c
        path = study_copy(tmp_path / "s", edit=blank, variables=allow_missing("ct_value_hu"),
                          analysis={"missing_data": "multiple_imputation", "imputations": 3})
    else:
        path = study_copy(tmp_path / "s", outcomes=True)
    spec = load_spec(path)
    notices: list[str] = []
    computed = run_study(spec, notify=notices.append)  # a miss: computed and stored
    inputs, entry = _key_and_path(spec, spec.base_dir)
    assert entry.is_file() and notices == []
    assert json.loads(entry.read_bytes().partition(b"\n")[2])["inputs"] == inputs  # the key's inputs, kept
    monkeypatch.setattr(study, "compute_study", _no_compute)
    loaded = run_study(spec, notify=notices.append)
    assert notices == [] and loaded is not computed
    assert loaded.spec is spec  # the study and its data come from this run, not from the entry
    # every value, not only the files: the encoded forms are equal
    allowed = allowed_dataclasses(StudyResults)
    assert (json.dumps(encode(loaded, allowed=allowed, refs={"spec": loaded.spec, "data": loaded.data}))
            == json.dumps(encode(computed, allowed=allowed, refs={"spec": computed.spec, "data": computed.data})))
    a, b = _results_files(computed, tmp_path / "a"), _results_files(loaded, tmp_path / "b")
    assert list(a) == list(b) and len(a) > 15
    for name in a:
        assert a[name] == b[name], f"{name} differs after the cache round trip"
    pd.testing.assert_frame_equal(loaded.data.analysed, computed.data.analysed)


class _CreatesFile:
    """A pickle that creates a file when it is unpickled (what a hostile cache would do)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_planted_pickle_is_never_executed(tmp_path: Path) -> None:
    spec = load_spec(study_copy(tmp_path / "s"))
    _, entry = _key_and_path(spec, spec.base_dir)
    marker = tmp_path / "pwned"
    payload = pickle.dumps(_CreatesFile(marker))
    pickle.loads(payload)  # the payload works: it creates the marker
    assert marker.exists()
    marker.unlink()
    entry.parent.mkdir(parents=True)
    entry.write_bytes(payload)  # where the entry would be
    entry.with_suffix(".pkl").write_bytes(payload)  # where the old pickle cache was
    (entry.parent / "results-0123456789abcdef01234567.pkl").write_bytes(payload)
    notices: list[str] = []
    r = run_study(spec, notify=notices.append)
    assert not marker.exists(), "a planted pickle was executed"
    assert any("not a cementleak cache entry; recomputing" in n for n in notices), notices
    assert any("pickle file(s)" in n and "never loaded" in n for n in notices), notices
    assert all("\n" not in n for n in notices)  # one line each
    assert r.model.loglik == compute_study(spec).model.loglik
    assert entry.read_bytes().startswith(b"CEMENTLEAK-CACHE ")  # replaced by a valid entry


#: the one place allowed to use pickle, and why: the figure workers that ``analyze`` and
#: ``report`` fork receive the results from their own parent process over the executor's pipe
#: (pickled in memory by that parent), never from a file; the test below checks that nothing
#: else there touches pickle
PICKLE_IN_MEMORY = {"cementleak_stats/figures/save.py": {"dumps", "loads", "HIGHEST_PROTOCOL", "PicklingError"}}


def test_package_never_unpickles() -> None:
    """No module of the package imports pickle, joblib's loader or marshal (static check), but
    the figure workers' in-memory hand-over from their parent (:data:`PICKLE_IN_MEMORY`)."""
    offenders = []
    for f in sorted((REPO / "cementleak_stats").rglob("*.py")):
        tree = ast.parse(f.read_text(encoding="utf-8"))
        allowed = PICKLE_IN_MEMORY.get(f.relative_to(REPO).as_posix())
        if allowed is not None:
            used = {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)
                    and isinstance(n.value, ast.Name) and n.value.id == "pickle"}
            assert used <= allowed, f"{f.name} uses pickle.{sorted(used - allowed)}: only in-memory pickling is allowed"
        for node in ast.walk(tree):
            names = [a.name for a in node.names] if isinstance(node, (ast.Import, ast.ImportFrom)) else []
            mod = node.module if isinstance(node, ast.ImportFrom) else ""
            if allowed is not None and isinstance(node, ast.Import) and names == ["pickle"]:
                continue
            if any(n.split(".")[0] in ("pickle", "cloudpickle", "dill", "marshal", "shelve") for n in [*names, mod or ""]):
                offenders.append(f.relative_to(REPO).as_posix())
        if re.search(r"allow_pickle\s*=\s*True|joblib\.load\(|pd\.read_pickle\(", f.read_text(encoding="utf-8")):
            offenders.append(f.relative_to(REPO).as_posix())
    assert offenders == []


def _stored(spec, tmp_path: Path) -> tuple[StudyResults, Path, bytes]:
    true = run_study(spec)
    _, entry = _key_and_path(spec, spec.base_dir)
    return true, entry, entry.read_bytes()


def test_entry_with_altered_numbers_is_not_trusted(tmp_path: Path) -> None:
    spec = load_spec(study_copy(tmp_path / "s"))
    true, entry, raw = _stored(spec, tmp_path)
    head, _, body = raw.partition(b"\n")
    text = body.decode()
    loglik = json.dumps(true.model.loglik)
    assert f'"loglik":{loglik}' in text
    forged = text.replace(f'"loglik":{loglik}', '"loglik":-1.5', 1)
    entry.write_bytes(head + b"\n" + forged.encode())  # the old signature kept
    notices: list[str] = []
    r = run_study(spec, notify=notices.append)
    assert r.model.loglik == true.model.loglik != -1.5
    assert any("not signed with this user's cache key" in n for n in notices), notices


def test_entry_from_another_machine_is_ignored_and_recomputed(tmp_path: Path, monkeypatch) -> None:
    """A study folder received from someone else: their (valid) entries are not trusted here."""
    spec = load_spec(study_copy(tmp_path / "s"))
    monkeypatch.setenv(SECRET_ENV, str(tmp_path / "sender" / "cache-key"))
    true, entry, raw = _stored(spec, tmp_path)
    # the sender forges numbers and signs them with the sender's own key
    body = json.loads(raw.partition(b"\n")[2])
    body["value"]["f"]["model"]["f"]["loglik"] = -1.5
    cache.write_signed(entry, json.dumps(body).encode(), kind="results")
    assert run_study(spec).model.loglik == -1.5  # the sender's own machine trusts it...
    monkeypatch.setenv(SECRET_ENV, str(tmp_path / "auditor" / "cache-key"))
    notices: list[str] = []
    calls: list[int] = []
    real = study.compute_study
    monkeypatch.setattr(study, "compute_study", lambda *a, **k: calls.append(1) or real(*a, **k))
    r = run_study(spec, notify=notices.append)  # ...the auditor's does not
    assert calls == [1] and r.model.loglik == true.model.loglik
    assert len(notices) == 1 and "ignored .cementleak-cache/results-" in notices[0] and "recomputing" in notices[0]


def test_signed_entry_for_other_inputs_is_not_used(tmp_path: Path) -> None:
    spec = load_spec(study_copy(tmp_path / "s"))
    true, entry, raw = _stored(spec, tmp_path)
    body = json.loads(raw.partition(b"\n")[2])
    body["inputs"]["code"] = "0.0.0+0000"
    cache.write_signed(entry, json.dumps(body).encode(), kind="results")
    notices: list[str] = []
    run_study(spec, notify=notices.append)
    assert any("made for other inputs (code)" in n for n in notices), notices


def test_codec_refuses_classes_off_the_allow_list() -> None:
    allowed = allowed_dataclasses(StudyResults)
    assert "cementleak_stats.models.cox.CoxModel" in allowed and all(
        k.startswith("cementleak_stats.") for k in allowed)
    with pytest.raises(KeyError):
        decode({"t": "dc", "cls": "subprocess.Popen", "f": {}}, allowed=allowed)
    with pytest.raises(ValueError):
        decode({"t": "module", "v": "os"}, allowed=allowed)
    with pytest.raises(TypeError):
        encode(object(), allowed=allowed)
    buf = io.BytesIO()
    np.save(buf, np.array([_CreatesFile(Path("/nonexistent/x"))], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="allow_pickle"):  # a pickled object array in an .npy is refused
        codec._from_npy({"t": "nd", "v": codec._b64(buf.getvalue())})


def test_codec_keeps_dtypes_and_special_values() -> None:
    frame = pd.DataFrame({
        "f": [1.0, np.nan, np.inf], "i": np.array([1, 2, 3], dtype=np.int64),
        "cat": pd.Categorical(["b", "a", "b"], categories=["b", "a"], ordered=True),
        "obj": ["x", None, 1.5], "s": pd.array(["u", None, "w"], dtype="string"), "b": [True, False, True],
        "n": pd.array([1, None, 3], dtype="Int64"),
    }, index=pd.Index(["r1", "r2", "r3"], name="row"))
    value = {"frame": frame, "series": frame["f"], "t": (np.float64(0.25), np.int64(7), -0.0, float("nan")),
             "path": Path("a/b.csv"), "arr": np.arange(6.0).reshape(2, 3)}
    back = decode(json.loads(json.dumps(encode(value, allowed={}), allow_nan=False)), allowed={})
    pd.testing.assert_frame_equal(back["frame"], frame)
    pd.testing.assert_series_equal(back["series"], frame["f"])
    assert type(back["t"][0]) is np.float64 and type(back["t"][1]) is np.int64 and str(back["t"][2]) == "-0.0"
    assert np.isnan(back["t"][3]) and back["path"] == Path("a/b.csv")
    np.testing.assert_array_equal(back["arr"], value["arr"])


# --- the render execution cache ------------------------------------------------------------------
def test_render_cache_entry_is_signed_and_a_foreign_one_is_ignored(tmp_path: Path, monkeypatch) -> None:
    # the renderer knows nothing of this module: `cementleak report` hands it SignedFiles
    signed = SignedFiles("render")
    cache = ExecutionCache(tmp_path / ".cementleak-cache" / "render", read=signed.read, write=signed.write)
    entry = cache.directory / "abc-123.json"
    result = ExecutionResult(cells={0: ({"output_type": "stream", "name": "stdout", "text": "C = 0.71\n"},)},
                             inlines={0: "0.71"})
    _store(cache, entry, result)
    assert _load(cache, entry, None) == result
    steps: list[str] = []
    forged = entry.read_bytes().replace(b"0.71", b"0.99")
    entry.write_bytes(forged)
    assert _load(cache, entry, steps.append) is None
    assert steps and "cache entry ignored" in steps[0] and "not signed" in steps[0]
    _store(cache, entry, result)
    monkeypatch.setenv(SECRET_ENV, str(tmp_path / "other-user" / "cache-key"))
    assert _load(cache, entry, steps.append) is None and len(steps) == 2
    # an unsigned JSON entry of the old format (or a planted one) is not shown either
    entry.write_text(json.dumps({"cells": {"0": []}, "inlines": {"0": "0.99"}}))
    assert _load(cache, entry, steps.append) is None and "not a cementleak cache entry" in steps[-1]
    assert os.environ[SECRET_ENV].endswith("cache-key")


#: the reliability cases of the "Trust" area (docs/reliability.md): this module, the failed-render
#: test, the audit and predict tests
GUARANTEES = [
    ("cache-key-0600-outside-study", "the per-user HMAC key is created once, mode 0600, outside any study folder"),
    ("cache-key-readable-by-others", "a key other users can read disables the cache, with a notice saying how to fix it"),
    ("cache-round-trip", "a valid entry gives byte-identical results files (shipped study with outcomes; multiple "
                         "imputation) and every value equal"),
    ("planted-pickle", "a pickle planted where the cache entry or the old pickle cache would be is never executed; "
                       "one-line notices; recomputed"),
    ("no-unpickling-in-package", "no module imports pickle/marshal/shelve or loads with allow_pickle=True"),
    ("altered-numbers", "an entry whose numbers were edited is not trusted (HMAC); recomputed"),
    ("entry-from-another-machine", "an entry signed with someone else's key (a received study folder) is ignored with "
                                   "a one-line notice and recomputed"),
    ("entry-for-other-inputs", "a signed entry for other inputs (code, data, study, versions) is not used"),
    ("codec-allow-list", "the serializer re-creates only allow-listed dataclasses; pickled .npy object arrays refused"),
    ("codec-dtypes", "DataFrames, Series, NumPy scalars, NaN/inf, categorical, string and nullable dtypes round-trip"),
    ("render-cache-signed", "an edited or foreign render cache entry is not shown; executed again with a notice"),
    ("failed-render-atomic", "a document cell that raises: neither the report nor results/ changes, the message says "
                             "so; the next successful render replaces both"),
    ("predict-model-file", "model.json scores exactly as predict_risk and as its documented formula"),
    ("predict-prints-prediction", "predict prints the prediction only (no study warnings, no 'Nothing was written')"),
    ("predict-uses-cache", "a stale model file falls back to the cached analysis without recomputing"),
    ("predict-foreign-model", "a model file of another study file, or not a model file, exits 2 naming the file"),
    ("audit-fresh", "audit of a fresh analysis: every file identical, exit 0, the seed stated"),
    ("audit-changed-number", "one number changed in a results CSV: exit 1 naming file, row, column, both values"),
    ("audit-edited-data", "one data cell edited: exit 1 naming the data file whose hash changed; files not reproducible"),
    ("audit-json", "audit --format json gives the same findings as data"),
    ("audit-nothing-delivered", "no delivered results: exit 2 with the fix"),
    ("audit-rendered-colophon", "the rendered report's colophon is compared; an altered hash names the page and item"),
]
