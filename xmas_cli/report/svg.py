"""The report page's three charts, drawn here as inline SVG: no script, so the page prints, stays small, and a test
reads every bar's size and value from the markup (each bar carries `data-value`).

Pure: numbers in, markup out. Every text is escaped; the drawings scale to the page's width (viewBox).
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

WIDTH = 960
FUNNEL = ("#1b5e20", "#2e7d32", "#43a047", "#66bb6a", "#81c784", "#a5d6a7")
COLOURS = {
    "open": "#2e7d32",
    "click": "#c62828",
    "sent": "#1565c0",
    "opened": "#2e7d32",
    "clicked": "#c62828",
}
FONT = 'font-family="system-ui, sans-serif" fill="#1f2328"'


def esc(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _svg(height: float, label: str, body: list[str]) -> str:
    return (
        f'<svg viewBox="0 0 {WIDTH} {height:.0f}" role="img" '
        f'aria-label="{esc(label)}" class="chart"><title>{esc(label)}</title>{"".join(body)}</svg>'
    )


def _bar(series: str, value: float, x: float, y: float, w: float, h: float, fill: str, tip: str) -> str:
    return (
        f'<rect data-series="{series}" data-value="{value:g}" x="{x:.1f}" y="{y:.1f}" width="{max(w, 0):.1f}" '
        f'height="{h:.1f}" fill="{fill}"><title>{esc(tip)}</title></rect>'
    )


def _text(x: float, y: float, text: str, anchor: str = "start", size: int = 14, extra: str = "") -> str:
    return f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" font-size="{size}" {FONT}{extra}>{esc(text)}</text>'


def funnel_chart(stages: Sequence[tuple[str, int, float | None]]) -> str:
    """(label, contacts, share of the stage before) per stage: bars centred, as wide as their contacts."""
    row, left, span = 48, 330, WIDTH - 340
    widest = max((n for _, n, _ in stages), default=0) or 1
    body = []
    for i, (label, n, share) in enumerate(stages):
        y, w = i * row + 4, span * n / widest
        tip = f"{label}: {n:,}" + ("" if share is None else f" ({share * 100:.1f}% of the stage before)")
        body.append(_bar("contacts", n, left + (span - w) / 2, y, w, row - 10, FUNNEL[min(i, len(FUNNEL) - 1)], tip))
        body.append(_text(0, y + 16, label))
        body.append(
            _text(0, y + 33, f"{n:,}" + ("" if share is None else f" · {share * 100:.1f}%"), extra=' opacity="0.75"')
        )
    return _svg(len(stages) * row, "Funnel: contacts of the cohort at each stage", body)


def rates_chart(steps: Sequence[tuple[str, float | None, float | None]]) -> str:
    """(step, open rate, click rate) per step: horizontal bars on a scale of 0 to 100 %."""
    row, left, span, top = 40, 300, WIDTH - 380, 24
    body = [
        f'<rect x="{left}" y="2" width="12" height="12" fill="{COLOURS["open"]}"/>',
        _text(left + 18, 13, "open rate"),
        f'<rect x="{left + 120}" y="2" width="12" height="12" fill="{COLOURS["click"]}"/>',
        _text(left + 138, 13, "click rate"),
    ]
    for tick in (0, 50, 100):
        x = left + span * tick / 100
        body.append(f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{top + row * len(steps)}" stroke="#d0d7de"/>')
        body.append(_text(x, top + row * len(steps) + 16, f"{tick}%", "middle"))
    for i, (label, opened, clicked) in enumerate(steps):
        y = top + i * row + 4
        body.append(_text(0, y + 20, label))
        for j, (series, value) in enumerate((("open", opened), ("click", clicked))):
            yy = y + j * 16
            if value is None:
                body.append(_text(left + 4, yy + 12, "—", size=12))
                continue
            pct = value * 100
            body.append(
                _bar(series, round(pct, 1), left, yy, span * min(value, 1.0), 14, COLOURS[series], f"{pct:.1f}%")
            )
            body.append(_text(left + span * min(value, 1.0) + 6, yy + 12, f"{pct:.1f}%", size=12))
    return _svg(top + row * len(steps) + 22, "Open and click rate of each step", body)


def days_chart(days: Sequence[tuple[str, int, int, int]]) -> str:
    """(day, sent, opened, clicked) per day: three bars a day, on a scale of the most sent in a day."""
    left, top, plot_h, span = 56, 24, 200, WIDTH - 66
    most = max((max(s, o, c) for _, s, o, c in days), default=0) or 1
    group = span / max(len(days), 1)
    bar = max(group / 4, 1.0)
    body = []
    for k, series in enumerate(("sent", "opened", "clicked")):
        body.append(f'<rect x="{left + k * 100}" y="2" width="12" height="12" fill="{COLOURS[series]}"/>')
        body.append(_text(left + k * 100 + 18, 13, series))
    base = top + plot_h
    body.append(f'<line x1="{left}" y1="{base}" x2="{WIDTH}" y2="{base}" stroke="#59636e"/>')
    body.append(_text(left - 6, top + 10, f"{most:,}", "end"))
    body.append(_text(left - 6, base, "0", "end"))
    for i, (day, *values) in enumerate(days):
        x = left + i * group + (group - 3 * bar) / 2
        for k, (series, n) in enumerate(zip(("sent", "opened", "clicked"), values, strict=True)):
            h = plot_h * n / most
            body.append(_bar(series, n, x + k * bar, base - h, bar, h, COLOURS[series], f"{day}: {n:,} {series}"))
    marks = sorted({0, len(days) // 2, len(days) - 1}) if days else []
    for i in marks:
        body.append(_text(left + (i + 0.5) * group, base + 18, days[i][0], "middle"))
    return _svg(base + 26, "Emails sent, opened and clicked per day", body)
