"""The line-by-line scanner of ``.qmd`` text: it keeps what spans lines (code fences and cells,
fenced divs, HTML comments) and leaves what one line says to :mod:`.markdown`."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from pathlib import Path

from .blocks import CodeCell, Heading, InlineExpr, MdLine, Origin
from .markdown import (construct_problems, div_kind, figure_or_caption, heading_attributes, make_cell, mask_code,
                       refs_and_citations, with_title)
from .problems import SubsetProblem

_FENCE = re.compile(r"^(?P<indent>\s*)(?P<fence>`{3,}|~{3,})\s*(?P<info>[^`]*?)\s*$")
_EXEC_INFO = re.compile(r"^\{\{?\s*(?P<lang>[A-Za-z][\w.-]*)")
_DIV_OPEN = re.compile(r"^(?P<colons>:{3,})\s*(?P<rest>[^:\s].*?)\s*:*\s*$")
_DIV_CLOSE = re.compile(r"^:{3,}\s*$")
_HEADING = re.compile(r"^(?P<hashes>#{1,6})[ \t]+(?P<body>.*?)[ \t]*$")


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
                cell, problems = make_cell(self._n_cells, fence.origin, fence.lines)
                self.blocks.append(cell)
                self.problems.extend(problems)
                self._n_cells += 1
            else:
                self.blocks.append(MdLine(text, origin))
            return
        if fence.is_cell:
            fence.lines.append(text)
        else:
            self.blocks.append(MdLine(text, origin))

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
        masked, inlines = mask_code(visible, origin, self.problem, self.inlines if self.allow_inline else None)
        construct_problems(masked, origin, self.problem)
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
        line = figure_or_caption(masked, line, self.problem, self.main_dir)
        return refs_and_citations(masked, line, self.problem)

    def _open_div(self, rest: str, text: str, origin: Origin) -> MdLine:
        self._note_content()
        kind, condition = div_kind(rest, origin, self.problem)
        self._divs.append(_Div(kind, origin, len(self.blocks)))
        return MdLine(text, origin, div="open", condition=condition)

    def _heading(self, hm: re.Match[str], line: MdLine) -> MdLine | None:
        origin = line.origin
        level = len(hm.group("hashes"))
        ident, classes, title = heading_attributes(hm.group("body"), origin, self.problem)
        callout = next((d for d in reversed(self._divs) if d.kind == "callout"), None)
        if callout is not None:
            if callout.seen_content:
                self.problem(origin, "a heading inside a callout is only supported as its first line (the title)")
                return line
            # Quarto: a heading that opens a callout is its title
            opener = self.blocks[callout.open_index]
            assert isinstance(opener, MdLine)
            self.blocks[callout.open_index] = replace(opener, text=with_title(opener.text, title.strip()))
            callout.seen_content = True
            return None
        self._note_content()
        return replace(line, heading=Heading(level, ident, "unnumbered" in classes, hm.start("body")))
