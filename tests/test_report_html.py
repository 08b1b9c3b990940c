"""The HTML page of `xmas report --html`: self-contained (Chart.js inlined, nothing fetched), every user text escaped,
the numbers in plain tables, and (in headless Chromium, when it is installed) the three charts really drawn."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from xmas_cli.report import html as report_html
from xmas_cli.report.html import CHART_JS_VERSION, rate, render_html

ASSETS = Path(report_html.__file__).parent / "assets"
HOSTILE = "</script><script>alert(1)</script>"
HOSTILE_SUBJECT = '<img src=x onerror="alert(2)"> & <!--'


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
            {"stage": "lead-nurture", "label": "Enrolled in lead nurture", "contacts": 100, "conversion": None},
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


def library() -> str:
    return report_html._chart_js()


def data_block(page: str) -> dict[str, Any]:
    m = re.search(r'<script type="application/json" id="report-data">(.*?)</script>', page, re.DOTALL)
    assert m, "no data block"
    loaded: dict[str, Any] = json.loads(m[1])
    return loaded


def test_rates_divide_by_delivered_then_sent_and_are_none_when_nothing_was_sent() -> None:
    assert rate(5, 9, 10) == pytest.approx(5 / 9)
    assert rate(45, 0, 100) == pytest.approx(0.45)  # nothing recorded as delivered: of those sent
    assert rate(3, None, 10) == pytest.approx(0.3)
    assert rate(0, 0, 0) is None and rate(None, None, None) is None and rate(2, "x", "y") is None


def test_the_page_fetches_nothing_no_cdn_no_font_no_stylesheet() -> None:
    page = render_html(sample())
    assert library() in page
    rest = page.replace(library(), "")  # the page without the library: no tag loads anything
    assert not re.search(r"<(?:link|img|iframe|object|embed|base)\b", rest, re.IGNORECASE)
    assert not re.search(r"<[a-z][^>]*\b(?:src|href|srcset|action)\s*=", rest, re.IGNORECASE)
    assert not re.search(r"@import|@font-face|url\(", rest, re.IGNORECASE)
    # Not one address outside the library; inside it, only in its /*! licence */ headers (chartjs.org, @kurkle/color).
    assert "http://" not in rest and "https://" not in rest
    code = re.sub(r"/\*!.*?\*/", "", library(), flags=re.DOTALL)
    assert "http://" not in code and "https://" not in code and "sourceMappingURL" not in code
    # And the browser is told to load nothing at all, and to run only the page's own two scripts.
    csp = re.search(r'<meta http-equiv="Content-Security-Policy" content="([^"]+)">', page)
    assert csp and "default-src &#x27;none&#x27;" in csp[1]
    assert len(re.findall(r"sha256-", csp[1])) == 3  # the library, the page's script, the style


def test_the_chart_library_is_inlined_whole_with_its_licence_and_version() -> None:
    page = render_html(sample())
    vendored = (ASSETS / "chart.umd.min.js").read_text(encoding="utf-8")
    assert (
        vendored.startswith(f"/*!\n * Chart.js v{CHART_JS_VERSION}\n") and "Released under the MIT License" in vendored
    )
    assert library().strip() == re.sub(r"//# sourceMappingURL=\S+\s*$", "", vendored).strip()
    assert f"<script>{library()}</script>" in page and len(library()) > 150_000
    assert "Permission is hereby granted" in (ASSETS / "LICENSE.chart.js.txt").read_text(encoding="utf-8")
    assert f"Chart.js {CHART_JS_VERSION}" in (ASSETS / "README.md").read_text(encoding="utf-8")


def test_hostile_names_and_subjects_are_escaped_in_tables_and_in_the_script_data() -> None:
    doc = sample()
    doc["campaign"] = HOSTILE
    doc["sequences"][0]["sequence"] = HOSTILE_SUBJECT
    doc["funnel"][1]["label"] = HOSTILE
    doc["per_day"][0]["day"] = HOSTILE
    page = render_html(doc)
    assert HOSTILE not in page and HOSTILE_SUBJECT not in page and "alert(1)</script>" not in page
    # Exactly the page's own three <script> elements: the data, the library, the drawing code.
    assert len(re.findall(r"<script\b", page, re.IGNORECASE)) == 3
    assert len(re.findall(r"</script", page, re.IGNORECASE)) == 3
    assert page.count("<!--") == 0
    escaped = "&lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt;"
    assert f"<title>Campaign report: {escaped}</title>" in page
    assert "&lt;img src=x onerror=&quot;alert(2)&quot;&gt; &amp; &lt;!--" in page
    # The data still reaches the script as it was: escaped, not altered.
    data = data_block(page)
    assert data["funnel"]["labels"][1] == HOSTILE and data["days"]["labels"][-1] == HOSTILE
    assert data["rates"]["labels"][1] == [f"{HOSTILE_SUBJECT} #2", HOSTILE]
    cells = [cell for table in tables(page) for row in table["rows"] for cell in row]
    assert HOSTILE in cells and HOSTILE_SUBJECT in cells  # shown to the reader as text


def test_the_tables_show_the_numbers_and_the_rates() -> None:
    page = render_html(sample())
    assert "<h1>Campaign report: xmas-christmas-2026</h1>" in page
    assert "From 2026-12-01 00:00 UTC to 2026-12-20 10:00 UTC" in page
    funnel, steps, variants, days = tables(page)
    assert funnel["rows"][0] == ["Stage", "Key", "Contacts", "Of the stage before", "Median time from the stage before"]
    assert funnel["rows"][1:] == [
        ["Enrolled in lead nurture", "lead-nurture", "100", "—", "—"],
        ["Took the assessment", "assessment", "40", "40.0%", "30.5 h"],
        ["Booked a call", "booked", "12", "30.0%", "50.0 h"],
        ["Paid", "paid", "3", "25.0%", "72.0 h"],
    ]
    assert steps["rows"][0][-2:] == ["Open rate", "Click rate"]
    assert steps["rows"][1:] == [
        ["assessment", "1", "christmas_email_1", "40", "38", "22", "9", "2", "0", "1", "57.9%", "23.7%"],
        ["assessment", "2", HOSTILE, "10", "9", "5", "2", "1", "0", "0", "55.6%", "22.2%"],
        ["assessment", "3", "christmas_email_3", "0", "0", "0", "0", "0", "0", "0", "—", "—"],  # no rate, no error
        ["lead-nurture", "1", "nurture_1", "1,200", "0", "540", "144", "0", "0", "0", "45.0%", "12.0%"],
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
    # The same numbers go to the charts.
    data = data_block(page)
    assert data["funnel"]["contacts"] == [100, 40, 12, 3]
    assert data["rates"]["open"] == [57.9, 55.6, None, 45.0] and data["rates"]["click"] == [23.7, 22.2, None, 12.0]
    assert data["days"] == {
        "labels": ["2026-12-01", "2026-12-02", "2026-12-03"],
        **{
            k: [sample_day[k] for sample_day in sorted(sample()["per_day"], key=lambda d: d["day"])]
            for k in ("sent", "opened", "clicked")
        },
    }
    assert page.count("<canvas") == 3


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
        assert "<canvas" not in page and "<table" not in page
        assert "No funnel stages" in page and "No steps" in page and "Nothing was sent" in page
        assert data_block(page)["rates"] == {"labels": [], "open": [], "click": []}
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
    assert steps["rows"][1] == ["s", "1", "", "0", "0", "0", "0", "0", "0", "0", "—", "—"]
    assert days["rows"][1] == ["2026-12-01", "0", "0", "0"]
    assert data_block(page)["funnel"]["contacts"] == [0]


# --- In a real browser: the charts are drawn, offline, from file:// ------------------------------------------------

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="no chromium binary on PATH (Debian: apt-get install -y chromium)"
)

# Stand-ins for the library, to prove the check fails when nothing is drawn.
NO_CHART = "/* Chart.js left out */"
CHART_THAT_DRAWS_NOTHING = """
window.Chart = function (canvas, config) { this.canvas = canvas; this.data = config.data;
  this.chartArea = {left: 0, top: 0, right: canvas.width, bottom: canvas.height}; Chart.all.push(this); };
Chart.all = []; Chart.defaults = {font: {}};
Chart.getChart = function (canvas) { return Chart.all.filter(function (c) { return c.canvas === canvas; })[0]; };
"""
# Paints every canvas grey and claims bars in the middle: ink, but not the bars' colours.
CHART_THAT_DRAWS_GREY = (
    CHART_THAT_DRAWS_NOTHING
    + """
Chart.prototype.getDatasetMeta = function () { var w = this.canvas.width, h = this.canvas.height;
  var bar = {x: w / 2, y: h / 4, base: 3 * h / 4, width: 20, horizontal: false,
             getCenterPoint: function () { return {x: w / 2, y: h / 2}; }};
  return {data: this.data.datasets[0].data.map(function () { return bar; })}; };
var Real = window.Chart;
window.Chart = function (canvas, config) { Real.call(this, canvas, config);
  var ctx = canvas.getContext("2d"); ctx.fillStyle = "#888888"; ctx.fillRect(0, 0, canvas.width, canvas.height); };
window.Chart.prototype = Real.prototype; Object.assign(window.Chart, Real);
"""
)


def chromium_body(page: str, tmp_path: Path) -> dict[str, str]:
    """Open the page from file:// in headless Chromium, with every host name unresolvable, and return the
    attributes of <body> once its script has run."""
    assert CHROMIUM is not None
    path = tmp_path / "report.html"
    path.write_text(page, encoding="utf-8")
    command = [
        CHROMIUM,
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-extensions",
        "--disable-background-networking",
        "--host-resolver-rules=MAP * ~NOTFOUND",  # offline: no CDN could answer even if the page asked one
        f"--user-data-dir={tmp_path / 'profile'}",
        "--virtual-time-budget=5000",
        "--dump-dom",
        path.as_uri(),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    dom = done.stdout
    assert "<script>alert(" not in dom  # nothing hostile turned into an element
    body = re.search(r"<body([^>]*)>", dom)
    assert body, dom[:2000]
    return dict(re.findall(r'([\w-]+)="([^"]*)"', body[1]))


@needs_chromium
def test_chromium_draws_the_three_charts_from_file_offline(tmp_path: Path) -> None:
    doc = sample()
    doc["campaign"] = HOSTILE
    doc["sequences"][0]["steps"][1]["variants"][1]["subject"] = HOSTILE_SUBJECT
    body = chromium_body(render_html(doc), tmp_path)
    assert body.get("data-charts-error") is None, body
    assert body.get("data-charts-expected") == "3" and body.get("data-charts") == "3", body


@needs_chromium
@pytest.mark.parametrize(
    "stand_in", [NO_CHART, CHART_THAT_DRAWS_NOTHING, CHART_THAT_DRAWS_GREY], ids=["no-library", "blank", "grey"]
)
def test_chromium_check_counts_no_chart_when_nothing_is_really_drawn(
    stand_in: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(report_html, "_chart_js", lambda: stand_in)
    body = chromium_body(render_html(sample()), tmp_path)
    assert body.get("data-charts-expected") == "3" and body.get("data-charts") == "0", body
    assert body.get("data-charts-error"), body
