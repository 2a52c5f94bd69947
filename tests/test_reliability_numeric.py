"""Numerical edge cases through the whole pipeline (issue 6, item 2).

Every case is the shipped cohort (``data/cohort.csv``) edited in a temporary folder, with a copy
of ``study.yaml`` pointing at it (bootstrap B = 20).  A case either stops with an
:class:`AnalysisError` that says why — ``cementleak analyze`` then exits with code 2, prints the
message, no traceback, and writes nothing — or gives a result whose every number is finite and
flagged where it needs to be (penalized fit, failed bootstrap replicates), never an absurd one.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from cementleak_stats.cli import app
from cementleak_stats.document import ReportView
from cementleak_stats.errors import EXIT_INPUT_ERROR, AnalysisError
from cementleak_stats.export import write_results
from cementleak_stats.spec import load_spec
from cementleak_stats.study import compute_study

try:
    from test_reliability_support import SHIPPED, censor, cli, set_range, study_copy, visible, with_events
except ImportError:  # pragma: no cover
    from tests.test_reliability_support import SHIPPED, censor, cli, set_range, study_copy, visible, with_events

EVENT, TIME = SHIPPED.outcome.event, SHIPPED.outcome.time
#: the five published predictors, prespecified where a case needs a fixed model
PUBLISHED = ["ct_value_hu", "fracture_severity", "cortical_fracture", "cement_viscosity", "cement_volume_ml"]
PRESPECIFIED = {"selection": "prespecified", "predictors": PUBLISHED}


def _all_events(c: pd.DataFrame) -> pd.DataFrame:
    c[EVENT] = 1
    for name in SHIPPED.outcome.event_details:  # a level meaning "an event happened"
        var = SHIPPED.variable(name)
        c.loc[c[name] == var.ref_level, name] = next(lv for lv in var.levels if lv != var.ref_level)
    return c


def _no_events_in_level(c: pd.DataFrame) -> pd.DataFrame:
    """No patient with a thoracic fracture has the event: monotone likelihood for that level."""
    return censor(c, c["fracture_level"] == "thoracic")


def _constant(c: pd.DataFrame) -> pd.DataFrame:
    c["cement_viscosity"] = "high"
    return c


def _collinear(c: pd.DataFrame) -> pd.DataFrame:
    c["ct_value_doubled"] = (2 * c["ct_value_hu"] + 1).round(1)
    return c


def _add_collinear(variables: list[dict]) -> None:
    variables.append({"name": "ct_value_doubled", "label": "CT value doubled", "kind": "continuous",
                      "range": [0, 600], "candidate": True})


def _outlier(on_event: bool):
    def edit(c: pd.DataFrame) -> pd.DataFrame:
        row = c.index[c[EVENT] == int(on_event)][0]
        c.loc[row, "days_injury_to_surgery"] = 10_000_000
        return c
    return edit


WITH_DAYS = {"selection": "prespecified", "predictors": [*PUBLISHED, "days_injury_to_surgery"]}

#: cases that must stop with a diagnosis: id, edit, analysis options, variables edit,
#: fragments the message must contain, guarantee
ERROR_CASES = [
    ("zero-events", lambda c: censor(c, c[EVENT] == 1), None, None, ["no events"],
     "no events at all: stopped, no model or report"),
    ("all-events", _all_events, None, None, ["every analysed patient has the event"],
     "every patient with the event: stopped (a Cox model needs event-free patients)"),
    ("fewer-events-than-parameters", with_events(4), PRESPECIFIED, None, ["only 4 events for 5 model parameters"],
     "4 events for 5 parameters: stopped before any fit, naming the events-per-parameter rule"),
    ("level-without-events", _no_events_in_level, None, None,
     ["fracture_level[thoracic]", "monotone likelihood / separation", "analysis: penalizer"],
     "a level with no events (separation) is detected, named, and the penalized fit offered in study-file terms"),
    ("constant-predictor", _constant, PRESPECIFIED, None, ["'cement_viscosity'", "is constant"],
     "a prespecified predictor with one level: stopped, naming the variable"),
    ("collinear-predictors", _collinear, None, _add_collinear,
     ["perfectly collinear", "'ct_value_doubled' = +2*'ct_value_hu'"],
     "an exact linear combination of predictors is named with its coefficients"),
    ("extreme-value-censored", _outlier(False), WITH_DAYS, set_range("days_injury_to_surgery", 0, 1e8),
     ["days_injury_to_surgery", "running away"],
     "one value 10^5 times the others (range widened) gives a flagged runaway coefficient, not a report"),
]


@pytest.mark.parametrize("case", ERROR_CASES, ids=[c[0] for c in ERROR_CASES])
def test_error_case_is_diagnosed_in_compute_and_cli(case, tmp_path: Path) -> None:
    case_id, edit, analysis, variables, fragments, _ = case
    study = study_copy(tmp_path / "study", edit=edit, analysis=analysis, variables=variables)
    with pytest.raises(AnalysisError) as ei:
        compute_study(load_spec(study))
    message = str(ei.value)
    for fragment in fragments:
        assert fragment in message, message

    out = tmp_path / "out" / "results"
    result = CliRunner().invoke(app, ["analyze", str(study), "--out", str(out), "--no-cache"])
    assert result.exit_code == EXIT_INPUT_ERROR, result.output
    flat = "".join(result.output.split())  # rich wraps the message at the terminal width
    assert "Theanalysiscannotberun" in flat
    for fragment in fragments:
        if "[" not in fragment:  # see test_cli_prints_square_brackets_of_term_names
            assert "".join(fragment.split()) in flat, result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert not out.exists() and not (tmp_path / "out").exists()  # nothing written, not even the folder


def test_cli_prints_square_brackets_of_term_names(tmp_path: Path) -> None:
    study = study_copy(tmp_path, edit=_no_events_in_level)
    result = CliRunner().invoke(app, ["analyze", str(study), "--out", str(tmp_path / "out"), "--no-cache"])
    assert result.exit_code == EXIT_INPUT_ERROR
    assert "fracture_level[thoracic]" in "".join(result.output.split())


# --- cases that give a result ------------------------------------------------------------------
REFERENCE = Path(__file__).resolve().parent / "reference"


def test_an_outlier_on_a_patient_with_the_event_gives_r_coxph_estimates(tmp_path: Path) -> None:
    """The same outlier on a patient with the event: R converges (7 iterations) and so does the
    package (lifelines did not, and this case used to stop the analysis)."""
    study = study_copy(tmp_path / "study", edit=_outlier(True), analysis=WITH_DAYS,
                       variables=set_range("days_injury_to_surgery", 0, 1e8))
    r = compute_study(load_spec(study))
    cols = [TIME, EVENT, *r.model.variables]
    written = tmp_path / "extreme_value_event.csv"
    r.analysed[cols].to_csv(written, index=False)
    # R survival 3.5: coxph(Surv(t, e) ~ ..., ties = "efron") on these data (tests/reference/extreme_value.R)
    ref = json.loads((REFERENCE / "extreme_value.json").read_text(encoding="utf-8"))
    assert written.read_bytes() == (REFERENCE / "data" / "extreme_value_event.csv").read_bytes(), \
        "the edited cohort changed: rerun Rscript tests/reference/extreme_value.R with the new data"
    summary = r.model.summary
    np.testing.assert_allclose(summary["coef"].to_numpy(), ref["coef"], rtol=1e-6, atol=1e-12)
    np.testing.assert_allclose(summary["se"].to_numpy(), ref["se"], rtol=1e-6)
    assert np.all(np.isfinite(summary["coef"])) and not any(d.fatal for d in r.model.diagnostics)


def _finite_tables(r, tmp_path: Path) -> dict[str, pd.DataFrame]:
    """Write the results tables (no figures) and check no table holds an infinite number.

    A separated term may have an infinite CI limit (its honest value) only where it is flagged:
    a univariable-screen row with a note, or a logistic sensitivity fit that says it did not
    converge.
    """
    write_results(r, tmp_path / "results", figures=False)
    tables = {p.stem: pd.read_csv(p) for p in (tmp_path / "results").glob("*.csv")}
    for name, frame in tables.items():
        inf = np.isinf(frame.select_dtypes("number").to_numpy(float)).any(axis=1)
        if name == "logistic_sensitivity" and inf.any():
            assert not r.logistic.converged and any("did not converge" in n for n in r.logistic.notes)
            continue
        if "note" in frame:
            inf &= frame["note"].fillna("").eq("").to_numpy()
        assert not inf.any(), f"{name}.csv holds an infinite number without a note:\n{frame[inf]}"
    risk = tables["predictions"]["risk_at_horizon"]
    assert risk.between(0, 1).all()
    return tables


def test_constant_candidate_is_left_out_by_the_screen_with_a_note(tmp_path: Path) -> None:
    r = compute_study(load_spec(study_copy(tmp_path, edit=_constant)))
    row = r.screen[r.screen["variable"] == "cement_viscosity"].iloc[0]
    assert not row["selected"] and "is constant" in row["note"]
    assert "cement_viscosity" not in r.predictors
    tables = _finite_tables(r, tmp_path)
    assert "is constant" in tables["cox_univariable"].set_index("variable").loc["cement_viscosity", "note"]


def test_separation_with_penalizer_gives_a_reported_penalized_model(tmp_path: Path) -> None:
    study = study_copy(tmp_path, edit=_no_events_in_level, analysis={"penalizer": 0.1})
    r = compute_study(load_spec(study))
    assert r.model.penalizer == 0.1 and "fracture_level" in r.predictors
    s = r.model.summary.set_index("term")
    assert np.isfinite(s[["coef", "se", "hr", "ci_low", "ci_high"]].to_numpy()).all()
    # shrunk, not running away: the separated level's HR stays within a plausible range
    assert abs(s.loc["fracture_level[thoracic]", "coef"]) < 5
    assert any("ridge-penalized (analysis.penalizer = 0.1" in n for n in r.notes)
    # the unpenalized bootstrap refits separate again: every failure is counted and said
    assert r.validation["n_failed"].max() > 0
    assert any("could not be refitted" in n for n in r.notes)
    _finite_tables(r, tmp_path)
    summary = json.loads((tmp_path / "results" / "summary.json").read_text())
    assert summary["penalizer"] == 0.1 and summary["notes"] == list(r.notes)


@pytest.mark.slow
def test_penalized_study_through_cementleak_analyze(tmp_path: Path) -> None:
    """The whole command, figures included, on a penalized model whose bootstrap refits all fail."""
    study = study_copy(tmp_path / "study", edit=_no_events_in_level, analysis={"penalizer": 0.1})
    out = tmp_path / "out" / "results"
    res = cli("analyze", study, "--out", out, "--no-cache", cwd=tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["penalizer"] == 0.1 and any("ridge-penalized" in n for n in summary["notes"])
    assert {p.stem for p in (out / "figures").glob("*.pdf")} == {p.stem for p in (out / "figures").glob("*.png")}
    assert any((out / "figures").glob("*calibration*.png"))


@pytest.mark.parametrize("factor", [1e6, 1e-6])
def test_rescaled_predictor_gives_the_same_risks(factor: float, tmp_path: Path) -> None:
    """Extreme units (mL x 10^6 or x 10^-6) change only the coefficient's scale; the HR is reported
    per a power of ten when per 1 unit it overflows (x 10^-6), and flagged when it shows as 1.00 (x 10^6)."""
    def rescale(c: pd.DataFrame) -> pd.DataFrame:
        c["cement_volume_ml"] = c["cement_volume_ml"] * factor
        return c

    base = compute_study(load_spec(study_copy(tmp_path / "base", analysis=PRESPECIFIED)))
    r = compute_study(load_spec(study_copy(tmp_path / "scaled", edit=rescale, analysis=PRESPECIFIED,
                                           variables=set_range("cement_volume_ml", 0, 15 * factor))))
    np.testing.assert_allclose(r.predictions["risk_at_horizon"], base.predictions["risk_at_horizon"], rtol=1e-7, atol=1e-12)
    b, s = base.model.summary.set_index("term"), r.model.summary.set_index("term")
    np.testing.assert_allclose(s.loc["cement_volume_ml", "coef"] * factor, b.loc["cement_volume_ml", "coef"], rtol=1e-6)
    np.testing.assert_allclose(s["p_value"], b["p_value"], rtol=1e-6)
    np.testing.assert_allclose(r.concordance["estimate"], base.concordance["estimate"], rtol=1e-9)
    np.testing.assert_allclose(r.validation["corrected"], base.validation["corrected"], rtol=1e-5, atol=1e-7)
    assert r.nomogram.points["points"].between(0, 100 + 1e-9).all()
    tables = _finite_tables(r, tmp_path / "scaled")
    row = tables["cox_multivariable"].set_index("term").loc["cement_volume_ml"]
    label = next(t for t in r.forest["label"] if t.startswith("Injected cement volume"))
    if factor < 1:  # per 1 unit exp(8e5) = inf: reported per 10^-6 units, i.e. per original mL
        assert row["per"] == pytest.approx(1e-6) and math.isfinite(row["hr"])
        np.testing.assert_allclose(s.loc["cement_volume_ml", ["hr", "ci_low", "ci_high"]].to_numpy(float),
                                   b.loc["cement_volume_ml", ["hr", "ci_low", "ci_high"]].to_numpy(float), rtol=1e-6)
        assert label.endswith("(per 10⁻⁶ mL)")
        assert any("reported per 10⁻⁶ mL" in n and "not a finite number" in n for n in r.notes), r.notes
    else:  # per 1 unit the HR is 1.000001: kept per unit (equals R), flagged with the unit to set
        assert row["per"] == 1 and label.endswith("(per mL)")
        assert any("shows as 1.00 to two decimals" in n and "`per: 1000000`" in n for n in r.notes), r.notes


def test_per_in_the_study_file_reports_the_hr_per_that_many_units(tmp_path: Path) -> None:
    """`per: 10` on a continuous predictor: HR per 10 HU, labels say so; coefficients stay per 1 HU."""
    def per_10(variables: list[dict]) -> None:
        next(v for v in variables if v["name"] == "ct_value_hu")["per"] = 10

    base = compute_study(load_spec(study_copy(tmp_path / "base", analysis=PRESPECIFIED)))
    r = compute_study(load_spec(study_copy(tmp_path / "per", analysis=PRESPECIFIED, variables=per_10)))
    b, s = base.model.summary.set_index("term"), r.model.summary.set_index("term")
    # R survival 3.5: coxph(...) coefficients per 1 HU (tests/test_cox.py); identical here
    for col in ("coef", "se", "z", "p_value"):
        assert s[col].equals(b[col]), col
    np.testing.assert_allclose(s.loc["ct_value_hu", ["hr", "ci_low", "ci_high"]].to_numpy(float),
                               b.loc["ct_value_hu", ["hr", "ci_low", "ci_high"]].to_numpy(float) ** 10, rtol=1e-12)
    assert s.loc["ct_value_hu", "per"] == 10 and (s.drop(index="ct_value_hu")["per"] == 1).all()
    assert "CT value (per 10 HU)" in list(r.forest["label"])
    screen = r.screen.set_index("term")
    assert screen.loc["ct_value_hu", "label"] == "CT value (per 10 HU)" and screen.loc["ct_value_hu", "per"] == 10
    assert not [n for n in r.notes if "hazard ratio of" in n]  # a unit the study file chose needs no note
    np.testing.assert_array_equal(r.predictions["risk_at_horizon"], base.predictions["risk_at_horizon"])


def _rare_level(c: pd.DataFrame) -> pd.DataFrame:
    """Two thoracic patients left (one with the event): many bootstrap samples miss the level."""
    thoracic = c.index[c["fracture_level"] == "thoracic"]
    keep = [thoracic[c.loc[thoracic, EVENT] == 1][0], thoracic[c.loc[thoracic, EVENT] == 0][0]]
    c.loc[thoracic.difference(keep), "fracture_level"] = "lumbar"
    return c


def test_failed_bootstrap_replicates_are_counted_and_reported(tmp_path: Path) -> None:
    study = study_copy(tmp_path, edit=_rare_level,
                       analysis={"selection": "prespecified", "predictors": [*PUBLISHED, "fracture_level"]})
    r = compute_study(load_spec(study))
    B = r.spec.analysis.bootstrap_b
    v_failed, c_failed = int(r.validation["n_failed"].max()), int(r.calibration.groups["n_failed"].max())
    assert 0 < v_failed < B and 0 < c_failed < B
    assert (r.validation["n_used"] + r.validation["n_failed"] == B).all()
    tables = _finite_tables(r, tmp_path)
    assert set(tables["validation"]["n_failed"]) == {v_failed}
    assert set(tables["calibration"]["n_failed"]) == {c_failed}
    note = next(n for n in r.notes if "could not be refitted" in n)
    assert f"{v_failed} of {B} in validation" in note and f"{c_failed} of {B} in calibration" in note
    # the report's sentence on failed refits takes both counts from the same tables
    assert ReportView(r).n_failed == f"{v_failed} of {B} in the validation and {c_failed} of {B} in the calibration"
    section = (Path(__file__).resolve().parents[1] / "report" / "_sections" / "validation.qmd").read_text(encoding="utf-8")
    assert "R.n_failed" in section


def test_clean_fit_has_no_notes_and_no_failures(tmp_path: Path) -> None:
    """The shipped data: nothing to flag (a note is never boilerplate)."""
    r = compute_study(load_spec(study_copy(tmp_path)))
    assert r.notes == () and r.model.penalizer == 0 and r.model.ok
    assert r.validation["n_failed"].max() == 0 and r.model_imputed is None
    assert all(math.isfinite(x) for x in r.model.summary["coef"])
    assert visible(tmp_path) == ["cohort.csv", "study.yaml"]  # compute_study writes nothing


GUARANTEES = [(c[0], c[5]) for c in ERROR_CASES] + [
    ("constant-candidate-screened", "a constant candidate is left out by the screen with a note; the analysis goes on"),
    ("separation-penalized", "`analysis.penalizer` fits and reports a ridge-penalized model (notes, summary.json)"),
    ("penalized-through-cli", "`cementleak analyze` writes every table and figure of a penalized model"),
    ("cli-square-brackets", "term names such as fracture_level[thoracic] survive the CLI's rich output (escaped)"),
    ("rescaled-predictor (x1e6)", "extreme units give the same risks, P values, C and validation; an HR per unit "
                                  "that shows as 1.00 is flagged with the `per:` to set"),
    ("rescaled-predictor (x1e-6)", "small units: the refits work (constant-column test relative to the column's "
                                   "spread) and the HR, which overflows per unit, is reported per 10⁻⁶ units with a note"),
    ("per-in-study-file", "`per: 10` reports the HR per 10 units (labels say so); coefficients, SE and P stay per "
                          "unit, as R"),
    ("failed-bootstrap-replicates", "failed refits are counted in validation.csv / calibration.csv, the notes and "
                                    "the report sentence"),
    ("clean-fit", "the shipped data give no notes and no failed replicates"),
]
