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
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from .config import CellOptions, check_metadata, key_lines, load_yaml, pydantic_problems
from .problems import SubsetProblem, display_path

CROSSREF_KINDS = ("fig", "tbl", "sec")
#: Quarto's other reserved cross-reference prefixes: not supported here.
RESERVED_PREFIXES = ("lst", "tip", "nte", "wrn", "imp", "cau", "thm", "lem", "cor", "prp", "cnj", "def", "exm", "exr", "sol", "rem", "eq")
CALLOUTS = ("note", "tip", "warning", "important", "caution")
FORMAT_WORDS = ("html", "pdf", "typst", "docx", "revealjs")

_FENCE = re.compile(r"^(?P<indent>\s*)(?P<fence>`{3,}|~{3,})\s*(?P<info>[^`]*?)\s*$")
_EXEC_INFO = re.compile(r"^\{\{?\s*(?P<lang>[A-Za-z][\w.-]*)")
_INCLUDE = re.compile(r"^\{\{<\s*include\s+(?P<path>\S+?)\s*>\}\}\s*$")
_CODE_SPAN = re.compile(r"(?<!`)(?P<ticks>`+)(?!`)(?P<body>.+?)(?<!`)(?P=ticks)(?!`)")
_INLINE_EXPR = re.compile(r"^\{(?P<lang>[^{}\s]+)\}\s+(?P<expr>.+)$")
_DIV_OPEN = re.compile(r"^(?P<colons>:{3,})\s*(?P<rest>[^:\s].*?)\s*:*\s*$")
_DIV_CLOSE = re.compile(r"^:{3,}\s*$")
_HEADING = re.compile(r"^(?P<hashes>#{1,6})[ \t]+(?P<body>.*?)[ \t]*$")
_TRAILING_ATTRS = re.compile(r"\s*\{(?P<attrs>[^{}]*)\}\s*$")
_IMAGE = re.compile(
    r"!\[(?P<alt>(?:[^\[\]]|\[[^\]]*\])*)\]\((?P<src>[^)\s]+)(?:\s+\"[^\"]*\")?\)(?:\{(?P<attrs>[^{}]*)\})?"
)
_CAPTION = re.compile(r"^(?P<lead>:|Table:)\s+(?P<cap>.*?)\s*\{(?P<attrs>[^{}]*#tbl-[^{}]*)\}\s*$")
_TABLE_ROW = re.compile(r"^\s*[|+]")
_REF = re.compile(r"(?<![\w@\\])(?P<neg>-?)@(?P<label>[A-Za-z0-9_][\w:.#$%&+?<>~/-]*\w)")
_BRACKET_REF = re.compile(r"\[\s*(?P<refs>-?@[A-Za-z][\w-]*\w(?:\s*;\s*-?@[A-Za-z][\w-]*\w)*)\s*\]")
_ATTR_TOKEN = re.compile(r"\s*(#[\w:.-]+|\.[\w-]+|-(?=\s|$)|[\w-]+=(?:\"[^\"]*\"|'[^']*'|[^\s\"']+))")
#: an element that would load something from the network (checked in sources and in HTML outputs)
EXTERNAL_RESOURCE = re.compile(r"<(script|img|link|iframe|source|video|audio|embed)\b[^>]*\b(src|href|data-src)\s*=\s*[\"']?\s*(https?:)?//", re.I)
_RESERVED_ID = re.compile(r"#(" + "|".join(RESERVED_PREFIXES) + r")-[\w-]", re.I)
_OPTION_LINE = re.compile(r"^#\|\s?(?P<yaml>.*)$")


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


@dataclass
class _Div:
    kind: str
    origin: Origin
    #: index in the line list of the opening line (callouts: to add a title from a heading)
    open_index: int
    seen_content: bool = False


@dataclass
class _Fence:
    char: str
    length: int
    is_cell: bool
    origin: Origin
    lines: list[str] = field(default_factory=list)


class MarkdownScanner:
    """Line-by-line scanner shared by documents and by markdown that cells print.

    Parameters
    ----------
    cells
        Whether ```` ```{python} ```` fences are cells (documents) or plain code (cell output).
    inline
        Whether `` `{python} expr` `` is evaluated (documents) or left as code (cell output).
    """

    def __init__(self, *, cells: bool, inline: bool, main_dir: Path | None = None) -> None:
        self.allow_cells = cells
        self.allow_inline = inline
        self.main_dir = main_dir
        self.blocks: list[MdLine | CodeCell] = []
        self.inlines: list[InlineExpr] = []
        self.problems: list[SubsetProblem] = []
        self._fence: _Fence | None = None
        self._divs: list[_Div] = []
        self._comment = False
        self._n_cells = 0

    # -- helpers ---------------------------------------------------------------------------
    def problem(self, origin: Origin, rule: str, fix: str = "") -> None:
        self.problems.append(SubsetProblem(origin.file, origin.line, rule, fix))

    def feed(self, text: str, origin: Origin) -> None:
        """Feed one line."""
        text = text.rstrip("\r\n")
        if self._fence is not None:
            self._in_fence(text, origin)
            return
        m = _FENCE.match(text)
        if m and not self._comment:
            self._open_fence(m, text, origin)
            return
        self.blocks.append(self._markdown(text, origin))

    def finish(self) -> None:
        """Report what is left open at the end of the text."""
        if self._fence is not None:
            what = "```{python} cell" if self._fence.is_cell else "code block"
            self.problem(self._fence.origin, f"{what} is never closed", f"add a closing {self._fence.char * self._fence.length}")
            self._fence = None
        for div in self._divs:
            self.problem(div.origin, "fenced div ':::' is never closed", "add a line ':::' after its content")
        self._divs.clear()

    # -- fences and cells -------------------------------------------------------------------
    def _open_fence(self, m: re.Match[str], text: str, origin: Origin) -> None:
        info = m.group("info")
        fence = _Fence(m.group("fence")[0], len(m.group("fence")), False, origin)
        exe = _EXEC_INFO.match(info) if info.startswith("{") else None
        if exe:
            lang = exe.group("lang")
            if info.startswith("{{"):
                self.problem(origin, f"escaped cell '{info}' is not supported", "show code with a plain ```python block")
            elif lang != "python":
                self.problem(origin, f"'{{{lang}}}' cells are not supported: only {{python}} cells run", "rewrite the cell in Python")
            elif info.replace(" ", "") != "{python}":
                self.problem(origin, f"cell options in the fence '{info}' are not supported", "write them as '#| key: value' lines")
            elif m.group("indent"):
                self.problem(origin, "a {python} cell must start at column 0")
            elif not self.allow_cells:
                pass  # printed by a cell: shown as code
            else:
                fence.is_cell = True
        self._fence = fence
        self._note_content()
        if not fence.is_cell:
            self.blocks.append(MdLine(text, origin))

    def _in_fence(self, text: str, origin: Origin) -> None:
        fence = self._fence
        assert fence is not None
        close = re.match(r"^\s*(`{3,}|~{3,})\s*$", text)
        if close and close.group(1)[0] == fence.char and len(close.group(1)) >= fence.length:
            self._fence = None
            if fence.is_cell:
                self._make_cell(fence)
            else:
                self.blocks.append(MdLine(text, origin))
            return
        if fence.is_cell:
            fence.lines.append(text)
        else:
            self.blocks.append(MdLine(text, origin))

    def _make_cell(self, fence: _Fence) -> None:
        opt_lines = []
        for line in fence.lines:
            om = _OPTION_LINE.match(line)
            if not om:
                break
            opt_lines.append(om.group("yaml"))
        yaml_text = "\n".join(opt_lines)
        first = fence.origin.line + 1
        data, problems = load_yaml(yaml_text, file=fence.origin.file, first_line=first)
        self.problems.extend(problems)
        try:
            options = CellOptions.model_validate(data)
        except ValidationError as exc:
            self.problems.extend(pydantic_problems(exc, file=fence.origin.file, lines=key_lines(yaml_text, first_line=first), default_line=first))
            # keep the valid options, so that the checks below still run
            bad = {e["loc"][0] for e in exc.errors() if e["loc"]}
            options = CellOptions.model_validate({k: v for k, v in data.items() if k not in bad})
        self._check_cell_options(options, fence.origin)
        source = "\n".join(fence.lines)
        code = "\n".join(fence.lines[len(opt_lines):]).strip("\n")
        self.blocks.append(CodeCell(self._n_cells, source, code, options, fence.origin))
        self._n_cells += 1

    def _check_cell_options(self, o: CellOptions, origin: Origin) -> None:
        label = o.label or ""
        prefix = label.split("-", 1)[0] if "-" in label else ""
        if prefix in RESERVED_PREFIXES:
            self.problem(origin, f"label '{label}': '{prefix}-' cross-references are not supported", "use fig-, tbl- or a label without a reserved prefix")
        if o.fig_cap is not None and o.tbl_cap is not None:
            self.problem(origin, "a cell cannot have both fig-cap and tbl-cap")
        if prefix == "fig" and o.fig_cap is None:
            self.problem(origin, f"label '{label}' needs a 'fig-cap' to be a numbered figure")
        if prefix == "tbl" and o.tbl_cap is None:
            self.problem(origin, f"label '{label}' needs a 'tbl-cap' to be a numbered table")
        if o.fig_cap is not None and label and prefix != "fig":
            self.problem(origin, f"a captioned figure's label must start with 'fig-' (got '{label}')")
        if o.tbl_cap is not None and label and prefix != "tbl":
            self.problem(origin, f"a captioned table's label must start with 'tbl-' (got '{label}')")

    # -- markdown ----------------------------------------------------------------------------
    def _note_content(self) -> None:
        for div in self._divs:
            div.seen_content = True

    def _strip_comments(self, text: str) -> str:
        out, pos = [], 0
        while pos < len(text):
            if self._comment:
                end = text.find("-->", pos)
                if end < 0:
                    out.append(" " * (len(text) - pos))
                    return "".join(out)
                out.append(" " * (end + 3 - pos))
                pos = end + 3
                self._comment = False
            else:
                start = text.find("<!--", pos)
                if start < 0:
                    out.append(text[pos:])
                    break
                out.append(text[pos:start])
                pos = start
                self._comment = True
        return "".join(out)

    def _markdown(self, text: str, origin: Origin) -> MdLine:
        visible = self._strip_comments(text)
        if not visible.strip():
            return MdLine(text, origin)
        # inline code: `{python} expr` is evaluated, other code is masked from later scans
        inlines: list[tuple[int, int, int]] = []
        masked = visible
        for m in _CODE_SPAN.finditer(visible):
            body = m.group("body").strip()
            im = _INLINE_EXPR.match(body)
            if body.startswith("{{") and re.match(r"^\{\{\w+\}\}", body):
                self.problem(origin, f"escaped inline code '{body}' is not supported")
            elif im and re.fullmatch(r"[A-Za-z][\w.-]*", im.group("lang")):
                if im.group("lang") != "python":
                    self.problem(origin, f"inline '{{{im.group('lang')}}}' code is not supported: only `{{python}} expr`")
                elif self.allow_inline:
                    idx = len(self.inlines)
                    self.inlines.append(InlineExpr(idx, im.group("expr").strip(), origin))
                    inlines.append((m.start(), m.end(), idx))
            masked = masked[: m.start()] + " " * (m.end() - m.start()) + masked[m.end() :]
        if "{{<" in masked or "{{%" in masked:
            if re.search(r"\{\{<\s*include\b", masked):
                self.problem(origin, "an include shortcode must stand alone on its line")
            else:
                sc = re.search(r"\{\{[<%]\s*([\w-]*)", masked)
                self.problem(origin, f"shortcode '{sc.group(1) if sc else ''}' is not supported (only include)")
        if EXTERNAL_RESOURCE.search(masked):
            self.problem(origin, "raw HTML loads an external resource (script/link/img/...)", "outputs must be self-contained; embed the resource")
        reserved = _RESERVED_ID.search(masked)
        if reserved:
            self.problem(origin, f"'#{reserved.group(1)}-' cross-reference targets are not supported", "only fig-, tbl- and sec- are")
        stripped = masked.strip()
        if _DIV_CLOSE.match(stripped):
            if not self._divs:
                self.problem(origin, "':::' closes a fenced div that was never opened")
            else:
                self._divs.pop()
            return MdLine(text, origin, div="close")
        dm = _DIV_OPEN.match(stripped)
        if dm:
            return self._open_div(dm.group("rest"), text, origin)
        line = MdLine(text, origin, inlines=tuple(inlines))
        hm = _HEADING.match(masked)
        if hm:
            line = self._heading(hm, line)
            if line is None:
                return MdLine("", origin)
        else:
            self._note_content()
        line = self._figure_or_caption(masked, line)
        return self._refs(masked, line)

    def _open_div(self, rest: str, text: str, origin: Origin) -> MdLine:
        attrs = parse_attrs(rest[1:-1]) if rest.startswith("{") and rest.endswith("}") else parse_attrs("." + rest) if re.fullmatch(r"[\w-]+", rest) else None
        self._note_content()
        if attrs is None:
            self.problem(origin, f"cannot read the div attributes '{rest}'")
            self._divs.append(_Div("unknown", origin, len(self.blocks)))
            return MdLine(text, origin, div="open")
        ident, classes, kv = attrs
        kind = "unknown"
        condition = None
        callouts = [c for c in classes if c.startswith("callout-")]
        if ident:
            self.problem(origin, f"fenced div with an id '#{ident}' is not supported", "figures come from cells or images, tables from cells or captions")
        elif callouts:
            kind = "callout"
            name = callouts[0][len("callout-") :]
            extra = [c for c in classes if c != callouts[0]]
            if name not in CALLOUTS or len(callouts) > 1 or extra:
                self.problem(origin, f"callout classes {list(classes)} are not supported", f"use one of .callout-{', .callout-'.join(CALLOUTS)}")
            for k in kv:
                if k != "title":
                    self.problem(origin, f"callout attribute '{k}' is not supported (only title)")
        elif classes in (("content-visible",), ("content-hidden",)):
            kind = "conditional"
            keys = set(kv)
            if len(keys) != 1 or not keys <= {"when-format", "unless-format", "when-meta", "unless-meta"}:
                self.problem(origin, f"{classes[0]} needs exactly one of when-format=, unless-format=, when-meta= or unless-meta= (got {sorted(keys)})")
            for k, v in kv.items():
                if k.endswith("-format") and v not in FORMAT_WORDS:
                    self.problem(origin, f"unknown format '{v}' in {classes[0]}", f"use one of {', '.join(FORMAT_WORDS)}")
                if k.endswith("-meta"):
                    if not re.fullmatch(r"[A-Za-z_][\w-]*(\.[A-Za-z_][\w-]*)*", v):
                        self.problem(origin, f"'{v}' in {classes[0]} is not a metadata key", "write a key such as cl.outcomes")
                    # shown when the key is true: content-visible when-meta, content-hidden unless-meta
                    condition = (v, (classes[0] == "content-visible") == (k == "when-meta"))
        elif classes == ("notes",) and not kv:
            kind = "notes"
        else:
            self.problem(origin, f"fenced div {{{rest.strip('{}')}}} is not supported", "supported: callouts, .content-visible/.content-hidden, .notes")
        self._divs.append(_Div(kind, origin, len(self.blocks)))
        return MdLine(text, origin, div="open", condition=condition)

    def _heading(self, hm: re.Match[str], line: MdLine) -> MdLine | None:
        origin = line.origin
        body = hm.group("body")
        level = len(hm.group("hashes"))
        ident, classes = None, ()
        am = _TRAILING_ATTRS.search(body)
        if am:
            parsed = parse_attrs(am.group("attrs"))
            if parsed is None:
                self.problem(origin, f"cannot read the heading attributes '{{{am.group('attrs')}}}'")
            else:
                ident, classes, kv = parsed
                bad = [c for c in classes if c != "unnumbered"] + list(kv)
                if bad:
                    self.problem(origin, f"heading attributes {bad} are not supported (only #id and .unnumbered)")
                if ident and ident.split("-", 1)[0] in ("fig", "tbl"):
                    self.problem(origin, f"a heading cannot carry the figure/table label '#{ident}'", "sections use #sec-...")
        callout = next((d for d in reversed(self._divs) if d.kind == "callout"), None)
        if callout is not None:
            if callout.seen_content:
                self.problem(origin, "a heading inside a callout is only supported as its first line (the title)")
                return line
            # Quarto: a heading that opens a callout is its title
            title = body[: am.start()] if am else body
            opener = self.blocks[callout.open_index]
            assert isinstance(opener, MdLine)
            self.blocks[callout.open_index] = replace(opener, text=_with_title(opener.text, title.strip()))
            callout.seen_content = True
            return None
        self._note_content()
        return replace(line, heading=Heading(level, ident, "unnumbered" in classes, hm.start("body")))

    def _figure_or_caption(self, masked: str, line: MdLine) -> MdLine:
        origin = line.origin
        for im in _IMAGE.finditer(masked):
            src = im.group("src")
            if re.match(r"^(https?:)?//", src):
                self.problem(origin, f"image '{src}' is an external URL", "save the image in the project and link the file")
                continue
            if self.main_dir is not None and not src.startswith("data:") and not (self.main_dir / src).exists():
                self.problem(origin, f"image file '{src}' does not exist", "paths are relative to the rendered document")
            attrs = parse_attrs(im.group("attrs") or "")
            if attrs is None:
                self.problem(origin, f"cannot read the image attributes '{{{im.group('attrs')}}}'")
                continue
            ident, classes, kv = attrs
            bad = list(classes) + [k for k in kv if k not in ("width", "height")]
            if bad:
                self.problem(origin, f"image attributes {bad} are not supported (only #fig-id, width, height)")
            if ident and ident.startswith("fig-"):
                if masked.strip() != im.group(0):
                    self.problem(origin, f"figure '{ident}' must stand alone on its line (a paragraph of its own)")
                line = replace(line, figure=(ident, im.start("alt")))
            elif ident:
                self.problem(origin, f"an image id must start with 'fig-' (got '{ident}')")
        cm = _CAPTION.match(masked)
        if cm:
            parsed = parse_attrs(cm.group("attrs"))
            if parsed is None or not (parsed[0] or "").startswith("tbl-") or parsed[1] or parsed[2]:
                self.problem(origin, f"table caption attributes '{{{cm.group('attrs')}}}' are not supported (only #tbl-id)")
            else:
                line = replace(line, table_caption=(parsed[0], cm.start("cap")))  # type: ignore[arg-type]
        return line

    def _refs(self, masked: str, line: MdLine) -> MdLine:
        refs: list[Ref] = []
        cites: list[str] = []
        taken: list[tuple[int, int]] = []
        for bm in _BRACKET_REF.finditer(masked):
            items = [s.strip() for s in bm.group("refs").split(";")]
            labels = tuple(s.lstrip("-@") for s in items)
            if all(lbl.split("-", 1)[0] in CROSSREF_KINDS for lbl in labels):
                refs.append(Ref(labels, bm.start(), bm.end(), tuple(s.startswith("-") for s in items)))
                taken.append((bm.start(), bm.end()))
        for rm in _REF.finditer(masked):
            if any(a <= rm.start() < b for a, b in taken):
                continue
            label = rm.group("label")
            prefix = label.split("-", 1)[0] if "-" in label else ""
            if prefix in CROSSREF_KINDS:
                refs.append(Ref((label,), rm.start(), rm.end(), (rm.group("neg") == "-",)))
            elif prefix in RESERVED_PREFIXES:
                self.problem(line.origin, f"'@{label}': '{prefix}-' cross-references are not supported", "only fig-, tbl- and sec- are")
            else:
                cites.append(label)
        refs.sort(key=lambda r: r.start)
        return replace(line, refs=tuple(refs), citations=tuple(cites))


def _with_title(open_line: str, title: str) -> str:
    """Add ``title="..."`` to a callout's opening line (title taken from its first heading)."""
    colons = re.match(r"^\s*:+", open_line).group(0)  # type: ignore[union-attr]
    rest = open_line[len(colons) :].strip()
    attrs = rest[1:-1] if rest.startswith("{") else "." + rest
    safe = title.replace('"', "'")
    return f'{colons} {{{attrs} title="{safe}"}}'


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

