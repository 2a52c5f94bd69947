"""Every figure of the report, drawn for every study the tests render, reads cleanly.

For the shipped study, lifelines' Rossi data and each study under ``tests/studies/`` (lung,
...), every entry of :data:`cementleak_stats.presentation.FIGURES` is drawn and checked:

* no two drawn texts overlap (window extents of every ``Text`` artist drawn, with the
  figure's renderer);
* every drawn text lies inside the figure (the report shows a figure at its own width: text
  outside it would be shrunk with the figure);
* no data line leaves its axes unless a clip mark (an artist with gid ``clip-mark``) sits on
  the edge it leaves by;
* no legend covers a data line.

The analysis runs once per study and module with a small bootstrap (B = 10): figures depend on
the numbers only through their ranges.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from figure_checks import figure_problems  # noqa: E402

from cementleak_stats import presentation  # noqa: E402
from cementleak_stats.spec import load_spec  # noqa: E402
from cementleak_stats.study import StudyResults, compute_study  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
_ROSSI = ROOT / "tests" / "studies" / "rossi" / "study.yaml"
STUDIES = {
    "shipped": ROOT / "study.yaml",
    **({} if _ROSSI.exists() else {"rossi": ROOT / "tests" / "data" / "rossi_study.yaml"}),
    **{p.parent.name: p for p in sorted((ROOT / "tests" / "studies").glob("*/study.yaml"))},
}


@pytest.fixture(scope="module", params=sorted(STUDIES), ids=str)
def results(request) -> StudyResults:
    spec = load_spec(STUDIES[request.param])
    spec = spec.model_copy(update={"analysis": spec.analysis.model_copy(update={"bootstrap_b": 10})})
    return compute_study(spec)


@pytest.mark.parametrize("name", list(presentation.FIGURES))
def test_every_figure_reads_cleanly(results: StudyResults, name: str) -> None:
    fig = presentation.FIGURES[name](results)
    if fig is None:  # a figure of a section the study does not have (repeated measures, a validation cohort)
        assert name != "trajectories" or results.outcomes is None
        return
    try:
        assert figure_problems(fig) == {}, name
    finally:
        plt.close(fig)


def test_nomogram_risk_axis_covers_the_cohort(results: StudyResults) -> None:
    """The risk axis spans at least the 5th-95th percentile of the cohort's predicted risks,
    and each risk label sits at the total points that give that risk."""
    fig = presentation.figure_nomogram(results)
    try:
        ax = fig.axes[0]
        risk_row_y = ax.get_yticks()[-1]
        labels = [t for t in ax.texts if t.get_gid() == "nomogram-value" and abs(t.get_position()[1] - risk_row_y) < 0.3]
        risks = np.array([float(t.get_text()) for t in labels])
        p5, p95 = np.quantile(results.predictions["risk_at_horizon"], [0.05, 0.95])
        assert risks.min() <= p5 and risks.max() >= p95, (risks, p5, p95)
        n = results.nomogram
        total_max = float(n.total["total_points"].max())
        x = np.array([t.get_position()[0] for t in labels])  # 0-100 drawing scale of the total-points axis
        np.testing.assert_allclose(n.risk_from_points(x * total_max / 100.0), risks, rtol=1e-9)
    finally:
        plt.close(fig)


def test_horizons_shortest_first_in_tables_and_prose_as_in_the_figures(results: StudyResults) -> None:
    # GBSG-2's study file says horizon 5 with 1 and 3 years: its ROC legend and calibration panels
    # read 1, 3, 5 years, and so must the table of measures, the comparator's AUC rows and the text
    from cementleak_stats.assessment_report import horizon_words
    from cementleak_stats.document import ReportView

    hs = sorted(results.spec.outcome.all_horizons)
    words = [horizon_words(results, h) for h in hs]
    table = presentation.TABLES["horizons"](results)
    if len(table):
        assert list(table.columns[1:]) == words
    comparator = presentation.TABLES["comparator"](results)
    if len(comparator):
        auc_rows = [m for m in comparator.iloc[:, 0] if "AUC" in m]
        assert auc_rows == [f"Time-dependent AUC at {w}" for w in words]
    said = ReportView(results).assessment.horizons
    assert said.startswith(f"{hs[0]:g}") and said.rstrip().endswith(f"{hs[-1]:g} {results.spec.outcome.time_unit}")
