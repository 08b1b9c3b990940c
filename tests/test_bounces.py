"""Resend's bounce and complaint webhooks, signed like Resend signs them, against the SQLite store."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import engine_at
from resend_emulator import new_webhook_secret, sign_webhook

from xmas_cli.core.model import ScheduledEmail, State
from xmas_cli.engine import Engine, enroll
from xmas_cli.errors import ConfigError, Unauthorized
from xmas_cli.inbound.resend_events import WebhookOutcome, handle_resend_webhook

pytestmark = pytest.mark.every_store  # the rules hold on SQLite and on PostgreSQL

ADA = "ada@example.com"


@pytest.fixture
def engine(project: Path) -> Iterator[Engine]:
    with engine_at(project, "2026-12-01T09:00:00Z") as eng:
        yield eng


def enroll_ada(engine: Engine) -> list[ScheduledEmail]:
    result = enroll(engine, "lead-nurture", {"email": ADA, "first_name": "Ada"})
    assert len(result.rows) == 5 and all(r.state is State.SCHEDULED for r in result.rows)
    return result.rows


def event(kind: str, to: list[str] | None = None, **data: Any) -> str:
    body = {
        "type": kind,
        "created_at": "2026-12-01T09:05:00.000Z",
        "data": {
            "email_id": "4ef9a417-02e9-4d39-ad75-9611e0fcc33c",
            "from": "hello@example.org",
            "to": [ADA] if to is None else to,
            "subject": "Hello",
            **data,
        },
    }
    return json.dumps(body)


def bounced(kind: str = "Permanent", to: list[str] | None = None) -> str:
    return event("email.bounced", to, bounce={"type": kind, "subType": "General", "message": "No such user"})


def deliver(engine: Engine, secret: str, payload: str, msg_id: str = "msg_1") -> WebhookOutcome:
    return handle_resend_webhook(engine, payload, sign_webhook(secret, payload, msg_id=msg_id), secret)


def snapshot(engine: Engine) -> tuple[Any, list[ScheduledEmail]]:
    return engine.store.get_contact(ADA), engine.store.emails_for_contact(ADA)


def test_permanent_bounce_suppresses_and_cancels(engine: Engine, secret: str) -> None:
    enroll_ada(engine)
    outcome = deliver(engine, secret, bounced())

    assert (outcome.event_type, outcome.action, outcome.emails) == ("email.bounced", "suppressed", [ADA])
    assert "5 pending" in outcome.detail
    contact, rows = snapshot(engine)
    assert contact is not None and contact.suppressed
    assert (contact.suppressed_reason or "").startswith("bounced ")
    assert [(r.state, r.note) for r in rows] == [(State.CANCELLED, "bounced")] * 5
    assert outcome.to_json() == {
        "version": 1,
        "ok": True,
        "event_type": "email.bounced",
        "action": "suppressed",
        "emails": [ADA],
        "detail": outcome.detail,
    }


def test_replayed_webhook_changes_nothing_more(engine: Engine, secret: str) -> None:
    enroll_ada(engine)
    payload = bounced()
    deliver(engine, secret, payload)
    before = snapshot(engine)

    again = deliver(engine, secret, payload)  # Resend redelivers the same message
    assert (again.action, again.emails) == ("suppressed", [ADA])
    assert "0 pending" in again.detail
    assert snapshot(engine) == before


def test_complaint_suppresses(engine: Engine, secret: str) -> None:
    enroll_ada(engine)
    outcome = deliver(engine, secret, event("email.complained"))

    assert (outcome.action, outcome.emails) == ("suppressed", [ADA])
    contact, rows = snapshot(engine)
    assert contact is not None and (contact.suppressed_reason or "").startswith("complained ")
    assert {r.state for r in rows} == {State.CANCELLED}


def test_bounce_of_an_unknown_address_suppresses_it_ahead(engine: Engine, secret: str) -> None:
    outcome = deliver(engine, secret, bounced(to=["Bob <BOB@example.com>"]))
    assert outcome.emails == ["bob@example.com"]
    contact = engine.store.get_contact("bob@example.com")
    assert contact is not None and contact.suppressed


@pytest.mark.parametrize(
    "payload",
    [
        bounced("Transient"),
        bounced("Undetermined"),
        event("email.bounced"),  # no bounce details at all
        event("email.delivered"),
        event("email.opened"),
    ],
)
def test_other_events_suppress_no_one(engine: Engine, secret: str, payload: str) -> None:
    """They are recorded on the email they name (test_deliveries.py); here no row has that id: nothing changes."""
    enroll_ada(engine)
    before = snapshot(engine)
    outcome = deliver(engine, secret, payload)

    assert outcome.action == "recorded" and outcome.emails == []
    assert outcome.event_type == json.loads(payload)["type"]
    assert snapshot(engine) == before
    contact = before[0]
    assert contact is not None and not contact.suppressed


def test_recipient_that_is_not_an_address_is_skipped(engine: Engine, secret: str) -> None:
    outcome = deliver(engine, secret, bounced(to=["not an address", ADA]))
    assert outcome.emails == [ADA] and "skipped 'not an address'" in outcome.detail
    assert deliver(engine, secret, bounced(to=["nobody"])).action == "ignored"


def test_header_names_in_any_case(engine: Engine, secret: str) -> None:
    enroll_ada(engine)
    payload = bounced()
    headers = {name.title(): value for name, value in sign_webhook(secret, payload).items()}
    assert "Svix-Signature" in headers
    assert handle_resend_webhook(engine, payload, headers, secret).action == "suppressed"


def unchanged_after_refusal(engine: Engine, payload: str, headers: dict[str, str], secret: str) -> None:
    before = snapshot(engine)
    with pytest.raises(Unauthorized) as exc:
        handle_resend_webhook(engine, payload, headers, secret)
    assert exc.value.message == "webhook signature does not verify"
    assert secret not in str(exc.value) and secret.removeprefix("whsec_") not in str(exc.value)
    assert snapshot(engine) == before


def test_forged_signature_is_refused(engine: Engine, secret: str) -> None:
    enroll_ada(engine)
    payload = bounced()
    unchanged_after_refusal(engine, payload, sign_webhook(new_webhook_secret(), payload), secret)


def test_tampered_body_is_refused(engine: Engine, secret: str) -> None:
    enroll_ada(engine)
    signed = bounced("Transient")
    tampered = signed.replace('"Transient"', '"Permanent"')
    assert tampered != signed
    unchanged_after_refusal(engine, tampered, sign_webhook(secret, signed), secret)


def test_stale_or_unsigned_delivery_is_refused(engine: Engine, secret: str) -> None:
    enroll_ada(engine)
    payload = bounced()
    stale = sign_webhook(secret, payload, timestamp=1_000_000_000)
    unchanged_after_refusal(engine, payload, stale, secret)
    unchanged_after_refusal(engine, payload, {}, secret)
    headers = sign_webhook(secret, payload)
    del headers["svix-signature"]
    unchanged_after_refusal(engine, payload, headers, secret)


@pytest.mark.parametrize("configured", [None, "", "whsec_not base64!"])
def test_missing_or_malformed_secret_is_a_config_error(engine: Engine, configured: str | None) -> None:
    payload = bounced()
    with pytest.raises(ConfigError) as exc:
        handle_resend_webhook(engine, payload, sign_webhook(new_webhook_secret(), payload), configured)
    assert "RESEND_WEBHOOK_SECRET" in str(exc.value)
    assert engine.store.get_contact(ADA) is None
