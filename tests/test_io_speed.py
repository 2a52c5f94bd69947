"""The fast CSV reader gives the row reader's frame, and validation stays near the floor.

:func:`cementleak_stats.cohort.read._read_plain_csv` splits a quote-free CSV in pandas' C parser;
anything it cannot vouch for goes to the row-by-row :mod:`csv` reader, which words every
structural problem.  Here: the two readers agree on every CSV of the repository (the bad-input
corpus included) and on generated texts, and validating a large cohort costs a bounded multiple
of pandas merely reading the same file (a ratio measured in one run, not a bare time).
"""

from __future__ import annotations

import csv
import io
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cementleak_stats.cohort import io as cio
from cementleak_stats.cohort import read
from cementleak_stats.errors import InputError
from cementleak_stats.spec import load_spec

from test_io_support import REPO, valid_cohort, valid_repeated


def _row_reader(text: str, delimiter: str) -> pd.DataFrame | InputError:
    rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True))
    try:
        return read._frame_from_rows(rows, "f", strict_width=True)
    except InputError as exc:
        return exc


def _agree(text: str, delimiter: str = ",") -> bool:
    """Whether the fast reader took the text (it must then equal the row reader's frame)."""
    fast = read._read_plain_csv(text, delimiter)
    if fast is None:
        return False
    slow = _row_reader(text, delimiter)
    assert not isinstance(slow, InputError), (text[:200], slow)
    pd.testing.assert_frame_equal(fast, slow)
    return True


def test_space_characters_are_what_str_strip_removes():
    spaces = {chr(c) for c in range(sys.maxunicode + 1) if chr(c).isspace()} - {"\r", "\n"}
    assert set(read.SPACE_CHARACTERS) == spaces


@pytest.mark.parametrize("path", sorted(p for p in REPO.glob("**/*.csv") if ".venv" not in p.parts
                                        and "_output" not in p.parts), ids=lambda p: str(p.relative_to(REPO)))
def test_fast_reader_equals_row_reader_on_every_csv(path: Path):
    try:
        text = read._decode(path.read_bytes(), path.name)
    except InputError:
        return  # not UTF-8: never reaches a reader
    if not text.strip():
        return
    first = text.split("\n", 1)[0]
    _agree(text, max([",", ";", "\t"], key=first.count))


def test_fast_reader_takes_exports_and_leaves_structure_to_the_row_reader():
    assert _agree("id,x,y\nP1, 2 ,NA\r\nP2,3,\u00a0y\n")  # spaces (also non-breaking) stripped, tokens missing
    assert _agree("id\tx\nP1\t2\n", "\t")
    for text in ('id,x\nP1,"2,5"\n', "id,x\nP1,2\n\nP2,3\n", "id,x\nP1\nP2,3\n", "id,x\nP1,2,3\n",
                 "id,id\nP1,2\n", "id,x\n", "id,x\nP1,2\n,\n", "id,x\rP1,2\r", "id,x\nP1,2\n\n"):
        assert read._read_plain_csv(text, ",") is None, text


CELL = st.lists(st.sampled_from(list("ab1.5-, \t\u00a0\u3000") + ["NA", "nan", "e"]), max_size=4).map("".join)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.lists(CELL, min_size=2, max_size=2), min_size=1, max_size=6), st.sampled_from(["\n", "\r\n"]),
       st.booleans())
def test_fast_reader_equals_row_reader_on_generated_text(rows, newline, final):
    text = newline.join(",".join(r) for r in [["id", "x"], *rows]) + (newline if final else "")
    _agree(text)


@pytest.mark.skipif(not os.environ.get("CEMENTLEAK_TIMING"),
                    reason="a timing ratio is measured on a quiet machine: set CEMENTLEAK_TIMING=1")
def test_validation_of_a_large_cohort_is_a_small_multiple_of_reading_it(tmp_path: Path):
    """Validate and type 20,000 patients (and 3 timepoints each) in at most 12 times what pandas
    takes just to read both files as text.  Measured on a loaded 2-core machine: about 5 (it was
    20 or more before each column was parsed once and quote-free CSVs were split in C)."""
    spec = load_spec(REPO / "tests" / "bad_inputs" / "study.yaml")
    rng = np.random.default_rng(5)
    cohort = valid_cohort(spec, n=20_000, rng=rng)
    repeated = valid_repeated(spec, list(cohort[spec.study.id_column]), rng=rng)
    data = tmp_path / "data"
    data.mkdir()
    cohort.to_csv(data / "cohort.csv", index=False)
    repeated.to_csv(data / "outcomes.csv", index=False)
    spec = spec.model_copy(update={"base_dir": tmp_path, "cohort_file": "data/cohort.csv",
                                   "repeated": spec.repeated.model_copy(update={"file": "data/outcomes.csv"}),
                                   "validation": None})

    def timed(fn) -> float:
        start = time.perf_counter()
        fn()
        return time.perf_counter() - start

    cio.load_study_data(spec)  # imports paid once (pandera's backends load on first use)
    floor, full = np.inf, np.inf
    for _ in range(5):  # interleaved, so that a busy moment hits both
        floor = min(floor, timed(lambda: [pd.read_csv(data / f, dtype=str) for f in ("cohort.csv", "outcomes.csv")]))
        full = min(full, timed(lambda: cio.load_study_data(spec)))
    print(f"validation {full:.3f} s, pandas read_csv {floor:.3f} s, ratio {full / floor:.1f}")
    assert full / floor < 12, (full, floor)
