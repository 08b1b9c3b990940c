"""The page `xmas report --html FILE` writes: one self-contained HTML file with the funnel, the open and click rates
of each step and the sends per day, each as a chart (inline SVG, drawn here: svg.py) and as a plain table.

Pure: `render_html` takes the report's JSON document (version 1) and returns the page (commands/report.py writes
it, readable by its owner only). The page has no script at all: it prints, stays small, and needs no browser to test.
Every text is HTML-escaped, and a Content-Security-Policy lets the page load and run nothing (`default-src
'none'`, its one style by hash).

The per-step table fits a 1280 px screen without scrolling sideways: a fixed layout of ten columns (the step and
its template share one), the rates right after the counts they are made of, and text that wraps anywhere.
"""

from __future__ import annotations

import base64
import hashlib
import math
import re
from typing import Any

from .svg import days_chart, esc, funnel_chart, rates_chart

DASH = "—"
PAGE_WIDTH = 1200  # px of content, at most: 1280 less a scrollbar and the page's padding still holds it
PADDING = 16
# The per-step table's columns and their shares of the width (%): the step, then nine numbers.
STEP_COLUMNS = (
    ("Step", 22.0),
    ("Sent", 8.5),
    ("Delivered", 9.0),
    ("Open rate", 8.5),
    ("Click rate", 8.5),
    ("Opened", 8.5),
    ("Clicked", 8.5),
    ("Bounced", 8.5),
    ("Compl.", 9.0),
    ("Unsub.", 9.0),
)

STYLE = f"""
:root {{ color-scheme: light; }}
body {{ font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif; color: #1f2328;
  margin: 0 auto; max-width: {PAGE_WIDTH}px; padding: {PADDING}px; }}
h1 {{ font-size: 1.6em; margin: 0 0 4px; }}
h2 {{ font-size: 1.25em; margin: 32px 0 8px; border-bottom: 1px solid #d0d7de; padding-bottom: 4px; }}
h3 {{ font-size: 1.05em; margin: 20px 0 6px; }}
.period, .empty, .note {{ color: #59636e; margin: 0 0 4px; }}
.note.why {{ color: #9a6700; font-weight: 600; }}
svg.chart {{ display: block; width: 100%; height: auto; margin: 12px 0 16px; }}
table {{ border-collapse: collapse; margin: 8px 0 16px; width: 100%; table-layout: fixed;
  font-variant-numeric: tabular-nums; }}
th, td {{ border: 1px solid #d0d7de; padding: 4px 8px; text-align: left; vertical-align: top;
  overflow-wrap: anywhere; }}
th {{ background: #f6f8fa; }}
td.num, th.num {{ text-align: right; }}
td small {{ display: block; color: #59636e; }}
caption {{ text-align: left; font-weight: 600; padding: 4px 0; }}
footer {{ margin-top: 40px; color: #59636e; font-size: 0.85em; }}
@media print {{ body {{ max-width: none; padding: 0; }} svg.chart, table {{ break-inside: avoid; }} }}
"""


def _csp_hash(source: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(source.encode("utf-8")).digest()).decode("ascii") + "'"


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


def _count(value: Any) -> str:
    n = _num(value)
    return f"{n:,}" if isinstance(n, int) else f"{n:,.1f}"


def _when(value: Any) -> str:
    """2026-12-01T00:00:00Z as 2026-12-01 00:00 UTC; anything else as it is."""
    text = "" if value is None else str(value)
    m = re.fullmatch(r"(\d{4}-\d\d-\d\d)T(\d\d:\d\d)(?::\d\d(?:\.\d+)?)?(?:Z|\+00:00)", text)
    return f"{m[1]} {m[2]} UTC" if m else text


def _table(
    headers: list[tuple[str, bool]],
    rows: list[list[tuple[str, bool]]],
    caption: str = "",
    widths: tuple[float, ...] = (),
) -> str:
    """headers and cells are (escaped text, numeric); numeric ones are right-aligned; widths in % of the table."""
    cols = "<colgroup>" + "".join(f'<col width="{w:g}%">' for w in widths) + "</colgroup>" if widths else ""
    head = "".join(f'<th scope="col"{" class=num" if num else ""}>{text}</th>' for text, num in headers)
    lines = [
        "<tr>" + "".join(f"<td{' class=num' if num else ''}>{text}</td>" for text, num in row) + "</tr>" for row in rows
    ]
    cap = f"<caption>{caption}</caption>" if caption else ""
    return f"<table>{cap}{cols}<thead><tr>{head}</tr></thead><tbody>{''.join(lines)}</tbody></table>"


def _funnel(report: dict[str, Any]) -> str:
    stages = _dicts(report.get("funnel"))
    out = ["<section><h2>Funnel</h2>"]
    if not stages:
        out.append('<p class="empty">No funnel stages in this report.</p></section>')
        return "".join(out)
    drawn, rows = [], []
    for stage in stages:
        name = str(stage.get("label") or stage.get("stage") or "")
        conv, hours = _opt_num(stage.get("conversion")), _opt_num(stage.get("median_hours"))
        drawn.append((name, int(_num(stage.get("contacts"))), conv))
        rows.append(
            [
                (esc(name), False),
                (_count(stage.get("contacts")), True),
                (_pct(conv), True),
                (DASH if hours is None else f"{hours:,.1f} h", True),
            ]
        )
    out.append(
        '<p class="note">Of the contacts who entered in this period, how many reached each stage (or a later one: '
        "who paid has booked). Booked a call counts as the emails' bookings count does.</p>"
    )
    out.append(funnel_chart(drawn))
    headers = [("Stage", False), ("Contacts", True), ("Of the stage before", True), ("Median time from it", True)]
    out.append(_table(headers, rows, widths=(40, 20, 20, 20)))
    out.append("</section>")
    return "".join(out)


def _step_cell(sequence: str, number: str, template: str) -> str:
    return f"{esc(sequence)} #{esc(number)}<small>{esc(template)}</small>"


def _counted(line: dict[str, Any], cell: str, why: str) -> tuple[float | None, float | None, list[tuple[str, bool]]]:
    """A step's or a broadcast's open and click rates (None: unknown, or nothing sent), and its row of the table."""
    delivered, sent = line.get("delivered"), line.get("sent")
    opened = None if why else rate(line.get("opened"), delivered, sent)
    clicked = None if why else rate(line.get("clicked"), delivered, sent)
    counts = [(_count(line.get(key)), True) for key in ("opened", "clicked", "bounced", "complained")]
    row = [(cell, False), (_count(sent), True), (_count(delivered), True), (_pct(opened), True), (_pct(clicked), True)]
    return opened, clicked, [*row, *counts, (_count(line.get("unsubscribed")), True)]


def _steps(report: dict[str, Any]) -> str:
    why = str(report.get("rates_note") or "")
    drawn: list[tuple[str, float | None, float | None]] = []
    rows, variant_tables = [], []
    for sequence in _dicts(report.get("sequences")):
        seq_name = "" if sequence.get("sequence") is None else str(sequence.get("sequence"))
        for step in _dicts(sequence.get("steps")):
            number = "" if step.get("step") is None else str(step.get("step"))
            template = "" if step.get("template") is None else str(step.get("template"))
            opened, clicked, row = _counted(step, _step_cell(seq_name, number, template), why)
            drawn.append((f"{seq_name} #{number}", opened, clicked))
            rows.append(row)
            variants = _dicts(step.get("variants"))
            if len(variants) > 1:
                variant_tables.append(_variants(variants, seq_name, number, template, bool(why)))
    for broadcast in _dicts(report.get("broadcasts")):  # each under its own name, after the sequences' steps
        name = f"broadcast {'' if broadcast.get('broadcast') is None else broadcast.get('broadcast')}"
        template = "" if broadcast.get("template") is None else str(broadcast.get("template"))
        opened, clicked, row = _counted(broadcast, f"{esc(name)}<small>{esc(template)}</small>", why)
        drawn.append((name, opened, clicked))
        rows.append(row)
    out = ["<section><h2>Open and click rates per step</h2>"]
    if not rows:
        out.append('<p class="empty">No steps in this report.</p></section>')
        return "".join(out)
    if why:
        out.append(f'<p class="note why">{DASH} {esc(why)}.</p>')
    else:
        out.append(
            '<p class="note">Rates are of the emails delivered (of those sent when none is recorded as delivered); '
            f"{DASH} where nothing was sent.</p>"
        )
        out.append(rates_chart(drawn))
    headers = [(esc(name), i > 0) for i, (name, _) in enumerate(STEP_COLUMNS)]
    out.append(_table(headers, rows, widths=tuple(w for _, w in STEP_COLUMNS)))
    if variant_tables:
        out.append("<h3>Subject variants</h3>")
        out.append('<p class="note">Rates of each variant are of the emails sent with that subject.</p>')
        out.extend(variant_tables)
    out.append("</section>")
    return "".join(out)


def _variants(variants: list[dict[str, Any]], seq_name: str, number: str, template: str, unknown: bool) -> str:
    def pct(key: str, v: dict[str, Any]) -> str:
        return DASH if unknown else _pct(rate(v.get(key), v.get("delivered"), v.get("sent")))

    rows = [
        [
            (esc(v.get("variant")), True),
            (esc(v.get("subject")), False),
            (_count(v.get("sent")), True),
            (_count(v.get("opened")), True),
            (_count(v.get("clicked")), True),
            (pct("opened", v), True),
            (pct("clicked", v), True),
        ]
        for v in variants
    ]
    headers = [("Variant", True), ("Subject", False), ("Sent", True), ("Opened", True)]
    headers += [("Clicked", True), ("Open rate", True), ("Click rate", True)]
    caption = f"{esc(seq_name)} #{esc(number)} ({esc(template)})"
    return _table(headers, rows, caption, widths=(9, 37, 9, 9, 9, 13.5, 13.5))


def _days(report: dict[str, Any]) -> str:
    days = sorted(_dicts(report.get("per_day")), key=lambda d: str(d.get("day") or ""))
    out = ["<section><h2>Sends per day</h2>"]
    if not days:
        out.append('<p class="empty">Nothing was sent in this period.</p></section>')
        return "".join(out)
    keys = ("sent", "opened", "clicked")
    drawn = [(str(d.get("day") or ""), *(int(_num(d.get(k))) for k in keys)) for d in days]
    out.append(days_chart(drawn))  # type: ignore[arg-type]
    rows = [[(esc(d.get("day")), False)] + [(_count(d.get(k)), True) for k in keys] for d in days]
    out.append(_table([("Day", False), ("Sent", True), ("Opened", True), ("Clicked", True)], rows))
    out.append("</section>")
    return "".join(out)


def render_html(report: dict[str, Any]) -> str:
    """The whole page for a report document (version 1). Needs no field; a missing count is 0."""
    campaign = "" if report.get("campaign") is None else str(report.get("campaign"))
    since, generated = report.get("since"), report.get("generated_at")
    if since:
        period = f"From {esc(_when(since))} to {esc(_when(generated)) or 'now'}"
    else:
        period = f"All time, to {esc(_when(generated)) or 'now'}"
    sections = _funnel(report) + _steps(report) + _days(report)
    csp = f"default-src 'none'; style-src {_csp_hash(STYLE)}; base-uri 'none'; form-action 'none'"
    title = f"Campaign report: {campaign}" if campaign else "Campaign report"
    return "".join(
        [
            "<!DOCTYPE html>\n",
            '<html lang="en"><head><meta charset="utf-8">\n',
            f'<meta http-equiv="Content-Security-Policy" content="{esc(csp)}">\n',
            '<meta name="viewport" content="width=device-width, initial-scale=1">\n',
            f"<title>{esc(title)}</title>\n",
            f"<style>{STYLE}</style>\n",
            "</head><body>\n",
            f"<header><h1>{esc(title)}</h1>",
            f'<p class="period">{period}</p></header>\n',
            f"<main>{sections}</main>\n",
            "<footer>Made by xmas report.</footer>\n",
            "</body></html>\n",
        ]
    )
