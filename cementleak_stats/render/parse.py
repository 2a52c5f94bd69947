"""Read a ``.qmd`` into cells and annotated markdown lines, rejecting anything outside the subset.

Why a parser of our own rather than ``jupytext.reads(text, fmt="Rmd")``: errors must name the
file *and line* of the offending construct, also inside ``{{< include >}}`` files, and the
engine needs more than cells — inline expressions, fenced divs, heading attributes, figure and
table labels and cross-references, each with its position.  jupytext keeps no line numbers,
does not resolve includes and leaves the markdown opaque, so it would only replace the
easiest 20 lines of this module.

The supported subset (anything else is a :class:`SubsetProblem`):

* YAML front matter (keys validated in :mod:`.config`);
* ```` ```{python} ```` cells at column 0 with leading ``#| key: value`` options;
  ordinary fenced code blocks (```` ```python ````, ```` ```{.python} ````) and raw blocks
  (```` ```{=html} ````) are shown, not run;
* inline `` `{python} expr` ``;
* ``{{< include path >}}`` alone on a line (relative to the main document, as in Quarto, or to the project
  root with a leading ``/``), recursively, cycles rejected;
* fenced divs: callouts (``.callout-note|tip|warning|important|caution`` with an optional
  ``title="..."`` or a first-line heading as title), ``.content-visible`` /
  ``.content-hidden`` with ``when-format`` / ``unless-format`` or ``when-meta`` /
  ``unless-meta`` (a dotted key of the document's metadata, which a cell may set by printing
  a YAML metadata block with ``output: asis``), and ``.notes`` (slides);
* headings with ``{#sec-x}`` / ``{#any-id}`` / ``{.unnumbered}``; images ``![cap](file){#fig-x}``
  alone on a line; table captions ``: cap {#tbl-x}`` next to a pipe or grid table;
* references ``@fig-x``, ``@tbl-x``, ``@sec-x``, ``[@fig-x]``, ``-@fig-x``; citations ``@key``
  only with a ``bibliography``.

The parts: :mod:`.blocks` (what a parsed document is made of), :mod:`.scanner` (what spans lines:
fences, cells, divs, comments), :mod:`.markdown` (what one line says); this module reads a
document with its includes and checks its labels and cross-references.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from .blocks import (CALLOUTS, CROSSREF_KINDS, EXTERNAL_RESOURCE, FORMAT_WORDS, RESERVED_PREFIXES, CodeCell, Heading,
                     InlineExpr, MdLine, Origin, ParsedDocument, Ref, parse_attrs)
from .config import check_metadata
from .problems import SubsetProblem, display_path
from .scanner import MarkdownScanner
from .yaml_lines import load_yaml

__all__ = [
    "CALLOUTS", "CROSSREF_KINDS", "EXTERNAL_RESOURCE", "FORMAT_WORDS", "RESERVED_PREFIXES", "CodeCell", "Heading",
    "InlineExpr", "MarkdownScanner", "MdLine", "Origin", "ParsedDocument", "Ref", "definitions", "find_project_root",
    "parse_attrs", "parse_document", "scan_output_markdown", "static_problems",
]

_INCLUDE = re.compile(r"^\{\{<\s*include\s+(?P<path>\S+?)\s*>\}\}\s*$")


def find_project_root(path: Path) -> Path:
    """The nearest directory at or above ``path`` holding ``_quarto.yml`` (else its directory)."""
    start = path.resolve().parent
    for d in (start, *start.parents):
        if (d / "_quarto.yml").exists():
            return d
    return start


def _split_front_matter(lines: list[str]) -> tuple[str, int] | None:
    """(YAML text, number of lines it occupies including delimiters), or None."""
    if not lines or lines[0].rstrip() != "---":
        return None
    for i in range(1, len(lines)):
        if lines[i].rstrip() in ("---", "..."):
            return "\n".join(lines[1:i]), i + 1
    return None


def parse_document(path: Path, *, root: Path | None = None) -> ParsedDocument:
    """Read ``path`` (with its includes) into cells and annotated lines; collect every problem.

    Nothing is executed.  Problems are returned, not raised, so that :func:`check_document`
    can report all of them at once.
    """
    path = path.resolve()
    root = (root or find_project_root(path)).resolve()
    display = display_path(path, root)
    scanner = MarkdownScanner(cells=True, inline=True, main_dir=path.parent)
    problems: list[SubsetProblem] = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        return ParsedDocument(path, display, {}, (), (), (SubsetProblem(display, None, f"cannot read the document: {exc}"),))
    front: dict[str, Any] = {}
    skip = 0
    fm = _split_front_matter(lines)
    if fm is not None:
        yaml_text, skip = fm
        front, yproblems = load_yaml(yaml_text, file=display, first_line=2)
        problems += yproblems
        if not yproblems:
            problems += check_metadata(front, file=display, yaml_text=yaml_text, first_line=2)
            if "`{python}" in yaml_text:
                problems.append(SubsetProblem(display, 2, "inline `{python}` code in the front matter is not evaluated (as in Quarto)"))
    elif lines and lines[0].rstrip() == "---":
        problems.append(SubsetProblem(display, 1, "front matter is never closed", "end it with a line '---'"))

    def feed_file(p: Path, file_lines: list[str], first: int, chain: tuple[Path, ...]) -> None:
        disp = display_path(p, root)
        for offset, text in enumerate(file_lines):
            origin = Origin(disp, first + offset)
            inc = _INCLUDE.match(text.strip()) if scanner._fence is None else None
            if inc is None:
                scanner.feed(text, origin)
                continue
            target_s = inc.group("path")
            # as in Quarto: a relative path is relative to the main document, also inside an
            # included file (quarto.org/docs/authoring/includes); "/..." is relative to the project
            target = (root / target_s.lstrip("/")) if target_s.startswith("/") else (path.parent / target_s)
            target = target.resolve()
            if target in chain or target == p:
                cycle = " -> ".join(display_path(c, root) for c in (*chain, p, target))
                scanner.problem(origin, f"include cycle: {cycle}")
                continue
            try:
                inc_lines = target.read_text(encoding="utf-8").splitlines()
            except (OSError, UnicodeDecodeError):
                scanner.problem(origin, f"included file '{target_s}' does not exist or cannot be read", "paths are relative to the main document (as in Quarto), or to the project with a leading /")
                continue
            if _split_front_matter(inc_lines) is not None:
                scanner.problem(Origin(display_path(target, root), 1), "an included file cannot have front matter")
                continue
            feed_file(target, inc_lines, 1, (*chain, p))

    feed_file(path, lines[skip:], skip + 1, ())
    scanner.finish()
    problems += scanner.problems
    problems += _label_problems(scanner.blocks)
    return ParsedDocument(path, display, front, tuple(scanner.blocks), tuple(scanner.inlines), tuple(problems))


def scan_output_markdown(text: str, origin: Origin) -> tuple[list[MdLine], list[SubsetProblem]]:
    """Scan markdown printed by a cell (all of it attributed to the cell's line)."""
    scanner = MarkdownScanner(cells=False, inline=False)
    for line in text.splitlines():
        scanner.feed(line, origin)
    scanner.finish()
    return [b for b in scanner.blocks if isinstance(b, MdLine)], scanner.problems


def definitions(blocks: tuple[MdLine | CodeCell, ...] | list[MdLine | CodeCell]) -> list[tuple[str, Origin]]:
    """Every label defined by the document text (cells, figures, table captions, headings)."""
    out = []
    for b in blocks:
        if isinstance(b, CodeCell):
            if b.options.label:
                out.append((b.options.label, b.origin))
        else:
            for lbl in (b.figure and b.figure[0], b.table_caption and b.table_caption[0], b.heading and b.heading.ident):
                if lbl:
                    out.append((lbl, b.origin))
    return out


def _label_problems(blocks: list[MdLine | CodeCell]) -> list[SubsetProblem]:
    seen: dict[str, Origin] = {}
    problems = []
    for label, origin in definitions(blocks):
        if label in seen:
            problems.append(SubsetProblem(origin.file, origin.line, f"label '{label}' is defined twice (first at {seen[label]})"))
        else:
            seen[label] = origin
    return problems


def static_problems(doc: ParsedDocument, *, number_sections: bool, has_bibliography: bool) -> list[SubsetProblem]:
    """Cross-reference and citation problems visible without executing the document."""
    defined = {label: origin for label, origin in definitions(doc.blocks)}
    problems = []
    for b in doc.blocks:
        if not isinstance(b, MdLine):
            continue
        for ref in b.refs:
            for label in ref.labels:
                if label not in defined:
                    problems.append(SubsetProblem(b.origin.file, b.origin.line, f"unresolved cross-reference '@{label}'", "define the label (cell label, {#fig-...}, {#tbl-...} or {#sec-...})"))
                elif label.startswith("sec-") and not number_sections:
                    problems.append(SubsetProblem(b.origin.file, b.origin.line, f"'@{label}' needs numbered sections", "set 'number-sections: true' (as Quarto requires for section references)"))
        if b.citations and not has_bibliography:
            problems.append(SubsetProblem(b.origin.file, b.origin.line, f"citation '@{b.citations[0]}' but no bibliography", "add 'bibliography: refs.bib' or escape the @ as \\@"))
    return problems

