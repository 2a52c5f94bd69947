"""Reading and validating data: cementleak_stats.cohort.io / schema / summary.

Three study files are used so that nothing can be hard-coded: the project's ``study.yaml``
(PVP cohort, generated here from the study file), ``tests/studies/rossi/study.yaml`` (lifelines'
Rossi recidivism data) and ``tests/reference/io_lung_study.yaml`` (R's survival::lung, with
missing values).  Reference numbers for lung and Rossi come from
``tests/reference/io_reference.R`` (R 4.2.2, survival 3.5.3) -> ``io_reference.json``.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import runpy
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from rich.console import Console
from typer.testing import CliRunner

from cementleak_stats.cli import app
from cementleak_stats.cohort.io import load_study_data, patient_flow, read_table
from cementleak_stats.cohort.schema import DECIMAL_COMMA_RULE
from cementleak_stats.cohort.summary import print_check_summary, check_summary
from cementleak_stats.errors import EXIT_INPUT_ERROR, InputError
from cementleak_stats.spec import load_spec, parse_spec

try:  # tests/ is not a package: pytest puts it on sys.path
    from test_io_support import BAD, REPO, categorical_levels, snapshot, valid_cohort, valid_repeated, write_study, write_table
except ImportError:  # pragma: no cover - if tests/ becomes a package
    from tests.test_io_support import (BAD, REPO, categorical_levels, snapshot, valid_cohort, valid_repeated,
                                       write_study, write_table)

ROSSI = REPO / "tests" / "studies" / "rossi"
REF = json.loads((REPO / "tests" / "reference" / "io_reference.json").read_text())
MAIN = REPO / "study.yaml"
FORMATS = (".csv", ".xlsx", ".sav", ".parquet")


@pytest.fixture
def pvp(tmp_path: Path) -> tuple[Path, pd.DataFrame]:
    """A valid 40-patient cohort + outcomes generated from the project's study.yaml, and its study file."""
    spec = load_spec(MAIN)
    rng = np.random.default_rng(20250427)
    cohort = valid_cohort(spec, n=40, rng=rng)
    cpath = write_table(cohort, tmp_path / "cohort.csv")
    opath = write_table(valid_repeated(spec, cohort[spec.study.id_column][:10], rng=rng), tmp_path / "outcomes.csv")
    return write_study(MAIN, tmp_path, cohort=cpath, outcomes=opath), cohort


# --- readers ------------------------------------------------------------------------------
@pytest.mark.parametrize("suffix", FORMATS)
def test_every_format_gives_the_same_typed_cohort(tmp_path: Path, suffix: str) -> None:
    spec = load_spec(MAIN)
    cohort = valid_cohort(spec, n=30, rng=np.random.default_rng(1))
    expected = load_study_data(load_spec(write_study(MAIN, tmp_path, cohort=write_table(cohort, tmp_path / "c.csv"),
                                                     outcomes=None)))
    sub = tmp_path / "fmt"
    sub.mkdir()
    path = write_table(cohort, sub / f"cohort{suffix}", labels=categorical_levels(spec))
    data = load_study_data(load_spec(write_study(MAIN, sub, cohort=path, outcomes=None)))
    pd.testing.assert_frame_equal(data.cohort, expected.cohort)
    assert data.sha256[str(path)] == hashlib.sha256(path.read_bytes()).hexdigest()


def test_typed_cohort_follows_the_study_file(pvp: tuple[Path, pd.DataFrame]) -> None:
    study, raw = pvp
    spec = load_spec(study)
    data = load_study_data(spec)
    c = data.cohort
    assert list(c.columns) == list(spec.columns)
    assert c[spec.study.id_column].dtype == "string"
    assert c[spec.study.id_column].tolist() == raw[spec.study.id_column].tolist()
    for var in spec.variables:
        if var.kind == "continuous":
            assert c[var.name].dtype == np.float64
            np.testing.assert_array_equal(c[var.name].to_numpy(), raw[var.name].to_numpy(float))
        else:
            assert isinstance(c[var.name].dtype, pd.CategoricalDtype)
            assert list(c[var.name].cat.categories) == list(var.levels)
            assert c[var.name].cat.ordered == (var.kind == "ordinal")
            assert c[var.name].astype(str).tolist() == raw[var.name].tolist()
    assert c[spec.outcome.time].dtype == np.float64 and c[spec.outcome.event].dtype == np.int64
    rep = data.repeated
    assert rep is not None and list(rep[spec.repeated.timepoint].cat.categories) == [t.name for t in spec.repeated.timepoints]


def test_read_table_keeps_raw_cells_and_spreadsheet_rows() -> None:
    raw = read_table(BAD / "csv" / "text_in_numeric.csv")
    assert raw.index[0] == 2 and raw.index.name == "row"  # header = row 1
    assert raw.loc[3, "age_years"] == "sixty" and raw.loc[2, "age_years"] == "67"
    assert raw.loc[3, "bmi_kg_m2"] is None  # empty cell -> None, not NaN text


def test_xlsx_keeps_numbers_as_numbers(tmp_path: Path) -> None:
    frame = pd.DataFrame({"a": [1.5, None], "b": ["x", " y "]})
    raw = read_table(write_table(frame, tmp_path / "t.xlsx"))
    assert raw.loc[2, "a"] == 1.5 and raw.loc[3, "a"] is None and raw.loc[3, "b"] == "y"


def test_spss_value_labels_become_levels(tmp_path: Path) -> None:
    spec = load_spec(BAD / "study.yaml")
    base = pd.read_csv(BAD / "base_cohort.csv")
    path = write_table(base, tmp_path / "c.sav", labels=categorical_levels(spec))
    import pyreadstat

    stored, meta = pyreadstat.read_sav(path)
    assert stored["sex"].dtype == np.float64 and meta.variable_value_labels["sex"] == {1.0: "female", 2.0: "male"}
    data = load_study_data(load_spec(write_study(BAD / "study.yaml", tmp_path, cohort=path,
                                                 outcomes=BAD / "base_outcomes.csv")))
    assert data.cohort["sex"].astype(str).tolist() == base["sex"].tolist()


def test_utf8_bom_is_accepted_and_stripped() -> None:
    raw = read_table(BAD / "csv" / "utf8_bom.csv")
    assert raw.columns[0] == "patient_id"
    pd.testing.assert_frame_equal(raw, read_table(BAD / "base_cohort.csv"))


def test_gbk_error_names_the_byte_offset_and_row() -> None:
    path = BAD / "csv" / "gbk.csv"
    raw = path.read_bytes()
    offset = next(i for i, b in enumerate(raw) if b > 0x7F)  # first non-ASCII byte, found independently
    with pytest.raises(InputError) as ei:
        read_table(path)
    (p,) = ei.value.problems
    assert p.row == raw[:offset].count(b"\n") + 1 == 4
    assert f"byte offset {offset}" in p.rule and "GBK" in p.rule and "UTF-8" in p.fix


def test_aliases_map_to_canonical_levels_and_missing_tokens_are_missing(tmp_path: Path) -> None:
    data = load_study_data(load_spec(write_study(BAD / "study.yaml", tmp_path, cohort=BAD / "csv" / "aliases.csv",
                                                 outcomes=BAD / "base_outcomes.csv")))
    assert data.cohort["sex"].tolist()[:2] == ["female", "male"]  # F, M in the file
    assert set(data.cohort["sex"].astype(str)) == {"female", "male"}
    data = load_study_data(load_spec(write_study(BAD / "study.yaml", tmp_path,
                                                 cohort=BAD / "csv" / "missing_tokens_allowed.csv",
                                                 outcomes=BAD / "base_outcomes.csv")))
    # bmi holds "NA" in row 3 (P02) and "." in row 4 (P03): both missing, as the study file allows
    assert data.cohort["bmi_kg_m2"].isna().tolist() == [False, True, True, False, False, False, False, False]


def test_unknown_column_is_a_warning_not_an_error(tmp_path: Path) -> None:
    data = load_study_data(load_spec(write_study(BAD / "study.yaml", tmp_path, cohort=BAD / "csv" / "extra_column.csv",
                                                 outcomes=BAD / "base_outcomes.csv")))
    assert [(w.column, w.rule) for w in data.warnings] == [("comment", "unknown column (ignored)")]
    assert "comment" not in data.cohort.columns


def test_misspelled_column_fix_suggests_the_close_name(tmp_path: Path) -> None:
    with pytest.raises(InputError) as ei:
        load_study_data(load_spec(write_study(BAD / "study.yaml", tmp_path, cohort=BAD / "csv" / "misspelled_column.csv",
                                              outcomes=BAD / "base_outcomes.csv")))
    (p,) = ei.value.problems
    assert p.column == "sex" and "'sexx'" in p.fix


def test_unreadable_inputs_are_problems(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not a file"):
        read_table(tmp_path)
    with pytest.raises(InputError, match="file not found"):
        read_table(tmp_path / "nope.csv")
    locked = tmp_path / "locked.csv"
    shutil.copy(BAD / "base_cohort.csv", locked)
    locked.chmod(0)
    try:
        if os.access(locked, os.R_OK):
            pytest.skip("running as a user who can read a mode-000 file (root)")
        with pytest.raises(InputError, match="cannot read the file"):
            read_table(locked)
    finally:
        locked.chmod(0o644)


# --- flow, missing values -----------------------------------------------------------------
def _flow_spec(tmp_path: Path, cohort: pd.DataFrame, **analysis: object) -> Path:
    import yaml

    d = yaml.safe_load(MAIN.read_text())
    d.pop("validation", None)  # the cohort alone
    d["exclusions"] = [
        {"column": "age_years", "op": ">=", "value": 90, "reason": "aged 90 or more"},
        {"column": "fracture_severity", "op": ">=", "value": "severe", "reason": "severe fracture"},
        {"column": "sex", "op": "==", "value": "M", "reason": "men (alias spelling in the rule)"},
    ]
    d["analysis"] = {**d["analysis"], **analysis}
    return write_study(d, tmp_path, cohort=write_table(cohort, tmp_path / "c.csv"), outcomes=None)


@pytest.mark.parametrize("missing_data", ["complete_case", "multiple_imputation"])
def test_flow_applies_exclusions_in_order_and_counts_everyone(tmp_path: Path, missing_data: str) -> None:
    spec0 = load_spec(MAIN)
    cohort = valid_cohort(spec0, n=120, rng=np.random.default_rng(5))
    cohort["ct_value_hu"] = cohort["ct_value_hu"].astype(object)
    cohort.loc[[3, 50, 51], "ct_value_hu"] = None  # ct_value_hu is a candidate
    d = _flow_spec(tmp_path, cohort, missing_data=missing_data)
    import yaml

    y = yaml.safe_load(d.read_text())
    y["variables"] = [{**v, "missing_allowed": True} if v["name"] == "ct_value_hu" else v for v in y["variables"]]
    d.write_text(yaml.safe_dump(y))
    data = load_study_data(load_spec(d))
    # expected with plain pandas on the generated frame, rule by rule
    left = cohort
    expected = []
    for mask in (lambda f: f.age_years >= 90, lambda f: f.fracture_severity == "severe", lambda f: f.sex == "male"):
        hit = mask(left)
        expected.append(int(hit.sum()))
        left = left[~hit]
    if missing_data == "complete_case":
        expected.append(int(left.ct_value_hu.isna().sum()))
        left = left[left.ct_value_hu.notna()]
    assert data.flow["excluded"].tolist() == [0, *expected]
    assert data.flow["n"].tolist() == [120, *(120 - np.cumsum(expected))]
    assert data.flow["step"].tolist() == list(range(len(expected) + 1))
    assert data.analysed["patient_id"].tolist() == left["patient_id"].tolist()
    assert len(data.excluded) == sum(expected) == 120 - len(data.analysed)
    assert set(data.excluded["id"]) == set(cohort.patient_id) - set(left.patient_id)
    assert data.missing.set_index("column").loc["ct_value_hu", "n_missing"] == 3


def test_exclusion_rules_that_cannot_apply_are_study_file_problems(tmp_path: Path) -> None:
    import yaml

    d = yaml.safe_load(MAIN.read_text())
    d["exclusions"] = [{"column": "sex", "op": "<", "value": "male", "reason": "x"},
                       {"column": "age_years", "op": ">", "value": "old", "reason": "y"},
                       {"column": "approach", "op": "==", "reason": "z"}]
    spec = parse_spec(d, base_dir=tmp_path)
    with pytest.raises(InputError) as ei:
        load_study_data(spec)
    rules = [(p.column, p.rule) for p in ei.value.problems if p.column and p.column.startswith("exclusions")]
    assert rules == [("exclusions.0", "'<' does not apply to the binary variable 'sex'"),
                     ("exclusions.1", "exclusion on numeric column 'age_years' needs a number"),
                     ("exclusions.2", "exclusion '==' needs a value")]


def test_patient_flow_on_lung_matches_r() -> None:
    spec = load_spec(REPO / "tests" / "reference" / "io_lung_study.yaml")
    data = load_study_data(spec)
    r = REF["lung"]
    # R: colSums(is.na(lung)); complete.cases(); nrow() - see io_reference.R
    assert data.missing.set_index("column")["n_missing"].to_dict() == {c: r["missing"][c] for c in spec.columns}
    assert data.flow["excluded"].tolist() == [0, r["excluded_age"], r["excluded_complete_case"]]
    assert len(data.analysed) == r["n_analysed"]
    flow = patient_flow(data.cohort, spec)
    pd.testing.assert_frame_equal(flow.analysed, data.analysed)


@pytest.mark.parametrize(("study", "key"), [("tests/reference/io_lung_study.yaml", "lung"),
                                            ("tests/studies/rossi/study.yaml", "rossi")])
def test_summary_matches_r(study: str, key: str) -> None:
    s = check_summary(load_study_data(load_spec(REPO / study))).set_index("quantity")
    r = REF[key]
    # R: nrow(d); sum(event); summary(survfit(Surv(time, 1 - event) ~ 1))$table["median"]
    assert s.loc["patients"].tolist() == [r["n"], r["n_analysed"]]
    assert s.loc["events"].tolist() == [r["events"], r["events_analysed"]]
    assert s.loc["censored"].tolist() == [r["n"] - r["events"], r["n_analysed"] - r["events_analysed"]]
    assert s.loc["median_followup"].tolist() == [r["median_followup"], r["median_followup_analysed"]]


# --- Rossi: a second, unrelated study ------------------------------------------------------
def test_rossi_csv_is_lifelines_rossi() -> None:
    rossi_with_id = runpy.run_path(str(ROSSI / "make_rossi.py"))["rossi_with_id"]  # no __pycache__ in the study folder
    pd.testing.assert_frame_equal(pd.read_csv(ROSSI / "rossi.csv"), rossi_with_id())


def test_rossi_study_runs_through_the_data_layer() -> None:
    from lifelines.datasets import load_rossi

    rossi = load_rossi()
    data = load_study_data(load_spec(ROSSI / "study.yaml"))
    assert len(data.cohort) == len(rossi) and data.cohort["arrest"].sum() == rossi["arrest"].sum()
    assert data.cohort["fin"].astype(str).tolist() == rossi["fin"].map({0: "no", 1: "yes"}).tolist()  # alias 0/1
    assert data.flow["excluded"].tolist() == [0, 0]  # no exclusion rule; no missing value
    assert data.sha256 == {"rossi.csv": hashlib.sha256((ROSSI / "rossi.csv").read_bytes()).hexdigest()}
    assert data.repeated is None


# --- the malformed copy (the scenario) ---------------------------------------------
def _malformed(tmp_path: Path) -> tuple[Path, Path, list[tuple[int | None, str, str]]]:
    spec = load_spec(MAIN)
    cohort = valid_cohort(spec, n=25, rng=np.random.default_rng(3)).astype(object)
    cohort.loc[1, "ct_value_hu"] = "high"            # row 3: bad type
    cohort.loc[4, "age_years"] = 130                 # row 6: out of range
    cohort.loc[7, "fracture_level"] = "cervical"     # row 9: unknown level
    cohort.loc[10, "patient_id"] = cohort.loc[2, "patient_id"]  # row 12: duplicate id
    cohort = cohort.drop(columns="cement_volume_ml")  # missing column
    cpath = write_table(cohort, tmp_path / "cohort_copy.csv")
    opath = write_table(valid_repeated(spec, cohort.patient_id[:3], rng=np.random.default_rng(3)), tmp_path / "out.csv")
    expected = [(None, "cement_volume_ml", "required column is missing"), (3, "ct_value_hu", "not a number"),
                (6, "age_years", "outside the plausible range [40, 100]"), (9, "fracture_level", "unknown level"),
                (12, "patient_id", "duplicated patient id")]
    return write_study(MAIN, tmp_path, cohort=cpath, outcomes=opath), cpath, expected


def test_malformed_copy_reports_every_problem_at_once(tmp_path: Path) -> None:
    study, cpath, expected = _malformed(tmp_path)
    with pytest.raises(InputError) as ei:
        load_study_data(load_spec(study))
    got = [(p.row, p.column, p.rule) for p in ei.value.problems]
    assert len(got) == len(expected)
    for (row, col, rule), (grow, gcol, grule) in zip(expected, got):
        assert (grow, gcol) == (row, col) and rule in grule
    assert all(p.file == str(cpath) for p in ei.value.problems)
    assert str(ei.value).startswith(f"Invalid input ({cpath}): 5 problem(s)")


def test_malformed_copy_cli_exit_2_no_traceback_nothing_written(tmp_path: Path) -> None:
    study, cpath, expected = _malformed(tmp_path)
    before = snapshot(tmp_path)
    result = CliRunner().invoke(app, ["validate", str(study)])
    assert result.exit_code == EXIT_INPUT_ERROR and "Traceback" not in result.output
    # a real process: stderr of the installed console script, wide enough not to fold words
    env = {**os.environ, "COLUMNS": "400"}
    proc = subprocess.run([str(REPO / ".venv" / "bin" / "cementleak"), "validate", str(study)], capture_output=True,
                          text=True, env=env, cwd=tmp_path, timeout=120)
    assert proc.returncode == EXIT_INPUT_ERROR
    assert "Traceback" not in proc.stderr + proc.stdout
    assert "5 problem(s)" in proc.stderr
    for _row, col, rule in expected:
        assert col in proc.stderr and rule in proc.stderr
    assert snapshot(tmp_path) == before  # input byte-for-byte unchanged, nothing new written


def test_problems_of_both_files_are_raised_together(tmp_path: Path) -> None:
    study = write_study(BAD / "study.yaml", tmp_path, cohort=BAD / "csv" / "decimal_comma_quoted.csv",
                        outcomes=BAD / "csv" / "outcomes_unknown_patient.csv")
    with pytest.raises(InputError) as ei:
        load_study_data(load_spec(study))
    got = [(Path(p.file).name, p.row, p.column, p.rule) for p in ei.value.problems]
    assert got == [("decimal_comma_quoted.csv", 4, "ct_value_hu", DECIMAL_COMMA_RULE),
                   ("outcomes_unknown_patient.csv", 3, "patient_id", "patient not in the cohort file")]


# --- generated cohorts and the shipped data -------------------------------------------------
@pytest.mark.parametrize("study", [MAIN, ROSSI / "study.yaml", BAD / "study.yaml"])
def test_generated_cohort_is_valid_for_any_study(tmp_path: Path, study: Path) -> None:
    spec = load_spec(study)
    rng = np.random.default_rng(9)
    cohort = valid_cohort(spec, n=15, rng=rng)
    files = {"cohort": write_table(cohort, tmp_path / "c.parquet")}
    if spec.repeated is not None:
        files["outcomes"] = write_table(valid_repeated(spec, cohort[spec.study.id_column], rng=rng), tmp_path / "o.xlsx")
    data = load_study_data(load_spec(write_study(study, tmp_path, **files)))
    assert len(data.cohort) == 15 and data.warnings == ()


def test_shipped_cohort_validates_cleanly() -> None:
    spec = load_spec(MAIN)
    if not spec.cohort_path.exists():
        pytest.skip("data/cohort.csv not written yet")
    before = snapshot(REPO / "data")
    data = load_study_data(spec)
    assert data.warnings == () and len(data.cohort) > 0
    assert snapshot(REPO / "data") == before


# --- printing -----------------------------------------------------------------------------
def test_print_check_summary(pvp: tuple[Path, pd.DataFrame]) -> None:
    study, _ = pvp
    data = load_study_data(load_spec(study))
    console = Console(record=True, width=200, file=io.StringIO())
    print_check_summary(data, console=console)
    text = console.export_text()
    assert "SYNTHETIC" in text  # study.yaml has synthetic: true
    for digest in data.sha256.values():
        assert digest in text
    for label in data.missing["label"]:
        assert label in text
    assert "complete-case analysis" in text
    rossi = Console(record=True, width=200, file=io.StringIO())
    print_check_summary(load_study_data(load_spec(ROSSI / "study.yaml")), console=rossi)
    text = rossi.export_text()
    assert "SYNTHETIC" not in text and "Re-arrest" in text
    lung = Console(record=True, width=200, file=io.StringIO())
    print_check_summary(load_study_data(load_spec(REPO / "tests" / "reference" / "io_lung_study.yaml")), console=lung)
    assert "younger than 50" in lung.export_text()  # its exclusion rule


def test_cli_validate_succeeds_on_valid_data(pvp: tuple[Path, pd.DataFrame]) -> None:
    study, _ = pvp
    result = CliRunner().invoke(app, ["validate", str(study)])
    assert result.exit_code == 0, result.output
    assert "Valid" in result.stdout
