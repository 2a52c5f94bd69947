"""Labels and units of Cox model terms, as the study file names them: ``Age (per 10 years)``,
``Sex: male vs female``, and the unit each hazard ratio is reported per (a power of ten when
one unit of a variable recorded in tiny units overflows).  Split from :mod:`.cox` (issue 12);
the fit and its tables import them from here.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy import stats

from ..design import Term
from ..formatting import format_per
from ..spec import StudySpec, Variable

if TYPE_CHECKING:
    from .cox import CoxModel

__all__ = ["hr_units", "format_per", "per_text", "hr_unit_notes", "term_label"]


# --- units of the hazard ratios -------------------------------------------------------------
def _power_of_ten(x: float) -> float:
    """The power of ten nearest ``x`` (on the log scale); 1 for 0 or a non-finite ``x``."""
    return float(10.0 ** round(math.log10(x))) if x > 0 and math.isfinite(x) else 1.0


def hr_units(spec: StudySpec, terms: Sequence[Term], coef: np.ndarray, se: np.ndarray, X: pd.DataFrame,
             alpha: float) -> np.ndarray:
    """How many units of its variable each term's hazard ratio is reported per.

    A continuous variable's ``per:`` from the study file; else 1 — unless exp(coef) or a
    confidence limit per 1 unit overflows to inf or underflows to 0 in double precision (a
    variable recorded in tiny units, e.g. litres x 10^-6): then the power of ten nearest the
    variable's standard deviation, so that the HR is a finite, readable number.  Categorical
    and score terms: 1.  The coefficient and its test stay per 1 unit (as R ``coxph``).
    """
    zcrit = stats.norm.ppf(1 - alpha / 2)
    out = np.ones(len(terms))
    for j, t in enumerate(terms):
        var = spec.variable(t.variable)
        if var.kind != "continuous":
            continue
        if var.per is not None:
            out[j] = var.per
            continue
        b, s = float(coef[j]), float(se[j])
        if not math.isfinite(b):
            continue  # a separated term: no unit makes it finite (its diagnostic says so)
        with np.errstate(over="ignore", invalid="ignore"):
            limits = np.exp([b, b - zcrit * s, b + zcrit * s] if math.isfinite(s) else [b])
        if np.all(np.isfinite(limits) & (limits > 0)):
            continue
        out[j] = _power_of_ten(float(X[t.name].std()))
    return out


#: how a message is worded: the message and its fields in, the text out (a report passes its
#: language's ``i18n.T``; the analysis's own tables and notes are English)
Words = Callable[..., str]


def english(message: str, /, **fields: object) -> str:
    """The message itself, filled in: the analysis's wording (language belongs to presenting)."""
    return message.format(**fields)


def per_text(var: Variable, per: float = 1.0, words: Words = english) -> str:
    """``per year``, ``per 10 years``, ``per 10⁻⁶ mL``, ``per 1`` (no unit)."""
    T = words
    if per == 1:
        return T("per {unit}", unit=_singular(var.unit)) if var.unit else T("per 1")
    return T("per {n} {unit}", n=format_per(per), unit=var.unit) if var.unit else T("per {n}", n=format_per(per))


def hr_unit_notes(spec: StudySpec, model: CoxModel, cohort: pd.DataFrame) -> tuple[str, ...]:
    """Sentences for the analysis notes about the units of the hazard ratios of ``model``.

    * a unit the analysis chose (the HR per 1 unit overflows): says which and why;
    * a continuous predictor whose HR per unit shows as 1.00 (two decimals, as the tables do)
      although its coefficient is not 0, with no ``per:`` in the study file: suggests one.
    """
    notes = []
    s = model.summary.set_index("term")
    for t in model.terms:
        var = spec.variable(t.variable)
        if var.kind != "continuous" or var.per is not None:
            continue
        row = s.loc[t.name]
        if row["per"] != 1:
            notes.append(f"The hazard ratio of {var.label} is reported {per_text(var, row['per'])} (a power of ten near "
                         f"its standard deviation): {per_text(var)} it is not a finite number in double precision "
                         f"(coefficient {row['coef']:.4g} {per_text(var)}). `per:` under the variable in the study "
                         "file sets the unit.")
        elif row["coef"] != 0 and math.isfinite(row["hr"]) and f"{row['hr']:.2f}" == "1.00":
            suggest = _power_of_ten(float(pd.to_numeric(cohort[t.variable], errors="coerce").std()))
            hint = (f"`per: {int(suggest)}` under the variable in the study file reports it "
                    f"{per_text(var, suggest)}" if suggest > 1 else "`per:` under the variable in the study file "
                    "sets a larger unit")
            notes.append(f"The hazard ratio of {var.label} {per_text(var)} shows as 1.00 to two decimals (coefficient "
                         f"{row['coef']:.4g} {per_text(var)}); {hint}.")
    return tuple(notes)


# --- labels -------------------------------------------------------------------------------
def term_label(spec: StudySpec, term: Term, per: float | None = None, *, words: Words = english,
               level_labels: bool = False) -> str:
    """Display label of a model term, from the study file.

    ``Smoker: yes vs no`` for a level of a categorical variable; ``Albumin (per g/L)``,
    ``Age (per year)`` for a continuous one (the study file's unit, singular); ``ASA grade: per level (I < II < III < IV)`` for an ordinal variable coded as
    a score.  ``words`` words it (English by default; a report passes its language's ``T``) and
    ``level_labels`` names a score's levels by their labels (a report in another language).
    """
    T = words
    var = spec.variable(term.variable)
    if var.kind == "continuous":  # per: the unit of the reported HR (default the study file's `per:`, else 1)
        per_words = per_text(var, float(per if per is not None else var.per or 1), words)
        return T("{label} ({per})", label=var.label, per=per_words)
    if var.kind == "ordinal" and var.coding == "score":
        levels = [var.level_label(lv) for lv in var.levels] if level_labels else var.levels
        return T("{label}: per level ({levels})", label=var.label, levels=" < ".join(levels))
    return T("{label}: {level} vs {reference}", label=var.label, level=var.level_label(term.level),
             reference=var.level_label(var.ref_level))


def _singular(unit: str) -> str:
    """The unit of one step: "years" -> "year", "nodes" -> "node"; symbols ("mL", "kg/m²",
    "HU", "g/dl") and short words stay as they are."""
    if re.fullmatch(r"[a-z]{3,}ies", unit):
        return unit[:-3] + "y"
    return unit[:-1] if re.fullmatch(r"[a-z]{2,}[^s]s", unit) else unit


def _describe(spec: StudySpec, term: Term) -> str:
    return f"'{term.name}' ({term_label(spec, term)})"
