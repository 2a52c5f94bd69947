"""The architecture: every import arrow points down the layers, never back (issue 12).

The contracts are import-linter's (``[tool.importlinter]`` in pyproject.toml; ``lint-imports``
runs them too): one layers contract, documents -> commands -> reporting -> pipeline ->
statistics -> data -> base, and four forbidden contracts: reporting reads the results and not the
statistics (the pipeline is the door), the renderer is a leaf, and the synthetic-cohort generator
stands on its own.  A known wrong arrow that its owner is removing is an
``ignore_imports`` entry there, with the owner in a comment; any other new arrow fails here.

This file also checks that every module of the package is placed in the contracts, that the
forbidden lists follow the layers, that the documents import the reporting layer only, and
that the README's drawing of the layers is the one drawn from the contracts
(``python tests/test_architecture.py`` prints it, ``... --write`` puts it in the README).
"""

from __future__ import annotations

import importlib.util
import re
import sys
import textwrap
from pathlib import Path

import pytest

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "cementleak_stats"
CONFIG = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["importlinter"]
CONTRACTS = {c["id"]: c for c in CONFIG["contracts"]}

#: the layers of the layers contract, top first, by name (the README drawing shows these names)
LAYER_NAMES = ("commands", "reporting", "pipeline", "statistics", "data", "base")
LAYERS: dict[str, tuple[str, ...]] = {
    name: tuple(m.strip() for m in re.split(r"[:|]", layer))
    for name, layer in zip(LAYER_NAMES, CONTRACTS["layers"]["layers"], strict=True)
}
#: outside the layers: the renderer (a leaf) and the synthetic-cohort generator (on its own)
APART = {"rendering": "render", "synthetic": "synthetic"}
README_START = "<!-- layers: drawn by tests/test_architecture.py from pyproject.toml; do not edit by hand -->"
README_END = "<!-- /layers -->"


def _full(module: str) -> str:
    return module if module.startswith(PACKAGE) else f"{PACKAGE}.{module}"


def _covered(listed: list[str], module: str) -> bool:
    """Whether ``module`` is one of ``listed`` or inside one of them."""
    m = _full(module)
    return any(m == x or m.startswith(x + ".") for x in map(_full, listed))


def _modules() -> set[str]:
    import grimp

    return set(grimp.build_graph(PACKAGE, cache_dir=None).modules)


def test_the_import_contracts_hold(capsys: pytest.CaptureFixture[str]) -> None:
    from importlinter import cli

    ok = cli.lint_imports(config_filename=str(ROOT / "pyproject.toml"), no_cache=True, no_logo=True) == cli.EXIT_STATUS_SUCCESS
    out = capsys.readouterr().out
    assert ok, "an import arrow points the wrong way (or a contract is malformed):\n" + out


def test_every_module_is_placed() -> None:
    placed = [m for layer in LAYERS.values() for m in layer] + list(APART.values())
    loose = sorted(m for m in _modules() if m != PACKAGE and not _covered(placed, m)
                   and not any(_covered(placed, c) for c in _modules() if c.startswith(m + ".")))
    assert not loose, (f"modules in no layer of pyproject.toml [tool.importlinter]: {loose}; put each in its "
                       "layer (and in the forbidden lists of the render-leaf and synthetic contracts)")


def test_the_forbidden_lists_follow_the_layers() -> None:
    every = [m for layer in LAYERS.values() for m in layer]
    render = CONTRACTS["render-leaf"]["forbidden_modules"]
    expected = [m for m in every if m not in LAYERS["base"]] + [APART["synthetic"]]
    assert all(_covered(render, m) for m in expected), "render-leaf must forbid every layer but base"
    assert not any(_covered(render, m) for m in LAYERS["base"])

    alone = CONTRACTS["synthetic-alone"]["forbidden_modules"]
    above_data = [m for name in LAYER_NAMES[:LAYER_NAMES.index("data")] for m in LAYERS[name]]
    assert all(_covered(alone, m) for m in [*above_data, APART["rendering"]])
    assert not any(_covered(alone, m) for m in [*LAYERS["data"], *LAYERS["base"]])

    door = CONTRACTS["results-door"]
    assert all(_covered(door["source_modules"], m) for m in LAYERS["reporting"])
    assert all(_covered(door["forbidden_modules"], m) for m in LAYERS["statistics"])
    assert not any(_covered(door["forbidden_modules"], m) for m in LAYERS["pipeline"])

    callers = CONTRACTS["synthetic-called-by-commands"]["source_modules"]
    below = [m for name in LAYER_NAMES[1:] for m in LAYERS[name]] + [APART["rendering"]]
    assert all(_covered(callers, m) for m in below)
    assert not any(_covered(callers, m) for m in LAYERS["commands"])


def test_the_documents_import_the_reporting_layer_only() -> None:
    allowed = LAYERS["reporting"]
    bad = []
    for qmd in sorted((ROOT / "report").rglob("*.qmd")):
        for m in re.findall(rf"(?:from|import)\s+{PACKAGE}\.([\w.]+)", qmd.read_text(encoding="utf-8")):
            if not _covered(list(allowed), m):
                bad.append(f"{qmd.relative_to(ROOT)}: {m}")
    assert not bad, f"documents load results through the reporting layer (document.load_report): {bad}"


#: a module longer than this says in its docstring why it is one module ("Why one module of ... lines")
MAX_LINES = 400
_LENGTH_REASON = re.compile(r"(?is)\bwhy\b[^.]{0,200}?(\blines\b|\blong\b|one module)")
#: long modules whose split (or reason) their owners are working on; none left (issue 12)
LONG_NOW: dict[str, str] = {}


def test_long_modules_say_why() -> None:
    import ast

    unexplained = []
    for path in sorted((ROOT / PACKAGE).rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        rel = path.relative_to(ROOT / PACKAGE).as_posix()
        if text.count("\n") > MAX_LINES and rel not in LONG_NOW \
                and not _LENGTH_REASON.search(ast.get_docstring(ast.parse(text)) or ""):
            unexplained.append(f"{rel} ({text.count(chr(10))} lines)")
    assert not unexplained, (f"modules over {MAX_LINES} lines without a reason in their docstring: {unexplained}; "
                             "split them along their concepts, or say why they are one module")


def _shown(module: str) -> str:
    """``models/`` for a package, ``km`` for a module, ``cohort/io`` for a module in a folder."""
    spec = importlib.util.find_spec(_full(module))
    folder = spec is not None and spec.submodule_search_locations is not None
    return module.replace(".", "/") + ("/" if folder else "")


def layers_drawing(width: int = 100) -> str:
    """The layers and their arrows, as plain text (GitHub and a terminal show it alike)."""
    label = max(len(n) for n in (*LAYER_NAMES, *APART, "documents")) + 3
    pad = " " * label

    def row(name: str, text: str) -> list[str]:
        lines = textwrap.wrap(text, width - label, break_on_hyphens=False) or [""]
        return [f"{name.ljust(label)}{lines[0]}", *(pad + ln for ln in lines[1:])]

    out = row("documents", "report/*.qmd: cementleak_stats.document.load_report, nothing else")
    for i, name in enumerate(LAYER_NAMES):
        out += ["   │", "   ▼"]
        lines = row(name, ", ".join(_shown(m) for m in LAYERS[name]))
        if i == 0:
            lines[0] = lines[0].ljust(label + 40)
            arrows = [f"────▶ rendering  {_shown(APART['rendering'])} (imports base only)",
                      f"────▶ synthetic  {_shown(APART['synthetic'])} (imports data and base only)"]
            lines = [lines[0] + arrows[0], *(lines[1:] or [""])]
            lines[1] = lines[1].ljust(label + 40) + arrows[1]
        out += lines
    out += ["", "Arrows point down: a module imports its own layer and the layers below it, never above;",
            "reporting reaches the statistics only through the pipeline's results (StudyResults).",
            "Contracts: pyproject.toml [tool.importlinter] (run: lint-imports); this drawing is checked by",
            "tests/test_architecture.py, which prints it (python tests/test_architecture.py)."]
    return "\n".join(line.rstrip() for line in out)


def test_the_readme_draws_these_layers() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert README_START in readme and README_END in readme, "README.md's Layout section lacks the layers drawing"
    drawn = readme.split(README_START, 1)[1].split(README_END, 1)[0].strip()
    expected = f"```\n{layers_drawing()}\n```"
    assert drawn == expected, ("README.md's layers drawing differs from the contracts; run "
                               f"`python tests/test_architecture.py --write`, or put between the markers:\n{expected}")


def write_readme() -> None:
    """Put the drawing between the README's markers (``python tests/test_architecture.py --write``)."""
    path = ROOT / "README.md"
    text = path.read_text(encoding="utf-8")
    head, rest = text.split(README_START, 1)
    path.write_text(f"{head}{README_START}\n```\n{layers_drawing()}\n```\n{README_END}{rest.split(README_END, 1)[1]}",
                    encoding="utf-8")


if __name__ == "__main__":
    write_readme() if sys.argv[1:] == ["--write"] else sys.stdout.write(layers_drawing() + "\n")
