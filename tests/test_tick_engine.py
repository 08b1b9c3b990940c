"""The tick against the Mailer protocol: transient failures, backoff, giving up, batch membership."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from xmas_cli.backends import engine_from_config
from xmas_cli.clock import FixedClock
from xmas_cli.core.model import State
from xmas_cli.core.outgoing import OutgoingEmail, SendResult, batch_key
from xmas_cli.engine import Engine, enroll
from xmas_cli.tick.run import backoff, tick

pytestmark = pytest.mark.every_store  # the rules hold on SQLite and on PostgreSQL

T0 = datetime(2026, 12, 1, 10, 30, tzinfo=UTC)


@dataclass
class ScriptedMailer:
    """A real Mailer whose answers the test scripts: 'ok', 'transient', 'permanent' per call."""

    script: list[str]
    max_batch: int = 100
    description: str = "scripted mailer"
    key_ttl: timedelta | None = timedelta(hours=24)
    calls: list[tuple[list[str], str | None]] = field(default_factory=list)

    def send(self, emails: Sequence[OutgoingEmail], batch_key: str | None = None) -> list[SendResult]:
        self.calls.append(([e.row_id for e in emails], batch_key))
        answer = self.script.pop(0) if self.script else "ok"
        if answer == "ok":
            return [SendResult(e.row_id, f"id-{e.idempotency_key}") for e in emails]
        return [SendResult(e.row_id, error=f"{answer} trouble", permanent=answer == "permanent") for e in emails]

    def close(self) -> None:
        pass


def make_engine(project: Path, mailer: ScriptedMailer) -> tuple[Engine, FixedClock]:
    engine = engine_from_config(str(project / "campaign.toml"), now="2026-12-01T10:30:00Z")
    clock = FixedClock(T0)
    engine.clock = clock
    engine.mailer_factory = lambda: mailer
    return engine, clock


def enroll_postcall(engine: Engine, who: str) -> None:
    enroll(engine, "postcall", {"email": who, "first_name": "P", "call_date": "2026-12-01T09:30:00Z"})


def test_transient_failures_back_off_then_succeed(project: Path) -> None:
    mailer = ScriptedMailer(["transient", "transient", "ok"])
    engine, clock = make_engine(project, mailer)
    enroll_postcall(engine, "paul@example.com")  # E1 due 10:30
    report = tick(engine)
    assert [o.action for o in report.outcomes] == ["retry"] and not report.ok
    row = engine.store.emails_for_contact("paul@example.com")[0]
    assert (row.state, row.attempts, row.last_error) == (State.SCHEDULED, 1, "transient trouble")
    assert row.due == T0 + backoff(1) == T0 + timedelta(minutes=1)
    assert tick(engine).due == 0  # not due again before the backoff
    clock.set(row.due)
    tick(engine)
    row = engine.store.emails_for_contact("paul@example.com")[0]
    assert row.attempts == 2 and row.due == clock.now() + timedelta(minutes=2)
    clock.set(row.due)
    report = tick(engine)
    row = engine.store.emails_for_contact("paul@example.com")[0]
    assert report.ok and (row.state, row.attempts, row.last_error) == (State.SENT, 3, None)


def test_after_max_attempts_the_row_fails_and_others_carry_on(project: Path) -> None:
    mailer = ScriptedMailer(["transient"] * 10)
    engine, clock = make_engine(project, mailer)
    enroll_postcall(engine, "paul@example.com")
    for _ in range(engine.campaign.mailer.max_attempts):
        tick(engine)
        clock.set(clock.now() + timedelta(hours=2))
    row = engine.store.emails_for_contact("paul@example.com")[0]
    assert row.state is State.FAILED and row.attempts == engine.campaign.mailer.max_attempts
    assert "gave up after" in (row.last_error or "")
    later = engine.store.emails_for_contact("paul@example.com")[1]
    assert later.state is State.SCHEDULED  # step 2 is untouched by step 1's failure


def test_a_permanent_error_fails_at_once(project: Path) -> None:
    engine, _ = make_engine(project, ScriptedMailer(["permanent"]))
    enroll_postcall(engine, "paul@example.com")
    report = tick(engine)
    row = engine.store.emails_for_contact("paul@example.com")[0]
    assert [o.action for o in report.outcomes] == ["failed"] and row.state is State.FAILED and row.attempts == 1


def test_batch_membership_is_recorded_before_sending_and_reused_on_retry(project: Path) -> None:
    mailer = ScriptedMailer(["transient", "ok"])
    engine, clock = make_engine(project, mailer)
    for who in ("a@example.com", "b@example.com", "c@example.com"):
        enroll_postcall(engine, who)
    tick(engine)
    ((ids, key),) = mailer.calls
    assert len(ids) == 3 and key == batch_key("christmas-2026", ids)
    stored = {r.id: r.batch for r in engine.store.all_emails() if r.id in ids}
    assert set(stored.values()) == {key}  # recorded before the (failed) send
    enroll_postcall(engine, "d@example.com")  # a newcomer due at the retry must not join the old batch
    clock.set(clock.now() + timedelta(minutes=1))
    tick(engine)
    assert mailer.calls[1] == (ids, key)  # same members, same key
    assert len(mailer.calls) == 3 and mailer.calls[2][0] == ["postcall:d@example.com|2026-12-01T09:30:00Z#1"]
    assert {r.state for r in engine.store.all_emails() if r.step == 1} == {State.SENT}


def test_batches_never_exceed_the_mailer_size(project: Path) -> None:
    mailer = ScriptedMailer([], max_batch=2)
    engine, _ = make_engine(project, mailer)
    for n in range(5):
        enroll_postcall(engine, f"p{n}@example.com")
    report = tick(engine)
    assert [len(ids) for ids, _ in mailer.calls] == [2, 2, 1] and report.count("sent") == 5


def test_a_tick_that_runs_out_of_time_leaves_the_rest(project: Path) -> None:
    mailer = ScriptedMailer([], max_batch=1)
    engine, _ = make_engine(project, mailer)
    for n in range(4):
        enroll_postcall(engine, f"p{n}@example.com")
    # each send takes 20 s of a fake monotonic clock; a tick at :00 starts no send after :58 (tick_config.py)
    report = tick(engine, monotonic=lambda: 20.0 * len(mailer.calls))
    assert report.count("sent") == 3 and report.left_over == 1 and not report.more_left
    assert "1 left for the next tick (time budget)" in report.summary()
    assert sum(1 for r in engine.store.all_emails() if r.step == 1 and r.state is State.SCHEDULED) == 1


def test_a_tick_always_sends_at_least_once_whatever_the_budget(project: Path) -> None:
    mailer = ScriptedMailer([], max_batch=2)
    engine, _ = make_engine(project, mailer)
    for n in range(5):
        enroll_postcall(engine, f"p{n}@example.com")
    started = iter([0.0])
    report = tick(engine, monotonic=lambda: next(started, 1e9))  # out of time from the first look on
    assert [len(ids) for ids, _ in mailer.calls] == [2] and report.count("sent") == 2
    assert report.left_over == 3


def test_a_backlog_drains_a_bounded_amount_per_tick_and_every_tick_progresses(project: Path) -> None:
    mailer = ScriptedMailer([], max_batch=100)
    engine, _ = make_engine(project, mailer)
    for n in range(350):
        enroll(engine, "lead-nurture", {"email": f"b{n}@example.com", "first_name": "B"})
    # each mailer call takes 30 s of a fake clock: a tick at :00 makes two calls, then stops (the third at :60)
    per_tick = []
    for _ in range(3):
        before = len(mailer.calls)

        def monotonic(before: int = before) -> float:
            return 30.0 * (len(mailer.calls) - before)

        report = tick(engine, monotonic=monotonic)
        per_tick.append((report.count("sent"), report.left_over))
    assert per_tick == [(200, 150), (150, 0), (0, 0)]
    assert sorted(i for ids, _ in mailer.calls for i in ids) == sorted(
        f"lead-nurture:b{n}@example.com#1" for n in range(350)
    )  # each row sent once


def test_planning_stops_at_the_budget_when_every_row_is_held(project: Path) -> None:
    """A catch-up where every due row waits for the send window: each hold is a store write (on Notion, 1/3 s and
    more under 5xx retries), so the budget is checked between the rows planned, not only between sends. The rows
    not reached stay due as they were, for the next tick."""
    config = project / "campaign.toml"
    config.write_text(config.read_text().replace('# send_window = "08:00-20:00"', 'send_window = "08:00-09:00"', 1))
    mailer = ScriptedMailer([])
    engine, _ = make_engine(project, mailer)
    for n in range(6):
        enroll_postcall(engine, f"p{n}@example.com")  # E1 due 10:30, outside the window: held until tomorrow

    def held() -> int:
        return sum(1 for r in engine.store.all_emails() if r.note and r.note.startswith("window opens"))

    report = tick(engine, monotonic=lambda: 20.0 * held())  # each hold takes 20 s of a fake clock (until :58)

    assert [o.action for o in report.outcomes] == ["held"] * 3 and mailer.calls == []
    assert report.left_over == 3 and "3 left for the next tick (time budget)" in report.summary()
    firsts = sorted((r.email, r.due.isoformat()) for r in engine.store.all_emails() if r.step == 1)
    assert [due for _, due in firsts].count("2026-12-01T10:30:00+00:00") == 3  # untouched: still due
    report = tick(engine, monotonic=lambda: 20.0 * (held() - 3))
    assert [o.action for o in report.outcomes] == ["held"] * 3 and report.left_over == 0
