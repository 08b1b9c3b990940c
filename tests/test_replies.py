"""Replies stop a sequence: Resend's `email.received` webhook, signed with Svix and checked by the real SDK's
`resend.Webhooks.verify`, the received email read back with the real SDK (`resend.Emails.Receiving.get`) from
the Resend emulator, which serves received emails as the documented API does."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import RESEND_KEY, SECRET, engine_at, store_env
from resend_emulator import ResendEmulator, new_webhook_secret, sign_webhook

from xmas_cli.backends import engine_from_config
from xmas_cli.core.model import State
from xmas_cli.engine import Engine, enroll, show
from xmas_cli.errors import Unauthorized
from xmas_cli.inbound.replies import unknown_replies
from xmas_cli.inbound.resend_events import WebhookOutcome, handle_resend_webhook
from xmas_cli.mailers.resend_inbox import received_reader
from xmas_cli.web.server import start

pytestmark = pytest.mark.every_store

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
ADA = "ada@example.com"
INBOX = ["reply@in.example.org"]


@pytest.fixture
def emu() -> Iterator[ResendEmulator]:
    with ResendEmulator(api_key=RESEND_KEY, rate_limit=None) as emulator:
        yield emulator


@pytest.fixture
def engine(project: Path) -> Iterator[Engine]:
    with engine_at(project, "2026-12-01T10:00:00Z") as eng:
        yield eng


def enroll_ada(engine: Engine) -> None:
    result = enroll(engine, "lead-nurture", {"email": ADA, "first_name": "Ada"})
    assert [r.state for r in result.rows] == [State.SCHEDULED] * 5


def deliver(emu: ResendEmulator, engine: Engine, secret: str, email: dict[str, Any], msg: str) -> WebhookOutcome:
    payload = emu.received_event(email)
    reader = received_reader({"RESEND_API_KEY": RESEND_KEY, "RESEND_API_URL": emu.base_url})
    return handle_resend_webhook(engine, payload, sign_webhook(secret, payload, msg_id=msg), secret, reader)


def reads(emu: ResendEmulator) -> list[str]:
    return [f"{r['method']} {r['path']} {r['status']}" for r in emu.requests]


def rows(engine: Engine) -> list[tuple[int, str, str, str | None]]:
    return [(r.step, r.state.value, r.due.isoformat(), r.note) for r in engine.store.emails_for_contact(ADA)]


def test_a_persons_reply_stops_the_sequence_and_shows_on_the_contact(
    emu: ResendEmulator, engine: Engine, secret: str
) -> None:
    enroll_ada(engine)
    email = emu.add_received(
        "Ada Lovelace <ada@example.com>",
        INBOX,
        "Re: Your Christmas rush",
        headers={"in-reply-to": "<5f2@example.org>"},
        text="Yes, let's talk!",
        created_at=NOW + timedelta(minutes=50),
    )
    outcome = deliver(emu, engine, secret, email, "msg_1")

    assert (outcome.event_type, outcome.action, outcome.emails) == ("email.received", "replied", [ADA])
    assert outcome.detail == f"{ADA} replied ('Re: Your Christmas rush'): 5 pending email(s) cancelled"
    assert reads(emu) == [f"GET /emails/receiving/{email['id']} 200"]
    assert {(state, note) for _, state, _, note in rows(engine)} == {("Cancelled", "replied at 2026-12-01T09:50:00Z")}
    timeline = show(engine, ADA)
    [event] = timeline.events
    assert (event.name, event.at, event.key) == (
        "replied",
        NOW + timedelta(minutes=50),
        f"resend-received:{email['id']}",
    )
    assert event.data == {
        "subject": "Re: Your Christmas rush",
        "email_id": email["id"],
        "message_id": email["message_id"],
    }


def test_an_out_of_office_holds_the_next_emails_and_stops_nothing(
    emu: ResendEmulator, engine: Engine, secret: str
) -> None:
    enroll_ada(engine)
    before = rows(engine)
    email = emu.add_received(
        ADA,
        INBOX,
        "Automatic reply: Your Christmas rush",
        headers={"auto-submitted": "auto-replied", "x-auto-response-suppress": "All"},
        text="I am away until January.",
    )
    outcome = deliver(emu, engine, secret, email, "msg_2")

    assert (outcome.action, outcome.emails) == ("held", [ADA])
    assert outcome.detail == (
        f"auto-reply from {ADA} (Auto-Submitted: auto-replied): nothing stopped; 2 pending email(s) held for 3d"
    )
    held = "2026-12-04T10:00:00+00:00"
    note = "held until 2026-12-04T10:00:00Z: auto-reply (Auto-Submitted: auto-replied): was due "
    assert (
        rows(engine)
        == [
            (1, "Scheduled", held, note + "2026-12-01T10:00:00Z"),  # due at enrollment: held 3 days from now
            (2, "Scheduled", held, note + "2026-12-03T10:00:00Z"),
            *before[2:],  # Dec 5 and later: after the hold, unchanged
        ]
    )
    [event] = show(engine, ADA).events
    assert (event.name, event.data["reason"]) == ("auto-reply", "Auto-Submitted: auto-replied")


@pytest.mark.parametrize(
    ("sender", "headers", "subject", "name", "reason"),
    [
        ("ada@example.com", {"x-autoreply": "yes"}, "Away", "auto-reply", "X-Autoreply: yes"),
        ("ada@example.com", {"precedence": "auto_reply"}, "Away", "auto-reply", "Precedence: auto_reply"),
        (
            "ada@example.com",
            {},
            "Out of Office: back on Monday",
            "auto-reply",
            "subject 'Out of Office: back on Monday'",
        ),
        (
            "ada@example.com",
            {"content-type": "multipart/report; report-type=delivery-status; boundary=x"},
            "Undeliverable: hello",
            "bounce-notice",
            "Content-Type: multipart/report; report-type=delivery-status",
        ),
    ],
)
def test_other_automatic_markers_stop_nothing(
    emu: ResendEmulator,
    engine: Engine,
    secret: str,
    sender: str,
    headers: dict[str, str],
    subject: str,
    name: str,
    reason: str,
) -> None:
    enroll_ada(engine)
    outcome = deliver(emu, engine, secret, emu.add_received(sender, INBOX, subject, headers=headers), "msg_3")
    assert outcome.action == "held"
    assert {state for _, state, _, _ in rows(engine)} == {"Scheduled"}
    [event] = show(engine, ADA).events
    assert (event.name, event.data["reason"]) == (name, reason)


def test_a_reply_from_an_unknown_sender_is_recorded_and_ignored(
    emu: ResendEmulator, engine: Engine, secret: str
) -> None:
    enroll_ada(engine)
    before = rows(engine)
    email = emu.add_received("Bob <bob@example.net>", INBOX, "Who are you?", created_at=NOW)
    outcome = deliver(emu, engine, secret, email, "msg_4")
    again = deliver(emu, engine, secret, email, "msg_4")

    assert (outcome.action, outcome.emails) == ("ignored", [])
    assert outcome.detail == "reply from bob@example.net, not a contact: recorded in replies-unknown.jsonl"
    assert again.detail == "reply from bob@example.net, not a contact: recorded before in replies-unknown.jsonl"
    assert unknown_replies(engine) == [
        {"email_id": email["id"], "from": "bob@example.net", "subject": "Who are you?", "at": "2026-12-01T09:00:00Z"}
    ]
    assert engine.store.get_contact("bob@example.net") is None  # no contact made up
    assert rows(engine) == before
    assert reads(emu) == []  # an unknown sender's email is not read


def test_a_redelivered_reply_counts_once(emu: ResendEmulator, engine: Engine, secret: str) -> None:
    enroll_ada(engine)
    email = emu.add_received(ADA, INBOX, "Out of Office", headers={"auto-submitted": "auto-replied"})
    first = deliver(emu, engine, secret, email, "msg_5")
    after_first = rows(engine)
    engine.clock = type(engine.clock)(NOW + timedelta(days=1))  # type: ignore[call-arg]  # a day later: a new hold would differ
    again = deliver(emu, engine, secret, email, "msg_5")

    assert first.action == "held"
    assert (again.action, again.detail) == (
        "ignored",
        f"received email {email['id']} was recorded before: nothing more to do",
    )
    assert rows(engine) == after_first
    assert len(show(engine, ADA).events) == 1
    assert reads(emu) == [f"GET /emails/receiving/{email['id']} 200"]  # read once


def test_a_forged_signature_changes_nothing(emu: ResendEmulator, engine: Engine, secret: str) -> None:
    enroll_ada(engine)
    before = rows(engine)
    email = emu.add_received(ADA, INBOX, "Re: hello")
    payload = emu.received_event(email)
    forged = sign_webhook(new_webhook_secret(), payload, msg_id="msg_6")
    reader = received_reader({"RESEND_API_KEY": RESEND_KEY, "RESEND_API_URL": emu.base_url})
    with pytest.raises(Unauthorized, match="webhook signature does not verify"):
        handle_resend_webhook(engine, payload, forged, secret, reader)
    assert rows(engine) == before and show(engine, ADA).events == [] and reads(emu) == []


def test_replies_over_http_with_the_emulator_posting_the_webhook(project: Path, emu: ResendEmulator) -> None:
    """The route end to end: the emulator signs and POSTs, the server verifies, reads the email back through the
    SDK (RESEND_API_KEY and RESEND_API_URL from the server's environment) and answers."""
    secret = new_webhook_secret()
    env = {
        "XMAS_SECRET": SECRET,
        "XMAS_NOW": "2026-12-01T10:00:00Z",
        "RESEND_WEBHOOK_SECRET": secret,
        "RESEND_API_KEY": RESEND_KEY,
        "RESEND_API_URL": emu.base_url,
        **store_env(),
    }
    engine = engine_from_config(str(project / "campaign.toml"), env=env)
    try:
        enroll_ada(engine)
    finally:
        engine.close()
    running = start(config=str(project / "campaign.toml"), env=env)
    try:
        url = f"http://127.0.0.1:{running.port}/webhooks/resend"
        human = emu.add_received("Ada <ada@example.com>", INBOX, "Re: hi", created_at=NOW)
        answer = emu.post_received(url, secret, human, msg_id="msg_h")
        repeat = emu.post_received(url, secret, human, msg_id="msg_h")
        forged = emu.post_received(url, new_webhook_secret(), human, msg_id="msg_f")
    finally:
        running.stop()
    assert answer == {
        "version": 1,
        "ok": True,
        "event_type": "email.received",
        "action": "replied",
        "emails": [ADA],
        "detail": f"{ADA} replied ('Re: hi'): 5 pending email(s) cancelled",
    }
    assert repeat["action"] == "ignored" and forged["status"] == 401
    assert reads(emu) == [f"GET /emails/receiving/{human['id']} 200"]
    engine = engine_from_config(str(project / "campaign.toml"), env=env)
    try:
        assert {r.state for r in engine.store.emails_for_contact(ADA)} == {State.CANCELLED}
    finally:
        engine.close()


@pytest.mark.sqlite_only
def test_the_emulator_lists_received_emails_as_the_api_does(emu: ResendEmulator) -> None:
    import resend

    resend.api_key, resend.api_url = RESEND_KEY, emu.base_url
    first = emu.add_received(ADA, INBOX, "one", created_at=NOW)
    second = emu.add_received(ADA, INBOX, "two", created_at=NOW + timedelta(minutes=1))
    page = resend.Emails.Receiving.list({"limit": 1})
    assert page["has_more"] is True and [e["id"] for e in page["data"]] == [second["id"]]  # newest first
    assert "headers" not in page["data"][0] and page["data"][0]["created_at"] == "2026-12-01 09:01:00.000000+00"
    rest = resend.Emails.Receiving.list({"after": second["id"]})
    assert rest["has_more"] is False and [e["id"] for e in rest["data"]] == [first["id"]]
    got = resend.Emails.Receiving.get(first["id"])
    assert got["headers"]["subject"] == "one" and got["created_at"] == "2026-12-01T09:00:00.000000+00:00"
    with pytest.raises(resend.exceptions.ResendError) as missing:
        resend.Emails.Receiving.get("no-such-id")
    assert missing.value.code == 404
