"""``docs/results-files.md`` documents exactly the files ``cementleak`` writes into ``results/``.

Reads the ``_output/results/`` of the session render (``cementleak report`` writes the same
files as ``cementleak analyze``): every CSV written is documented with its columns in order,
every documented file that is not marked optional is written, and ``summary.json`` has the
documented keys.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd

from cementleak_stats.spec import load_spec
import pytest

pytestmark = pytest.mark.xdist_group("render")

DOC = Path(__file__).resolve().parents[1] / "docs" / "results-files.md"
HEADING = re.compile(r"^### `(?P<file>[\w.]+\.csv)`(?P<rest>.*)$")
ROW = re.compile(r"^\| `(?P<name>[^`]+)` \|")
#: the headings of files written only with some study-file options say so
OPTIONAL = re.compile(r"\bonly with\b|\bwhen\b", re.I)


def documented() -> dict[str, tuple[list[str], bool]]:
    """File -> (columns in order, optional) from the markdown; 'Same columns as `x`' copies x."""
    files: dict[str, tuple[list[str], bool]] = {}
    current = None
    for line in DOC.read_text(encoding="utf-8").splitlines():
        m = HEADING.match(line)
        if m:
            current = m.group("file")
            files[current] = ([], bool(OPTIONAL.search(m.group("rest"))))
            continue
        if line.startswith("## "):
            current = None
        elif current is not None:
            same = re.match(r"^Same columns as `([\w.]+\.csv)`", line)
            if same:
                files[current] = (list(files[same.group(1)][0]), files[current][1])
            r = ROW.match(line)
            if r:
                files[current][0].append(r.group("name"))
    return files


@pytest.fixture(scope="module")
def results_dir(rendered_project) -> Path:
    d = rendered_project.output / "results"
    assert d.is_dir(), "cementleak report wrote no results directory"
    return d


def test_every_written_csv_is_documented_with_its_columns(results_dir: Path) -> None:
    doc = documented()
    written = {p.name: list(pd.read_csv(p, nrows=0).columns) for p in sorted(results_dir.glob("*.csv"))}
    undocumented = sorted(set(written) - set(doc))
    assert undocumented == [], f"document these files in {DOC.name}: {undocumented}"
    details = set(load_spec(Path(__file__).resolve().parents[1] / "study.yaml").outcome.event_details)
    for name, cols in written.items():
        if name == "event_details.csv":  # its first columns are named after the study's detail variables
            cols = [c for c in cols if c not in details]
        assert doc[name][0] == cols, f"{name}: documented columns differ from the file's"


def test_every_documented_file_is_written_unless_optional(results_dir: Path) -> None:
    doc = documented()
    written = {p.name for p in results_dir.glob("*.csv")}
    # the shipped study has a repeated section, event details and a univariable screen, so
    # only files that depend on other study-file options may be absent
    missing = sorted(name for name, (_, optional) in doc.items() if not optional and name not in written)
    assert missing == [], f"{DOC.name} documents files that are not written: {missing}"


def test_summary_json_keys_are_documented(results_dir: Path) -> None:
    text = DOC.read_text(encoding="utf-8").split("## `summary.json`")[1].split("\n## ")[0]
    keys = set(re.findall(r"^\| `(\w+)` \|", text, re.M))
    summary = json.loads((results_dir / "summary.json").read_text(encoding="utf-8"))
    assert set(summary) == keys
