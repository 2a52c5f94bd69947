"""Provenance of a run: what data, which study file, which code, which software.

Every report ends with this colophon; the cache key of the analysis is built from it.
"""

from __future__ import annotations

import hashlib
import platform
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import pandas as pd

from . import __version__
from .spec import StudySpec

#: the libraries whose versions are reported (they compute or render something we report)
REPORTED_PACKAGES = (
    "numpy", "scipy", "pandas", "lifelines", "statsmodels", "tableone", "pandera",
    "matplotlib", "seaborn", "jupytext", "nbclient", "pypandoc-binary", "typst",
)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def git_commit(cwd: Path) -> str:
    """The commit of the working tree (with ``-dirty`` when it has changes), or ``unknown``."""
    try:
        out = subprocess.run(["git", "describe", "--always", "--dirty", "--abbrev=12"], cwd=cwd,
                             capture_output=True, text=True, timeout=10, check=True)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def code_digest() -> str:
    """SHA-256 over the package's own source files, so a changed analysis never reuses a stale cache."""
    h = hashlib.sha256()
    root = Path(__file__).resolve().parent
    for f in sorted(root.rglob("*.py")):
        h.update(f.relative_to(root).as_posix().encode())
        h.update(f.read_bytes())
    return h.hexdigest()[:16]


def package_versions(names: Iterable[str] = REPORTED_PACKAGES) -> dict[str, str]:
    out = {"python": platform.python_version(), "cementleak-stats": __version__}
    for n in names:
        try:
            out[n] = version(n)
        except PackageNotFoundError:
            out[n] = "not installed"
    return out


@dataclass(frozen=True)
class Provenance:
    study_file: str
    study_sha256: str
    data_sha256: dict[str, str]
    seed: int
    bootstrap_b: int
    package_version: str
    versions: dict[str, str]
    git_commit: str
    synthetic: bool

    def cache_key(self) -> str:
        """Hash of data + study file + package version (what the analysis depends on)."""
        parts = [self.study_sha256, *sorted(f"{k}:{v}" for k, v in self.data_sha256.items()), self.package_version]
        return hashlib.sha256("|".join(parts).encode()).hexdigest()[:24]

    def table(self) -> pd.DataFrame:
        rows = [
            ("Study file", self.study_file),
            ("Study file SHA-256", self.study_sha256),
            *[(f"Data SHA-256: {k}", v) for k, v in self.data_sha256.items()],
            ("Synthetic data", "yes" if self.synthetic else "no"),
            ("Random seed", str(self.seed)),
            ("Bootstrap replicates (B)", str(self.bootstrap_b)),
            ("Git commit", self.git_commit),
            *[(f"Version: {k}", v) for k, v in self.versions.items()],
        ]
        return pd.DataFrame(rows, columns=["item", "value"])


def collect_provenance(spec: StudySpec, data_files: Iterable[Path]) -> Provenance:
    files = sorted({Path(p) for p in data_files})
    return Provenance(
        study_file=spec.source.name if spec.source else "<in memory>",
        study_sha256=spec.digest(),
        data_sha256={p.name: sha256_file(p) for p in files},
        seed=spec.analysis.seed,
        bootstrap_b=spec.analysis.bootstrap_b,
        package_version=f"{__version__}+{code_digest()}",
        versions=package_versions(),
        git_commit=git_commit(spec.base_dir),
        synthetic=spec.study.synthetic,
    )
