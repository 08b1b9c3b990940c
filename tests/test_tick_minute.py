"""A tick started by cron keeps sending until shortly before the next minute, and never starts a send that would run
into it (core/tick_config.py): on a simulated clock whose seconds pass only while the mailer sends."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from conftest import Cli

from xmas_cli.backends import engine_from_config
from xmas_cli.clock import FixedClock
from xmas_cli.core.model import State
from xmas_cli.core.outgoing import OutgoingEmail, SendResult
from xmas_cli.engine import Engine, enroll
from xmas_cli.tick.run import tick

pytestmark = pytest.mark.every_store

T0 = datetime(2026, 12, 1, 10, 30, tzinfo=UTC)
MINUTE = T0 + timedelta(minutes=1)  # the cron minute the ticks below start in


@dataclass
class SlowMailer:
    """A real Mailer whose every send takes `seconds`, plus `per_email` for each email, of the simulated clock; it
    notes when each send began and ended, and how many emails it took."""

    seconds: float
    per_email: float = 0.0
    max_batch: int = 1
    description: str = "slow mailer"
    key_ttl: timedelta | None = timedelta(hours=24)
    elapsed: float = 0.0  # the simulated clock: seconds since the tick started
    started: datetime = MINUTE
    sends: list[tuple[datetime, datetime]] = field(default_factory=list)
    emails: int = 0

    def send(self, emails: Sequence[OutgoingEmail], batch_key: str | None = None) -> list[SendResult]:
        began = self.started + timedelta(seconds=self.elapsed)
        self.elapsed += self.seconds + self.per_email * len(emails)
        self.sends.append((began, self.started + timedelta(seconds=self.elapsed)))
        self.emails += len(emails)
        return [SendResult(e.row_id, f"id-{e.idempotency_key}") for e in emails]

    def close(self) -> None:
        pass


def backlog(project: Path, contacts: int, budget: float | None = None) -> Engine:
    if budget is not None:
        config = project / "campaign.toml"
        config.write_text(config.read_text().replace("# budget_seconds = 50", f"budget_seconds = {budget:g}", 1))
    engine = engine_from_config(str(project / "campaign.toml"), now="2026-12-01T10:30:00Z")
    engine.clock = FixedClock(T0)
    for n in range(contacts):
        enroll(engine, "lead-nurture", {"email": f"b{n}@example.com", "first_name": "B"})
    return engine


def run_at(engine: Engine, mailer: SlowMailer, started: datetime) -> tuple[int, int]:
    """A tick started at `started` on its clock; (emails it sent, left for the next tick), checked in the store."""
    before = sum(1 for r in engine.store.all_emails() if r.step == 1 and r.state is State.SENT)
    engine.clock = FixedClock(started)
    engine.mailer_factory = lambda: mailer  # an engine keeps its first mailer: one per engine here
    mailer.started, mailer.elapsed, mailer.sends, mailer.emails = started, 0.0, [], 0
    report = tick(engine, monotonic=lambda: mailer.elapsed)
    sent = sum(1 for r in engine.store.all_emails() if r.step == 1 and r.state is State.SENT) - before
    assert report.count("sent") == sent == mailer.emails
    if report.left_over:
        assert f"{report.left_over} left for the next tick (time budget)" in report.summary()
    return sent, report.left_over


def test_a_tick_started_by_cron_sends_until_shortly_before_the_next_minute(project: Path) -> None:
    engine = backlog(project, 60)
    mailer = SlowMailer(seconds=1.5)
    sent, left = run_at(engine, mailer, MINUTE + timedelta(seconds=0.4))  # cron's start, plus python's

    # No send starts after :58 (end_before_next_minute 2s): the last begins within one send of it; all end in time.
    last_began, last_ended = mailer.sends[-1]
    assert MINUTE + timedelta(seconds=56.5) <= last_began <= MINUTE + timedelta(seconds=58)
    assert last_ended < MINUTE + timedelta(seconds=60)
    assert all(ended < MINUTE + timedelta(seconds=60) for _, ended in mailer.sends)
    # began at :00.4, :01.9 … :57.4: 39 sends, the other 21 due rows wait for the next tick
    assert (sent, left) == (39, 21)


def test_no_send_starts_that_would_run_into_the_next_minute(project: Path) -> None:
    engine = backlog(project, 10)
    mailer = SlowMailer(seconds=20)
    # :00.4: sends at :00.4 and :20.4; one at :40.4 would end at :60.4, after cron's next tick began: not started,
    # although :40.4 is before :58
    sent, left = run_at(engine, mailer, MINUTE + timedelta(seconds=0.4))
    assert (sent, left) == (2, 8)
    assert [began.second for began, _ in mailer.sends] == [0, 20] and mailer.sends[-1][1] < MINUTE + timedelta(
        minutes=1
    )

    # :45: the first send (every tick sends once) ends at :55; a second would end at :65
    mailer.seconds = 10
    sent, left = run_at(engine, mailer, MINUTE + timedelta(minutes=1, seconds=45))
    assert (sent, left) == (1, 7)

    # :59.5, late in its minute (started by hand): its first send only, never a second
    mailer.seconds = 0.1
    sent, left = run_at(engine, mailer, MINUTE + timedelta(minutes=2, seconds=59.5))
    assert (sent, left) == (1, 6)


def test_the_measured_pace_decides_how_many_the_last_send_takes(project: Path) -> None:
    """A send of 100 emails that took 30 s (0.3 s an email): at :30.4 only what fits in the 29.6 s to the next
    minute goes (98), not the next hundred."""
    engine = backlog(project, 250)
    mailer = SlowMailer(seconds=0.0, per_email=0.3, max_batch=100)
    sent, left = run_at(engine, mailer, MINUTE + timedelta(seconds=0.4))
    assert (sent, left) == (198, 52)
    assert [began.second for began, _ in mailer.sends] == [0, 30]
    assert mailer.sends[-1][1] <= MINUTE + timedelta(seconds=60)


@pytest.mark.parametrize(("budget", "sends"), [(30, 21), (50, 34)])
def test_an_explicit_budget_still_ends_a_tick_sooner(project: Path, budget: int, sends: int) -> None:
    """No send starts after `budget` seconds (at 0, 1.5 … s), though the minute would allow more (39, above)."""
    engine = backlog(project, 60, budget=budget)
    mailer = SlowMailer(seconds=1.5)
    sent, left = run_at(engine, mailer, MINUTE + timedelta(seconds=0.4))
    assert (sent, left) == (sends, 60 - sends)
    assert (
        mailer.sends[-1][0] <= MINUTE + timedelta(seconds=0.4 + budget) < mailer.sends[-1][0] + timedelta(seconds=1.5)
    )


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ('"45s"', "'45s' would leave a tick less than half of its minute to send: use a few seconds, e.g. \"2s\""),
        ('"2 seconds"', "'2 seconds' is not a duration: write e.g. 5m, 24h, 3d or 1d12h"),
    ],
)
def test_a_margin_that_leaves_no_minute_is_refused_naming_the_key(
    xmas: Cli, project: Path, value: str, problem: str
) -> None:
    config = project / "campaign.toml"
    config.write_text(config.read_text().replace('end_before_next_minute = "2s"', f"end_before_next_minute = {value}"))
    refused = xmas("status", code=3)
    assert refused.stdout == ""
    assert f"campaign.toml: tick.end_before_next_minute: {problem} — fix the keys above" in refused.stderr
