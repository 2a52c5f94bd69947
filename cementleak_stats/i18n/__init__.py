"""The report's language: English (the default) or Simplified Chinese, from one set of templates.

Every sentence, heading, table header, axis label and legend that the package writes is an
English message passed through :func:`T`.  In English :func:`T` returns the message itself
(formatted with its fields), so English output never depends on a catalog; in another language
it looks the message up in that language's catalog, ``cementleak_stats/i18n/<lang>.yaml``: a
plain YAML file of ``English message: translation`` pairs, grouped by where they appear, that
a clinician can correct without touching code (the ``{fields}`` in braces must stay).  A message
missing from the catalog stays English, and :func:`missing` lists it (a test fails on any).

The language is a property of the report being written, not of the code: it is set for the
duration of a block by :func:`language` (a :class:`~contextvars.ContextVar`, as
``figure_theme`` sets matplotlib's rcParams), which :class:`~cementleak_stats.document.ReportView`
does around every call a document makes.  Computation never depends on it.

Why not gettext: ``.po``/``.mo`` files need a compile step and tools a clinician does not have;
the catalog is small (hundreds of messages) and YAML is already how the study file is written.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

import yaml

#: languages a report can be written in (ISO 639-1; zh = Simplified Chinese)
LANGUAGES: tuple[str, ...] = ("en", "zh")
#: the language of the package's own messages (the catalogs' keys)
SOURCE = "en"
CATALOG_DIR = Path(__file__).parent

_ACTIVE: ContextVar[str] = ContextVar("cementleak_language", default=SOURCE)
_MISSING: dict[str, set[str]] = {}


@contextmanager
def language(lang: str) -> Iterator[str]:
    """Write in ``lang`` inside the block (``with language("zh"): ...``)."""
    if lang not in LANGUAGES:
        raise ValueError(f"unknown report language {lang!r}; choose one of {', '.join(LANGUAGES)}")
    token = _ACTIVE.set(lang)
    try:
        yield lang
    finally:
        _ACTIVE.reset(token)


def active() -> str:
    """The language being written ('en' outside any :func:`language` block)."""
    return _ACTIVE.get()


@functools.cache
def catalog(lang: str) -> dict[str, str]:
    """``English message -> translation`` of ``lang`` (its sections merged; a key twice is an error)."""
    if lang == SOURCE:
        return {}
    path = CATALOG_DIR / f"{lang}.yaml"
    # BaseLoader: every key and value is text (a message "yes" or "no" is not a boolean)
    data = yaml.load(path.read_text(encoding="utf-8"), Loader=yaml.BaseLoader) or {}  # noqa: S506 - no tags
    out: dict[str, str] = {}
    for section, entries in data.items():
        for key, value in (entries or {}).items():
            key, value = str(key), str(value)
            if key in out and out[key] != value:
                raise ValueError(f"{path.name}: message {key!r} is translated twice (section {section!r})")
            _check_fields(path.name, key, value)
            out[key] = value
    return out


_FIELD = re.compile(r"\{(\w*)[^{}]*\}")


def _check_fields(file: str, key: str, value: str) -> None:
    if sorted(_FIELD.findall(key)) != sorted(_FIELD.findall(value)):
        raise ValueError(f"{file}: the translation of {key!r} must keep its fields {sorted(set(_FIELD.findall(key)))} "
                         f"(got {value!r})")


def T(message: str, /, **fields: object) -> str:
    """``message`` in the active language, with ``{fields}`` filled in.

    English returns the message itself; a message without a translation stays English and is
    recorded (:func:`missing`).
    """
    lang = _ACTIVE.get()
    text = message
    if lang != SOURCE:
        found = catalog(lang).get(message)
        if found is None:
            _MISSING.setdefault(lang, set()).add(message)
        else:
            text = found
    return text.format(**fields) if fields else text


def has(message: str) -> bool:
    """Whether ``message`` has a translation in the active language (always true in English)."""
    lang = _ACTIVE.get()
    return lang == SOURCE or message in catalog(lang)


def missing(lang: str) -> set[str]:
    """Messages asked for in ``lang`` in this process that its catalog lacks."""
    return set(_MISSING.get(lang, set()))


# --- typography -------------------------------------------------------------------------------

_CJK = r"\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff\uff00-\uffef"
_SPACE_BETWEEN_CJK = re.compile(rf"(?<=[{_CJK}])[ \t]+(?=[{_CJK}])")


def is_cjk(lang: str | None = None) -> bool:
    """Whether the language (default: the active one) writes without spaces between words."""
    return (lang or _ACTIVE.get()) == "zh"


def join_words(*parts: str) -> str:
    """Words of a phrase: joined by spaces in English, by nothing between Chinese characters."""
    text = " ".join(p for p in parts if p)
    return _SPACE_BETWEEN_CJK.sub("", text) if is_cjk() else text


def tidy(text: str) -> str:
    """Chinese typography of a generated sentence: no space between two Chinese characters or
    a Chinese character and full-width punctuation (English text is returned unchanged)."""
    return _SPACE_BETWEEN_CJK.sub("", text) if is_cjk() else text


def series(items: list[str], *, clauses: bool = False) -> str:
    """'a, b and c' in English; in Chinese 'a、b和c', or 'a；b；c' for ``clauses`` (items that
    are phrases with their own commas)."""
    items = [i for i in items if i]
    if not items:
        return ""
    if len(items) == 1:
        return items[0]
    if is_cjk():
        return "；".join(items) if clauses else "、".join(items[:-1]) + "和" + items[-1]
    return ", ".join(items[:-1]) + " and " + items[-1]


def mark(punctuation: str) -> str:
    """A punctuation mark of a generated sentence in the active language: ``mark(": ")`` is
    ': ' in English and '：' in Chinese (full-width marks carry their own space)."""
    return _FULL_WIDTH.get(punctuation, punctuation) if is_cjk() else punctuation


_FULL_WIDTH = {": ": "：", "; ": "；", ", ": "，", ".": "。", ". ": "。", "(": "（", ")": "）", " (": "（", ") ": "）",
               "?": "？", "!": "！"}


# --- text computed in English by the analysis ----------------------------------------------------


@functools.cache
def _patterns(lang: str) -> tuple[tuple[re.Pattern[str], str], ...]:
    path = CATALOG_DIR / f"{lang}.patterns.yaml"
    if not path.is_file():
        return ()
    data = yaml.load(path.read_text(encoding="utf-8"), Loader=yaml.BaseLoader) or {}  # noqa: S506 - no tags
    return tuple((re.compile(str(k)), str(v)) for k, v in data.items())


def text(value: object) -> str:
    """A sentence or label the analysis wrote in English (a flow step, a check's note, a test's
    name), in the active language: an exact catalog message, else a pattern of
    ``<lang>.patterns.yaml`` (a regular expression whose groups fill ``{0}``, ``{1}``, ...,
    themselves translated when they are messages), else unchanged (and recorded as missing)."""
    s = str(value)
    lang = _ACTIVE.get()
    if lang == SOURCE or not s.strip():
        return s
    found = catalog(lang).get(s)
    if found is not None:
        return found
    for pattern, template in _patterns(lang):
        m = pattern.fullmatch(s)
        if m:
            groups = [_group_words(lang, g) for g in m.groups()]
            return tidy(template.format(*groups))
    if any(c.isalpha() and c.isascii() for c in s):
        _MISSING.setdefault(lang, set()).add(s)
    return s


def _group_words(lang: str, group: str | None) -> str:
    """A group of a pattern in ``lang``: a message ('model'), a quantity ('12 months'), or itself."""
    if group is None:
        return ""
    words = catalog(lang)
    if group in words:
        return words[group]
    q = re.fullmatch(r"(\d+(?:\.\d+)?) (\w+)", group)
    if q and "{n} " + q.group(2) in words:
        return words["{n} " + q.group(2)].format(n=q.group(1))
    return group


# --- an object that speaks a language ------------------------------------------------------------


class Speaking:
    """``obj`` whose attributes and methods are read in ``lang`` (:func:`language` around each)."""

    def __init__(self, obj: object, lang: str) -> None:
        object.__setattr__(self, "_obj", obj)
        object.__setattr__(self, "_lang", lang)

    def __getattr__(self, name: str) -> object:
        return speak(self._lang, getattr, self._obj, name)  # type: ignore[attr-defined]


def speak(lang: str, fn, /, *args, **kwargs):  # type: ignore[no-untyped-def]
    """``fn(*args, **kwargs)`` in ``lang``; a method it returns is wrapped to run in ``lang`` too."""
    with language(lang):
        value = fn(*args, **kwargs)
    if callable(value) and not isinstance(value, type):
        @functools.wraps(value)
        def in_language(*a, **k):  # type: ignore[no-untyped-def]
            with language(lang):
                return value(*a, **k)
        return in_language
    return value


def document_language(path: object) -> str:
    """The language of a report document by its name: ``index.zh.qmd`` is Chinese, ``index.qmd``
    English (the source language)."""
    from pathlib import PurePath

    suffixes = PurePath(str(path)).suffixes
    lang = suffixes[-2].lstrip(".") if len(suffixes) >= 2 else SOURCE
    return lang if lang in LANGUAGES else SOURCE
