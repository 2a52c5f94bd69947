"""The study file (``study.yaml``) parsed into a typed, frozen :class:`StudySpec`.

The study file is the single source of truth for file paths, column names, labels, units,
levels, reference categories, plausible ranges and analysis options.  Nothing else in the
package names a column of the cohort.

We parse with pydantic (``extra="forbid"``, frozen models) rather than by hand: it gives
typed, immutable objects and error messages that name the exact key that is wrong, which we
translate into :class:`~cementleak_stats.errors.Problem` rows.  YAML is read with
``yaml.safe_load`` so tags such as ``!!python/object`` are rejected, never executed.

The parts: :mod:`.words` (frozen models, per-language words, rule errors), :mod:`.columns`
(variables, outcome, repeated measures, exclusions), :mod:`.options` (analysis, risk groups,
comparator, validation cohort, study description, report), :mod:`.study` (:class:`StudySpec`)
and :mod:`.load` (reading the file, errors in words).  Import from here:
``from cementleak_stats.spec import StudySpec, load_spec``.
"""

from __future__ import annotations

from .columns import DAYS_PER_UNIT, DEFAULT_EVENT_CODES, Exclusion, Measure, Outcome, Repeated, Timepoint, Variable
from .load import MAX_YAML_VALUES, load_spec, parse_spec
from .options import Analysis, Comparator, Report, RiskGroupRule, StudyInfo, Validation
from .study import StudySpec
from .words import IDENTIFIER, TEXT_LANGUAGES, Kind, SpecRuleError

__all__ = [
    "DAYS_PER_UNIT", "DEFAULT_EVENT_CODES", "IDENTIFIER", "MAX_YAML_VALUES", "TEXT_LANGUAGES", "Analysis",
    "Comparator", "Exclusion", "Kind", "Measure", "Outcome", "Report", "Repeated", "RiskGroupRule",
    "SpecRuleError", "StudyInfo", "StudySpec", "Timepoint", "Validation", "Variable", "load_spec", "parse_spec",
]
