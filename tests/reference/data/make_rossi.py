"""Write ``rossi.csv``: lifelines' copy of the Rossi recidivism data in the study-file layout.

Run once (``python tests/reference/data/make_rossi.py``); the CSV is committed and read by both
``tests/reference/survival_rossi.R`` and the tests.  Binary 0/1 columns become "no"/"yes"
(``race``: "other"/"black"), an id column is added, and ``prio_cat`` (none: 0, few: 1-3,
many: >= 4 prior convictions) is a three-level nominal variable for multi-term tests.
"""

from pathlib import Path

import numpy as np
from lifelines.datasets import load_rossi

d = load_rossi()
out = d[["week", "arrest"]].copy()
out.insert(0, "id", np.arange(1, len(d) + 1))
for col in ("fin", "wexp", "mar", "paro"):
    out[col] = np.where(d[col] == 1, "yes", "no")
out["race"] = np.where(d["race"] == 1, "black", "other")
out["age"] = d["age"]
out["prio"] = d["prio"]
out["prio_cat"] = np.select([d["prio"] == 0, d["prio"] <= 3], ["none", "few"], "many")
out.to_csv(Path(__file__).with_name("rossi.csv"), index=False)
