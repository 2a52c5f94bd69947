"""Hostile and mixed-up inputs the bad-input corpus (tests/bad_inputs) does not cover (issue 6, item 1).

* study files that try to run code (``!!python/object/apply`` and friends): refused, never run;
* YAML alias bombs ("billion laughs"), self-referencing aliases, absurd nesting: refused in well
  under a second, while ordinary anchors and aliases keep working;
* mixed encodings: a UTF-8 (BOM) file with one GBK row; an XLSX header with an invisible BOM;
* ``cementleak analyze`` / ``report`` on bad input: exit code 2, the problem table, no traceback,
  the previous outputs untouched and nothing half-written.
"""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from cementleak_stats.cli import app
from cementleak_stats.cohort.io import load_study_data
from cementleak_stats.errors import EXIT_INPUT_ERROR, InputError
from cementleak_stats.spec import load_spec

try:
    from test_io_support import snapshot, write_table
    from test_reliability_support import REPO, study_copy, tree, visible
except ImportError:  # pragma: no cover
    from tests.test_io_support import snapshot, write_table
    from tests.test_reliability_support import REPO, study_copy, tree, visible


def _bomb(levels: int = 9, width: int = 9) -> str:
    """The "billion laughs" document: each anchor lists ``width`` aliases of the previous one."""
    lines = [f"l0: &l0 [{', '.join(['lol'] * width)}]"]
    for i in range(1, levels):
        lines.append(f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * width)}]")
    return "\n".join(lines) + "\n"


_SHIPPED_TEXT = (REPO / "study.yaml").read_text(encoding="utf-8")
MARKER = "cementleak_pwned"

#: id, study-file text, fragment of the rule, guarantee
HOSTILE = [
    ("python-object-apply", f"study: !!python/object/apply:os.mkdir [{MARKER}]\n", "could not determine a constructor",
     "!!python/object/apply is refused and never executed"),
    ("python-object-apply-top", f"!!python/object/apply:os.mkdir\nargs: [{MARKER}]\n", "could not determine a constructor",
     "a code tag on the whole document is refused"),
    ("python-object-new", f"study: !!python/object/new:os.mkdir [{MARKER}]\n", "could not determine a constructor",
     "!!python/object/new is refused"),
    ("python-name", "study: !!python/name:os.system\n", "could not determine a constructor",
     "!!python/name is refused"),
    ("billion-laughs", _bomb(), "alias bomb", "a 9^9-value alias bomb is refused in milliseconds"),
    ("billion-laughs-in-title", _bomb() + "study: {title: *l8, id_column: pid}\ncohort_file: c.csv\n", "alias bomb",
     "a bomb hidden in a value the parser reports is refused before the report is built"),
    ("billion-laughs-in-levels", _bomb() + _SHIPPED_TEXT.replace("levels: [female, male]", "levels: *l8"), "alias bomb",
     "a bomb in a list the schema would walk is refused"),
    ("self-reference", "a: &a [1, *a]\nstudy: *a\n", "referring to themselves",
     "an alias inside its own anchor is refused"),
    ("deep-nesting", "study: " + "[" * 50_000 + "]" * 50_000 + "\n", "nested too deeply",
     "50 000 nested brackets: a clear problem, not a RecursionError traceback"),
]


@pytest.mark.parametrize("case", HOSTILE, ids=[c[0] for c in HOSTILE])
def test_hostile_study_file_is_refused_quickly_and_never_run(case, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    _, text, rule, _ = case
    study = tmp_path / "study.yaml"
    study.write_text(text, encoding="utf-8")
    monkeypatch.chdir(tmp_path)  # an executed os.mkdir would create the marker folder here
    before = snapshot(tmp_path)
    started = time.perf_counter()
    with pytest.raises(InputError) as ei:
        load_spec(study)
    assert time.perf_counter() - started < 5.0  # deep nesting takes ~1 s; the bombs milliseconds
    assert len(ei.value.problems) == 1 and rule in ei.value.problems[0].rule, str(ei.value)
    result = CliRunner().invoke(app, ["validate", str(study)])
    assert result.exit_code == EXIT_INPUT_ERROR and "Traceback" not in result.output
    assert not (tmp_path / MARKER).exists() and snapshot(tmp_path) == before


def test_bombs_are_refused_in_milliseconds(tmp_path: Path) -> None:
    study = tmp_path / "study.yaml"
    study.write_text(_bomb() + "study: {title: *l8, id_column: pid}\n", encoding="utf-8")
    started = time.perf_counter()
    with pytest.raises(InputError):
        load_spec(study)
    assert time.perf_counter() - started < 0.5


def test_ordinary_anchors_and_aliases_still_work(tmp_path: Path) -> None:
    """Reusing one aliases mapping with &/* is legitimate YAML and gives the same study."""
    yes_no = '{"N": "no", "Y": "yes", "No": "no", "Yes": "yes"}'
    text = _SHIPPED_TEXT.replace(f"aliases: {yes_no}", "aliases: *yesno", 2).replace("aliases: *yesno", f"aliases: &yesno {yes_no}", 1)
    assert text.count("*yesno") == 1 and text.count("&yesno") == 1
    (tmp_path / "study.yaml").write_text(text, encoding="utf-8")
    spec = load_spec(tmp_path / "study.yaml")
    shipped = load_spec(REPO / "study.yaml")
    assert spec.variables == shipped.variables


# --- mixed encodings ---------------------------------------------------------------------------
def _cohort_study(tmp_path: Path, cohort: Path) -> Path:
    spec = yaml.safe_load(_SHIPPED_TEXT)
    spec["cohort_file"] = cohort.name
    spec.pop("repeated")
    spec.pop("validation", None)  # the cohort alone
    (tmp_path / "study.yaml").write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    return tmp_path / "study.yaml"


def _mixed_encoding_problem(tmp_path: Path):
    """A UTF-8 (BOM) cohort with Chinese text in row 4 and the same text in GBK in row 8."""
    lines = (REPO / "data" / "cohort.csv").read_bytes().split(b"\n")
    lines[3] = lines[3].replace(b",male,", ",男,".encode("utf-8"), 1).replace(b",female,", ",女,".encode("utf-8"), 1)
    gbk = ",男,".encode("gbk")  # b",\xc4\xd0,": 0xc4 0xd0 is not UTF-8
    lines[7] = lines[7].replace(b",male,", gbk, 1).replace(b",female,", gbk, 1)
    cohort = tmp_path / "cohort.csv"
    cohort.write_bytes(b"\xef\xbb\xbf" + b"\n".join(lines))
    before = cohort.read_bytes()
    with pytest.raises(InputError) as ei:
        load_study_data(load_spec(_cohort_study(tmp_path, cohort)))
    assert cohort.read_bytes() == before
    (p,) = ei.value.problems
    return p, before


def test_utf8_file_with_one_gbk_row_names_that_row(tmp_path: Path) -> None:
    p, _ = _mixed_encoding_problem(tmp_path)
    assert p.row == 8 and "not UTF-8" in p.rule and "UTF-8" in p.fix


def test_utf8_bom_file_names_the_offending_byte_and_offset(tmp_path: Path) -> None:
    p, raw = _mixed_encoding_problem(tmp_path)
    offset = raw.index(b"\xc4\xd0")
    assert f"invalid byte 0xc4 at byte offset {offset}" in p.rule, p.rule


def test_xlsx_header_with_an_invisible_bom_is_explained(tmp_path: Path) -> None:
    frame = pd.read_csv(REPO / "data" / "cohort.csv").rename(columns={"patient_id": "\ufeffpatient_id"})
    cohort = write_table(frame, tmp_path / "cohort.xlsx")
    try:
        load_study_data(load_spec(_cohort_study(tmp_path, cohort)))
    except InputError as exc:
        text = str(exc)
        assert "\\ufeff" in text or "invisible" in text, text
    # (or: the BOM is stripped and the file is read)


def test_xlsx_text_in_another_script_is_reported_with_its_value(tmp_path: Path) -> None:
    frame = pd.read_csv(REPO / "data" / "cohort.csv")
    frame.loc[3, "sex"] = "女"
    cohort = write_table(frame, tmp_path / "cohort.xlsx")
    with pytest.raises(InputError) as ei:
        load_study_data(load_spec(_cohort_study(tmp_path, cohort)))
    (p,) = ei.value.problems
    assert (p.row, p.column, p.value) == (5, "sex", "女") and "unknown level" in p.rule


# --- commands that write: bad input writes nothing -------------------------------------------
def _bad_cohort(c: pd.DataFrame) -> pd.DataFrame:
    c["age_years"] = c["age_years"].astype(object)
    c.loc[2, "age_years"] = "seventy"
    return c


def test_analyze_on_bad_input_leaves_previous_results_untouched(tmp_path: Path) -> None:
    study = study_copy(tmp_path / "study", edit=_bad_cohort)
    out = tmp_path / "out" / "results"
    out.mkdir(parents=True)
    (out / "validation.csv").write_text("index,corrected\nC,0.8\n")  # a previous run's results
    before, inputs = tree(tmp_path / "out"), tree(tmp_path / "study")
    result = CliRunner().invoke(app, ["analyze", str(study), "--out", str(out), "--no-cache"])
    assert result.exit_code == EXIT_INPUT_ERROR
    assert "age_years" in result.output and "not a number" in result.output and "Traceback" not in result.output
    assert tree(tmp_path / "out") == before and tree(tmp_path / "study") == inputs
    assert visible(tmp_path / "out") == ["results"] and [p.name for p in (tmp_path / "out").iterdir()] == ["results"]


def test_report_on_bad_input_leaves_previous_output_untouched(tmp_path: Path) -> None:
    study = study_copy(tmp_path, edit=_bad_cohort)
    (tmp_path / "_quarto.yml").write_text((REPO / "_quarto.yml").read_text(encoding="utf-8"), encoding="utf-8")
    output = tmp_path / "_output" / "report"
    output.mkdir(parents=True)
    (output / "index.html").write_text("<html>previous report</html>")
    before = tree(tmp_path)
    result = CliRunner().invoke(app, ["report", str(study), "--project", str(tmp_path), "--to", "html",
                                      "--engine", "builtin"])
    assert result.exit_code == EXIT_INPUT_ERROR
    assert "not a number" in result.output and "Traceback" not in result.output
    assert tree(tmp_path) == before  # no cache, no lock file, no temporary folder, nothing


GUARANTEES = [(c[0], c[3]) for c in HOSTILE] + [
    ("ordinary-aliases", "legitimate anchors and aliases still load to the same study"),
    ("csv-utf8-with-a-gbk-row", "a GBK row inside a UTF-8 file is reported at its row, with the fix"),
    ("csv-bom-byte-offset", "the offending byte and offset of a file with a UTF-8 BOM are exact"),
    ("xlsx-other-script", "text in another script (女) in an XLSX level column is reported with its value"),
    ("xlsx-bom-in-header", "an invisible BOM in a header is shown escaped in the hint"),
    ("analyze-bad-input", "`cementleak analyze` on bad input: exit 2, problem table, previous results untouched"),
    ("report-bad-input", "`cementleak report` on bad input: exit 2, nothing written in the project"),
]
