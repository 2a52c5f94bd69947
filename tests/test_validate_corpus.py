"""The bad-input corpus (tests/bad_inputs/cases.yaml): every case through the data layer and the CLI.

For each case: the InputError lists exactly the expected problems (file, spreadsheet row,
column, rule fragment); ``cementleak validate`` exits with code 2 and prints no traceback;
valid cases pass; and every input file is byte-for-byte unchanged with nothing written.
Binary inputs (xlsx, sav, parquet) are generated here from base_cohort.csv and the case's
``edit``, not committed.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from cementleak_stats.cli import app
from cementleak_stats.cohort.io import load_study_data
from cementleak_stats.errors import EXIT_INPUT_ERROR, InputError, Problem
from cementleak_stats.spec import load_spec

try:  # tests/ is not a package: pytest puts it on sys.path
    from test_io_support import BAD, categorical_levels, snapshot, write_study, write_table
except ImportError:  # pragma: no cover - if tests/ becomes a package
    from tests.test_io_support import BAD, categorical_levels, snapshot, write_study, write_table

MANIFEST = yaml.safe_load((BAD / "cases.yaml").read_text(encoding="utf-8"))["cases"]


def _expand(cases: list[dict]) -> list[dict]:
    out = []
    for case in cases:
        for fmt in case.get("formats", [None]):
            out.append({**case, "id": f"{fmt}-{case['id']}" if fmt else case["id"], "format": fmt})
    return out


CASES = _expand(MANIFEST)


def _binary_cohort(case: dict, directory: Path) -> Path:
    """base_cohort.csv with the case's edit applied, written in the case's format.

    edit: ``repeat: n`` (n rows cycling the base rows, ids P0001...), ``fill: {column: value}``,
    ``columns: {header: [one value per row]}``, ``set: [[row, column, value]]``, ``drop``,
    ``rename: {column: header}``, ``rows: k`` (the first k rows).
    """
    base = pd.read_csv(BAD / "base_cohort.csv").astype(object)
    edit = case["edit"]
    if "repeat" in edit:
        base = base.iloc[[i % len(base) for i in range(edit["repeat"])]].reset_index(drop=True)
        base["patient_id"] = [f"P{i:04d}" for i in range(1, len(base) + 1)]
    base.index = base.index + 2  # spreadsheet rows
    for column, value in edit.get("fill", {}).items():
        base[column] = [value] * len(base)
    for column, values in edit.get("columns", {}).items():
        base[column] = list(values)
    for row, column, value in edit.get("set", []):
        base.loc[row, column] = value
    base = base.drop(columns=edit.get("drop", [])).rename(columns=edit.get("rename", {}))
    if "rows" in edit:
        base = base.iloc[: edit["rows"]]
    path = directory / f"cohort.{case['format']}"
    if edit.get("corrupt"):
        path.write_bytes((BAD / "base_cohort.csv").read_bytes())
        return path
    labels = {edit.get("rename", {}).get(c, c): lv for c, lv in categorical_levels(load_spec(BAD / "study.yaml")).items()}
    return write_table(base.reset_index(drop=True), path, labels=labels)


def _edited_study(patch: dict) -> dict:
    """study.yaml with ``patch`` merged in: ``variables`` by name; a null value deletes a key."""
    spec = yaml.safe_load((BAD / "study.yaml").read_text(encoding="utf-8"))

    def merge(into: dict, change: dict) -> dict:
        for key, value in change.items():
            if value is None:
                into.pop(key, None)
            elif isinstance(value, dict) and isinstance(into.get(key), dict):
                merge(into[key], value)
            else:
                into[key] = value
        return into

    for name, change in patch.get("variables", {}).items():
        merge(next(v for v in spec["variables"] if v["name"] == name), change)
    return merge(spec, {k: v for k, v in patch.items() if k != "variables"})


def _inputs(case: dict, tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """The study file to run and the names its problems use for cohort / outcomes / study."""
    if "study" in case:
        study = BAD / case["study"]
        return study, {"study": str(study)}
    cohort = _binary_cohort(case, tmp_path) if case["format"] else BAD / case.get("cohort", "base_cohort.csv")
    outcomes = BAD / case["outcomes"] if case.get("outcomes") else None if "outcomes" in case else BAD / "base_outcomes.csv"
    base = _edited_study(case["study_edit"]) if "study_edit" in case else BAD / "study.yaml"
    study = write_study(base, tmp_path, cohort=cohort, outcomes=outcomes)
    return study, {"cohort": str(cohort.resolve()), "outcomes": str(outcomes and outcomes.resolve()), "study": "study.yaml"}


def _expected(case: dict) -> list[dict]:
    """The case's expected problems; an entry with ``rows: "a-b"`` stands for one problem per row."""
    out = []
    for exp in case["expect"]:
        if "rows" in exp:
            lo, hi = (int(x) for x in str(exp["rows"]).split("-"))
            out += [{**{k: v for k, v in exp.items() if k != "rows"}, "row": r} for r in range(lo, hi + 1)]
        else:
            out.append(exp)
    return out


def _matches(p: Problem, exp: dict, names: dict[str, str]) -> bool:
    return (p.file.endswith(Path(names[exp["file"]]).name) and p.row == exp["row"] and p.column == exp["column"]
            and exp["rule"] in p.rule)


def test_corpus_is_large_and_has_no_dead_files() -> None:
    assert len(CASES) >= 40
    assert len({c["id"] for c in CASES}) == len(CASES)
    used = {c.get(k) for c in MANIFEST for k in ("cohort", "outcomes", "study")}
    assert any(len(_expected(c)) >= 500 for c in MANIFEST if "expect" in c)  # a file with many bad cells
    files = {f"{d}/{p.name}" for d in ("csv", "study") for p in (BAD / d).iterdir()}
    assert files <= used, f"corpus files no case uses: {sorted(files - used)}"
    readme = (BAD / "README.md").read_text(encoding="utf-8")  # the table of cases for humans
    for c in MANIFEST:
        assert c.get("guarantees"), c["id"]
        assert f"`{c['id']}`" in readme, f"{c['id']} missing from tests/bad_inputs/README.md"


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_case(case: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    work = tmp_path / "work"
    work.mkdir()
    study, names = _inputs(case, work)
    monkeypatch.chdir(tmp_path)  # a stray relative write (or an executed YAML tag) would land here
    before = snapshot(tmp_path, BAD)

    if case.get("valid"):
        data = load_study_data(load_spec(study))
        assert len(data.cohort) == 8
        assert [w.rule for w in data.warnings] == case.get("warnings", [])
        assert set(data.cohort["sex"].astype(str)) <= {"female", "male"}
        spec = data.spec  # the typed cohort is named by the study file's names, whatever the headers
        assert list(data.cohort.columns) == list(spec.columns)
        assert data.cohort[spec.outcome.event].tolist() == [0, 1, 1, 0, 0, 0, 1, 0]
        if "time" in case:  # computed from dates: end - start in the time unit
            assert data.cohort[spec.outcome.time].round(4).tolist() == case["time"]
    else:
        with pytest.raises(InputError) as ei:
            load_study_data(load_spec(study))
        problems = ei.value.problems
        expected = _expected(case)
        assert len(problems) == len(expected), str(ei.value)
        for exp in expected:
            assert any(_matches(p, exp, names) for p in problems), f"{exp} not in\n{ei.value}"
        for exp in case["expect"]:  # a hint about a whole column goes in the fix
            assert exp.get("fix", "") in next(p.fix for p in problems if _matches(p, {**exp, "row": p.row}, names))
        assert all(p.fix for p in problems), "every problem says how to fix it"
        assert str(ei.value).split(":")[0] and f"{len(problems)} problem(s)" in str(ei.value).splitlines()[0]

    result = CliRunner().invoke(app, ["validate", str(study)])
    assert result.exit_code == (0 if case.get("valid") else EXIT_INPUT_ERROR), result.output
    assert "Traceback" not in result.output
    # not a terminal (a pipe, a log): every file name and column name stays whole on one line
    lines = result.output.splitlines()
    if case.get("valid"):
        spec = load_spec(study)
        wanted = [*spec.columns, *(str(p) for p in (spec.cohort_file, spec.repeated and spec.repeated.file) if p)]
    else:
        wanted = [x for p in problems for x in (p.file, p.column) if x]
    for text in wanted:
        assert any(text in line for line in lines), f"{text!r} is not on one line of:\n{result.output}"
    assert snapshot(tmp_path, BAD) == before  # inputs unchanged, nothing written (cwd included)


def test_binary_cases_are_generated_with_the_intended_cells(tmp_path: Path) -> None:
    """The generated xlsx/sav files really hold what the case says (guards the generator)."""
    import openpyxl
    import pyreadstat

    case = next(c for c in CASES if c["id"] == "xlsx-date-in-numeric")
    wb = openpyxl.load_workbook(_binary_cohort(case, tmp_path), read_only=True)
    cell = list(wb.active.iter_rows(values_only=True))[7][4]  # row 8, column ct_value_hu
    wb.close()
    assert isinstance(cell, dt.datetime)
    case = next(c for c in CASES if c["id"] == "sav-unknown-level")
    frame, meta = pyreadstat.read_sav(_binary_cohort(case, tmp_path))
    assert frame.loc[5, "sex"] == 3.0 and 3.0 not in meta.variable_value_labels["sex"]
