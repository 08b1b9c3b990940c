"""`xmas tick`: send every due email once, record each outcome on its row.

lock → replay the batches an earlier tick left open → then, slice by slice: read due rows (the store filters
and sorts) → skip the suppressed and those without consent → hold what is outside the recipient's send window →
catch-up → hold what exceeds the frequency cap → render → record the batch → send → record the outcomes.
The time budget is checked between sends, and at least one send goes out per tick, so any backlog drains
at the mailer's pace. A row can only fail itself: whatever goes wrong while one row is planned or rendered
marks that row Failed with the reason, and the tick moves on. Why each point a process can die at is safe:
README, "Reliability". Where many runners share the store (PostgreSQL) there is no lock: each slice is claimed
for this runner with a lease, and only batches whose lease has ended are replayed (README, "PostgreSQL").
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from datetime import datetime, timedelta
from itertools import islice
from typing import cast

from ..clock import iso
from ..core import journal
from ..core.consent import refusal
from ..core.model import Contact, ScheduledEmail, State, Template
from ..core.outgoing import OutgoingEmail, SendResult, batch_key
from ..core.tokens import check_secret
from ..core.variables import Counts
from ..core.variants import variant_of
from ..core.windows import next_opening
from ..engine import Engine, campaign_counts
from ..errors import Busy, ConfigError, MailerUnavailable, StoreUnavailable
from ..lock import file_lock
from ..stores.base import Batch, Changes, ClaimingStore
from .report import DRY_RUN, Outcome, TickReport
from .signals import Abandoned, StopRequest, stop_on_signals

Progress = Callable[[int, int], None]
Ready = list[tuple[ScheduledEmail, OutgoingEmail]]
COUNTED = frozenset({"spots_remaining", "bookings_count"})
# Errors of the tick's surroundings (store, mailer, configuration): they stop the tick. Anything else raised
# while one row is handled is that row's problem.
INFRASTRUCTURE = (StoreUnavailable, MailerUnavailable, Busy, ConfigError)
READS_PER_SLICE = 3  # a rate-limited store's reads per slice: due rows, contacts, templates
KEY_MARGIN = timedelta(hours=1)  # replay a batch only while the provider surely still knows its key


def check_recipient(address: str) -> None:
    """The store may hold anything a person typed: never hand the mailer an address that is not one. (Imported
    here: an idle tick never loads the validator.)"""
    from email_validator import EmailNotValidError, validate_email

    try:
        validate_email(address, check_deliverability=False)
    except EmailNotValidError as exc:
        raise ValueError(f"the recipient {address!r} is not an email address ({exc})") from None


def backoff(attempts: int) -> timedelta:
    """Wait before the next attempt after a transient failure: 1, 2, 4 … minutes, at most an hour."""
    return timedelta(minutes=min(60, 2 ** max(0, attempts - 1)))


def describe(exc: BaseException) -> str:
    """One line for a row's Last Error: what was raised, never a traceback."""
    text = " ".join(str(exc).split())[:400]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class _Tick:
    def __init__(
        self, engine: Engine, now: datetime, dry_run: bool, stop: StopRequest, monotonic: Callable[[], float]
    ) -> None:
        self.engine = engine
        self.campaign = engine.campaign
        self.store = engine.store
        self.now = now
        self.dry_run = dry_run
        self.stop = stop
        self.templates: dict[str, Template | None] = {}
        self.report = TickReport(now=now, dry_run=dry_run)
        self._counts: Counts | None = None
        self._monotonic = monotonic
        self._started = monotonic()
        self.sends = 0  # mailer calls made: the budget never stops a tick before its first
        self.cap = self.campaign.cap
        self.marketing = frozenset(self.campaign.marketing)
        self.recent: dict[str, list[datetime]] = {}  # marketing sends per contact inside the cap's span
        # Many runners (PostgreSQL): this tick's name on its claims and batches, and when they lapse (tick's clock)
        self.runner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.lease_until = now + self.campaign.lease
        self.claims = cast(ClaimingStore, self.store) if self.store.many_runners and not dry_run else None

    # ------------------------------------------------------------------------------ bookkeeping

    def must_stop(self) -> bool:
        """Stop before the next send? On a signal at once; on the budget only once something was sent."""
        if self.stop.requested:
            self.report.stopped = self.stop.signal
            return True
        return self.sends > 0 and self._monotonic() - self._started > self.campaign.tick.budget_seconds

    def slice_size(self) -> int:
        """The next slice: [tick] slice rows, or fewer where the store is rate-limited (Notion): no more than the
        time left can record, one request per email, so a tick does not read rows and contacts it cannot send."""
        rate = self.store.request_rate
        if rate is None:
            return self.campaign.tick.slice
        left = self.campaign.tick.budget_seconds - (self._monotonic() - self._started)
        return max(1, min(self.campaign.tick.slice, int(left * rate) - READS_PER_SLICE))

    def counts(self, template: Template) -> Counts:
        """Campaign counts from the store, read once per tick and only for a template that shows them."""
        from ..core.render import variables_used

        if not variables_used(template) & COUNTED:
            return Counts()
        if self._counts is None:
            self._counts = campaign_counts(self.engine)
        return self._counts

    def record(self, row: ScheduledEmail, action: str, detail: str, changes: Changes) -> None:
        if self.dry_run:
            action = DRY_RUN[action]
        else:
            self.store.update_email(row, changes)
        self.report.outcomes.append(Outcome(row, action, detail))

    def fail(self, row: ScheduledEmail, why: str) -> None:
        """Mark one row Failed. If even that cannot be written (the row was deleted...), the report still says so."""
        try:
            self.record(row, "failed", why, {"state": State.FAILED, "last_error": why})
        except INFRASTRUCTURE:
            raise
        except Exception as exc:
            self.report.outcomes.append(Outcome(row, "failed", f"{why} (not recorded: {describe(exc)})"))

    def template(self, template_id: str) -> Template | None:
        if template_id not in self.templates:
            self.templates[template_id] = self.store.get_template(template_id)
        return self.templates[template_id]

    # ------------------------------------------------------------------------------ one row

    def handle(
        self, row: ScheduledEmail, contact: Contact | None, deferred_in: dict[str, int], secret: str
    ) -> OutgoingEmail | None:
        """Skip, defer, fail or prepare one due row. Whatever goes wrong here is this row's alone."""
        try:
            if row.defect:
                self.fail(row, row.defect)
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
        """Hold or defer a row: its due time moves in the store (so Notion shows when it goes), why in its note."""
        self.record(row, action, detail, {"due": until, "note": f"{why}: was due {iso(row.due)}"})

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
        sequence = self.campaign.sequences.get(row.sequence)
        if sequence is None:  # a row a person edited in the store: it waits, visibly, until someone decides
            why = f"sequence {row.sequence!r} is not in campaign.toml"
            self.record(row, "waiting", why, {"last_error": f"{why}: the email waits"})
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

    # ------------------------------------------------------------------------------ outcomes

    def changes(self, row: ScheduledEmail, result: SendResult, attempts: int, final: bool) -> tuple[str, str, Changes]:
        """(action, detail, changes) for one row's result. `final`: a transient error is not retried any more."""
        if result.ok:
            note = result.note
            if row.state is not State.SCHEDULED:  # a person changed it after its batch was recorded
                note = f"{note + '; ' if note else ''}sent with its batch, recorded before it was set {row.state.value}"
            changes: Changes = {
                "state": State.SENT,
                "sent_at": self.now,
                "message_id": result.message_id,
                "attempts": attempts,
                "last_error": None,
                "note": note,
            }
            if variant := variant_of(row, self.campaign):  # the subject experiment's variant it went with
                changes["variant"] = variant
            return "sent", note or str(result.message_id), changes
        why = result.error or "unknown error"
        if result.permanent or final:
            if not result.permanent:
                why = f"{why} (gave up after {attempts} attempts)"
            return "failed", why, {"state": State.FAILED, "attempts": attempts, "last_error": why}
        retry_at = self.now + backoff(attempts)
        return (
            "retry",
            f"{why}; next attempt at {iso(retry_at)}",
            {
                "attempts": attempts,
                "last_error": why,
                "due": retry_at,
            },
        )

    def outcome(self, row: ScheduledEmail, result: SendResult) -> None:
        """One row sent under its own key (no journal): record its outcome on its row."""
        if not result.attempted:
            self.record(row, "retry", str(result.error), {"last_error": result.error})
            return
        attempts = row.attempts + 1
        action, detail, changes = self.changes(row, result, attempts, attempts >= self.campaign.mailer.max_attempts)
        self.record(row, action, detail, changes)

    # ------------------------------------------------------------------------------ the journal

    def send_journaled(self, batch: Batch, emails: list[OutgoingEmail], rows: dict[str, ScheduledEmail]) -> None:
        """Send a recorded batch under its key and record the outcome: all members at once (close), or, when the
        request failed as a whole, keep it open for a later tick with its attempts counted (defer)."""
        key = batch.key if len(emails) > 1 else None
        results = self.engine.mailer.send(emails, batch_key=key)
        self.sends += 1
        attempts = batch.attempts + 1
        unknown = [r for r in results if not r.ok and not r.permanent]
        out_of_attempts = attempts >= self.campaign.mailer.max_attempts
        members = [(rows.get(e.row_id), result) for e, result in zip(emails, results, strict=True)]
        if unknown and not out_of_attempts:  # no verdict: the same request goes again later, as it is
            retry_at = self.now + backoff(attempts)
            why = unknown[0].error or "unknown error"
            deferred = Batch(batch.key, batch.row_ids, batch.emails, batch.opened_at, attempts, retry_at, why)
            updates: list[tuple[ScheduledEmail, Changes]] = [
                (row, {"attempts": attempts, "last_error": why, "due": retry_at}) for row, _ in members if row
            ]
            self.store.defer_batch(deferred, updates)
            for row, _ in members:
                if row:
                    self.report.outcomes.append(Outcome(row, "retry", f"{why}; batch sent again at {iso(retry_at)}"))
            return
        outcomes: list[tuple[ScheduledEmail, Changes]] = []
        for row, result in members:
            if row is None:
                continue
            action, detail, changes = self.changes(row, result, attempts, final=True)
            outcomes.append((row, changes))
            self.report.outcomes.append(Outcome(row, action, detail))
        self.store.close_batch(batch.key, outcomes)

    def replay(self, batch: Batch) -> None:
        """A batch an earlier tick recorded but did not finish: send exactly it again under its key."""
        if batch.retry_at is not None and batch.retry_at > self.now:
            return
        if self.store.many_runners:  # another runner's: only once its lease has ended, and only if we win it
            if batch.lease_until is not None and batch.lease_until > self.now:
                return
            if self.claims is not None and not self.claims.take_batch(
                batch.key, self.runner, self.now, self.lease_until
            ):
                return
        rows = self.store.emails_by_id(batch.row_ids)
        members = [rows[i] for i in batch.row_ids if i in rows]
        self.report.due += len(members)
        ttl = self.engine.mailer.key_ttl if not self.dry_run else None
        expired = ttl is not None and self.now - batch.opened_at >= ttl - KEY_MARGIN
        try:
            emails = journal.decode(batch.emails)
        except ValueError as exc:
            self.give_up(batch, members, f"its batch cannot be sent again: {exc}")
            return
        if expired:
            self.give_up(
                batch,
                members,
                f"delivery unknown: its batch was recorded at {iso(batch.opened_at)}, the tick sending it stopped "
                "before the outcome was recorded, and the provider's idempotency key has expired since, so it is "
                "not sent again blind; check the provider's log and run `xmas retry` if it never arrived",
            )
        elif self.dry_run:
            detail = f"batch recorded at {iso(batch.opened_at)}, outcome unknown: sent again under its key"
            self.report.outcomes.extend(Outcome(row, "would-replay", detail) for row in members)
        else:
            self.send_journaled(batch, emails, rows)

    def give_up(self, batch: Batch, members: list[ScheduledEmail], why: str) -> None:
        if self.dry_run:
            self.report.outcomes.extend(Outcome(row, "would-fail", why) for row in members)
            return
        self.store.close_batch(batch.key, [(row, {"state": State.FAILED, "last_error": why}) for row in members])
        self.report.outcomes.extend(Outcome(row, "failed", why) for row in members)

    def send_group(self, group: Ready) -> None:
        """Send up to max_batch ready emails: through the journal where the store keeps one, else row by row."""
        if self.store.supports_batches:
            while group:
                ids = [row.id for row, _ in group]
                emails = [email for _, email in group]
                key = batch_key(self.campaign.campaign.name, ids)
                batch = Batch(
                    key, ids, journal.encode(emails), self.now, owner=self.runner, lease_until=self.lease_until
                )
                taken = set(self.store.open_batch(batch))
                if not taken:
                    self.send_journaled(batch, emails, {row.id: row for row, _ in group})
                    return
                group = [item for item in group if item[0].id not in taken]  # changed meanwhile: left alone
            return
        results = self.engine.mailer.send([email for _, email in group])
        self.sends += 1
        for (row, _), result in zip(group, results, strict=True):
            self.outcome(row, result)


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
    if not engine.store.many_runners:  # one tick at a time; PostgreSQL's runners share the rows by claims instead
        lock = file_lock(engine.campaign.path(engine.campaign.tick.lock), what="tick", mode=engine.campaign.store.mode)
    with lock, stop_on_signals(stop):
        t = _Tick(engine, now, dry_run, stop, monotonic)
        try:
            _run(t, limit, progress)
        except Abandoned as signal_name:  # a second signal: what was in flight is sent again by the next tick
            t.report.stopped = str(signal_name)
        finally:
            if t.claims is not None:  # what this runner holds is free for the next at once
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
    if t.store.supports_batches:
        for batch in t.store.open_batches():
            if t.must_stop():
                return
            t.replay(batch)
    if not t.dry_run:
        _record_deliveries(t)
    secret: str | None = None
    deferred_in: dict[str, int] = {}
    due = _due(t, limit)
    handled = 0
    while rows := due(t.slice_size()):
        t.report.due += len(rows)
        if t.must_stop():
            _leave(t, rows, due)
            return
        secret = secret or check_secret(t.engine.secret)
        contacts = t.store.get_contacts({r.email for r in rows if r.email})
        t.load_recent({r.email for r in rows if r.email})
        ready: Ready = []
        for row in rows:
            email = t.handle(row, contacts.get(row.email), deferred_in, secret)
            if email is not None:
                ready.append((row, email))
        if t.dry_run:
            t.report.outcomes.extend(Outcome(r, "would-send", f"to {e.to}: {e.subject}") for r, e in ready)
            continue
        group_size = t.engine.mailer.max_batch
        for start in range(0, len(ready), group_size):
            if t.must_stop():
                _leave(t, [row for row, _ in ready[start:]], due)
                return
            t.send_group(ready[start : start + group_size])
            handled += len(ready[start : start + group_size])
            if progress:
                progress(handled, t.report.due)


DELIVERY_SHARE = 0.25  # of the tick's budget, at most, for recording queued delivery events before sending


def _record_deliveries(t: _Tick) -> None:
    """Apply the delivery events the webhook queued (opens, clicks, deliveries) to their rows, first: within a
    quarter of the budget, at the store's pace, so sending always keeps most of the minute."""
    from ..inbound.delivery_queue import drain, open_queue, queue_path

    if not queue_path(t.engine).exists():  # no webhook has queued anything yet
        return

    limit = t.campaign.tick.budget_seconds * DELIVERY_SHARE

    def enough() -> bool:
        return t.stop.requested or t._monotonic() - t._started > limit

    queue = open_queue(t.engine)
    try:
        rate = t.store.request_rate
        t.report.deliveries = drain(t.engine, queue, int(limit * rate) if rate else 10_000, enough).applied
    finally:
        queue.close()


Slices = Callable[[int], list[ScheduledEmail]]


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
