"""Smoke version of ``make bench``: the harness runs end to end on tiny B and n and writes its goal
table (every row of issue 16, skipped rows saying how to run them) and its RESULTS file.  Never
asserts a time; asserts the verdicts, the table's shape and the engine's agreement with lifelines."""

from __future__ import annotations

import math
import re
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # benchmarks/ sits next to the package, not inside it
    sys.path.insert(0, str(REPO))

from benchmarks import run  # noqa: E402


def test_growth_exponent_and_ratio():
    n = [1e3, 1e4, 1e5]
    assert run.growth_exponent(n, [v**2 * 3 for v in n]) == pytest.approx(2.0)
    assert run.growth_exponent(n, [v * math.log(v) for v in n]) == pytest.approx(1.1, abs=0.05)
    assert run.Row("x", 10.0, 2.0, None).ratio == pytest.approx(5.0)
    assert run.Row("x", None, 2.0, None).ratio is None


def test_goal_verdicts():
    assert run.Goal("1", "x", value=0.19, limit=0.2).result == "PASS"
    assert run.Goal("1", "x", value=0.21, limit=0.2).result == "MISS"
    assert run.Goal("1", "x", value=None, limit=0.2).result == "MISS"  # no baseline: not a pass
    assert run.Goal("5", "x", value=500, limit=600, peak_mb=5000, peak_limit_mb=4096).result == "MISS"
    assert run.Goal("5", "x", value=500, limit=600, peak_mb=3000, peak_limit_mb=4096).result == "PASS"
    assert run.Goal("5", "x", limit=600, skipped="run it").result == "SKIPPED"
    assert run.Goal("5", "x", limit=600, failed=True).result == "FAILED"
    assert run.Goal("1a", "of which").result == ""  # a breakdown row has no goal
    table = run.goal_markdown([run.Goal("4", "step", measured="1.5 s", value=1.5, limit=2.0, goal="≤ 2 s")])
    assert table.splitlines()[0] == run.GOAL_HEADER and table.splitlines()[-1].endswith("| ≤ 2 s | **PASS** |")


def test_timeout_stops_the_command_and_load_is_reported(tmp_path):
    t0 = time.perf_counter()
    with pytest.raises(run.Timeout):
        run.run_child([sys.executable, "-c", "import time; time.sleep(30)"], timeout=0.5)
    assert time.perf_counter() - t0 < 10
    study = tmp_path / "study.yaml"
    study.write_text("analysis:\n  # B\n  bootstrap_b: 1000\n  seed: 1\n")
    run.set_bootstrap_b(study, 50)
    assert "  bootstrap_b: 50\n" in study.read_text() and "# B" in study.read_text()
    busy = run._load_sentence({"load average at start (1, 5, 15 min)": "3.5, 2, 1", "cores (os.cpu_count)": "2"})
    assert "shared" in busy and "3.50" in busy
    quiet = {"load average at start (1, 5, 15 min)": "0.5, 2, 1", "load average at end (1, 5, 15 min)": "2.1, 2, 1"}
    assert "quiet" in run._load_sentence(quiet, (0.3, 0.31))  # the end counts this run's own processes
    assert "shared" in run._load_sentence(quiet, (0.3, 0.6))  # but the yardstick ran slower: others were there


def test_r_script_takes_what_the_harness_passes():
    script = run.R_SCRIPT.read_text()
    assert run.R_SCRIPT.parent == REPO / "benchmarks"
    assert "stopifnot(length(args) == 6)" in script
    assert 'calibrate(fit, cmethod = "KM"' in script and "validate(fit, B = B)" in script


def test_quick_bench_writes_every_goal_row(tmp_path, capsys):
    out = tmp_path / "RESULTS.md"
    out.write_text(f"old generated part\n{run.NOTES_MARKER}\nHand-written profile notes.\n")
    assert run.main(["--quick", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    rows = [ln for ln in printed.splitlines() if ln.startswith("| ") and ln != run.GOAL_HEADER]
    cells = {c[0]: c for c in ([x.strip() for x in ln.strip("|").split("|")] for ln in rows)}
    assert set(cells) == {"1", "2", "3", "4", "5", "6"}  # every row of the table, skipped or not
    for key in ("1", "2", "3"):  # skipped by --quick, and the row says so
        assert cells[key][-1] == "**SKIPPED**" and "--skip" in cells[key][2]
    for key in ("5", "6"):  # the million-patient rows say how to run them
        assert cells[key][-1] == "**SKIPPED**" and "BENCH_FULL=1" in cells[key][2]
    assert re.fullmatch(r"[0-9.]+ s", cells["4"][2]) and cells["4"][-1] in ("**PASS**", "**MISS**")
    assert cells["4"][6] == "≤ 2 s"
    text = out.read_text()
    assert "## Machine" in text and "load average at start" in text and "reference workload" in text
    assert run.GOAL_HEADER in text and "## Bootstrap engine against lifelines" in text and "exponent" in text
    ratios = re.findall(r"\| (\d+(?:\.\d)?)x \|", text)
    assert len(ratios) == 2 and all(float(r) > 0 for r in ratios)  # engine rows: baseline measured in this run
    # our replicate coefficients equal lifelines' on the same rows (a correctness check, not a time)
    worst = float(re.search(r"largest relative difference \*\*([0-9.e+-]+)\*\*", text).group(1))
    assert worst < 1e-6
    # the generated part is replaced, the hand-written notes below the marker are kept
    assert "old generated part" not in text and text.rstrip().endswith("Hand-written profile notes.")


def test_the_code_measured_is_frozen_for_the_run(tmp_path):
    what = run.snapshot_code(tmp_path / "code")
    assert "package" in what
    assert (tmp_path / "code" / "cementleak_stats" / "__init__.py").exists()
    assert (tmp_path / "code" / "benchmarks" / "workers.py").exists()
    assert not (tmp_path / "code" / "benchmarks" / "RESULTS.md").exists()
    assert list((tmp_path / "code" / "cementleak_stats").glob("__pycache__/*.pyc"))  # compiled as installed
