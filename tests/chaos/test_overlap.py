"""Overlapping ticks: `xmas tick` subprocesses that run at the same time on one SQLite + Resend project.

Nothing depends on luck: the Resend emulator holds the lock holder's first request (a hook at "received") until
every other tick has ended, so they all really ran while it held the lock. Emails are counted at the emulator.
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections import Counter
from datetime import datetime, timedelta

import pytest

from chaos.harness import T0, TICK_SLICE, ChaosProject, answered, at, describe, hold_when, kill_when

pytestmark = pytest.mark.chaos

LEADS = 150
# With slices (`[tick] slice` 20) a tick sends 40 due emails in two requests: act at the second, mid-tick.
MID_TICK = 2 if TICK_SLICE is not None and TICK_SLICE < 40 else 1


def wait_until_ended(procs: list[subprocess.Popen[bytes]], count: int, timeout: float = 30.0) -> None:
    """Wait until `count` of `procs` have exited."""
    deadline = time.monotonic() + timeout
    while sum(p.poll() is not None for p in procs) < count:
        if time.monotonic() > deadline:
            raise AssertionError(f"only {sum(p.poll() is not None for p in procs)} of {count} ticks ended in time")
        time.sleep(0.02)


def overlapping_ticks(p: ChaosProject, now: datetime, ticks: int) -> list[subprocess.CompletedProcess[str]]:
    """Start `ticks` ticks together; the first request any of them makes to Resend is held until all the others
    have ended. Returns their results."""
    arrived, release = hold_when(p.resend, "received", p.resend.received_count + 1)
    procs = [p.start_tick(now) for _ in range(ticks)]
    try:
        assert arrived.wait(30), "no tick reached Resend"
        wait_until_ended(procs, ticks - 1)
        assert p.resend.in_flight == 0 and p.resend.received_count >= 1
    finally:
        release.set()
    return [p.xmas.finish(proc) for proc in procs]


def assert_one_ran_and_the_others_were_busy(results: list[subprocess.CompletedProcess[str]]) -> None:
    everything = "\n".join(describe(r) for r in results)
    assert sorted(r.returncode for r in results) == [0] + [5] * (len(results) - 1), everything
    for result in results:
        if result.returncode == 5:
            assert "another tick is running" in result.stderr and result.stdout == "", everything
        else:
            assert f"{LEADS} sent" in result.stdout, everything


def assert_final_tick_and_status(p: ChaosProject, now: datetime) -> None:
    final = p.tick(now)
    assert final.returncode == 0 and f"tick {at(now)}: 0 due" in final.stdout, describe(final)
    code, status = p.status(now)
    assert code == 0 and status["overdue"] == 0 and status["problems"] == [], status


def test_two_then_five_ticks_started_together_send_each_email_exactly_once(sqlite_resend: ChaosProject) -> None:
    p = sqlite_resend
    leads = p.enroll_leads(LEADS)

    first = T0 + timedelta(minutes=1)
    assert_one_ran_and_the_others_were_busy(overlapping_ticks(p, first, 2))
    assert p.delivered() == Counter({(lead, "lead-nurture", "1"): 1 for lead in leads})

    second = T0 + timedelta(days=2, minutes=1)  # lead-nurture's step 2 is due for everyone
    assert_one_ran_and_the_others_were_busy(overlapping_ticks(p, second, 5))
    assert_final_tick_and_status(p, second)
    assert p.delivered() == Counter({(lead, "lead-nurture", step): 1 for lead in leads for step in ("1", "2")})


def test_a_tick_still_running_when_cron_starts_the_next_one(sqlite_resend: ChaosProject) -> None:
    p = sqlite_resend
    leads = p.enroll_leads(40)
    arrived, release = hold_when(p.resend, "received", p.resend.received_count + MID_TICK)
    slow = p.start_tick(T0 + timedelta(minutes=1))
    try:
        assert arrived.wait(30), "the first tick never reached Resend"
        sent_so_far = len(p.resend.sent)
        cron = p.tick(T0 + timedelta(minutes=2))  # cron's next minute, while the first one still runs
        assert cron.returncode == 5 and "another tick is running" in cron.stderr, describe(cron)
        assert len(p.resend.sent) == sent_so_far  # it sent nothing
    finally:
        release.set()
    slow_result = p.xmas.finish(slow)
    assert slow_result.returncode == 0 and "40 sent" in slow_result.stdout, describe(slow_result)
    assert_final_tick_and_status(p, T0 + timedelta(minutes=3))
    assert p.delivered() == Counter({(lead, "lead-nurture", "1"): 1 for lead in leads})


@pytest.mark.parametrize("event", ["received", "answered"])
def test_a_tick_killed_during_a_send_or_before_recording_it_sends_nothing_twice(
    sqlite_resend: ChaosProject, event: str
) -> None:
    """SIGKILL at the second request to Resend (mid-tick): in flight ("received": applied at the emulator after the
    process died) or answered but not recorded. The next tick sends it again under the same key: Resend replays it."""
    p = sqlite_resend
    leads = p.enroll_leads(40)
    procs: list[subprocess.Popen[bytes]] = []
    nth = p.resend.received_count + MID_TICK
    fired = kill_when(p.resend, event, nth, lambda: procs[0] if procs else None)
    done = answered(p.resend, nth)
    procs.append(p.start_tick(T0 + timedelta(minutes=1)))
    killed = p.xmas.finish(procs[0])
    assert fired.wait(10) and done.wait(10) and killed.returncode == -signal.SIGKILL, describe(killed)
    posts = [r for r in p.resend.requests if r["method"] == "POST"]
    assert len(posts) == MID_TICK and all(r["status"] == 200 for r in posts)  # all applied by Resend
    assert len(p.resend.sent) == len(leads)  # so every email went out once already

    after = p.tick(T0 + timedelta(minutes=2))
    replayed = 40 - (TICK_SLICE or 0) * (MID_TICK - 1)  # recorded as sent now: the killed request's and later
    assert after.returncode == 0 and f": {replayed} sent" in after.stdout, describe(after)
    keys = Counter(r["headers"].get("idempotency-key") for r in p.resend.requests)
    assert keys[posts[-1]["headers"]["idempotency-key"]] == 2  # the killed tick's request, sent again as it was
    assert len(p.resend.sent) == len(leads)  # and replayed by Resend, not sent twice
    assert p.delivered() == Counter({(lead, "lead-nurture", "1"): 1 for lead in leads})
    code, status = p.status(T0 + timedelta(minutes=2))
    assert code == 0 and status["counts"]["lead-nurture"] == {"Sent": 40, "Scheduled": 160}, status
