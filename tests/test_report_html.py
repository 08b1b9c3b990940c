"""The HTML page of `xmas report --html`: no script at all (charts are inline SVG drawn by the server), nothing
fetched, every user text escaped, the numbers in plain tables and in the charts' bars, the per-step table within a
1280 px screen, rates shown as "—" with the reason when nothing reports deliveries, and a small file readable by its
owner only. Everything here is read from the markup: no browser needed."""

from __future__ import annotations

import json
import re
import stat
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from conftest import Cli

from xmas_cli.report.html import PADDING, PAGE_WIDTH, STEP_COLUMNS, STYLE, rate, render_html

HOSTILE = "</script><script>alert(1)</script>"
HOSTILE_SUBJECT = '<img src=x onerror="alert(2)"> & <!--'
NO_RATES = "no rates: the outbox mailer writes .eml files, and nothing reports their deliveries, opens or clicks"


def sample() -> dict[str, Any]:
    return {
        "version": 1,
        "campaign": "xmas-christmas-2026",
        "generated_at": "2026-12-20T10:00:00Z",
        "since": "2026-12-01T00:00:00Z",
        "sequences": [
            {
                "sequence": "assessment",
                "steps": [
                    {
                        "step": 1,
                        "template": "christmas_email_1",
                        "sent": 40,
                        "delivered": 38,
                        "opened": 22,
                        "clicked": 9,
                        "bounced": 2,
                        "complained": 0,
                        "unsubscribed": 1,
                        "variants": [{"variant": 0, "subject": "Only one subject", "sent": 40, "opened": 22}],
                    },
                    {
                        "step": 2,
                        "template": HOSTILE,
                        "sent": 10,
                        "delivered": 9,
                        "opened": 5,
                        "clicked": 2,
                        "bounced": 1,
                        "complained": 0,
                        "unsubscribed": 0,
                        "variants": [
                            {"variant": 0, "subject": "Fix your {{ WeakestSystem1 }} first", "sent": 5, "opened": 3},
                            {"variant": 1, "subject": HOSTILE_SUBJECT, "sent": 4, "opened": 2, "clicked": 1},
                        ],
                    },
                    {"step": 3, "template": "christmas_email_3", "sent": 0},
                ],
            },
            {
                "sequence": "lead-nurture",
                "steps": [
                    {"step": 1, "template": "nurture_1", "sent": 1200, "delivered": 0, "opened": 540, "clicked": 144}
                ],
            },
        ],
        "funnel": [
            {"stage": "entered", "label": "Entered", "contacts": 100, "conversion": None},
            {
                "stage": "assessment",
                "label": "Took the assessment",
                "contacts": 40,
                "conversion": 0.4,
                "median_hours": 30.5,
            },
            {"stage": "booked", "label": "Booked a call", "contacts": 12, "conversion": 0.3, "median_hours": 50.0},
            {"stage": "paid", "label": "Paid", "contacts": 3, "conversion": 0.25, "median_hours": 72.0},
        ],
        "per_day": [
            {"day": f"2026-12-{d:02d}", "sent": 10 + d, "opened": 5 + d // 2, "clicked": 1 + d // 4} for d in (2, 1, 3)
        ],
    }


class _Tables(HTMLParser):
    """The page's tables as rows of cell texts (unescaped), each table with its caption."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: list[dict[str, Any]] = []
        self._cell: list[str] | None = None
        self._caption: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            self.tables.append({"caption": "", "rows": []})
        elif tag == "tr":
            self.tables[-1]["rows"].append([])
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "caption":
            self._caption = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None:
            self.tables[-1]["rows"][-1].append("".join(self._cell).strip())
            self._cell = None
        elif tag == "caption" and self._caption is not None:
            self.tables[-1]["caption"] = "".join(self._caption)
            self._caption = None

    def handle_data(self, data: str) -> None:
        for part in (self._cell, self._caption):
            if part is not None:
                part.append(data)


def tables(page: str) -> list[dict[str, Any]]:
    parser = _Tables()
    parser.feed(page)
    return parser.tables


def charts(page: str) -> dict[str, ET.Element]:
    """The page's inline SVG charts by their label, parsed as XML (so each is well formed)."""
    found = {}
    for markup in re.findall(r"<svg\b.*?</svg>", page, re.DOTALL):
        svg = ET.fromstring(markup)
        found[svg.attrib["aria-label"]] = svg
    return found


def bars(svg: ET.Element, series: str) -> list[tuple[float, float, float]]:
    """(value, width, height) of each bar of a series, in drawing order."""
    return [
        (float(r.attrib["data-value"]), float(r.attrib["width"]), float(r.attrib["height"]))
        for r in svg.iter("rect")
        if r.attrib.get("data-series") == series
    ]


FUNNEL = "Funnel: contacts of the cohort at each stage"
RATES = "Open and click rate of each step"
DAYS = "Emails sent, opened and clicked per day"


def test_rates_divide_by_delivered_then_sent_and_are_none_when_nothing_was_sent() -> None:
    assert rate(5, 9, 10) == pytest.approx(5 / 9)
    assert rate(45, 0, 100) == pytest.approx(0.45)  # nothing recorded as delivered: of those sent
    assert rate(3, None, 10) == pytest.approx(0.3)
    assert rate(0, 0, 0) is None and rate(None, None, None) is None and rate(2, "x", "y") is None


def test_the_page_has_no_script_and_fetches_nothing() -> None:
    page = render_html(sample())
    assert not re.search(r"<script|javascript:|<[^>]*\son[a-z]+\s*=", page, re.IGNORECASE)  # no handler attribute
    assert not re.search(r"<(?:link|img|iframe|object|embed|base|canvas)\b", page, re.IGNORECASE)
    assert not re.search(r"<[a-z][^>]*\b(?:src|href|srcset|action)\s*=", page, re.IGNORECASE)
    assert not re.search(r"@import|@font-face|url\(", page, re.IGNORECASE)
    assert "http://" not in page and "https://" not in page
    # The browser is told to load and run nothing: no script-src at all, the one style by its hash.
    csp = re.search(r'<meta http-equiv="Content-Security-Policy" content="([^"]+)">', page)
    assert csp and csp[1].startswith("default-src &#x27;none&#x27;; style-src &#x27;sha256-")
    assert "script" not in csp[1] and len(re.findall(r"sha256-", csp[1])) == 1
    assert len(charts(page)) == 3


def test_the_page_stays_small() -> None:
    assert len(render_html(sample()).encode()) < 24_000
    # A season of it: 20 steps, 90 days of sends, every number in the millions.
    big = sample()
    big["sequences"] = [
        {
            "sequence": f"sequence-{n}",
            "steps": [{**step, "sent": 1_234_567} for step in sample()["sequences"][0]["steps"]],
        }
        for n in range(7)
    ]
    big["per_day"] = [
        {"day": f"2026-{m:02d}-{d:02d}", "sent": 99_999, "opened": 50_000, "clicked": 9_999}
        for m in (10, 11, 12)
        for d in range(1, 31)
    ]
    assert len(render_html(big).encode()) < 120_000


def test_hostile_names_and_subjects_are_escaped_in_tables_and_charts() -> None:
    doc = sample()
    doc["campaign"] = HOSTILE
    doc["sequences"][0]["sequence"] = HOSTILE_SUBJECT
    doc["funnel"][1]["label"] = HOSTILE
    doc["per_day"][0]["day"] = HOSTILE
    page = render_html(doc)
    assert HOSTILE not in page and HOSTILE_SUBJECT not in page and "alert(1)</script>" not in page
    assert "<script" not in page and page.count("<!--") == 0
    escaped = "&lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt;"
    assert f"<title>Campaign report: {escaped}</title>" in page
    assert "&lt;img src=x onerror=&quot;alert(2)&quot;&gt; &amp; &lt;!--" in page
    cells = [cell for table in tables(page) for row in table["rows"] for cell in row]
    assert HOSTILE in cells and HOSTILE_SUBJECT + " #1christmas_email_1" in cells  # shown to the reader as text
    # The charts are well-formed XML whose texts are the names as they were.
    drawn = charts(page)
    assert HOSTILE in [t.text for t in drawn[FUNNEL].iter("text")]
    assert f"{HOSTILE_SUBJECT} #2" in [t.text for t in drawn[RATES].iter("text")]


def test_the_tables_show_the_numbers_and_the_rates() -> None:
    page = render_html(sample())
    assert "<h1>Campaign report: xmas-christmas-2026</h1>" in page
    assert "From 2026-12-01 00:00 UTC to 2026-12-20 10:00 UTC" in page
    funnel, steps, variants, days = tables(page)
    assert funnel["rows"] == [
        ["Stage", "Contacts", "Of the stage before", "Median time from it"],
        ["Entered", "100", "—", "—"],
        ["Took the assessment", "40", "40.0%", "30.5 h"],
        ["Booked a call", "12", "30.0%", "50.0 h"],
        ["Paid", "3", "25.0%", "72.0 h"],
    ]
    assert steps["rows"][0] == [name for name, _ in STEP_COLUMNS]
    assert steps["rows"][1:] == [
        ["assessment #1christmas_email_1", "40", "38", "57.9%", "23.7%", "22", "9", "2", "0", "1"],
        [f"assessment #2{HOSTILE}", "10", "9", "55.6%", "22.2%", "5", "2", "1", "0", "0"],
        ["assessment #3christmas_email_3", "0", "0", "—", "—", "0", "0", "0", "0", "0"],  # no rate, no error
        ["lead-nurture #1nurture_1", "1,200", "0", "45.0%", "12.0%", "540", "144", "0", "0", "0"],
    ]
    # Variants only for the step that has more than one, each with its sends and its rates of those sends.
    assert variants["caption"] == f"assessment #2 ({HOSTILE})"
    assert variants["rows"][1:] == [
        ["0", "Fix your {{ WeakestSystem1 }} first", "5", "3", "0", "60.0%", "0.0%"],
        ["1", HOSTILE_SUBJECT, "4", "2", "1", "50.0%", "25.0%"],
    ]
    assert "Only one subject" not in page
    assert days["rows"][1:] == [
        ["2026-12-01", "11", "5", "1"],
        ["2026-12-02", "12", "6", "1"],
        ["2026-12-03", "13", "6", "1"],
    ]


def test_the_charts_draw_the_same_numbers() -> None:
    drawn = charts(render_html(sample()))
    # The funnel: one bar per stage, its value the stage's contacts, as wide as its share of the widest.
    funnel = bars(drawn[FUNNEL], "contacts")
    assert [v for v, _, _ in funnel] == [100, 40, 12, 3]
    widest = funnel[0][1]
    assert [round(w / widest, 3) for _, w, _ in funnel] == [1.0, 0.4, 0.12, 0.03]
    # Open and click rates in % of a scale as wide for every step; a step with nothing sent has no bar.
    opens, clicks = bars(drawn[RATES], "open"), bars(drawn[RATES], "click")
    assert [v for v, _, _ in opens] == [57.9, 55.6, 45.0] and [v for v, _, _ in clicks] == [23.7, 22.2, 12.0]
    full = opens[0][1] / (22 / 38)  # the scale's width: 100 %
    exact = [22 / 38, 5 / 9, 540 / 1200, 9 / 38, 2 / 9, 144 / 1200]
    assert [round(w / full, 6) for _, w, _ in opens + clicks] == pytest.approx(exact, abs=0.0003)
    # Per day: sent, opened and clicked, heights on one scale (the most sent in a day).
    sent, opened = bars(drawn[DAYS], "sent"), bars(drawn[DAYS], "opened")
    assert [v for v, _, _ in sent] == [11, 12, 13] and [v for v, _, _ in opened] == [5, 6, 6]
    tallest = sent[-1][2]
    assert all(abs(h - tallest * v / 13) < 0.2 for v, _, h in sent + opened + bars(drawn[DAYS], "clicked"))


def test_rates_are_a_dash_with_the_reason_when_nothing_reports_deliveries() -> None:
    doc = sample()
    doc["rates_note"] = NO_RATES
    page = render_html(doc)
    _, steps, variants, _ = tables(page)
    assert {tuple(row[3:5]) for row in steps["rows"][1:]} == {("—", "—")}
    assert {tuple(row[5:7]) for row in variants["rows"][1:]} == {("—", "—")}
    assert page.count(NO_RATES) == 1 and f'<p class="note why">— {NO_RATES}.</p>' in page
    assert RATES not in charts(page)  # no chart of rates nobody knows


def test_the_step_table_fits_a_1280_px_screen() -> None:
    """Without a browser: the layout is fixed (the table is as wide as the page, never wider: nothing scrolls
    sideways), the page's width fits 1280 px less a scrollbar, and each column is wide enough for its longest word
    at a generous 9 px a character (digits of a 15 px system font: about 8.3); template names wrap anywhere."""
    assert "overflow-x" not in STYLE and "overflow: auto" not in STYLE and "overflow:auto" not in STYLE
    assert re.search(r"table \{[^}]*width: 100%;[^}]*table-layout: fixed;", STYLE)
    assert "overflow-wrap: anywhere" in STYLE and "svg.chart { display: block; width: 100%" in STYLE
    assert PAGE_WIDTH + 2 * PADDING <= 1280 - 17
    assert sum(w for _, w in STEP_COLUMNS) == pytest.approx(100)
    page = render_html(sample())
    steps = tables(page)[1]
    assert steps["rows"][0][3:5] == ["Open rate", "Click rate"]  # right after the counts they are made of
    for i, (header, share) in enumerate(STEP_COLUMNS):
        width = PAGE_WIDTH * share / 100 - 2 * 8 - 1  # less the cell's padding and border
        words = [header, "1,234,567"] if i else ["lead-nurture #12"]
        assert max(len(w) for word in words for w in word.split()) * 9 <= width, header
    [table] = [t for t in page.split("<table>") if '<th scope="col">Step</th>' in t]
    colgroup = re.match(r"<colgroup>(.*?)</colgroup>", table)
    assert colgroup and re.findall(r'width="([\d.]+)%"', colgroup[1]) == [f"{w:g}" for _, w in STEP_COLUMNS]


def test_an_empty_report_and_missing_or_odd_numbers_render_without_error() -> None:
    for doc in (
        {
            "version": 1,
            "campaign": "empty",
            "generated_at": "2026-12-20T10:00:00Z",
            "since": None,
            "sequences": [],
            "funnel": [],
            "per_day": [],
        },
        {},
    ):
        page = render_html(doc)
        assert "<svg" not in page and "<table" not in page
        assert "No funnel stages" in page and "No steps" in page and "Nothing was sent" in page
    assert "All time, to 2026-12-20 10:00 UTC" in render_html({"generated_at": "2026-12-20T10:00:00Z", "since": None})
    odd = {
        "sequences": [
            {"sequence": "s", "steps": [{"step": 1, "sent": None, "opened": "many", "clicked": float("nan")}, {}]}
        ],
        "funnel": [{"stage": "x", "contacts": True}],
        "per_day": [{"day": "2026-12-01"}],
    }
    page = render_html(odd)
    _, steps, days = tables(page)
    assert steps["rows"][1] == ["s #1", "0", "0", "—", "—", "0", "0", "0", "0", "0"]
    assert days["rows"][1] == ["2026-12-01", "0", "0", "0"]
    assert [v for v, _, _ in bars(charts(page)[FUNNEL], "contacts")] == [0]


# --- Through the command: one line said, a private file written, the demo's funnel drawn -----------------------


def test_report_html_writes_a_private_page_and_says_one_line(xmas: Cli, project: Path) -> None:
    xmas("demo", "--dir", "demo", "--now", "2026-12-01T10:00:00Z")
    config = str(project / "demo" / "campaign.toml")
    done = xmas("report", "--config", config, "--now", "2026-12-31T10:00:00Z", "--html", "report.html")
    assert done.stdout == "xmas report: the HTML page is written to report.html\n"
    path = project / "report.html"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    page = path.read_text(encoding="utf-8")
    doc = xmas.json("report", "--config", config, "--now", "2026-12-31T10:00:00Z")
    assert [row[1] for row in tables(page)[0]["rows"][1:]] == [str(f["contacts"]) for f in doc["funnel"]]
    widths = [w for _, w, _ in bars(charts(page)[FUNNEL], "contacts")]
    assert len(widths) == 4 and widths == sorted(widths, reverse=True) and widths[-1] > 0  # never wider below
    assert "<script" not in page and len(page.encode()) < 40_000
    # A page written before, open to everyone, is made private again; a missing folder is an error naming it.
    path.chmod(0o644)
    xmas("report", "--config", config, "--now", "2026-12-31T10:00:00Z", "--html", "report.html")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    missing = xmas("report", "--config", config, "--html", "nowhere/report.html", code=2)
    assert missing.stderr == (
        "xmas: error: --html: folder nowhere does not exist — create it, or name a file in another\n"
    )
    assert not (project / "nowhere").exists()


def test_with_the_outbox_mailer_rates_are_a_dash_and_say_why(xmas: Cli, project: Path) -> None:
    """The shipped campaign sends through the outbox, which nothing reports on: no 0 % anywhere, and the reason
    once per table in the terminal, once on the page, and in the JSON."""
    for n in range(3):
        payload = {"email": f"lead{n}@example.com", "first_name": f"Lead{n}", "business_name": "Shop"}
        xmas("enroll", "lead-nurture", "--payload", "-", "--now", "2026-12-01T10:00:00Z", input=json.dumps(payload))
    xmas("tick", "--now", "2026-12-01T10:00:00Z")
    doc = xmas.json("report", "--now", "2026-12-02T10:00:00Z")
    assert doc["rates_note"] == NO_RATES
    first = next(s for s in doc["sequences"] if s["sequence"] == "lead-nurture")["steps"][0]
    assert (first["sent"], first["delivered"], first["opened"]) == (3, 0, 0)
    shown = xmas("report", "--now", "2026-12-02T10:00:00Z").stdout
    assert shown.count(f"  opened, clicked: {NO_RATES}\n") == 5, shown  # under each sequence's table
    steps = shown[: shown.index("funnel")]
    assert "%" not in steps and "signup" not in steps  # no rate, and no empty table for a sequence xmas never sends
    [nurture_row] = [line for line in steps.splitlines() if "lead_nurture_email_1" in line]
    cells = [cell.strip() for cell in nurture_row.split("│")[1:-1]]
    assert cells == ["1", "lead_nurture_email_1", "3", "0", "—", "—", "0", "0", "0"]
    xmas("report", "--now", "2026-12-02T10:00:00Z", "--html", "r.html")
    page = (project / "r.html").read_text(encoding="utf-8")
    assert page.count(NO_RATES) == 1 and RATES not in charts(page)
    rows = tables(page)[1]["rows"][1:]
    assert rows[0][:5] == ["lead-nurture #1lead_nurture_email_1", "3", "0", "—", "—"]
    assert {(row[3], row[4]) for row in rows} == {("—", "—")}


def test_the_terminal_report_reads_at_80_columns(xmas: Cli, project: Path) -> None:
    """At 80 columns the step tables drop the template and the bars (plain %), so no cell is cut or folded."""
    from test_first_hour import assert_readable, at_width

    xmas("demo", "--dir", "demo", "--now", "2026-12-01T10:00:00Z")
    args = ("report", "--config", str(project / "demo" / "campaign.toml"), "--now", "2026-12-31T10:00:00Z")
    code, wide = at_width(160, *args)
    assert code == 0 and "lead_nurture_email_1" in wide and "██████······ 50%" in wide
    code, narrow = at_width(80, *args)
    assert code == 0
    assert_readable(narrow, 80)
    assert "lead_nurture_email_1" not in narrow and "█" not in narrow.split("funnel")[0]
    lines = narrow.splitlines()
    first = lines[lines.index("lead-nurture") + 4]
    assert [cell.strip() for cell in first.split("│")[1:-1]] == ["1", "2", "2", "50%", "50%", "0", "0", "1"]


def test_each_broadcast_is_a_line_of_the_step_table_and_a_bar_of_the_rates_chart() -> None:
    """After the sequences' steps, under its own name; the name and template escaped as every text is."""
    doc = sample()
    counts = {"sent": 20, "delivered": 16, "opened": 8, "clicked": 4, "bounced": 1, "complained": 0}
    doc["broadcasts"] = [
        {"broadcast": "spots_left", "template": "spots_left", **counts, "unsubscribed": 2},
        {"broadcast": HOSTILE, "template": HOSTILE_SUBJECT, **dict.fromkeys(counts, 0), "unsubscribed": 0},
    ]
    page = render_html(doc)
    assert HOSTILE not in page and HOSTILE_SUBJECT not in page
    steps = tables(page)[1]
    assert steps["rows"][-2:] == [
        ["broadcast spots_leftspots_left", "20", "16", "50.0%", "25.0%", "8", "4", "1", "0", "2"],
        [f"broadcast {HOSTILE}{HOSTILE_SUBJECT}", "0", "0", "—", "—", "0", "0", "0", "0", "0"],
    ]
    drawn = charts(page)[RATES]
    assert [v for v, _, _ in bars(drawn, "open")] == [57.9, 55.6, 45.0, 50.0]  # nothing sent: no bar
    assert [v for v, _, _ in bars(drawn, "click")] == [23.7, 22.2, 12.0, 25.0]
    assert {"broadcast spots_left", f"broadcast {HOSTILE}"} <= {t.text for t in drawn.iter("text")}
