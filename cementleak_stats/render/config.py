"""Options of the supported Quarto subset: ``_quarto.yml``, front matter and ``#|`` cell options.

Every mapping is validated with a frozen pydantic model that forbids unknown keys, so an
option the built-in engine does not implement is an error naming the file and the line,
never silently ignored.  YAML is read, and a pydantic error placed at the line of its key, by
:mod:`cementleak_stats.render.yaml_lines`.

Merging follows Quarto: project metadata (``_quarto.yml`` minus ``project:``) is the default
for every document and the front matter overrides it key by key (mappings are merged
recursively).  ``format`` is the exception, chosen to be unambiguous: a document that lists
formats is rendered to exactly those (the project's options for the same format are its
defaults); a document without ``format`` gets the project's formats; with neither, ``html``.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .problems import RenderError, SubsetProblem
from .yaml_lines import key_lines, load_yaml, pydantic_problems

#: Quarto format name -> file extension of the output.
FORMAT_EXTENSIONS: dict[str, str] = {"html": ".html", "typst": ".pdf", "docx": ".docx", "revealjs": ".html"}

#: Names accepted by ``render_project(to=...)`` -> Quarto format name.
TARGET_ALIASES: dict[str, str] = {
    "html": "html",
    "pdf": "typst",
    "typst": "typst",
    "docx": "docx",
    "slides": "revealjs",
    "revealjs": "revealjs",
}

_FORMAT_FIXES = {
    "pdf": "the built-in engine writes PDF with Typst: use `typst`",
    "beamer": "slides are `revealjs`",
    "pptx": "slides are `revealjs`",
}


def _hyphen(name: str) -> str:
    return name.replace("_", "-")


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", alias_generator=_hyphen, populate_by_name=True)


class ExecuteOptions(_Strict):
    """``execute:`` options (document or project level); ``echo=None`` means the format's default."""

    echo: bool | None = None
    eval: bool = True
    warning: bool = True
    output: bool | Literal["asis"] = True
    include: bool = True


class CellOptions(_Strict):
    """The ``#|`` options of one ``{python}`` cell (the supported subset of Quarto's)."""

    label: str | None = Field(default=None, pattern=r"^[A-Za-z][A-Za-z0-9_-]*$")
    echo: bool | None = None
    eval: bool | None = None
    output: bool | Literal["asis"] | None = None
    include: bool | None = None
    warning: bool | None = None
    code_fold: bool | Literal["show"] | None = None
    code_summary: str | None = None
    fig_cap: str | None = None
    fig_width: float | None = Field(default=None, gt=0, le=30)
    fig_height: float | None = Field(default=None, gt=0, le=30)
    tbl_cap: str | None = None
    #: cell tags; ``parameters`` marks the cell whose values a render's parameters replace
    #: (Quarto's and papermill's rule: the values are injected in a cell right after it)
    tags: tuple[str, ...] = ()

    @field_validator("tags", mode="before")
    @classmethod
    def _tag_list(cls, v: object) -> object:
        return [v] if isinstance(v, str) else v


class _FormatBase(_Strict):
    toc: bool = False
    toc_depth: int = Field(default=3, ge=1, le=6)
    output_file: str | None = Field(default=None, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


class HtmlFormat(_FormatBase):
    """``format: html`` — one self-contained file (resources embedded, no CDN), with no links to
    the document's other formats (``format-links: false`` in Quarto's terms)."""

    code_fold: bool | Literal["show"] = False
    code_summary: str = "Code"
    embed_resources: Literal[True] = True
    format_links: Literal[False] = False
    css: tuple[str, ...] = ()

    @field_validator("css", mode="before")
    @classmethod
    def _one_or_many(cls, v: object) -> object:
        return [v] if isinstance(v, str) else v


#: a Typst length as Quarto's ``margin`` values are written
_LENGTH = r"^\d+(\.\d+)?(cm|mm|in|pt|em)$"


class TypstMargin(_Strict):
    """``margin:`` of ``format: typst`` (Typst lengths; Quarto's ``x``/``y`` shorthands too)."""

    x: str | None = Field(default=None, pattern=_LENGTH)
    y: str | None = Field(default=None, pattern=_LENGTH)
    top: str | None = Field(default=None, pattern=_LENGTH)
    bottom: str | None = Field(default=None, pattern=_LENGTH)
    left: str | None = Field(default=None, pattern=_LENGTH)
    right: str | None = Field(default=None, pattern=_LENGTH)

    def typst(self) -> str:
        """As a Typst dictionary, e.g. ``(x: 2.3cm, top: 2.6cm)``."""
        return "(" + ", ".join(f"{k}: {v}" for k, v in self.model_dump(exclude_none=True).items()) + ")"


class TypstFormat(_FormatBase):
    """``format: typst`` — PDF through pandoc's Typst writer and the ``typst`` compiler.

    ``include-in-header`` names Typst files placed after the template's own rules (as Quarto
    places them after its definitions), relative to the document, or to the project when set
    in ``_quarto.yml``; the report's shared PDF rules come in this way.
    """

    papersize: Literal["a4", "us-letter"] = "a4"
    fontsize: str = Field(default="10.5pt", pattern=r"^\d+(\.\d+)?pt$")
    margin: TypstMargin | None = None
    include_in_header: tuple[str, ...] = ()
    keep_typ: bool = False

    @field_validator("include_in_header", mode="before")
    @classmethod
    def _one_or_many(cls, v: object) -> object:
        return [v] if isinstance(v, str) else v


class DocxFormat(_FormatBase):
    """``format: docx`` — Word, tables as Word tables."""

    reference_doc: str | None = None


class RevealjsFormat(_FormatBase):
    """``format: revealjs`` — a self-contained reveal.js deck of ``width`` x ``height`` pixels;
    figures keep their size and caption (``auto-stretch: false`` in Quarto's terms)."""

    slide_level: int = Field(default=2, ge=1, le=3)
    slide_number: bool = True
    incremental: bool = False
    embed_resources: Literal[True] = True
    width: int = Field(default=1280, ge=320, le=3840)
    height: int = Field(default=720, ge=240, le=2160)
    auto_stretch: Literal[False] = False


FORMAT_MODELS: dict[str, type[_FormatBase]] = {
    "html": HtmlFormat,
    "typst": TypstFormat,
    "docx": DocxFormat,
    "revealjs": RevealjsFormat,
}


class Author(_Strict):
    name: str
    affiliation: str | None = None
    email: str | None = None


class DocumentMeta(_Strict):
    """Front matter merged over the project's metadata (what one document is rendered with)."""

    title: str | None = None
    subtitle: str | None = None
    author: tuple[str | Author, ...] = ()
    date: str | None = None
    abstract: str | None = None
    keywords: tuple[str, ...] = ()
    lang: str = "en"
    #: the table of contents' title (Quarto's ``toc-title``; pandoc's DOCX writer prints it)
    toc_title: str | None = None
    toc: bool = False
    toc_depth: int = Field(default=3, ge=1, le=6)
    number_sections: bool = False
    fig_width: float = Field(default=6.5, gt=0, le=30)
    fig_height: float = Field(default=4.5, gt=0, le=30)
    fig_dpi: int = Field(default=150, ge=50, le=600)
    bibliography: tuple[str, ...] = ()
    csl: str | None = None
    execute: ExecuteOptions = ExecuteOptions()
    format: dict[str, Any] = Field(default_factory=dict)
    jupyter: Literal["python3"] | None = None
    engine: Literal["jupyter"] | None = None

    @field_validator("author", "bibliography", "keywords", mode="before")
    @classmethod
    def _listify(cls, v: object) -> object:
        return [v] if isinstance(v, (str, dict)) else v

    @field_validator("date", mode="before")
    @classmethod
    def _date(cls, v: object) -> object:
        if v == "today":
            return _dt.date.today().isoformat()
        return v.isoformat() if isinstance(v, (_dt.date, _dt.datetime)) else v

    @field_validator("format", mode="before")
    @classmethod
    def _formats(cls, v: object) -> object:
        return normalize_formats(v)


class ProjectSection(_Strict):
    type: Literal["default"] = "default"
    output_dir: str = "_output"
    render: tuple[str, ...] = ()


@dataclass(frozen=True)
class ProjectConfig:
    """``_quarto.yml``: the project section and the metadata shared by every document."""

    root: Path
    output_dir: str
    render: tuple[str, ...]
    metadata: Mapping[str, Any]


@dataclass(frozen=True)
class DocumentConfig:
    """Resolved options of one document: metadata and per-format options."""

    meta: DocumentMeta
    formats: Mapping[str, _FormatBase]


def normalize_formats(value: object) -> object:
    """``html`` / ``[html, docx]`` / ``{html: default, docx: {...}}`` -> ``{name: options}``."""
    if value is None:
        return {}
    if isinstance(value, str):
        value = [value]
    if isinstance(value, list):
        if not all(isinstance(v, str) for v in value):
            return value  # let validation report it
        return {v: {} for v in value}
    if isinstance(value, dict):
        return {k: ({} if v in (None, "default") else v) for k, v in value.items()}
    return value


def _merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), Mapping):
            out[k] = _merge(out[k], v)
        else:
            out[k] = v
    return out


def _check_meta(data: Mapping[str, Any], *, file: str, lines: Mapping[tuple[object, ...], int], first_line: int) -> list[SubsetProblem]:
    """Validate one metadata mapping (front matter, or ``_quarto.yml`` without ``project``)."""
    problems: list[SubsetProblem] = []
    try:
        meta = DocumentMeta.model_validate(data)
    except ValidationError as exc:
        return pydantic_problems(exc, file=file, lines=lines, default_line=first_line)
    for name, opts in meta.format.items():
        fline = lines.get(("format", name), first_line)
        if name not in FORMAT_MODELS:
            fix = _FORMAT_FIXES.get(name, f"supported formats: {', '.join(FORMAT_MODELS)}")
            problems.append(SubsetProblem(file, fline, f"format '{name}' is not supported by the built-in engine", fix))
            continue
        if not isinstance(opts, Mapping):
            problems.append(SubsetProblem(file, fline, f"options of format '{name}' must be a mapping or 'default'"))
            continue
        shared = [k for k in opts if k in ("fig-width", "fig-height", "fig-dpi", "number-sections", "execute")]
        for k in shared:
            problems.append(
                SubsetProblem(
                    file,
                    lines.get(("format", name, k), fline),
                    f"'{k}' inside format '{name}': the built-in engine executes a document once for all formats",
                    f"set '{k}' at the top level of the front matter (or of _quarto.yml)",
                )
            )
        if shared:
            continue
        try:
            FORMAT_MODELS[name].model_validate(opts)
        except ValidationError as exc:
            problems.extend(pydantic_problems(exc, file=file, lines=lines, prefix=("format", name), default_line=fline))
    return problems


def check_metadata(data: Mapping[str, Any], *, file: str, yaml_text: str, first_line: int) -> list[SubsetProblem]:
    """Problems of one metadata mapping, each at the line of the offending key."""
    return _check_meta(data, file=file, lines=key_lines(yaml_text, first_line=first_line), first_line=first_line)


def load_project(root: Path) -> ProjectConfig:
    """Read ``root/_quarto.yml`` (absent: defaults); raise :class:`RenderError` on any problem."""
    path = root / "_quarto.yml"
    if not path.exists():
        return ProjectConfig(root=root, output_dir="_output", render=(), metadata={})
    text = path.read_text(encoding="utf-8")
    data, problems = load_yaml(text, file="_quarto.yml", first_line=1)
    lines = key_lines(text, first_line=1)
    project_raw = data.pop("project", {}) if not problems else {}
    project = ProjectSection()
    try:
        project = ProjectSection.model_validate(project_raw or {})
    except ValidationError as exc:
        problems += pydantic_problems(exc, file="_quarto.yml", lines=lines, prefix=("project",), default_line=1)
    problems += _check_meta(data, file="_quarto.yml", lines=lines, first_line=1)
    out = Path(project.output_dir)
    if out.is_absolute() or ".." in out.parts or out.as_posix() in ("", "."):
        problems.append(
            SubsetProblem("_quarto.yml", lines.get(("project", "output-dir"), 1), "project.output-dir must be a sub-directory of the project", "e.g. _output")
        )
    if problems:
        raise RenderError(problems)
    return ProjectConfig(root=root, output_dir=project.output_dir, render=project.render, metadata=_project_paths(data, root))


#: format options that name files: relative to the document in front matter, to the project
#: in ``_quarto.yml`` (as Quarto resolves them)
FILE_OPTIONS: dict[str, tuple[str, ...]] = {"html": ("css",), "typst": ("include-in-header",), "docx": ("reference-doc",)}


def _project_paths(data: dict[str, Any], root: Path) -> dict[str, Any]:
    """``_quarto.yml``'s metadata with the file options of its formats made absolute."""
    formats = normalize_formats(data.get("format"))
    if not isinstance(formats, dict):
        return data
    out = {}
    for name, opts in formats.items():
        opts = dict(opts)
        for key in FILE_OPTIONS.get(name, ()):
            if isinstance(opts.get(key), str):
                opts[key] = str(root / opts[key])
            elif isinstance(opts.get(key), list):
                opts[key] = [str(root / v) for v in opts[key]]
        out[name] = opts
    return {**data, "format": out}


def resolve_document(project: ProjectConfig, front_matter: Mapping[str, Any]) -> DocumentConfig:
    """Merge project metadata and front matter (both already checked) into a document's options."""
    proj = dict(project.metadata)
    doc = dict(front_matter)
    proj_formats = normalize_formats(proj.pop("format", None)) or {}
    doc_formats = normalize_formats(doc.pop("format", None)) or {}
    names = list(doc_formats) or list(proj_formats) or ["html"]
    meta = DocumentMeta.model_validate({**_merge(proj, doc), "format": {n: {} for n in names}})
    formats: dict[str, _FormatBase] = {}
    for name in names:
        opts = _merge(proj_formats.get(name) or {}, doc_formats.get(name) or {})
        opts.setdefault("toc", meta.toc)
        opts.setdefault("toc-depth", meta.toc_depth)
        formats[name] = FORMAT_MODELS[name].model_validate(opts)
    return DocumentConfig(meta=meta, formats=formats)


def requested_formats(to: Iterable[str]) -> tuple[str, ...]:
    """Map ``render_project(to=...)`` names (html, pdf, docx, slides, or Quarto's) to formats."""
    out = []
    for t in to:
        if t not in TARGET_ALIASES:
            raise RenderError([SubsetProblem("render_project", None, f"unknown output '{t}'", f"use one of {', '.join(TARGET_ALIASES)}")])
        out.append(TARGET_ALIASES[t])
    return tuple(dict.fromkeys(out))
