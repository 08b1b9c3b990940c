"""Enrollment rules that keep a correct engine from sending the wrong email, through the CLI, HTTP and on Notion:
a failed E1, an unpaid onboarding, one conversation per sequence, stale anchors, and signup starting lead nurture.
"""

from __future__ import annotations

import email
import email.policy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import Cli, body_text, replace_once
from test_cli_enroll import ASSESSMENT, rows_in_db
from test_notion_e2e import Notion, emu, notion, on_notion, outbox  # noqa: F401  (emu and notion are fixtures)
from test_web import Web, web  # noqa: F401  (a fixture)

pytestmark = pytest.mark.every_store  # the rules hold on SQLite and on PostgreSQL

NOW = "2026-12-01T10:30:00Z"
ONBOARDING = {
    "email": "olivia@example.com",
    "first_name": "Olivia",
    "payment_date": "2026-12-01T10:00:00Z",
    "payment_status": "paid",
}


def enroll(xmas: Cli, sequence: str, payload: dict[str, Any], code: int = 0, now: str = NOW) -> Any:
    return xmas.json("enroll", sequence, "--payload", "-", "--now", now, input=json.dumps(payload), code=code)


# ------------------------------------------------------------------------------------------------- E1 failed


def test_a_failed_website_email_1_is_sent_by_xmas_now_and_the_answer_says_so(xmas: Cli, project: Path) -> None:
    doc = enroll(xmas, "assessment", {**ASSESSMENT, "email_1_status": "failed"})
    first = doc["scheduled"][0]
    assert (first["state"], first["sender"], first["due"]) == ("Scheduled", "xmas", NOW)
    assert "email_1_status" in first["note"]
    assert any("email_1_status is 'failed'" in w and "xmas sends it now" in w for w in doc["warnings"])
    # E2 comes a day after the E1 xmas sends, not a day after the one that never arrived
    assert [r["due"] for r in doc["scheduled"][1:]] == [
        "2026-12-02T10:30:00Z",
        "2026-12-04T10:30:00Z",
        "2026-12-05T10:30:00Z",
        "2026-12-06T10:30:00Z",
    ]
    result = xmas("tick", "--now", NOW)
    assert "1 sent" in result.stdout
    [sent] = list((project / ".xmas" / "outbox").glob("*.eml"))
    message = email.message_from_bytes(sent.read_bytes(), policy=email.policy.default)
    assert message["To"] == ASSESSMENT["email"] and "step=1" in str(message["X-Xmas-Tags"])
    assert "Sarah" in body_text(message, "plain")  # E1's own template, rendered for her


def test_a_sent_email_1_is_only_recorded(xmas: Cli) -> None:
    doc = enroll(xmas, "assessment", ASSESSMENT)
    assert doc["scheduled"][0]["state"] == "Sent by website" and doc["warnings"] == []


# ------------------------------------------------------------------------------------------- unpaid onboarding


@pytest.mark.parametrize("status", ["failed", "pending", "refunded"])
def test_onboarding_without_a_paid_status_is_refused_and_nothing_is_written(
    xmas: Cli, project: Path, status: str
) -> None:
    result = xmas(
        "enroll",
        "onboarding",
        "--payload",
        "-",
        "--now",
        NOW,
        input=json.dumps({**ONBOARDING, "payment_status": status}),
        code=2,
    )
    assert f"payment_status: is '{status}': only a paid client is onboarded" in result.stderr
    assert rows_in_db(project) == []


def test_onboarding_paid_in_any_case_is_accepted(xmas: Cli) -> None:
    doc = enroll(xmas, "onboarding", {**ONBOARDING, "payment_status": "Paid"})
    assert [r["state"] for r in doc["scheduled"]] == ["Scheduled"] * 3


def test_unpaid_onboarding_over_http_is_400_naming_payment_status(web: Web) -> None:  # noqa: F811
    answer = web.enroll("onboarding", {**ONBOARDING, "payment_status": "failed"})
    assert answer.status == 400
    [field] = answer.json()["error"]["fields"]
    assert field["field"] == "payment_status" and "only a paid client" in field["problem"]
    assert web.rows("olivia@example.com") == []


# -------------------------------------------------------------------------------------- one conversation


NOSHOW = {
    "email": "nina@example.com",
    "first_name": "Nina",
    "calendly_event_id": "evt_1",
    "scheduled_time": "2026-12-01T10:00:00Z",
}


def test_a_second_noshow_supersedes_the_first_and_one_email_goes_per_tick(xmas: Cli, project: Path) -> None:
    enroll(xmas, "noshow", NOSHOW)
    second = enroll(xmas, "noshow", {**NOSHOW, "calendly_event_id": "evt_2", "scheduled_time": "2026-12-01T10:10:00Z"})
    note = "superseded by noshow:nina@example.com|evt_2"
    assert [(r["id"], r["note"]) for r in second["cancelled"]] == [
        (f"noshow:nina@example.com|evt_1#{n}", note) for n in (1, 2, 3)
    ]
    assert (
        "superseded by noshow:nina@example.com|evt_3: cancelled 3 pending"
        in xmas(
            "enroll",
            "noshow",
            "--payload",
            "-",
            "--now",
            NOW,
            input=json.dumps({**NOSHOW, "calendly_event_id": "evt_3"}),
        ).stdout
    )
    assert "1 sent" in xmas("tick", "--now", "2026-12-01T10:30:00Z").stdout  # not three identical emails
    show = xmas("show", "nina@example.com").stdout
    assert "superseded by noshow:nina@example.com|evt_3" in show
    # a redelivered old webhook finds its rows: it supersedes nothing and schedules nothing
    again = enroll(xmas, "noshow", NOSHOW)
    assert not again["created"] and again["cancelled"] == []
    live = {r["enrollment_key"] for r in rows_in_db(project) if r["state"] in ("Scheduled", "Sent")}
    assert live == {"noshow:nina@example.com|evt_3"}


def test_a_later_call_supersedes_the_earlier_post_call_follow_up(xmas: Cli) -> None:
    paul = {"email": "paul@example.com", "first_name": "Paul"}
    enroll(xmas, "postcall", {**paul, "call_date": "2026-12-01T09:00:00Z"})
    later = enroll(xmas, "postcall", {**paul, "call_date": "2026-12-01T10:00:00Z"})
    assert {r["note"] for r in later["cancelled"]} == {"superseded by postcall:paul@example.com|2026-12-01T10:00:00Z"}
    assert "1 sent" in xmas("tick", "--now", "2026-12-01T11:00:00Z").stdout


def test_concurrent_keep_lets_both_run(xmas: Cli, project: Path) -> None:
    config = project / "campaign.toml"
    key = 'key = ["calendly_event_id"]'
    config.write_text(replace_once(config.read_text(), key, f'{key}\nconcurrent = "keep"'))
    enroll(xmas, "noshow", NOSHOW)
    second = enroll(xmas, "noshow", {**NOSHOW, "calendly_event_id": "evt_2"})
    assert second["cancelled"] == []
    assert "2 sent" in xmas("tick", "--now", "2026-12-01T10:30:00Z").stdout


# ------------------------------------------------------------------------------------------- stale anchors


def test_an_anchor_older_than_the_last_step_warns_everywhere(xmas: Cli, web: Web) -> None:  # noqa: F811
    stale = {**NOSHOW, "scheduled_time": "2026-11-01T10:00:00Z"}  # a month-old webhook, replayed
    doc = enroll(xmas, "noshow", stale)
    [warning] = doc["warnings"]
    assert "scheduled_time 2026-11-01T10:00:00Z is 30 days ago" in warning and "catch-up" in warning
    printed = xmas("enroll", "noshow", "--payload", "-", "--now", NOW, input=json.dumps(stale))
    assert "xmas: warning: scheduled_time 2026-11-01T10:00:00Z is 30 days ago" in printed.stderr
    # the web app's clock (XMAS_NOW) is 2025-12-01T10:31:00Z
    answer = web.enroll("noshow", {**stale, "email": "other@example.com", "scheduled_time": "2025-11-01T10:00:00Z"})
    assert answer.status == 200 and "30 days ago" in answer.json()["warnings"][0]
    fresh = enroll(xmas, "noshow", {**NOSHOW, "email": "fresh@example.com"})
    assert fresh["warnings"] == []


# ------------------------------------------------------------------------------------ signup enrolls


def test_signup_starts_lead_nurture_only_when_campaign_toml_says_so(xmas: Cli, project: Path) -> None:
    sam = {"email": "sam@example.com", "first_name": "Sam", "business_name": "Sam's Barbers"}
    assert "also" not in enroll(xmas, "signup", sam) and rows_in_db(project) == []
    config = project / "campaign.toml"
    text = config.read_text()
    config.write_text(replace_once(text, 'payload = "signup"\n', 'payload = "signup"\nenrolls = ["lead-nurture"]\n'))
    doc = enroll(xmas, "signup", {**sam, "email": "sue@example.com"})
    [lead] = doc["also"]
    assert lead["sequence"] == "lead-nurture" and len(lead["scheduled"]) == 5 and lead["created"]
    assert {r["email"] for r in rows_in_db(project)} == {"sue@example.com"}


def test_enrolls_that_would_loop_is_a_config_error(xmas: Cli, project: Path) -> None:
    config = project / "campaign.toml"
    text = replace_once(config.read_text(), 'payload = "signup"\n', 'payload = "signup"\nenrolls = ["lead-nurture"]\n')
    config.write_text(replace_once(text, 'payload = "lead"\n', 'payload = "lead"\nenrolls = ["signup"]\n'))
    result = xmas("status", code=3)
    assert "sequences.signup.enrolls names 'lead-nurture', which enrolls in others itself" in result.stderr


# --------------------------------------------------------------------------------------------- on Notion


def test_the_rules_hold_on_notion(xmas: Cli, notion: Notion, project: Path) -> None:  # noqa: F811
    run: Callable[..., Any] = enroll  # the same calls as on SQLite above
    run(xmas, "noshow", NOSHOW)
    second = run(xmas, "noshow", {**NOSHOW, "calendly_event_id": "evt_2"})
    assert len(second["cancelled"]) == 3
    notes = {r["Row ID"]: (r["State"], r["Note"]) for r in notion.rows()}
    assert notes["noshow:nina@example.com|evt_1#1"] == ("Cancelled", "superseded by noshow:nina@example.com|evt_2")
    failed = run(xmas, "assessment", {**ASSESSMENT, "email_1_status": "failed"})
    assert failed["scheduled"][0]["sender"] == "xmas" and failed["warnings"]
    assert notion.row("assessment:sarah@sarahssalon.com#1")["Sent By"] == "xmas"
    run(xmas, "onboarding", {**ONBOARDING, "payment_status": "failed"}, code=2)
    assert "2 sent" in xmas("tick", "--now", "2026-12-01T10:35:00Z").stdout  # the E1, and evt_2's first email
    assert len(outbox(project)) == 2
    assert not [r for r in notion.rows("contacts") if r["Email"] == "olivia@example.com"]
