"""cementleak_stats: a clinical prediction study from one study file.

Cox model, nomogram, bootstrap validation and calibration, decision curve and a Quarto report,
all driven by a study file (see ``study.yaml``; the shipped example reproduces a published
cohort study whose words live only in its study file and narrative).
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("cementleak-stats")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0+unknown"

from .spec import StudySpec, load_spec  # noqa: E402

__all__ = ["StudySpec", "load_spec", "__version__"]
