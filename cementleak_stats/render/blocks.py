"""The pieces a parsed ``.qmd`` is made of: origins, markdown lines with what later passes rewrite
(inline expressions, cross-references, headings, figures, captions, divs), cells, documents."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .config import CellOptions
from .problems import SubsetProblem

CROSSREF_KINDS = ("fig", "tbl", "sec")
#: Quarto's other reserved cross-reference prefixes: not supported here.
RESERVED_PREFIXES = ("lst", "tip", "nte", "wrn", "imp", "cau", "thm", "lem", "cor", "prp", "cnj", "def", "exm", "exr", "sol", "rem", "eq")
CALLOUTS = ("note", "tip", "warning", "important", "caution")
FORMAT_WORDS = ("html", "pdf", "typst", "docx", "revealjs")

_ATTR_TOKEN = re.compile(r"\s*(#[\w:.-]+|\.[\w-]+|-(?=\s|$)|[\w-]+=(?:\"[^\"]*\"|'[^']*'|[^\s\"']+))")

#: an element that would load something from the network (checked in sources and in HTML outputs)
EXTERNAL_RESOURCE = re.compile(r"<(script|img|link|iframe|source|video|audio|embed)\b[^>]*\b(src|href|data-src)\s*=\s*[\"']?\s*(https?:)?//", re.I)


@dataclass(frozen=True)
class Origin:
    """Where a line comes from: display path (relative to the project) and 1-based line."""

    file: str
    line: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass(frozen=True)
class Ref:
    """A cross-reference in a markdown line: ``text[start:end]`` is replaced when rendering."""

    labels: tuple[str, ...]
    start: int
    end: int
    suppress_prefix: tuple[bool, ...]


@dataclass(frozen=True)
class Heading:
    level: int
    ident: str | None
    unnumbered: bool
    #: where the heading's text starts (after ``## ``), for inserting a section number
    text_start: int


@dataclass(frozen=True)
class MdLine:
    """One markdown line with everything the later passes rewrite, by position."""

    text: str
    origin: Origin
    #: (start, end, inline index) of each `` `{python} expr` ``
    inlines: tuple[tuple[int, int, int], ...] = ()
    refs: tuple[Ref, ...] = ()
    heading: Heading | None = None
    #: (label, position where the caption text starts) of ``![cap](f){#fig-x}`` / ``: cap {#tbl-x}``
    figure: tuple[str, int] | None = None
    table_caption: tuple[str, int] | None = None
    citations: tuple[str, ...] = ()
    #: "open" / "close" for the lines that open or close a fenced div
    div: str | None = None
    #: (metadata key, shown when the key is true) of a ``when-meta`` / ``unless-meta`` div
    condition: tuple[str, bool] | None = None


@dataclass(frozen=True)
class InlineExpr:
    index: int
    code: str
    origin: Origin


@dataclass(frozen=True)
class CodeCell:
    """A ``{python}`` cell. ``source`` (with its ``#|`` lines) is what the kernel runs, so a
    traceback line ``n`` is file line ``origin.line + n``."""

    index: int
    source: str
    code: str
    options: CellOptions
    origin: Origin


@dataclass(frozen=True)
class ParsedDocument:
    path: Path
    display: str
    front_matter: dict[str, Any]
    blocks: tuple[MdLine | CodeCell, ...]
    inlines: tuple[InlineExpr, ...]
    problems: tuple[SubsetProblem, ...]

    @property
    def cells(self) -> tuple[CodeCell, ...]:
        return tuple(b for b in self.blocks if isinstance(b, CodeCell))


def parse_attrs(text: str) -> tuple[str | None, tuple[str, ...], dict[str, str]] | None:
    """``#id .class key="v"`` -> (id, classes, attributes); ``None`` if it does not parse."""
    ident, classes, kv, pos = None, [], {}, 0
    text = text.strip()
    while pos < len(text):
        m = _ATTR_TOKEN.match(text, pos)
        if not m:
            return None
        tok = m.group(1)
        pos = m.end()
        if tok.startswith("#"):
            ident = tok[1:]
        elif tok.startswith("."):
            classes.append(tok[1:])
        elif tok == "-":
            classes.append("unnumbered")
        else:
            k, v = tok.split("=", 1)
            kv[k] = v[1:-1] if v[:1] in "\"'" else v
    return ident, tuple(classes), kv
