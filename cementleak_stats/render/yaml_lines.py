"""YAML text to a mapping, with the file line of every key: so an error names its line.

YAML is read with ``yaml.safe_load``; line numbers come from ``yaml.compose`` (the node marks),
so a pydantic error location such as ``("format", "html", "toc-depth")`` is reported at the
line where that key is written.  Used for ``_quarto.yml``, front matter and ``#|`` cell options
(:mod:`cementleak_stats.render.config`, :mod:`cementleak_stats.render.markdown`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import yaml
from pydantic import ValidationError

from .problems import SubsetProblem

__all__ = ["key_lines", "load_yaml", "pydantic_problems", "safe_load"]

#: libyaml's safe loader where PyYAML has it (the same mappings and marks as the pure-Python one,
#: several times faster: a report's documents have hundreds of option lines, read before any kernel starts)
_SAFE = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def safe_load(text: str) -> Any:
    """``yaml.safe_load`` with :data:`_SAFE`."""
    return yaml.load(text, Loader=_SAFE)  # noqa: S506 - a safe loader


def key_lines(text: str, *, first_line: int) -> dict[tuple[object, ...], int]:
    """Line (1-based, in the file) of every key path of a YAML mapping.

    ``first_line`` is the file line of the YAML text's first line.  Sequence items are
    addressed by their index, as pydantic locations are.
    """
    out: dict[tuple[object, ...], int] = {}
    try:
        node = yaml.compose(text, Loader=_SAFE)
    except yaml.YAMLError:
        return out

    def walk(n: yaml.Node, path: tuple[object, ...]) -> None:
        out[path] = first_line + n.start_mark.line
        if isinstance(n, yaml.MappingNode):
            for k, v in n.value:
                key = k.value
                walk(v, path + (key,))
                out[path + (key,)] = first_line + k.start_mark.line
        elif isinstance(n, yaml.SequenceNode):
            for i, v in enumerate(n.value):
                walk(v, path + (i,))

    if node is not None:
        walk(node, ())
    return out


def load_yaml(text: str, *, file: str, first_line: int) -> tuple[dict[str, Any], list[SubsetProblem]]:
    """Parse a YAML mapping; a syntax error becomes a problem at its line."""
    try:
        data = safe_load(text) if text.strip() else {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = first_line + mark.line if mark is not None else first_line
        return {}, [SubsetProblem(file, line, f"invalid YAML: {getattr(exc, 'problem', exc)}")]
    if data is None:
        data = {}
    if not isinstance(data, dict):
        return {}, [SubsetProblem(file, first_line, "YAML must be a mapping of key: value")]
    return data, []


def pydantic_problems(
    exc: ValidationError, *, file: str, lines: Mapping[tuple[object, ...], int], prefix: tuple[object, ...] = (), default_line: int | None = None
) -> list[SubsetProblem]:
    """One problem per pydantic error, at the line of the deepest known key of its location."""
    problems = []
    for err in exc.errors():
        loc = prefix + tuple(err["loc"])
        line = default_line
        for cut in range(len(loc), -1, -1):
            if loc[:cut] in lines:
                line = lines[loc[:cut]]
                break
        key = ".".join(str(p) for p in loc if not isinstance(p, int)) or "(top level)"
        if err["type"] == "extra_forbidden":
            rule = f"option '{key}' is not supported by the built-in engine"
            fix = "remove it (the engine renders a documented subset of Quarto)"
        else:
            rule = f"option '{key}': {err['msg']}"
            fix = ""
        problems.append(SubsetProblem(file, line, rule, fix))
    return problems
