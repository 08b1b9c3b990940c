"""`xmas report` shows each broadcast as its own line under its own name (core/broadcasts.py reads it from the row),
with what happened to its emails, through the CLI: counted in SQL on SQLite and PostgreSQL, row by row on Notion;
the sequences' steps stay as they were."""

from __future__ import annotations

import json
import os
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import Cli
from resend_emulator import new_webhook_secret, sign_webhook
from test_broadcast import SPOTS, person
from test_cli_tick import T0, at
from test_notion_e2e import Notion, emu, notion, on_notion  # noqa: F401 (the fixtures)

from xmas_cli.backends import engine_from_config
from xmas_cli.inbound.resend_events import handle_resend_webhook

LAST = "Subject: {{ first_name }}, the last call\n\n<p>Hi {{ first_name }}, this is the last call.</p>\n"
NONE = dict.fromkeys(("sent", "delivered", "opened", "clicked", "bounced", "complained", "unsubscribed"), 0)
# spots_left to all three; the broadcast named final-call (template last_call) to ada alone, who then unsubscribes
EXPECTED = [
    {"broadcast": "final-call", "template": "last_call", **NONE, "sent": 1, "delivered": 1, "unsubscribed": 1},
    {"broadcast": "spots_left", "template": "spots_left", **NONE, "sent": 3, "delivered": 2, "opened": 2,
     "clicked": 1, "bounced": 1},
]  # fmt: skip


def two_broadcasts(xmas: Cli, project: Path, push: bool = False) -> None:
    """Three leads sent lead nurture's first email; two broadcasts sent by ticks, what Resend reported on them
    (through the signed webhook, as it would post it), and ada's unsubscribe after her last email, final-call."""
    (project / "templates" / "spots_left.html").write_text(SPOTS)
    (project / "templates" / "last_call.html").write_text(LAST)
    if push:
        xmas("templates", "push")
    for email, name in (("ada", "Ada"), ("bob", "Bob"), ("cid", "Cid")):
        body = person(f"{email}@example.com", name, 3)
        xmas("enroll", "lead-nurture", "--payload", "-", "--now", at(T0), input=body)
    xmas("tick", "--now", at(T0))
    xmas("broadcast", "spots_left", "--all", "--now", at(T0 + timedelta(hours=1)))
    xmas("tick", "--now", at(T0 + timedelta(hours=1)))
    later = T0 + timedelta(hours=2)
    xmas("broadcast", "last_call", "--name", "final-call", "--where", "email ~ ada", "--now", at(later))
    xmas("tick", "--now", at(later))
    engine = engine_from_config(str(project / "campaign.toml"), at(later), dict(os.environ))
    try:
        ids = {r.id: str(r.message_id) for r in engine.store.all_emails() if r.sequence == "broadcast"}
        assert len(ids) == 4 and all(ids.values())
        secret = new_webhook_secret()
        events: list[tuple[str, str, dict[str, Any]]] = [
            ("email.delivered", "broadcast:ada@example.com|spots_left#1", {}),
            ("email.delivered", "broadcast:bob@example.com|spots_left#1", {}),
            ("email.opened", "broadcast:ada@example.com|spots_left#1", {}),
            ("email.clicked", "broadcast:bob@example.com|spots_left#1", {"click": {"link": "https://example.com/"}}),
            ("email.bounced", "broadcast:cid@example.com|spots_left#1", {"bounce": {"type": "Transient"}}),
            ("email.delivered", "broadcast:ada@example.com|final-call#1", {}),
        ]
        for n, (kind, row, data) in enumerate(events):
            payload = {"email_id": ids[row], "to": [row.split(":")[1].split("|")[0]], **data}
            body = json.dumps({"type": kind, "created_at": at(later + timedelta(minutes=5)), "data": payload})
            handle_resend_webhook(engine, body, sign_webhook(secret, body, msg_id=f"m{n}"), secret)
    finally:
        engine.close()
    xmas("tick", "--now", at(later + timedelta(minutes=10)))  # records what a store that queues them queued
    xmas("unsubscribe", "ada@example.com", "--now", at(later + timedelta(minutes=20)))


def assert_the_report(xmas: Cli, project: Path) -> None:
    now = ("--now", at(T0 + timedelta(days=1)))
    doc = xmas.json("report", *now)
    assert doc["broadcasts"] == EXPECTED
    assert "broadcast" not in [s["sequence"] for s in doc["sequences"]]  # no lump of every broadcast together
    [nurture] = [s for s in doc["sequences"] if s["sequence"] == "lead-nurture"]
    assert [(s["step"], s["sent"], s["unsubscribed"]) for s in nurture["steps"]] == [
        (1, 3, 0),
        (2, 0, 0),
        (3, 0, 0),
        (4, 0, 0),
        (5, 0, 0),
    ]
    assert doc["per_day"] == [{"day": "2026-12-01", "sent": 7, "opened": 2, "clicked": 1}]
    assert xmas.json("report", "--sequence", "lead-nurture", *now)["broadcasts"] == []
    only = xmas.json("report", "--sequence", "broadcast", *now)
    assert only["broadcasts"] == EXPECTED and only["per_day"][0]["sent"] == 4
    lines = xmas("report", *now).stdout.splitlines()
    shown = [line for line in lines if line.startswith(("│ final-call", "│ spots_left"))]
    assert [[cell.strip() for cell in line.split("│")[1:-1]] for line in shown] == [
        ["final-call", "last_call", "1", "1", "············ 0%", "············ 0%", "0", "0", "1"],
        ["spots_left", "spots_left", "3", "2", "████████████ 100%", "██████······ 50%", "1", "0", "0"],
    ], "\n".join(lines)
    page = project / "report.html"
    xmas("report", "--html", str(page), *now)
    text = page.read_text()
    assert "broadcast final-call<small>last_call</small>" in text
    assert "broadcast spots_left<small>spots_left</small>" in text


@pytest.mark.every_store
def test_each_broadcast_is_a_line_of_the_report_under_its_name(xmas: Cli, project: Path) -> None:
    two_broadcasts(xmas, project)
    assert_the_report(xmas, project)


def test_each_broadcast_is_a_line_of_the_report_on_notion(xmas: Cli, notion: Notion, project: Path) -> None:  # noqa: F811
    two_broadcasts(xmas, project, push=True)
    assert sorted(r["Row ID"] for r in notion.rows() if r["Sequence"] == "broadcast") == [
        "broadcast:ada@example.com|final-call#1",
        "broadcast:ada@example.com|spots_left#1",
        "broadcast:bob@example.com|spots_left#1",
        "broadcast:cid@example.com|spots_left#1",
    ]
    assert_the_report(xmas, project)
