"""Figure files: drawn and written in worker processes, only in the study's formats, after the
results tables, and a figure that cannot be drawn costs neither the tables nor the other figures."""

from __future__ import annotations

import hashlib
from contextlib import nullcontext
from pathlib import Path
from types import SimpleNamespace

import matplotlib

matplotlib.use("Agg")

import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import yaml  # noqa: E402

from cementleak_stats import export  # noqa: E402
from cementleak_stats import presentation as P  # noqa: E402
from cementleak_stats.errors import InputError  # noqa: E402
from cementleak_stats.figures.save import save_figures  # noqa: E402
from cementleak_stats.spec import parse_spec  # noqa: E402
from test_figures import _draw_sample  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def _draw(name: str):
    if name == "broken":
        raise ValueError("no such column 'x'")
    return None if name == "absent" else _draw_sample()


def _tree(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def test_parallel_and_sequential_write_the_same_bytes_and_report_failures_by_name(tmp_path):
    names = ["one", "broken", "absent", "two", "three"]
    seq, failed_seq = save_figures(_draw, names, tmp_path / "seq", formats=("png", "pdf"), jobs=1)
    par, failed_par = save_figures(_draw, names, tmp_path / "par", formats=("png", "pdf"), jobs=2)
    assert [p.name for p in seq] == [p.name for p in par] == [
        "one.png", "one.pdf", "two.png", "two.pdf", "three.png", "three.pdf"]
    assert _tree(tmp_path / "seq") == _tree(tmp_path / "par")  # no .svg: only the formats asked for
    assert failed_seq == failed_par == {"broken": "ValueError: no such column 'x'"}


def test_no_format_writes_no_figure(tmp_path):
    assert save_figures(_draw, ["one"], tmp_path / "none", formats=()) == ([], {})
    assert not (tmp_path / "none").exists()


def _study_dict() -> dict:
    return yaml.safe_load((ROOT / "study.yaml").read_text(encoding="utf-8"))


def test_figure_formats_in_the_study_file():
    d = _study_dict()
    d.get("report", {}).pop("figure_formats", None)
    assert parse_spec(d, base_dir=ROOT).report.figure_formats == ("png", "pdf")  # the default
    d.setdefault("report", {})["figure_formats"] = "svg"
    assert parse_spec(d, base_dir=ROOT).report.figure_formats == ("svg",)
    for bad, words in ((["png", "tiff"], "'tiff'.*not a figure format.*list png, svg and/or pdf"),
                       (["pdf", "pdf"], "lists a format twice.*list each format once")):
        d["report"]["figure_formats"] = bad
        with pytest.raises(InputError, match=words) as err:
            parse_spec(d, base_dir=ROOT)
        assert "report.figure_formats" in str(err.value)


def test_a_figure_that_fails_costs_no_table_and_no_other_figure(tmp_path, monkeypatch):
    """write_results writes the tables first; a failing figure is named after the results were
    committed, and the other figures are there."""
    monkeypatch.setattr(P, "FIGURES", {"one": lambda r: _draw_sample(), "broken": lambda r: _draw("broken")})
    monkeypatch.setattr(export, "results_tables", lambda r: {"cox_multivariable": pd.DataFrame({"hr": [1.5]})})
    monkeypatch.setattr(export, "model_file", lambda r: {"format": "test"})
    spec = SimpleNamespace(outcome=SimpleNamespace(horizon=12, event="e"), analysis=SimpleNamespace(missing_data="complete_case"),
                           report=SimpleNamespace(figure_formats=("png",)))
    r = SimpleNamespace(spec=spec, provenance=SimpleNamespace(seed=1), predictors=("x",), analysed=pd.DataFrame({"e": [0, 1]}),
                        model=SimpleNamespace(baseline_survival=lambda: 0.9, penalizer=0.0), notes=())
    out = tmp_path / "results"
    with pytest.raises(export.FiguresNotDrawn, match="broken: ValueError: no such column 'x'"):
        export.write_results(r, out)
    assert (out / "cox_multivariable.csv").exists() and (out / "summary.json").exists()
    assert sorted(p.name for p in (out / "figures").iterdir()) == ["one.png"]
    assert (out / export.NOT_DRAWN).read_text().startswith("broken: ")


def test_analyze_says_which_figures_were_not_drawn_without_a_traceback(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from cementleak_stats import cli

    spec = SimpleNamespace(study=SimpleNamespace(synthetic=False))
    monkeypatch.setattr(cli, "_analysis", lambda *a, **k: (spec, object(), 0.1))

    def fail(results, out, **kwargs):
        raise export.FiguresNotDrawn(f"figures that could not be drawn (written to {out}):\nbroken: ValueError: x")
    monkeypatch.setattr(export, "write_results", fail)
    res = CliRunner().invoke(cli.app, ["analyze", str(ROOT / "study.yaml"), "--out", str(tmp_path / "results")])
    assert res.exit_code == 1, res.output
    assert "Some figures could not be drawn" in res.output and "broken: ValueError: x" in res.output
    assert "Traceback" not in res.output and (res.exception is None or isinstance(res.exception, SystemExit))


def test_workers_started_before_the_results_write_the_same_bytes(tmp_path):
    """FigureWorkers fork (and warm up) before the figures' inputs exist; they receive the
    drawing function pickled and write byte for byte what workers forked at the time write."""
    from cementleak_stats.export.workers import FigureWorkers

    names = ["one", "broken", "absent", "two"]
    with FigureWorkers(2, modules=("cementleak_stats.figures",)) as workers:
        assert workers.executor is not None and workers.run(len, names) == 4  # run: in a worker
        sent, failed_sent = save_figures(_draw, names, tmp_path / "sent", formats=("png", "pdf"), executor=workers.executor)
        local = []  # a drawing function that cannot be pickled: workers forked at the time, as without executor
        late, failed_late = save_figures(lambda n: local or _draw(n), names, tmp_path / "late", formats=("png", "pdf"),
                                         executor=workers.executor)
    par, failed_par = save_figures(_draw, names, tmp_path / "par", formats=("png", "pdf"), jobs=2)
    assert [p.name for p in sent] == [p.name for p in late] == [p.name for p in par]
    assert _tree(tmp_path / "sent") == _tree(tmp_path / "late") == _tree(tmp_path / "par")
    assert failed_sent == failed_late == failed_par == {"broken": "ValueError: no such column 'x'"}


@pytest.mark.parametrize("error", [False, True])
def test_workers_are_ended_at_once_without_waiting_for_their_warm_up(error):
    """Leaving the block (figures written, none needed, or an error) ends the workers at once."""
    import time

    from cementleak_stats.export.workers import FigureWorkers

    t0 = time.perf_counter()
    with pytest.raises(RuntimeError) if error else nullcontext(), \
            FigureWorkers(2, modules=("cementleak_stats.presentation",)) as workers:
        children = list(workers._children)
        if error:
            raise RuntimeError("bad input")
    assert len(children) == 2 and not any(c.is_alive() for c in children) and workers.executor is None
    assert time.perf_counter() - t0 < 5


@pytest.mark.parametrize(("value", "formats"), [(None, None), ("none", ()), ("png", ("png",)), ("PDF, png", ("pdf", "png"))])
def test_figures_flag_chooses_the_formats(value, formats):
    from cementleak_stats import cli

    assert cli._figure_formats(value) == formats


def test_analyze_figures_flag_reaches_the_results_and_refuses_a_bad_format(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from cementleak_stats import cli

    spec = SimpleNamespace(study=SimpleNamespace(synthetic=False))
    monkeypatch.setattr(cli, "_analysis", lambda *a, **k: (spec, object(), 0.1))
    seen = {}

    def write(results, out, **kwargs):
        seen.update(kwargs)
        return []
    monkeypatch.setattr(export, "write_results", write)
    monkeypatch.setattr(export, "results_current", lambda *a, **k: False)
    runner, args = CliRunner(), ["analyze", str(ROOT / "study.yaml"), "--out", str(tmp_path / "results")]
    assert runner.invoke(cli.app, [*args, "--figures", "none"]).exit_code == 0
    assert seen["figures"] is False and seen["formats"] == () and seen["workers"] is None  # no worker started
    assert runner.invoke(cli.app, [*args, "--figures", "png"]).exit_code == 0
    assert seen["figures"] is True and seen["formats"] == ("png",) and seen["workers"] is not None
    bad = runner.invoke(cli.app, [*args, "--figures", "png,tiff"])
    assert bad.exit_code == 2 and "'tiff' is not a figure format" in bad.output and "--figures" in bad.output
    assert "--figures" in runner.invoke(cli.app, ["analyze", "--help"]).output


def test_an_english_figures_png_is_its_pdf_rasterized_and_other_languages_are_drawn_by_agg(tmp_path):
    """The results folder's PNG and PDF of a figure (English) are one drawing: the PNG is the
    PDF at 300 dpi (PDFium), made once whatever the formats asked for; a Chinese figure (shown in
    documents only) is drawn straight to PNG, with no PDF made."""
    import io

    from PIL import Image

    from cementleak_stats.figures.save import _rasterized, drawing

    both, _ = save_figures(_draw, ["one"], tmp_path / "both", formats=("png", "pdf"), jobs=1, lang="en")
    png, pdf = (tmp_path / "both" / "one.png").read_bytes(), (tmp_path / "both" / "one.pdf").read_bytes()
    assert png == _rasterized(pdf, 300)
    save_figures(_draw, ["one"], tmp_path / "png", formats=("png",), jobs=1, lang="en")
    assert (tmp_path / "png" / "one.png").read_bytes() == png, "the same PNG without the PDF file"
    with Image.open(io.BytesIO(png)) as im:
        fig = _draw_sample()
        w, h = fig.get_size_inches()
        assert im.info["dpi"] == pytest.approx((300, 300), abs=0.01) and im.width >= 0.5 * w * 300
        assert im.getpixel((0, 0))[:3] == (255, 255, 255), "white ground"
        assert im.convert("L").getextrema()[0] < 60, "something is drawn"
    zh = drawing(_draw_sample(), lang="zh")
    en = drawing(_draw_sample(), lang="en")
    assert zh.pdf is None and zh.png.startswith(b"\x89PNG") and en.pdf is not None and en.png == png
