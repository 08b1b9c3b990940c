"""The pure core: variables, rendering (strict, sandboxed, autoescaped), tokens, campaign and payload validation."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest
from conftest import replace_once

from xmas_cli.config import load_campaign
from xmas_cli.core.model import Template
from xmas_cli.core.payloads import validate_payload
from xmas_cli.core.plaintext import html_to_text
from xmas_cli.core.render import render
from xmas_cli.core.tokens import make_token, read_token, unsubscribe_url
from xmas_cli.core.variables import ALWAYS, OPTIONAL, SAMPLE, Counts, build_variables, classify_segment, tip_for
from xmas_cli.defaults import CAMPAIGN as CAMPAIGN_TOML
from xmas_cli.defaults import TEMPLATES as TEMPLATES_DIR
from xmas_cli.errors import ConfigError, InvalidInput, RenderError
from xmas_cli.stores.files import parse_template_source

NOW = datetime(2026, 12, 14, 15, 0, tzinfo=UTC)  # 10:00 in Toronto; the deadline is 2026-12-19
CAMPAIGN = load_campaign(CAMPAIGN_TOML, {})


@pytest.mark.parametrize(
    ("red", "orange", "segment"),
    [
        (2, 0, "CRITICAL"),
        (3, 5, "CRITICAL"),
        (1, 0, "URGENT"),
        (0, 2, "URGENT"),
        (0, 1, "OPTIMIZE"),
        (0, 0, "OPTIMIZE"),
        (None, None, None),
    ],
)
def test_segment_rule(red: int | None, orange: int | None, segment: str | None) -> None:
    assert classify_segment(red, orange) == segment


def test_variables_compute_the_documented_values() -> None:
    v = build_variables(dict(SAMPLE), CAMPAIGN, NOW, "https://u", Counts(bookings=13, spots_taken=4))
    assert set(ALWAYS) | set(OPTIONAL) <= set(v)
    assert v["segment"] == "CRITICAL"
    assert v["TotalRevenueLeak_K"] == 15  # 14700 / 1000, rounded
    assert (v["WeakestSystem1"], v["WeakestSystem2"]) == ("GPS", "FUEL")
    assert v["personalized_tip_1"].startswith("Map your customer journey")
    assert v["days_to_deadline"] == 5
    assert (v["spots_total"], v["spots_remaining"], v["bookings_count"]) == (20, 16, 13)
    assert v["deadline_date"] == "December 19, 2026"
    assert v["scheduled_time_display"] == "Thursday, December 10 at 9:00 AM EST"
    assert v["portal_url"] == "https://portal.example.org/sarah"
    assert v["unsubscribe_url"] == "https://u"


JAN_1 = datetime(2027, 1, 1, 5, 30, tzinfo=UTC)  # 00:30 on New Year's Day in Toronto


@pytest.mark.parametrize(
    ("now", "when", "shown"),
    [
        # the same year in Toronto: no year
        (NOW, "2026-12-10T14:00:00Z", "Thursday, December 10 at 9:00 AM EST"),
        (NOW, "2026-01-01T05:00:00Z", "Thursday, January 1 at 12:00 AM EST"),
        # another year: the year after the day
        (NOW, "2025-12-09T20:00:00Z", "Tuesday, December 9, 2025 at 3:00 PM EST"),
        (NOW, "2027-01-05T15:30:00Z", "Tuesday, January 5, 2027 at 10:30 AM EST"),
        # 02:00 UTC on Jan 1 is still Dec 31 in Toronto: the same year as a Dec 31 `now` there...
        (datetime(2026, 12, 31, 15, 0, tzinfo=UTC), "2027-01-01T02:00:00Z", "Thursday, December 31 at 9:00 PM EST"),
        # ...and a `now` of 03:00 UTC on Jan 1, 2027 is Dec 31, 2026 in Toronto too
        (datetime(2027, 1, 1, 3, 0, tzinfo=UTC), "2026-12-31T20:00:00Z", "Thursday, December 31 at 3:00 PM EST"),
        # a `now` just past midnight in Toronto on Jan 1: last night's date carries its year, tomorrow's does not
        (JAN_1, "2027-01-01T04:00:00Z", "Thursday, December 31, 2026 at 11:00 PM EST"),
        (JAN_1, "2027-01-02T15:00:00+00:00", "Saturday, January 2 at 10:00 AM EST"),
    ],
)
def test_display_dates_carry_the_year_only_when_it_is_not_the_current_one(now: datetime, when: str, shown: str) -> None:
    data = {**SAMPLE, "scheduled_time": when, "diagnostic_call_date": when, "payment_date": when}
    v = build_variables(data, CAMPAIGN, now, "https://u")
    assert v["scheduled_time_display"] == v["diagnostic_call_display"] == v["payment_date_display"] == shown
    assert v["deadline_date"] == "December 19, 2026"  # always with its year


def test_variables_for_a_sparse_contact_define_everything_as_none_or_default() -> None:
    v = build_variables(
        {"email": "x@example.com", "first_name": "X"}, CAMPAIGN, NOW, "https://u", Counts(spots_taken=25)
    )
    assert all(v[name] is None for name in OPTIONAL)
    assert v["portal_url"] == "https://portal.example.org/" and v["spots_remaining"] == 0


def test_tips_cover_the_eight_systems_aliases_and_unknown_names() -> None:
    assert tip_for("money") == tip_for("COCKPIT") != tip_for("GPS")
    assert tip_for("Marketing") == tip_for("FUEL")
    assert tip_for("Underwater basket weaving") is not None  # a sensible default, never None
    assert tip_for(None) is None


def tpl(body: str, subject: str = "Hi {{ first_name }}") -> Template:
    return parse_template_source("t", f"Subject: {subject}\n\n{body}")


def test_strict_rendering_stops_on_a_missing_variable_and_never_prints_braces() -> None:
    with pytest.raises(RenderError, match="'GenerateScore' is undefined"):
        render(tpl("<p>{{ GenerateScore }}</p>"), {"first_name": "A"})
    with pytest.raises(RenderError, match="None"):
        render(tpl("<p>{{ business_name }}</p>"), {"first_name": "A", "business_name": None})


def test_sandbox_blocks_python_internals() -> None:
    for evil in (
        "{{ first_name.__class__.__mro__ }}",
        "{{ ''.__class__.__subclasses__() }}",
        "{{ cycler.__init__.__globals__ }}",
    ):
        with pytest.raises(RenderError):
            render(tpl(evil), {"first_name": "A"})


def test_contact_supplied_text_is_escaped_in_html_and_kept_on_one_line_in_the_subject() -> None:
    hostile = "<script>alert(1)</script>\r\nBcc: victim@example.com"
    out = render(tpl("<p>Hello {{ first_name }}</p>"), {"first_name": hostile})
    assert "<script>" not in out.html and "&lt;script&gt;" in out.html
    assert "\n" not in out.subject and "\r" not in out.subject
    assert "<script>alert(1)</script>" in out.text  # the text part is plain text, not HTML


def test_template_file_format_is_checked() -> None:
    with pytest.raises(RenderError, match="Subject"):
        parse_template_source("t", "<p>no subject line</p>")


def test_html_to_text_keeps_paragraphs_and_links() -> None:
    text = html_to_text('<p>One &amp; two</p><p><a href="https://x.example/a">Book</a></p><style>p{}</style>')
    assert text == "One & two\n\nBook (https://x.example/a)\n"


def test_html_to_text_reads_what_templates_hold() -> None:
    html = (
        "<!DOCTYPE html><html><head><title>Not shown</title><style>p { color: red }</style></head><body>"
        "<!-- a note for the designer --><script>if (a < b) { document.write('<p>x</p>') }</script>"
        "<H1>Dear&nbsp;Ada,</H1><p>Line one<br>line two<br/>line three</p>"
        "<ul><li>first</li><li><strong>second</strong> item</li></ul>"
        "<p>Read <A HREF=https://x.example/guide>the guide</A>, see https://x.example/b"
        " (<a href='https://x.example/b'>https://x.example/b</a>), or write to <a href=\"mailto:a@x.example\">us</a>."
        '</p><p>Caf&eacute; &amp; <a href="https://x.example/?a=1&amp;b=2">more</a></p>\n\n\n<p>   </p><p>End'
    )
    assert html_to_text(html) == (
        "Dear Ada,\n\nLine one\nline two\nline three\n\n- first\n- second item\n\n"
        "Read the guide (https://x.example/guide), see https://x.example/b (https://x.example/b), or write to us.\n\n"
        "Café & more (https://x.example/?a=1&b=2)\n\nEnd\n"
    )


def test_tokens_name_one_contact_and_cannot_be_forged() -> None:
    secret = "s" * 32
    token = make_token(secret, "Sarah@Example.com")
    assert read_token(secret, token) == "sarah@example.com"
    assert read_token("t" * 32, token) is None  # another secret
    other = make_token(secret, "mallory@example.com")
    forged = token.split(".")[0] + "." + other.split(".")[1]  # Mallory's signature on Sarah's address
    assert read_token(secret, forged) is None
    assert read_token(secret, "garbage") is None and read_token(secret, "a.b") is None
    assert unsubscribe_url("https://x.example/p/", secret, "a@example.com").startswith(
        "https://x.example/p/unsubscribe?t="
    )


def test_the_shipped_campaign_matches_the_seeds_contract() -> None:
    seqs = CAMPAIGN.sequences
    assert list(seqs) == ["signup", "lead-nurture", "assessment", "noshow", "postcall", "onboarding"]
    assert [len(s.steps) for s in seqs.values()] == [0, 5, 5, 3, 3, 3]
    assert seqs["assessment"].cancels == ["lead-nurture"]
    assert {"assessment", "noshow", "postcall"} <= set(seqs["onboarding"].cancels)
    assert len(CAMPAIGN.template_ids()) == 19
    assert all((TEMPLATES_DIR / f"{t}.html").is_file() for t in CAMPAIGN.template_ids())


def write_campaign(tmp_path: Path, old: str, new: str) -> Path:
    path = tmp_path / "campaign.toml"
    path.write_text(replace_once(CAMPAIGN_TOML.read_text(), old, new))
    return path


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ('offset = "24h"', 'offset = "24 hours"', "sequences.assessment.steps[1].offset: '24 hours' is not a duration"),
        ('timezone = "America/Toronto"', 'timezone = "Mars/Olympus"', "campaign.timezone: unknown time zone"),
        ('cancels = ["lead-nurture"]', 'cancels = ["lead-nurtur"]', "names 'lead-nurtur', which is not a sequence"),
        ('reply_to = "sang@example.org"', 'reply_to = "sang"', "sender.reply_to"),
        ("spots_total = 20", "spots_total = 20\nspots_totl = 3", "values.spots_totl: is not a known key"),
        ('calendly_link = "https://calendly.com/example/diagnostic-call"\n', "", "values.calendly_link: is required"),
        ("[store]", "[store", "not valid TOML"),
    ],
)
def test_campaign_errors_name_the_file_the_key_and_the_fix(tmp_path: Path, old: str, new: str, expected: str) -> None:
    path = write_campaign(tmp_path, old, new)
    with pytest.raises(ConfigError) as caught:
        load_campaign(path, {})
    assert str(path) in str(caught.value) and expected in str(caught.value)


def test_testing_mode_comes_from_the_file_or_xmas_testing(tmp_path: Path) -> None:
    shutil.copy(CAMPAIGN_TOML, tmp_path / "campaign.toml")
    assert load_campaign(tmp_path / "campaign.toml", {}).testing is False
    assert load_campaign(tmp_path / "campaign.toml", {"XMAS_TESTING": "1"}).testing is True
    with pytest.raises(ConfigError, match="XMAS_TESTING"):
        load_campaign(tmp_path / "campaign.toml", {"XMAS_TESTING": "maybe"})


def test_payload_errors_list_every_bad_field() -> None:
    with pytest.raises(InvalidInput) as caught:
        validate_payload(
            "assessment",
            {
                "email": "not-an-address",
                "first_name": "",
                "business_name": "B",
                "red_systems": 9,
                "orange_systems": "1",
                "yellow_systems": 0,
                "email_1_sent_at": "2025-12-01T10:30:00",
            },
        )
    fields = [f for f, _ in caught.value.problems]
    assert fields == ["email", "first_name", "red_systems", "orange_systems", "green_systems", "email_1_sent_at"]
    problems = dict(caught.value.problems)
    assert problems["green_systems"] == "is required"
    assert "UTC offset" in problems["email_1_sent_at"]


def test_payload_keeps_unknown_scalar_fields_and_refuses_nested_ones() -> None:
    p = validate_payload(
        "postcall",
        {"email": "a@example.com", "first_name": "A", "call_date": "2026-12-08T10:00:00-05:00", "utm_source": "fb"},
    )
    assert p.data()["call_date"] == "2026-12-08T15:00:00Z" and p.data()["utm_source"] == "fb"
    with pytest.raises(InvalidInput):
        validate_payload(
            "postcall",
            {"email": "a@example.com", "first_name": "A", "call_date": "2026-12-08T15:00:00Z", "nested": {"a": 1}},
        )
