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
"""

from __future__ import annotations

import os
import tempfile
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from types import MappingProxyType

import numpy as np
import pandas as pd

from ..errors import InputError, Problem
from ..spec import StudySpec, load_spec

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
]

#: Seed of the shipped cohort: the first seed >= SEARCH_START for which
#: :func:`check_published_figures` passes (found by :func:`search_seed`).
DEFAULT_SEED: int = 9
#: Where :func:`search_seed` starts by default (documented so that the search can be re-run).
SEARCH_START: int = 1

#: True log hazard ratio per unit of each candidate's model term (see the module docstring).
TRUE_COEFFICIENTS: Mapping[str, float] = MappingProxyType({
    "age_years": 0.0,
    "sex": 0.0,
    "bmi_kg_m2": 0.0,
    "bmd_t_score": 0.0,
    "ct_value_hu": -0.040,
    "fracture_level": 0.0,
    "fracture_severity": 0.900,
    "cortical_fracture": 1.200,
    "intravertebral_cleft": 0.0,
    "approach": 0.0,
    "cement_viscosity": 1.300,
    "cement_volume_ml": 0.700,
    "days_injury_to_surgery": 0.0,
})


@dataclass(frozen=True)
class PublishedFigures:
    """The published figures (Chen et al. 2025, abstract) the default cohort is calibrated to."""

    n: int = 100
    events: int = 27
    horizon_months: float = 12.0
    #: leakage type -> (management, number of patients)
    leakage_types: Mapping[str, tuple[str, int]] = field(default_factory=lambda: MappingProxyType({
        "intradiscal_endplate": ("no_treatment", 24),
        "pulmonary_embolism": ("respiratory_medicine", 1),
        "symptomatic": ("endoscopic_removal", 2),
    }))
    #: (measure, later time point, earlier time point): later is lower, P < 0.05
    outcome_contrasts: tuple[tuple[str, str, str], ...] = (
        ("vas", "day3", "preop"), ("vas", "month12", "preop"), ("odi_percent", "month12", "day3"))


PUBLISHED = PublishedFigures()

# --- the study's columns, as declared in study.yaml (checked against the StudySpec on writing) -----
ID, TIME, EVENT = "patient_id", "time_to_leakage_months", "leakage"
NO_EVENT_LEVEL = "none"  # leakage_type and management of patients without leakage
_LEVELS: Mapping[str, tuple[str, ...]] = MappingProxyType({
    "sex": ("female", "male"),
    "fracture_level": ("thoracic", "thoracolumbar", "lumbar"),
    "fracture_severity": ("mild", "moderate", "severe"),
    "cortical_fracture": ("no", "yes"),
    "intravertebral_cleft": ("no", "yes"),
    "approach": ("unilateral", "bilateral"),
    "cement_viscosity": ("high", "low"),
    "leakage_type": ("none", "intradiscal_endplate", "pulmonary_embolism", "symptomatic"),
    "management": ("none", "no_treatment", "respiratory_medicine", "endoscopic_removal"),
})
_COLUMNS = (ID, "age_years", "sex", "bmi_kg_m2", "bmd_t_score", "ct_value_hu", "fracture_level",
            "fracture_severity", "cortical_fracture", "intravertebral_cleft", "approach",
            "cement_viscosity", "cement_volume_ml", "days_injury_to_surgery", "leakage_type",
            "management", TIME, EVENT)
#: decimals written to the CSV (0 = integer)
_DECIMALS: Mapping[str, int] = MappingProxyType({
    "age_years": 0, "bmi_kg_m2": 1, "bmd_t_score": 1, "ct_value_hu": 1, "cement_volume_ml": 1,
    "days_injury_to_surgery": 0, TIME: 2, EVENT: 0, "vas": 1, "odi_percent": 0,
})
_TIMEPOINTS = ("preop", "day3", "month12")
_OUTCOME_COLUMNS = (ID, "timepoint", "vas", "odi_percent")

# --- event-time model -----------------------------------------------------------------------
#: Weibull shape < 1: a falling hazard, most leakage detected soon after surgery.
WEIBULL_SHAPE = 0.50
#: No leakage is recorded before 0.03 months (about one day): the baseline is a Weibull shifted
#: by this latency, so every time is > 0 and the proportional-hazards model holds exactly.
LATENCY_MONTHS = 0.03
_EVENT_FRACTION = PUBLISHED.events / PUBLISHED.n


@dataclass(frozen=True)
class SyntheticStudy:
    """A simulated study: the cohort table and the long-format outcomes of leakage patients.

    Attributes
    ----------
    cohort : pandas.DataFrame
        One row per patient, columns exactly as ``study.yaml`` declares; categorical columns are
        ``pandas.Categorical`` with the study file's levels, counts are ``int64``.
    outcomes : pandas.DataFrame
        ``patient_id, timepoint, vas, odi_percent`` for the leakage patients (three rows each).
    seed, n : int
        Seed and number of patients it was generated with.
    baseline_cumhaz : float
        Calibrated baseline cumulative hazard at 12 months, ``H0(12)`` (see Notes of
        :func:`simulate_study`).
    """

    cohort: pd.DataFrame
    outcomes: pd.DataFrame
    seed: int
    n: int
    baseline_cumhaz: float


@dataclass(frozen=True)
class SeedSearch:
    """Result of :func:`search_seed`: the first seed that passes, and how many were tried."""

    seed: int
    tried: int
    checks: pd.DataFrame


# ============================================================================================
# simulation
# ============================================================================================
def _categorical(codes: np.ndarray, name: str) -> pd.Categorical:
    return pd.Categorical.from_codes(codes.astype(np.int8), categories=list(_LEVELS[name]), ordered=False)


def _rounded(x: np.ndarray, name: str) -> np.ndarray:
    return np.round(x, _DECIMALS[name])


@dataclass(frozen=True)
class CaseMix:
    """Where a centre's patients and procedures differ (defaults: the development centre)."""

    age_mean: float = 72.0
    p_male: float = 0.20
    ct_mean: float = 85.0
    #: thoracic, thoracolumbar, lumbar
    level_p: tuple[float, float, float] = (0.20, 0.60, 0.20)
    p_bilateral: float = 0.45
    p_low_viscosity: float = 0.45
    volume_mean: float = 4.4


#: The synthetic second centre: older, more osteoporotic patients (lower CT values, hence more
#: severe fractures and cortical breaches), more lumbar levels, more bilateral access and larger
#: volumes, and high-viscosity cement preferred.  Same true coefficients (a transportable model).
SECOND_CENTRE_MIX = CaseMix(age_mean=76.0, p_male=0.25, ct_mean=78.0, level_p=(0.15, 0.55, 0.30), p_bilateral=0.65,
                            p_low_viscosity=0.30, volume_mean=4.6)
#: Patients of the second centre (its default size).
SECOND_CENTRE_N = 150
#: Its baseline hazard relative to the development centre's calibrated H0(12): fewer leaks at
#: baseline (another team and technique), so a model from the first centre over-predicts there.
SECOND_CENTRE_HAZARD_RATIO = 0.75
#: Share of its patients lost to follow-up (censored at a uniform time in (1, 12) months).
SECOND_CENTRE_LOST = 0.10
#: File name of the second centre's cohort when the study file names none (``validation: cohort_file:``).
SECOND_CENTRE_FILE = "cohort_centre2.csv"


def _simulate_covariates(rng: np.random.Generator, n: int, mix: CaseMix = CaseMix()) -> dict[str, np.ndarray]:
    """Patient and procedure characteristics (numbers as recorded, categories as codes)."""
    age = np.clip(np.round(rng.normal(mix.age_mean, 7.5, n)), 55, 92)
    male = rng.random(n) < mix.p_male
    bmi = _rounded(np.clip(rng.normal(22.8, 3.1, n), 15.5, 34.0), "bmi_kg_m2")
    z_t = rng.standard_normal(n)
    t_score = _rounded(np.clip(-3.0 + 0.65 * z_t + 0.25 * male, -5.0, -1.0), "bmd_t_score")
    # CT attenuation: correlated with the T-score (r ~ 0.4), mean ~85 HU, SD ~20 HU
    ct = _rounded(np.clip(mix.ct_mean + 8.0 * z_t + 18.3 * rng.standard_normal(n), 30.0, 160.0), "ct_value_hu")
    level = rng.choice(3, size=n, p=list(mix.level_p))  # thoracic, thoracolumbar, lumbar
    # Genant grade: lower bone density, more collapse
    latent = -0.015 * (ct - 85.0) + rng.standard_normal(n)
    severity = np.searchsorted(np.array([-0.39, 0.77]), latent)  # ~35% mild, 43% moderate, 22% severe
    cortical = rng.random(n) < 1.0 / (1.0 + np.exp(-(-1.2 + 0.6 * severity)))
    cleft = rng.random(n) < 1.0 / (1.0 + np.exp(-(-1.9 + 0.4 * severity)))
    bilateral = rng.random(n) < mix.p_bilateral
    low_viscosity = rng.random(n) < mix.p_low_viscosity
    volume = mix.volume_mean + 0.4 * bilateral + 0.5 * (level == 2) - 0.4 * (level == 0) + 0.2 * severity
    volume = _rounded(np.clip(volume + rng.normal(0.0, 1.0, n), 2.0, 8.5), "cement_volume_ml")
    days = np.clip(np.round(np.exp(rng.normal(np.log(8.0), 0.8, n))), 1, 90)
    return {
        "age_years": age, "sex": male.astype(int), "bmi_kg_m2": bmi, "bmd_t_score": t_score,
        "ct_value_hu": ct, "fracture_level": level, "fracture_severity": severity,
        "cortical_fracture": cortical.astype(int), "intravertebral_cleft": cleft.astype(int),
        "approach": bilateral.astype(int), "cement_viscosity": low_viscosity.astype(int),
        "cement_volume_ml": volume, "days_injury_to_surgery": days,
    }


def _linear_predictor(cov: Mapping[str, np.ndarray]) -> np.ndarray:
    """sum_j beta_j x_j on the recorded (rounded) values; codes equal the design's terms here
    (binary: 1 = non-reference level; severity: Genant score 0, 1, 2; fracture_level has beta 0)."""
    lp = np.zeros(len(cov["age_years"]))
    for name, beta in TRUE_COEFFICIENTS.items():
        if beta != 0.0:
            lp += beta * cov[name]
    return lp


def _simulate_leakage(rng: np.random.Generator, lp: np.ndarray, n_events: int,
                      h0: float | None = None) -> tuple[np.ndarray, np.ndarray, float]:
    """Latent Weibull-Cox times, calibrated so that exactly ``n_events`` fall before 12 months
    (or with the given baseline cumulative hazard ``h0`` at 12 months: ``n_events`` is then unused)."""
    horizon = PUBLISHED.horizon_months
    # H(t | x) = H0 * ((t - t0) / (tau - t0))^k * exp(lp);  H(T) ~ Exp(1)  =>
    # ((T - t0) / (tau - t0))^k = u / H0  with  u = E * exp(-lp)
    u = rng.standard_exponential(lp.size) * np.exp(-lp)
    if h0 is None and 0 < n_events < lp.size:
        part = np.partition(u, [n_events - 1, n_events])
        h0 = float(np.sqrt(part[n_events - 1] * part[n_events]))  # between the k-th and (k+1)-th
    elif h0 is None:
        h0 = float(np.max(u)) * 2.0 if n_events == lp.size else float(np.min(u)) / 2.0
    event = u < h0
    latent = LATENCY_MONTHS + (horizon - LATENCY_MONTHS) * (u / h0) ** (1.0 / WEIBULL_SHAPE)
    # recorded to 0.01 month, rounded down (so that an event stays strictly before 12)
    time = np.where(event, np.floor(latent * 100.0) / 100.0, horizon)
    return time, event.astype(int), h0


def _leakage_types(rng: np.random.Generator, event: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Codes of leakage type and management: published proportions among events, at random."""
    idx = np.flatnonzero(event)
    published = PUBLISHED.leakage_types
    total = sum(c for _, c in published.values())
    counts = {t: round(c * idx.size / total) for t, (_, c) in published.items()}
    common = max(counts, key=counts.__getitem__)
    counts[common] = idx.size - sum(c for t, c in counts.items() if t != common)
    labels = np.repeat(list(counts), list(counts.values()))
    type_code = np.zeros(event.size, dtype=int)
    type_code[idx] = [_LEVELS["leakage_type"].index(t) for t in rng.permutation(labels)]
    management = {t: m for t, (m, _) in published.items()}
    mgmt_code = np.array([_LEVELS["management"].index(management.get(_LEVELS["leakage_type"][c], NO_EVENT_LEVEL))
                          for c in range(len(_LEVELS["leakage_type"]))])[type_code]
    return type_code, mgmt_code


def _simulate_outcomes(rng: np.random.Generator, ids: np.ndarray, symptomatic: np.ndarray) -> pd.DataFrame:
    """VAS (0-10, one decimal) and ODI (%, even integers as the 10-item score x 2) of leakage patients."""
    m = ids.size
    vas0 = np.clip(rng.normal(7.8, 0.9, m), 5.0, 10.0)
    vas1 = np.clip(vas0 - rng.normal(4.8, 1.0, m) + 1.5 * symptomatic, 0.0, 10.0)  # radicular pain before removal
    vas2 = np.clip(vas1 - rng.normal(1.0, 0.8, m), 0.0, 10.0)
    odi0 = np.clip(rng.normal(74.0, 7.0, m), 40.0, 100.0)
    odi1 = np.clip(odi0 - rng.normal(34.0, 8.0, m) + 10.0 * symptomatic, 0.0, 100.0)
    odi2 = np.clip(odi1 - rng.normal(13.0, 6.0, m), 0.0, 100.0)
    vas = _rounded(np.column_stack([vas0, vas1, vas2]), "vas")
    odi = 2.0 * np.round(np.column_stack([odi0, odi1, odi2]) / 2.0)
    return pd.DataFrame({
        ID: np.repeat(ids, len(_TIMEPOINTS)),
        "timepoint": pd.Categorical(np.tile(_TIMEPOINTS, m), categories=list(_TIMEPOINTS)),
        "vas": vas.ravel(),
        "odi_percent": odi.ravel().astype(np.int64),
    })


def simulate_study(*, n: int = 100, seed: int = DEFAULT_SEED) -> SyntheticStudy:
    """Simulate the synthetic PVP cohort and the outcomes of its leakage patients.

    Parameters
    ----------
    n : int
        Number of patients (the published study has 100).
    seed : int
        Seed of the ``numpy.random.Generator`` (PCG64); the same seed gives the same study.

    Returns
    -------
    SyntheticStudy
        ``cohort`` (columns of ``study.yaml``) and ``outcomes`` (long format).

    Notes
    -----
    Event times follow a Cox model with a shifted Weibull baseline,
    ``H(t | x) = H0 ((t - t0) / (12 - t0))^k exp(x'beta)`` for ``t > t0 = 0.03`` months,
    ``k = 0.5`` and ``beta = TRUE_COEFFICIENTS``.  With ``E ~ Exp(1)`` and
    ``u = E exp(-x'beta)``, the latent time is ``T = t0 + (12 - t0) (u / H0)^(1/k)``.

    Calibration: ``H0`` (the baseline cumulative hazard at 12 months) is set to the geometric
    mean of the ``d``-th and ``(d+1)``-th smallest ``u`` with ``d = round(0.27 n)``, so exactly
    ``d`` latent times fall before 12 months (27 of 100 as published).  Everyone else is
    censored at exactly 12 months (administrative censoring at the end of follow-up).  Event
    times are recorded to 0.01 month, rounded down.

    References
    ----------
    Bender R, Augustin T, Blettner M. Generating survival times to simulate Cox proportional
    hazards models. Stat Med 2005;24:1713-1723.

    Chen X, Liu F, Zhang D. Cause and treatment strategy of bone cement leakage after
    percutaneous vertebroplasty for osteoporotic vertebral compression fractures. Chinese
    Journal of Tissue Engineering Research 2025;29(16):3311-3317.
    """
    if n < 2:
        raise ValueError(f"n must be at least 2, got {n}")
    rng = np.random.default_rng(seed)
    cov = _simulate_covariates(rng, n)
    n_events = int(round(_EVENT_FRACTION * n))
    time, event, h0 = _simulate_leakage(rng, _linear_predictor(cov), n_events)
    type_code, mgmt_code = _leakage_types(rng, event)
    cohort = _cohort_frame("SYN", cov, type_code, mgmt_code, time, event)
    ids = cohort[ID].to_numpy(object)
    symptomatic = type_code[event == 1] == _LEVELS["leakage_type"].index("symptomatic")
    outcomes = _simulate_outcomes(rng, ids[event == 1], symptomatic.astype(float))
    return SyntheticStudy(cohort=cohort, outcomes=outcomes, seed=int(seed), n=int(n), baseline_cumhaz=h0)


def _cohort_frame(prefix: str, cov: Mapping[str, np.ndarray], type_code: np.ndarray, mgmt_code: np.ndarray,
                  time: np.ndarray, event: np.ndarray) -> pd.DataFrame:
    """The cohort table (columns of ``study.yaml``) from the simulated codes and numbers."""
    n = len(time)
    width = max(3, len(str(n)))
    cohort = pd.DataFrame({ID: np.array([f"{prefix}-{i:0{width}d}" for i in range(1, n + 1)], dtype=object)})
    for name in _COLUMNS[1:-4]:
        values = cov[name]
        if name in _LEVELS:
            cohort[name] = _categorical(values, name)
        elif _DECIMALS[name] == 0:
            cohort[name] = values.astype(np.int64)
        else:
            cohort[name] = values
    cohort["leakage_type"] = _categorical(type_code, "leakage_type")
    cohort["management"] = _categorical(mgmt_code, "management")
    cohort[TIME] = time
    cohort[EVENT] = event.astype(np.int64)
    return cohort


def simulate_second_centre(*, baseline_cumhaz: float, seed: int = DEFAULT_SEED, n: int = SECOND_CENTRE_N) -> pd.DataFrame:
    """A SYNTHETIC second centre for external validation: another case mix, the same true model.

    Parameters
    ----------
    baseline_cumhaz : the development centre's calibrated H0(12) (:attr:`SyntheticStudy.baseline_cumhaz`);
        the second centre's is ``SECOND_CENTRE_HAZARD_RATIO`` times it.
    seed : the development cohort's seed; the second centre draws from its own stream
        ``default_rng([seed, 2])``, so the development cohort is unchanged by it.
    n : number of patients.

    Returns
    -------
    pandas.DataFrame
        Columns exactly as ``study.yaml`` declares (ids ``SYN2-...``), as :func:`simulate_study`.

    Notes
    -----
    Covariates as the development centre with :data:`SECOND_CENTRE_MIX` (older, lower CT values,
    more lumbar levels, bilateral access and larger volumes, less low-viscosity cement); event
    times from the same Weibull-Cox model and ``TRUE_COEFFICIENTS`` with H0(12) scaled by
    :data:`SECOND_CENTRE_HAZARD_RATIO`, not calibrated to a number of events; a share
    :data:`SECOND_CENTRE_LOST` is lost to follow-up at a uniform time in (1, 12) months
    (censored then, unless the leakage came first); leakage types in the published proportions.
    """
    if n < 2:
        raise ValueError(f"n must be at least 2, got {n}")
    rng = np.random.default_rng([seed, 2])
    cov = _simulate_covariates(rng, n, SECOND_CENTRE_MIX)
    time, event, _ = _simulate_leakage(rng, _linear_predictor(cov), 0, h0=SECOND_CENTRE_HAZARD_RATIO * baseline_cumhaz)
    lost_at = np.floor(rng.uniform(1.0, PUBLISHED.horizon_months, n) * 100.0) / 100.0
    lost = (rng.random(n) < SECOND_CENTRE_LOST) & (lost_at < time)
    time, event = np.where(lost, lost_at, time), np.where(lost, 0, event)
    type_code, mgmt_code = _leakage_types(rng, event)
    return _cohort_frame("SYN2", cov, type_code, mgmt_code, time, event)


# ============================================================================================
# checks against the published figures
# ============================================================================================
def _fmt_p(p: float) -> str:
    return f"{p:.2e}" if p < 1e-3 else f"{p:.4f}"


def _cox_fits(study: SyntheticStudy, spec: StudySpec) -> tuple[pd.DataFrame, pd.DataFrame, int]:
    """Univariable screen (every candidate) and the multivariable model on the true factors.

    Returns ``screen`` (variable, p_wald_min, p_wald_max, p_lr), ``multi`` (term, coef, hr,
    p_value) and the number of lifelines ``ConvergenceWarning`` warnings raised by the fits.
    """
    from lifelines import CoxPHFitter  # Efron ties, as R coxph
    from lifelines.exceptions import ConvergenceWarning

    from ..design import encode

    cohort = study.cohort
    t, e = spec.outcome.time, spec.outcome.event

    def fit(variables: list[str]) -> CoxPHFitter:
        X = encode(spec, cohort, variables).X
        df = X.assign(**{t: cohort[t].to_numpy(float), e: cohort[e].to_numpy(float)})
        return CoxPHFitter().fit(df, duration_col=t, event_col=e)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        rows = []
        for var in spec.candidates:
            cph = fit([var.name])
            rows.append({"variable": var.name, "p_wald_min": float(cph.summary["p"].min()),
                         "p_wald_max": float(cph.summary["p"].max()),
                         "p_lr": float(cph.log_likelihood_ratio_test().p_value)})
        factors = [v for v, b in TRUE_COEFFICIENTS.items() if b != 0.0]
        summ = fit(factors).summary
    n_warn = sum(issubclass(w.category, ConvergenceWarning) for w in caught)
    multi = pd.DataFrame({"term": summ.index.to_list(), "coef": summ["coef"].to_numpy(),
                          "hr": summ["exp(coef)"].to_numpy(), "p_value": summ["p"].to_numpy()})
    return pd.DataFrame(rows), multi, n_warn


def _paired_tests(outcomes: pd.DataFrame, measure: str) -> pd.DataFrame:
    """All pairwise paired comparisons of time points: Wilcoxon and t, Holm-adjusted per measure."""
    from scipy import stats

    from ..outcomes import holm, signed_rank_test  # R's wilcox.test(paired = TRUE), p.adjust("holm")

    wide = outcomes.pivot(index=ID, columns="timepoint", values=measure)
    pairs = [(b, a) for i, a in enumerate(_TIMEPOINTS) for b in _TIMEPOINTS[i + 1:]]
    rows = []
    for later, earlier in pairs:
        x, y = wide[later].to_numpy(float), wide[earlier].to_numpy(float)
        rows.append({"later": later, "earlier": earlier, "median_diff": float(np.median(x - y)),
                     "p_wilcoxon": signed_rank_test(x, y).p_value,
                     "p_t": float(stats.ttest_rel(x, y).pvalue)})
    res = pd.DataFrame(rows)
    res["p_wilcoxon_holm"] = holm(res["p_wilcoxon"].to_numpy())
    res["p_t_holm"] = holm(res["p_t"].to_numpy())
    return res


def check_published_figures(study: SyntheticStudy, *, spec: StudySpec | None = None,
                            alpha: float | None = None) -> pd.DataFrame:
    """Check a (synthetic) study against every published figure of Chen et al. (2025).

    Parameters
    ----------
    study : SyntheticStudy
        The cohort and outcomes (simulated, or read back from the shipped CSV files: category
        columns may then be plain strings).
    spec : StudySpec, optional
        Study file; default ``study.yaml`` in the working directory.
    alpha : float, optional
        Significance level; default the study file's ``analysis.screen_p_value``.

    Returns
    -------
    pandas.DataFrame
        One row per check: ``check`` (str), ``expected`` (str), ``observed`` (str), ``ok`` (bool).

    Notes
    -----
    Cox models are fitted with ``lifelines.CoxPHFitter`` (Efron ties) on the design matrix of
    :func:`cementleak_stats.design.encode`.  A univariable screen P value is taken to pass in
    the same way whichever test a screen uses: a true factor needs both its Wald and its
    likelihood-ratio P below ``alpha``; a null candidate needs every Wald P and its LR P at or
    above ``alpha``.  The outcome contrasts use the paired Wilcoxon signed-rank test and the
    paired t test, each Holm-adjusted over the three pairs of time points of one measure.
    """
    spec = _default_spec() if spec is None else spec
    alpha = spec.analysis.screen_p_value if alpha is None else alpha
    c, o = study.cohort, study.outcomes
    rows: list[tuple[str, str, str, bool]] = []

    def add(check: str, expected: object, observed: object, ok: bool) -> None:
        rows.append((check, str(expected), str(observed), bool(ok)))

    event = c[spec.outcome.event].to_numpy(int)
    time = c[spec.outcome.time].to_numpy(float)
    horizon = PUBLISHED.horizon_months
    add("patients", PUBLISHED.n, len(c), len(c) == PUBLISHED.n)
    add("leakage events", PUBLISHED.events, int(event.sum()), int(event.sum()) == PUBLISHED.events)
    ltype, mgmt = c["leakage_type"].astype(str).to_numpy(), c["management"].astype(str).to_numpy()
    for t, (m, count) in PUBLISHED.leakage_types.items():
        k = int(((ltype == t) & (mgmt == m) & (event == 1)).sum())
        add(f"leakage type {t}, management {m}", count, k, k == count)
    k = int(((ltype == NO_EVENT_LEVEL) & (mgmt == NO_EVENT_LEVEL) & (event == 0)).sum())
    add("no leakage: type and management 'none'", int((event == 0).sum()), k, k == int((event == 0).sum()))
    k = int((time[event == 0] == horizon).sum())
    add("no leakage: censored at exactly 12 months", int((event == 0).sum()), k, k == int((event == 0).sum()))
    lo, hi = float(time[event == 1].min()), float(time[event == 1].max())
    add("event times in (0, 12)", "0 < t < 12", f"{lo:.2f}..{hi:.2f}", 0 < lo and hi < horizon)

    screen, multi, n_warn = _cox_fits(study, spec)
    add("Cox fits without convergence warnings", 0, n_warn, n_warn == 0)
    factors = [v for v, b in TRUE_COEFFICIENTS.items() if b != 0.0]
    for _, r in multi.iterrows():
        beta = TRUE_COEFFICIENTS[r["term"]]
        ok = r["p_value"] < alpha and np.sign(r["coef"]) == np.sign(beta)
        add(f"multivariable Cox: {r['term']}", f"P < {alpha}, HR {'>' if beta > 0 else '<'} 1",
            f"HR {r['hr']:.3f}, P {_fmt_p(r['p_value'])}", ok)
    for _, r in screen.iterrows():
        if r["variable"] in factors:
            ok = max(r["p_wald_max"], r["p_lr"]) < alpha
            exp = f"P < {alpha}"
        else:
            ok = min(r["p_wald_min"], r["p_lr"]) >= alpha
            exp = f"P >= {alpha}"
        add(f"univariable screen: {r['variable']}", exp,
            f"Wald P {_fmt_p(r['p_wald_min'])}, LR P {_fmt_p(r['p_lr'])}", ok)

    for measure, later, earlier in PUBLISHED.outcome_contrasts:
        tests = _paired_tests(o, measure).set_index(["later", "earlier"]).loc[(later, earlier)]
        ok = tests["median_diff"] < 0 and tests["p_wilcoxon_holm"] < alpha and tests["p_t_holm"] < alpha
        add(f"{measure}: {later} lower than {earlier}", f"lower, Holm P < {alpha} (Wilcoxon and t)",
            f"median diff {tests['median_diff']:.1f}, Wilcoxon P {_fmt_p(tests['p_wilcoxon_holm'])}, "
            f"t P {_fmt_p(tests['p_t_holm'])}", ok)
    return pd.DataFrame(rows, columns=["check", "expected", "observed", "ok"])


def search_seed(*, start: int = SEARCH_START, max_tries: int = 10_000, spec: StudySpec | None = None) -> SeedSearch:
    """Find the first seed ``>= start`` whose 100-patient cohort passes every published check.

    This is how :data:`DEFAULT_SEED` was chosen: ``search_seed()`` returns it.  The search is
    sequential and deterministic; each seed costs one simulation and 14 Cox fits (about 1 s).

    Returns
    -------
    SeedSearch
        ``seed``, ``tried`` (number of seeds simulated) and the passing ``checks`` table.

    Raises
    ------
    RuntimeError
        when no seed in ``[start, start + max_tries)`` passes.
    """
    spec = _default_spec() if spec is None else spec
    for i in range(max_tries):
        checks = check_published_figures(simulate_study(n=PUBLISHED.n, seed=start + i), spec=spec)
        if checks["ok"].all():
            return SeedSearch(seed=start + i, tried=i + 1, checks=checks)
    raise RuntimeError(f"no seed in [{start}, {start + max_tries}) reproduces the published figures")


# ============================================================================================
# writing the files
# ============================================================================================
def _default_spec() -> StudySpec:
    """The project's study file, ``study.yaml`` in the working directory (as every CLI command)."""
    path = Path("study.yaml")
    if not path.is_file():
        raise InputError([Problem(file=str(path.resolve()), rule="study file not found",
                                  fix="run `cementleak simulate` from the project directory, which holds study.yaml")],
                         summary="Invalid study file")
    return load_spec(path)


def _spec_problems(spec: StudySpec) -> list[Problem]:
    """Differences between the study file and the columns this simulator generates."""
    file = str(spec.source or "study file")
    problems = []
    if tuple(spec.columns) != _COLUMNS:
        problems.append(Problem(file=file, rule=f"the simulator writes the columns {list(_COLUMNS)}; "
                                f"the study file declares {list(spec.columns)}",
                                fix="simulate with the project's own study.yaml"))
    for name, levels in _LEVELS.items():
        if name in spec.columns and spec.variable(name).levels != levels:
            problems.append(Problem(file=file, column=name, rule=f"levels differ from the simulator's {list(levels)}",
                                    value=str(list(spec.variable(name).levels))))
    rep = spec.repeated
    if rep is None or (rep.id, rep.timepoint, *(m.name for m in rep.measures)) != _OUTCOME_COLUMNS \
            or tuple(tp.name for tp in rep.timepoints) != _TIMEPOINTS:
        problems.append(Problem(file=file, column="repeated", rule=f"the simulator writes outcomes with columns "
                                f"{list(_OUTCOME_COLUMNS)} at time points {list(_TIMEPOINTS)}"))
    return problems


def _csv_text(df: pd.DataFrame) -> str:
    """CSV with fixed decimals per column, '\\n' newlines, no index: the same data, the same bytes."""
    out = pd.DataFrame(index=df.index)
    for col in df.columns:
        s = df[col]
        if col in _DECIMALS:
            out[col] = [f"{v:.{_DECIMALS[col]}f}" for v in s.to_numpy(float)]
        else:
            out[col] = s.astype(str)
    return out.to_csv(index=False, lineterminator="\n")


def _second_centre_file(spec: StudySpec) -> str:
    """The second centre's file name: the study file's ``validation: cohort_file:``, else the default."""
    v = spec.validation
    return Path(v.cohort_file).name if v is not None and v.cohort_file is not None else SECOND_CENTRE_FILE


def _dictionary(spec: StudySpec) -> pd.DataFrame:
    """Data dictionary of the three files, generated from the study file."""
    rows = []
    for file in (Path(spec.cohort_file).name, _second_centre_file(spec)):
        rows.append((file, spec.study.id_column, "Patient identifier", "", "identifier", "",
                     "Synthetic study number; identifying, never shown in any output"))
        for v in spec.variables:
            notes = [v.description.rstrip(".")] if v.description else []
            if v.range is not None:
                notes.append(f"{'Integer, a' if v.integer else 'A'}llowed range {v.range[0]:g} to {v.range[1]:g}")
            desc = ". ".join(notes) + ("." if notes else "")
            rows.append((file, v.name, v.label, v.unit or "", v.kind, "|".join(v.levels), desc))
        out = spec.outcome
        lost = "" if file == Path(spec.cohort_file).name else " or when lost to follow-up"
        rows.append((file, out.time, out.time_label, out.time_unit, "time", "",
                     f"Time from surgery to leakage; patients without leakage are censored at {out.followup:g} "
                     f"{out.time_unit}{lost}"))
        rows.append((file, out.event, out.event_label, "", "event", "0|1", "1 = leakage within follow-up, 0 = censored"))
    rep = spec.repeated
    if rep is not None:
        f = Path(rep.file).name
        rows.append((f, rep.id, "Patient identifier", "", "identifier", "", f"Links to {spec.study.id_column} of the cohort"))
        rows.append((f, rep.timepoint, "Time point", "", "nominal", "|".join(tp.name for tp in rep.timepoints),
                     "; ".join(f"{tp.name} = {tp.label}" for tp in rep.timepoints)))
        for m in rep.measures:
            rows.append((f, m.name, m.label, m.unit or "", "continuous", "",
                         f"Repeated measure of {rep.population or 'the cohort'}. Allowed range {m.range[0]:g} to {m.range[1]:g}."))
    return pd.DataFrame(rows, columns=["file", "column", "label", "unit", "kind", "levels", "description"])


def _readme(study: SyntheticStudy, spec: StudySpec, second: pd.DataFrame) -> str:
    """data/README.md, generated so that it always states the coefficients and seed actually used."""
    pub_types = PUBLISHED.leakage_types
    coef_rows = "\n".join(
        f"| `{name}` | {spec.variable(name).label} | {beta:+.3f} | {np.exp(beta):.3f} |"
        for name, beta in TRUE_COEFFICIENTS.items())
    type_rows = "\n".join(f"| `{t}` | `{m}` | {k} |" for t, (m, k) in pub_types.items())
    is_default = study.seed == DEFAULT_SEED and study.n == PUBLISHED.n
    note = ("These are the shipped files: they pass every check below."
            if is_default else
            f"**This copy was generated with seed {study.seed} and n = {study.n}, not the shipped defaults "
            f"(seed {DEFAULT_SEED}, n = {PUBLISHED.n}); the published checks apply to the defaults only.**")
    n_events = int(study.cohort[EVENT].sum())
    centre2 = _second_centre_file(spec)
    mix, base = SECOND_CENTRE_MIX, CaseMix()
    mix_rows = "\n".join(f"| `{f.name}` | {getattr(base, f.name)} | {getattr(mix, f.name)} |"
                         for f in fields(CaseMix) if getattr(base, f.name) != getattr(mix, f.name))
    lost = int(((second[EVENT] == 0) & (second[TIME] < PUBLISHED.horizon_months)).sum())
    this_copy = "" if is_default else f"\ncementleak simulate --seed {study.seed} --n {study.n} --out DIR   # this copy"
    return f"""# Data: SYNTHETIC cohort — not real patients

> **WARNING: every file in this directory is SYNTHETIC.** The rows were generated by a computer
> program from a documented statistical model. They are not observed patients and must not be used
> to draw any clinical conclusion. The patients' data of the published study are not public.

Study reproduced: {spec.study.citation}

## Files

| file | content |
|---|---|
| `cohort.csv` | one row per patient ({study.n} rows, {n_events} with leakage); columns exactly as `study.yaml` declares |
| `outcomes.csv` | VAS and ODI of the leakage patients at `preop`, `day3`, `month12` (long format, 3 rows each) |
| `{centre2}` | a second (synthetic) centre for external validation: {len(second)} patients, {int(second[EVENT].sum())} with leakage, another case mix (below) |
| `dictionary.csv` | column, label, unit, kind, levels and description of the three data files, generated from `study.yaml` |
| `README.md` | this file (generated too) |

## How they were made

```bash
cementleak simulate --out data      # or: make simulate{this_copy}
```

runs `cementleak_stats.cohort.simulate.write_synthetic("data", seed={DEFAULT_SEED}, n={PUBLISHED.n})`.
The same seed gives byte-identical files (fixed decimals, `\\n` newlines, no timestamps), given the
same NumPy random stream (PCG64; NumPy does not promise the same stream across major versions, and
a test compares regenerated files with these). {note}

Model (see the docstring of `cementleak_stats/cohort/simulate.py`):

1. Patient and procedure characteristics are drawn with realistic marginal distributions for
   elderly patients with osteoporotic vertebral compression fractures (80 % women, age 55-92,
   T-score about -3, CT value about 85 HU and correlated with the T-score, volume 2-8.5 mL).
2. Time to leakage follows a **Cox model with a Weibull baseline** (shape {WEIBULL_SHAPE}, a falling
   hazard: most leakage is found soon after surgery), shifted by a latency of {LATENCY_MONTHS} months so
   that every time is positive. Times are recorded to 0.01 month, rounded down.
3. **Calibration to exactly 27 % events:** the baseline cumulative hazard at 12 months is set
   between the 27th and 28th smallest latent `E·exp(-x'β)` values (E ~ Exp(1)), so exactly
   round(0.27 n) latent times fall before 12 months (here H0(12) = {study.baseline_cumhaz:.6g}
   with every model term at 0).
   Everyone else is censored at exactly 12 months (end of follow-up).
4. Leakage types are assigned at random among the leakage patients in the published proportions
   (24 : 1 : 2), each with its published management; patients without leakage have `none`/`none`.
5. VAS (0-10, one decimal) and ODI (%, even integers: 10 items x 5 points x 2) of the leakage
   patients fall after surgery and keep improving to 12 months.

### True coefficients (log hazard ratio per unit of the model term)

| variable | label | true β | true HR |
|---|---|---|---|
{coef_rows}

Binary terms compare the non-reference level with the reference (`low` vs `high` viscosity,
`yes` vs `no` cortical fracture); `fracture_severity` is scored 0, 1, 2 (mild, moderate, severe).

## The published figures this cohort is calibrated to

| figure | value |
|---|---|
| patients | {PUBLISHED.n} |
| leakage within 12 months | {PUBLISHED.events} |
| independent factors, multivariable Cox P < 0.05 | CT value, fracture severity, cement viscosity, cortical fracture, cement volume |
| other candidates | not significant in the univariable screen (P ≥ 0.05), so the screen selects exactly those five |
| VAS at 3 days and 12 months lower than pre-op; ODI at 12 months lower than at 3 days | P < 0.05 (paired Wilcoxon and paired t, Holm-adjusted) |

| leakage type | management | patients |
|---|---|---|
{type_rows}

## The second centre (external validation)

`{centre2}` has the columns of `cohort.csv` and is made by `simulate_second_centre` (the same
command writes it) from its own random stream, `numpy.random.default_rng([seed, 2])`, so the
development files above do not depend on it. It is another hospital as a validation study meets
one: the same true coefficients (the model transports), but

- another case mix (the parameters of `CaseMix` that differ):

| parameter | development centre | second centre |
|---|---|---|
{mix_rows}

- a lower baseline hazard, {SECOND_CENTRE_HAZARD_RATIO:g} x the development centre's H0(12) (another team
  and technique), not calibrated to a number of events: {int(second[EVENT].sum())} of {len(second)} patients
  have leakage;
- {SECOND_CENTRE_LOST:.0%} of the patients lost to follow-up at a uniform time between 1 and 12 months
  ({lost} censored before 12 months here), so that censoring weights matter.

A model developed on `cohort.csv` therefore over-predicts there (calibration-in-the-large) while
ranking the patients well: what the study file's `validation:` section shows in the report.

## The seed was selected by a search

The shipped seed **{DEFAULT_SEED}** is not arbitrary: it is the first seed ≥ {SEARCH_START} for which
`check_published_figures` passes every check above ({DEFAULT_SEED - SEARCH_START + 1} seeds tried). The
exact count of 27 events holds for every seed (calibration); the seed search selects the sample in
which the significance pattern of the published paper appears. The P values of this synthetic cohort
therefore say nothing about real patients, and the hazard ratios estimated on this selected sample
are larger than the true ones above (selection on significance inflates estimates). To re-run the
search and the checks (from the project directory, which holds `study.yaml`):

```bash
python -c "from cementleak_stats.cohort.simulate import search_seed; r = search_seed(); print(r.seed, r.tried)"
python -c "from cementleak_stats.cohort.simulate import simulate_study, check_published_figures as c; print(c(simulate_study()).to_string())"
```
"""


def _write_atomic(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; data files are meant to be shared
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_synthetic(out_dir: str | Path, *, seed: int = DEFAULT_SEED, n: int = 100,
                    spec: StudySpec | None = None) -> list[Path]:
    """Simulate the study and write ``cohort.csv``, ``outcomes.csv``, the second centre's cohort
    (:func:`simulate_second_centre`; ``validation: cohort_file:`` of the study file, else
    ``cohort_centre2.csv``), ``dictionary.csv`` and ``README.md``.

    Parameters
    ----------
    out_dir : str or Path
        Directory (created if missing).
    seed, n : int
        Passed to :func:`simulate_study`.
    spec : StudySpec, optional
        Study file the columns are checked against; default ``study.yaml`` in the working directory.

    Returns
    -------
    list of Path
        The files written (each one written atomically).

    Raises
    ------
    InputError
        when the study file is missing or does not declare the columns and levels this simulator
        generates, or ``n < 2``; nothing is written then.
    """
    spec = _default_spec() if spec is None else spec
    problems = _spec_problems(spec)
    if n < 2:
        problems.append(Problem(file="(command line)", column="n", value=str(n), rule="n must be at least 2"))
    if problems:
        raise InputError(problems, summary="The study file does not match the synthetic PVP cohort")
    study = simulate_study(n=n, seed=seed)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cohort_name = Path(spec.cohort_file).name
    outcomes_name = Path(spec.repeated.file).name  # type: ignore[union-attr]  # checked above
    second = simulate_second_centre(baseline_cumhaz=study.baseline_cumhaz, seed=seed)
    files = {
        out / cohort_name: _csv_text(study.cohort),
        out / outcomes_name: _csv_text(study.outcomes),
        out / _second_centre_file(spec): _csv_text(second),
        out / "dictionary.csv": _dictionary(spec).to_csv(index=False, lineterminator="\n"),
        out / "README.md": _readme(study, spec, second),
    }
    for path, text in files.items():
        _write_atomic(path, text)
    return list(files)
