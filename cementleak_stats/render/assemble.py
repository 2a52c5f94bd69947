"""Turn a parsed, executed document into a sequence of pieces of pandoc markdown.

A piece is a source line (:class:`~.parse.MdLine`, rewritten later by :mod:`.crossref`),
verbatim text (:class:`Raw`: echoed code, printed text, raw HTML), a captioned figure made by
a cell (:class:`FigureFloat`) or a captioned table made by a cell (:class:`TableFloat`).

Cell outputs follow Quarto's options (``echo``, ``eval``, ``output``, ``include``, ``warning``)
and this display priority, the same in every format so that tables stay tables in DOCX and
PDF: ``text/markdown`` (the package's table objects implement ``_repr_markdown_``), then
``image/png``, ``image/svg+xml``, ``text/html`` (kept raw in HTML; a ``<table>`` in it becomes
a real table in DOCX/PDF through the Lua filter), ``text/plain``.
"""

from __future__ import annotations

import base64
import re
import struct
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union

import yaml

from .config import DocumentMeta
from .execute import ExecutionResult
from .parse import CodeCell, MdLine, Origin, ParsedDocument, scan_output_markdown
from .problems import RenderError, SubsetProblem
from .yaml_lines import safe_load

#: widest image written into the markdown (inches); wider figures are scaled down to fit the page
MAX_FIGURE_WIDTH_IN = 6.3
#: CSS pixels per inch: an image's display width in pixels over this is its width in inches
CSS_PX_PER_INCH = 96
_MIME_PRIORITY = ("text/markdown", "image/png", "image/svg+xml", "text/html", "text/plain")


@dataclass(frozen=True)
class Raw:
    """Verbatim markdown (no cross-reference processing)."""

    text: str
    #: raw HTML holding a <table> (made a real table by the Lua filter where needed)
    html_table: bool = False


@dataclass(frozen=True)
class FigureFloat:
    label: str | None
    caption: MdLine
    image: Path
    width_in: float | None
    origin: Origin


@dataclass(frozen=True)
class TableFloat:
    label: str | None
    caption: MdLine
    content: tuple[Piece, ...]
    origin: Origin


Piece = Union[MdLine, Raw, FigureFloat, TableFloat]


def fenced(code: str, attrs: str) -> str:
    """A fenced code block that survives backticks in ``code``."""
    longest = max((len(m) for m in re.findall(r"`+", code)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"\n{fence} {{{attrs}}}\n{code.rstrip()}\n{fence}\n"


def _png_width_in(data: bytes, dpi: int) -> float | None:
    """Width in inches from the PNG header (pixels / dpi), capped at the text width."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        return None
    width_px = struct.unpack(">I", data[16:20])[0]
    return round(min(width_px / dpi, MAX_FIGURE_WIDTH_IN), 2)


def _text(value: Any) -> str:
    return "".join(value) if isinstance(value, list) else str(value)


@dataclass
class _CellContext:
    cell: CodeCell
    meta: DocumentMeta
    files_dir: Path
    n_images: int = 0


def _image(ctx: _CellContext, mime: str, payload: str) -> tuple[Path, float | None]:
    ctx.n_images += 1
    stem = ctx.cell.options.label or f"cell-{ctx.cell.index + 1}"
    ext = ".png" if mime == "image/png" else ".svg"
    path = ctx.files_dir / f"{stem}-{ctx.n_images}{ext}"
    path.parent.mkdir(parents=True, exist_ok=True)
    if mime == "image/png":
        data = base64.b64decode(payload)
        path.write_bytes(data)
        return path, _png_width_in(data, ctx.meta.fig_dpi)
    path.write_text(_text(payload), encoding="utf-8")
    return path, None


@dataclass(frozen=True)
class _ImageSlot:
    """Where a captioned cell's image goes (replaced by its :class:`FigureFloat`)."""

    path: Path
    width_in: float | None


def _output_pieces(ctx: _CellContext, outputs: tuple[dict[str, Any], ...], asis: bool, warnings: bool) -> list[Piece | _ImageSlot]:
    pieces: list[Piece | _ImageSlot] = []
    origin = ctx.cell.origin
    for out in outputs:
        kind = out.get("output_type")
        if kind == "stream":
            if out.get("name") == "stderr" and not warnings:
                continue
            text = _text(out.get("text", ""))
            if asis:
                pieces += _markdown_pieces(text, origin)
            else:
                pieces.append(Raw(fenced(text, f".cell-output .cell-output-{out.get('name', 'stdout')}")))
            continue
        if kind not in ("display_data", "execute_result"):
            continue
        data = out.get("data", {})
        mime = next((m for m in _MIME_PRIORITY if m in data), None)
        if mime is None:
            raise RenderError([SubsetProblem(origin.file, origin.line, f"cell output of type {sorted(data)} cannot be rendered", "display markdown, HTML, PNG/SVG or text")])
        payload = data[mime]
        if mime == "text/markdown":
            pieces += _markdown_pieces(_text(payload), origin)
        elif mime.startswith("image/"):
            path, width = _image(ctx, mime, payload)
            # a display width the cell asked for (IPython ``Image(width=px)``), as Quarto honours it
            asked = (out.get("metadata") or {}).get(mime, {}).get("width")
            if isinstance(asked, (int, float)) and asked > 0:
                width = round(float(asked) / CSS_PX_PER_INCH, 2)
            if ctx.cell.options.fig_cap is not None:
                pieces.append(_ImageSlot(path, width))
            else:
                size = f"{{width={width}in}}" if width else ""
                pieces.append(Raw(f"\n![]({path.as_posix()}){size}\n"))
        elif mime == "text/html":
            pieces.append(Raw(fenced(_text(payload), "=html"), html_table="<table" in _text(payload)))
        else:
            text = _text(payload)
            pieces += _markdown_pieces(text, origin) if asis else [Raw(fenced(text, ".cell-output .cell-output-display"))]
    return pieces


def split_metadata_blocks(text: str) -> tuple[str, list[dict[str, Any]]]:
    """Take pandoc YAML metadata blocks out of markdown that a cell printed.

    As in pandoc (and so in Quarto), a block is a line ``---`` at the start or after a blank
    line, not followed by a blank line, closed by ``---`` or ``...``, whose YAML is a mapping.
    A cell sets document metadata this way (a title taken from the study, flags for
    ``when-meta`` conditions).  Read with a safe loader (:func:`.yaml_lines.safe_load`): tags never construct objects.
    """
    lines = text.splitlines()
    kept: list[str] = []
    blocks: list[dict[str, Any]] = []
    i = 0
    while i < len(lines):
        opens = (lines[i].rstrip() == "---" and (i == 0 or not lines[i - 1].strip())
                 and i + 1 < len(lines) and lines[i + 1].strip())
        end = next((j for j in range(i + 1, len(lines)) if lines[j].rstrip() in ("---", "...")), None) if opens else None
        if end is not None:
            try:
                data = safe_load("\n".join(lines[i + 1 : end]))
            except yaml.YAMLError:
                data = None
            if isinstance(data, dict):
                blocks.append(data)
                i = end + 1
                continue
        kept.append(lines[i])
        i += 1
    return "\n".join(kept) + ("\n" if text.endswith("\n") else ""), blocks


def _merge_meta(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge_meta(out[k], v) if isinstance(v, Mapping) and isinstance(out.get(k), Mapping) else v
    return out


def meta_value(meta: Mapping[str, Any], key: str) -> Any:
    """The value of a dotted key (``cl.outcomes``) in nested metadata; None when absent."""
    value: Any = meta
    for part in key.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def _asis(cell: CodeCell, meta: DocumentMeta) -> bool:
    o = cell.options
    return (o.output if o.output is not None else meta.execute.output) == "asis"


def _printed_texts(outputs: tuple[dict[str, Any], ...]) -> Iterator[str]:
    for out in outputs:
        if out.get("output_type") == "stream" and out.get("name") != "stderr":
            yield _text(out.get("text", ""))
        elif out.get("output_type") in ("display_data", "execute_result") and "text/markdown" in out.get("data", {}):
            yield _text(out["data"]["text/markdown"])


def document_metadata(doc: ParsedDocument, meta: DocumentMeta, result: ExecutionResult) -> dict[str, Any]:
    """The metadata the document's cells printed (``output: asis`` YAML blocks), merged in order."""
    merged: dict[str, Any] = {}
    for cell in doc.cells:
        outputs = result.cells.get(cell.index)
        if outputs and _asis(cell, meta):
            for text in _printed_texts(outputs):
                for block in split_metadata_blocks(text)[1]:
                    merged = _merge_meta(merged, block)
    return merged


def _markdown_pieces(text: str, origin: Origin) -> list[Piece]:
    text = split_metadata_blocks(text)[0]
    lines, problems = scan_output_markdown(text, origin)
    if problems:
        raise RenderError(problems)
    return [Raw("\n"), *lines, Raw("\n")]


def _caption(text: str, origin: Origin) -> MdLine:
    lines, problems = scan_output_markdown(text.replace("\n", " "), origin)
    if problems:
        raise RenderError(problems)
    return lines[0] if lines else MdLine("", origin)


def cell_pieces(cell: CodeCell, outputs: tuple[dict[str, Any], ...] | None, meta: DocumentMeta, *, files_dir: Path, echo_default: bool) -> list[Piece]:
    """Everything one cell shows: echoed code, then its outputs (figure or table float)."""
    o, ex = cell.options, meta.execute
    include = o.include if o.include is not None else ex.include
    if not include:
        return []
    echo = o.echo if o.echo is not None else ex.echo if ex.echo is not None else echo_default
    output = o.output if o.output is not None else ex.output
    warnings = o.warning if o.warning is not None else ex.warning
    pieces: list[Piece] = []
    if echo and cell.code.strip():
        attrs = ".python .cell-code"
        if o.code_fold is not None:
            attrs += f' code-fold="{str(o.code_fold).lower()}"'
        if o.code_summary:
            attrs += f' code-summary="{o.code_summary}"'
        pieces.append(Raw(fenced(cell.code, attrs)))
    if output is False or outputs is None:
        return pieces
    ctx = _CellContext(cell, meta, files_dir)
    body = _output_pieces(ctx, outputs, output == "asis", warnings)
    origin = cell.origin
    name = o.label or f"#{cell.index + 1}"
    if o.fig_cap is not None:
        slots = [p for p in body if isinstance(p, _ImageSlot)]
        if len(slots) != 1:
            raise RenderError([SubsetProblem(origin.file, origin.line, f"figure cell '{name}' produced {len(slots)} images; a captioned cell must draw exactly one", "one figure per cell (subfigures are not supported)")])
        figure = FigureFloat(o.label, _caption(o.fig_cap, origin), slots[0].path, slots[0].width_in, origin)
        return pieces + [figure if isinstance(p, _ImageSlot) else p for p in body]
    plain = [p for p in body if not isinstance(p, _ImageSlot)]
    if o.tbl_cap is not None:
        if not any(_is_table(p) for p in plain):
            raise RenderError([SubsetProblem(origin.file, origin.line, f"table cell '{name}' displayed no table", "display a DataFrame or a table object (markdown pipe table or HTML <table>)")])
        return pieces + [TableFloat(o.label, _caption(o.tbl_cap, origin), tuple(plain), origin)]
    return pieces + plain


def _is_table(piece: Piece) -> bool:
    if isinstance(piece, MdLine):
        return bool(re.match(r"^\s*[|+]", piece.text))
    return isinstance(piece, Raw) and piece.html_table


def document_pieces(doc: ParsedDocument, meta: DocumentMeta, result: ExecutionResult, *, files_dir: Path, echo_default: bool) -> list[Piece]:
    """All pieces of the document body, in order.

    A ``when-meta`` / ``unless-meta`` div is decided here, against the front matter merged with
    the metadata the cells printed (as Quarto decides it after execution): hidden content is
    left out before anything is numbered, so a hidden table takes no number and a hidden figure
    cell that drew nothing is no error; shown content loses only the div's own two lines.
    """
    values = _merge_meta(doc.front_matter, document_metadata(doc, meta, result))
    pieces: list[Piece] = []
    stack: list[bool] = []  # per open div: True when its fence lines are dropped (meta condition)
    hidden_depth = 0  # > 0 while inside hidden content: count of divs opened since it began
    for block in doc.blocks:
        if isinstance(block, MdLine) and block.div == "open":
            if hidden_depth:
                hidden_depth += 1
                continue
            if block.condition is not None:
                key, shown_if_true = block.condition
                if bool(meta_value(values, key)) != shown_if_true:
                    hidden_depth = 1
                    continue
            stack.append(block.condition is not None)
            if block.condition is not None:
                continue
        elif isinstance(block, MdLine) and block.div == "close":
            if hidden_depth:
                hidden_depth -= 1
                continue
            if stack and stack.pop():
                continue
        elif hidden_depth:
            continue
        if isinstance(block, CodeCell):
            pieces.append(Raw("\n"))
            pieces += cell_pieces(block, result.cells.get(block.index), meta, files_dir=files_dir, echo_default=echo_default)
            pieces.append(Raw("\n"))
        else:
            pieces.append(block)
    return pieces
