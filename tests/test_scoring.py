"""Batch scoring (cementleak_stats/scoring.py): every row scored as ``predict_risk`` and the
calculator score one patient, bad rows listed with the data layer's problems, never dropped.

Uses the Rossi validation fixture (tests/reference/data/external_rossi_study.yaml on
tests/studies/rossi/rossi.csv: seven
prespecified predictors, levels with aliases "0"/"1", integer ranges), fitted once.
"""

from __future__ import annotations

import time
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cementleak_stats.calculator import export_model, score_exported
from cementleak_stats.errors import InputError
from cementleak_stats.export import model_file
from cementleak_stats.nomogram import predict_risk
from cementleak_stats.scoring import score_file, score_table, write_scores
from cementleak_stats.spec import load_spec

REF = Path(__file__).resolve().parent / "reference" / "data"
#: the one Rossi fixture (tests/studies/rossi/make_rossi.py), the cohort of external_rossi_study.yaml
ROSSI = Path(__file__).resolve().parent / "studies" / "rossi" / "rossi.csv"


@cache
def results():
    from cementleak_stats.study import compute_study

    return compute_study(load_spec(REF / "external_rossi_study.yaml"))


def new_patients() -> pd.DataFrame:
    """Rossi rows as new patients, with aliases and five bad rows (spreadsheet rows 3-7)."""
    d = pd.read_csv(ROSSI, dtype=str).head(60).drop(columns=["week", "arrest"])
    d.loc[0:9, "fin"] = d.loc[0:9, "fin"].map({"0": "no", "1": "yes"})  # the levels; the other rows use the aliases 0/1
    d.loc[1, "race"] = "maybe"  # unknown level
    d.loc[2, "age"] = "90"  # outside the study file's range [15, 80]
    d.loc[3, "prio"] = "45"  # inside [0, 50] but beyond the nomogram's axis
    d.loc[4, "mar"] = ""  # missing
    d.loc[5, "age"] = "23,5"  # decimal comma
    return d


def _patient(r, row: pd.Series) -> dict[str, object]:
    return {v: (float(row[v]) if r.spec.variable(v).kind == "continuous" else row[v]) for v in r.model.variables}


def test_every_row_is_scored_as_predict_risk_and_the_calculator(tmp_path):
    r = results()
    f = tmp_path / "new.csv"
    new_patients().to_csv(f, index=False)
    b = score_file(r.spec, model_file(r), f)
    s = b.scores
    assert len(s) == 60 and s["row"].tolist() == list(range(2, 62))  # every row kept, in file order
    assert s["id"].tolist() == new_patients()["id"].tolist()
    assert s.loc[s["row"].isin([3, 4, 5, 6, 7]), "scored"].eq(False).all() and b.n_scored == 55
    calc = export_model(r)
    for _, row in s[s["scored"]].iterrows():
        one = predict_risk(r.spec, r.nomogram, _patient(r, row))
        assert row["risk_at_horizon"] == pytest.approx(one.risk, rel=1e-13)
        assert row["lp"] == pytest.approx(one.lp, rel=1e-13, abs=1e-14)
        assert row["total_points"] == pytest.approx(one.total_points, rel=1e-13)
        pts = dict(zip(one.points["predictor"], one.points["points"]))
        assert [row[f"points_{v}"] for v in r.model.variables] == pytest.approx([pts[v] for v in r.model.variables],
                                                                               rel=1e-13, abs=1e-12)
        page = score_exported(calc, _patient(r, row))  # the calculator's formula
        assert row["risk_at_horizon"] == pytest.approx(page["risk"], rel=1e-12)
    # aliases were read as the levels they stand for
    assert set(s.loc[s["row"] <= 11, "fin"].dropna()) <= {"no", "yes"}


def test_bad_rows_are_listed_with_file_row_column_rule_and_fix(tmp_path):
    r = results()
    f = tmp_path / "new.csv"
    new_patients().to_csv(f, index=False)
    b = score_file(r.spec, model_file(r), f)
    got = {(p.row, p.column): p for p in b.problems}
    assert set(got) == {(3, "race"), (4, "age"), (5, "prio"), (6, "mar"), (7, "age")}
    assert all(p.file == "new.csv" and p.fix for p in b.problems)
    assert "unknown level" in got[3, "race"].rule and got[3, "race"].value == "maybe"
    assert "plausible range [15, 80]" in got[4, "age"].rule
    assert "outside the range the nomogram covers" in got[5, "prio"].rule
    assert "missing value" in got[6, "mar"].rule
    assert "decimal comma" in got[7, "age"].rule
    bad = b.scores[~b.scores["scored"]]
    assert bad["risk_at_horizon"].isna().all() and bad["problem"].str.len().gt(0).all()
    assert b.scores.loc[b.scores["scored"], "problem"].eq("").all()


@pytest.mark.parametrize("suffix", [".xlsx", ".parquet", ".sav"])
def test_other_file_types_give_the_same_scores(tmp_path, suffix):
    r = results()
    d = new_patients()
    csv = tmp_path / "new.csv"
    d.to_csv(csv, index=False)
    other = tmp_path / f"new{suffix}"
    if suffix == ".xlsx":
        d.to_excel(other, index=False)
    elif suffix == ".parquet":
        d.to_parquet(other, index=False)
    else:
        import pyreadstat

        pyreadstat.write_sav(d, str(other))
    a = score_file(r.spec, model_file(r), csv).scores
    b = score_file(r.spec, model_file(r), other).scores
    pd.testing.assert_series_equal(a["risk_at_horizon"], b["risk_at_horizon"])
    assert a["scored"].tolist() == b["scored"].tolist()


def test_a_missing_predictor_column_stops_with_a_clear_error(tmp_path):
    r = results()
    f = tmp_path / "new.csv"
    new_patients().drop(columns=["prio"]).to_csv(f, index=False)
    with pytest.raises(InputError) as err:
        score_file(r.spec, model_file(r), f)
    (p,) = err.value.problems
    assert (p.file, p.column, p.rule) == ("new.csv", "prio", "required column is missing")


def test_the_output_never_replaces_an_input(tmp_path):
    r = results()
    f = tmp_path / "new.csv"
    new_patients().to_csv(f, index=False)
    before = f.read_bytes()
    b = score_file(r.spec, model_file(r), f)
    with pytest.raises(InputError, match="input file"):
        write_scores(b, f, inputs=(f,))
    assert f.read_bytes() == before
    out = write_scores(b, tmp_path / "risks.csv", inputs=(f,))
    back = pd.read_csv(out)
    assert len(back) == 60 and back["risk_at_horizon"].to_numpy() == pytest.approx(
        b.scores["risk_at_horizon"].to_numpy(), rel=1e-9, nan_ok=True)


def test_100000_patients_in_a_few_seconds(tmp_path):
    r = results()
    d = pd.read_csv(ROSSI, dtype=str).head(216).drop(columns=["week", "arrest"])  # development rows: inside the axes
    big = d.sample(100_000, replace=True, random_state=1)
    big["id"] = [f"N{i}" for i in range(len(big))]
    f = tmp_path / "big.csv"
    big.to_csv(f, index=False)
    t0 = time.perf_counter()
    b = score_file(r.spec, model_file(r), f)
    seconds = time.perf_counter() - t0
    assert b.n_scored == 100_000
    assert seconds < 30, f"100,000 rows took {seconds:.1f} s"  # ~3-5 s on the 2-core development machine
    # the same patients score the same as the development rows do in the analysis
    first = b.scores.drop_duplicates("age").head(3)
    for _, row in first.iterrows():
        assert row["risk_at_horizon"] == pytest.approx(predict_risk(r.spec, r.nomogram, _patient(r, row)).risk, rel=1e-13)


def test_score_table_carries_no_identifier_when_the_input_has_none():
    r = results()
    raw = new_patients().drop(columns=["id"]).astype(object)
    raw.index = pd.RangeIndex(2, len(raw) + 2, name="row")
    s = score_table(r.spec, model_file(r), raw, file="x.csv").scores
    assert "id" not in s.columns and np.isfinite(s.loc[s["scored"], "risk_at_horizon"]).all()


# --- the command line: cementleak predict --input FILE --out FILE ---------------------------
def _cli(tmp_path: Path, *args: str):
    from typer.testing import CliRunner

    from cementleak_stats.cli import app

    return CliRunner().invoke(app, ["predict", *args, "--study", str(tmp_path / "study.yaml"),
                                    "--results", str(tmp_path / "no-results")], env={"COLUMNS": "250", "NO_COLOR": "1"})


@pytest.fixture()
def study_dir(tmp_path: Path) -> Path:
    study = (REF / "external_rossi_study.yaml").read_text(encoding="utf-8")
    (tmp_path / "study.yaml").write_text(study.replace("../../studies/rossi/rossi.csv", "rossi.csv"), encoding="utf-8")
    (tmp_path / "rossi.csv").write_bytes(ROSSI.read_bytes())
    new_patients().to_csv(tmp_path / "new.csv", index=False)
    return tmp_path


def test_cli_batch_scoring_writes_every_row_and_lists_the_bad_ones(study_dir: Path):
    r = results()
    before = (study_dir / "new.csv").read_bytes()
    res = _cli(study_dir, "--input", str(study_dir / "new.csv"), "--out", str(study_dir / "risks.csv"))
    assert res.exit_code == 2, res.output  # some rows could not be scored
    assert "scored 55 of 60 rows" in res.output and "new.csv: row 3: column 'race'" in res.output
    out = pd.read_csv(study_dir / "risks.csv")
    want = score_file(r.spec, model_file(r), study_dir / "new.csv").scores
    assert out["row"].tolist() == want["row"].tolist()
    assert out["risk_at_horizon"].to_numpy() == pytest.approx(want["risk_at_horizon"].to_numpy(), rel=1e-9, nan_ok=True)
    assert (study_dir / "new.csv").read_bytes() == before
    # the same patient typed on the command line: the same risk
    row = out[out["scored"]].iloc[0]
    typed = [f"{v}={row[v]:g}" if r.spec.variable(v).kind == "continuous" else f"{v}={row[v]}" for v in r.model.variables]
    one = _cli(study_dir, *typed, "--json")
    assert one.exit_code == 0, one.output
    import json

    assert json.loads(one.output)["risk"] == pytest.approx(row["risk_at_horizon"], rel=1e-9)


def test_cli_batch_scoring_of_good_rows_exits_0_and_refuses_to_overwrite_the_input(study_dir: Path):
    good = new_patients().drop(index=[1, 2, 3, 4, 5])
    good.to_csv(study_dir / "good.csv", index=False)
    res = _cli(study_dir, "--input", str(study_dir / "good.csv"), "--out", str(study_dir / "risks.csv"))
    assert res.exit_code == 0, res.output
    assert len(pd.read_csv(study_dir / "risks.csv")) == 55
    before = (study_dir / "good.csv").read_bytes()
    res = _cli(study_dir, "--input", str(study_dir / "good.csv"), "--out", str(study_dir / "good.csv"))
    assert res.exit_code == 2 and "input file" in res.output
    assert (study_dir / "good.csv").read_bytes() == before
    assert _cli(study_dir, "--input", str(study_dir / "good.csv")).exit_code == 2  # --out is needed


def test_a_study_with_several_horizons_gets_a_risk_column_for_each(tmp_path):
    # the Rossi fixture has one horizon (52 weeks): its model file with 26 weeks added, S0 from the same model
    from cementleak_stats.model_file import patient_values, score_patient

    r = results()
    f = tmp_path / "new.csv"
    new_patients().to_csv(f, index=False)
    data = model_file(r)
    data["model"]["baseline_survival_at_horizons"] = [
        {"horizon": h, "survival": float(r.model.baseline_survival(h))} for h in (26.0, 52.0)]
    s = score_file(r.spec, data, f).scores
    assert list(s.columns).index("risk_26") == list(s.columns).index("risk_at_horizon") + 1
    for _, row in s[s["scored"]].iterrows():
        one = score_patient(data, patient_values(data, _patient(r, row)))  # what predict prints for this patient
        assert [row["risk_26"], row["risk_52"]] == [risk for _, risk in one.risks]  # the same bits
        assert row["risk_52"] == row["risk_at_horizon"]
        # the documented formula: 1 - S0(26)^exp(lp), S0 the model's Efron baseline at the means
        assert row["risk_26"] == pytest.approx(1 - r.model.baseline_survival(26.0) ** np.exp(row["lp"]), rel=1e-12)
    assert s.loc[~s["scored"], ["risk_26", "risk_52"]].isna().all().all()
    single = score_file(r.spec, model_file(r), f).scores
    assert not any(c.startswith("risk_") and c != "risk_at_horizon" for c in single.columns)
