"""The batch journal (SQLite + Resend batches), in-process: a batch is replayed whole, under its key, or not at all.

A tick that dies while recording a batch's outcomes is simulated by a store whose close_batch dies before its
transaction commits; the count of emails delivered is taken at the Resend emulator.
"""

from __future__ import annotations

import os
import signal
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from resend_emulator import ResendEmulator
from test_tick_engine import ScriptedMailer, enroll_postcall, make_engine

from xmas_cli.backends import engine_from_config
from xmas_cli.clock import FixedClock
from xmas_cli.commands.operators import in_flight_line
from xmas_cli.core.model import State
from xmas_cli.core.outgoing import OutgoingEmail, SendResult
from xmas_cli.engine import Engine, status, unsubscribe
from xmas_cli.stores.base import BatchJournal
from xmas_cli.tick.run import tick
from xmas_cli.tick.signals import StopRequest

pytestmark = pytest.mark.every_store  # the rules hold on SQLite and on PostgreSQL

T0 = datetime(2026, 12, 1, 10, 30, tzinfo=UTC)
PEOPLE = [f"p{n}@example.com" for n in range(5)]


class Died(BaseException):
    """The process died here (like SIGKILL: nothing after it runs, no transaction commits)."""


def resend_engine(project: Path) -> tuple[Engine, FixedClock]:
    engine = engine_from_config(str(project / "campaign.toml"))
    clock = FixedClock(T0)
    engine.clock = clock
    return engine, clock


def journal(engine: Engine) -> BatchJournal:
    """The store's batch journal (SQLite and PostgreSQL keep one)."""
    assert engine.journal is not None
    return engine.journal


def die_on_close(engine: Engine, times: int = 1) -> list[str]:
    """Make the store die inside close_batch, before anything of it is written, `times` times."""
    real = journal(engine).close_batch
    died: list[str] = []

    def dying(key: str, outcomes: Any) -> None:
        if len(died) < times:
            died.append(key)
            raise Died(key)
        real(key, outcomes)

    journal(engine).close_batch = dying  # type: ignore[method-assign]
    return died


def delivered(emu: ResendEmulator) -> Counter[tuple[str, str]]:
    return Counter((m["to"][0], next(t["value"] for t in m["tags"] if t["name"] == "step")) for m in emu.sent)


def test_a_batch_killed_while_recording_is_sent_again_whole_under_its_key_and_delivered_once(
    project: Path, resend_api: ResendEmulator
) -> None:
    engine, clock = resend_engine(project)
    for who in PEOPLE:
        enroll_postcall(engine, who)
    died = die_on_close(engine)
    with pytest.raises(Died):
        tick(engine)
    first = [r for r in resend_api.requests if r["path"] == "/emails/batch"]
    assert len(first) == 1 and len(first[0]["body"]) == 5 and len(resend_api.sent) == 5
    # nothing of the outcome was recorded: every member is still Scheduled, in the open batch
    rows = [r for r in engine.store.all_emails() if r.step == 1]
    assert {r.state for r in rows} == {State.SCHEDULED} and {r.batch for r in rows} == {died[0]}
    # meanwhile: one member unsubscribes, the template changes, and a newcomer is due
    unsubscribe(engine, PEOPLE[0])
    template = project / "templates" / "postcall_maybe_email_1.html"
    template.write_text(template.read_text().replace("Subject: ", "Subject: CHANGED "))
    enroll_postcall(engine, "new@example.com")
    clock.set(T0 + timedelta(minutes=5))
    report = tick(engine)
    batches = [r for r in resend_api.requests if r["path"] == "/emails/batch"]
    replay = batches[1]
    assert replay["headers"]["idempotency-key"] == first[0]["headers"]["idempotency-key"] == died[0]
    assert replay["body"] == first[0]["body"]  # byte for byte the recorded request, not a re-render
    assert "CHANGED" not in str(replay["body"])
    # Resend answered from its key: the five went once; the newcomer went alone under its own key, with the change
    assert delivered(resend_api) == Counter({(p, "1"): 1 for p in [*PEOPLE, "new@example.com"]})
    assert resend_api.sent_to("new@example.com")[0]["subject"].startswith("CHANGED")
    firsts = {r.email: r for r in engine.store.all_emails() if r.step == 1}
    assert all(firsts[p].state is State.SENT and firsts[p].message_id for p in PEOPLE)
    assert "recorded before it was set Cancelled" in (firsts[PEOPLE[0]].note or "")
    assert report.count("sent") == 6 and journal(engine).open_batches() == []


def test_a_batch_whose_key_has_expired_is_not_sent_blind(project: Path, resend_api: ResendEmulator) -> None:
    engine, clock = resend_engine(project)
    for who in PEOPLE[:3]:
        enroll_postcall(engine, who)
    die_on_close(engine)
    with pytest.raises(Died):
        tick(engine)
    clock.set(T0 + timedelta(hours=23, minutes=30))  # Resend forgets keys after 24 h; we replay only until 23 h
    report = tick(engine)
    assert len(resend_api.sent) == 3 and len(resend_api.requests) == 1  # nothing was sent again
    rows = [r for r in engine.store.all_emails() if r.step == 1]
    assert {r.state for r in rows} == {State.FAILED}
    assert all("delivery unknown" in (r.last_error or "") for r in rows) and not report.ok
    assert journal(engine).open_batches() == []


def test_a_batch_with_no_verdict_stays_open_and_goes_again_as_recorded(project: Path) -> None:
    mailer = ScriptedMailer(["transient", "transient", "ok"])
    engine, clock = make_engine(project, mailer)
    for who in PEOPLE[:3]:
        enroll_postcall(engine, who)
    tick(engine)
    [batch] = journal(engine).open_batches()
    assert batch.attempts == 1 and batch.retry_at == T0 + timedelta(minutes=1)
    enroll_postcall(engine, "late@example.com")  # due at the retry: never joins the open batch
    clock.set(T0 + timedelta(minutes=1))
    tick(engine)
    clock.set(T0 + timedelta(minutes=3))
    tick(engine)
    replays = [ids for ids, key in mailer.calls if key == batch.key]
    assert replays == [batch.row_ids] * 3  # the same members under the same key, three times
    assert [key for ids, key in mailer.calls if key != batch.key] == [None]  # the newcomer, alone, under its own
    rows = {r.email: r for r in engine.store.all_emails() if r.step == 1}
    assert all(rows[p].state is State.SENT and rows[p].attempts == 3 for p in PEOPLE[:3])
    assert rows["late@example.com"].state is State.SENT


class SignallingMailer(ScriptedMailer):
    """Sends itself SIGTERM (once or twice) in the middle of its first send."""

    def __init__(self, signals: int) -> None:
        super().__init__([], max_batch=1)
        self.signals = signals
        self.fired = False

    def send(self, emails: Sequence[OutgoingEmail], batch_key: str | None = None) -> list[SendResult]:
        if not self.fired:
            self.fired = True
            for _ in range(self.signals):
                os.kill(os.getpid(), signal.SIGTERM)
        return super().send(emails, batch_key)


def test_sigterm_finishes_the_send_in_flight_records_it_and_stops(project: Path) -> None:
    mailer = SignallingMailer(signals=1)
    engine, _ = make_engine(project, mailer)
    for who in PEOPLE[:3]:
        enroll_postcall(engine, who)
    previous = signal.getsignal(signal.SIGTERM)
    report = tick(engine, stop=StopRequest())
    assert signal.getsignal(signal.SIGTERM) == previous  # the tick's handler is gone again
    assert report.stopped == "SIGTERM" and report.count("sent") == 1 and report.left_over == 2
    assert len(mailer.calls) == 1 and journal(engine).open_batches() == []
    assert "2 left for the next tick (stopped by SIGTERM)" in report.summary()
    states = Counter(r.state for r in engine.store.all_emails() if r.step == 1)
    assert states == Counter({State.SENT: 1, State.SCHEDULED: 2})


def test_a_second_signal_abandons_the_request_and_the_next_tick_sends_it_under_the_same_key(project: Path) -> None:
    mailer = SignallingMailer(signals=2)
    engine, _ = make_engine(project, mailer)
    enroll_postcall(engine, PEOPLE[0])
    report = tick(engine)
    assert report.stopped == "SIGTERM" and mailer.calls == []  # abandoned before the request was made
    [batch] = journal(engine).open_batches()
    [flight] = status(engine).in_flight  # what `xmas status` shows of it
    assert flight.key == batch.key and flight.owner is None  # a stopped runner gave its lease back (PostgreSQL)
    assert in_flight_line(flight, engine.clock.now()).endswith("the next tick sends it again under its key")
    report = tick(engine)
    assert [ids for ids, _ in mailer.calls] == [batch.row_ids] and report.count("sent") == 1
    assert journal(engine).open_batches() == [] and status(engine).in_flight == []


def test_xmas_tick_exits_6_when_stopped_by_a_signal(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from xmas_cli.commands import app
    from xmas_cli.tick import run as tick_module

    real = tick_module.tick

    def stopped_tick(engine: Engine, **kwargs: Any) -> Any:
        kwargs["stop"] = StopRequest("SIGTERM")
        return real(engine, **kwargs)

    monkeypatch.setattr(tick_module, "tick", stopped_tick)
    runner = CliRunner()
    assert (
        runner.invoke(
            app,
            [
                "enroll",
                "postcall",
                "--email",
                "a@example.com",
                "--first-name",
                "A",
                "--call-date",
                "2026-12-01T09:30:00Z",
                "--now",
                "2026-12-01T10:30:00Z",
            ],
        ).exit_code
        == 0
    )
    result = runner.invoke(app, ["tick", "--now", "2026-12-01T10:30:00Z"])
    assert result.exit_code == 6, result.output
    assert "1 left for the next tick (stopped by SIGTERM)" in result.stdout
