"""What one line of a ``.qmd`` says, read without state: a cell's options, a div's attributes, a
heading's attributes, figures, table captions and cross-references.

Each function reports what is outside the supported subset through ``problem(origin, rule,
fix="")`` (the scanner's :meth:`~.scanner.MarkdownScanner.problem`) and returns what the line
means; :class:`~.scanner.MarkdownScanner` keeps the state (open fences, divs and comments).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from pydantic import ValidationError

from .blocks import (CALLOUTS, CROSSREF_KINDS, EXTERNAL_RESOURCE, FORMAT_WORDS, RESERVED_PREFIXES, CodeCell, InlineExpr,
                     MdLine, Origin, Ref, parse_attrs)
from .config import CellOptions
from .problems import SubsetProblem
from .yaml_lines import key_lines, load_yaml, pydantic_problems

#: how a line reports a problem: ``problem(origin, rule, fix="")``
Report = Callable[..., None]

_OPTION_LINE = re.compile(r"^#\|\s?(?P<yaml>.*)$")
_TRAILING_ATTRS = re.compile(r"\s*\{(?P<attrs>[^{}]*)\}\s*$")
_IMAGE = re.compile(
    r"!\[(?P<alt>(?:[^\[\]]|\[[^\]]*\])*)\]\((?P<src>[^)\s]+)(?:\s+\"[^\"]*\")?\)(?:\{(?P<attrs>[^{}]*)\})?"
)
_CAPTION = re.compile(r"^(?P<lead>:|Table:)\s+(?P<cap>.*?)\s*\{(?P<attrs>[^{}]*#tbl-[^{}]*)\}\s*$")
_REF = re.compile(r"(?<![\w@\\])(?P<neg>-?)@(?P<label>[A-Za-z0-9_][\w:.#$%&+?<>~/-]*\w)")
_CODE_SPAN = re.compile(r"(?<!`)(?P<ticks>`+)(?!`)(?P<body>.+?)(?<!`)(?P=ticks)(?!`)")
_INLINE_EXPR = re.compile(r"^\{(?P<lang>[^{}\s]+)\}\s+(?P<expr>.+)$")
_RESERVED_ID = re.compile(r"#(" + "|".join(RESERVED_PREFIXES) + r")-[\w-]", re.I)
_BRACKET_REF = re.compile(r"\[\s*(?P<refs>-?@[A-Za-z][\w-]*\w(?:\s*;\s*-?@[A-Za-z][\w-]*\w)*)\s*\]")


def make_cell(index: int, origin: Origin, lines: list[str]) -> tuple[CodeCell, list[SubsetProblem]]:
    """A ``{python}`` cell from its lines (leading ``#| key: value`` options, then code)."""
    opt_lines = []
    for line in lines:
        om = _OPTION_LINE.match(line)
        if not om:
            break
        opt_lines.append(om.group("yaml"))
    yaml_text = "\n".join(opt_lines)
    first = origin.line + 1
    data, problems = load_yaml(yaml_text, file=origin.file, first_line=first)
    try:
        options = CellOptions.model_validate(data)
    except ValidationError as exc:
        problems += pydantic_problems(exc, file=origin.file, lines=key_lines(yaml_text, first_line=first), default_line=first)
        # keep the valid options, so that the checks below still run
        bad = {e["loc"][0] for e in exc.errors() if e["loc"]}
        options = CellOptions.model_validate({k: v for k, v in data.items() if k not in bad})
    problems += [SubsetProblem(origin.file, origin.line, rule, fix) for rule, fix in _cell_option_rules(options)]
    source = "\n".join(lines)
    code = "\n".join(lines[len(opt_lines):]).strip("\n")
    return CodeCell(index, source, code, options, origin), problems


def _cell_option_rules(o: CellOptions) -> list[tuple[str, str]]:
    label = o.label or ""
    prefix = label.split("-", 1)[0] if "-" in label else ""
    rules = []
    if prefix in RESERVED_PREFIXES:
        rules.append((f"label '{label}': '{prefix}-' cross-references are not supported",
                      "use fig-, tbl- or a label without a reserved prefix"))
    if o.fig_cap is not None and o.tbl_cap is not None:
        rules.append(("a cell cannot have both fig-cap and tbl-cap", ""))
    if prefix == "fig" and o.fig_cap is None:
        rules.append((f"label '{label}' needs a 'fig-cap' to be a numbered figure", ""))
    if prefix == "tbl" and o.tbl_cap is None:
        rules.append((f"label '{label}' needs a 'tbl-cap' to be a numbered table", ""))
    if o.fig_cap is not None and label and prefix != "fig":
        rules.append((f"a captioned figure's label must start with 'fig-' (got '{label}')", ""))
    if o.tbl_cap is not None and label and prefix != "tbl":
        rules.append((f"a captioned table's label must start with 'tbl-' (got '{label}')", ""))
    return rules


def div_kind(rest: str, origin: Origin, problem: Report) -> tuple[str, tuple[str, bool] | None]:
    """What a fenced div ``::: rest`` is: (kind, condition); kind is callout, conditional,
    notes or unknown; condition (metadata key, shown when true) for ``when-meta``/``unless-meta``."""
    attrs = parse_attrs(rest[1:-1]) if rest.startswith("{") and rest.endswith("}") else parse_attrs("." + rest) if re.fullmatch(r"[\w-]+", rest) else None
    if attrs is None:
        problem(origin, f"cannot read the div attributes '{rest}'")
        return "unknown", None
    ident, classes, kv = attrs
    kind = "unknown"
    condition = None
    callouts = [c for c in classes if c.startswith("callout-")]
    if ident:
        problem(origin, f"fenced div with an id '#{ident}' is not supported", "figures come from cells or images, tables from cells or captions")
    elif callouts:
        kind = "callout"
        name = callouts[0][len("callout-") :]
        extra = [c for c in classes if c != callouts[0]]
        if name not in CALLOUTS or len(callouts) > 1 or extra:
            problem(origin, f"callout classes {list(classes)} are not supported", f"use one of .callout-{', .callout-'.join(CALLOUTS)}")
        for k in kv:
            if k != "title":
                problem(origin, f"callout attribute '{k}' is not supported (only title)")
    elif classes in (("content-visible",), ("content-hidden",)):
        kind = "conditional"
        keys = set(kv)
        if len(keys) != 1 or not keys <= {"when-format", "unless-format", "when-meta", "unless-meta"}:
            problem(origin, f"{classes[0]} needs exactly one of when-format=, unless-format=, when-meta= or unless-meta= (got {sorted(keys)})")
        for k, v in kv.items():
            if k.endswith("-format") and v not in FORMAT_WORDS:
                problem(origin, f"unknown format '{v}' in {classes[0]}", f"use one of {', '.join(FORMAT_WORDS)}")
            if k.endswith("-meta"):
                if not re.fullmatch(r"[A-Za-z_][\w-]*(\.[A-Za-z_][\w-]*)*", v):
                    problem(origin, f"'{v}' in {classes[0]} is not a metadata key", "write a key such as cl.outcomes")
                # shown when the key is true: content-visible when-meta, content-hidden unless-meta
                condition = (v, (classes[0] == "content-visible") == (k == "when-meta"))
    elif classes == ("notes",) and not kv:
        kind = "notes"
    else:
        problem(origin, f"fenced div {{{rest.strip('{}')}}} is not supported", "supported: callouts, .content-visible/.content-hidden, .notes")
    return kind, condition


def heading_attributes(body: str, origin: Origin, problem: Report) -> tuple[str | None, tuple[str, ...], str]:
    """A heading's ``{#id .unnumbered}``: (id, classes, the heading's text without them)."""
    ident: str | None = None
    classes: tuple[str, ...] = ()
    am = _TRAILING_ATTRS.search(body)
    if am:
        parsed = parse_attrs(am.group("attrs"))
        if parsed is None:
            problem(origin, f"cannot read the heading attributes '{{{am.group('attrs')}}}'")
        else:
            ident, classes, kv = parsed
            bad = [c for c in classes if c != "unnumbered"] + list(kv)
            if bad:
                problem(origin, f"heading attributes {bad} are not supported (only #id and .unnumbered)")
            if ident and ident.split("-", 1)[0] in ("fig", "tbl"):
                problem(origin, f"a heading cannot carry the figure/table label '#{ident}'", "sections use #sec-...")
    return ident, classes, body[: am.start()] if am else body


def with_title(open_line: str, title: str) -> str:
    """Add ``title="..."`` to a callout's opening line (title taken from its first heading)."""
    colons = re.match(r"^\s*:+", open_line).group(0)  # type: ignore[union-attr]
    rest = open_line[len(colons) :].strip()
    attrs = rest[1:-1] if rest.startswith("{") else "." + rest
    safe = title.replace('"', "'")
    return f'{colons} {{{attrs} title="{safe}"}}'


def figure_or_caption(masked: str, line: MdLine, problem: Report, main_dir: Path | None) -> MdLine:
    """``line`` with its figure (``![cap](f){#fig-x}``) or table caption (``: cap {#tbl-x}``)."""
    origin = line.origin
    for im in _IMAGE.finditer(masked):
        src = im.group("src")
        if re.match(r"^(https?:)?//", src):
            problem(origin, f"image '{src}' is an external URL", "save the image in the project and link the file")
            continue
        if main_dir is not None and not src.startswith("data:") and not (main_dir / src).exists():
            problem(origin, f"image file '{src}' does not exist", "paths are relative to the rendered document")
        attrs = parse_attrs(im.group("attrs") or "")
        if attrs is None:
            problem(origin, f"cannot read the image attributes '{{{im.group('attrs')}}}'")
            continue
        ident, classes, kv = attrs
        bad = list(classes) + [k for k in kv if k not in ("width", "height")]
        if bad:
            problem(origin, f"image attributes {bad} are not supported (only #fig-id, width, height)")
        if ident and ident.startswith("fig-"):
            if masked.strip() != im.group(0):
                problem(origin, f"figure '{ident}' must stand alone on its line (a paragraph of its own)")
            line = replace(line, figure=(ident, im.start("alt")))
        elif ident:
            problem(origin, f"an image id must start with 'fig-' (got '{ident}')")
    cm = _CAPTION.match(masked)
    if cm:
        parsed = parse_attrs(cm.group("attrs"))
        if parsed is None or not (parsed[0] or "").startswith("tbl-") or parsed[1] or parsed[2]:
            problem(origin, f"table caption attributes '{{{cm.group('attrs')}}}' are not supported (only #tbl-id)")
        else:
            line = replace(line, table_caption=(parsed[0], cm.start("cap")))  # type: ignore[arg-type]
    return line


def refs_and_citations(masked: str, line: MdLine, problem: Report) -> MdLine:
    """``line`` with its cross-references (``@fig-x``, ``[@tbl-x; @tbl-y]``, ``-@sec-x``) and citations."""
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
            problem(line.origin, f"'@{label}': '{prefix}-' cross-references are not supported", "only fig-, tbl- and sec- are")
        else:
            cites.append(label)
    refs.sort(key=lambda r: r.start)
    return replace(line, refs=tuple(refs), citations=tuple(cites))


def mask_code(visible: str, origin: Origin, problem: Report,
              exprs: list[InlineExpr] | None) -> tuple[str, list[tuple[int, int, int]]]:
    """``visible`` with its inline code blanked out (later scans skip it), and (start, end, index) of
    each `` `{python} expr` ``, appended to ``exprs`` (``None``: left as code, as in a cell's output)."""
    inlines: list[tuple[int, int, int]] = []
    masked = visible
    for m in _CODE_SPAN.finditer(visible):
        body = m.group("body").strip()
        im = _INLINE_EXPR.match(body)
        if body.startswith("{{") and re.match(r"^\{\{\w+\}\}", body):
            problem(origin, f"escaped inline code '{body}' is not supported")
        elif im and re.fullmatch(r"[A-Za-z][\w.-]*", im.group("lang")):
            if im.group("lang") != "python":
                problem(origin, f"inline '{{{im.group('lang')}}}' code is not supported: only `{{python}} expr`")
            elif exprs is not None:
                idx = len(exprs)
                exprs.append(InlineExpr(idx, im.group("expr").strip(), origin))
                inlines.append((m.start(), m.end(), idx))
        masked = masked[: m.start()] + " " * (m.end() - m.start()) + masked[m.end() :]
    return masked, inlines


def construct_problems(masked: str, origin: Origin, problem: Report) -> None:
    """Shortcodes other than a lone include, raw HTML that loads a resource, reserved cross-reference ids."""
    if "{{<" in masked or "{{%" in masked:
        if re.search(r"\{\{<\s*include\b", masked):
            problem(origin, "an include shortcode must stand alone on its line")
        else:
            sc = re.search(r"\{\{[<%]\s*([\w-]*)", masked)
            problem(origin, f"shortcode '{sc.group(1) if sc else ''}' is not supported (only include)")
    if EXTERNAL_RESOURCE.search(masked):
        problem(origin, "raw HTML loads an external resource (script/link/img/...)", "outputs must be self-contained; embed the resource")
    reserved = _RESERVED_ID.search(masked)
    if reserved:
        problem(origin, f"'#{reserved.group(1)}-' cross-reference targets are not supported", "only fig-, tbl- and sec- are")
