"""Documents read the results by the key ``cementleak report`` hands them (issues 12 and 16).

A document given a results key reads the signed cache entry of that key: it does not validate
the data, hash the data files or run git (``run_study`` does, once, in the CLI).  Without a key
(a document rendered by hand), or with a key whose entry cannot be used, it runs ``run_study``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import cementleak_stats.study as study_module
from cementleak_stats import document, figure_cache, provenance
from cementleak_stats.cache import SECRET_ENV
from cementleak_stats.document import load_report
from cementleak_stats.spec import load_spec
from cementleak_stats.study import results_by_key, run_study

try:
    from test_reliability_support import study_copy
except ImportError:  # pragma: no cover
    from tests.test_reliability_support import study_copy

B = 20


@pytest.fixture(scope="module")
def stored(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A study whose results are stored in its cache (as `cementleak report` leaves it)."""
    study = study_copy(tmp_path_factory.mktemp("by-key"), bootstrap_b=B)
    results = run_study(load_spec(study))
    return study, results.provenance.cache_key()


def _forbid_the_analysis(monkeypatch: pytest.MonkeyPatch) -> None:
    def forbidden(*args, **kwargs):
        raise AssertionError("a document given a results key validated, hashed or ran git")

    monkeypatch.setattr(study_module, "load_study_data", forbidden)
    monkeypatch.setattr(study_module, "compute_study", forbidden)
    monkeypatch.setattr(provenance, "sha256_file", forbidden)
    monkeypatch.setattr(provenance, "git_commit", forbidden)


def test_a_key_reads_the_stored_results_without_validating_hashing_or_git(stored, monkeypatch) -> None:
    study, key = stored
    expected = run_study(load_spec(study))
    _forbid_the_analysis(monkeypatch)
    got = results_by_key(load_spec(study), key)
    assert got is not None and got.provenance == expected.provenance
    assert got.model.summary.equals(expected.model.summary) and got.validation.equals(expected.validation)
    assert got.data.analysed.equals(expected.data.analysed), "the validated data travel with the results"


def test_load_report_reads_by_key_once_per_process_and_prints_the_run_s_b(stored, monkeypatch) -> None:
    study, key = stored
    monkeypatch.setattr(document, "_LOADED", {})
    _forbid_the_analysis(monkeypatch)
    first = load_report(study, results=key)
    assert load_report(study, results=key) is first, "a kept-alive kernel reads the results once"
    assert load_report(study, results=key, lang="zh") is not first
    # B and the seed are those of the run, read from its results
    assert first.b == str(B) == str(first.results.provenance.bootstrap_b)
    assert first.seed == str(first.results.provenance.seed)


def test_without_a_usable_key_the_document_runs_the_analysis(stored, monkeypatch, capsys) -> None:
    study, key = stored
    monkeypatch.setattr(document, "_LOADED", {})
    calls: list[object] = []
    real = study_module.load_study_data
    monkeypatch.setattr(study_module, "load_study_data", lambda spec: calls.append(spec) or real(spec))
    assert load_report(study).results.provenance.cache_key() == key and len(calls) == 1  # by hand: no key
    report = load_report(study, results="0" * 24)  # a key with no stored results
    assert report.results.provenance.cache_key() == key and len(calls) == 2
    assert "no stored results" in capsys.readouterr().err


def test_an_entry_of_another_study_file_or_user_is_not_used(stored, tmp_path, monkeypatch) -> None:
    study, key = stored
    notes: list[str] = []
    edited = load_spec(study)
    original = study.read_text(encoding="utf-8")
    try:
        study.write_text(original + "\n# edited after the run\n", encoding="utf-8")
        assert results_by_key(load_spec(study), key, notify=notes.append) is None
    finally:
        study.write_text(original, encoding="utf-8")
    assert "another version of the study file" in notes[-1]
    monkeypatch.setenv(SECRET_ENV, str(tmp_path / "another-users-key"))
    assert results_by_key(edited, key, notify=notes.append) is None
    assert "not signed with this user's cache key" in notes[-1]


DOC = """---
title: "By key"
format: html
---

```{python}
#| tags: [parameters]
#| include: false
study = None
results = None
```

```{python}
#| label: setup
#| include: false
from cementleak_stats.document import load_report
R = load_report(study, results=results)
```

Patients: `{python} R.n`; B: `{python} R.b`.
"""


@pytest.mark.render
def test_the_built_in_engine_hands_the_key_to_the_kernel(stored, tmp_path) -> None:
    """The parameters reach the document's kernel, which reads by key: it renders with the data
    files gone (run_study would stop at the missing file)."""
    from cementleak_stats.render import render_project

    study, key = stored
    (tmp_path / "_quarto.yml").write_text("project:\n  type: default\n", encoding="utf-8")
    (tmp_path / "doc.qmd").write_text(DOC, encoding="utf-8")
    data = load_spec(study).cohort_path
    data.rename(data.with_suffix(".away"))
    try:
        rep = render_project(tmp_path, to=["html"], params={"study": str(study), "results": key})
    finally:
        data.with_suffix(".away").rename(data)
    n = len(run_study(load_spec(study)).analysed)
    assert f"Patients: {n}; B: {B}." in rep.files[0].path.read_text(encoding="utf-8")


# --- figures drawn once per results key and language, shared by the report's documents ---------------
def _count_draws(monkeypatch: pytest.MonkeyPatch, name: str) -> list[str]:
    from cementleak_stats import presentation

    calls: list[str] = []
    real = presentation.FIGURES[name]
    monkeypatch.setitem(presentation.FIGURES, name, lambda r: calls.append(name) or real(r))
    return calls


def _shown(report, name: str, capsys) -> bytes:
    """The PNG bytes ``report.figure(name)`` displays (IPython's display prints its repr here)."""
    from unittest import mock

    shown: list[bytes] = []
    with mock.patch("IPython.display.display", lambda image: shown.append(image.data)):
        report.figure(name)
    return shown[0]


def test_each_figure_is_drawn_once_per_key_and_language_for_every_document(stored, monkeypatch, capsys) -> None:
    study, key = stored
    calls = _count_draws(monkeypatch, "forest")
    monkeypatch.setattr(document, "_LOADED", {})
    first = _shown(load_report(study, results=key), "forest", capsys)
    monkeypatch.setattr(document, "_LOADED", {})  # another document: another kernel
    again = _shown(load_report(study, results=key), "forest", capsys)
    assert again == first and calls == ["forest"], "the second document reads the first one's drawing"
    zh = _shown(load_report(study, results=key, lang="zh"), "forest", capsys)
    assert zh != first and calls == ["forest", "forest"], "each language is drawn in its own words"
    # drawn by hand (no key): nothing shared, the same picture
    assert _shown(document.ReportView(run_study(load_spec(study))), "forest", capsys) == first


def test_a_figure_entry_not_signed_by_this_user_is_drawn_again(stored, monkeypatch, capsys) -> None:
    study, key = stored
    monkeypatch.setattr(document, "_LOADED", {})
    report = load_report(study, results=key)
    expected = _shown(report, "km", capsys)
    entry = report._figures.entry("en", "km")
    assert entry.is_file()
    entry.write_bytes(b"\x89PNG forged")
    calls = _count_draws(monkeypatch, "km")
    monkeypatch.setattr(document, "_LOADED", {})
    assert _shown(load_report(study, results=key), "km", capsys) == expected and calls == ["km"]
    assert figure_cache._read(entry) is not figure_cache._ABSENT, "drawn again and stored again, signed"


def test_figures_of_results_no_longer_stored_go(stored, monkeypatch, tmp_path) -> None:
    study, key = stored
    from cementleak_stats.cache import cache_path

    folder = cache_path(study.parent, key).parent / "figures"
    (folder / ("f" * 24)).mkdir(parents=True, exist_ok=True)  # results of another key, since removed
    (folder / ("f" * 24) / "en-km.png").write_bytes(b"old")
    kept = folder / key
    if kept.exists():
        import shutil

        shutil.rmtree(kept)
    assert figure_cache.shared_figures(study.parent, key).folder == kept
    assert not (folder / ("f" * 24)).exists()


def test_the_results_folder_and_the_documents_share_one_drawing_of_each_figure(stored, monkeypatch, capsys, tmp_path) -> None:
    """`cementleak report`: the results folder's PNG and the English documents' picture are one
    drawing, made by whichever asks first (figure_cache.py), the same bytes as a results folder
    written alone; the PDF is still drawn for the results folder."""
    from cementleak_stats import export, presentation

    study, key = stored
    monkeypatch.setattr(presentation, "FIGURES", {n: presentation.FIGURES[n] for n in ("forest", "km")})
    monkeypatch.setattr(document, "_LOADED", {})
    report = load_report(study, results=key)
    import shutil

    shutil.rmtree(report._figures.folder, ignore_errors=True)
    shown_forest = _shown(report, "forest", capsys)  # a document first: the results folder takes its drawing
    staged = export.stage_results(report._source, tmp_path / "results", formats=("png", "pdf"), shared=report._figures)
    figures = staged / "figures"
    assert (figures / "forest.png").read_bytes() == shown_forest and (figures / "forest.pdf").is_file()
    calls = _count_draws(monkeypatch, "km")  # the results folder first: the document shows its file
    assert _shown(report, "km", capsys) == (figures / "km.png").read_bytes() and calls == []
    alone = export.stage_results(report._source, tmp_path / "alone", formats=("png", "pdf")) / "figures"
    assert all((alone / f"{n}.{x}").read_bytes() == (figures / f"{n}.{x}").read_bytes() for n in ("forest", "km") for x in ("png", "pdf"))


def test_preloading_reads_the_results_once_for_every_language(stored, monkeypatch) -> None:
    """What the kernels' server does before forking them (document.preload_reports): each
    document's load_report then finds its language's view, with the results read once."""
    study, key = stored
    monkeypatch.setattr(document, "_LOADED", {})
    reads: list[str] = []
    real = document.results_by_key
    monkeypatch.setattr(document, "results_by_key", lambda *a, **k: reads.append(key) or real(*a, **k))
    document.preload_reports(str(study), key)
    _forbid_the_analysis(monkeypatch)
    import matplotlib

    for lang in load_spec(study).report.language:
        matplotlib.use("svg")  # a kernel's setup chose its backend after the server imported document.py
        assert load_report(study, results=key, lang=lang) is document._LOADED[(str(study.resolve()), key, lang)]
        assert matplotlib.get_backend().lower() == "agg", "the documents draw off screen, as when they import document.py"
    assert reads == [key]
