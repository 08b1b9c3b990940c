"""Pausing the campaign (`xmas pause` / `xmas resume`, POST /pause and /resume) and the actions on one contact
(`xmas contact pause|resume|stop|maybe|booked`), on SQLite and PostgreSQL. Notion's forms: test_notion_control.py."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import Cli, replace_once
from test_web import API_TOKEN, Web, web  # noqa: F401  (a fixture)
from test_web import NOW as WEB_NOW

pytestmark = pytest.mark.every_store

NOW = "2026-12-01T10:30:00Z"
LATER = "2026-12-03T11:00:00Z"  # lead-nurture's E2 (due 12-03 10:30) has come due
ONBOARDING = {
    "email": "olivia@example.com",
    "first_name": "Olivia",
    "payment_date": "2026-12-01T10:00:00Z",
    "payment_status": "paid",
}


def lead(xmas: Cli, email: str = "lea@example.com", now: str = NOW) -> Any:
    payload = {"email": email, "first_name": "Lea", "consent": "express"}
    return xmas.json("enroll", "lead-nurture", "--payload", "-", "--now", now, input=json.dumps(payload))


def states(xmas: Cli, email: str) -> list[tuple[int, str, str | None]]:
    return [(r["step"], r["state"], r["note"]) for r in xmas.json("show", email)["emails"]]


def test_a_paused_campaign_sends_nothing_says_so_and_resumes_under_catch_up(xmas: Cli, project: Path) -> None:
    lead(xmas)
    lead(xmas, "max@example.com")
    paused = xmas.json("pause", "--reason", "price change", "--now", NOW)
    assert paused["changed"] is True
    assert paused["pauses"] == [{"sequence": None, "since": NOW, "reason": "price change", "by": "cli"}]
    again = xmas("pause", "--reason", "other", "--now", LATER)
    assert again.stdout == f"already the whole campaign paused since {NOW} (by cli): price change\n"

    tick = xmas("tick", "--now", LATER)
    assert tick.stdout.strip().endswith(f"PAUSED: the whole campaign paused since {NOW} (by cli): price change")
    assert "sent" not in tick.stdout
    assert not list((project / ".xmas" / "outbox").glob("*.eml"))
    assert states(xmas, "lea@example.com")[:2] == [(1, "Scheduled", None), (2, "Scheduled", None)]

    status = xmas("status", "--now", LATER)
    assert f"PAUSED: the whole campaign paused since {NOW} (by cli): price change (xmas resume)\n" in status.stdout
    assert xmas.json("status", "--now", LATER)["paused"] == paused["pauses"]

    resumed = xmas("resume", "--now", LATER)
    assert resumed.stdout == f"the whole campaign resumed (paused since {NOW})\n"
    assert xmas.json("status", "--now", LATER)["paused"] == []
    # what came due meanwhile goes out under catch-up: one email per enrollment now, the next a catch-up gap later
    doc = xmas.json("tick", "--now", LATER)
    assert sorted((o["email"], o["step"], o["action"]) for o in doc["outcomes"]) == [
        ("lea@example.com", 1, "sent"),
        ("lea@example.com", 2, "deferred"),
        ("max@example.com", 1, "sent"),
        ("max@example.com", 2, "deferred"),
    ]
    assert doc["paused"] == [] and len(list((project / ".xmas" / "outbox").glob("*.eml"))) == 2
    assert xmas("resume", "--now", LATER).stdout == "nothing was paused\n"


def test_a_paused_sequence_waits_while_the_others_go_on(xmas: Cli, project: Path) -> None:
    lead(xmas)
    xmas("enroll", "onboarding", "--payload", "-", "--now", NOW, input=json.dumps(ONBOARDING))
    xmas("pause", "--sequence", "lead-nurture", "--now", NOW)
    doc = xmas.json("tick", "--now", LATER)
    assert sorted((o["sequence"], o["action"]) for o in doc["outcomes"]) == [
        ("onboarding", "deferred"),  # catch-up: its second email a gap later
        ("onboarding", "sent"),
    ]
    assert doc["held_by_pause"] == 2 and doc["paused"] == [f"sequence lead-nurture paused since {NOW} (by cli)"]
    refused = xmas("pause", "--sequence", "nope", code=2)
    assert "nope" in refused.stderr and refused.stdout == ""
    xmas("resume", "--sequence", "lead-nurture", "--now", LATER)
    assert sorted(o["action"] for o in xmas.json("tick", "--now", LATER)["outcomes"]) == ["deferred", "sent"]


def test_resume_discard_missed_skips_what_came_due_while_paused_with_the_reason(xmas: Cli) -> None:
    lead(xmas)  # E1 due at NOW, before the pause: it is not "missed", it goes
    xmas("pause", "--reason", "typo in E2", "--now", "2026-12-02T00:00:00Z")
    doc = xmas.json("resume", "--discard-missed", "--now", LATER)
    [skipped] = doc["skipped"]
    assert (skipped["step"], skipped["state"]) == (2, "Skipped")
    assert skipped["note"] == "came due while paused (since 2026-12-02T00:00:00Z: typo in E2); discarded at resume"
    assert [(o["step"], o["action"]) for o in xmas.json("tick", "--now", LATER)["outcomes"]] == [(1, "sent")]
    assert [s for _, s, _ in states(xmas, "lea@example.com")] == [
        "Sent",
        "Skipped",
        "Scheduled",
        "Scheduled",
        "Scheduled",
    ]


def test_transactional_sequences_may_go_on_under_a_whole_campaign_pause(xmas: Cli, project: Path) -> None:
    path = project / "campaign.toml"
    path.write_text(path.read_text() + "\n[pause]\nexempt_transactional = true\n")
    lead(xmas)
    xmas("enroll", "onboarding", "--payload", "-", "--now", NOW, input=json.dumps(ONBOARDING))
    xmas("pause", "--now", NOW)
    doc = xmas.json("tick", "--now", LATER)
    assert sorted((o["sequence"], o["action"]) for o in doc["outcomes"]) == [
        ("onboarding", "deferred"),  # catch-up: its second email a gap later
        ("onboarding", "sent"),
    ]
    assert doc["held_by_pause"] == 2
    resumed = xmas("resume", "--sequence", "lead-nurture", code=2)
    assert "the whole campaign is paused, not only lead-nurture" in resumed.stderr


def test_pause_and_resume_over_http_with_the_bearer_token(web: Web, xmas: Cli) -> None:  # noqa: F811
    auth = {"Authorization": f"Bearer {API_TOKEN}"}
    assert web.post_json("/pause", {"reason": "x"}).status == 401
    bad = web.post_json("/pause", {"reason": 3, "until": "never"}, auth)
    assert bad.status == 400 and xmas.json("status")["paused"] == []
    answer = web.post_json("/pause", {"sequence": "assessment", "reason": "website redesign"}, auth)
    assert answer.status == 200, answer.text
    assert answer.json()["pauses"][0] == {
        "sequence": "assessment",
        "since": WEB_NOW,
        "reason": "website redesign",
        "by": "web",
    }
    assert [p["sequence"] for p in xmas.json("status")["paused"]] == ["assessment"]
    done = web.post_json("/resume", {"discard_missed": True}, auth)
    assert done.status == 200 and done.json()["changed"] is True and done.json()["in_force"] == []
    assert xmas.json("status")["paused"] == []


# ----------------------------------------------------------------------------------------- one contact


def test_pause_resume_and_stop_one_contact(xmas: Cli) -> None:
    lead(xmas)
    lead(xmas, "max@example.com")
    paused = xmas.json("contact", "pause", "lea@example.com")
    assert [r["state"] for r in paused["changed"]] == ["Paused"] * 5
    assert xmas("contact", "pause", "lea@example.com").stdout == "lea@example.com: paused 0 scheduled email(s)\n"
    doc = xmas.json("tick", "--now", NOW)
    assert [o["email"] for o in doc["outcomes"]] == ["max@example.com"]  # Paused rows are never sent
    assert xmas("contact", "resume", "lea@example.com").stdout == "lea@example.com: resumed 5 paused email(s)\n"
    assert [o["email"] for o in xmas.json("tick", "--now", NOW)["outcomes"]] == ["lea@example.com"]
    xmas("contact", "pause", "lea@example.com")
    stopped = xmas("contact", "stop", "lea@example.com")
    assert stopped.stdout == "lea@example.com: cancelled 4 pending email(s)\n"
    assert [s for _, s, _ in states(xmas, "lea@example.com")] == ["Sent"] + ["Cancelled"] * 4
    assert {n for _, s, n in states(xmas, "lea@example.com") if s == "Cancelled"} == {"stopped by operator"}
    missing = xmas("contact", "stop", "nobody@example.com", code=2)
    assert "no contact with email 'nobody@example.com'" in missing.stderr


def test_enroll_in_maybe_needs_a_booked_call_and_writes_nothing_without_one(xmas: Cli) -> None:
    lead(xmas)
    refused = xmas("contact", "maybe", "lea@example.com", code=2)
    assert (
        "lea@example.com cannot be enrolled in postcall: no booked call with a start time on record" in refused.stderr
    )
    assert "call_date" in refused.stderr
    assert {r["sequence"] for r in xmas.json("show", "lea@example.com")["emails"]} == {"lead-nurture"}
    start = json.dumps({"start_time": "2026-12-04T15:00:00Z"})
    xmas("event", "booked", "--email", "lea@example.com", "--at", NOW, "--data", start, "--now", NOW)
    doc = xmas.json("contact", "maybe", "lea@example.com", "--now", "2026-12-04T16:00:00Z")
    assert [(r["sequence"], r["due"]) for r in doc["changed"]] == [
        ("postcall", "2026-12-04T16:00:00Z"),
        ("postcall", "2026-12-07T15:00:00Z"),
        ("postcall", "2026-12-11T15:00:00Z"),
    ]


def test_mark_booked_records_the_booking_and_cancels_what_it_cancels(xmas: Cli) -> None:
    lead(xmas)
    out = xmas("contact", "booked", "lea@example.com", "--now", LATER)
    assert out.stdout == "lea@example.com: marked booked: cancelled 5 pending email(s)\n"
    events = xmas.json("show", "lea@example.com")["events"]
    assert [(e["name"], e["at"]) for e in events] == [("booked", LATER)]
    assert {n for _, s, n in states(xmas, "lea@example.com")} == {f"booked at {LATER}"}


def test_a_campaign_without_the_maybe_sequence_says_which_setting_to_fix(xmas: Cli, project: Path) -> None:
    path = project / "campaign.toml"
    path.write_text(replace_once(path.read_text(), "[sequences.postcall]", "[sequences.post-call]"))
    path.write_text(
        path.read_text().replace(
            'cancels = ["lead-nurture", "assessment", "noshow", "postcall"]',
            'cancels = ["lead-nurture", "assessment", "noshow", "post-call"]',
        )
    )
    lead(xmas)
    refused = xmas("contact", "maybe", "lea@example.com", code=2)
    assert "postcall" in refused.stderr
