"""Crash anywhere: `xmas tick` subprocesses killed at ≥ 20 points spread over the tick, then ticked until nothing is
due; every email is delivered exactly once, counted at the Resend emulator.

The points: at the Nth request a tick makes to Resend, while it is in flight ("received": the emulator applies it
only after the process is dead, so its answer goes nowhere) or just answered ("answered": the process dies before it
records the outcome, or while it does); on Notion, at the Nth row update (mid-recording) and at the second page of
the due query (mid-pagination); and after a fixed time (start-up, rendering, before the first send). The same runs
with SIGTERM, where a tick must stop cleanly (exit 6, or 0 when it finished first) and lose nothing.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from chaos.harness import T0, ChaosProject, add_hook, describe, hold_when, kill_after

pytestmark = pytest.mark.chaos

STEPS = 5  # lead-nurture: minutes 0..4 in testing mode


def kill_on(
    emu: Any,
    event: str,
    nth: int,
    proc: Callable[[], subprocess.Popen[bytes] | None],
    sig: int,
    method: str | None = None,
    path: str | None = None,
) -> threading.Event:
    """Signal the tick at the nth request (of this method, to a path containing `path`) reaching `event`."""
    fired, seen = threading.Event(), [0]

    def hook(ev: str, index: int, m: str, p: str) -> None:
        if fired.is_set() or ev != event or (method and m != method) or (path and path not in p):
            return
        seen[0] += 1
        if seen[0] != nth:
            return
        target = proc()
        if target is not None and target.poll() is None:
            target.send_signal(sig)
            if sig == signal.SIGKILL:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    target.wait(timeout=10)
        fired.set()

    add_hook(emu, hook)
    return fired


def kill_on_write(emu: Any, nth: int, proc: Callable[[], subprocess.Popen[bytes] | None], db: Path) -> None:
    """Mid-recording: once the nth Resend request was answered, SIGKILL the tick at the first write to the SQLite
    file after it (a commit writes the write-ahead log: its size or time changes), i.e. while it records."""
    wal = db.with_name(db.name + "-wal")

    def stamp() -> tuple[int, int]:
        try:
            found = wal.stat()
        except FileNotFoundError:
            return (0, 0)
        return (found.st_size, found.st_mtime_ns)

    def watch(before: tuple[int, int]) -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            target = proc()
            if target is None or target.poll() is not None:
                return
            if stamp() != before:
                target.send_signal(signal.SIGKILL)
                return
            time.sleep(0.0002)

    seen = [0]

    def hook(ev: str, index: int, m: str, p: str) -> None:
        if ev == "answered":
            seen[0] += 1
            if seen[0] == nth:
                threading.Thread(target=watch, args=(stamp(),), daemon=True).start()

    add_hook(emu, hook)


Point = tuple[str, str, int, str | None, str | None]  # (server, event, nth, method, path) or ("timer", secs...)


def with_work(p: ChaosProject, now: datetime, need: int) -> datetime:
    """The first minute from `now` on at which at least `need` emails are due (so that the point meets a tick with
    work to do), or the last one looked at."""
    for _ in range(2 * STEPS):
        _, status = p.status_in_process(now)
        if status is not None and status["overdue"] >= need:
            return now
        now += timedelta(minutes=1)
    return now


def run_points(
    p: ChaosProject, points: list[Point], sig: int, start: datetime, need: int = 8
) -> tuple[list[int], datetime]:
    """One tick per point, each signalled at its point, the clock moved on whenever fewer than `need` emails are
    due; returns the exit codes and the clock's last time.

    With SIGTERM, a tick must exit 6 (stopped, what it sent recorded) or 0 (it finished first). Only a signal that
    arrives while Python is still starting or already shutting down, outside the tick, may end the process the
    default way."""
    codes = []
    originals = (p.resend.on_request, p.notion.on_request if p.notion else None)
    now = start
    for server, event, nth, method, path in points:
        now = with_work(p, now, need)
        started: list[subprocess.Popen[bytes]] = []

        def the_tick(started: list[subprocess.Popen[bytes]] = started) -> subprocess.Popen[bytes] | None:
            return started[0] if started else None

        timer, release = None, None
        if server == "timer":
            # The tick's first request waits at the emulator until the timer has fired: the kill lands inside the
            # tick (starting up, reading, rendering, or with that request in flight) however fast this machine is.
            first = p.notion if p.notion is not None else p.resend
            _, release = hold_when(first, "received", first.received_count + 1, timeout=nth / 10 + 5)
            proc = p.start_tick(now)
            timer = kill_after(proc, nth / 10, sig)
            threading.Timer(nth / 10 + 0.2, release.set).start()  # then the request goes on (SIGTERM: it finishes)
        elif server == "sqlite":  # mid-recording
            db = p.path / ".xmas" / "xmas.db"
            kill_on_write(p.resend, nth, the_tick, db)
            proc = p.start_tick(now)
        else:
            emu = p.resend if server == "resend" else p.notion
            kill_on(emu, event, nth, the_tick, sig, method, path)
            proc = p.start_tick(now)
        started.append(proc)
        result = p.xmas.finish(proc, timeout=90)
        if timer is not None:
            timer.cancel()
        if release is not None:
            release.set()
        assert "Traceback" not in result.stderr, describe(result)
        if sig == signal.SIGTERM and result.returncode == -signal.SIGTERM:
            # before xmas began (nothing printed) or after it ended (its summary printed): never in the middle
            ended = any(line.startswith("tick 20") for line in result.stdout.splitlines())
            assert server == "timer" and (result.stdout == "" or ended), describe(result)
        codes.append(result.returncode)
        p.resend.on_request = originals[0]
        if p.notion is not None:
            p.notion.on_request = originals[1]
    return codes, now


def drain(p: ChaosProject, start: datetime, ticks: int = 15) -> None:
    """Tick (a subprocess), a minute apart, until nothing is Scheduled; each of these must succeed. Whether anything
    is left is read in-process (no process start per tick); the last word is `xmas status` as a subprocess."""
    now = start
    for _ in range(ticks):
        result = p.tick(now)
        assert result.returncode == 0, describe(result)
        _, status = p.status_in_process(now)
        assert status is not None, f"status at {now} gave no document"
        if not status["next_due"] and not status["overdue"]:
            code, status = p.status(now)
            assert code == 0 and not status["next_due"] and not status["overdue"], status
            return
        now += timedelta(minutes=1)
    raise AssertionError(f"still due after {ticks} ticks: {status}")


def assert_signalled(points: list[Point], codes: list[int], sig: int, stopped: int) -> None:
    """SIGKILL: at least 20 kills landed inside a running tick (the others found it finished). SIGTERM: a signalled
    tick stops after the send in flight (6), one signalled during its last send just ends (0), at least `stopped`
    of them stopped."""
    if sig == signal.SIGKILL:
        missed = [(n, point, code) for n, (point, code) in enumerate(zip(points, codes, strict=True)) if code != -9]
        assert len(points) - len(missed) >= 20, missed
    else:
        assert set(codes) <= {0, 6, -signal.SIGTERM} and codes.count(6) >= stopped, codes


def assert_each_once(p: ChaosProject, leads: list[str]) -> None:
    delivered = p.delivered()
    expected = Counter({(lead, "lead-nurture", str(step)): 1 for lead in leads for step in range(1, STEPS + 1)})
    extra = {k: v for k, v in delivered.items() if v > 1}
    missing = [k for k in expected if k not in delivered]
    assert not extra and not missing, f"duplicates: {extra}; missing: {missing[:10]}"
    assert delivered == expected


SQLITE_POINTS: list[Point] = [  # interleaved, so that each kind meets a tick with work left
    point
    for group in zip(
        [("resend", ev, n, None, None) for n in (1, 2, 3, 1, 2) for ev in ("received", "answered")],
        [("timer", "", tenths, None, None) for tenths in (3, 5, 6, 7, 8, 9, 10, 11, 12, 13)],
        [("sqlite", "recording", n, None, None) for n in (1, 2, 3, 1, 2, 1, 2, 3, 1, 2)],
        strict=True,
    )
    for point in group
]


# A SIGTERMed tick stops after the batch in flight, so each point consumes one batch: signal at the first request
# (in flight, or just answered), with timers in between.
SQLITE_TERM_POINTS: list[Point] = [
    *(("resend", ev, 1, None, None) for _ in range(6) for ev in ("received", "answered")),
    *(("timer", "", tenths, None, None) for tenths in (5, 8, 10, 12, 14, 16, 18, 20)),
]


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_sqlite_batches_killed_anywhere_deliver_every_email_once(sqlite_resend: ChaosProject, sig: int) -> None:
    p = sqlite_resend
    p.set("campaign", testing=True)
    leads = p.enroll_leads(100)
    points = SQLITE_POINTS if sig == signal.SIGKILL else SQLITE_TERM_POINTS
    assert len(points) >= 20
    codes, now = run_points(p, points, sig, T0)
    assert_signalled(points, codes, sig, stopped=10)
    drain(p, now)
    assert_each_once(p, leads)
    keys = Counter(r["headers"]["idempotency-key"] for r in p.resend.requests if r["path"] == "/emails/batch")
    if sig == signal.SIGKILL:
        assert max(keys.values()) >= 2  # some batch was sent again under its key: the replay was exercised
    else:
        assert max(keys.values()) == 1  # a clean stop records what it sent: nothing needs sending again


NOTION_POINTS: list[Point] = [
    ("notion", "received", 2, "POST", "/query"),  # mid-pagination: the due query's second page
    *(("resend", ev, n, None, None) for n in (1, 4) for ev in ("received", "answered")),
    *(("notion", ev, n, "PATCH", None) for n in (1, 2, 5, 12) for ev in ("received", "answered")),
    *(("timer", "", tenths, None, None) for tenths in (5, 10, 15, 20, 30)),
    ("notion", "received", 2, "POST", "/query"),
    ("resend", "answered", 2, None, None),
    ("resend", "received", 3, None, None),
    ("notion", "answered", 3, "PATCH", None),
    ("notion", "received", 8, "PATCH", None),
    ("timer", "", 25, None, None),
]


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_notion_killed_anywhere_delivers_every_email_once(notion_resend: ChaosProject, sig: int) -> None:
    p = notion_resend
    p.set("campaign", testing=True)
    leads = p.enroll_leads(26)  # 130 rows: all due at once, the due query takes two pages
    assert len(NOTION_POINTS) >= 20
    codes, now = run_points(p, NOTION_POINTS, sig, T0 + timedelta(minutes=STEPS))
    assert_signalled(NOTION_POINTS, codes, sig, stopped=5)
    drain(p, now)
    assert_each_once(p, leads)
