"""The store's ports: what the engine is given (Store, which every store implements whole), and two more that a
store implements or does not (never half, never raising NotImplementedError):

- **Store.** Outside the batch journal every write touches one row, and nothing relies on a transaction or a
  compare-and-swap: Notion offers neither. Row ids are deterministic (enrollment key + step), so a retried write
  finds what the first one wrote instead of writing it twice.
- **BatchJournal** (SQLite, PostgreSQL: stores with transactions). Before a batch is sent, its members and the
  exact request (the rendered emails) are recorded in one transaction; after it was sent, every member's outcome
  is recorded and the entry removed in one transaction. An entry still open when a tick starts is a batch whose
  outcome is unknown: it is sent again, as recorded. A store without one (Notion) is given the tick's own, in a
  local file (local_journal.py), and each email goes under its own row key.
- **RunnerClaims** (PostgreSQL): any number of ticks at once, on many machines, sharing the due rows by claims and
  the journal's batches by leases. Without it (SQLite, Notion) one tick at a time runs, behind its file lock.
- **Transactional** (SQLite, PostgreSQL): a block of reads and writes in one transaction, all or nothing: an
  enrollment's contact and rows (engine/unfinished.py says what stands in for it on Notion).

`journal_of` and `claims_of` say which a store implements (the engine asks once, when it is built); `all_or_nothing`
gives an enrollment the store's transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, TypedDict, runtime_checkable

from ..core.model import Contact, Delivery, Event, ScheduledEmail, State, Template
from ..core.report_facts import Funnel, ReportFacts
from ..core.rows import DUE_STATE, is_due, is_problem


class Changes(TypedDict, total=False):
    """The fields of a scheduled email that the engine updates after it was written."""

    due: datetime
    state: State
    sent_at: datetime | None
    message_id: str | None
    attempts: int
    last_error: str | None
    note: str | None
    data: dict[str, Any]
    batch: str | None
    delivery: Delivery
    variant: int | None


UNPACED = 1_000_000_000  # requests_within() of a store that keeps no pace: more than any tick asks for


@dataclass(frozen=True)
class Batch:
    """An open entry of the batch journal: emails recorded as going out together under one key."""

    key: str
    row_ids: list[str]
    emails: str  # the rendered emails exactly as sent (JSON, see journal.py): a replay sends these bytes
    opened_at: datetime  # on the tick's clock: the provider's key lasts a limited time from here
    attempts: int = 0  # sends that ended with no verdict (the request failed as a whole)
    retry_at: datetime | None = None  # not before this time (after a failed attempt)
    last_error: str | None = None
    owner: str | None = None  # the runner sending it (PostgreSQL: many runners); None under the tick's file lock
    lease_until: datetime | None = None  # on the tick's clock: after this, another runner may take it over


@dataclass(frozen=True)
class Summary:
    """What `xmas status` shows, counted where the store can count (SQL), read row by row where it cannot."""

    counts: dict[str, dict[str, int]]  # sequence → state → rows
    next_due: ScheduledEmail | None  # the earliest Scheduled row due after now
    overdue: int  # Scheduled rows due now or earlier
    problems: list[ScheduledEmail]  # core/rows.py's is_problem: Failed, waiting with an error, damaged


def summarize(rows: Iterable[ScheduledEmail], now: datetime) -> Summary:
    """The summary of rows read one by one (a store without aggregation: Notion)."""
    counts: dict[str, dict[str, int]] = {}
    next_due: ScheduledEmail | None = None
    overdue = 0
    problems: list[ScheduledEmail] = []
    for row in rows:
        per = counts.setdefault(row.sequence, {})
        per[row.state.value] = per.get(row.state.value, 0) + 1
        if is_problem(row):
            problems.append(row)
        if is_due(row, now):
            overdue += 1
        elif row.state is DUE_STATE and (next_due is None or row.due < next_due.due):
            next_due = row
    return Summary(counts, next_due, overdue, problems)


class Store(Protocol):
    description: str  # e.g. "SQLite .xmas/xmas.db", for messages

    def requests_within(self, seconds: float) -> int:
        """How many requests the store answers in `seconds` at the pace it keeps (Notion: its pacer's rate), so a
        tick reads no more than it can record in its budget; UNPACED where it keeps none (SQLite, PostgreSQL)."""
        ...

    def get_contact(self, email: str) -> Contact | None: ...

    def contact_lock(self, email: str, local: AbstractContextManager[None]) -> AbstractContextManager[None]:
        """The lock that puts one contact's enrollments and unsubscribes one after another: `local` (the engine's
        lock file, which orders the processes of this machine) where that is every writer (SQLite, Notion); the
        store's own lock across machines where it is shared by many (PostgreSQL's advisory lock)."""
        ...

    def get_contacts(self, emails: Collection[str]) -> dict[str, Contact]: ...

    def all_contacts(self) -> Iterator[Contact]:
        """Every contact, also those with no email and no event (an unsubscribe of an address never enrolled)."""
        ...

    def save_contact(self, contact: Contact) -> Contact: ...

    def emails_for_enrollment(self, key: str) -> list[ScheduledEmail]: ...

    def emails_for_contact(self, email: str) -> list[ScheduledEmail]: ...

    def add_email(self, row: ScheduledEmail) -> ScheduledEmail:
        """Write a new row. If a row with the same id exists, leave it and return it."""
        ...

    def update_email(self, row: ScheduledEmail, changes: Changes) -> ScheduledEmail: ...

    def due_emails(self, now: datetime, limit: int | None = None) -> Iterator[ScheduledEmail]:
        """Rows in state Scheduled with due <= now, earliest first, none of them in an open batch.
        Filtered and sorted by the store; lazily, so a tick reads only as far as it gets."""
        ...

    def sent_since(
        self, emails: Collection[str], sequences: Collection[str], since: datetime
    ) -> dict[str, list[datetime]]:
        """When these contacts were sent email of these sequences after `since` (for the frequency cap)."""
        ...

    def stopped_emails(self, since: datetime, now: datetime) -> list[ScheduledEmail]:
        """Rows in state Cancelled that were due in (since, now]: what a rule stopped (for `tick --dry-run`)."""
        ...

    def emails_by_id(self, ids: Collection[str]) -> dict[str, ScheduledEmail]:
        """The rows with these ids, as they are now."""
        ...

    def all_emails(self) -> Iterator[ScheduledEmail]: ...

    def email_by_message_id(self, message_id: str) -> ScheduledEmail | None:
        """The row the mail provider knows by this id (recorded at send time), for its delivery events."""
        ...

    def update_delivery(self, message_id: str, change: Callable[[Delivery], Delivery]) -> ScheduledEmail | None:
        """Apply `change` to the delivery record of the row the provider knows by `message_id`, reading and writing it
        in one transaction where the store has them (two webhooks for one email at once: neither is lost). The row
        as it was before, or None when no row has that id."""
        ...

    def summary(self, now: datetime) -> Summary:
        """Counts by sequence and state, the next row due, how many are overdue, and every problem row."""
        ...

    def report_facts(self, since: datetime | None, funnel: Funnel) -> ReportFacts:
        """The numbers of `xmas report` (core/report_facts.py): counted in SQL where the store can (SQLite and
        PostgreSQL: stores/report_sql.py), from the rows one by one where it cannot (Notion)."""
        ...

    def count_contacts(self, sequences: Collection[str], also: Collection[str] = ()) -> int:
        """How many distinct contacts have a live enrollment in any of these sequences: at least one of their rows
        in them is not Cancelled or Skipped (Scheduled, Sent, Sent by website, Failed or Paused). A contact whose
        rows were all cancelled (exit rule, `xmas cancel`, unsubscribe) or skipped (suppressed) is not counted.
        The addresses in `also` count too, each once (contacts who booked by an event)."""
        ...

    # events (what a contact did: events.py)
    def add_event(self, event: Event) -> bool:
        """Record an event; False (and nothing written) when one with the same key was recorded before."""
        ...

    def events_for_contact(self, email: str) -> list[Event]:
        """The contact's events, oldest first."""
        ...

    def events_named(self, names: Collection[str]) -> list[Event]:
        """Every contact's events with these names (for the booking count)."""
        ...

    def get_template(self, template_id: str) -> Template | None: ...

    def list_templates(self) -> list[Template]: ...

    def close(self) -> None: ...


@runtime_checkable
class BatchJournal(Protocol):
    """The batch journal (see the module's docstring): a store with transactions keeps it."""

    def open_batch(self, batch: Batch) -> list[str]:
        """In one transaction: record the entry and mark its rows. Rows that are no longer Scheduled, or are
        in another open batch, are returned and nothing is written; an empty list means it is recorded."""
        ...

    def open_batches(self) -> list[Batch]:
        """Every open entry, oldest first."""
        ...

    def close_batch(self, key: str, outcomes: Collection[tuple[ScheduledEmail, Changes]]) -> None:
        """In one transaction: record every member's outcome and remove the entry."""
        ...

    def defer_batch(self, batch: Batch, outcomes: Collection[tuple[ScheduledEmail, Changes]]) -> None:
        """In one transaction: keep the entry open with batch.attempts, retry_at and last_error, and update its rows
        (their error and next attempt, for people to see)."""
        ...


@runtime_checkable
class RunnerClaims(Protocol):
    """A store many tick runners share: each claims its rows, and the journal's batches carry leases."""

    def claim_due(self, now: datetime, limit: int, runner: str, until: datetime) -> list[ScheduledEmail]:
        """Claim up to `limit` due rows nobody works on, and the other due rows of their contacts, for `runner`
        until `until` (the tick's clock); earliest first."""
        ...

    def release(self, ids: Collection[str], runner: str) -> None:
        """Give back claimed rows the runner did not get to."""
        ...

    def finish(self, runner: str) -> None:
        """End the runner's claims and batch leases (its tick is over, or stopped)."""
        ...

    def count_due(self, now: datetime) -> int:
        """Due rows nobody works on (what a stopping tick leaves)."""
        ...

    def take_batch(self, key: str, runner: str, now: datetime, until: datetime) -> bool:
        """Take over an open batch whose lease has ended; False when another runner holds it or took it first."""
        ...


@runtime_checkable
class Transactional(Protocol):
    """A store whose writes can go in one transaction (SQLite, PostgreSQL): all of them, or none."""

    def transaction(self) -> AbstractContextManager[None]:
        """Inside the block every read and write of this store object is one transaction: committed when the
        block ends, rolled back when it raises. Nested blocks join the outer one."""
        ...


def all_or_nothing(store: Store) -> AbstractContextManager[None] | None:
    """The store's transaction, or None where it has none (Notion)."""
    return store.transaction() if isinstance(store, Transactional) else None


def journal_of(store: Store) -> BatchJournal | None:
    """The store's batch journal, or None where it keeps none (Notion)."""
    return store if isinstance(store, BatchJournal) else None


def claims_of(store: Store) -> RunnerClaims | None:
    """The store's claims for many runners, or None where one tick at a time runs (SQLite, Notion)."""
    return store if isinstance(store, RunnerClaims) and journal_of(store) is not None else None
