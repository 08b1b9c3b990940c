"""Funnel events (`xmas event`, `POST /events/NAME`): recorded once per key, shown, and applied (exit rules and the
booking count), on SQLite and on Notion."""

from __future__ import annotations

import email
import email.policy
import json
from pathlib import Path
from typing import Any

import pytest
from conftest import Cli, body_text, replace_once
from test_notion_e2e import Notion, emu, notion, on_notion  # noqa: F401  (emu and notion are fixtures)
from test_web import API_TOKEN, Web, web  # noqa: F401  (a fixture)

pytestmark = pytest.mark.every_store  # the rules hold on SQLite and on PostgreSQL

NOW = "2026-12-01T10:30:00Z"
BOOKED_AT = "2026-12-01T11:00:00Z"
LENA = ["--email", "lena@example.com", "--first-name", "Lena"]


def start_nurture(xmas: Cli) -> None:
    xmas("enroll", "lead-nurture", *LENA, "--now", NOW)


def booked(xmas: Cli, *extra: str, code: int = 0) -> Any:
    data = json.dumps({"calendly_event_id": "evt_1", "start_time": "2026-12-08T15:00:00Z"})
    return xmas.json(
        "event",
        "booked",
        "--email",
        "lena@example.com",
        "--at",
        BOOKED_AT,
        "--data",
        data,
        "--now",
        BOOKED_AT,
        *extra,
        code=code,
    )


def test_booking_a_call_stops_the_book_your_call_emails_and_says_why(xmas: Cli) -> None:
    start_nurture(xmas)
    assert "1 sent" in xmas("tick", "--now", NOW).stdout
    doc = booked(xmas)
    assert doc["recorded"] and doc["event"]["key"] == f"booked@{BOOKED_AT}"
    assert [(r["step"], r["state"], r["note"]) for r in doc["cancelled"]] == [
        (n, "Cancelled", f"booked at {BOOKED_AT}") for n in (2, 3, 4, 5)
    ]
    assert "0 due" in xmas("tick", "--now", "2026-12-12T10:30:00Z").stdout  # nothing more goes to Lena
    show = xmas("show", "lena@example.com")
    assert f"booked at {BOOKED_AT}" in show.stdout and "calendly_event_id=evt_1" in show.stdout
    timeline = xmas.json("show", "lena@example.com")
    assert [e["name"] for e in timeline["events"]] == ["booked"]


def test_the_same_event_twice_changes_nothing(xmas: Cli) -> None:
    start_nurture(xmas)
    booked(xmas)
    again = booked(xmas)
    assert not again["recorded"] and again["cancelled"] == []
    printed = xmas("event", "booked", "--email", "lena@example.com", "--at", BOOKED_AT, "--now", BOOKED_AT)
    assert "was recorded before" in printed.stdout
    assert len(xmas.json("show", "lena@example.com")["events"]) == 1


def test_replied_stops_every_marketing_email_but_not_onboarding(xmas: Cli) -> None:
    xmas("enroll", "lead-nurture", *LENA, "--now", NOW)
    xmas("enroll", "noshow", *LENA, "--calendly-event-id", "evt_9", "--scheduled-time", NOW, "--now", NOW)
    doc = xmas.json("event", "replied", "--email", "lena@example.com", "--now", NOW)
    assert {r["sequence"] for r in doc["cancelled"]} == {"noshow"}  # lead-nurture was already exited by noshow
    olivia = ["--email", "olivia@example.com", "--first-name", "Olivia", "--payment-date", NOW, "--now", NOW]
    xmas("enroll", "onboarding", *olivia)
    assert xmas.json("event", "replied", "--email", "olivia@example.com", "--now", NOW)["cancelled"] == []


def test_bookings_count_follows_the_latest_booking_event(xmas: Cli, project: Path) -> None:
    template = project / "templates" / "lead_nurture_email_1.html"
    shown = "{% block body -%}\n<p>bookings={{ bookings_count }}</p>"
    template.write_text(replace_once(template.read_text(), "{% block body -%}", shown))

    def count_after(now: str, who: str) -> str:
        xmas("enroll", "lead-nurture", "--email", who, "--first-name", "X", "--now", now)
        xmas("tick", "--now", now)
        [eml] = [p for p in (project / ".xmas" / "outbox").glob("*.eml") if f"_{who}_" in p.name]
        message = email.message_from_bytes(eml.read_bytes(), policy=email.policy.default)
        return body_text(message, "plain").split("bookings=")[1].split()[0]

    assert count_after(NOW, "a@example.com") == "0"
    xmas("event", "booked", "--email", "lena@example.com", "--at", NOW, "--now", NOW)
    assert count_after("2026-12-01T10:31:00Z", "b@example.com") == "1"
    xmas("event", "call-canceled", "--email", "lena@example.com", "--at", "2026-12-01T10:32:00Z")
    assert count_after("2026-12-01T10:33:00Z", "c@example.com") == "0"


def test_bad_events_are_refused_and_write_nothing(xmas: Cli) -> None:
    start_nurture(xmas)
    cases = [
        (["event", "danced", "--email", "lena@example.com"], "unknown event 'danced'"),
        (["event", "booked", "--email", "not-an-address"], "invalid email address"),
        (["event", "booked", "--email", "lena@example.com", "--at", "yesterday"], "at: 'yesterday' is not an ISO"),
        (["event", "booked", "--email", "lena@example.com", "--at", "0001-01-01T00:00:00Z"], "invalid event time"),
        (["event", "booked", "--email", "lena@example.com", "--data", "[1]"], "data must be a JSON object"),
        (["event", "booked", "--email", "lena@example.com", "--data", '{"a": {"b": 1}}'], "invalid event data"),
        (["event", "booked", "--email", "lena@example.com", "--data", "{nope"], "--data is not valid JSON"),
    ]
    for args, message in cases:
        result = xmas(*args, "--now", NOW, code=2)
        assert message in result.stderr, (args, result.stderr)
    assert xmas.json("show", "lena@example.com")["events"] == []


def test_events_over_http_with_the_enroll_token(web: Web) -> None:  # noqa: F811
    web.enroll("lead-nurture", {"email": "lena@example.com", "first_name": "Lena"})
    body = {"email": "lena@example.com", "at": "2025-12-01T11:00:00Z", "data": {"calendly_event_id": "evt_1"}}
    auth = {"Authorization": f"Bearer {API_TOKEN}"}
    answer = web.post_json("/events/booked", body, auth)
    assert answer.status == 200 and answer.json()["recorded"] and len(answer.json()["cancelled"]) == 5
    again = web.post_json("/events/booked", body, auth)
    assert again.status == 200 and not again.json()["recorded"]
    assert web.post_json("/events/booked", body, {"Authorization": "Bearer wrong"}).status == 401
    bad = web.post_json("/events/booked", {**body, "when": "now"}, auth)
    assert bad.status == 400 and bad.json()["error"]["fields"][0]["field"] == "when"
    assert web.post_json("/events/danced", body, auth).status == 400


def test_events_on_notion_are_in_the_contact_row(xmas: Cli, notion: Notion) -> None:  # noqa: F811
    start_nurture(xmas)
    doc = booked(xmas)
    assert len(doc["cancelled"]) == 5 and not booked(xmas)["recorded"]  # no tick yet: all five were pending
    row = notion.contact("lena@example.com")
    assert row["Booking Status"] == "booked"
    assert row["Events"].startswith(f"{BOOKED_AT} booked ") and "evt_1" in row["Events"]
    assert {r["State"] for r in notion.rows()} == {"Cancelled"}
    xmas(
        "event",
        "call-canceled",
        "--email",
        "lena@example.com",
        "--at",
        "2026-12-02T09:00:00Z",
        "--now",
        "2026-12-02T09:00:00Z",
    )
    assert notion.contact("lena@example.com")["Booking Status"] == "call-canceled"
    assert [e["name"] for e in xmas.json("show", "lena@example.com")["events"]] == ["booked", "call-canceled"]


def test_a_booking_holds_for_later_enrollments_until_the_call_is_canceled(xmas: Cli) -> None:
    booked(xmas)
    late = xmas.json("enroll", "lead-nurture", *LENA, "--now", "2026-12-01T12:00:00Z")  # a replayed opt-in webhook
    assert {(r["state"], r["note"]) for r in late["scheduled"]} == {("Cancelled", f"exit rule: booked at {BOOKED_AT}")}
    xmas("event", "call-canceled", "--email", "lena@example.com", "--at", "2026-12-01T13:00:00Z")
    again = xmas.json(
        "enroll",
        "assessment",
        "--payload",
        "-",
        "--now",
        "2026-12-01T14:00:00Z",
        input=json.dumps(
            {
                "email": "lena@example.com",
                "first_name": "Lena",
                "business_name": "Lena Nails",
                "red_systems": 1,
                "orange_systems": 1,
                "yellow_systems": 1,
                "green_systems": 1,
                "email_1_status": "sent",
                "email_1_sent_at": "2026-12-01T14:00:00Z",
            }
        ),
    )
    assert [r["state"] for r in again["scheduled"]] == ["Sent by website"] + ["Scheduled"] * 4


def test_dry_run_names_the_rule_that_stopped_each_email(xmas: Cli) -> None:
    start_nurture(xmas)
    booked(xmas)
    xmas(
        "enroll",
        "noshow",
        "--email",
        "nina@example.com",
        "--first-name",
        "Nina",
        "--calendly-event-id",
        "evt_1",
        "--scheduled-time",
        NOW,
        "--now",
        NOW,
    )
    xmas(
        "enroll",
        "noshow",
        "--email",
        "nina@example.com",
        "--first-name",
        "Nina",
        "--calendly-event-id",
        "evt_2",
        "--scheduled-time",
        "2026-12-02T10:00:00Z",
        "--now",
        NOW,
    )
    dry = xmas.json("tick", "--dry-run", "--now", "2026-12-03T10:30:00Z")
    stopped = {(o["email"], o["sequence"], o["step"]): o["detail"] for o in dry["outcomes"] if o["action"] == "stopped"}
    assert stopped[("lena@example.com", "lead-nurture", 2)] == f"booked at {BOOKED_AT}"  # was due 2026-12-03T10:30
    assert stopped[("nina@example.com", "noshow", 3)] == "superseded by noshow:nina@example.com|evt_2"  # due then
    text = xmas("tick", "--dry-run", "--now", "2026-12-03T10:30:00Z").stdout
    assert "stopped" in text and "superseded by" in text
