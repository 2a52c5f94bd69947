"""The text of a study that only its authors can write: background, discussion, limitations.

It lives beside the study file, in the folder named by ``study.narrative`` (default
``narrative/``), one Markdown file per part (:data:`PARTS`).  Every other sentence of the
report is generated from the study file and the results; a part that is missing is replaced
by neutral text that is true of any study, never by another study's words.

The files are text, not code: they are printed into the documents as Markdown, so anything
that would run or change the document is refused with the file and line — raw HTML/Typst
blocks, scripts, executable cells, inline code, and YAML metadata blocks (which could set the
report's title or switch its sections).
"""

from __future__ import annotations

import re
from pathlib import Path

from .errors import InputError, Problem
from .spec import StudySpec

#: part -> where it appears and what to write in it (also the comments of ``cementleak new``)
PARTS: dict[str, str] = {
    "background": "Introduction: the clinical problem, why a prediction model is needed, existing models.",
    "discussion": "Discussion: what the findings mean clinically, compared with other studies.",
    "limitations": "Limitations specific to this study, as Markdown bullets ('- ...'); the generic ones "
                   "(sample size, variable selection, internal validation, synthetic data) are generated.",
    "question": "Slides: the clinical question, as 2-4 Markdown bullets ('- ...').",
}

_REFUSED = (
    (re.compile(r"^\s*(`{3,}|~{3,})\s*\{"), "executable or raw blocks (```{...}) are not allowed", "write plain Markdown; show code in a plain ``` block"),
    (re.compile(r"`\{[^}]*\}"), "inline code `{...}` is not evaluated in narrative text", "write the number in words or leave it to the report"),
    (re.compile(r"\{=[A-Za-z]+\}"), "raw output blocks ({=html}, {=typst}) are not allowed", "write plain Markdown"),
    (re.compile(r"<\s*(script|iframe|object|embed|link|style|meta)\b|javascript:", re.I), "HTML that runs or loads something is not allowed", "write plain Markdown"),
    (re.compile(r"^(---|\.\.\.)\s*$"), "a line '---' would start a metadata block", "use '***' for a horizontal rule, or remove the line"),
    (re.compile(r"\{\{<"), "shortcodes ({{< ... >}}) are not allowed", "write plain Markdown"),
)


#: languages besides English a part may be written in, beside the English file:
#: ``background.zh.md`` is the Chinese report's background (read as part ``background.zh``)
LANGUAGES: tuple[str, ...] = ("zh",)


def narrative_files(spec: StudySpec) -> list[Path]:
    """The narrative files the study has (in :data:`PARTS` order, English then each language)."""
    folder = spec.narrative_dir
    names = [f"{part}.md" for part in PARTS] + [f"{part}.{lang}.md" for lang in LANGUAGES for part in PARTS]
    return [folder / name for name in names if (folder / name).is_file()]


def missing_narrative(spec: StudySpec, narrative: dict[str, str], lang: str) -> list[str]:
    """Parts the study wrote in English but not in ``lang`` (the ``lang`` report shows them in English)."""
    if lang == "en":
        return []
    return [f"{spec.study.narrative}/{part}.{lang}.md" for part in PARTS if part in narrative and f"{part}.{lang}" not in narrative]


def read_narrative(spec: StudySpec) -> dict[str, str]:
    """Every narrative part the study has, checked; missing parts are simply absent.

    Raises
    ------
    InputError
        naming the file, line and rule for each line that is not plain Markdown.
    """
    out: dict[str, str] = {}
    problems: list[Problem] = []
    for path in narrative_files(spec):
        try:
            text = path.read_text(encoding="utf-8-sig")
        except UnicodeDecodeError as exc:
            problems.append(Problem(str(path), f"not UTF-8 text ({exc.reason})", fix="save the file as UTF-8"))
            continue
        # the guidance comments of `cementleak new` (and any other HTML comment) are not text
        text = re.sub(r"<!--.*?-->", lambda m: "\n" * m.group(0).count("\n"), text, flags=re.S)
        for i, line in enumerate(text.splitlines(), start=1):
            for pattern, rule, fix in _REFUSED:
                if pattern.search(line):
                    problems.append(Problem(str(path), rule, row=i, value=line.strip()[:80], fix=fix))
                    break  # one rule per line
        if text.strip():
            out[path.stem] = text.strip() + "\n"
    if problems:
        raise InputError(problems, summary=f"Invalid narrative ({spec.narrative_dir})")
    return out


def translation_problems(spec: StudySpec) -> list[Problem]:
    """Warnings for every word the report in another language (``report.language``) shows in
    English because the study file or its narrative gives no text in that language."""
    source = str(spec.source.name if spec.source else "study.yaml")
    names = {"zh": "Chinese"}
    out = []
    for lang in spec.report.language:
        if lang == "en":
            continue
        words = names.get(lang, lang)
        for where in spec.missing_translations(lang):
            example = (f"level_labels: {{level: {{{lang}: ...}}}}" if "level_labels" in where
                       else f"{where.rsplit(': ', 1)[-1]}: {{en: ..., {lang}: ...}}")
            out.append(Problem(source, f"no {words} text: the {words} report shows it in English", column=where,
                               fix=f"write it per language, e.g. {example}"))
        try:
            narrative = read_narrative(spec)
        except InputError:
            narrative = {}
        for path in missing_narrative(spec, narrative, lang):
            out.append(Problem(source, f"no {words} narrative {path}: the {words} report shows the English text",
                               column=path, fix=f"write {path} beside the English file"))
    return out
