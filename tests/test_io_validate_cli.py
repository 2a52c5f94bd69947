"""``cementleak validate`` on real-world spreadsheets: grouped problems, logs, JSON, CSV, dates,
event spellings, study-file messages, and what the analysis needs (cementleak_stats.needs).

The bad-input corpus (tests/test_validate_corpus.py) checks each case's exact problems; here the
way they are shown and the rules of the analysis that ``validate`` reports.
"""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from rich.console import Console
from typer.testing import CliRunner

from cementleak_stats.cli import app
from cementleak_stats.cohort.dates import parse_dates
from cementleak_stats.cohort.io import load_study_data
from cementleak_stats.errors import EXIT_INPUT_ERROR, AnalysisError, InputError, group_problems, row_ranges
from cementleak_stats.messages import print_input_error
from cementleak_stats.needs import analysis_needs, require_events, require_parameters
from cementleak_stats.spec import DAYS_PER_UNIT, load_spec, parse_spec

try:  # tests/ is not a package: pytest puts it on sys.path
    from test_io_support import BAD, snapshot
except ImportError:  # pragma: no cover - if tests/ becomes a package
    from tests.test_io_support import BAD, snapshot


#: (case, guarantee) for docs/reliability.md (tests/test_reliability_support.py)
GUARANTEES = [
    ("rare-problems-first", "a single BMI of 284 and a missing value are listed before 500 bad cells of one column, "
     "which are one group with a hint (is this a date column?)"),
    ("pipe-one-line-per-problem", "through a pipe, each group is one unbroken line: file, rows, column, values, rule, fix"),
    ("all-and-problems-csv", "--all lists all 502 problems; --problems writes them as CSV and never overwrites an input"),
    ("json-format", "--format json holds every problem and the groups"),
    ("terminal-table", "on a terminal the problems stay a table, rare groups first"),
    ("dates-in-years", "a time from dates in years is (end - start) / 365.25; a number is never read as a date"),
    ("yes-no-alias-keys", "unquoted Yes/No keys of event_aliases keep their spelling"),
    ("study-file-messages", "every study-file problem has a fix and names its variable; no regular expression"),
    ("zero-events", "validate exits 2 for zero events with the message analyze gives"),
    ("no-event-by-horizon", "validate exits 2 when no event happens by the horizon"),
    ("separation", "a level without events in a prespecified model is an error, a warning with a penalized fit"),
    ("fewer-events-than-parameters", "validate exits 2 when a prespecified model has more parameters than events"),
]


def _study(tmp_path: Path, cohort: pd.DataFrame, **patch: object) -> Path:
    """The corpus study file (no repeated table) on ``cohort``, with top-level keys patched."""
    spec = yaml.safe_load((BAD / "study.yaml").read_text(encoding="utf-8"))
    spec.pop("repeated")
    for key, value in patch.items():
        spec[key] = {**spec.get(key, {}), **value} if isinstance(value, dict) else value
    cohort.to_csv(tmp_path / "cohort.csv", index=False)
    spec["cohort_file"] = "cohort.csv"
    (tmp_path / "study.yaml").write_text(yaml.safe_dump(spec, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return tmp_path / "study.yaml"


def _base() -> pd.DataFrame:
    return pd.read_csv(BAD / "base_cohort.csv").astype(object)


@pytest.fixture
def mixed(tmp_path: Path) -> Path:
    """500 patients: every age cell a date (500 bad cells), BMI 284 on row 90, a missing CT value on row 43."""
    base = _base()
    base = base.iloc[[i % len(base) for i in range(500)]].reset_index(drop=True)
    base["patient_id"] = [f"P{i:04d}" for i in range(1, 501)]
    base.index = base.index + 2
    base["age_years"] = "2019-03-05"
    base.loc[90, "bmi_kg_m2"] = 284
    base.loc[43, "ct_value_hu"] = None
    return _study(tmp_path, base.reset_index(drop=True))


# --- grouped problems -----------------------------------------------------------------------
def test_rare_problems_come_first_and_the_column_gets_a_hint(mixed: Path) -> None:
    with pytest.raises(InputError) as ei:
        load_study_data(load_spec(mixed))
    assert len(ei.value.problems) == 502  # every individual problem is kept
    groups = ei.value.groups()
    assert [(g.rows[:1], g.column, g.count) for g in groups] == [([43], "ct_value_hu", 1), ([90], "bmi_kg_m2", 1),
                                                                  ([2], "age_years", 500)]
    assert groups[2].where() == "rows 2-501 (500 cells)"
    assert "is this a date column?" in groups[2].fix
    first_lines = str(ei.value).splitlines()[1:3]
    assert "row 43" in first_lines[0] and "row 90" in first_lines[1] and "'284'" in first_lines[1]


def test_row_ranges() -> None:
    assert row_ranges([5, 2, 3, 4, 9, 11, 12]) == "2-5, 9, 11-12"
    assert row_ranges(range(2, 40, 2), limit=2) == "2, 4, ... (17 more ranges)"


def test_log_lines_through_a_real_pipe_keep_every_name_whole(mixed: Path) -> None:
    """Off a terminal: one line per group, nothing wrapped (the table would fold at 80 columns)."""
    run = subprocess.run([sys.executable, "-m", "cementleak_stats.cli", "validate", str(mixed)],
                         capture_output=True, text=True, cwd=mixed.parent, env={"COLUMNS": "80", "PATH": ""})
    assert run.returncode == EXIT_INPUT_ERROR, run.stderr
    lines = [ln for ln in run.stderr.splitlines() if ln.startswith("error: ")]
    assert len(lines) == 3
    assert lines[0].startswith("error: cohort.csv: row 43: column 'ct_value_hu': missing value not allowed")
    assert "row 90: column 'bmi_kg_m2': value '284': outside the plausible range [12, 45]" in lines[1]
    assert "rows 2-501 (500 cells): column 'age_years'" in lines[2] and "is this a date column?" in lines[2]
    assert "Traceback" not in run.stderr


def test_all_lists_every_problem_one_per_line(mixed: Path) -> None:
    result = CliRunner().invoke(app, ["validate", str(mixed), "--all"])
    assert result.exit_code == EXIT_INPUT_ERROR
    lines = [ln for ln in result.output.splitlines() if ln.startswith("error: ")]
    assert len(lines) == 502
    assert sum("column 'age_years'" in ln and "not a number" in ln for ln in lines) == 500


def test_problems_csv_has_every_problem_and_never_overwrites_an_input(mixed: Path) -> None:
    out = mixed.parent / "reports" / "problems.csv"
    result = CliRunner().invoke(app, ["validate", str(mixed), "--problems", str(out)])
    assert result.exit_code == EXIT_INPUT_ERROR
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))))
    assert len(rows) == 502 and list(rows[0]) == ["file", "row", "column", "value", "rule", "fix"]
    assert {(r["row"], r["column"], r["value"]) for r in rows} >= {("90", "bmi_kg_m2", "284"), ("43", "ct_value_hu", "")}
    before = snapshot(mixed.parent)
    cohort = mixed.parent / "cohort.csv"
    for target in (cohort, mixed):
        result = CliRunner().invoke(app, ["validate", str(mixed), "--problems", str(target)])
        assert result.exit_code == EXIT_INPUT_ERROR
        assert "--problems names one of the study's input files" in result.output
    assert snapshot(mixed.parent) == before


def test_json_format(mixed: Path) -> None:
    result = CliRunner().invoke(app, ["validate", str(mixed), "--format", "json"])
    assert result.exit_code == EXIT_INPUT_ERROR
    doc = json.loads(result.stdout)
    assert doc["status"] == "invalid" and doc["n_problems"] == len(doc["problems"]) == 502
    assert [g["count"] for g in doc["groups"]] == [1, 1, 500]
    assert doc["groups"][2]["rows"] == "2-501"


def test_terminal_keeps_the_table(mixed: Path) -> None:
    with pytest.raises(InputError) as ei:
        load_study_data(load_spec(mixed))
    buf = io.StringIO()
    print_input_error(ei.value, console=Console(file=buf, force_terminal=True, width=160, color_system=None))
    text = buf.getvalue()
    assert "┃ file" in text and "rows 2-501 (500 cells)" in text and "502 problem(s) in 3 groups" in text
    assert text.index("row 43") < text.index("row 90") < text.index("rows 2-501")


# --- dates ----------------------------------------------------------------------------------
def test_time_units_are_stated_constants() -> None:
    assert DAYS_PER_UNIT == {"days": 1.0, "weeks": 7.0, "months": 30.4375, "years": 365.25}


def test_dates_in_years_from_excel_cells_and_iso_text(tmp_path: Path) -> None:
    import datetime as dt

    base = _base().drop(columns="time_months")
    base["start"] = ["2020-01-01"] * 8
    base["end"] = ["2021-01-01", "2020-07-02", "2020-02-01", "2022-01-01", "2021-07-02", "2021-01-01", "2020-12-31",
                   "2020-04-01"]
    study = _study(tmp_path, base, outcome={"time": None, "start": "start", "end": "end", "time_unit": "years",
                                             "horizon": 1, "followup": 2.5})
    data = load_study_data(load_spec(study))
    days = [366, 183, 31, 731, 548, 366, 365, 91]
    assert data.cohort["time"].tolist() == pytest.approx([d / 365.25 for d in days])
    cells = pd.Series([dt.datetime(2020, 1, 1, 12), dt.date(2020, 2, 29), pd.Timestamp("2020-03-01"), 43000.0])
    assert parse_dates(cells).values.tolist()[:3] == [pd.Timestamp("2020-01-01 12:00"), pd.Timestamp("2020-02-29"),
                                                      pd.Timestamp("2020-03-01")]
    assert pd.isna(parse_dates(cells).values.iloc[3])  # a number is not a date (an Excel date that lost its format)


def test_month_first_and_mixed_orders() -> None:
    month_first = parse_dates(pd.Series(["03/04/2020", "04/25/2020"]))
    assert month_first.values.tolist() == [pd.Timestamp("2020-03-04"), pd.Timestamp("2020-04-25")]
    mixed = parse_dates(pd.Series(["25/04/2020", "04/25/2020"], index=[2, 3]))
    assert mixed.problem is not None and "both orders" in mixed.problem[0] and mixed.undecided.all()
    impossible = parse_dates(pd.Series(["2020-02-30", "31/04/2020", "13/01/2020"]))
    assert impossible.values.isna().tolist() == [True, True, False]


# --- the event column ------------------------------------------------------------------------
def test_unquoted_yes_no_alias_keys_keep_their_spelling(tmp_path: Path) -> None:
    """YAML 1.1 reads Yes/No as booleans; a study-file *key* never is one."""
    base = _base()
    base["leakage"] = ["No", "Yes", "Yes", "No", "No", "No", "Yes", "No"]
    study = _study(tmp_path, base)
    text = study.read_text(encoding="utf-8").replace("  followup: 12\n", "  followup: 12\n  event_aliases: {Yes: 1, No: 0}\n")
    study.write_text(text, encoding="utf-8")
    spec = load_spec(study)
    assert spec.outcome.event_aliases == {"Yes": 1, "No": 0}
    assert load_study_data(spec).cohort["leakage"].tolist() == [0, 1, 1, 0, 0, 0, 1, 0]


# --- study-file messages ----------------------------------------------------------------------
def test_study_file_errors_name_the_variable_and_always_have_a_fix() -> None:
    with pytest.raises(InputError) as ei:
        load_spec(BAD / "study" / "wrong_kind.yaml")
    (p,) = ei.value.problems
    assert p.rule == "variable 'severity': kind must be one of continuous, binary, ordinal, nominal (got 'ordered')"
    assert p.fix and p.row == 24
    for path in sorted((BAD / "study").glob("*.yaml")):
        try:
            load_spec(path)
        except InputError as exc:
            for q in exc.problems:
                assert q.fix, (path.name, q)
                if q.column and q.column.startswith("variables."):
                    assert q.rule.startswith("variable '"), (path.name, q)
                assert "pattern" not in q.rule and "^[" not in q.rule, (path.name, q)


def test_two_entries_reading_one_column_are_refused(tmp_path: Path) -> None:
    spec = yaml.safe_load((BAD / "study.yaml").read_text(encoding="utf-8"))
    spec["variables"][0]["column"] = "bmi_kg_m2"
    with pytest.raises(InputError) as ei:
        parse_spec(spec, base_dir=BAD)
    assert "two entries read the same data column: ['bmi_kg_m2']" in str(ei.value)


# --- what the analysis needs ------------------------------------------------------------------
def _validate(study: Path) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["validate", str(study)])
    assert "Traceback" not in result.output
    return result.exit_code, result.output


def test_zero_events_is_refused_by_validate_as_by_analyze(tmp_path: Path) -> None:
    base = _base()
    base["leakage"] = 0
    study = _study(tmp_path, base)
    code, out = _validate(study)
    assert code == EXIT_INPUT_ERROR
    rule = "analysis: there are no events (leakage = 1) among the 7 analysed patients: no model can be fitted"
    assert rule in out and "Valid:" not in out
    data = load_study_data(load_spec(study))
    with pytest.raises(AnalysisError) as ei:
        require_events(data.spec, data.analysed)  # what run_study calls
    assert rule.removeprefix("analysis: ") in str(ei.value)


def test_no_event_before_the_horizon(tmp_path: Path) -> None:
    study = _study(tmp_path, _base(), outcome={"horizon": 1.0})  # first event at 1.2 months
    code, out = _validate(study)
    assert code == EXIT_INPUT_ERROR
    assert "no event at or before the horizon (1 months; the first event is at 1.2)" in out


def test_level_without_events_separates_a_prespecified_model(tmp_path: Path) -> None:
    """'thoracic' (rows 5 and 9) has no events: the prespecified Cox model has no maximum."""
    analysis = {"selection": "prespecified", "predictors": ["fracture_level"]}
    code, out = _validate(_study(tmp_path, _base(), analysis=analysis))
    assert code == EXIT_INPUT_ERROR
    assert "term 'fracture_level[thoracic]' of the model (level 'thoracic')" in out and "separation" in out
    penalized = tmp_path / "penalized"
    penalized.mkdir()
    code, out = _validate(_study(penalized, _base(), analysis={**analysis, "penalizer": 0.1}))
    assert code == 0 and "warning:" in out and "penalized fit" in out


def test_screened_candidate_level_without_events_is_a_warning(tmp_path: Path) -> None:
    spec = load_spec(_study(tmp_path, _base()))
    findings = analysis_needs(spec, load_study_data(spec).analysed)
    assert [f.severity for f in findings if "thoracic" in f.rule] == ["warning"]
    assert not any(f.severity == "error" for f in findings)


def test_fewer_events_than_parameters(tmp_path: Path) -> None:
    predictors = ["age_years", "sex", "ct_value_hu", "severity", "fracture_level"]  # 6 parameters; 2 events (row 3,
    # an event, has no BMI: the complete cases of the candidates)
    study = _study(tmp_path, _base(), analysis={"selection": "prespecified", "predictors": predictors})
    code, out = _validate(study)
    assert code == EXIT_INPUT_ERROR
    assert "analysis: only 2 events for 6 model parameters" in out
    spec = load_spec(study)
    with pytest.raises(AnalysisError, match="only 2 events for 6 model parameters"):
        require_parameters(spec, tuple(predictors), 2)


def test_analysis_problems_in_json_and_csv(tmp_path: Path) -> None:
    base = _base()
    base["leakage"] = 0
    study = _study(tmp_path, base)
    result = CliRunner().invoke(app, ["validate", str(study), "--format", "json", "--problems", str(tmp_path / "p.csv")])
    assert result.exit_code == EXIT_INPUT_ERROR
    doc = json.loads(result.stdout)
    assert doc["status"] == "analysis_refused" and doc["cohort"]["events"]["all_rows"] == 0
    assert "no events" in (tmp_path / "p.csv").read_text(encoding="utf-8")
    assert group_problems([])  == []
