"""How the package prints a number: the one place that turns numbers into text.

Tables keep numbers until the last step and call these functions there (tableone's
``formatting.format_pvalues``, pingouin's ``_postprocess_dataframe``).  Numbers only: the words
around them ("P =", "95% CI", "to") are the reporting layer's, in the report's language
(:func:`cementleak_stats.presentation.fmt_p`, :func:`~cementleak_stats.presentation.fmt_ci`).

Conventions: a negative number has a true minus sign (U+2212), a missing value an en dash in
prose and tables (blank for a P value), a P value three decimals with ``<0.001`` below.
"""

from __future__ import annotations

import math
from numbers import Real

import numpy as np

#: the minus sign of typeset numbers (not the hyphen-minus of ``str(-1.0)``)
MINUS = "−"
#: a missing number in a table or in prose
MISSING = "–"
#: Risks below this (or above 1 minus this) are shown as "< 0.1%" ("> 99.9%"): one decimal of a
#: percentage cannot tell them from 0 or 1.
RISK_FLOOR = 0.001

__all__ = ["MINUS", "MISSING", "RISK_FLOOR", "fmt_num", "fmt_g", "fmt_pct", "format_exact", "format_g", "format_p",
           "format_p_sci", "format_per", "format_risk", "format_value"]


def _finite(x: object) -> bool:
    return isinstance(x, (Real, np.number)) and not isinstance(x, bool) and math.isfinite(float(x))  # type: ignore[arg-type]


def fmt_num(x: float | None, digits: int = 2) -> str:
    """A number with fixed decimals: ``0.84``, ``−1.20``; an en dash when missing; ``∞``, ``−∞``."""
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return MISSING if x is None or math.isnan(x) else ("∞" if x > 0 else MINUS + "∞")
    return f"{x:.{digits}f}".replace("-", MINUS)


def fmt_g(x: object) -> str:
    """Whole numbers without decimals (sample sizes), others with 3 significant digits; other objects as ``str``."""
    if isinstance(x, (int, float, np.integer, np.floating)) and math.isfinite(float(x)):
        return f"{int(round(float(x)))}" if float(x) == round(float(x)) else f"{float(x):.3g}"
    return str(x)


def fmt_pct(x: float, digits: int = 0) -> str:
    """A proportion as a percentage: ``0.123`` -> ``12%``."""
    return f"{100 * x:.{digits}f}%"


def format_g(x: float, *, missing: str = "nan", infinite: str | None = None) -> str:
    """Python's general format (``23.5``, ``120``, ``1e+06``), as error messages and logs print a
    value; ``missing`` for NaN and ``infinite`` (when given) for an infinite value."""
    if isinstance(x, float) and math.isnan(x):
        return missing
    if infinite is not None and isinstance(x, float) and math.isinf(x):
        return infinite
    return f"{x:g}"


def format_p(p: float | None, *, digits: int = 3) -> str:
    """A P value as journals print it: ``0.042``, ``<0.001``; blank when missing."""
    if p is None or not _finite(p):
        return ""
    floor = 10.0**-digits
    return f"<{floor:.{digits}f}" if p < floor else f"{p:.{digits}f}"


def format_p_sci(p: float) -> str:
    """A P value in a diagnostic log, where its size matters: ``1.23e-05``, ``0.0420``."""
    return f"{p:.2e}" if p < 1e-3 else f"{p:.4f}"


def format_value(value: object) -> str:
    """A tick label: strings as given, whole numbers without ``.0``, others with ``:g``; a
    negative number with a true minus sign, as matplotlib's own tick labels."""
    if isinstance(value, str):
        return value
    if isinstance(value, Real) and not isinstance(value, bool):
        v = float(value)
        text = f"{int(round(v))}" if math.isfinite(v) and v == round(v) else f"{v:g}"
        return MINUS + text[1:] if text.startswith("-") else text
    return str(value)


def format_exact(v: object) -> str:
    """A value said back in a message: strings as given, numbers with up to 12 significant digits
    and no exponent or trailing zeros (``0.1``, ``1200``, ``0.000015``)."""
    if isinstance(v, str):
        return v
    return np.format_float_positional(float(f"{float(v):.12g}"), trim="-")


def format_per(per: float) -> str:
    """``10``, ``0.5``, ``10⁻⁶``: how a reporting unit is printed in a label."""
    if 1e-3 <= per < 1e6:
        return np.format_float_positional(per, trim="-")
    k = math.log10(per)
    if abs(k - round(k)) < 1e-9:
        return "10" + str(int(round(k))).translate(str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹"))
    return f"{per:g}"


def format_risk(risk: float) -> str:
    """A risk as the calculator shows it: ``12.3%``, ``< 0.1%``, ``> 99.9%`` (the page's ``fmtRisk``)."""
    if risk < RISK_FLOOR:
        return f"< {100 * RISK_FLOOR:.1f}%"
    if risk > 1 - RISK_FLOOR:
        return f"> {100 * (1 - RISK_FLOOR):.1f}%"
    return f"{100 * risk:.1f}%"
