"""Built-in renderer: how cell outputs become markdown (Quarto's cell options), without a kernel.

The outputs are nbformat dicts as nbclient records them.
"""

from __future__ import annotations

import base64
import struct
from pathlib import Path

import pytest

from cementleak_stats.render import RenderError
from cementleak_stats.render.assemble import FigureFloat, Raw, TableFloat, cell_pieces
from cementleak_stats.render.config import CellOptions, DocumentMeta
from cementleak_stats.render.crossref import number, to_markdown
from cementleak_stats.render.execute import _failure
from cementleak_stats.render.steps import Step as _Step
from cementleak_stats.render.parse import CodeCell, InlineExpr, MdLine, Origin

ORIGIN = Origin("doc.qmd", 10)
# the header of a PNG 450 pixels wide (the engine reads the width from IHDR; the rest is not decoded)
PNG_450PX = base64.b64encode(b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + struct.pack(">II", 450, 1) + b"\x08\x06\x00\x00\x00").decode()


def cell(**options: object) -> CodeCell:
    return CodeCell(0, "#| echo: true\nx = 1", "x = 1", CellOptions.model_validate(options), ORIGIN)


def stream(text: str, name: str = "stdout") -> dict:
    return {"output_type": "stream", "name": name, "text": text}


def display(data: dict) -> dict:
    return {"output_type": "display_data", "data": data, "metadata": {}}


def render(pieces: list) -> str:
    return to_markdown(pieces, number(pieces, number_sections=False), {}, number_sections=False)


def pieces_for(c: CodeCell, outputs: list[dict], tmp_path: Path, meta: DocumentMeta | None = None, echo_default: bool = True) -> list:
    return cell_pieces(c, tuple(outputs), meta or DocumentMeta(), files_dir=tmp_path, echo_default=echo_default)


def test_echo_and_stdout(tmp_path: Path) -> None:
    text = render(pieces_for(cell(), [stream("hello\n")], tmp_path))
    assert "``` {.python .cell-code}\nx = 1\n```" in text  # the #| lines are not echoed
    assert "``` {.cell-output .cell-output-stdout}\nhello\n```" in text


def test_echo_defaults_follow_execute_then_format(tmp_path: Path) -> None:
    assert not any(isinstance(p, Raw) and "cell-code" in p.text for p in pieces_for(cell(), [], tmp_path, echo_default=False))
    meta = DocumentMeta.model_validate({"execute": {"echo": False}})
    assert pieces_for(cell(), [], tmp_path, meta=meta) == []
    assert pieces_for(cell(echo=True), [], tmp_path, meta=meta) != []


def test_include_false_output_false_warning_false(tmp_path: Path) -> None:
    assert pieces_for(cell(include=False), [stream("x")], tmp_path) == []
    only_code = render(pieces_for(cell(output=False), [stream("x")], tmp_path))
    assert "cell-output" not in only_code and "x = 1" in only_code
    quiet = render(pieces_for(cell(warning=False, echo=False), [stream("warn\n", "stderr"), stream("out\n")], tmp_path))
    assert "warn" not in quiet and "out" in quiet


def test_output_asis_is_markdown(tmp_path: Path) -> None:
    text = render(pieces_for(cell(output="asis", echo=False), [stream("**bold** text\n")], tmp_path))
    assert "**bold** text" in text and "```" not in text


def test_reference_printed_by_a_cell_must_resolve(tmp_path: Path) -> None:
    pieces = pieces_for(cell(output="asis", echo=False), [stream("see @tbl-none\n")], tmp_path)
    with pytest.raises(RenderError, match=r"doc.qmd:10: unresolved cross-reference '@tbl-none'"):
        render(pieces)


def test_markdown_is_preferred_to_html_and_text(tmp_path: Path) -> None:
    out = display({"text/markdown": "| a |\n|---|\n| 1 |", "text/html": "<table></table>", "text/plain": "T"})
    text = render(pieces_for(cell(echo=False), [out], tmp_path))
    assert "| a |" in text and "<table>" not in text


def test_html_is_kept_raw_and_text_is_code(tmp_path: Path) -> None:
    text = render(pieces_for(cell(echo=False), [display({"text/html": "<b>x</b>", "text/plain": "x"}), display({"text/plain": "42"})], tmp_path))
    assert "``` {=html}\n<b>x</b>\n```" in text
    assert "``` {.cell-output .cell-output-display}\n42\n```" in text


def test_captioned_figure_is_numbered_and_sized(tmp_path: Path) -> None:
    c = cell(label="fig-a", **{"fig-cap": "A *plot*."}, echo=False)
    pieces = pieces_for(c, [display({"image/png": PNG_450PX, "text/plain": "<Figure>"})], tmp_path)
    (figure,) = [p for p in pieces if isinstance(p, FigureFloat)]
    assert figure.image.read_bytes()[:4] == b"\x89PNG" and figure.image.parent == tmp_path
    assert figure.width_in == round(450 / 150, 2)  # 450 px wide at the default 150 dpi
    assert f"![Figure 1: A *plot*.]({figure.image.as_posix()}){{#fig-a width=3.0in}}" in render(pieces)


def test_figure_cell_must_draw_exactly_one_image(tmp_path: Path) -> None:
    c = cell(label="fig-a", **{"fig-cap": "A"})
    with pytest.raises(RenderError, match="produced 2 images"):
        pieces_for(c, [display({"image/png": PNG_450PX}), display({"image/png": PNG_450PX})], tmp_path)
    with pytest.raises(RenderError, match="produced 0 images"):
        pieces_for(c, [stream("no plot")], tmp_path)


def test_captioned_table_wraps_its_outputs(tmp_path: Path) -> None:
    c = cell(label="tbl-t", **{"tbl-cap": "Counts."}, echo=False)
    pieces = pieces_for(c, [display({"text/markdown": "| a |\n|---|\n| 1 |\n\nNote: synthetic."})], tmp_path)
    (table,) = [p for p in pieces if isinstance(p, TableFloat)]
    text = render(pieces)
    assert "::::: {#tbl-t .cl-table data-origin=\"doc.qmd:10\"}\nTable 1: Counts.\n" in text
    assert "Note: synthetic." in text and table.label == "tbl-t"
    with pytest.raises(RenderError, match="displayed no table"):
        pieces_for(c, [display({"text/plain": "no table"})], tmp_path)


def test_unrenderable_output_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(RenderError, match=r"application/vnd\.jupyter\.widget-view\+json"):
        pieces_for(cell(), [display({"application/vnd.jupyter.widget-view+json": {}})], tmp_path)


def test_failures_name_the_line_of_the_error() -> None:
    c = CodeCell(0, "#| label: boom\na = 1\nb = a / 0", "a = 1\nb = a / 0", CellOptions(label="boom"), Origin("doc.qmd", 5))
    tb = "\x1b[0;31mZeroDivisionError\x1b[0m Traceback\nCell \x1b[0;32mIn[2], line 3\x1b[0m\n----> 3 b = a / 0"
    err = _failure(_Step(c.source, "cell", cell=c), "ZeroDivisionError", "division by zero", tb)
    (problem,) = err.problems
    assert (problem.file, problem.line) == ("doc.qmd", 8)  # fence at 5, traceback line 3 of the cell
    inline = InlineExpr(0, "undefined_name", Origin("_inc.qmd", 4))
    err = _failure(_Step("", "inline", inline=inline), "NameError", "name 'undefined_name' is not defined", "")
    assert str(err) == "_inc.qmd:4: inline expression `undefined_name` failed: NameError: name 'undefined_name' is not defined"


def test_inline_values_are_inserted_in_place() -> None:
    line = MdLine("a `{python} x` b `{python} y`", ORIGIN, inlines=((2, 14, 0), (17, 29, 1)))
    assert to_markdown([line], number([line], number_sections=False), {0: "1", 1: "**2**"}, number_sections=False) == "a 1 b **2**\n"


def test_html_output_loading_a_remote_script_is_refused(tmp_path: Path) -> None:
    from cementleak_stats.render.writers import WriteJob, _self_contained

    out = tmp_path / "x.html"
    out.write_text('<p>ok</p><script src="https://cdn.example.org/plotly.js"></script>', encoding="utf-8")
    job = WriteJob("doc.qmd", out, out, tmp_path, tmp_path, citeproc=False, has_title=True)
    with pytest.raises(RenderError, match="external resource"):
        _self_contained(job, out)
    out.write_text('<p><a href="https://example.org">a link is fine</a></p><img src="data:image/png;base64,AA">', encoding="utf-8")
    _self_contained(job, out)


# --- metadata printed by cells and when-meta conditions (what Quarto does after execution) -----


def _doc(tmp_path: Path, body: str):
    from cementleak_stats.render.parse import parse_document

    (tmp_path / "_quarto.yml").write_text("project:\n  type: default\n", encoding="utf-8")
    path = tmp_path / "d.qmd"
    path.write_text(body, encoding="utf-8")
    return parse_document(path, root=tmp_path)


CONDITIONAL = """---
title: front
---

```{python}
#| output: asis
print("meta")
```

::: {.content-visible when-meta="cl.shown"}
Shown text, see @tbl-b.

```{python}
#| label: tbl-a
#| tbl-cap: "Hidden? no."
t
```
:::

::: {.content-visible when-meta="cl.hidden"}
Hidden text.

```{python}
#| label: fig-x
#| fig-cap: "A figure that draws nothing when hidden."
pass
```

::: {.callout-note}
nested, also hidden
:::
:::

::: {.content-hidden when-meta="cl.hidden"}
Shown because the key is false.
:::

::: {.content-visible unless-meta="cl.shown"}
Hidden: unless a true key.
:::

```{python}
#| label: tbl-b
#| tbl-cap: "Second table."
t
```
"""


def test_metadata_blocks_and_when_meta(tmp_path: Path) -> None:
    from cementleak_stats.render.assemble import document_metadata, document_pieces, split_metadata_blocks
    from cementleak_stats.render.execute import ExecutionResult

    doc = _doc(tmp_path, CONDITIONAL)
    assert doc.problems == ()
    block = "\n---\ntitle: From the study\ncl:\n  shown: true\n  hidden: false\n---\n\nBanner text.\n"
    table = display({"text/markdown": "| a |\n|---|\n| 1 |"})
    result = ExecutionResult(cells={0: (stream(block),), 1: (table,), 2: (), 3: (table,)}, inlines={})
    meta = DocumentMeta()
    assert document_metadata(doc, meta, result) == {"title": "From the study", "cl": {"shown": True, "hidden": False}}
    text = render(document_pieces(doc, meta, result, files_dir=tmp_path, echo_default=False))
    assert "Banner text." in text and "title: From the study" not in text  # the block is metadata, not text
    assert "Shown text, see [Table 2](#tbl-b)." in text and "Table 1: Hidden? no." in text and "Table 2: Second table." in text
    assert "Hidden text" not in text and "nested" not in text and "Hidden: unless" not in text
    assert "Shown because the key is false." in text
    assert "content-visible" not in text and "content-hidden" not in text  # decided here, not by pandoc
    # a '---' that is not a YAML mapping stays text (a horizontal rule)
    assert split_metadata_blocks("a\n\n---\n\nb\n") == ("a\n\n---\n\nb\n", [])


def test_when_meta_needs_a_key(tmp_path: Path) -> None:
    doc = _doc(tmp_path, '::: {.content-visible when-meta="not a key!"}\nx\n:::\n')
    assert any("not a metadata key" in p.rule for p in doc.problems)


def test_display_width_asked_by_the_cell_is_honoured(tmp_path: Path) -> None:
    out = {"output_type": "display_data", "data": {"image/png": PNG_450PX}, "metadata": {"image/png": {"width": 960}}}
    (fig,) = [p for p in pieces_for(cell(label="fig-w", fig_cap="W"), [out], tmp_path) if isinstance(p, FigureFloat)]
    assert fig.width_in == 10.0
