"""The data-generating model of the synthetic cohort (see the package docstring for the story)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np
import pandas as pd


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
