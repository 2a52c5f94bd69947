"""Reading a study file: YAML safely (no tags, no alias bombs, no boolean keys), then pydantic,
with every broken rule turned into a :class:`~cementleak_stats.errors.Problem` that names the
line, the key, the rule and the fix."""

from __future__ import annotations

import difflib
import json
from pathlib import Path

import yaml
from pydantic import BaseModel, ValidationError

from ..errors import InputError, Problem
from .study import StudySpec
from .words import SpecRuleError


# --- study-file errors in words ------------------------------------------------------------
_YAML_BOOL_FIX = "YAML reads unquoted yes/no/on/off as true/false: put the value in quotes, e.g. \"no\""

#: how to fix a wrong value, by pydantic error type (prefix match)
_TYPE_FIXES = {
    "float": "write a number (a point as decimal separator), without quotes or units",
    "int": "write a whole number, without quotes",
    "bool": "write true or false",
    "string": "write text; put it in quotes if it looks like a number, a date or yes/no",
    "tuple": "write a list, e.g. [a, b] (or one item per line starting with '- ')",
    "list": "write a list, e.g. [a, b] (or one item per line starting with '- ')",
    "dict": "write a mapping: `key: value` pairs, indented under this key",
    "model": "write a mapping: `key: value` pairs, indented under this key",
    "greater_than": "change the value as the rule says",
    "less_than": "change the value as the rule says",
    "too_long": "shorten the list as the rule says",
}


def _slug(text: str) -> str:
    """An identifier made from a header: ``Age (y)`` -> ``age_y``."""
    import re
    import unicodedata

    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    out = re.sub(r"[^0-9a-zA-Z]+", "_", ascii_text).strip("_").lower() or "var"
    return out if not out[0].isdigit() else f"v_{out}"


def _model_at(loc: tuple[object, ...]) -> type[BaseModel] | None:
    """The pydantic model that holds the key at ``loc`` (for the list of allowed keys)."""
    import types
    import typing

    model: object = StudySpec
    for part in loc:
        if isinstance(part, int):
            continue
        if not (isinstance(model, type) and issubclass(model, BaseModel)) or part not in model.model_fields:
            return None
        ann = model.model_fields[part].annotation
        while typing.get_origin(ann) in (tuple, list, typing.Union, types.UnionType):
            ann = next((a for a in typing.get_args(ann) if a is not type(None) and a is not Ellipsis), None)
        model = ann
    return model if isinstance(model, type) and issubclass(model, BaseModel) else None


def _owner(data: object, loc: tuple[object, ...]) -> str:
    """Who a location belongs to, in words: ``variable 'asa'``, ``measure 'pain'``, ``outcome``."""
    def item(key: str, i: int) -> dict:
        seq = (data or {}).get(key) if key != "measures" else ((data or {}).get("repeated") or {}).get("measures")
        try:
            entry = seq[i]  # type: ignore[index]
        except (TypeError, IndexError, KeyError):
            return {}
        return entry if isinstance(entry, dict) else {}

    if len(loc) >= 2 and loc[0] == "variables" and isinstance(loc[1], int):
        name = item("variables", loc[1]).get("name")
        return f"variable '{name}'" if name is not None else f"variable {loc[1] + 1} (no name)"
    if len(loc) >= 3 and loc[:2] == ("repeated", "measures") and isinstance(loc[2], int):
        name = item("measures", loc[2]).get("name")
        return f"measure '{name}'" if name is not None else f"measure {loc[2] + 1} (no name)"
    if len(loc) >= 2 and loc[0] == "exclusions" and isinstance(loc[1], int):
        return f"exclusion rule {loc[1] + 1}"
    return str(loc[0]) if loc and loc[0] in ("study", "outcome", "analysis", "repeated") else ""


def _problem_from_error(file: str, data: object, e: dict, text: str | None) -> Problem:
    loc = tuple(e["loc"])
    line = _yaml_line(text, loc)
    path = ".".join(str(p) for p in loc) or "(top level)"
    owner = _owner(data, loc)
    key = next((str(p) for p in reversed(loc) if isinstance(p, str)), "")
    etype, val = e["type"], e.get("input")
    shown = None if isinstance(val, (dict, list)) or val is None else repr(val)[:80]
    error = (e.get("ctx") or {}).get("error")
    model = _model_at(loc[:-1])
    allowed = sorted(model.model_fields) if model is not None else []
    allowed = [k for k in allowed if k not in ("base_dir", "source")]
    if isinstance(error, SpecRuleError):
        rule, fix = str(error), error.fix
        if error.at:
            loc = tuple(error.at)
            path, line = ".".join(str(p) for p in loc), _yaml_line(text, loc)
    elif etype == "extra_forbidden":
        close = difflib.get_close_matches(key, allowed, n=1)
        rule = f"unknown key '{key}'"
        fix = (f"did you mean '{close[0]}'? " if close else "check the spelling; ") + \
            ("allowed keys here: " + ", ".join(allowed) if allowed else "see the commented template of `cementleak new`")
    elif etype == "missing" and loc and isinstance(loc[-1], int):
        rule = f"{key} needs more values: value {loc[-1] + 1} is missing"
        fix = f"write every value of `{key}:`, e.g. range: [low, high]" if key == "range" else \
            f"write every value of `{key}:` (see the commented template of `cementleak new`)"
    elif etype == "missing":
        rule = f"required key '{key}' is missing"
        fix = f"add `{key}:`" + (f" under `{path.rsplit('.', 1)[0]}`" if "." in path else " at the top level") + \
            " (see the commented template of `cementleak new`)"
    elif etype == "literal_error":
        if len(loc) >= 2 and loc[-2] in ("event_aliases", "aliases", "level_labels"):
            key = f"{loc[-2]} '{loc[-1]}'"
        expected = str((e.get("ctx") or {}).get("expected", "")).replace("'", "").replace(" or ", ", ")
        rule = f"{key} must be one of {expected} (got {val!r})"
        fix = f"write one of: {expected}"
        if key == "kind":
            fix += ("; categories without an order are `nominal`, ordered categories `ordinal`, two categories "
                    "`binary`, numbers `continuous`")
    elif etype == "string_pattern_mismatch" and key == "name":
        rule = "the name is not an identifier (letters, digits and _, not starting with a digit)"
        fix = (f"`name:` is how results and tables refer to it; write `name: {_slug(str(val))}` and keep the "
               f"data file's header in `column: {json.dumps(str(val), ensure_ascii=False)}`")
    else:
        msg = str(e["msg"]).removeprefix("Value error, ")
        rule = f"{key or path}: {msg[0].lower() + msg[1:] if msg else msg}" + ("" if shown is None else f" (got {shown})")
        fix = next((f for prefix, f in _TYPE_FIXES.items() if etype.startswith(prefix)),
                   "see the commented template of `cementleak new` for this key")
    if isinstance(val, bool) or (etype == "string_type" and str(val) in ("True", "False")):
        fix = _YAML_BOOL_FIX
    if owner and not rule.startswith(owner):
        rule = f"{owner}: {rule}"
    return Problem(file=file, row=line, column=path, value=shown, rule=rule, fix=fix)


def _yaml_line(text: str | None, loc: tuple[object, ...]) -> int | None:
    """1-based line of the YAML node at ``loc`` (the deepest part of it that exists), or None."""
    if text is None:
        return None
    try:
        node = yaml.compose(text, Loader=_StudyLoader)  # composing builds nodes only: nothing is constructed
    except yaml.YAMLError:
        return None
    line = None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            hit = next(((k, v) for k, v in node.value if getattr(k, "value", None) == part), None)
            if hit is None:
                break
            line, node = hit[0].start_mark.line + 1, hit[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            break
    return line


def _problems_from_pydantic(file: str, err: ValidationError, data: object = None, text: str | None = None) -> list[Problem]:
    return [_problem_from_error(file, data, e, text) for e in err.errors()]


def parse_spec(data: object, *, base_dir: Path = Path("."), source: Path | None = None, file: str = "<study>",
               text: str | None = None) -> StudySpec:
    """Build a :class:`StudySpec` from an already-parsed mapping; raise :class:`InputError`.

    ``text`` (the YAML source) lets each problem name its line in the study file.
    """
    if not isinstance(data, dict):
        raise InputError([Problem(file=file, rule="study file must be a YAML mapping of keys to values",
                                  fix="start from the project's study.yaml")], summary="Invalid study file")
    try:
        return StudySpec.model_validate({**data, "base_dir": base_dir, "source": source})
    except ValidationError as err:
        raise InputError(_problems_from_pydantic(file, err, data, text), summary="Invalid study file") from None


class _StudyLoader(yaml.SafeLoader):
    """``yaml.safe_load``, except that a mapping *key* is never a boolean.

    YAML 1.1 reads unquoted Yes/No/On/Off as true/false; no key of a study file is a boolean,
    so ``event_aliases: {Yes: 1, No: 0}`` keeps its spellings ("Yes", "No").  Values keep the
    YAML rules (``levels: [no, yes]`` is refused with a fix, never silently read as booleans).
    """

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:  # type: ignore[override]
        for key, _ in node.value:
            if isinstance(key, yaml.ScalarNode) and key.tag == "tag:yaml.org,2002:bool" and not key.style:
                key.tag = "tag:yaml.org,2002:str"
        return super().construct_mapping(node, deep=deep)


#: A study file holds a few hundred values; more than this once YAML aliases are expanded is an
#: alias bomb ("billion laughs"), refused before anything walks the expanded structure.
MAX_YAML_VALUES = 100_000


def _expanded_size(root: object, limit: int) -> int:
    """Number of values in ``root`` counting each YAML alias as a copy (> ``limit`` = too many).

    Shared containers are sized once (memo by identity) and the walk is iterative, so a bomb is
    measured in time proportional to its text; a container that contains itself counts as too many.
    """
    sizes: dict[int, int] = {}
    visiting: set[int] = set()
    stack: list[tuple[object, bool]] = [(root, False)]
    while stack:
        obj, finished = stack.pop()
        if not isinstance(obj, (dict, list)) or (not finished and id(obj) in sizes):
            continue
        kids = [*obj.keys(), *obj.values()] if isinstance(obj, dict) else obj
        if finished:
            visiting.discard(id(obj))
            total = 1 + sum(sizes.get(id(k), 1) if isinstance(k, (dict, list)) else 1 for k in kids)
            sizes[id(obj)] = min(total, limit + 1)
        elif id(obj) in visiting:
            return limit + 1
        else:
            visiting.add(id(obj))
            stack.append((obj, True))
            stack.extend((k, False) for k in kids if isinstance(k, (dict, list)))
    return sizes.get(id(root), 1)


def load_spec(path: str | Path = "study.yaml") -> StudySpec:
    """Read and check a study file.

    Raises
    ------
    InputError
        when the file is missing, is not valid YAML, uses YAML tags, or breaks any rule.
    """
    p = Path(path)
    name = str(path)
    if not p.is_file():
        raise InputError([Problem(file=name, rule="study file not found",
                                  fix="pass the path of a study file, e.g. `cementleak validate study.yaml`")],
                         summary="Invalid study file")
    raw = p.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError([Problem(file=name, row=None, rule=f"study file is not UTF-8 text ({exc.reason} at byte {exc.start})",
                                  fix="save the file as UTF-8")], summary="Invalid study file") from None
    if len(raw) > 1_000_000:
        raise InputError([Problem(file=name, rule="study file is larger than 1 MB", fix="a study file is a short YAML text")],
                         summary="Invalid study file")
    try:
        data = yaml.load(text, Loader=_StudyLoader)  # noqa: S506 - a SafeLoader subclass
    except RecursionError:
        raise InputError([Problem(file=name, rule="not valid YAML: brackets or indentation nested too deeply",
                                  fix="a study file is a short YAML text; start from the project's study.yaml")],
                         summary="Invalid study file") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        row = None if mark is None else mark.line + 1
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise InputError([Problem(file=name, row=row, rule=f"not valid YAML: {problem}",
                                  fix="YAML tags (!!python/...) and anchors to code are not allowed; check indentation")],
                         summary="Invalid study file") from None
    if _expanded_size(data, MAX_YAML_VALUES) > MAX_YAML_VALUES:
        raise InputError([Problem(file=name, rule=f"study file expands to more than {MAX_YAML_VALUES:,} values: YAML "
                                  "anchors and aliases nested into each other (an alias bomb) or referring to themselves",
                                  fix="write the study file without nested aliases")], summary="Invalid study file")
    return parse_spec(data, base_dir=p.resolve().parent, source=p.resolve(), file=name, text=text)
