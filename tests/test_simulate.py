"""The synthetic-cohort generator (cementleak_stats.synthetic).

No external reference numbers here: the generator is checked against its own documented truth
(TRUE_COEFFICIENTS, the Weibull baseline, the calibration to 27 % events) by refitting a Cox model
on a large simulated sample, and against the study file's columns, levels and ranges.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from lifelines import CoxPHFitter

from cementleak_stats import synthetic as sim
from cementleak_stats.design import encode
from cementleak_stats.errors import InputError
from cementleak_stats.spec import load_spec, parse_spec
from cementleak_stats.synthetic.files import _dictionary

ROOT = Path(__file__).resolve().parents[1]
SPEC = load_spec(ROOT / "study.yaml")


def _assert_valid_against_spec(study: sim.SyntheticStudy) -> None:
    c, o = study.cohort, study.outcomes
    assert tuple(c.columns) == SPEC.columns
    assert c[SPEC.study.id_column].is_unique
    for v in SPEC.variables:
        col = c[v.name]
        assert col.notna().all(), v.name
        if v.kind == "continuous":
            lo, hi = v.range
            assert col.between(lo, hi).all(), v.name
            if v.integer:
                assert (col == np.round(col)).all(), v.name
        else:
            assert set(col.astype(str)) <= set(v.levels), v.name
    t = c[SPEC.outcome.time]
    assert ((t > 0) & (t <= SPEC.outcome.followup)).all()
    assert set(c[SPEC.outcome.event]) <= {0, 1}
    rep = SPEC.repeated
    assert tuple(o.columns) == (rep.id, rep.timepoint, *(m.name for m in rep.measures))
    assert set(o[rep.timepoint].astype(str)) == {tp.name for tp in rep.timepoints}
    for m in rep.measures:
        assert o[m.name].between(*m.range).all(), m.name
    leak_ids = set(c.loc[c[SPEC.outcome.event] == 1, SPEC.study.id_column])
    assert set(o[rep.id]) == leak_ids
    assert len(o) == len(leak_ids) * len(rep.timepoints)


@pytest.mark.parametrize(("n", "seed"), [(100, sim.DEFAULT_SEED), (100, 1), (1000, 7), (12345, 3)])
def test_columns_levels_and_ranges_follow_the_study_file(n: int, seed: int) -> None:
    _assert_valid_against_spec(sim.simulate_study(n=n, seed=seed))


@pytest.mark.parametrize("n", [100, 1000, 12345])
def test_calibration_gives_exactly_27_percent_events_and_censoring_at_12(n: int) -> None:
    c = sim.simulate_study(n=n, seed=11).cohort
    event, time = c[SPEC.outcome.event], c[SPEC.outcome.time]
    assert event.sum() == round(0.27 * n)
    assert (time[event == 0] == 12.0).all()
    assert (time[event == 1] >= sim.LATENCY_MONTHS).all() and (time[event == 1] < 12.0).all()


def test_leakage_types_are_in_the_published_proportions_at_larger_n() -> None:
    c = sim.simulate_study(n=1000, seed=5).cohort  # 270 events = 10 x 27
    leak = c[c[SPEC.outcome.event] == 1]
    counts = leak.groupby(["leakage_type", "management"], observed=True).size().to_dict()
    assert counts == {("intradiscal_endplate", "no_treatment"): 240, ("pulmonary_embolism", "respiratory_medicine"): 10,
                      ("symptomatic", "endoscopic_removal"): 20}
    assert (c.loc[c[SPEC.outcome.event] == 0, ["leakage_type", "management"]].astype(str) == "none").all().all()


def test_same_seed_same_study_different_seed_different_study() -> None:
    a, b, other = sim.simulate_study(seed=3), sim.simulate_study(seed=3), sim.simulate_study(seed=4)
    pd.testing.assert_frame_equal(a.cohort, b.cohort)
    pd.testing.assert_frame_equal(a.outcomes, b.outcomes)
    assert not a.cohort.drop(columns=SPEC.study.id_column).equals(other.cohort.drop(columns=SPEC.study.id_column))


def test_write_synthetic_is_byte_identical_for_a_seed_and_differs_between_seeds(tmp_path: Path) -> None:
    first = sim.write_synthetic(tmp_path / "a", seed=21, n=100, spec=SPEC)
    second = sim.write_synthetic(tmp_path / "b", seed=21, n=100, spec=SPEC)
    assert [p.name for p in first] == ["cohort.csv", "outcomes.csv", "cohort_centre2.csv", "dictionary.csv", "README.md"]
    for p, q in zip(first, second):
        assert p.read_bytes() == q.read_bytes(), p.name
    other = sim.write_synthetic(tmp_path / "c", seed=22, n=100, spec=SPEC)
    assert first[0].read_bytes() != other[0].read_bytes()
    assert first[1].read_bytes() != other[1].read_bytes()
    assert b"\r" not in first[0].read_bytes()
    # a non-default copy says so in its README
    assert "not the shipped defaults" in first[4].read_text(encoding="utf-8")
    assert not list(tmp_path.glob("*/.*.tmp"))  # no temporary files left behind


def test_csv_has_the_documented_decimals(tmp_path: Path) -> None:
    path = sim.write_synthetic(tmp_path, seed=2, n=100, spec=SPEC)[0]
    raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    patterns = {"age_years": r"\d+", "ct_value_hu": r"\d+\.\d", "bmi_kg_m2": r"\d+\.\d", "bmd_t_score": r"-\d\.\d",
                "cement_volume_ml": r"\d+\.\d", "days_injury_to_surgery": r"\d+", SPEC.outcome.time: r"\d+\.\d\d",
                SPEC.outcome.event: r"[01]", SPEC.study.id_column: r"SYN-\d{3}"}
    for col, pattern in patterns.items():
        assert raw[col].str.fullmatch(pattern).all(), col


def test_true_coefficients_are_recovered_in_a_large_sample() -> None:
    """Refit the full candidate model on 20,000 simulated patients: every estimate within 4 SE
    of its documented true value (nulls included), i.e. the generator is the model it documents."""
    study = sim.simulate_study(n=20_000, seed=2)
    c = study.cohort
    design = encode(SPEC, c, [v.name for v in SPEC.candidates])
    df = design.X.assign(_t=c[SPEC.outcome.time].to_numpy(float), _e=c[SPEC.outcome.event].to_numpy(float))
    cph = CoxPHFitter().fit(df, duration_col="_t", event_col="_e")
    truth = np.array([sim.TRUE_COEFFICIENTS[t.variable] for t in design.terms])
    z = (cph.params_.to_numpy() - truth) / cph.standard_errors_.to_numpy()
    assert np.all(np.abs(z) < 4), dict(zip(design.term_names, z.round(2)))
    # Weibull baseline: H0(t) = H0(12) ((t - t0) / (12 - t0))^k at x = 0
    times = np.array([0.5, 2.0, 6.0, 11.5])
    zero = pd.DataFrame(0.0, index=[0], columns=design.term_names)
    fitted = cph.predict_cumulative_hazard(zero, times=times).to_numpy().ravel()
    true = study.baseline_cumhaz * ((times - sim.LATENCY_MONTHS) / (12 - sim.LATENCY_MONTHS)) ** sim.WEIBULL_SHAPE
    np.testing.assert_allclose(fitted, true, rtol=0.10)


def test_docstring_table_states_the_true_coefficients() -> None:
    doc = sim.__doc__
    for name, beta in sim.TRUE_COEFFICIENTS.items():
        if beta != 0.0:
            assert re.search(rf"^{name}\s.*{re.escape(f'{beta:+.3f}')}\s+{np.exp(beta):.3f}", doc, re.M), name
        else:
            assert name in doc, name


def test_large_cohorts_are_quick() -> None:
    import time

    start = time.perf_counter()
    study = sim.simulate_study(n=100_000, seed=1)
    assert time.perf_counter() - start < 5.0
    assert study.cohort[SPEC.outcome.event].sum() == 27_000
    assert study.cohort[SPEC.study.id_column].iloc[-1] == "SYN-100000"


def test_checks_can_fail() -> None:
    """check_published_figures is not vacuous: a tampered cohort fails (and seed 1 fails, see below)."""
    study = sim.simulate_study()
    cohort = study.cohort.copy()
    first_event = cohort.index[cohort[SPEC.outcome.event] == 1][0]
    cohort.loc[first_event, [SPEC.outcome.event, SPEC.outcome.time]] = [0, 12.0]
    tampered = sim.check_published_figures(sim.SyntheticStudy(cohort, study.outcomes, 0, 100, 1.0), spec=SPEC)
    failed = set(tampered.loc[~tampered["ok"], "check"])
    assert "leakage events" in failed
    assert list(tampered.columns) == ["check", "expected", "observed", "ok"]


def test_the_default_seed_passes_every_check() -> None:
    found = sim.search_seed(start=sim.DEFAULT_SEED, max_tries=1, spec=SPEC)
    assert found.seed == sim.DEFAULT_SEED and found.tried == 1 and found.checks["ok"].all()


@pytest.mark.slow
def test_search_from_the_documented_start_finds_the_default_seed() -> None:
    found = sim.search_seed(spec=SPEC)  # re-runs the documented search (about 1 s per seed)
    assert (found.seed, found.tried) == (sim.DEFAULT_SEED, sim.DEFAULT_SEED - sim.SEARCH_START + 1)


def test_search_reports_failure() -> None:
    # seed 1 is rejected by check_published_figures (the search went on to the default seed)
    with pytest.raises(RuntimeError, match="no seed"):
        sim.search_seed(start=1, max_tries=1, spec=SPEC)


def test_a_study_file_with_other_columns_is_refused(tmp_path: Path) -> None:
    data = yaml.safe_load((ROOT / "study.yaml").read_text(encoding="utf-8"))
    data["variables"][0]["name"] = "age_at_surgery"
    other = parse_spec(data, base_dir=tmp_path)
    with pytest.raises(InputError) as err:
        sim.write_synthetic(tmp_path / "out", spec=other)
    assert "age_at_surgery" in str(err.value)
    assert not (tmp_path / "out").exists()  # nothing written


def test_dictionary_documents_every_column_from_the_study_file() -> None:
    d = _dictionary(SPEC)
    assert list(d.columns) == ["file", "column", "label", "unit", "kind", "levels", "description"]
    cohort_rows = d[d["file"] == "cohort.csv"]
    assert tuple(cohort_rows["column"]) == SPEC.columns
    ct = cohort_rows.set_index("column").loc["ct_value_hu"]
    assert (ct["label"], ct["unit"]) == (SPEC.variable("ct_value_hu").label, SPEC.variable("ct_value_hu").unit)
    sev = cohort_rows.set_index("column").loc["fracture_severity"]
    assert sev["levels"] == "|".join(SPEC.variable("fracture_severity").levels)
    assert set(d.loc[d["file"] == "outcomes.csv", "column"]) == {"patient_id", "timepoint", "vas", "odi_percent"}


def test_cli_simulate_writes_the_files_and_refuses_without_a_study_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from cementleak_stats.cli import app

    runner = CliRunner()
    monkeypatch.chdir(ROOT)
    res = runner.invoke(app, ["simulate", "--out", str(tmp_path / "out"), "--seed", "3", "--n", "50"])
    assert res.exit_code == 0, res.output
    assert "SYNTHETIC" in res.output
    assert (tmp_path / "out" / "cohort.csv").read_bytes() == sim.write_synthetic(tmp_path / "api", seed=3, n=50, spec=SPEC)[0].read_bytes()
    monkeypatch.chdir(tmp_path)  # no study.yaml here
    res = runner.invoke(app, ["simulate", "--out", str(tmp_path / "nowhere")])
    assert res.exit_code == 2
    assert not (tmp_path / "nowhere").exists()


# --- the synthetic second centre (external validation) ---------------------------------------
def test_second_centre_is_seeded_valid_and_leaves_the_development_cohort_unchanged(tmp_path: Path) -> None:
    study = sim.simulate_study()
    a = sim.simulate_second_centre(baseline_cumhaz=study.baseline_cumhaz, seed=sim.DEFAULT_SEED)
    b = sim.simulate_second_centre(baseline_cumhaz=study.baseline_cumhaz, seed=sim.DEFAULT_SEED)
    pd.testing.assert_frame_equal(a, b)
    assert tuple(a.columns) == SPEC.columns and len(a) == sim.SECOND_CENTRE_N
    assert a[SPEC.study.id_column].str.startswith("SYN2-").all()  # never mistaken for the development ids
    # its own random stream: the development cohort is the one simulated without it
    pd.testing.assert_frame_equal(sim.simulate_study().cohort, study.cohort)
    # written where the study file's validation section points, and valid as the study's validation cohort
    from cementleak_stats.cohort.io import load_study_data

    files = sim.write_synthetic(tmp_path / "data", spec=SPEC)
    assert SPEC.validation is not None and tmp_path / SPEC.validation.cohort_file in files
    data = load_study_data(SPEC.model_copy(update={"base_dir": tmp_path}))
    assert len(data.validation.analysed) == sim.SECOND_CENTRE_N


def test_second_centre_has_another_case_mix_and_some_loss_to_follow_up() -> None:
    big = sim.simulate_study(n=20_000, seed=2)
    other = sim.simulate_second_centre(baseline_cumhaz=big.baseline_cumhaz, seed=2, n=20_000)
    dev = big.cohort
    assert other["age_years"].mean() > dev["age_years"].mean() + 3
    assert other["ct_value_hu"].mean() < dev["ct_value_hu"].mean() - 5
    assert (other["approach"] == "bilateral").mean() > (dev["approach"] == "bilateral").mean() + 0.15
    assert (other["cement_viscosity"] == "low").mean() < (dev["cement_viscosity"] == "low").mean() - 0.10
    lost = (other[sim.EVENT] == 0) & (other[sim.TIME] < sim.PUBLISHED.horizon_months)
    assert 0.05 < lost.mean() < sim.SECOND_CENTRE_LOST
    assert (other[sim.TIME] > 0).all() and (other[sim.TIME] <= sim.PUBLISHED.horizon_months).all()
    ev = other[other[sim.EVENT] == 1]
    assert (ev["leakage_type"] != "none").all() and (other.loc[other[sim.EVENT] == 0, "leakage_type"] == "none").all()
