"""Delivery events on Notion: the webhook only queues (it answers without touching Notion), the next tick writes
the row's delivery columns at the pacer's rate."""

from __future__ import annotations

import json
import os
from datetime import timedelta
from pathlib import Path

from conftest import Cli
from resend_emulator import new_webhook_secret, sign_webhook
from test_cli_tick import T0, at
from test_notion_e2e import Notion, emu, enroll, notion, on_notion  # noqa: F401 (the fixtures)

from xmas_cli.backends import engine_from_config
from xmas_cli.inbound.resend_events import handle_resend_webhook


def test_a_webhook_is_queued_and_the_tick_records_it_in_notion(xmas: Cli, notion: Notion, project: Path) -> None:  # noqa: F811
    enroll(xmas, "lead-nurture", now=T0)
    xmas("tick", "--now", at(T0))
    [row] = [r for r in notion.rows() if r["Step"] == 1]
    assert row["State"] == "Sent" and row["Message ID"]
    secret = new_webhook_secret()
    body = json.dumps(
        {
            "type": "email.opened",
            "created_at": at(T0 + timedelta(minutes=20)),
            "data": {"email_id": row["Message ID"], "to": [row["Email"]]},
        }
    )
    notion.emu.reset_requests()
    engine = engine_from_config(str(project / "campaign.toml"), at(T0 + timedelta(minutes=21)), dict(os.environ))
    try:
        outcome = handle_resend_webhook(engine, body, sign_webhook(secret, body, msg_id="msg_open"), secret)
    finally:
        engine.close()
    assert outcome.action == "recorded" and "queued" in outcome.detail
    assert notion.emu.requests == []  # the webhook's answer cost Notion nothing
    result = xmas("tick", "--now", at(T0 + timedelta(minutes=22)))
    assert "1 delivery event(s) recorded" in result.stdout
    [after] = [r for r in notion.rows() if r["Step"] == 1]
    assert (after["Opens"] == 1 and after["Opened At"].startswith("2026-12-01T09:20")) or after["Opened At"]
