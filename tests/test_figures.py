"""Figures: every plot draws from a small synthetic frame, takes its texts from the inputs,
never shows or leaks global state; save_figure writes PNG/SVG/PDF atomically and
reproducibly.  There are no reference numbers here: figures compute nothing."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.collections import LineCollection  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.text import Text  # noqa: E402
from figure_checks import legends_over_lines, lines_leaving_axes, text_overlaps, texts_outside  # noqa: E402
from PIL import Image  # noqa: E402

from cementleak_stats.figures import (  # noqa: E402
    COLUMN_WIDTH,
    PAGE_WIDTH,
    PALETTE,
    figure_theme,
    plot_calibration,
    plot_decision_curve,
    plot_forest,
    plot_interventions_avoided,
    plot_km,
    plot_nomogram,
    plot_outcome_panels,
    plot_risk_distribution,
    plot_schoenfeld,
    plot_trajectories,
    risk_ticks,
    save_figure,
)
from cementleak_stats.formatting import format_p, format_value  # noqa: E402
from cementleak_stats.figures.nomogram import _place_labels, _Tick  # noqa: E402

pytestmark = pytest.mark.filterwarnings("error")


@pytest.fixture(autouse=True)
def _no_show_and_close(monkeypatch):
    def show(*_a, **_k):
        raise AssertionError("a figure function called plt.show")

    monkeypatch.setattr(plt, "show", show)
    yield
    plt.close("all")


# ---------------------------------------------------------------- synthetic inputs
@pytest.fixture
def forest_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "group": ["Univariable"] * 3 + ["Multivariable"] * 2,
            "label": ["Alpha (units)", "Beta: b vs a", "Gamma", "Alpha (units)", "Beta: b vs a"],
            "hr": [0.8, 2.5, 1.1, 0.85, 2.2],
            "ci_low": [0.7, 1.2, 0.6, 0.72, 1.01],
            "ci_high": [0.93, 5.1, 2.0, 0.99, np.inf],
            "p_value": [0.004, 0.01, 0.75, 0.04, 0.049],
        }
    )


def _points_frame() -> pd.DataFrame:
    rows = [("Marker X (u)", v, p) for v, p in zip(range(0, 101, 10), np.linspace(100, 0, 11))]
    rows += [("Grade", lv, p) for lv, p in zip(["mild", "moderate", "severe"], [0, 20, 40])]
    rows += [("Flag", lv, p) for lv, p in zip(["no", "yes"], [0, 35])]
    # a crowded continuous axis: 13 values within 12 points
    rows += [("Dose (mL)", v, p) for v, p in zip(np.arange(0.0, 6.5, 0.5), np.linspace(0, 12, 13))]
    return pd.DataFrame(rows, columns=["predictor", "value", "points"])


@pytest.fixture
def nomogram_frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    total = pd.DataFrame({"total_points": [40, 80, 100, 120, 150, 170], "risk": [0.01, 0.05, 0.1, 0.2, 0.5, 0.8]})
    return _points_frame(), total


@pytest.fixture
def calibration_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "predicted": [0.05, 0.15, 0.3, 0.5],
            "observed": [0.07, 0.12, 0.33, 0.45],
            "corrected": [0.06, 0.10, 0.30, 0.41],
            "ci_low": [0.0, 0.02, 0.15, 0.25],
            "ci_high": [0.2, 0.3, 0.5, 0.65],
        }
    )


@pytest.fixture
def dca_frame() -> pd.DataFrame:
    t = np.arange(0.01, 0.61, 0.01)
    prev = 0.27
    return pd.DataFrame(
        {
            "threshold": t,
            "net_benefit_model": np.maximum(prev - t * 0.4, 0.0) * 0.9,
            "net_benefit_all": prev - (1 - prev) * t / (1 - t),
            "net_benefit_none": 0.0,
        }
    )


@pytest.fixture
def long_frame() -> pd.DataFrame:
    rng = np.random.default_rng(11)
    tps = pd.CategoricalDtype(["Before", "Day 3", "Month 12"], ordered=True)
    rows = []
    for i in range(9):
        for m, centre in (("Score A (0-10)", [7, 3, 2]), ("Score B (%)", [70, 40, 20])):
            for t, c in zip(tps.categories, centre):
                rows.append((m, f"PID-SECRET-{i:03d}", t, c + rng.normal(0, 1)))
    df = pd.DataFrame(rows, columns=["measure", "id", "timepoint", "value"])
    df["timepoint"] = df["timepoint"].astype(tps)
    return df


def _centres(long: pd.DataFrame) -> pd.DataFrame:
    """A summary per measure and time point as the results carry it (here: mean -/+ 1)."""
    m = long.groupby(["measure", "timepoint"], observed=True)["value"].mean().rename("centre").reset_index()
    return m.assign(low=m["centre"] - 1, high=m["centre"] + 1)


@pytest.fixture
def km_frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    frames = []
    for g, drop in (("Group one", 0.02), ("Group two", 0.06)):
        t = np.arange(0.0, 13.0, 1.0)
        s = np.exp(-drop * t)
        frames.append(pd.DataFrame({"time": t, "survival": s, "ci_low": s - 0.05, "ci_high": np.minimum(s + 0.05, 1), "group": g}))
    at_risk = pd.DataFrame({"time": [0, 6, 12] * 2, "group": ["Group one"] * 3 + ["Group two"] * 3, "n_at_risk": [50, 44, 40, 50, 35, 25]})
    return pd.concat(frames, ignore_index=True), at_risk


@pytest.fixture
def zph_frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(5)
    parts = [
        pd.DataFrame({"term": term, "label": label, "transformed_time": np.sort(rng.random(20)), "residual": rng.normal(0, 1, 20)})
        for term, label in (("x1", "First term (u)"), ("x2", "Second term"), ("x3", "Third term"), ("x4", "Fourth"))
    ]
    tests = pd.DataFrame({"term": ["x1", "x2", "x3", "x4", "GLOBAL"], "p_value": [0.41, 0.0002, 0.77, 0.05, 0.3]})
    return pd.concat(parts, ignore_index=True), tests


def _texts(fig: Figure) -> list[str]:
    return [t.get_text() for t in fig.findobj(Text) if t.get_text()]


def _gid(ax: Axes, gid: str) -> list:
    return [a for a in ax.get_children() if a.get_gid() == gid]


# ---------------------------------------------------------------- formatting helpers
def test_format_p_and_values():
    assert format_p(0.0004) == "<0.001"
    assert format_p(0.04567) == "0.046"
    assert format_p(float("nan")) == ""
    assert format_value(20.0) == "20"
    assert format_value(2.5) == "2.5"
    assert format_value("moderate") == "moderate"
    assert format_value(-10.0) == "\u221210" and format_value(-2.5) == "\u22122.5"  # a true minus, as the axes'
    assert format_value(-0.0) == "0"


# ---------------------------------------------------------------- forest
def test_forest_rows_texts_and_log_axis(forest_frame):
    before = forest_frame.copy()
    ax = plot_forest(forest_frame, xlabel="HR axis label", title="Forest title")
    assert isinstance(ax, Axes)
    pd.testing.assert_frame_equal(forest_frame, before)  # input untouched
    ci = _gid(ax, "forest-ci")
    assert sum(len(c.get_segments()) for c in ci) == len(forest_frame)  # one CI per row
    assert ax.get_xscale() == "log"
    assert ax.get_xlabel() == "HR axis label" and ax.get_title(loc="left") == "Forest title"
    ticks = [t.get_text() for t in ax.get_yticklabels()]
    assert ticks == ["Univariable", "Alpha (units)", "Beta: b vs a", "Gamma", "Multivariable", "Alpha (units)", "Beta: b vs a"]
    texts = _texts(ax.figure)
    assert "0.80 (0.70–0.93)" in texts and "<0.001" not in texts and "0.004" in texts
    assert "2.20 (1.01–∞)" in texts  # an infinite upper limit is printed, and drawn as an arrow
    xmin, xmax = ax.get_xlim()
    assert xmin <= 0.7 and xmax >= 5.1 and xmin < 1 < xmax


def test_forest_reference_row_and_no_group():
    frame = pd.DataFrame(
        {"label": ["Level b", "Level a (reference)"], "hr": [1.8, np.nan], "ci_low": [1.1, np.nan], "ci_high": [2.9, np.nan], "p_value": [0.02, np.nan]}
    )
    ax = plot_forest(frame, reference_text="Ref.")
    assert sum(len(c.get_segments()) for c in _gid(ax, "forest-ci")) == 1
    assert "Ref." in _texts(ax.figure)


def test_forest_text_columns_do_not_overlap_the_axes(forest_frame):
    ax = plot_forest(forest_frame)
    fig = ax.figure
    fig.draw_without_rendering()
    right = ax.get_window_extent().x1
    columns = [t for t in ax.texts if "(" in t.get_text() or t.get_text() in {"P", "0.004"}]
    assert columns and all(t.get_window_extent().x0 > right for t in columns)


# ---------------------------------------------------------------- nomogram
def test_nomogram_rows_and_value_labels(nomogram_frames):
    points, total = nomogram_frames
    ax = plot_nomogram(points, total, risk_label="12-month risk of the event", title="Nomo title")
    rows = [t.get_text() for t in ax.get_yticklabels()]
    assert rows == ["Points", "Marker X (u)", "Grade", "Flag", "Dose (mL)", "Total points", "12-month risk of the event"]
    assert ax.get_title(loc="left") == "Nomo title"
    labels = [t.get_text() for t in _gid(ax, "nomogram-value")]
    for level in ("mild", "moderate", "severe", "no", "yes"):  # every categorical level is labelled
        assert level in labels
    for risk in ("0.01", "0.05", "0.1", "0.2", "0.5", "0.8"):
        assert risk in labels
    assert "0" in labels and "100" in labels


def test_nomogram_value_labels_never_overlap(nomogram_frames):
    points, total = nomogram_frames
    ax = plot_nomogram(points, total, risk_label="Risk")
    ax.figure.draw_without_rendering()
    texts = _gid(ax, "nomogram-value")
    boxes = [t.get_window_extent() for t in texts]
    for i in range(len(boxes)):
        for j in range(i + 1, len(boxes)):
            a, b = boxes[i], boxes[j]
            overlap_x = min(a.x1, b.x1) - max(a.x0, b.x0)
            overlap_y = min(a.y1, b.y1) - max(a.y0, b.y0)
            assert not (overlap_x > 0.5 and overlap_y > 0.5), (texts[i].get_text(), texts[j].get_text())
    # the crowded axis labels evenly spaced values, both ends included
    dose_y = ax.get_yticks()[[t.get_text() for t in ax.get_yticklabels()].index("Dose (mL)")]
    dose = [t for t in texts if abs(t.get_position()[1] - dose_y) < 0.2]
    assert len(dose) < 13
    shown = sorted(float(t.get_text()) for t in dose)
    assert shown[0] == 0.0 and shown[-1] == 6.0
    assert len(set(np.round(np.diff(shown), 9))) == 1  # a regular step, no gaps


@pytest.mark.parametrize(
    ("width", "categorical", "expected"),
    [
        (0.8, False, [0, 0, 0, 0, 0]),  # all fit above the line
        (1.5, False, [0, 1, 0, 1, 0]),  # alternate above / below
        (2.5, False, [0, None, 1, None, 0]),  # every second value, alternating
        (2.5, True, [0, 1, 2, 0, 1]),  # levels are never dropped: a third lane when two do not suffice
    ],
)
def test_nomogram_label_placement(width, categorical, expected):
    ticks = [_Tick(float(x), str(x)) for x in range(5)]
    assert _place_labels(ticks, lambda _s: width, 0.0, categorical=categorical) == expected


def test_nomogram_thinned_axis_labels_both_ends():
    # room for two labels only: 0 and 10 (a step of 10), not 0 and 6 with the end unlabelled
    ticks = [_Tick(float(x), str(x)) for x in range(11)]
    assert _place_labels(ticks, lambda _s: 12.0, 0.0, categorical=False) == [0, *[None] * 9, 1]


def test_nomogram_very_short_axis_labels_its_ends_without_a_comb(nomogram_frames):
    # a near-null predictor: 11 values (0-1000) within 3 points, as GBSG-2's oestrogen receptor
    points, total = nomogram_frames
    short = pd.DataFrame({"predictor": "Receptor (fmol/l)", "value": np.arange(0.0, 1001.0, 100.0),
                          "points": np.linspace(0, 3, 11)})
    ax = plot_nomogram(pd.concat([points, short], ignore_index=True), total, risk_label="Risk")
    y = ax.get_yticks()[[t.get_text() for t in ax.get_yticklabels()].index("Receptor (fmol/l)")]
    labels = sorted(float(t.get_text()) for t in _gid(ax, "nomogram-value")
                    if abs(t.get_position()[1] - y) < 0.2)
    assert labels[0] == 0.0 and labels[-1] == 1000.0
    ticks = [ln for ln in ax.get_lines() if len(set(ln.get_xdata())) == 1 and min(ln.get_ydata()) <= y + 1e-9
             and max(ln.get_ydata()) >= y - 1e-9 and abs(np.mean(ln.get_ydata()) - y) < 0.1]
    assert len(ticks) == len(labels)  # only the labelled values: 11 ticks in 1.5 mm would be a comb


def test_nomogram_draws_into_a_given_constrained_axes(nomogram_frames):
    points, total = nomogram_frames
    _, ax = plt.subplots(figsize=(6, 4), layout="constrained")
    assert plot_nomogram(points, total.assign(label="Risk from frame"), ax=ax) is ax
    assert ax.get_yticklabels()[-1].get_text() == "Risk from frame"


# ---------------------------------------------------------------- calibration, risk distribution
def test_calibration_series_labels_and_histogram(calibration_frame):
    smooth = pd.DataFrame({"predicted": np.linspace(0, 0.6, 20), "observed": np.linspace(0, 0.55, 20)})
    preds = np.random.default_rng(1).uniform(0, 0.6, 100)
    ax = plot_calibration(calibration_frame, horizon_label="the event by 12 months", smooth=smooth, predictions=preds, note="B = 200")
    assert ax.get_xlabel().replace("\n", " ") == "Predicted probability of the event by 12 months"
    assert ax.get_xlim() == (0.0, 1.0) and ax.get_ylim() == (0.0, 1.0)
    (drawn,) = _gid(ax, "calibration-smooth")  # only over the range of the predictions
    assert drawn.get_xdata().min() >= preds.min() and drawn.get_xdata().max() <= preds.max()
    (apparent,) = _gid(ax, "calibration-apparent")
    (corrected,) = _gid(ax, "calibration-corrected")
    np.testing.assert_allclose(apparent.get_ydata(), calibration_frame["observed"])
    np.testing.assert_allclose(corrected.get_ydata(), calibration_frame["corrected"])
    assert _gid(ax, "calibration-smooth") and _gid(ax, "calibration-histogram") and _gid(ax, "calibration-ideal")
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["Ideal", "Apparent", "Bias-corrected", "Smoothed"]
    assert "B = 200" in _texts(ax.figure)


def test_risk_distribution_one_histogram_per_group():
    rng = np.random.default_rng(2)
    frame = pd.DataFrame(
        {"predicted": rng.uniform(0, 0.7, 60), "group": pd.Categorical(["Event"] * 20 + ["No event"] * 40, categories=["No event", "Event"])}
    )
    ax = plot_risk_distribution(frame, xlabel="Predicted risk of X", legend_title="Observed")
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["No event (n = 40)", "Event (n = 20)"]
    assert len(_gid(ax, "risk-Event")) == 1 and len(_gid(ax, "risk-No event")) == 1
    assert ax.get_xlabel() == "Predicted risk of X"


# ---------------------------------------------------------------- decision curve
def test_decision_curve_clips_treat_all(dca_frame):
    ax = plot_decision_curve(dca_frame, model_label="The model")
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["The model", "Treat all", "Treat none"]
    bottom, top = ax.get_ylim()
    assert dca_frame["net_benefit_all"].min() < bottom < 0 < dca_frame["net_benefit_all"].max() <= top
    assert ax.xaxis.get_major_formatter()(0.2, 0) == "20%"
    (model,) = _gid(ax, "dca-model")
    assert len(model.get_xdata()) == len(dca_frame)


def test_interventions_avoided(dca_frame):
    t = dca_frame["threshold"]
    frame = pd.DataFrame({"threshold": t, "interventions_avoided": 100 * (dca_frame["net_benefit_model"] - dca_frame["net_benefit_all"]) / (t / (1 - t))})
    ax = plot_interventions_avoided(frame, ylabel="Avoided per 100")
    assert ax.get_ylabel() == "Avoided per 100"
    assert len(_gid(ax, "dca-avoided")) == 1


# ---------------------------------------------------------------- trajectories
def test_trajectories_one_line_per_patient_and_no_identifier(long_frame):
    part = long_frame[long_frame["measure"] == "Score A (0-10)"]
    ax = plot_trajectories(part, measure_label="Score A (0-10)", ylim=(0, 10), centres=_centres(part))
    (lines,) = _gid(ax, "trajectory-individual")
    assert isinstance(lines, LineCollection) and len(lines.get_segments()) == 9
    assert [t.get_text() for t in ax.get_xticklabels()] == ["Before", "Day 3", "Month 12"]
    assert ax.get_ylabel() == "Score A (0-10)" and ax.get_ylim() == (0, 10)
    assert not any("PID-SECRET" in s for s in _texts(ax.figure))
    (summary,) = _gid(ax, "trajectory-summary")
    np.testing.assert_allclose(summary.get_ydata(), _centres(part)["centre"])  # drawn as given
    bare = plot_trajectories(part, measure_label="A")  # no summary given: none is computed
    assert not _gid(bare, "trajectory-summary") and len(bare.get_legend().get_texts()) == 1


def test_trajectories_median_and_missing_values(long_frame):
    part = long_frame[long_frame["measure"] == "Score B (%)"].copy()
    part.loc[part.index[0], "value"] = np.nan
    ax = plot_trajectories(part, measure_label="B", summary="median", centres=_centres(part))
    assert "Median (IQR)" in [t.get_text() for t in ax.get_legend().get_texts()]


def test_outcome_panels(long_frame):
    fig = plot_outcome_panels(long_frame, ylims={"Score B (%)": (0, 100)}, centres=_centres(long_frame))
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    assert [a.get_ylabel() for a in fig.axes] == ["Score A (0-10)", "Score B (%)"]
    assert [a.get_title(loc="left") for a in fig.axes] == ["A", "B"]
    assert fig.axes[1].get_ylim() == (0, 100)


# ---------------------------------------------------------------- Kaplan-Meier
def test_km_curves_and_risk_table(km_frames):
    frame, at_risk = km_frames
    ax = plot_km(frame, at_risk=at_risk, xlabel="Months", legend_title="Arm")
    assert len(_gid(ax, "km-Group one")) == 1 and len(_gid(ax, "km-Group two")) == 1
    fig = ax.figure
    at_risk_texts = [t for t in fig.findobj(Text) if t.get_gid() == "km-at-risk"]
    assert [t.get_text() for t in at_risk_texts] == [str(n) for n in at_risk["n_at_risk"]]
    assert [float(x) for x in ax.get_xticks()] == [0.0, 6.0, 12.0]
    assert ax.get_xlabel() == "Months" and ax.get_ylabel() == "Survival probability"
    assert fig.get_figwidth() == pytest.approx(PAGE_WIDTH)  # full width
    # the table sits below the x-axis label, its rows labelled by group; the legend is off the curves
    fig.draw_without_rendering()
    label_bottom = ax.xaxis.label.get_window_extent().y0
    assert all(t.get_window_extent().y1 <= label_bottom for t in at_risk_texts)
    (table,) = [a for a in fig.axes if a is not ax]
    assert [t.get_text() for t in table.get_yticklabels()] == ["Group one", "Group two"]
    assert text_overlaps(fig) == [] and texts_outside(fig) == [] and legends_over_lines(fig) == []


def test_km_accepts_array_ticks_and_extends_to_them(km_frames):
    ax = plot_km(km_frames[0], xticks=np.array([0.0, 5.0, 10.0, 15.0]))
    assert ax.get_xlim() == (0.0, 15.0)


def test_km_failure_is_one_minus_survival(km_frames):
    frame, _ = km_frames
    ax = plot_km(frame, failure=True, ylabel="Cumulative incidence of X")
    (line,) = _gid(ax, "km-Group two")
    part = frame[frame["group"] == "Group two"]
    np.testing.assert_allclose(line.get_ydata(), 1 - part["survival"].to_numpy())
    assert ax.get_ylabel() == "Cumulative incidence of X"


# ---------------------------------------------------------------- Schoenfeld
def test_schoenfeld_panels_with_p_values(zph_frames):
    frame, tests = zph_frames
    smooth = frame.assign(smooth=0.5).drop(columns=["residual", "label"])  # the results carry the smooth
    fig = plot_schoenfeld(frame, tests, smooth=smooth)
    assert isinstance(fig, Figure) and len(fig.axes) == 4
    titles = [a.get_title() for a in fig.axes]
    assert titles[0] == "First term (u)\nP = 0.410" and titles[1] == "Second term\nP < 0.001"
    assert all(len([c for c in a.get_children() if c.get_gid() == "zph-smooth"]) == 1 for a in fig.axes)
    assert fig.get_suptitle() == "Global test: P = 0.300"
    (line,) = [c for c in fig.axes[0].get_children() if c.get_gid() == "zph-smooth"]
    np.testing.assert_allclose(line.get_ydata(), 0.5)  # drawn as given, not smoothed again
    assert not any(c.get_gid() == "zph-smooth" for c in plot_schoenfeld(frame, tests).axes[0].get_children())
    # the panel above the empty grid cell keeps its x tick labels
    assert any(t.get_visible() and t.get_text() for t in fig.axes[2].get_xticklabels())


# ---------------------------------------------------------------- theme and inputs
def test_no_global_rcparams_change(forest_frame, km_frames):
    before = dict(matplotlib.rcParams)
    plot_forest(forest_frame)
    plot_km(km_frames[0])
    with figure_theme(base_size=10) as rc:
        assert matplotlib.rcParams["font.size"] == 10 == rc["font.size"]
        assert matplotlib.rcParams["axes.prop_cycle"].by_key()["color"] == list(PALETTE)
    after = dict(matplotlib.rcParams)
    assert {k for k in before if before[k] != after[k]} == set()


def test_caller_theme_wins(km_frames):
    with figure_theme(base_size=11):
        ax = plot_km(km_frames[0])
    assert ax.xaxis.label.get_fontsize() == 11
    ax = plot_km(km_frames[0], width=COLUMN_WIDTH)
    assert ax.xaxis.label.get_fontsize() == 8
    assert ax.figure.get_figwidth() == pytest.approx(COLUMN_WIDTH)


@pytest.mark.parametrize(
    "call",
    [
        lambda: plot_forest(pd.DataFrame({"label": ["a"], "hr": [1.0]})),
        lambda: plot_km(pd.DataFrame({"time": [0.0], "survival": [1.0]})),
        lambda: plot_calibration(pd.DataFrame({"predicted": [0.1]}), horizon_label="x"),
        lambda: plot_decision_curve(pd.DataFrame({"threshold": [0.1]})),
    ],
)
def test_missing_columns_are_named(call):
    with pytest.raises(ValueError, match="lacks column"):
        call()


# ---------------------------------------------------------------- saving
def _draw_sample() -> Figure:
    frame = pd.DataFrame({"label": ["A", "B"], "hr": [1.5, 0.7], "ci_low": [1.1, 0.5], "ci_high": [2.0, 0.95], "p_value": [0.01, 0.03]})
    return plot_forest(frame, title="Sample").figure


def _digests(paths) -> dict[str, str]:
    return {Path(p).suffix: hashlib.sha256(Path(p).read_bytes()).hexdigest() for p in paths}


def test_save_figure_formats_dpi_and_reproducible(tmp_path):
    fig = _draw_sample()
    first = save_figure(fig, tmp_path / "a" / "fig-sample")
    assert [p.name for p in first] == ["fig-sample.png", "fig-sample.svg", "fig-sample.pdf"]
    with Image.open(first[0]) as im:
        assert im.info["dpi"] == pytest.approx((300, 300), abs=0.01)
    assert first[1].read_bytes().lstrip().startswith(b"<?xml") and b"<svg" in first[1].read_bytes()
    assert first[2].read_bytes().startswith(b"%PDF")
    assert b"CreationDate" not in first[2].read_bytes()
    # same figure again, and a freshly drawn identical figure: identical bytes
    second = save_figure(fig, tmp_path / "b" / "fig-sample")
    third = save_figure(_draw_sample(), tmp_path / "c" / "fig-sample")
    assert _digests(first) == _digests(second) == _digests(third)
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["fig-sample.pdf", "fig-sample.png", "fig-sample.svg"]


def test_save_figure_is_reproducible_across_processes(tmp_path):
    here = save_figure(_draw_sample(), tmp_path / "here" / "fig")
    script = textwrap.dedent(
        f"""
        import sys; sys.path.insert(0, {str(Path(__file__).parent)!r})
        import matplotlib; matplotlib.use("Agg")
        from test_figures import _draw_sample
        from cementleak_stats.figures import save_figure
        save_figure(_draw_sample(), {str(tmp_path / "there" / "fig")!r})
        """
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=120)
    there = sorted((tmp_path / "there").iterdir())
    assert _digests(here) == _digests(there)


def test_save_figure_failure_keeps_previous_file(tmp_path, monkeypatch):
    fig = _draw_sample()
    (png,) = save_figure(fig, tmp_path / "fig", formats=("png",))
    old = png.read_bytes()

    def broken(fh, **_kw):
        fh.write(b"partial")
        raise RuntimeError("disk full")

    monkeypatch.setattr(fig, "savefig", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        save_figure(fig, tmp_path / "fig", formats=("png",))
    assert png.read_bytes() == old
    assert [p.name for p in tmp_path.iterdir()] == ["fig.png"]  # no temporary file left


def test_save_figure_rejects_unknown_format(tmp_path):
    with pytest.raises(ValueError, match="unsupported format"):
        save_figure(_draw_sample(), tmp_path / "fig", formats=("jpg",))


# ---------------------------------------------------------------- readable in every corner (issue 13)
def test_risk_ticks_cover_the_cohort_and_stay_on_the_axis():
    rng = np.random.default_rng(3)
    predicted = rng.beta(0.6, 4.0, 300)
    spread = np.quantile(predicted, [0.0, 0.05, 0.95, 1.0])  # as the analysis stores it (riskgroups.risk_spread)
    ticks = risk_ticks(spread)
    p5, p95 = spread[1:3]
    assert ticks == sorted(ticks) and ticks[0] <= p5 and ticks[-1] >= p95
    assert set(ticks) <= {0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9,
                          0.95, 0.98, 0.99, 0.995, 0.998, 0.999}
    assert all(predicted.min() <= t <= predicted.max() for t in ticks[1:-1])  # clipped to the cohort
    assert min(risk_ticks(spread, reach=(0.02, 0.6))) >= 0.02 and max(risk_ticks(spread, reach=(0.02, 0.6))) <= 0.6


def test_nomogram_crowded_levels_long_labels_and_crowded_axes_never_collide():
    rows = [("Stage", lv, p) for lv, p in zip(["I", "II", "III", "IV"], [0.0, 1.5, 3.0, 4.0])]  # four close levels
    rows += [("Kind", lv, p) for lv, p in zip(["Intradiscal/endplate (asymptomatic)", "Pulmonary cement embolism",
                                               "None"], [0.0, 2.0, 100.0])]  # long labels at both ends
    rows += [("Albumin (g/dl)", v, p) for v, p in zip(np.round(np.arange(2.0, 5.01, 0.1), 1), np.linspace(60, 38, 31))]
    points = pd.DataFrame(rows, columns=["predictor", "value", "points"])
    ticks = risk_ticks(np.quantile(np.linspace(0.002, 0.999, 50), [0.0, 0.05, 0.95, 1.0]))
    total = pd.DataFrame({"risk": ticks, "total_points": np.linspace(10, 190, len(ticks))})
    ax = plot_nomogram(points, total, risk_label="Risk of the event by 12 months")
    fig = ax.figure
    assert text_overlaps(fig) == [] and texts_outside(fig) == []
    labels = [t.get_text() for t in _gid(ax, "nomogram-value")]
    for level in ("I", "II", "III", "IV", "Intradiscal/endplate (asymptomatic)", "Pulmonary cement embolism", "None"):
        assert level in labels
    assert "0.002" in labels and "0.999" in labels and "0.5" in labels  # the ends and the middle of the risk axis


def test_decision_curve_marks_where_a_curve_leaves_the_axes(dca_frame):
    ax = plot_decision_curve(dca_frame)
    assert _gid(ax, "clip-mark") and lines_leaving_axes(ax.figure) == [] and legends_over_lines(ax.figure) == []
    t = dca_frame["threshold"].to_numpy()
    avoided = np.where(t < 0.05, -1000.0, 60 * t / t.max())  # the magnified noise at thresholds near 0
    ax = plot_interventions_avoided(pd.DataFrame({"threshold": t, "interventions_avoided": avoided}), label="Model")
    assert -40 < ax.get_ylim()[0] < 0 and ax.get_ylim()[1] >= 60
    assert _gid(ax, "clip-mark") and lines_leaving_axes(ax.figure) == []
    ax = plot_interventions_avoided(pd.DataFrame({"threshold": t, "interventions_avoided": np.where(t < 0.05, -20.0, 60.0)}))
    assert ax.get_ylim()[0] < -20 and not _gid(ax, "clip-mark")  # moderate values: limits from the data


def test_schoenfeld_axis_in_time_at_transformed_positions(zph_frames):
    frame, tests = zph_frames
    frame = frame.assign(time=lambda f: 24 * f["transformed_time"] ** 2)  # a monotone transform of time
    fig = plot_schoenfeld(frame, tests, xlabel="Time (months)")
    ax = fig.axes[-1]
    shown = [float(t.get_text()) for t in ax.get_xticklabels() if t.get_text()]
    np.testing.assert_allclose(ax.get_xticks(), np.sqrt(np.array(shown) / 24), atol=0.02)
    assert len(shown) >= 3 and text_overlaps(fig) == []


def test_trajectory_legend_is_off_the_lines(long_frame):
    part = long_frame[long_frame["measure"] == "Score A (0-10)"]
    ax = plot_trajectories(part, measure_label="Score A (0-10)", centres=_centres(part))
    assert legends_over_lines(ax.figure) == [] and text_overlaps(ax.figure) == []
    fig = plot_outcome_panels(long_frame, centres=_centres(long_frame))
    assert text_overlaps(fig) == [] and texts_outside(fig) == [] and len(fig.legends) == 1


def test_forest_text_is_nine_points_and_inside_the_figure(forest_frame):
    frame = forest_frame.assign(label=["A label long enough to need a second line in the forest plot", *forest_frame["label"][1:]])
    ax = plot_forest(frame)
    fig = ax.figure
    texts = [t for t in fig.findobj(Text) if t.get_text()]
    assert min(t.get_fontsize() for t in texts) >= 9.0
    assert text_overlaps(fig) == [] and texts_outside(fig) == []
    assert fig.get_figwidth() == pytest.approx(PAGE_WIDTH)


def test_the_figure_checks_catch_what_they_look_for():
    """The checks used on every report figure do fail on a figure with each defect."""
    from figure_checks import figure_problems

    fig, ax = plt.subplots(figsize=(3, 2))
    ax.text(0.5, 0.5, "overlapping label")
    ax.text(0.52, 0.5, "overlapping label")
    ax.text(1.8, 0.5, "beyond the figure", transform=ax.transAxes)
    ax.plot([0, 1], [0, 3], gid="a-line")
    ax.set_ylim(0, 1)
    ax.plot([0, 1], [0.9, 0.9], label="under the legend")
    ax.legend(loc="upper left")
    found = figure_problems(fig)
    assert set(found) == {"texts overlap", "texts outside the figure", "lines leave the axes without a mark",
                          "legends cover data lines"}
    ax.plot([1 / 3], [1.0], "^", gid="clip-mark", clip_on=False)  # a mark where the line leaves: accepted
    assert "lines leave the axes without a mark" not in figure_problems(fig)
