"""Delivery events that arrive before their email's id is on its row are kept and applied once it is, on every
store: a tick is killed after Resend accepted its emails and before it recorded their ids; Resend's delivered and
opened webhooks come in meanwhile (then answered 200 and dropped as "unknown email id": 0 of 30 rows got them);
the next tick records the ids, and the events with them."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from resend_emulator import new_webhook_secret, sign_webhook

from chaos.harness import T0, ChaosProject, at, describe
from xmas_cli.backends import engine_from_config
from xmas_cli.inbound.resend_events import handle_resend_webhook

pytestmark = pytest.mark.chaos

LEADS = 3


def webhook(kind: str, email_id: str, minutes: int) -> str:
    body = {
        "type": kind,
        "created_at": at(T0 + timedelta(minutes=minutes)),
        "data": {"email_id": email_id, "to": ["x@example.com"], "tags": {"campaign": "christmas-2026"}},
    }
    return json.dumps(body)


def post(p: ChaosProject, secret: str, body: str, msg_id: str) -> str:
    engine = engine_from_config(str(p.path / "campaign.toml"), at(T0 + timedelta(minutes=1)))
    try:
        return handle_resend_webhook(engine, body, sign_webhook(secret, body, msg_id=msg_id), secret).action
    finally:
        engine.close()


def firsts(p: ChaosProject) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for n in range(LEADS):
        shown = json.loads(p.cli("show", f"lead{n:03d}@example.com", "--json").stdout)
        rows.extend(r for r in shown["emails"] if r["step"] == 1)
    return rows


@pytest.mark.parametrize("store", ["sqlite_resend", "notion_resend", "postgres_resend"])
def test_events_before_the_id_is_recorded_are_applied_when_it_is(store: str, request: pytest.FixtureRequest) -> None:
    p: ChaosProject = request.getfixturevalue(store)
    p.enroll_leads(LEADS)
    p.tick_killed_once_resend_answers(T0)
    ids = [m["id"] for m in p.resend.sent]
    assert ids and all(r["message_id"] is None for r in firsts(p))  # accepted, not recorded

    secret = new_webhook_secret()
    for n, email_id in enumerate(ids):
        for kind, minutes in (("email.delivered", 1), ("email.opened", 3)):
            assert post(p, secret, webhook(kind, email_id, minutes), f"msg_{kind}_{n}") == "recorded"
    status = json.loads(p.cli("status", "--now", at(T0 + timedelta(minutes=1)), "--json", code=None).stdout)
    assert status["deliveries"]["waiting"] == 2 * len(ids), status["deliveries"]

    later = p.tick(T0 + timedelta(minutes=5))  # records the ids (the batch replayed under its key), then the events
    assert later.returncode == 0, describe(later)
    if len(ids) < LEADS:  # Notion sends one email a request: the others went in this tick, their events come now
        later = p.tick(T0 + timedelta(minutes=6))
    engine = engine_from_config(str(p.path / "campaign.toml"), at(T0 + timedelta(minutes=6)))
    try:
        rows = {r.message_id: r for r in engine.store.all_emails() if r.message_id}
    finally:
        engine.close()
    for email_id in ids:
        delivery = rows[email_id].delivery
        assert delivery.delivered_at == T0 + timedelta(minutes=1), rows[email_id]
        assert delivery.opened_at == T0 + timedelta(minutes=3) and delivery.opens == 1, rows[email_id]
    status = json.loads(p.cli("status", "--now", at(T0 + timedelta(minutes=6)), "--json", code=None).stdout)
    assert status["deliveries"] == {"waiting": 0, "oldest": None, "unmatched_last_7_days": 0}
