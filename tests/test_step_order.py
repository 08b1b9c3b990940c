"""Each enrollment's emails go out in step order: a sequence's steps must be listed in the order they go out
(checked when campaign.toml is read)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path

import pytest
from conftest import Cli, replace_once
from test_cli_enroll import ASSESSMENT

from xmas_cli.backends import engine_from_config
from xmas_cli.clock import FixedClock, iso
from xmas_cli.core.model import State
from xmas_cli.engine import Engine, enroll
from xmas_cli.tick.run import tick

ASSESSMENT_FIELDS: dict[str, object] = {
    **{k: v for k, v in ASSESSMENT.items() if k not in ("email", "first_name")},
    "email_1_sent_at": "2026-12-01T09:00:00Z",
}

SECOND = '{ template = "noshow_recovery_email_2", offset = "24h", testing_offset = "2m" }'


@pytest.mark.parametrize(
    ("edited", "says"),
    [
        (
            SECOND.replace('"24h"', '"72h"'),
            "sequences.noshow: step 3 (noshow_recovery_email_3) has offset = '48h', earlier than step 2's '72h'",
        ),
        (
            SECOND.replace('"2m"', '"5m"'),
            "sequences.noshow: step 3 (noshow_recovery_email_3) has testing_offset = '3m', earlier than step 2's '5m'",
        ),
    ],
    ids=["offset", "testing_offset"],
)
def test_steps_out_of_order_are_a_config_error_naming_the_step_and_the_fix(
    xmas: Cli, project: Path, edited: str, says: str
) -> None:
    config = project / "campaign.toml"
    config.write_text(replace_once(config.read_text(), SECOND, edited))
    for command in (["status"], ["templates", "check"], ["tick", "--dry-run"]):
        stderr = xmas(*command, code=3).stderr
        assert says in stderr, stderr
        assert "list the steps in the order they go out" in stderr


# ------------------------------------------------------------------------------------- the cap keeps the order

T0 = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
NINA = {"email": "nina@example.com", "first_name": "Nina"}
# One contact in four marketing sequences at once, enrolled in the order that leaves all four running (each
# enrollment cancels only the sequences already running that it names)
FOUR: list[tuple[str, dict[str, object]]] = [
    ("postcall", {"call_date": "2026-12-01T09:00:00Z", "business_name": "Nina Nails"}),
    ("noshow", {"calendly_event_id": "evt_1", "scheduled_time": "2026-12-01T09:30:00Z"}),
    ("assessment", ASSESSMENT_FIELDS),
    ("lead-nurture", {}),
]


def simulate(project: Path, days: int, window: str | None = None) -> tuple[Engine, dict[str, datetime]]:
    """Enroll Nina in FOUR under a 1/24h cap (and a send window), then tick every hour for `days` days; the
    engine, and each row's due as enrollment planned it."""
    config = project / "campaign.toml"
    extra = 'frequency_cap = "1/24h"\n' + (f'send_window = "{window}"\n' if window else "")
    config.write_text(
        replace_once(config.read_text(), 'templates_dir = "templates"\n', 'templates_dir = "templates"\n' + extra)
    )
    engine = engine_from_config(str(config), now=T0.isoformat())
    clock = FixedClock(T0)
    engine.clock = clock
    for sequence, fields in FOUR:
        enroll(engine, sequence, {**NINA, **fields})
    planned = {r.id: r.due for r in engine.store.all_emails()}
    for hour in range(days * 24):
        clock.set(T0 + timedelta(hours=hour))
        tick(engine)
    return engine, planned


@pytest.mark.every_store
def test_under_a_cap_each_enrollment_keeps_its_step_order_and_the_oldest_waiting_goes_first(project: Path) -> None:
    engine, planned = simulate(project, days=24)
    rows = list(engine.store.all_emails())
    marketing = [r for r in rows if r.sender.value == "xmas"]
    assert {r.state for r in marketing} == {State.SENT}, [(r.id, r.state, r.note) for r in marketing]
    sent = sorted(marketing, key=lambda r: (r.sent_at, r.id))
    assert len(sent) == 15  # 3 post-call, 3 no-show, 4 assessment (the website sent its first), 5 lead nurture

    # step order in every enrollment
    for key in {r.enrollment_key for r in sent}:
        steps = [r.step for r in sent if r.enrollment_key == key]
        assert steps == sorted(steps), (key, steps)
    # served oldest first, across sequences: the order they were sent in is the order they were planned in
    assert [planned[r.id] for r in sent] == sorted(planned[r.id] for r in sent)
    # one a day, and bounded lateness: each goes at the first tick the cap allows after its planned time, so it
    # is never later than the one before it plus the span (or its own planned time), to the hour
    assert all(b.sent_at - a.sent_at >= timedelta(hours=24) for a, b in pairwise(sent))  # type: ignore[operator]
    website = max(r.sent_at for r in rows if r.sender.value == "website" and r.sent_at)
    previous = website
    for r in sent:
        assert r.sent_at is not None
        bound = max(planned[r.id], previous + timedelta(hours=24)) + timedelta(hours=1)
        assert r.sent_at <= bound, (r.id, r.sent_at, planned[r.id], previous)
        previous = r.sent_at
    # the no-show's first email (planned 12-01 09:35) goes first, not after ten days of the others
    assert sent[0].id.startswith("noshow:") and sent[0].step == 1
    # and a held row's note keeps the time it was planned for, however often it was held
    assert all(f"was due {iso(planned[r.id])}" in (r.note or f"was due {iso(planned[r.id])}") for r in sent)


@pytest.mark.every_store
def test_with_a_send_window_too_the_order_holds(project: Path) -> None:
    engine, planned = simulate(project, days=24, window="13:00-15:00")
    marketing = [r for r in engine.store.all_emails() if r.sender.value == "xmas"]
    assert {r.state for r in marketing} == {State.SENT}
    sent = sorted(marketing, key=lambda r: (r.sent_at, r.id))
    for key in {r.enrollment_key for r in sent}:
        steps = [r.step for r in sent if r.enrollment_key == key]
        assert steps == sorted(steps), (key, steps)
    assert [planned[r.id] for r in sent] == sorted(planned[r.id] for r in sent)
