"""Smoke version of ``make bench``: the harness runs end to end on tiny B and n and produces its
table with baseline, ours and ratio columns and its RESULTS file.  Never asserts a time."""

from __future__ import annotations

import math
import re
import sys
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


def test_quick_bench_writes_its_table_with_ratios(tmp_path, capsys):
    out = tmp_path / "RESULTS.md"
    out.write_text(f"old generated part\n{run.NOTES_MARKER}\nHand-written profile notes.\n")
    assert run.main(["--quick", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    header = "| what | baseline | ours | ratio | peak memory | note |"
    assert header in printed
    rows = [ln for ln in printed.splitlines() if ln.startswith("| ") and ln != header]
    cells = [[c.strip() for c in ln.strip("|").split("|")] for ln in rows]
    ratios = [c[3] for c in cells if c[1] != "-"]
    assert len(ratios) == 2  # the two engine rows have a baseline measured in the same run
    assert all(re.fullmatch(r"\d+(\.\d)?x", r) and float(r[:-1]) > 0 for r in ratios)
    assert sum("full analysis, simulated n=" in c[0] for c in cells) == 2
    assert any("VAS/ODI outcomes step alone" in c[0] for c in cells)
    text = out.read_text()
    assert "## Machine" in text and "BLAS (threadpoolctl)" in text and header in text
    assert "## Agreement with lifelines" in text and "## Scale" in text and "exponent" in text
    # our replicate coefficients equal lifelines' on the same rows (a correctness check, not a time)
    worst = float(re.search(r"largest relative difference \*\*([0-9.e+-]+)\*\*", text).group(1))
    assert worst < 1e-6
    # the generated part is replaced, the hand-written notes below the marker are kept
    assert "old generated part" not in text and text.rstrip().endswith("Hand-written profile notes.")
