"""Many tick runners on one PostgreSQL store: they run at once (no file lock), share the due emails by claims, and
take over the batch of a runner that died once its lease has ended. Every email is counted at the Resend emulator.

Nothing depends on luck: where runners must overlap, the emulator holds one runner's first request until the others
have ended; where a runner dies, it is SIGKILLed at an exact request. Leases are judged on the tick's clock, so a
lease expires by running the next tick with a later --now, not by waiting.
"""

from __future__ import annotations

import signal
import subprocess
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta

import pytest

from chaos.harness import T0, TICK_SLICE, ChaosProject, answered, at, describe, hold_when, kill_when
from chaos.test_overlap import assert_final_tick_and_status, wait_until_ended

pytestmark = pytest.mark.chaos

LEADS = 150
SLICE = TICK_SLICE or 0  # emails a runner claims and sends per slice: 20 (chaos.harness.configure)
LEASE = timedelta(minutes=2)  # [store] lease as shipped


def sent_count(result: subprocess.CompletedProcess[str]) -> int:
    """The "N sent" of a tick's summary line (0 when it sent nothing)."""
    line = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""
    for part in line.replace(":", ",").split(","):
        words = part.split()
        if len(words) == 2 and words[1] == "sent":
            return int(words[0])
    return 0


def one_held_while_the_others_run(
    p: ChaosProject, now: datetime, runners: int, meanwhile: Callable[[], bool] = lambda: True
) -> list[subprocess.CompletedProcess[str]]:
    """Start `runners` ticks at once; the first request any of them makes to Resend is held until all the others
    have ended (and `meanwhile` is checked then), so they really ran while it was in flight. Their results."""
    arrived, release = hold_when(p.resend, "received", p.resend.received_count + 1)
    procs = [p.start_tick(now) for _ in range(runners)]
    try:
        assert arrived.wait(30), "no runner reached Resend"
        wait_until_ended(procs, runners - 1, timeout=60)
        assert meanwhile(), "while one runner was held"
    finally:
        release.set()
    return [p.xmas.finish(proc) for proc in procs]


def test_four_runners_at_once_share_the_emails_and_send_each_exactly_once(postgres_resend: ChaosProject) -> None:
    p = postgres_resend
    leads = p.enroll_leads(LEADS)
    first = T0 + timedelta(minutes=1)
    # The first request to reach Resend is held until the three other runners have ended: they ran while it was
    # in flight, so they sent everything but its batch, without waiting for any lock.
    results = one_held_while_the_others_run(p, first, 4, lambda: len(p.resend.sent) == LEADS - SLICE)
    everything = "\n".join(describe(r) for r in results)
    assert [r.returncode for r in results] == [0, 0, 0, 0], everything
    sent = sorted(sent_count(r) for r in results)
    assert sum(sent) == LEADS and sent[-1] < LEADS and sent.count(0) <= 2, everything  # shared, not one alone
    assert p.delivered() == Counter({(lead, "lead-nurture", "1"): 1 for lead in leads})

    second = T0 + timedelta(days=2, minutes=1)  # step 2 for everyone: four runners again, free-running
    procs = [p.start_tick(second) for _ in range(4)]
    results = [p.xmas.finish(proc) for proc in procs]
    assert all(r.returncode == 0 for r in results) and sum(map(sent_count, results)) == LEADS, everything
    assert_final_tick_and_status(p, second)
    assert p.delivered() == Counter({(lead, "lead-nurture", step): 1 for lead in leads for step in ("1", "2")})


@pytest.mark.parametrize("event", ["received", "answered"])
def test_a_runner_killed_mid_batch_leaves_a_lease_another_takes_over_and_sends_under_its_key(
    postgres_resend: ChaosProject, event: str
) -> None:
    """SIGKILL a runner while its first batch is at Resend (in flight, or answered but not recorded). A runner in
    the same minute leaves that batch alone (its lease is live) and sends the rest; one after the lease has ended
    takes it over and sends exactly that membership again under the same key, which Resend answers once."""
    p = postgres_resend
    leads = p.enroll_leads(40)
    procs: list[subprocess.Popen[bytes]] = []
    nth = p.resend.received_count + 1
    fired = kill_when(p.resend, event, nth, lambda: procs[0] if procs else None)
    done = answered(p.resend, nth)
    now = T0 + timedelta(minutes=1)
    procs.append(p.start_tick(now))
    killed = p.xmas.finish(procs[0])
    assert fired.wait(10) and done.wait(10) and killed.returncode == -signal.SIGKILL, describe(killed)
    [first] = [r for r in p.resend.requests if r["method"] == "POST"]
    key = first["headers"]["idempotency-key"]
    held = {m["to"][0] for m in p.resend.sent}
    assert first["status"] == 200 and len(held) == SLICE  # Resend sent the dead runner's batch

    same_minute = p.tick(now)  # the lease is live: the batch is not touched, the rest goes
    assert same_minute.returncode == 0 and sent_count(same_minute) == 40 - SLICE, describe(same_minute)
    assert [r["headers"]["idempotency-key"] for r in p.resend.requests if r["method"] == "POST"].count(key) == 1
    _, status = p.status(now)
    assert status["overdue"] == SLICE, status  # the batch's rows: outcome unknown, still due
    [flight] = status["in_flight"]  # and who holds them, until when
    assert flight["emails"] == SLICE and flight["lease_until"] == at(now + LEASE) and flight["runner"], flight
    shown = p.xmas.run(["status", "--now", at(now)], timeout=60).stdout
    assert f"being sent by {flight['runner']} (lease until {at(now + LEASE)})" in shown, shown

    before_expiry = p.tick(now + LEASE - timedelta(seconds=1))
    assert sent_count(before_expiry) == 0 and "0 due" in before_expiry.stdout, describe(before_expiry)

    later = now + LEASE  # the lease has ended on the tick's clock: taken over, sent again under the same key
    takeover = p.tick(later)
    assert takeover.returncode == 0 and sent_count(takeover) == SLICE, describe(takeover)
    posts = [r for r in p.resend.requests if r["method"] == "POST"]
    assert [r["headers"]["idempotency-key"] for r in posts].count(key) == 2 and posts[-1]["status"] == 200
    assert {
        tuple(sorted(r["body"][i]["to"][0] for i in range(len(r["body"]))))
        for r in posts
        if r["headers"]["idempotency-key"] == key
    } == {tuple(sorted(held))}
    assert_final_tick_and_status(p, later)
    assert p.status(later)[1]["in_flight"] == []
    assert p.delivered() == Counter({(lead, "lead-nurture", "1"): 1 for lead in leads})


def test_catch_up_holds_across_runners_a_contact_is_never_split(postgres_resend: ChaosProject) -> None:
    """After a month down, every lead has all five lead-nurture emails overdue. Catch-up sends one per enrollment
    per tick and moves the rest a gap apart; with two runners at once that holds only if one runner gets all of a
    contact's due rows (a claim takes them together). Runner A's first request is held until B has ended, so B
    really ran while A held its contacts."""
    p = postgres_resend
    leads = p.enroll_leads(60)
    late = T0 + timedelta(days=30)
    results = one_held_while_the_others_run(p, late, 2)
    everything = "\n".join(describe(r) for r in results)
    assert [r.returncode for r in results] == [0, 0], everything
    assert all(sent_count(r) > 0 for r in results), everything  # both sent: the contacts were shared out
    assert p.delivered() == Counter({(lead, "lead-nurture", "1"): 1 for lead in leads}), everything
    _, status = p.status(late)
    assert status["overdue"] == 0 and status["counts"]["lead-nurture"]["Scheduled"] == 4 * len(leads), status
