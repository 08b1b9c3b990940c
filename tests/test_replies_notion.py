"""Replies on the Notion store: a person's reply shows on the contact's page (Events: time, `replied`, subject)
and cancels the tracker rows; an out-of-office holds the next row in the tracker, noted."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from conftest import RESEND_KEY, Cli
from resend_emulator import ResendEmulator, new_webhook_secret, sign_webhook
from test_cli_tick import T0, at
from test_notion_e2e import Notion, emu, enroll, notion, on_notion  # noqa: F401 (the fixtures)

from xmas_cli.backends import engine_from_config
from xmas_cli.inbound.resend_events import WebhookOutcome, handle_resend_webhook
from xmas_cli.mailers.resend_inbox import received_reader

LENA = "lena@example.com"


@pytest.fixture
def resend_emu() -> Iterator[ResendEmulator]:
    with ResendEmulator(api_key=RESEND_KEY, rate_limit=None) as emulator:
        yield emulator


def deliver(project: Path, resend_emu: ResendEmulator, email: dict[str, object], now: str) -> WebhookOutcome:
    secret = new_webhook_secret()
    payload = resend_emu.received_event(email)
    reader = received_reader({"RESEND_API_KEY": RESEND_KEY, "RESEND_API_URL": resend_emu.base_url})
    engine = engine_from_config(str(project / "campaign.toml"), now, dict(os.environ))
    try:
        return handle_resend_webhook(engine, payload, sign_webhook(secret, payload, msg_id="m1"), secret, reader)
    finally:
        engine.close()


def test_a_reply_shows_on_the_notion_contact_and_cancels_its_rows(
    xmas: Cli,
    notion: Notion,  # noqa: F811
    project: Path,
    resend_emu: ResendEmulator,
) -> None:
    enroll(xmas, "lead-nurture", now=T0)
    email = resend_emu.add_received(
        "Lena <lena@example.com>", ["reply@in.example.org"], "Re: Christmas", created_at=T0 + timedelta(hours=2)
    )
    outcome = deliver(project, resend_emu, email, at(T0 + timedelta(hours=2, minutes=1)))

    assert (outcome.action, outcome.emails) == ("replied", [LENA])
    page = notion.contact(LENA)
    assert page["Events"].startswith("2026-12-01T12:30:00Z replied ")
    assert '"subject": "Re: Christmas"' in page["Events"]
    assert {r["State"] for r in notion.rows() if r["Email"] == LENA} == {"Cancelled"}


def test_an_out_of_office_holds_the_next_notion_row(
    xmas: Cli,
    notion: Notion,  # noqa: F811
    project: Path,
    resend_emu: ResendEmulator,
) -> None:
    enroll(xmas, "lead-nurture", now=T0)
    xmas("tick", "--now", at(T0))  # step 1 goes out; step 2 is due on Dec 3
    email = resend_emu.add_received(LENA, ["reply@in.example.org"], "Away", headers={"auto-submitted": "auto-replied"})
    outcome = deliver(project, resend_emu, email, at(T0 + timedelta(hours=1)))

    assert outcome.action == "held"
    steps = {r["Step"]: r for r in notion.rows() if r["Email"] == LENA}
    assert steps[1]["State"] == "Sent"
    assert (steps[2]["State"], steps[2]["Due"]) == ("Scheduled", "2026-12-04T11:30:00Z")
    assert steps[2]["Note"] == (
        "held until 2026-12-04T11:30:00Z: auto-reply (Auto-Submitted: auto-replied): was due 2026-12-03T10:30:00Z"
    )
    assert steps[3]["Due"] == "2026-12-05T10:30:00Z" and not steps[3]["Note"]
    assert " auto-reply " in notion.contact(LENA)["Events"]
