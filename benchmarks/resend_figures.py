"""Sending at Resend's ceiling: a drain of due emails by 1, 2 and 4 tick runners at once on PostgreSQL, through
Resend batches of 100, against tests/resend_emulator.py counting requests in Resend's 1-second window at a team
limit of 2 and of 5 requests a second. The ceiling is the limit times 100 emails a second; the goal 0.9 of it, a
handful of 429s at most, every email exactly once (counted at the emulator).

`[mailer] requests_per_second` stays as shipped (5, Resend's documented default), whatever the emulator's limit: at 2
the runners must learn it from the answers' ratelimit-limit, as they would on a team whose limit is the older 2.
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from dataclasses import dataclass

from postgres_figures import (
    RESEND_KEY,
    RunnerTick,
    _due_left,
    _fetch,
    check_drain,
    clone_pg_contacts,
    connect,
    pg_project,
    start_round,
    vacuum,
)
from support import (
    Context,
    Result,
    Row,
    Shell,
    Spread,
    address,
    after,
    enroll_seed,
    shipped,
    shipped_tick_time,
    use_test_emulators,
)

GOAL = 0.9
LIMITS = (2, 5)
RUNNERS = (1, 2, 4)
EMAILS, QUICK_EMAILS = 6_000, 1_000
BATCH = 100  # emails per request: Resend's most


@dataclass
class CeilingDrain:
    limit: int
    runners: int
    emails: int
    wall: float  # first runner started to last one exited
    span: float  # the emulator's first request to its last (its clock)
    statuses: Counter[int]
    ticks: list[RunnerTick]
    checks: list[str]

    @property
    def ceiling(self) -> float:
        return self.limit * BATCH

    @property
    def ratio(self) -> float:
        """Emails a second over the drain, as a share of the ceiling."""
        return self.emails / self.wall / self.ceiling

    @property
    def sending_ratio(self) -> float:
        """The same over the sending itself: n requests fill n windows' worth of the limit from the first one on
        (the first request's window to the end of the last request's slot), start-up left out."""
        requests = self.statuses[200]
        return self.emails / (self.span + 1 / self.limit) / self.ceiling if requests else 0.0


def drain(ctx: Context, limit: int, runners: int, emails: int) -> CeilingDrain:
    use_test_emulators()
    from resend_emulator import ResendEmulator

    with pg_project(ctx, f"ceiling-{limit}-{runners}") as project:
        from support import set_keys

        set_keys(project.toml, "mailer", {"backend": "resend"})  # requests_per_second as shipped
        seed = address("lead-nurture", 0)
        enroll_seed(project.shell, "lead-nurture", 0)
        clone_pg_contacts(project.dsn, {seed: "lead-nurture"}, range(1, emails))
        vacuum(project)
        now = after(minutes=1)
        expected = {
            (r[0], int(r[1])): r[2]
            for r in _fetch(
                project, "SELECT email, step, id FROM emails WHERE state = 'Scheduled' AND due <= %s", (now,)
            )
        }
        if len(expected) != emails:
            raise RuntimeError(f"{len(expected)} emails due at {now}, not {emails}: the set-up is wrong")
        with ResendEmulator(api_key=RESEND_KEY, rate_limit=None) as emu, connect(project.dsn) as watch:
            emu.limit_window(limit)  # Resend's: `limit` requests in each 1-second window
            env = {"RESEND_API_KEY": RESEND_KEY, "RESEND_API_URL": emu.base_url}
            shell = Shell(project.folder, {**project.shell.env, **env}, project.shell.logs)
            began = time.monotonic()
            ticks = start_round(shell, runners, now, 1)
            wall = time.monotonic() - began
            failed = [t.done.describe() for t in ticks if t.done.code != 0]
            if failed:
                raise RuntimeError(f"limit {limit}, {runners} runner(s): " + "; ".join(failed))
            left = _due_left(watch, now)
            if left:
                raise RuntimeError(f"limit {limit}, {runners} runner(s): {left} emails still due after one round")
            times = [at for at, _ in emu.window_log]
            statuses = Counter(int(r["status"]) for r in emu.requests)
            sent = emu.sent
        checks = check_drain(project, expected, sent, ticks)
    return CeilingDrain(limit, runners, emails, wall, max(times) - min(times), statuses, ticks, checks)


def resend_ceiling_figure(ctx: Context) -> Result:
    emails = QUICK_EMAILS if ctx.quick else EMAILS
    limits, runner_counts = ((5,), (1, 2)) if ctx.quick else (LIMITS, RUNNERS)
    repetitions = 1 if ctx.quick else min(ctx.runs, 2)
    drains: dict[tuple[int, int], list[CeilingDrain]] = {}
    for repetition in range(1, repetitions + 1):
        for limit in limits:
            for runners in runner_counts:
                done = drain(ctx, limit, runners, emails)
                drains.setdefault((limit, runners), []).append(done)
                print(
                    f"  run {repetition}, limit {limit}/s, {runners} runner(s): {emails:,} emails in {done.wall:.1f} s "
                    f"({done.ratio:.2f} of the ceiling; sending {done.sending_ratio:.2f}), "
                    f"{done.statuses[429]} answered 429",
                    file=sys.stderr,
                    flush=True,
                )
    rows = []
    for (limit, runners), runs in drains.items():
        whole, sending = Spread.of(d.ratio for d in runs), Spread.of(d.sending_ratio for d in runs)
        refused = max(d.statuses[429] for d in runs)
        rows.append(
            Row(
                f"Resend at {limit} requests/s, {emails:,} emails, {runners} runner{'s' if runners > 1 else ''} at "
                f"once: share of the ceiling ({limit * BATCH} emails/s)",
                f"{sending.show('', 2)} sending (first request to last), {whole.show('', 2)} over the whole drain "
                f"(start-up included); {refused} answered 429",
                f"≥ {GOAL} sending; a handful of 429s",
                sending.median >= GOAL and refused <= 5,
            )
        )
    total = sum(len(runs) for runs in drains.values())
    first = next(iter(drains.values()))[0]
    rows.append(
        Row(
            "Resend ceiling drains: every email arrived exactly once (counted at the emulator)",
            f"yes, in all {total} drains",
            "each once, none missing",
            True,
        )
    )
    method = (
        f"For each limit ({', '.join(map(str, limits))} requests/s) and 1, 2 or 4 runners, a fresh PostgreSQL schema "
        f"with {emails:,} lead-nurture contacts whose first email is due (one enrolled through `xmas enroll`, the "
        'others copies of its rows made in SQL), `[mailer] backend = "resend"` with `requests_per_second` as shipped '
        f"({shipped('mailer', 'requests_per_second')}), {shipped_tick_time()}; tests/resend_emulator.py "
        "counting requests in fixed 1-second windows at the limit (ratelimit-* headers and retry-after as Resend "
        "sends them), a new one per drain. The runners (`xmas tick --now T --json`, started at once) share "
        "the send budget in the database (migration 0005). Share of the ceiling = emails ÷ (wall time × limit × "
        "100): over the sending (the emulator's first request to its last, plus one slot: what the pacing reaches; "
        "the goal), and over the whole drain (first start to last exit: each process's start-up, some 0.7 s of CPU, "
        "included, which a busy machine stretches). "
        f"{repetitions} repetition(s). Each drain is then checked, or the figure fails: "
        + "; ".join(first.checks)
        + "."
    )
    details = [
        "| limit | runners | wall | share (drain) | share (sending) | requests: 200 / 429 | emails per runner | "
        "each runner's wall, CPU |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for (limit, runners), runs in drains.items():
        for d in runs:
            per_runner = ", ".join(f"{len(t.sent_ids):,}" for t in d.ticks)
            usage = ", ".join(f"{t.done.wall:.1f} s, {t.cpu:.1f} s" for t in d.ticks)
            details.append(
                f"| {limit} | {runners} | {d.wall:.1f} s | {d.ratio:.3f} | {d.sending_ratio:.3f} | "
                f"{d.statuses[200]} / {d.statuses[429]} | {per_runner} | {usage} |"
            )
    return Result(rows, method, details)
