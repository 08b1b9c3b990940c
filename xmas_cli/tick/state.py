"""What one tick knows while it runs (its engine, clock reading, report, sending time, caches, and its runner's name
and lease among many), and the small rules every part of it shares: a row's error line, the retry backoff."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta

from ..core.model import ScheduledEmail, State, Template
from ..core.variables import Counts
from ..engine import Engine, campaign_counts
from ..engine.control import Gate
from ..errors import Busy, ConfigError, MailerUnavailable, StoreUnavailable
from ..stores.base import Changes
from .report import DRY_RUN, Outcome, TickReport
from .signals import StopRequest

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


class TickState:
    """One tick's run: what it was given, what it has done so far, and the bookkeeping every step shares."""

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
        self.sending = self.campaign.tick.until(now)  # core/tick_config.py: until when, in seconds from _started
        self.per_row = 0.0  # the most seconds an email took to send and record, over this tick's sends so far
        self.sends = 0  # mailer calls made: the budget never stops a tick before its first
        self.cap = self.campaign.cap
        self.marketing = frozenset(self.campaign.marketing)
        self.recent: dict[str, list[datetime]] = {}  # marketing sends per contact inside the cap's span
        # Many runners (PostgreSQL): this tick's name on its claims and batches, and when they lapse (tick's clock)
        self.runner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.lease_until = now + self.campaign.lease
        self.journal = engine.journal  # the store's batch journal, or (Notion) the tick's file: local_journal.py
        # this tick's claims (None on a dry run, or where one tick at a time runs behind its file lock)
        self.claims = engine.claims if not dry_run else None
        self.gate = Gate([], frozenset())  # the pauses in force, read at the start of the tick

    # ------------------------------------------------------------------------------ bookkeeping

    def elapsed(self) -> float:
        return self._monotonic() - self._started

    def must_stop(self) -> bool:
        """Stop before the next send? On a signal at once; on the time only once something was sent."""
        if self.stop.requested:
            self.report.stopped = self.stop.signal
            return True
        return self.sends > 0 and self.elapsed() > self.sending.stop

    def planning_over(self) -> bool:
        """Stop planning before the slice's next row? On a signal at once; on the time once this tick has done
        something (a row recorded or a send made): holding, deferring or skipping a row is a store write each, and
        a catch-up of rows held by a window, under a slow store (Notion at 3 requests/s, retrying 5xx), is no
        reason to run past the time. The rows not reached stay as they are, due, for the next tick."""
        if self.stop.requested:
            self.report.stopped = self.stop.signal
            return True
        done = self.sends > 0 or bool(self.report.outcomes)
        return done and self.elapsed() > self.sending.stop

    def slice_size(self) -> int:
        """The next slice: [tick] slice rows, or fewer where the store is rate-limited (Notion): no more than the
        time left can record, one request per email, so a tick does not read rows and contacts it cannot send."""
        left = self.sending.stop - self.elapsed()
        return max(1, min(self.campaign.tick.slice, self.store.requests_within(left) - READS_PER_SLICE))

    def fitting(self, ready: int) -> int:
        """How many of `ready` emails the next send may take: all for the tick's first send (every tick makes
        progress); after it, those that can be sent and recorded before the minute ends, when cron starts the next
        tick, at the store's pace (one request per email) and at the pace this tick's sends have gone. 0: none."""
        if self.sends == 0:
            return ready
        left = self.sending.minute_ends - self.elapsed()
        fits = self.store.requests_within(left)
        if self.per_row > 0:
            fits = min(fits, int(max(0.0, left) / self.per_row + 1e-9))
        return max(0, min(ready, fits))

    def took(self, emails: int, seconds: float) -> None:
        """One send of `emails` took `seconds` (the mailer, the journal, the outcomes in the store)."""
        if emails > 0:
            self.per_row = max(self.per_row, seconds / emails)

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
