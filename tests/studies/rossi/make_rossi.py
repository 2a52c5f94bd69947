"""Write rossi.csv: lifelines' bundled Rossi recidivism data with an ``id`` column.

Run from the repository root: ``.venv/bin/python tests/studies/rossi/make_rossi.py``.  The
values are lifelines' (``lifelines.datasets.load_rossi``) unchanged: 0/1 columns stay 0/1 (the
study file maps them to their levels with ``aliases``); only ``id`` (R001..R432) is added in
front.  ``tests/test_io.py::test_rossi_csv_is_lifelines_rossi`` checks that the committed file
still equals this.  See README.md in this folder for the source and the citation.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from lifelines.datasets import load_rossi

HERE = Path(__file__).resolve().parent


def rossi_with_id() -> pd.DataFrame:
    """The Rossi data (432 released prisoners, weeks to re-arrest) with ids R001..R432 first."""
    rossi = load_rossi()
    ids = [f"R{i:03d}" for i in range(1, len(rossi) + 1)]
    return pd.concat([pd.Series(ids, name="id"), rossi], axis=1)


if __name__ == "__main__":
    rossi_with_id().to_csv(HERE / "rossi.csv", index=False, lineterminator="\n")
