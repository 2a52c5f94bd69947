"""The design columns of a categorical variable are the same whether its values come as text
(object/string) or as a pandas categorical column (what the study's tables are read into; its
fast path reads each category once): the same levels, missing values and unknown-level error."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cementleak_stats.design import encode_values
from cementleak_stats.spec import load_spec

SPEC = load_spec(Path(__file__).resolve().parent.parent / "study.yaml")
CATEGORICAL = [v.name for v in SPEC.variables if v.kind != "continuous"]


@pytest.mark.parametrize("name", CATEGORICAL)
def test_a_categorical_column_encodes_as_its_text(name: str) -> None:
    var = SPEC.variable(name)
    rng = np.random.default_rng(len(name))
    values = pd.Series(rng.choice([*var.levels, None], size=200), dtype=object)
    as_text = encode_values(var, values)
    # categories in another order, and one that no row uses
    cat = pd.Series(pd.Categorical(values, categories=[*reversed(var.levels), "never used"]))
    np.testing.assert_array_equal(encode_values(var, cat), as_text)
    np.testing.assert_array_equal(encode_values(var, values.astype("category")), as_text)


@pytest.mark.parametrize("name", CATEGORICAL[:2])
def test_an_unknown_level_is_named_either_way(name: str) -> None:
    var = SPEC.variable(name)
    values = pd.Series([var.levels[0], "not a level", None], dtype=object)
    for given in (values, values.astype("category")):
        with pytest.raises(ValueError, match=r"unknown level\(s\) \['not a level'\]"):
            encode_values(var, given)
