"""Figures: draw tidy result frames in one journal theme (Okabe-Ito colours, 85/170 mm widths).

Every ``plot_*`` function draws from DataFrames with documented columns and computes nothing
beyond reshaping; labels, units and level names come from the frames or the caller.  Each
returns the Axes (or, for multi-panel figures, the Figure) and never calls ``plt.show``.
``save_figure`` writes PNG/SVG/PDF atomically and byte-reproducibly.
"""

from .calibration import plot_calibration, plot_risk_distribution
from .decision import plot_decision_curve, plot_interventions_avoided
from .forest import plot_forest
from .nomogram import plot_nomogram, risk_ticks
from .outcomes import plot_outcome_panels, plot_trajectories
from .save import save_figure
from .survival import plot_km, plot_schoenfeld
from .theme import COLUMN_WIDTH, OKABE_ITO, PAGE_WIDTH, PALETTE, figure_theme

__all__ = [
    "COLUMN_WIDTH",
    "OKABE_ITO",
    "PAGE_WIDTH",
    "PALETTE",
    "figure_theme",
    "plot_calibration",
    "plot_decision_curve",
    "plot_forest",
    "plot_interventions_avoided",
    "plot_km",
    "plot_nomogram",
    "plot_outcome_panels",
    "plot_risk_distribution",
    "plot_schoenfeld",
    "plot_trajectories",
    "risk_ticks",
    "save_figure",
]
