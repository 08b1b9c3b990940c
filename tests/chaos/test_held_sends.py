"""A send that may have begun is never held past the provider's 24 h key by a send window (Notion + Resend).

A tick is killed after Resend accepted an email and before its Notion row says so. It is Friday 19:59 in Toronto;
the window (08:00-20:00, Monday to Friday) closes a minute later. Before the fix the next tick held the row until
Monday 08:00, 60 hours on, when Resend no longer knew the key, and the email went a second time. The tick now
journals a send before its request (stores/local_journal.py), so the next tick sends it again at once under the
same key, whatever the window says (Resend answers from the key: one email), or, when the next tick comes only
after the key may have expired, marks the row Failed for a person to check: never a second copy."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from chaos.harness import ChaosProject, at, describe

pytestmark = pytest.mark.chaos

FRIDAY_1957 = datetime(2026, 12, 5, 0, 57, tzinfo=UTC)  # Friday 4 December 19:57 in Toronto (UTC-5)
FRIDAY_1959 = FRIDAY_1957 + timedelta(minutes=2)
FRIDAY_2001 = FRIDAY_1957 + timedelta(minutes=4)  # the window has closed until Monday 08:00
MONDAY_0800 = datetime(2026, 12, 7, 13, 0, tzinfo=UTC)  # 60 hours after Friday 20:00
LENA = {"email": "lena@example.com", "first_name": "Lena", "business_name": "Lena Nails"}


def weekday_window(p: ChaosProject) -> None:
    path = p.path / "campaign.toml"
    text = path.read_text()
    for old, new in (
        ('# send_window = "08:00-20:00"', 'send_window = "08:00-20:00"'),
        ('# send_days = ["mon", "tue", "wed", "thu", "fri", "sat"]', 'send_days = ["mon", "tue", "wed", "thu", "fri"]'),
    ):
        assert old in text, old
        text = text.replace(old, new, 1)
    path.write_text(text)


def first_email(p: ChaosProject) -> dict[str, Any]:
    shown = json.loads(p.cli("show", LENA["email"], "--json").stdout)
    [row] = [r for r in shown["emails"] if r["step"] == 1]
    return dict(row)


def killed_after_resend_accepted(p: ChaosProject) -> None:
    """Enroll Lena (her first email due now), tick at 19:59 and SIGKILL it once Resend has answered."""
    weekday_window(p)
    p.cli("enroll", "lead-nurture", "--payload", "-", "--now", at(FRIDAY_1957), input=json.dumps(LENA))
    p.tick_killed_once_resend_answers(FRIDAY_1959)
    assert len(p.resend.sent) == 1
    assert first_email(p)["state"] == "Scheduled"  # the row never heard


def test_the_next_tick_sends_it_again_under_its_key_whatever_the_window(notion_resend: ChaosProject) -> None:
    p = notion_resend
    killed_after_resend_accepted(p)

    after = p.tick(FRIDAY_2001)  # outside the window: a due row would be held until Monday

    assert after.returncode == 0, describe(after)
    row = first_email(p)
    assert row["state"] == "Sent" and row["message_id"] == p.resend.sent[0]["id"], row
    assert len(p.resend.sent) == 1  # the replay was answered from the key
    p.resend.advance(60 * 3600)
    monday = p.tick(MONDAY_0800)
    assert monday.returncode == 0, describe(monday)
    assert p.delivered()[(LENA["email"], "lead-nurture", "1")] == 1  # (step 2, due Sunday, went on Monday)
    assert first_email(p)["state"] == "Sent"


def test_after_the_key_may_have_expired_it_fails_visibly_instead_of_going_twice(notion_resend: ChaosProject) -> None:
    p = notion_resend
    killed_after_resend_accepted(p)
    p.resend.advance(60 * 3600)  # cron was down all weekend: Resend has forgotten the key

    monday = p.tick(MONDAY_0800)

    assert monday.returncode == 1, describe(monday)  # a failure to look at
    assert p.delivered()[(LENA["email"], "lead-nurture", "1")] == 1  # never a second copy
    row = first_email(p)
    assert row["state"] == "Failed", row
    assert row["last_error"].startswith("delivery unknown: its batch was recorded at 2026-12-05T00:59:00Z"), row
    assert "run `xmas retry` if it never arrived" in row["last_error"]
