"""The page `xmas report --html FILE` writes: one self-contained HTML file (no network needed to view it) with the
funnel, the open and click rates of each step and the sends per day, as charts and as plain tables.

Pure: `render_html` takes the report's JSON document (version 1) and returns the page. The charts are drawn by
Chart.js, vendored in `report_assets/` (see its README) and inlined in a <script>. The data reaches the page's script
as JSON in a non-executed <script type="application/json"> with `<`, `>` and `&` escaped; every text in the tables is
HTML-escaped. A Content-Security-Policy lets the page load nothing (`default-src 'none'`) and run only its own two
scripts (by hash), so even a name that slipped through unescaped could not run or fetch anything.

After drawing, the page's script writes `data-charts` on <body>: how many charts it checked as really drawn (each
Chart exists, its canvas has a size, its chart area has ink, and the largest bar of each data set shows that data
set's colour). tests/test_report_html.py reads it from headless Chromium.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import math
import re
from functools import lru_cache
from importlib import resources
from typing import Any

CHART_JS_VERSION = "4.6.1"
CHART_JS_ASSET = "chart.umd.min.js"
DASH = "—"

# Colours of the bars: the page's script checks that these are the pixels it finds in the bars, so #rrggbb only.
COLOURS = {
    "funnel": ["#1b5e20", "#2e7d32", "#43a047", "#66bb6a", "#81c784", "#a5d6a7"],
    "open": "#2e7d32",
    "click": "#c62828",
    "sent": "#1565c0",
    "opened": "#2e7d32",
    "clicked": "#c62828",
}

STYLE = """
:root { color-scheme: light; }
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif; color: #1f2328;
  margin: 0 auto; max-width: 1100px; padding: 24px; }
h1 { font-size: 1.6em; margin: 0 0 4px; }
h2 { font-size: 1.25em; margin: 32px 0 8px; border-bottom: 1px solid #d0d7de; padding-bottom: 4px; }
h3 { font-size: 1.05em; margin: 20px 0 6px; }
.period, .generated, .empty, .note { color: #59636e; margin: 0 0 4px; }
.chart { position: relative; height: 320px; margin: 12px 0 16px; }
.chart.tall { height: 360px; }
.table { overflow-x: auto; }
table { border-collapse: collapse; margin: 8px 0 16px; font-variant-numeric: tabular-nums; }
th, td { border: 1px solid #d0d7de; padding: 4px 10px; text-align: left; vertical-align: top; }
th { background: #f6f8fa; }
td.num, th.num { text-align: right; }
caption { text-align: left; font-weight: 600; padding: 4px 0; }
footer { margin-top: 40px; color: #59636e; font-size: 0.85em; }
@media print { .chart { break-inside: avoid; } }
"""

# The page's own script: reads the data block, draws the charts, then checks each one really was drawn.
SCRIPT = r"""
(function () {
  "use strict";
  var body = document.body;
  var expected = 0;
  var canvases = [];
  body.dataset.charts = "0";
  function fail(message) {
    body.dataset.chartsError = (body.dataset.chartsError ? body.dataset.chartsError + "; " : "") + message;
  }
  var data;
  try {
    data = JSON.parse(document.getElementById("report-data").textContent);
  } catch (e) {
    fail("data: " + e);
    return;
  }
  var colours = data.colours;
  ["funnel-chart", "rates-chart", "days-chart"].forEach(function (id) {
    if (document.getElementById(id)) { expected += 1; }
  });
  body.dataset.chartsExpected = String(expected);
  if (typeof Chart === "undefined") {
    fail("Chart.js is not loaded");
    return;
  }
  Chart.defaults.animation = false;
  Chart.defaults.maintainAspectRatio = false;
  Chart.defaults.font.family = 'system-ui, -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif';
  function pct(value) { return value === null ? "no sends" : value.toFixed(1) + "%"; }
  function make(id, config) {
    var canvas = document.getElementById(id);
    if (!canvas) { return; }
    try {
      new Chart(canvas, config);
      canvases.push(canvas);
    } catch (e) {
      fail(id + ": " + e);
    }
  }

  var funnel = data.funnel;
  if (funnel.contacts.length) {
    var widest = Math.max.apply(null, funnel.contacts.concat([1]));
    make("funnel-chart", {
      type: "bar",
      data: {
        labels: funnel.labels.map(function (label, i) {
          var conversion = funnel.conversion[i];
          return [label, funnel.contacts[i] + (conversion === null ? "" : " (" + conversion.toFixed(1) + "%)")];
        }),
        datasets: [{
          label: "Contacts",
          data: funnel.contacts.map(function (n) { return [-n / 2, n / 2]; }),
          backgroundColor: funnel.contacts.map(function (_, i) {
            return colours.funnel[Math.min(i, colours.funnel.length - 1)];
          }),
          borderSkipped: false,
          categoryPercentage: 0.95,
          barPercentage: 0.95
        }]
      },
      options: {
        indexAxis: "y",
        scales: {
          x: { display: false, min: -widest / 2, max: widest / 2 },
          y: { grid: { display: false } }
        },
        plugins: {
          legend: { display: false },
          tooltip: {
            callbacks: {
              label: function (item) {
                var i = item.dataIndex, conversion = funnel.conversion[i];
                return funnel.contacts[i] + " contacts" +
                  (conversion === null ? "" : " (" + conversion.toFixed(1) + "% of the stage before)");
              }
            }
          }
        }
      }
    });
  }

  var rates = data.rates;
  if (rates.labels.length) {
    make("rates-chart", {
      type: "bar",
      data: {
        labels: rates.labels,
        datasets: [
          { label: "Open rate", data: rates.open, backgroundColor: colours.open },
          { label: "Click rate", data: rates.click, backgroundColor: colours.click }
        ]
      },
      options: {
        scales: {
          y: { beginAtZero: true, suggestedMax: 100, ticks: { callback: function (v) { return v + "%"; } } }
        },
        plugins: {
          tooltip: {
            callbacks: {
              label: function (item) {
                return item.dataset.label + ": " + pct(item.raw === undefined ? null : item.raw);
              }
            }
          }
        }
      }
    });
  }

  var days = data.days;
  if (days.labels.length) {
    make("days-chart", {
      type: "bar",
      data: {
        labels: days.labels,
        datasets: [
          { label: "Sent", data: days.sent, backgroundColor: colours.sent },
          { label: "Opened", data: days.opened, backgroundColor: colours.opened },
          { label: "Clicked", data: days.clicked, backgroundColor: colours.clicked }
        ]
      },
      options: { scales: { y: { beginAtZero: true, ticks: { precision: 0 } } } }
    });
  }

  // Was each chart really drawn? Its Chart exists, its canvas has a size, its chart area is not all transparent,
  // and the centre of the largest bar of each data set (when that bar is big enough to see) has the data set's colour.
  function rgb(colour) {
    var m = /^#([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i.exec(colour || "");
    return m ? [parseInt(m[1], 16), parseInt(m[2], 16), parseInt(m[3], 16)] : null;
  }
  function magnitude(value) {
    if (Array.isArray(value)) { return Math.abs(value[1] - value[0]); }
    return typeof value === "number" ? Math.abs(value) : 0;
  }
  function drawn(canvas) {
    var chart = typeof Chart.getChart === "function" ? Chart.getChart(canvas) : null;
    if (!chart || !chart.chartArea || !canvas.width || !canvas.height) { return false; }
    var ctx = canvas.getContext("2d");
    var r = chart.currentDevicePixelRatio || 1, area = chart.chartArea;
    var x = Math.max(0, Math.floor(area.left * r)), y = Math.max(0, Math.floor(area.top * r));
    var w = Math.min(canvas.width - x, Math.ceil((area.right - area.left) * r));
    var h = Math.min(canvas.height - y, Math.ceil((area.bottom - area.top) * r));
    if (w <= 0 || h <= 0) { return false; }
    var pixels = ctx.getImageData(x, y, w, h).data, ink = false;
    for (var i = 3; i < pixels.length; i += 4) {
      if (pixels[i] !== 0) { ink = true; break; }
    }
    if (!ink) { return false; }
    var sets = chart.data.datasets;
    for (var d = 0; d < sets.length; d++) {
      var values = sets[d].data, best = -1, most = 0;
      for (var k = 0; k < values.length; k++) {
        if (magnitude(values[k]) > most) { most = magnitude(values[k]); best = k; }
      }
      if (best < 0) { continue; }
      var bar = chart.getDatasetMeta(d).data[best];
      if (!bar) { return false; }
      var length = Math.abs((bar.horizontal ? bar.x : bar.y) - bar.base);
      var thickness = bar.horizontal ? bar.height : bar.width;
      if (length < 4 || thickness < 3) { continue; }
      var fill = Array.isArray(sets[d].backgroundColor) ? sets[d].backgroundColor[best] : sets[d].backgroundColor;
      var want = rgb(fill), centre = bar.getCenterPoint();
      var got = ctx.getImageData(Math.floor(centre.x * r), Math.floor(centre.y * r), 1, 1).data;
      if (!want || got[3] !== 255) { return false; }
      for (var c = 0; c < 3; c++) {
        if (Math.abs(got[c] - want[c]) > 2) { return false; }
      }
    }
    return true;
  }
  function check() {
    var count = 0;
    canvases.forEach(function (canvas) {
      var ok = false;
      try { ok = drawn(canvas); } catch (e) { fail(canvas.id + ": " + e); }
      if (ok) { count += 1; } else { fail(canvas.id + " was not drawn"); }
    });
    body.dataset.charts = String(count);
  }
  // Let a resize settle first (the charts are responsive: they redraw when their box changes). A headless browser
  // may not paint a frame before it is done with the page: a plain timer then runs the check all the same, once.
  var checked = false;
  function checkOnce() { if (!checked) { checked = true; check(); } }
  window.requestAnimationFrame(function () { window.setTimeout(checkOnce, 50); });
  window.setTimeout(checkOnce, 250);
})();
"""


@lru_cache(maxsize=1)
def _chart_js() -> str:
    """The vendored Chart.js bundle, ready to inline, without its source-map comment (the page carries no map)."""
    text = (resources.files("xmas_cli.report") / "assets" / CHART_JS_ASSET).read_text(encoding="utf-8")
    text = re.sub(r"\n?//# sourceMappingURL=\S*\s*$", "\n", text)
    if re.search(r"</script|<!--", text, re.IGNORECASE):  # would end or confuse the inline <script>
        raise RuntimeError(f"{CHART_JS_ASSET} cannot be inlined: it contains '</script' or '<!--'")
    return text


def _script_json(value: Any) -> str:
    """JSON safe inside a <script> element: no `<`, `>` or `&` can end it or open a comment."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _csp_hash(source: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(source.encode("utf-8")).digest()).decode("ascii") + "'"


def _esc(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _num(value: Any) -> int | float:
    """A count from the document: a missing, null or non-numeric value is 0."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0
    if isinstance(value, float):
        if not math.isfinite(value):
            return 0
        if value.is_integer():
            return int(value)
    return value


def _opt_num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def _dicts(value: Any) -> list[dict[str, Any]]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def rate(count: Any, delivered: Any, sent: Any) -> float | None:
    """count / delivered, or / sent when nothing is recorded as delivered; None when nothing was sent."""
    base = _num(delivered) or _num(sent)
    return None if base <= 0 else _num(count) / base


def _pct(value: float | None) -> str:
    return DASH if value is None else f"{value * 100:.1f}%"


def _chart_pct(value: float | None) -> float | None:
    return None if value is None else round(value * 100, 1)


def _count(value: Any) -> str:
    n = _num(value)
    return f"{n:,}" if isinstance(n, int) else f"{n:,.1f}"


def _when(value: Any) -> str:
    """2026-12-01T00:00:00Z as 2026-12-01 00:00 UTC; anything else as it is."""
    text = "" if value is None else str(value)
    m = re.fullmatch(r"(\d{4}-\d\d-\d\d)T(\d\d:\d\d)(?::\d\d(?:\.\d+)?)?(?:Z|\+00:00)", text)
    return f"{m[1]} {m[2]} UTC" if m else text


def _table(headers: list[tuple[str, bool]], rows: list[list[tuple[str, bool]]], caption: str = "") -> str:
    """headers and cells are (escaped text, numeric); numeric ones are right-aligned."""
    head = "".join(f'<th scope="col"{" class=num" if num else ""}>{text}</th>' for text, num in headers)
    lines = [
        "<tr>" + "".join(f"<td{' class=num' if num else ''}>{text}</td>" for text, num in row) + "</tr>" for row in rows
    ]
    cap = f"<caption>{caption}</caption>" if caption else ""
    return f'<div class="table"><table>{cap}<thead><tr>{head}</tr></thead><tbody>{"".join(lines)}</tbody></table></div>'


def _chart(canvas_id: str, label: str, tall: bool = False) -> str:
    return (
        f'<div class="chart{" tall" if tall else ""}"><canvas id="{canvas_id}" role="img" aria-label="{_esc(label)}">'
        "This chart needs JavaScript; the table below has the same numbers.</canvas></div>"
    )


def _funnel(report: dict[str, Any], data: dict[str, Any]) -> str:
    stages = _dicts(report.get("funnel"))
    labels, contacts, conversion = [], [], []
    rows = []
    for stage in stages:
        name = stage.get("label") or stage.get("stage") or ""
        conv, hours = _opt_num(stage.get("conversion")), _opt_num(stage.get("median_hours"))
        labels.append(str(name))
        contacts.append(_num(stage.get("contacts")))
        conversion.append(_chart_pct(conv))
        rows.append(
            [
                (_esc(name), False),
                (_esc(stage.get("stage")), False),
                (_count(stage.get("contacts")), True),
                (_pct(conv), True),
                (DASH if hours is None else f"{hours:,.1f} h", True),
            ]
        )
    data["funnel"] = {"labels": labels, "contacts": contacts, "conversion": conversion}
    out = ["<section><h2>Funnel</h2>"]
    if not stages:
        out.append('<p class="empty">No funnel stages in this report.</p></section>')
        return "".join(out)
    out.append(_chart("funnel-chart", "Funnel: contacts at each stage", tall=len(stages) > 6))
    headers = [("Stage", False), ("Key", False), ("Contacts", True), ("Of the stage before", True)]
    headers.append(("Median time from the stage before", True))
    out.append(_table(headers, rows))
    out.append("</section>")
    return "".join(out)


def _steps(report: dict[str, Any], data: dict[str, Any]) -> str:
    labels: list[list[str]] = []
    opens: list[float | None] = []
    clicks: list[float | None] = []
    rows = []
    variant_tables = []
    for sequence in _dicts(report.get("sequences")):
        seq_name = "" if sequence.get("sequence") is None else str(sequence.get("sequence"))
        for step in _dicts(sequence.get("steps")):
            delivered, sent = step.get("delivered"), step.get("sent")
            open_rate = rate(step.get("opened"), delivered, sent)
            click_rate = rate(step.get("clicked"), delivered, sent)
            number = "" if step.get("step") is None else str(step.get("step"))
            template = "" if step.get("template") is None else str(step.get("template"))
            labels.append([f"{seq_name} #{number}", template])
            opens.append(_chart_pct(open_rate))
            clicks.append(_chart_pct(click_rate))
            rows.append(
                [
                    (_esc(seq_name), False),
                    (_esc(number), True),
                    (_esc(template), False),
                    *[
                        (_count(step.get(key)), True)
                        for key in ("sent", "delivered", "opened", "clicked", "bounced", "complained", "unsubscribed")
                    ],
                    (_pct(open_rate), True),
                    (_pct(click_rate), True),
                ]
            )
            variants = _dicts(step.get("variants"))
            if len(variants) > 1:
                vrows = [
                    [
                        (_esc(v.get("variant")), True),
                        (_esc(v.get("subject")), False),
                        (_count(v.get("sent")), True),
                        (_count(v.get("opened")), True),
                        (_count(v.get("clicked")), True),
                        (_pct(rate(v.get("opened"), v.get("delivered"), v.get("sent"))), True),
                        (_pct(rate(v.get("clicked"), v.get("delivered"), v.get("sent"))), True),
                    ]
                    for v in variants
                ]
                vheaders = [("Variant", True), ("Subject", False), ("Sent", True), ("Opened", True)]
                vheaders += [("Clicked", True), ("Open rate", True), ("Click rate", True)]
                caption = f"{_esc(seq_name)} #{_esc(number)} ({_esc(template)})"
                variant_tables.append(_table(vheaders, vrows, caption))
    data["rates"] = {"labels": labels, "open": opens, "click": clicks}
    out = ["<section><h2>Open and click rates per step</h2>"]
    if not rows:
        out.append('<p class="empty">No steps in this report.</p></section>')
        return "".join(out)
    out.append(
        '<p class="note">Rates are of the emails delivered (of those sent when none is recorded as delivered); '
        f"{DASH} where nothing was sent.</p>"
    )
    out.append(_chart("rates-chart", "Open and click rate of each step"))
    headers = [("Sequence", False), ("Step", True), ("Template", False)]
    headers += [(h, True) for h in ("Sent", "Delivered", "Opened", "Clicked", "Bounced", "Complained")]
    headers += [("Unsubscribed", True), ("Open rate", True), ("Click rate", True)]
    out.append(_table(headers, rows))
    if variant_tables:
        out.append("<h3>Subject variants</h3>")
        out.append(
            '<p class="note">Rates of each variant are of the emails sent with that subject '
            "(of those delivered, when the report counts them).</p>"
        )
        out.extend(variant_tables)
    out.append("</section>")
    return "".join(out)


def _days(report: dict[str, Any], data: dict[str, Any]) -> str:
    days = sorted(_dicts(report.get("per_day")), key=lambda d: str(d.get("day") or ""))
    data["days"] = {
        "labels": [str(d.get("day") or "") for d in days],
        "sent": [_num(d.get("sent")) for d in days],
        "opened": [_num(d.get("opened")) for d in days],
        "clicked": [_num(d.get("clicked")) for d in days],
    }
    out = ["<section><h2>Sends per day</h2>"]
    if not days:
        out.append('<p class="empty">Nothing was sent in this period.</p></section>')
        return "".join(out)
    out.append(_chart("days-chart", "Emails sent, opened and clicked per day"))
    rows = [
        [(_esc(d.get("day")), False)] + [(_count(d.get(k)), True) for k in ("sent", "opened", "clicked")] for d in days
    ]
    out.append(_table([("Day", False), ("Sent", True), ("Opened", True), ("Clicked", True)], rows))
    out.append("</section>")
    return "".join(out)


def render_html(report: dict[str, Any]) -> str:
    """The whole page for a report document (version 1). Needs no field; a missing count is 0."""
    campaign = "" if report.get("campaign") is None else str(report.get("campaign"))
    since, generated = report.get("since"), report.get("generated_at")
    if since:
        period = f"From {_esc(_when(since))} to {_esc(_when(generated)) or 'now'}"
    else:
        period = f"All time, to {_esc(_when(generated)) or 'now'}"
    data: dict[str, Any] = {"colours": COLOURS}
    sections = _funnel(report, data) + _steps(report, data) + _days(report, data)
    library, script, style = _chart_js(), SCRIPT, STYLE
    csp = "; ".join(
        [
            "default-src 'none'",
            f"script-src {_csp_hash(library)} {_csp_hash(script)}",
            f"style-src {_csp_hash(style)}",
            "img-src data:",
            "base-uri 'none'",
            "form-action 'none'",
        ]
    )
    title = f"Campaign report: {campaign}" if campaign else "Campaign report"
    return "".join(
        [
            "<!DOCTYPE html>\n",
            '<html lang="en"><head><meta charset="utf-8">\n',
            f'<meta http-equiv="Content-Security-Policy" content="{_esc(csp)}">\n',
            '<meta name="viewport" content="width=device-width, initial-scale=1">\n',
            f"<title>{_esc(title)}</title>\n",
            f"<style>{style}</style>\n",
            "</head><body>\n",
            f"<header><h1>{_esc(title)}</h1>",
            f'<p class="period">{period}</p></header>\n',
            f"<main>{sections}</main>\n",
            f"<footer>Made by xmas report. Charts: Chart.js {CHART_JS_VERSION} (MIT License), inlined.</footer>\n",
            f'<script type="application/json" id="report-data">{_script_json(data)}</script>\n',
            f"<script>{library}</script>\n",
            f"<script>{script}</script>\n",
            "</body></html>\n",
        ]
    )
