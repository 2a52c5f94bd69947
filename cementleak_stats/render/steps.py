"""What a document's kernel runs, in order: the engine's setup, the cells, the inline
expressions and the injected parameters (:mod:`.execute` runs them; the order and the inline
expressions' batching are explained there)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from .config import DocumentMeta
from .parse import CodeCell, InlineExpr, MdLine, ParsedDocument

#: mime type of the text an inline expression hands back
INLINE_MIME = "text/x-cementleak-inline"
#: mime type of the texts of the inline expressions between two cells, run as one cell (a JSON list)
INLINES_MIME = "application/x-cementleak-inlines+json"
#: the tag of the cell whose values a render's parameters replace (Quarto's, papermill's)
PARAMETERS_TAG = "parameters"

Params = Mapping[str, Any]

_SETUP = """\
def _cementleak_setup():
    import types
    from IPython import get_ipython
    from IPython.display import display

    def text(value):
        if isinstance(value, str):
            return value
        data, _ = get_ipython().display_formatter.format(value)
        return data.get("text/markdown") or data.get("text/plain", "")

    def emit(value):
        display({{{MIME!r}: text(value)}}, raw=True)

    kept = []

    def keep(value):  # one of the inline expressions run as one cell; shown together by shown()
        kept.append(text(value))

    def shown():
        display({{{MANY!r}: list(kept)}}, raw=True)
        kept.clear()

    def figsize(width, height):
        try:
            import matplotlib
        except ImportError:
            return
        matplotlib.rcParams["figure.figsize"] = (width, height)

    try:
        import matplotlib
    except ImportError:
        pass
    else:
        get_ipython().run_line_magic("matplotlib", "inline")
        from matplotlib_inline.backend_inline import set_matplotlib_formats
        set_matplotlib_formats("png")
        matplotlib.rcParams.update({{"figure.figsize": ({W}, {H}), "figure.dpi": {DPI}, "savefig.dpi": {DPI}}})
    return types.SimpleNamespace(emit=emit, keep=keep, shown=shown, figsize=figsize)

_cementleak = _cementleak_setup()
del _cementleak_setup
"""



@dataclass(frozen=True)
class Step:
    """One cell of what the kernel runs (:func:`steps`)."""

    source: str
    kind: str  # "setup" | "params" | "cell" | "inline" | "inlines" | "hidden"
    cell: CodeCell | None = None
    inline: InlineExpr | None = None
    #: the expressions of an "inlines" step, run as one cell
    inlines: tuple[InlineExpr, ...] = ()


def effective(value: bool | None, default: bool) -> bool:
    return default if value is None else value


def injected_parameters(params: Params) -> str:
    """The cell that sets ``params``, as Quarto writes it: papermill's translator for Python
    (``# Injected Parameters`` then one assignment a line)."""
    from papermill.translators import translate_parameters  # imported only when a kernel runs with parameters

    return translate_parameters("python3", "python", dict(params), "Injected Parameters")


def kernel_steps(doc: ParsedDocument, meta: DocumentMeta, params: Params | None = None) -> Iterator[Step]:
    """What the kernel runs, in order.  The injected parameters (a ``params`` step whose source
    is filled in by :func:`.execute.execute_document`: the key hashes the values, not papermill's text) follow
    the first cell tagged ``parameters``."""
    yield Step(_SETUP.format(MIME=INLINE_MIME, MANY=INLINES_MIME, W=meta.fig_width, H=meta.fig_height, DPI=meta.fig_dpi), "setup")
    injected = not params
    pending: list[InlineExpr] = []  # the inline expressions since the last cell
    for block in doc.blocks:
        if isinstance(block, CodeCell) and pending:
            yield inline_step(pending)
            pending = []
        if isinstance(block, CodeCell):
            if not effective(block.options.eval, meta.execute.eval):
                continue
            o = block.options
            sized = o.fig_width is not None or o.fig_height is not None
            if sized:
                yield Step(f"_cementleak.figsize({o.fig_width or meta.fig_width}, {o.fig_height or meta.fig_height})", "hidden")
            yield Step(block.source, "cell", cell=block)
            if not injected and PARAMETERS_TAG in o.tags:
                yield Step("", "params")
                injected = True
            if sized:
                yield Step(f"_cementleak.figsize({meta.fig_width}, {meta.fig_height})", "hidden")
        elif isinstance(block, MdLine):
            pending += (doc.inlines[idx] for _, _, idx in block.inlines)
    if pending:
        yield inline_step(pending)


def one_inline(expr: InlineExpr) -> Step:
    return Step(f"_cementleak.emit((\n{expr.code}\n))", "inline", inline=expr)


def inline_step(exprs: list[InlineExpr]) -> Step:
    """The inline expressions between two cells: one expression as its own cell, more as one cell
    that keeps each value in order and shows them together (:mod:`.execute`)."""
    if len(exprs) == 1:
        return one_inline(exprs[0])
    body = "".join(f"_cementleak.keep((\n{e.code}\n))\n" for e in exprs)
    return Step(body + "_cementleak.shown()", "inlines", inlines=tuple(exprs))
