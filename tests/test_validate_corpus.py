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
    """base_cohort.csv with the case's edit applied, written in the case's format."""
    base = pd.read_csv(BAD / "base_cohort.csv").astype(object)
    base.index = base.index + 2  # spreadsheet rows
    edit = case["edit"]
    for row, column, value in edit.get("set", []):
        base.loc[row, column] = value
    base = base.drop(columns=edit.get("drop", []))
    if "rows" in edit:
        base = base.iloc[: edit["rows"]]
    path = directory / f"cohort.{case['format']}"
    if edit.get("corrupt"):
        path.write_bytes((BAD / "base_cohort.csv").read_bytes())
        return path
    return write_table(base.reset_index(drop=True), path, labels=categorical_levels(load_spec(BAD / "study.yaml")))


def _inputs(case: dict, tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """The study file to run and the names its problems use for cohort / outcomes / study."""
    if "study" in case:
        study = BAD / case["study"]
        return study, {"study": str(study)}
    cohort = _binary_cohort(case, tmp_path) if case["format"] else BAD / case.get("cohort", "base_cohort.csv")
    outcomes = BAD / case.get("outcomes", "base_outcomes.csv")
    study = write_study(BAD / "study.yaml", tmp_path, cohort=cohort, outcomes=outcomes)
    return study, {"cohort": str(cohort.resolve()), "outcomes": str(outcomes.resolve()), "study": "study.yaml"}


def _matches(p: Problem, exp: dict, names: dict[str, str]) -> bool:
    return (p.file.endswith(Path(names[exp["file"]]).name) and p.row == exp["row"] and p.column == exp["column"]
            and exp["rule"] in p.rule)


def test_corpus_is_large_and_has_no_dead_files() -> None:
    assert len(CASES) >= 40
    assert len({c["id"] for c in CASES}) == len(CASES)
    used = {c.get(k) for c in MANIFEST for k in ("cohort", "outcomes", "study")}
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
    else:
        with pytest.raises(InputError) as ei:
            load_study_data(load_spec(study))
        problems = ei.value.problems
        expected = case["expect"]
        assert len(problems) == len(expected), str(ei.value)
        for exp in expected:
            assert any(_matches(p, exp, names) for p in problems), f"{exp} not in\n{ei.value}"
        assert str(ei.value).split(":")[0] and f"{len(problems)} problem(s)" in str(ei.value).splitlines()[0]

    result = CliRunner().invoke(app, ["validate", str(study)])
    assert result.exit_code == (0 if case.get("valid") else EXIT_INPUT_ERROR), result.output
    assert "Traceback" not in result.output
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
