"""The seeded SYNTHETIC cohort of the PVP cement-leakage study (``cementleak simulate``).

The patients' data of the published study (Chen, Liu & Zhang 2025) are not public.  This module
generates a synthetic cohort with the same columns (those declared in ``study.yaml``) and the
same published figures, so that the whole analysis and report can run end to end.  It is the
only place of the package that knows the clinical story; every other module reads the column
names from the study file.

The clinical story (true data-generating model)
-----------------------------------------------
Time to cement leakage follows a Cox proportional hazards model with a Weibull baseline and
administrative censoring at 12 months.  True log hazard ratios, per unit of the model term as
:func:`cementleak_stats.design.encode` builds it (``TRUE_COEFFICIENTS``):

=========================  ==========================  ============  ===================
variable                   term                        true beta     true HR
=========================  ==========================  ============  ===================
ct_value_hu                per HU                      -0.040        0.961 (0.670/10 HU)
fracture_severity          per Genant grade (score)    +0.900        2.460
cortical_fracture          yes vs no                   +1.200        3.320
cement_viscosity           low vs high                 +1.300        3.669
cement_volume_ml           per mL                      +0.700        2.014
=========================  ==========================  ============  ===================

The other candidates (age_years, sex, bmi_kg_m2, bmd_t_score, fracture_level,
intravertebral_cleft, approach, days_injury_to_surgery) have true coefficient 0.

The null candidates are not independent of the true factors (as in real patients): the CT value
is correlated with the BMD T-score (r about 0.4), cortical fractures and intravertebral clefts
are more frequent in severe fractures, and the injected volume is larger with a bilateral
approach and at lumbar levels.  Leakage type (24 : 1 : 2 among 27 events) is assigned at random
among the leakage patients, independently of the covariates.

The shipped seed (``DEFAULT_SEED``) was selected by :func:`search_seed`: the first seed from
``SEARCH_START`` on whose 100-patient cohort passes :func:`check_published_figures`.

The generator stands on its own: it reads the study file (the data layer) and nothing of the
analysis, and only the ``simulate`` command calls it.  Its checks against the published figures
use lifelines, SciPy and statsmodels directly, not the package's own statistics, so they are an
independent look at the cohort the analysis then runs on.

Modules: :mod:`.model` (the data-generating model), :mod:`.published` (the checks against the
published figures and the seed search), :mod:`.files` (the CSV files, the data dictionary and
``README.md`` from the template ``cementleak_stats/templates/synthetic_README.md``).
"""

from __future__ import annotations

from .files import write_synthetic
from .model import (DEFAULT_SEED, EVENT, LATENCY_MONTHS, PUBLISHED, SEARCH_START, SECOND_CENTRE_LOST, SECOND_CENTRE_N,
                    TIME, TRUE_COEFFICIENTS, WEIBULL_SHAPE, PublishedFigures, SyntheticStudy, simulate_second_centre,
                    simulate_study)
from .published import SeedSearch, check_published_figures, search_seed

__all__ = [
    "DEFAULT_SEED",
    "SEARCH_START",
    "TRUE_COEFFICIENTS",
    "PUBLISHED",
    "PublishedFigures",
    "SyntheticStudy",
    "SeedSearch",
    "simulate_study",
    "simulate_second_centre",
    "write_synthetic",
    "check_published_figures",
    "search_seed",
    # the model's constants the tests and data/README.md state
    "EVENT", "TIME", "LATENCY_MONTHS", "WEIBULL_SHAPE", "SECOND_CENTRE_N", "SECOND_CENTRE_LOST",
]
