"""Table 1 and the event-details table worded for display, from the tidy rows the analysis
stored (:mod:`.tables` keeps the numbers): headers, labels and levels in the study's words and
the active language (:mod:`.i18n`), so that one analysis serves a report in every language.
Nothing here counts or tests; wording belongs to presenting (issue 12).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .formatting import format_p
from .i18n import T, active
from .i18n import text as tr_text
from .spec import Measure, StudySpec, Variable

if TYPE_CHECKING:
    from .design import Term
    from .study import StudyResults
    from .tables import BaselineTable, CrossCounts

__all__ = ["term_label", "label_with_unit", "baseline_display", "event_details_display"]

#: the level the analysis gives a missing value in its tidy counts (``tables.MISSING``; reporting
#: reads the results, not the statistics, so the word is repeated here and a test keeps them equal)
MISSING = "(missing)"


def term_label(r: StudyResults, term: Term, per: float | None = None) -> str:
    """A model term's label in the active language (``Smoker: yes vs no``, ``Age (per 10 years)``):
    the results word it (:meth:`.study.StudyResults.term_label`) with this language's words."""
    return r.term_label(term, per, words=T, level_labels=active() != "en")


def label_with_unit(info: Variable | Measure) -> str:
    """A variable's or a measure's label with its unit, in the active language: ``CT value (HU)``
    (the study file's ``display`` is the English one, for the analysis's own tables)."""
    return T("{label} ({unit})", label=info.label, unit=info.unit) if info.unit else info.label


# --- Table 1 ----------------------------------------------------------------------------------

def _group_label(spec: StudySpec, groupby: str, value: object) -> str:
    if groupby == spec.outcome.event:
        return T("{label}: yes" if int(value) == 1 else "{label}: no", label=spec.outcome.event_label)  # type: ignore[call-overload]
    try:
        return f"{spec.variable(groupby).label}: {value}"
    except KeyError:
        return f"{groupby}: {value}"


def _characteristic(spec: StudySpec, name: str, statistic: str) -> str:
    """First cell of a variable's rows: ``Age (years), mean (SD)``.  A unit that is also a word
    of the statistic is spelled as units (``BMD T-score (SD units), mean (SD)``)."""
    var = spec.variable(name)
    unit = var.unit
    if unit and unit in re.findall(r"[A-Za-z0-9]+", statistic):
        unit = T("{unit} units", unit=unit)
    statistic = tr_text(statistic)
    return T("{label} ({unit}), {statistic}", label=var.label, unit=unit, statistic=statistic) if unit \
        else T("{label}, {statistic}", label=var.label, statistic=statistic)


def baseline_display(table: BaselineTable, spec: StudySpec, *, groupby: str | None = None) -> pd.DataFrame:
    """Table 1 for display, from its tidy rows, in the words of ``spec`` and the active language:
    ``Characteristic``, ``Level`` (folded into the first column by
    :func:`.presentation.fold_levels`), ``Overall (n=...)``, one column per group, ``P value``,
    ``Test``, ``SMD``, ``Missing``.  Group columns named ``<groupby>=<value>`` are labelled from
    the study file; any other group keeps the analysis's label (translated)."""
    groupby = groupby or spec.outcome.event
    prefix = f"{groupby}="
    groups = {c: (_group_label(spec, groupby, c.removeprefix(prefix)) if c.startswith(prefix) else tr_text(lab), k)
              for c, (lab, k) in table.groups.items()}
    n = sum(k for _, k in table.groups.values())
    heads = {"overall": T("Overall (n={n})", n=n), **{c: T("{label} (n={n})", label=lab, n=k) for c, (lab, k) in groups.items()}}
    rows = []
    seen: set[str] = set()
    for _, r in table.tidy.iterrows():
        first = r["variable"] not in seen
        seen.add(r["variable"])
        row = {T("Characteristic"): _characteristic(spec, r["variable"], r["statistic"]) if first else "",
               "Level": "" if pd.isna(r["level"]) else spec.variable(r["variable"]).level_label(r["level"])}
        row.update({heads[c]: r[c] for c in heads})
        row.update({T("P value"): format_p(r["p_value"]) if first else "", T("Test"): tr_text(r["test"]) if first else "",
                    "SMD": f"{r['smd']:.3f}" if first and np.isfinite(r["smd"]) else "",
                    T("Missing"): str(r["missing"]) if first else ""})
        rows.append(row)
    return pd.DataFrame(rows)


# --- details of the event ---------------------------------------------------------------------

def event_details_display(counts: CrossCounts, spec: StudySpec) -> pd.DataFrame:
    """The event-details counts for display: one variable as a frequency table (``Patients``,
    ``%``, a ``Total`` row), two as a cross table (first in rows, second in columns) with row and
    column totals; variables and levels by their study-file labels."""
    tidy = counts.tidy
    columns = [c for c in tidy.columns if c not in ("n", "percent")]
    known = {v.name for v in spec.variables}

    def label(col: str) -> str:
        return spec.variable(col).label if col in known else col

    def level(col: str, value: object) -> str:
        if value == MISSING:
            return T(MISSING)
        return spec.variable(col).level_label(value) if col in known else str(value)

    n, first = counts.n, columns[0]
    if len(columns) == 1:
        patients = T("Patients")
        wide = pd.DataFrame({patients: tidy["n"].astype(int).to_numpy()}, index=[level(first, x) for x in tidy[first]])
        wide["%"] = [f"{100.0 * k / n:.0f}" if n else "" for k in wide[patients]]
        wide.loc[T("Total")] = [int(tidy["n"].sum()), "100" if n else ""]
        return wide.rename_axis(index=label(first)).reset_index()
    second = columns[1]
    rows, cols = list(dict.fromkeys(tidy[first])), list(dict.fromkeys(tidy[second]))
    wide = tidy.pivot(index=first, columns=second, values="n").reindex(index=rows, columns=cols, fill_value=0).astype(int)
    wide = wide.rename(index=lambda x: level(first, x), columns=lambda x: level(second, x))
    wide[T("Total")] = wide.sum(axis=1)
    wide.loc[T("Total")] = wide.sum(axis=0)
    return wide.rename_axis(index=label(first), columns=label(second)).reset_index()
