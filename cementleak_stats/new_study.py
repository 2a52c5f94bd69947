"""``cementleak new DIR``: a new study folder, the way ``quarto create project`` makes a project.

The folder holds everything of one study and nothing of any other: a commented study file, the
narrative files the authors fill in, a ``data/`` folder for their spreadsheet, and a copy of the
report's Quarto documents (``_quarto.yml`` and ``report/``), so that ``cementleak report`` and
``quarto render`` both work inside it without touching anything outside it.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

from .errors import InputError, Problem
from .narrative import PARTS

#: the repository that holds the report's documents (an editable install, or a source checkout)
_PROJECT = Path(__file__).resolve().parents[1]

_DATA_README = """# Data

Put the cohort file here (one row per patient) and point `cohort_file` in `../study.yaml` at it:
CSV, Excel (`.xlsx`), SPSS (`.sav`) or Parquet. `cementleak validate` checks it against the study
file and never modifies it.
"""


@dataclass(frozen=True)
class NewStudy:
    folder: Path
    written: tuple[Path, ...]


def report_documents() -> tuple[Path, Path]:
    """The Quarto project's ``_quarto.yml`` and ``report/`` folder that new studies copy."""
    quarto_yml, report = _PROJECT / "_quarto.yml", _PROJECT / "report"
    if not (quarto_yml.is_file() and report.is_dir()):
        raise InputError([Problem(str(_PROJECT), "the report's documents (_quarto.yml, report/) were not found beside the package",
                                  fix="install cementleak from its source folder: pip install -e <cementleak checkout>")],
                         summary="Cannot create a study folder")
    return quarto_yml, report


def create_study(folder: Path, *, title: str = "") -> NewStudy:
    """Create ``folder`` with a study template; refuse to write into a folder that has files."""
    folder = Path(folder)
    if folder.exists() and any(folder.iterdir()):
        raise InputError([Problem(str(folder), "the folder exists and is not empty; nothing was written",
                                  fix="name a new folder, e.g. cementleak new my-study")], summary="Cannot create a study folder")
    quarto_yml, report = report_documents()
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    template = files("cementleak_stats").joinpath("templates/study.yaml").read_text(encoding="utf-8")
    name = title or folder.resolve().name.replace("-", " ").replace("_", " ").strip().capitalize() or "My study"
    (folder / "study.yaml").write_text(template.replace("__TITLE__", name.replace('"', "'")), encoding="utf-8")
    written.append(folder / "study.yaml")
    (folder / "narrative").mkdir()
    for part, what in PARTS.items():
        path = folder / "narrative" / f"{part}.md"
        path.write_text(f"<!-- {what}\n     Write below this comment; while the file holds only this comment, the report\n"
                        "     uses neutral text. Plain Markdown; cross-references such as @tbl-baseline work. -->\n",
                        encoding="utf-8")
        written.append(path)
    (folder / "data").mkdir()
    (folder / "data" / "README.md").write_text(_DATA_README, encoding="utf-8")
    written.append(folder / "data" / "README.md")
    shutil.copy2(quarto_yml, folder / "_quarto.yml")
    shutil.copytree(report, folder / "report", ignore=shutil.ignore_patterns("*_files", ".quarto", "*.html", "*.pdf", "*.docx"))
    written += [folder / "_quarto.yml", folder / "report"]
    (folder / ".gitignore").write_text("_output/\n.cementleak-cache/\n.quarto/\n", encoding="utf-8")
    return NewStudy(folder, tuple(written))
