"""The building blocks of the study file's parts: frozen models, per-language words, rule errors."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Kind = Literal["continuous", "binary", "ordinal", "nominal"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


#: languages a study file may write its words in (``label: {en: CT value, zh: CT值}``)
TEXT_LANGUAGES: tuple[str, ...] = ("en", "zh")


class SpecRuleError(ValueError):
    """A broken study-file rule, with how to fix it (pydantic keeps it in the error's context)."""

    def __init__(self, rule: str, fix: str, *, at: tuple[str | int, ...] = ()) -> None:
        super().__init__(rule)
        self.fix = fix
        #: where in the study file, when the rule is checked above the key it is about
        self.at = at


class _Words(_Frozen):
    """A part of the study file whose words (``_TEXT`` fields) may be written per language.

    ``label: {en: CT value, zh: CT值}`` keeps the English text in ``label`` (what the package
    and the English report use) and the others in ``translations`` (``{zh: {label: CT值}}``),
    which :meth:`StudySpec.localized` puts in place for a report in that language.  A
    ``level_labels`` entry may be per language too: ``{mild: {en: Mild, zh: 轻度}}``.
    """

    _TEXT: ClassVar[tuple[str, ...]] = ()
    #: the words in other languages, by language and field (from ``field: {en: ..., zh: ...}``)
    translations: dict[Literal["zh"], dict[str, Any]] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _per_language(cls, data: object) -> object:
        if not isinstance(data, dict) or not any(isinstance(data.get(f), dict) for f in cls._TEXT):
            return data
        data = dict(data)
        other: dict[str, dict[str, Any]] = {k: dict(v) for k, v in (data.get("translations") or {}).items()
                                             if isinstance(v, dict)}

        def split(value: dict, key: str, rule: str, into: tuple[str, ...]) -> object:
            """The English text of ``value`` ({en: ..., zh: ...}); the others go to ``other[lang][*into]``."""
            unknown = [k for k in value if k not in TEXT_LANGUAGES]
            if unknown:
                raise SpecRuleError(rule.replace("{unknown}", str(unknown)), f"write {key}: {{en: English text, zh: 中文}}")
            for lang, text in value.items():
                if lang != "en":
                    d = other.setdefault(lang, {})
                    for k in into[:-1]:
                        d = d.setdefault(k, {})
                    d[into[-1]] = text
            return value.get("en")

        for f in cls._TEXT:
            value = data.get(f)
            if f == "level_labels" and isinstance(value, dict):
                english = {}
                for level, text in value.items():
                    if isinstance(text, dict):
                        en = split(text, level, f"level_labels: unknown language {{unknown}} for level '{level}'",
                                   ("level_labels", level))
                        if "en" in text:
                            english[level] = en
                    else:
                        english[level] = text
                data[f] = english
            elif isinstance(value, dict):
                english = split(value, f, f"{f}: unknown language {{unknown}} (languages: {', '.join(TEXT_LANGUAGES)})", (f,))
                if english is None:
                    if f in cls.model_fields and cls.model_fields[f].is_required():
                        raise SpecRuleError(f"{f}: the English text is missing (only {sorted(value)} given)",
                                            f"add `en:` to {f}, e.g. {f}: {{en: English text, zh: 中文}}")
                    del data[f]
                else:
                    data[f] = english
        data["translations"] = other
        return data

    def localized(self, lang: str) -> _Words:
        """This part with its words in ``lang`` where the study file gives them (English elsewhere)."""
        return _localize(self, lang)  # type: ignore[return-value]


def _localize(model: BaseModel, lang: str) -> BaseModel:
    """``model`` with the ``lang`` words of every :class:`_Words` inside it put in place."""
    update: dict[str, Any] = {}
    for name in type(model).model_fields:
        value = getattr(model, name)
        if isinstance(value, BaseModel):
            update[name] = _localize(value, lang)
        elif isinstance(value, tuple) and value and all(isinstance(v, BaseModel) for v in value):
            update[name] = tuple(_localize(v, lang) for v in value)
    if isinstance(model, _Words):
        words = dict(model.translations.get(lang, {}))  # type: ignore[call-overload]
        if "level_labels" in words:
            words["level_labels"] = {**getattr(model, "level_labels"), **words["level_labels"]}
        update.update(words)
    return model.model_copy(update=update) if update else model


#: what a ``name`` must look like: it is the identifier used in results, tables and model terms;
#: the column's header in the data file (any text) goes in ``column``
IDENTIFIER = r"^[A-Za-z_][A-Za-z0-9_]*$"


class _Column(_Words):
    """A part of the study file that is one column of a data file (a variable, a measure)."""

    @property
    def header(self) -> str:
        """The column's header in the data file (``column``, else ``name``)."""
        return self.column or self.name  # type: ignore[attr-defined]

    @property
    def display(self) -> str:
        """Label with unit, in English, for the analysis's own tables: ``CT value (HU)`` (a report
        words it in its language: :func:`cementleak_stats.table_display.label_with_unit`)."""
        label, unit = self.label, self.unit  # type: ignore[attr-defined]
        return f"{label} ({unit})" if unit else label
