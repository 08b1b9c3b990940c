"""Pacing to Resend's real limit (mailers/pacer.py): learned from the answers' ratelimit-* headers under the configured
ceiling, recovered after a retry-after, and shared by runner processes through PostgreSQL (stores/pg_budget.py).

The emulator counts requests in fixed windows, as Resend documents its limit. The in-process tests run it on the
mailer's fake clock (nothing waits); the two-process test runs in real time with the window shortened to 0.5 s."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pg
import pytest
import resend
from conftest import clean_environ
from resend_emulator import ResendEmulator
from test_resend_mailer import KEY, FakeTime, outgoing, statuses

from xmas_cli.mailers.pacer import MARGIN, LocalBudget, Pacer
from xmas_cli.mailers.resend import ResendMailer

RUNNER = Path(__file__).with_name("pacing_runner.py")


@pytest.fixture
def emu() -> Iterator[ResendEmulator]:
    with ResendEmulator(api_key=KEY, rate_limit=None) as emulator:
        yield emulator


def on_fake_time(emu: ResendEmulator, start: float = 1000.0) -> FakeTime:
    """A fake clock that the mailer sleeps on and the emulator's windows count on."""
    clock = FakeTime(None)
    clock.now = start
    emu.now = clock.monotonic  # type: ignore[method-assign]
    return clock


def mailer(emu: ResendEmulator, clock: FakeTime, **options: Any) -> ResendMailer:
    return ResendMailer(emu.api_key, api_url=emu.base_url, sleep=clock.sleep, monotonic=clock.monotonic, **options)


# ------------------------------------------------------------------------------------------ one runner


@pytest.mark.parametrize("phase", [0.0, 0.37, 0.99])  # where in Resend's window the first request lands
def test_the_pacer_learns_a_lower_limit_from_the_headers_and_never_exceeds_it(
    emu: ResendEmulator, phase: float
) -> None:
    clock = on_fake_time(emu, 1000.0 + phase)
    emu.limit_window(3)
    sender = mailer(emu, clock, rate_limit=10)  # configured higher than the team's limit

    for n in range(30):
        assert sender.send([outgoing(n)])[0].ok

    assert statuses(emu) == [200] * 30  # not one 429
    assert emu.most_in_one_window() == 3  # the limit, used
    assert sender.pacer.limit == 3 and sender.pacer.rate == pytest.approx(3 * (1 - MARGIN))
    assert clock.now - (1000.0 + phase) == pytest.approx(29 / (3 * (1 - MARGIN)))


def test_the_configured_rate_is_a_ceiling(emu: ResendEmulator) -> None:
    clock = on_fake_time(emu)
    emu.limit_window(10)
    sender = mailer(emu, clock, rate_limit=2)

    for n in range(10):
        assert sender.send([outgoing(n)])[0].ok

    assert sender.pacer.limit == 10 and sender.pacer.rate == pytest.approx(2 * (1 - MARGIN))
    assert clock.now - 1000.0 == pytest.approx(9 / (2 * (1 - MARGIN)))
    assert emu.most_in_one_window() == 2


def test_a_limit_lowered_while_sending_is_followed_at_once(emu: ResendEmulator) -> None:
    clock = on_fake_time(emu)
    emu.limit_window(5)
    sender = mailer(emu, clock, rate_limit=5)
    for n in range(10):
        sender.send([outgoing(n)])
    emu.limit_window(2)  # the team's limit changes (a plan, another app)
    for n in range(10, 30):
        assert sender.send([outgoing(n)])[0].ok

    assert Counter(statuses(emu))[429] <= 1
    assert len(emu.sent) == 30 and sender.pacer.limit == 2
    assert emu.most_in_one_window() <= 2  # counted since the change


def test_it_recovers_from_retry_after_when_another_app_spent_the_window(emu: ResendEmulator) -> None:
    clock = on_fake_time(emu, 1000.25)
    emu.limit_window(2)
    resend.api_url, resend.api_key = emu.base_url, emu.api_key
    for n in (1, 2):  # another app of the same team spends this window
        resend.Emails.send({"from": "a@example.org", "to": [f"other{n}@example.com"], "subject": "x", "text": "x"})
    sender = mailer(emu, clock, rate_limit=5)

    results = [sender.send([outgoing(n)])[0] for n in range(10)]

    assert all(r.ok for r in results) and len(emu.sent) == 12
    assert statuses(emu) == [200, 200, 429] + [200] * 10
    assert emu.requests[2]["body"] == emu.requests[3]["body"]  # the same email, the same key, again
    assert clock.sleeps[0] == 1.0  # retry-after: the end of the window, in whole seconds as Resend sends it
    assert emu.most_in_one_window() == 2


def test_a_retry_after_holds_every_mailer_of_the_budget(emu: ResendEmulator) -> None:
    clock = on_fake_time(emu)
    budget = LocalBudget(clock.monotonic)
    first, second = (mailer(emu, clock, rate_limit=math.inf, budget=budget) for _ in range(2))
    emu.inject_fault(429, "rate_limit_exceeded", headers={"retry-after": "3"})

    assert first.send([outgoing(1)])[0].ok  # held 3 s, then sent
    at = clock.now
    first.pacer.throttled({"retry-after": "2"}, cap=30)  # a 429 the first mailer was told of
    assert second.send([outgoing(2)])[0].ok

    assert clock.sleeps == [3.0, 2.0] and clock.now == at + 2.0  # the second waited for the first's hold
    assert statuses(emu) == [429, 200, 200]


def test_a_retry_after_is_capped_and_garbage_headers_are_ignored() -> None:
    clock = FakeTime(None)
    pacer = Pacer(5, sleep=clock.sleep, monotonic=clock.monotonic)
    pacer.answered({"ratelimit-limit": "soon", "Retry-After": "x"})
    assert pacer.limit is None
    assert pacer.throttled({"Retry-After": "Wed, 21 Oct 2026 07:28:00 GMT"}, cap=30) == 1.0  # a date: one window
    assert pacer.throttled({"ratelimit-reset": "4"}, cap=30) == 4.0
    assert pacer.throttled({"retry-after": "900"}, cap=30) == 30.0


def test_a_runner_that_wakes_up_late_takes_a_new_slot_rather_than_crowd_the_next() -> None:
    clock = FakeTime(None)
    late = iter([0.2])  # the machine does not run it for 0.2 s after its first sleep

    def sleep(seconds: float) -> None:
        clock.sleep(seconds)
        clock.now += next(late, 0.0)

    pacer = Pacer(4, sleep=sleep, monotonic=clock.monotonic, margin=0.0)
    pacer.wait_turn()
    pacer.wait_turn()  # slot at +0.25, woke at +0.45: too late, so the next slot, at +0.5
    assert clock.sleeps == [0.25, pytest.approx(0.05)] and clock.now == pytest.approx(1000.5)


# ------------------------------------------------------------------------------------------ many runners


def test_the_postgres_budget_spaces_slots_and_shares_holds_and_limits() -> None:
    from xmas_cli.stores.pg_budget import PgSendBudget

    with pg.fresh_schema() as dsn:
        one, two = PgSendBudget(dsn), PgSendBudget(dsn)
        waits = [one.reserve(0.5)[0], two.reserve(0.5)[0], one.reserve(0.5)[0]]
        assert waits[0] == pytest.approx(0.0, abs=0.05)
        assert waits[1] == pytest.approx(0.5, abs=0.05) and waits[2] == pytest.approx(1.0, abs=0.05)
        one.learn(2.0)
        one.hold(5.0)
        wait, limit = two.reserve(0.0)
        assert limit == 2.0 and wait == pytest.approx(5.0, abs=0.1)  # the hold, for both


def run_runners(emu: ResendEmulator, dsn: str, tmp_path: Path, count: int) -> list[dict[str, Any]]:
    """Two runner processes started together, each sending `count` emails one request at a time, configured at the
    team's limit (8 a second in the shortened window), as `requests_per_second = 5` is for Resend's 5."""
    go = tmp_path / f"go-{dsn[:5]}"
    env = clean_environ({"PYTHONPATH": str(RUNNER.parent)})
    runners = [
        subprocess.Popen(
            [sys.executable, str(RUNNER), emu.base_url, emu.api_key, dsn, "0.5", "8", str(count), name, str(go)],
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        for name in ("one", "two")
    ]
    for runner in runners:
        assert runner.stdout is not None and runner.stdout.readline().strip() == "ready"
    go.touch()
    outputs = []
    for runner in runners:
        out, _ = runner.communicate(timeout=60)
        assert runner.returncode == 0
        outputs.append(json.loads(out))
    return outputs


def test_two_runner_processes_share_the_limit_through_postgresql(emu: ResendEmulator, tmp_path: Path) -> None:
    emu.limit_window(4, window=0.5)  # Resend's window, shortened: 8 requests a second

    with pg.fresh_schema() as dsn:
        outputs = run_runners(emu, dsn, tmp_path, 12)

    assert [len(o["sent"]) for o in outputs] == [12, 12] and all(not o["failed"] for o in outputs)
    # Together they keep under the limit: no 429 in ten runs on a quiet machine; one or two where a busy one stalls
    # the emulator's thread and the requests queued meanwhile arrive at once.
    assert Counter(statuses(emu))[200] == 24 and Counter(statuses(emu))[429] <= 2
    assert emu.most_in_one_window() <= 4
    assert sorted(emu.delivered_by_recipient().values()) == [1] * 24  # each email once
    order = [r["body"]["tags"][0]["value"] for r in emu.requests]
    assert order.index("two") < 11 and order.index("one") < 11  # they sent at the same time, in turns

    emu.reset()  # the control: the same two runners, each pacing alone, meet 429s
    emu.limit_window(4, window=0.5)
    alone = run_runners(emu, "local", tmp_path, 12)
    assert [len(o["sent"]) for o in alone] == [12, 12]
    assert Counter(statuses(emu))[429] >= 5  # 8 to 10 in ten runs
