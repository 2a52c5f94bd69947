"""Built-in renderer for the project's Quarto subset (no Quarto CLI needed).

``render_project`` turns ``report/*.qmd`` into self-contained HTML, DOCX, PDF (Typst) and a
reveal.js deck; ``check_document`` lists every construct of a document that the engine does
not support (a test keeps the report inside the subset).  See :mod:`.parse` for the subset.
"""

from .problems import RenderError, SubsetProblem
from .project import RenderedFile, RenderReport, check_document, render_project

__all__ = ["RenderError", "RenderReport", "RenderedFile", "SubsetProblem", "check_document", "render_project"]
