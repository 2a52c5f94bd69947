"""Built-in renderer for the project's Quarto subset (no Quarto CLI needed).

``render_project`` turns ``report/*.qmd`` into self-contained HTML, DOCX, PDF (Typst) and a
reveal.js deck; ``check_document`` lists every construct of a document that the engine does
not support (a test keeps the report inside the subset).  See :mod:`.parse` for the subset.
"""

from typing import TYPE_CHECKING, Any

from .problems import RenderError, SubsetProblem

if TYPE_CHECKING:
    from .project import RenderedFile, RenderReport, check_document, render_project

#: names loaded from .project on first use: importing the package (e.g. for its output lock)
#: does not pay for the Jupyter, pandoc and Typst stack
_LAZY = ("RenderedFile", "RenderReport", "check_document", "render_project")


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from . import project

        return getattr(project, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["RenderError", "RenderReport", "RenderedFile", "SubsetProblem", "check_document", "render_project"]
