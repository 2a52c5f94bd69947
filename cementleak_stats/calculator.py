"""The interactive risk calculator embedded in the HTML report: plain JavaScript, no server.

The page's model (:func:`export_model`) is taken from the exported model file (``model.json``,
:mod:`cementleak_stats.model_file`): per predictor its input kind, levels or range, and its
terms with coefficients; plus the nomogram's per-predictor minimum contribution, scale,
intercept and S0(horizon).  The page computes, exactly as
:func:`cementleak_stats.nomogram.predict_risk`:

    contribution_j = sum_t beta_t x_t(value_j)        (uncentred, as the nomogram)
    points_j       = (contribution_j - min_j) * scale
    lp             = intercept + total_points / scale
    risk           = 1 - S0(horizon) ** exp(lp)

and, for a study with several horizons (a risk axis each on the nomogram), the risk by each
horizon h with S0(h) (the model file's ``baseline_survival_at_horizons``), shortest first.

:func:`score_exported` evaluates the same formula in Python on the exported JSON; the tests
compare it with ``predict_risk`` and run the page itself in headless Chromium.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING

from .formatting import RISK_FLOOR
from .i18n import T, active, has, is_cjk, mark
from .model_file import horizon_label

if TYPE_CHECKING:
    from .study import StudyResults


def export_model(r: StudyResults) -> dict:
    """The calculator's model (no patient data in it), taken from the exported model file's data
    (:func:`cementleak_stats.export.model_file`, :func:`cementleak_stats.model_file.page_model`):
    the page scores with the same numbers as ``predict`` and batch scoring."""
    from .export import model_file
    from .model_file import page_model

    return page_model(model_file(r))


def _number(x: object) -> float | None:
    """A finite float, or None (JSON has no NaN: the page would not parse it)."""
    x = float(x)  # type: ignore[arg-type]
    return x if math.isfinite(x) else None


def model_cohorts(r: StudyResults) -> dict:
    """Where the model was developed and where it was tested, as plain data for the calculator's
    footnote and the model file: counts and performance only, no patient data.

    ``development``: label, centre, period, n, events, apparent and bootstrap optimism-corrected
    Harrell's C; ``validation`` (None without a validation cohort): label, kind, n, events and
    C, time-dependent AUC, O/E (Kaplan-Meier) and calibration slope, each ``estimate``,
    ``ci_low``, ``ci_high``, and the ICI; ``horizon`` and ``time_unit`` of every risk.
    """
    s, v = r.spec, r.validation_cohort
    val = r.validation.assign(index=r.validation["index"].str.lower()).set_index("index")
    c = r.concordance.set_index("measure").loc["c_index", "estimate"]
    dev = {"label": T("Development set") if v is not None and v.kind == "split" else T("Development cohort"),
           "centre": s.study.centre, "period": s.study.period, "n": len(r.analysed),
           "events": int(r.analysed[s.outcome.event].sum()), "c_index": _number(c),
           "c_index_corrected": _number(val.loc["c", "corrected"]), "bootstrap_b": s.analysis.bootstrap_b}
    out = {"horizon": float(s.outcome.horizon), "time_unit": s.outcome.time_unit, "development": dev, "validation": None}
    if v is not None:
        def est(frame, measure: str) -> dict:
            row = frame.set_index("measure").loc[measure]
            return {k: _number(row[k]) for k in ("estimate", "ci_low", "ci_high")}

        # the study file's name of the cohort, in the report's language (the same words as v.label in English)
        out["validation"] = {"label": (s.validation.label or T(s.validation.display_label)) if s.validation is not None else v.label, "kind": v.kind, "n": v.n, "events": v.n_events,
                             "c_index": est(v.discrimination, "c_index"), "auc": est(v.discrimination, "auc"),
                             "o_e": est(v.calibration, "o_e_km"), "calibration_slope": est(v.calibration, "calibration_slope"),
                             "ici": _number(v.estimate("ici"))}
    return out


def tested_note(cohorts: Mapping) -> str:
    """The calculator's footnote: where the model was developed and tested (plain text)."""
    d, v = cohorts["development"], cohorts["validation"]
    where = mark(", ").join(x for x in (d["centre"], d["period"]) if x)
    dev = T("Developed in {n} patients ({events} events{where}); bootstrap internal validation (B = {b}): "
            "optimism-corrected C = {c}.", n=d['n'], events=d['events'], where=mark("; ") + where if where else "",
            b=d['bootstrap_b'], c=f"{d['c_index_corrected']:.3f}")
    if v is None:
        return dev + T(" Not tested in another cohort.")

    def ci(e: Mapping, digits: int) -> str:
        if e["ci_low"] is None:
            return f"{e['estimate']:.{digits}f}"
        return T("{est} (95% CI {low} to {high})", est=f"{e['estimate']:.{digits}f}", low=f"{e['ci_low']:.{digits}f}",
                 high=f"{e['ci_high']:.{digits}f}")

    return dev + T(" Tested in {label} ({kind} validation; {n} patients, {events} events): C {c}, observed/expected "
                   "risk {oe}, calibration slope {slope}. Risks by {horizon}.", label=v['label'], kind=T(v['kind']),
                   n=v['n'], events=v['events'], c=ci(v['c_index'], 3), oe=ci(v['o_e'], 2),
                   slope=ci(v['calibration_slope'], 2), horizon=_horizon(cohorts['horizon'], cohorts['time_unit']))


def _horizon(horizon: float, unit: str) -> str:
    """'12 months', '1 year' ('12个月' in Chinese)."""
    key = "{n} " + unit
    return T(key, n=f"{horizon:g}") if active() != "en" and has(key) else horizon_label(horizon, unit)


def score_exported(model: Mapping, patient: Mapping[str, object]) -> dict[str, float]:
    """The calculator's formula in Python (the same arithmetic as the page's JavaScript)."""
    from .model_file import contribution

    total = 0.0
    for p in model["predictors"]:
        total += (contribution(p, patient[p["name"]]) - p["min_contribution"]) * model["scale"]
    lp = model["intercept"] + total / model["scale"]
    return {"total_points": total, "lp": lp, "risk": 1.0 - model["s0"] ** math.exp(lp),
            "risks": [1.0 - h["survival"] ** math.exp(lp) for h in model["horizons"]]}


_JS = r"""
(function () {
  var M = JSON.parse(document.getElementById('cl-model').textContent);
  var RISK_FLOOR = __RISK_FLOOR__;
  var form = document.getElementById('cl-form');
  function enc(p, v) {
    if (p.kind === 'continuous') return [parseFloat(v)];
    if (p.kind === 'binary') return [v === p.terms[0].level ? 1 : 0];
    if (p.kind === 'ordinal' && p.coding === 'score') return [p.levels.indexOf(v)];
    return p.terms.map(function (t) { return v === t.level ? 1 : 0; });
  }
  function score(values) {
    var total = 0, rows = [];
    M.predictors.forEach(function (p) {
      var x = enc(p, values[p.name]), c = 0;
      for (var i = 0; i < x.length; i++) c += p.terms[i].coef * x[i];
      var pts = (c - p.min_contribution) * M.scale;
      total += pts; rows.push([p.label, pts]);
    });
    var lp = M.intercept + total / M.scale;
    var risks = M.horizons.map(function (h) { return 1 - Math.pow(h.survival, Math.exp(lp)); });
    return {rows: rows, total: total, lp: lp, risk: 1 - Math.pow(M.s0, Math.exp(lp)), risks: risks};
  }
  function read() {
    var v = {}, ok = true;
    M.predictors.forEach(function (p) {
      var el = document.getElementById('cl-' + p.name);
      v[p.name] = el.value;
      if (p.kind === 'continuous') {
        var x = parseFloat(el.value);
        var bad = !(isFinite(x) && x >= p.min && x <= p.max);
        el.setAttribute('aria-invalid', bad ? 'true' : 'false');
        if (bad) ok = false;
      }
    });
    return ok ? v : null;
  }
  function fmtRisk(r) {
    if (r < RISK_FLOOR) return '< ' + (100 * RISK_FLOOR).toFixed(1) + '%';
    if (r > 1 - RISK_FLOOR) return '> ' + (100 * (1 - RISK_FLOOR)).toFixed(1) + '%';
    return (100 * r).toFixed(1) + '%';
  }
  function update() {
    var v = read(), out = document.getElementById('cl-result');
    var body = document.getElementById('cl-points'), total = document.getElementById('cl-total');
    var each = document.querySelectorAll('.cl-horizon-risk');
    body.innerHTML = '';
    if (!v) {  // no points, total or risk of earlier values stay on screen
      total.textContent = '';
      each.forEach(function (el) { el.textContent = ''; el.removeAttribute('data-risk'); });
      out.textContent = __INVALID__;
      out.removeAttribute('data-risk');
      out.removeAttribute('data-total');
      return;
    }
    var s = score(v);
    s.rows.forEach(function (r) {
      var tr = document.createElement('tr');
      tr.innerHTML = '<td></td><td class="cl-num"></td>';
      tr.children[0].textContent = r[0]; tr.children[1].textContent = r[1].toFixed(1);
      body.appendChild(tr);
    });
    total.textContent = s.total.toFixed(1);
    out.textContent = fmtRisk(s.risk);
    out.setAttribute('data-risk', s.risk.toPrecision(12));
    out.setAttribute('data-total', s.total.toPrecision(12));
    each.forEach(function (el, i) {
      el.textContent = fmtRisk(s.risks[i]);
      el.setAttribute('data-risk', s.risks[i].toPrecision(12));
    });
  }
  form.addEventListener('input', update);
  window.cementleakScore = function (values) { return score(values); };
  update();
})();
"""

_CSS = """
.cl-calc{border:1px solid #bbb;border-radius:6px;padding:1rem 1.2rem;margin:1rem 0;font-family:system-ui,sans-serif;font-size:.95rem}
.cl-calc label{display:grid;grid-template-columns:16rem 12rem 1fr;gap:.6rem;align-items:center;margin:.25rem 0}
.cl-calc input,.cl-calc select{padding:.2rem .3rem;font:inherit;max-width:12rem}
.cl-calc input[aria-invalid=true]{outline:2px solid #D55E00}
.cl-calc table{margin-top:.6rem;border-collapse:collapse;min-width:20rem}
.cl-calc td,.cl-calc th{padding:.15rem .6rem;border-bottom:1px solid #ddd;text-align:left}
.cl-calc .cl-num{text-align:right;font-variant-numeric:tabular-nums}
.cl-risk{font-size:1.6rem;font-weight:700;color:#0072B2}
.cl-note{color:#555;font-size:.85rem}
"""


def calculator_html(r: StudyResults) -> str:
    """A self-contained HTML fragment (form, model JSON, script): no external resources."""
    model = export_model(r)
    fields = []
    for p in model["predictors"]:
        lab = html.escape(T("{label} ({unit})", label=p["label"], unit=p["unit"]) if p["unit"] else p["label"])
        if p["kind"] == "continuous":
            span = T("{low} to {high}", low=format(p["min"], "g"), high=format(p["max"], "g"))
            fields.append(f'<label>{lab} <input id="cl-{p["name"]}" type="number" step="any" min="{p["min"]:g}" '
                          f'max="{p["max"]:g}" value="{p["default"]:g}"> <span class="cl-note">{html.escape(span)}</span></label>')
        else:
            opts = "".join(f'<option value="{html.escape(lv)}">{html.escape(lab)}</option>'
                           for lv, lab in zip(p["levels"], p["level_labels"]))
            fields.append(f'<label>{lab} <select id="cl-{p["name"]}">{opts}</select></label>')
    data = json.dumps(model, sort_keys=True).replace("</", "<\\/")
    # a JavaScript string literal (single-quoted, as the script writes its others)
    invalid = "'" + T("Enter values within the ranges shown.").replace("\\", "\\\\").replace("'", "\\'").replace("</", "<\\/") + "'"
    synthetic = (f'<p class="cl-note"><strong>{T("Synthetic data:")}</strong>{"" if is_cjk() else " "}'
                 + T("this calculator is fitted to a synthetic cohort and is for demonstration and teaching only.")
                 + '</p>') if model["synthetic"] else ""
    synthetic += f'<p class="cl-note" id="cl-tested">{html.escape(tested_note(model["cohorts"]))}</p>'
    # a study with several horizons (a risk axis each on the nomogram): the risk by each, shortest first
    by_each = "" if len(model["horizons"]) < 2 else (
        f'<p id="cl-horizons">{html.escape(T("Predicted risk by each horizon"))}{mark(": ")}' + (mark("; ")).join(
            f'{html.escape(_horizon(h["horizon"], model["time_unit"]))}{"" if is_cjk() else " "}<strong class="cl-horizon-risk"></strong>'
            for h in model["horizons"]) + "</p>")
    return (
        f'<div class="cl-calc" id="cl-calculator"><style>{_CSS}</style>'
        f'<form id="cl-form" onsubmit="return false">{"".join(fields)}</form>'
        f'<table><thead><tr><th>{T("Predictor")}</th><th class="cl-num">{T("Points")}</th></tr></thead><tbody id="cl-points"></tbody>'
        f'<tfoot><tr><th>{T("Total points")}</th><th class="cl-num" id="cl-total"></th></tr></tfoot></table>'
        f'<p>{html.escape(T("Predicted risk of {event} by {horizon}", event=model["event"].lower(), horizon=_horizon(model["horizon"], model["time_unit"])))}{mark(": ")}'
        f'<span class="cl-risk" id="cl-result"></span></p>{by_each}{synthetic}'
        f'<script type="application/json" id="cl-model">{data}</script>'
        f'<script>{_JS.replace("__RISK_FLOOR__", repr(RISK_FLOOR)).replace("__INVALID__", invalid)}</script></div>'
    )
