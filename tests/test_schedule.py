"""The pure scheduling core: every sequence's timing in both modes, the website's E1, the catch-up rule."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from xmas_cli.config import load_campaign
from xmas_cli.core.campaign import Campaign
from xmas_cli.core.model import Sender, State
from xmas_cli.core.payloads import validate_payload
from xmas_cli.core.schedule import catch_up, plan_enrollment
from xmas_cli.defaults import CAMPAIGN as CAMPAIGN_TOML

T0 = datetime(2026, 12, 1, 10, 30, tzinfo=UTC)
H, M, D = timedelta(hours=1), timedelta(minutes=1), timedelta(days=1)

PAYLOADS: dict[str, dict[str, Any]] = {
    "lead-nurture": {"email": "a@example.com", "first_name": "A"},
    "assessment": {
        "email": "a@example.com",
        "first_name": "A",
        "business_name": "B",
        "red_systems": 2,
        "orange_systems": 1,
        "yellow_systems": 2,
        "green_systems": 3,
        "email_1_sent_at": "2026-12-01T10:30:00Z",
    },
    "noshow": {
        "email": "a@example.com",
        "first_name": "A",
        "calendly_event_id": "evt_1",
        "scheduled_time": "2026-12-01T10:30:00Z",
    },
    "postcall": {"email": "a@example.com", "first_name": "A", "call_date": "2026-12-01T10:30:00Z"},
    "onboarding": {"email": "a@example.com", "first_name": "A", "payment_date": "2026-12-01T10:30:00Z"},
}
# (sequence, production offsets, testing offsets) of the steps xmas sends: the seeds' authoritative contract.
TIMINGS = [
    ("lead-nurture", [0 * D, 2 * D, 4 * D, 6 * D, 8 * D], [0 * M, 1 * M, 2 * M, 3 * M, 4 * M]),
    ("assessment", [24 * H, 72 * H, 96 * H, 120 * H], [1 * M, 2 * M, 3 * M, 4 * M]),
    ("noshow", [5 * M, 24 * H, 48 * H], [1 * M, 2 * M, 3 * M]),
    ("postcall", [1 * H, 3 * D, 7 * D], [1 * M, 2 * M, 3 * M]),
    ("onboarding", [1 * H, 1 * D, 3 * D], [1 * M, 2 * M, 3 * M]),
]


def campaign(testing: bool) -> Campaign:
    return load_campaign(CAMPAIGN_TOML, {"XMAS_TESTING": "1" if testing else "0"})


def plan(name: str, testing: bool, now: datetime = T0, **changes: Any) -> Any:
    c = campaign(testing)
    payload = validate_payload(c.sequences[name].payload, {**PAYLOADS[name], **changes})
    return plan_enrollment(c, name, payload, now)


@pytest.mark.parametrize("testing", [False, True], ids=["production", "testing"])
@pytest.mark.parametrize(("name", "production", "fast"), TIMINGS, ids=[t[0] for t in TIMINGS])
def test_every_sequence_timing(name: str, production: list[timedelta], fast: list[timedelta], testing: bool) -> None:
    result = plan(name, testing)
    ours = [r for r in result.rows if r.sender is Sender.XMAS]
    assert [r.due - T0 for r in ours] == (fast if testing else production)
    assert all(r.state is State.SCHEDULED and r.due.tzinfo is not None for r in ours)
    assert [r.step for r in result.rows] == list(range(1, len(result.rows) + 1))


def test_assessment_email_1_is_recorded_as_sent_by_the_website() -> None:
    result = plan("assessment", testing=False)
    first = result.rows[0]
    assert (first.step, first.template, first.sender) == (1, "christmas_email_1", Sender.WEBSITE)
    assert first.state is State.SENT_BY_WEBSITE and first.sent_at == T0
    assert [r.template for r in result.rows[1:]] == [f"christmas_email_{n}" for n in range(2, 6)]
    assert result.anchor_source == "email_1_sent_at"


def test_missing_email_1_sent_at_warns_and_counts_from_now() -> None:
    now = T0 + timedelta(minutes=7)
    payload = {k: v for k, v in PAYLOADS["assessment"].items() if k != "email_1_sent_at"}
    c = campaign(False)
    result = plan_enrollment(c, "assessment", validate_payload("assessment", payload), now)
    assert result.anchor == now and result.anchor_source == "now"
    assert len(result.warnings) == 1 and "email_1_sent_at is missing" in result.warnings[0]
    assert [r.due - now for r in result.rows[1:]] == [24 * H, 72 * H, 96 * H, 120 * H]
    assert result.rows[0].state is State.SENT_BY_WEBSITE and result.rows[0].sent_at is None


def test_signup_records_the_contact_only() -> None:
    c = campaign(False)
    result = plan_enrollment(
        c, "signup", validate_payload("signup", {**PAYLOADS["lead-nurture"], "business_name": "B"}), T0
    )
    assert result.rows == [] and result.key == "signup:a@example.com"


def test_enrollment_keys_follow_the_sequence_identity() -> None:
    assert plan("assessment", False).key == "assessment:a@example.com"
    assert plan("noshow", False).key == "noshow:a@example.com|evt_1"
    assert plan("postcall", False).key == "postcall:a@example.com|2026-12-01T10:30:00Z"
    assert plan("assessment", False, email="A@Example.COM").key == "assessment:a@example.com"


def test_catch_up_spreads_overdue_steps_one_gap_apart() -> None:
    now = T0 + 10 * D  # the website reported an assessment 10 days late: E2..E5 are all overdue
    result = plan("assessment", testing=False, now=now)
    assert [r.due for r in result.rows[1:]] == [now, now + D, now + 2 * D, now + 3 * D]
    assert all(r.note and r.note.startswith("catch-up: planned") for r in result.rows[1:])


def test_catch_up_pushes_later_steps_only_while_they_would_crowd() -> None:
    now = T0 + 50 * H  # E2 (+24 h) is overdue; E3 (+72 h) would come 22 h after it: pushed, and so on
    result = plan("assessment", testing=False, now=now)
    assert [r.due for r in result.rows[1:]] == [now, now + D, now + 2 * D, now + 3 * D]
    later = plan("assessment", testing=False, now=T0 + 25 * H)  # E2 1 h late; E3 is 47 h after: kept
    assert [r.due for r in later.rows[1:]] == [T0 + 25 * H, T0 + 72 * H, T0 + 96 * H, T0 + 120 * H]


def test_catch_up_is_a_no_op_when_nothing_is_overdue() -> None:
    planned = [T0 + n * H for n in range(4)]
    assert catch_up(planned, T0, D) == planned


def test_catch_up_never_puts_a_step_before_now_or_out_of_order() -> None:
    planned = [T0 - 3 * D, T0 - 2 * D, T0 - 1 * M, T0 + 5 * M, T0 + 3 * D]
    got = catch_up(planned, T0, D)
    assert got == sorted(got) and got[0] == T0
    assert all(b - a >= D for a, b in itertools.pairwise(got[:4]))
    assert got == [T0, T0 + D, T0 + 2 * D, T0 + 3 * D, T0 + 4 * D]
