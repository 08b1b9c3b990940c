"""`xmas tick`: send every due email once, record each outcome on its row.

lock → replay the batches an earlier tick left open → then, slice by slice: read due rows (the store filters
and sorts) → skip the suppressed and those without consent → hold what is outside the recipient's send window →
catch-up → hold what exceeds the frequency cap → render → record the batch → send → record the outcomes.
The time is checked between sends and between the rows it plans (core/tick_config.py: until shortly before the next
minute, when cron starts the next tick, or the budget; no send starts that would run into the next minute), and at
least one row is sent or recorded per tick, so any backlog drains at the mailer's (or the store's) pace. A row can
only fail itself: whatever goes wrong while one row is planned or rendered marks that row Failed with the reason,
and the tick moves on. Why each point a process can die at is safe: README, "Reliability". Where many runners share
the store (PostgreSQL) there is no lock: each slice is claimed for this runner with a lease, and only batches whose
lease has ended are replayed (README, "PostgreSQL").
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from datetime import datetime, timedelta
from itertools import islice

from ..clock import iso
from ..core.consent import refusal
from ..core.controls import Pause
from ..core.model import Contact, ScheduledEmail, State
from ..core.outgoing import OutgoingEmail
from ..core.plan import planned_due
from ..core.rows import unknown_sequence
from ..core.tokens import check_secret
from ..core.windows import next_opening
from ..engine import Engine
from ..engine.control import gate
from ..errors import StoreUnavailable
from ..lock import file_lock
from .report import Outcome, TickReport
from .sending import Ready, replay, send_group
from .signals import Abandoned, StopRequest, stop_on_signals
from .state import INFRASTRUCTURE, TickState, backoff, check_recipient, describe

__all__ = ["backoff", "tick"]

Progress = Callable[[int, int], None]


class _Tick(TickState):
    """A tick's state, and what it does with one due row."""

    # ------------------------------------------------------------------------------ one row

    def handle(
        self, row: ScheduledEmail, contact: Contact | None, deferred_in: dict[str, int], secret: str
    ) -> OutgoingEmail | None:
        """Skip, defer, fail or prepare one due row. Whatever goes wrong here is this row's alone."""
        try:
            if row.defect:  # core/rows.py: a damaged row is never sent; it fails, visibly, with the reason
                self.fail(row, row.defect)
                return None
            if self.gate.holding(row.sequence) is not None:  # paused: it stays as it is, due, until the resume
                self.report.held_by_pause += 1
                return None
            check_recipient(row.email)
            if contact is not None and contact.suppressed:
                why = f"contact is suppressed ({contact.suppressed_reason or 'unsubscribed'})"
                self.record(row, "skipped", why, {"state": State.SKIPPED, "note": why})
                return None
            if no_consent := refusal(self.campaign, row.sequence, contact, self.now):  # CASL: marketing only
                self.record(row, "skipped", no_consent, {"state": State.SKIPPED, "note": no_consent})
                return None
            zone = (contact.fields.get("timezone") if contact else None) or row.data.get("timezone")
            window = self.campaign.window(row.sequence, zone)
            if window and (opening := next_opening(self.now, window)) > self.now:  # it waits for the opening
                self.move(row, "held", opening, window.describe(), f"{window.describe()} ({iso(opening)})")
                return None
            if row.enrollment_key in deferred_in:  # catch-up: one email per enrollment per tick
                deferred_in[row.enrollment_key] += 1
                new_due = self.now + self.campaign.catch_up_gap * deferred_in[row.enrollment_key]
                self.move(row, "deferred", new_due, "catch-up", f"catch-up: moved to {iso(new_due)}")
                return None
            deferred_in[row.enrollment_key] = 0
            if self.capped(row):
                return None
            email = self.prepare(row, contact, secret)
            if email is not None and self.cap is not None and row.sequence in self.marketing:
                self.recent.setdefault(row.email, []).append(self.now)  # it goes: it counts for the next
            return email
        except INFRASTRUCTURE:
            raise
        except Exception as exc:  # a bad date, a recursive template, a bug: this row fails, the others go on
            self.fail(row, describe(exc))
            return None

    def move(self, row: ScheduledEmail, action: str, until: datetime, why: str, detail: str) -> None:
        """Hold or defer a row: its due time moves in the store (so Notion shows when it goes), why in its note,
        with the time the campaign planned it, kept however often it is moved (the order it is served in)."""
        self.record(row, action, detail, {"due": until, "note": f"{why}: was due {iso(planned_due(row))}"})

    def load_recent(self, emails: set[str]) -> None:
        """The marketing sends of these contacts inside the cap's span (1 query per slice), once per contact."""
        if self.cap is None:
            return
        new = {e for e in emails if e not in self.recent}
        if new:
            found = self.store.sent_since(new, self.marketing, self.now - self.cap[1])
            self.recent.update({e: found.get(e, []) for e in new})

    def capped(self, row: ScheduledEmail) -> bool:
        """Hold a marketing email that would exceed the frequency cap until the cap allows it."""
        if self.cap is None or row.sequence not in self.marketing:
            return False
        count, span = self.cap
        recent = sorted(t for t in self.recent.get(row.email, []) if t > self.now - span)
        if len(recent) < count:
            return False
        until = recent[-count] + span  # when the oldest of the last `count` sends leaves the span
        why = f"frequency cap ({self.campaign.campaign.frequency_cap}) until {iso(until)}"
        self.move(row, "held", until, why, why)
        return True

    def prepare(self, row: ScheduledEmail, contact: Contact | None, secret: str) -> OutgoingEmail | None:
        if why := unknown_sequence(row, self.campaign.sequences):  # core/rows.py: it waits, visibly, on every store
            self.record(row, "waiting", why, {} if row.last_error == why else {"last_error": why})
            return None
        template = self.template(row.template)
        if template is None or not template.active:
            why = "missing" if template is None else "not Active"
            self.record(
                row,
                "waiting",
                f"template {row.template} is {why} in {self.store.description}",
                {"last_error": f"template {row.template} is {why}: the email waits until it exists"},
            )
            return None
        from ..core.compose import compose

        return compose(row, contact, template, self.campaign, secret, self.counts(template), self.template)


def tick(
    engine: Engine,
    *,
    dry_run: bool = False,
    limit: int | None = None,
    progress: Progress | None = None,
    monotonic: Callable[[], float] = time.monotonic,
    stop: StopRequest | None = None,
) -> TickReport:
    now = engine.clock.now()
    stop = stop if stop is not None else StopRequest()
    lock: AbstractContextManager[object] = nullcontext()
    if engine.claims is None:  # one tick at a time; PostgreSQL's runners share the rows by claims instead
        lock = file_lock(engine.campaign.path(engine.campaign.tick.lock), what="tick", mode=engine.campaign.store.mode)
    with lock, stop_on_signals(stop):
        t = _Tick(engine, now, dry_run, stop, monotonic)
        unreachable = False
        try:
            _run(t, limit, progress)
        except Abandoned as abandoned:  # a second signal: what was in flight is sent again by the next tick
            t.report.stopped, unreachable = str(abandoned), abandoned.hung
        except StoreUnavailable:
            unreachable = True
            raise
        finally:
            # What this runner holds is free for the next at once; unless the store hung or failed (this would
            # hang or fail too): then its claims end with their lease, as those of a runner that died.
            if t.claims is not None and not unreachable:
                t.claims.finish(t.runner)
        return t.report


STOPPED_WINDOW = timedelta(days=1)


def _stopped(t: _Tick) -> None:
    """Dry run: the emails that were due in the last day but a rule stopped, and the rule ("booked at …",
    "superseded by …", "exit rule: …", "cancelled by operator")."""
    for row in t.store.stopped_emails(t.now - STOPPED_WINDOW, t.now):
        t.report.outcomes.append(Outcome(row, "stopped", row.note or "cancelled"))


def _run(t: _Tick, limit: int | None, progress: Progress | None) -> None:
    if t.dry_run:
        _stopped(t)
    journaled: set[str] = set()  # rows of entries left open: sent only as their entry, never in a new one
    t.gate = gate(t.engine, _apply_actions(t))
    t.report.paused = [p.describe() for p in t.gate.pauses]
    if t.gate.closed:  # the whole campaign is paused: nothing is sent, nothing read to be sent
        if not t.dry_run:
            _record_deliveries(t)
        return
    if t.journal is not None:
        for batch in t.journal.open_batches():
            journaled.update(batch.row_ids)
            if t.must_stop():
                return
            replay(t, t.journal, batch)
    if not t.dry_run:
        _record_deliveries(t)
        from ..engine.unfinished import complete

        complete(t.engine)  # enrollments an interruption left half-written (Notion): written whole now
    secret: str | None = None
    deferred_in: dict[str, int] = {}
    due = _due(t, limit)
    handled = 0
    while rows := due(t.slice_size()):
        rows = [row for row in rows if row.id not in journaled]  # the SQL stores leave them out themselves
        if not rows:
            continue
        t.report.due += len(rows)
        if t.must_stop():
            _leave(t, rows, due)
            return
        secret = secret or check_secret(t.engine.secret)
        contacts = t.store.get_contacts({r.email for r in rows if r.email})
        t.load_recent({r.email for r in rows if r.email})
        rows = sorted(rows, key=serving_order)
        ready: Ready = []
        unplanned: list[ScheduledEmail] = []  # not reached: the budget ran out while planning
        for index, row in enumerate(rows):
            if t.planning_over():
                unplanned = rows[index:]
                break
            email = t.handle(row, contacts.get(row.email), deferred_in, secret)
            if email is not None:
                ready.append((row, email))
        if t.dry_run:
            t.report.outcomes.extend(Outcome(r, "would-send", f"to {e.to}: {e.subject}") for r, e in ready)
        else:
            start = 0
            while start < len(ready):
                size = 0 if t.must_stop() else t.fitting(min(t.engine.mailer.max_batch, len(ready) - start))
                if size == 0:  # out of time, or what is left would run into the next minute: the next tick's
                    _leave(t, [row for row, _ in ready[start:]] + unplanned, due)
                    return
                began = t.elapsed()
                send_group(t, ready[start : start + size])
                t.took(size, t.elapsed() - began)
                start += size
                handled += size
                if progress:
                    progress(handled, t.report.due)
        if unplanned:
            _leave(t, unplanned, due)
            return


def _apply_actions(t: _Tick) -> list[Pause] | None:
    """What a person asked for in the store itself (Notion: the Action column, a ticked Unsubscribed, the control
    rows' Paused), applied before anything is sent; the pauses in force, when the store read them on the way."""
    read = getattr(t.store, "read_control", None)
    if not callable(read) or t.dry_run:
        return None
    from ..inbound.actions import apply_queued

    control = read(t.now)
    t.report.actions = apply_queued(t.engine, control)
    return list(control.pauses)


DELIVERY_SHARE = 0.25  # of the tick's sending time, at most, for recording queued delivery events before sending
MOST_DELIVERIES = 10_000  # delivery events one tick records, at most


def _record_deliveries(t: _Tick) -> None:
    """Apply the delivery events the webhook queued (opens, clicks, deliveries) to their rows, first: within a
    quarter of the sending time, at the store's pace, so sending always keeps most of the minute."""
    from ..inbound.delivery_queue import drain, open_queue, queue_path

    if not queue_path(t.engine).exists():  # no webhook has queued anything yet
        return

    limit = max(0.0, t.sending.stop) * DELIVERY_SHARE

    def enough() -> bool:
        return t.stop.requested or t._monotonic() - t._started > limit

    queue = open_queue(t.engine)
    try:
        most = min(MOST_DELIVERIES, t.store.requests_within(limit))  # at the store's pace, within the share
        t.report.deliveries = drain(t.engine, queue, most, enough).applied
    finally:
        queue.close()


Slices = Callable[[int], list[ScheduledEmail]]


def serving_order(row: ScheduledEmail) -> tuple[datetime, int, str]:
    """The order a slice's rows are served in: by the time the campaign planned them, not the time a window or the
    cap moved them to (rows held to one opening all have that due). So what waited longest goes first, whatever
    its sequence, and an enrollment's steps go in step order (their offsets are in order: campaign.toml checks)."""
    return (planned_due(row), row.step, row.id)


def _due(t: _Tick, limit: int | None) -> Slices:
    """The due rows, a slice at a time: read from one sorted query (one tick at a time), or claimed for this runner
    slice by slice (many runners: what is claimed is this tick's until its lease ends)."""
    left = limit
    if t.claims is None:
        rows = iter(t.store.due_emails(t.now, limit))
        return lambda n: list(islice(rows, n))
    claims = t.claims

    def claim(n: int) -> list[ScheduledEmail]:
        nonlocal left
        if left is not None:
            n = min(n, left)
        found = claims.claim_due(t.now, n, t.runner, t.lease_until) if n > 0 else []
        if left is not None:
            left -= len(found)
        return found

    return claim


def _leave(t: _Tick, not_reached: list[ScheduledEmail], due: Slices) -> None:
    """Count what this tick leaves for the next: exactly up to one more slice, then just "more". A runner among
    many gives its unreached claims back, so another takes them at once rather than when the lease ends."""
    if t.claims is not None:
        t.claims.release([row.id for row in not_reached], t.runner)
        waiting = t.claims.count_due(t.now)
        t.report.left_over = min(waiting, len(not_reached) + t.campaign.tick.slice)
        t.report.more_left = waiting > t.report.left_over
        return
    peek = due(t.campaign.tick.slice)
    t.report.left_over = len(not_reached) + len(peek)
    t.report.more_left = bool(due(1))
