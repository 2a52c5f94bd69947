"""Write gbsg2.csv: lifelines' bundled GBSG-2 breast-cancer data for the test study in this folder.

Run from the repository root: ``.venv/bin/python tests/studies/gbsg2/make_gbsg2.py``.  Changes to
``lifelines.datasets.load_gbsg2()`` (all listed in README.md in this folder): an ``id`` column
(G001..G686) in front, and the recurrence-free survival time in years, ``rfs_years`` =
round(time in days / 365.25, 4), in place of ``time`` (days; 4 decimals keep every distinct day
distinct and in order).  Every other column is lifelines' unchanged.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from lifelines.datasets import load_gbsg2

HERE = Path(__file__).resolve().parent


def gbsg2_for_study() -> pd.DataFrame:
    """GBSG-2 (686 women, node-positive breast cancer) with ids and the time in years."""
    d = load_gbsg2()
    ids = pd.Series([f"G{i:03d}" for i in range(1, len(d) + 1)], name="id")
    years = (d["time"] / 365.25).round(4).rename("rfs_years")
    return pd.concat([ids, d.drop(columns=["time", "cens"]), years, d["cens"]], axis=1)


if __name__ == "__main__":
    gbsg2_for_study().to_csv(HERE / "gbsg2.csv", index=False, lineterminator="\n")
