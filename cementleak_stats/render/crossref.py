"""Number figures, tables and sections like Quarto, resolve ``@`` references, write markdown.

Numbering (document order, after execution so that markdown printed by cells counts):
figures ``Figure 1, 2, ...`` and tables ``Table 1, 2, ...`` across the document; sections
``1, 1.1, 2, ...`` with the shallowest heading level present as the top level (Quarto numbers
a document whose top headings are ``##`` as ``0.1``; we start at ``1``, which is what such
documents mean).  Headings with ``.unnumbered`` are skipped.

Captions become ``Figure 1: caption`` / ``Table 1: caption`` and references become links
(``[Figure 1](#fig-x)``), written into the markdown itself, so that every writer (HTML,
DOCX, Typst, reveal.js) shows the same numbers without a cross-reference filter of its own.
``-@fig-x`` gives the number alone; ``[@fig-x; @fig-y]`` gives ``Figure 1, Figure 2``.
An unresolved reference is an error naming its file and line: no ``??`` is ever written.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .assemble import FigureFloat, Piece, Raw, TableFloat
from .parse import MdLine, Ref
from .problems import RenderError, SubsetProblem

PREFIX = {"fig": "Figure", "tbl": "Table", "sec": "Section"}
#: the words of other document languages (``lang:``), as Quarto's language files have them
#: (``crossref-fig-title``, ``crossref-tbl-title``, ``crossref-sec-prefix``)
PREFIXES: dict[str, dict[str, str]] = {"en": PREFIX, "zh": {"fig": "图", "tbl": "表", "sec": "小节"}}


def prefixes(lang: str) -> dict[str, str]:
    """Reference words of a document language ('zh-CN' as 'zh'; English for others)."""
    return PREFIXES.get(lang, PREFIXES.get(lang.split("-")[0], PREFIX))


@dataclass(frozen=True)
class Numbering:
    """label -> number ("2", "1.3") and the number of each numbered heading by piece position."""

    labels: dict[str, str]
    headings: dict[int, str]


def _walk(pieces: Sequence[Piece]) -> list[Piece]:
    out: list[Piece] = []
    for p in pieces:
        out.append(p)
        if isinstance(p, TableFloat):
            out += _walk(p.content)
    return out


def number(pieces: Sequence[Piece], *, number_sections: bool) -> Numbering:
    """Assign numbers in document order; duplicate labels are an error."""
    flat = _walk(pieces)
    levels = [p.heading.level for p in flat if isinstance(p, MdLine) and p.heading is not None]
    top = min(levels, default=1)
    labels: dict[str, str] = {}
    headings: dict[int, str] = {}
    counts = {"fig": 0, "tbl": 0}
    sections = [0] * 6
    problems: list[SubsetProblem] = []

    def define(label: str | None, value: str, origin_piece: Piece) -> None:
        if not label:
            return
        if label in labels:
            o = origin_piece.origin  # type: ignore[union-attr]
            problems.append(SubsetProblem(o.file, o.line, f"label '{label}' is defined twice"))
        labels[label] = value

    for p in flat:
        if isinstance(p, FigureFloat) and p.label:
            counts["fig"] += 1
            define(p.label, str(counts["fig"]), p)
        elif isinstance(p, TableFloat) and p.label:
            counts["tbl"] += 1
            define(p.label, str(counts["tbl"]), p)
        elif isinstance(p, MdLine):
            if p.figure:
                counts["fig"] += 1
                define(p.figure[0], str(counts["fig"]), p)
            if p.table_caption:
                counts["tbl"] += 1
                define(p.table_caption[0], str(counts["tbl"]), p)
            h = p.heading
            if h is not None and not h.unnumbered:
                depth = h.level - top
                sections[depth] += 1
                sections[depth + 1 :] = [0] * (5 - depth)
                num = ".".join(str(n) for n in sections[: depth + 1])
                headings[id(p)] = num
                define(h.ident, num if number_sections else "", p)
            elif h is not None:
                define(h.ident, "", p)
    if problems:
        raise RenderError(problems)
    return Numbering(labels, headings)


def _ref_text(ref: Ref, numbering: Numbering, line: MdLine, problems: list[SubsetProblem], words: dict[str, str]) -> str:
    parts = []
    for label, bare in zip(ref.labels, ref.suppress_prefix):
        kind = label.split("-", 1)[0]
        num = numbering.labels.get(label)
        if num is None:
            problems.append(SubsetProblem(line.origin.file, line.origin.line, f"unresolved cross-reference '@{label}'", "define the label (cell label, {#fig-...}, {#tbl-...} or {#sec-...})"))
            continue
        if num == "":
            problems.append(SubsetProblem(line.origin.file, line.origin.line, f"'@{label}' points at an unnumbered section", "set 'number-sections: true' and do not mark the heading .unnumbered"))
            continue
        text = num if bare else f"{words[kind]} {num}"
        parts.append(f"[{text}](#{label})")
    return ", ".join(parts)


def render_line(line: MdLine, numbering: Numbering, inline_values: dict[int, str], *, number_sections: bool, problems: list[SubsetProblem],
                words: dict[str, str] = PREFIX) -> str:
    """The line with inline values, reference links, caption prefixes and section numbers."""
    edits: list[tuple[int, int, str]] = []
    for start, end, idx in line.inlines:
        edits.append((start, end, inline_values.get(idx, "")))
    for ref in line.refs:
        edits.append((ref.start, ref.end, _ref_text(ref, numbering, line, problems, words)))
    if line.figure:
        edits.append((line.figure[1], line.figure[1], f"{words['fig']} {numbering.labels[line.figure[0]]}: "))
    if line.table_caption:
        edits.append((line.table_caption[1], line.table_caption[1], f"{words['tbl']} {numbering.labels[line.table_caption[0]]}: "))
    if number_sections and id(line) in numbering.headings:
        start = line.heading.text_start  # type: ignore[union-attr]
        edits.append((start, start, f"[{numbering.headings[id(line)]}]{{.header-section-number}} "))
    text = line.text
    for start, end, new in sorted(edits, key=lambda e: (e[0], e[1]), reverse=True):
        text = text[:start] + new + text[end:]
    return text


def _caption_text(kind: str, label: str | None, caption: MdLine, numbering: Numbering, render: Callable[[MdLine], str],
                  words: dict[str, str] = PREFIX) -> str:
    body = render(caption)
    return f"{words[kind]} {numbering.labels[label]}: {body}" if label else body


def to_markdown(pieces: Sequence[Piece], numbering: Numbering, inline_values: dict[int, str], *, number_sections: bool,
                lang: str = "en") -> str:
    """The document body as pandoc markdown; raise :class:`RenderError` on unresolved references.

    ``lang``: the document's language, for the words of captions and references ('Figure 1',
    '图 1')."""
    problems: list[SubsetProblem] = []
    words = prefixes(lang)

    def render(line: MdLine) -> str:
        return render_line(line, numbering, inline_values, number_sections=number_sections, problems=problems, words=words)

    def write(seq: Sequence[Piece]) -> list[str]:
        out: list[str] = []
        for p in seq:
            if isinstance(p, MdLine):
                out.append(render(p) + "\n")
            elif isinstance(p, Raw):
                out.append(p.text)
            elif isinstance(p, FigureFloat):
                caption = _caption_text("fig", p.label, p.caption, numbering, render, words)
                attrs = " ".join(filter(None, [f"#{p.label}" if p.label else "", f"width={p.width_in}in" if p.width_in else ""]))
                out.append(f"\n![{caption}]({p.image.as_posix()}){{{attrs}}}\n\n" if attrs else f"\n![{caption}]({p.image.as_posix()})\n\n")
            else:
                caption = _caption_text("tbl", p.label, p.caption, numbering, render, words)
                ident = f"#{p.label} " if p.label else ""
                origin = f'data-origin="{p.origin}"'
                out.append(f"\n::::: {{{ident}.cl-table {origin}}}\n{caption}\n\n")
                out += write(p.content)
                out.append("\n:::::\n\n")
        return out

    text = "".join(write(pieces))
    if problems:
        raise RenderError(problems)
    return text
