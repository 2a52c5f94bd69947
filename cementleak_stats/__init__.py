"""cementleak_stats: a clinical prediction study from one study file.

Cox model, nomogram, bootstrap validation and calibration, decision curve and a Quarto report,
all driven by a study file (see ``study.yaml``; the shipped example reproduces a published
cohort study whose words live only in its study file and narrative).

Importing the package is light: ``StudySpec`` and ``load_spec`` are imported on first use
(PEP 562), so ``cementleak --help`` and ``cementleak predict`` pay only for what they use.
"""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .spec import StudySpec, load_spec

    __version__: str

__all__ = ["StudySpec", "load_spec", "__version__"]


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version  # ~0.1 s: only when asked

    try:
        return version("cementleak-stats")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
        return "0.0.0+unknown"


def __getattr__(name: str) -> Any:
    if name == "__version__":
        globals()["__version__"] = v = _version()
        return v
    if name in ("StudySpec", "load_spec"):
        from . import spec

        return getattr(spec, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
