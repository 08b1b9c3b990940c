"""The engine: the use cases that touch the store, the mailer and the clock together.

enroll, cancel, unsubscribe, show and status live here (Engine and its helpers in this file); preview and send-test
beside it. The tick is in tick/, what arrives from outside in inbound/, store copy in stores/copy.py.

May import: core, the ports (stores/base.py, mailers/base.py), errors, clock, lock, perms. Never a store or a
mailer itself (only their ports), commands, web, tick, inbound, report, starter or backends.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from ..clock import Clock, iso
from ..core.campaign import Campaign
from ..core.consent import given_by, on_file
from ..core.model import Contact, Event, ScheduledEmail, State
from ..core.outgoing import stored_address
from ..core.schedule import legacy_enrollment_key, plan_enrollment
from ..core.variables import Counts, classify_segment
from ..errors import JSON_VERSION, Busy, InvalidInput, NotFound
from ..lock import file_lock
from ..mailers.base import Mailer
from ..stores.base import Batch, Store


@dataclass
class Engine:
    campaign: Campaign
    store: Store
    clock: Clock
    secret: str | None = None
    mailer_factory: Callable[[], Mailer] | None = None
    _mailer: Mailer | None = field(default=None, repr=False)

    @property
    def mailer(self) -> Mailer:
        if self._mailer is None:
            assert self.mailer_factory is not None, "this engine was built without a mailer"
            self._mailer = self.mailer_factory()
        return self._mailer

    def close(self) -> None:
        if self._mailer is not None:
            self._mailer.close()
        self.store.close()

    def lock_path(self, name: str) -> Path:
        """A lock file beside the tick's lock (campaign.toml's [tick] lock)."""
        return self.campaign.path(self.campaign.tick.lock).with_name(name)


def row_json(row: ScheduledEmail) -> dict[str, Any]:
    return {
        "id": row.id,
        "sequence": row.sequence,
        "step": row.step,
        "template": row.template,
        "sender": row.sender.value,
        "state": row.state.value,
        "due": iso(row.due),
        "sent_at": iso(row.sent_at),
        "message_id": row.message_id,
        "attempts": row.attempts,
        "last_error": row.last_error,
        "note": row.note,
        **({"defect": row.defect} if row.defect else {}),
    }


def event_json(event: Event) -> dict[str, Any]:
    return {"key": event.key, "name": event.name, "email": event.email, "at": iso(event.at), "data": event.data}


def contact_json(contact: Contact) -> dict[str, Any]:
    consent = on_file(contact)
    return {
        "consent": {
            "kind": consent.kind,
            "source": consent.source,
            "at": iso(consent.at),
            "expires": iso(consent.expires),
        }
        if consent
        else None,
        "email": contact.email,
        "first_name": contact.fields.get("first_name"),
        "business_name": contact.fields.get("business_name"),
        "segment": contact.segment,
        "suppressed": contact.suppressed,
        "suppressed_reason": contact.suppressed_reason,
    }


def events_in_force(campaign: Campaign, events: list[Event], sequence: str) -> list[str]:
    """Why a new enrollment in `sequence` starts cancelled: the contact's events that cancel it and still hold
    (`booked at …`; a booking event holds until a later one says otherwise, e.g. call-canceled)."""
    latest = campaign.booking_news(events)
    return [
        f"{e.name} at {iso(e.at)}"
        for e in events
        if e.name in campaign.events
        and sequence in campaign.cancelled_by(e.name)
        and (campaign.events[e.name].counts_as_booking is None or e is latest)
    ]


def booked_by_events(engine: Engine) -> set[str]:
    """Contacts whose latest event about a booking says they booked (events.py: counts_as_booking)."""
    said = {n for n, e in engine.campaign.events.items() if e.counts_as_booking is not None}
    if not said:
        return set()
    by_contact: dict[str, list[Event]] = {}
    for event in engine.store.events_named(said):
        by_contact.setdefault(event.email, []).append(event)
    latest = {email: engine.campaign.booking_news(events) for email, events in by_contact.items()}
    return {email for email, e in latest.items() if e is not None and engine.campaign.events[e.name].counts_as_booking}


def campaign_counts(engine: Engine) -> Counts:
    """The real counts templates may show: contacts who booked a call (a live enrollment in a sequence that
    counts as a booking, or a `booked` event not canceled since), and contacts who took a spot."""
    seqs = engine.campaign.sequences
    return Counts(
        bookings=engine.store.count_contacts(
            [n for n, s in seqs.items() if s.counts_as_booking], also=booked_by_events(engine)
        ),
        spots_taken=engine.store.count_contacts([n for n, s in seqs.items() if s.takes_spot]),
    )


@dataclass(frozen=True)
class EnrollResult:
    sequence: str
    key: str
    contact: Contact
    created: bool
    rows: list[ScheduledEmail]
    cancelled: list[ScheduledEmail]
    anchor: datetime
    anchor_source: str
    warnings: list[str]
    also: list[EnrollResult] = field(default_factory=list)  # the enrollments `[sequences.X] enrolls` started

    def to_json(self) -> dict[str, Any]:
        return {
            "version": JSON_VERSION,
            "ok": True,
            "sequence": self.sequence,
            "enrollment_key": self.key,
            "created": self.created,
            "anchor": iso(self.anchor),
            "anchor_source": self.anchor_source,
            "contact": contact_json(self.contact),
            "scheduled": [row_json(r) for r in self.rows],
            "cancelled": [row_json(r) for r in self.cancelled],
            "warnings": self.warnings,
            **(
                {"also": [{k: v for k, v in a.to_json().items() if k not in ("version", "ok")} for a in self.also]}
                if self.also
                else {}
            ),
        }


_IN_PROCESS: dict[Path, threading.Lock] = {}
_IN_PROCESS_GUARD = threading.Lock()
QUEUE_WAIT = 120.0  # seconds a web request waits behind the enrollments of its own process before a 503


@contextmanager
def contact_lock(engine: Engine, email: str) -> Iterator[None]:
    """Enrollments and unsubscribes one after another: an enrollment saves the contact it read, so an
    unsubscribe landing in between would otherwise be overwritten.

    The threads of one process (the web server's) queue on an in-process lock first, so a burst of website
    enrollments waits its turn instead of answering 503 while each one is being written; the file lock then
    orders the process against others (the CLI, cron), waiting up to 10 s. A store shared by many machines
    (PostgreSQL) keeps the contact's lock itself instead of the file."""
    path = engine.lock_path("enroll.lock")
    with _IN_PROCESS_GUARD:
        queue = _IN_PROCESS.setdefault(path, threading.Lock())
    if not queue.acquire(timeout=QUEUE_WAIT):
        raise Busy(f"{QUEUE_WAIT:.0f} s behind other enrollments", "retry in a minute; a retry is safe")
    try:
        held = engine.store.contact_lock(email)
        with held or file_lock(path, wait=10, what="enrollment or unsubscribe", mode=engine.campaign.store.mode):
            yield
    finally:
        queue.release()


def cancel_pending(store: Store, rows: Iterable[ScheduledEmail], note: str) -> list[ScheduledEmail]:
    return [
        store.update_email(row, {"state": State.CANCELLED, "note": note})
        for row in rows
        if row.state is State.SCHEDULED
    ]


def enroll(engine: Engine, sequence_name: str, raw: Any) -> EnrollResult:
    """Validate, upsert the contact, write the enrollment's rows (idempotent), apply exit rules."""
    campaign, store = engine.campaign, engine.store
    from ..core.payloads import validate_payload

    sequence = campaign.sequence(sequence_name)
    payload = validate_payload(sequence.payload, raw)
    now = engine.clock.now()
    data = payload.data()
    with contact_lock(engine, payload.email):
        existing_contact = store.get_contact(payload.email) or Contact(email=payload.email)
        history = store.emails_for_contact(payload.email)
        legacy = legacy_enrollment_key(sequence_name, sequence, payload)
        key = legacy if legacy and any(r.enrollment_key == legacy for r in history) else None
        # planned before anything is written: a payload that cannot be planned leaves no trace
        plan = plan_enrollment(campaign, sequence_name, payload, now, existing_contact.suppressed, key)
        segment = classify_segment(data.get("red_systems"), data.get("orange_systems"))
        merged = existing_contact.merged(data, segment, now)
        consent = given_by(campaign, sequence_name, payload.consent, now)
        if consent.outranks(on_file(existing_contact)):
            merged = replace(merged, consent=consent)
        contact = store.save_contact(merged)
        seen = {r.sequence for r in history if r.sequence in campaign.sequences}
        blockers = sorted(
            f"already in {name}"
            for name in seen
            if campaign.sequences[name].final and sequence_name in campaign.sequences[name].cancels
        )
        blockers += events_in_force(campaign, store.events_for_contact(payload.email), sequence_name)
        existing = {r.id: r for r in history if r.enrollment_key == plan.key}
        rows: list[ScheduledEmail] = []
        for planned in plan.rows:
            old = existing.get(planned.id)
            if old is None:
                if blockers and planned.state is State.SCHEDULED:
                    planned = replace(planned, state=State.CANCELLED, note=f"exit rule: {blockers[0]}")
                rows.append(store.add_email(planned))
            elif old.state is State.SCHEDULED and old.data != planned.data:
                rows.append(store.update_email(old, {"data": planned.data}))
            else:
                rows.append(old)
        note = f"exit rule: enrolled in {sequence_name}"
        cancelled = cancel_pending(store, (r for r in history if r.sequence in sequence.cancels), note)
        if sequence.concurrent == "replace" and not existing:  # one conversation per sequence: the newest
            earlier = (r for r in history if r.sequence == sequence_name and r.enrollment_key != plan.key)
            cancelled += cancel_pending(store, earlier, f"superseded by {plan.key}")
    # after the lock: each of these takes it again
    also = [enroll(engine, other, raw) for other in sequence.enrolls]
    return EnrollResult(
        sequence=sequence_name,
        key=plan.key,
        contact=contact,
        created=not existing,
        rows=rows,
        cancelled=cancelled,
        anchor=plan.anchor,
        anchor_source=plan.anchor_source,
        warnings=plan.warnings,
        also=also,
    )


@dataclass(frozen=True)
class ChangeResult:
    action: str
    email: str
    rows: list[ScheduledEmail]
    contact: Contact | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "version": JSON_VERSION,
            "ok": True,
            "action": self.action,
            "email": self.email,
            "contact": contact_json(self.contact) if self.contact else None,
            "changed": [row_json(r) for r in self.rows],
        }


def _known_contact(engine: Engine, email: str) -> Contact:
    contact = engine.store.get_contact(stored_address(email))
    if contact is None:
        raise NotFound(f"no contact with email {email!r} in {engine.store.description}", "check the address")
    return contact


def cancel(engine: Engine, email: str, sequence: str | None = None) -> ChangeResult:
    contact = _known_contact(engine, email)
    if sequence is not None:
        engine.campaign.sequence(sequence)
    rows = [r for r in engine.store.emails_for_contact(contact.email) if sequence in (None, r.sequence)]
    return ChangeResult("cancel", contact.email, cancel_pending(engine.store, rows, "cancelled by operator"), contact)


def retry(engine: Engine, email: str, sequence: str | None = None) -> ChangeResult:
    """Put a contact's Failed emails back to Scheduled, due now, with a fresh count of attempts.

    Safe after a lost answer too: the email keeps its idempotency key, so a provider that already accepted it
    answers with the first reply instead of sending it again.
    """
    contact = _known_contact(engine, email)
    if sequence is not None:
        engine.campaign.sequence(sequence)
    if contact.suppressed:
        raise InvalidInput(f"{contact.email} is suppressed ({contact.suppressed_reason})", "nothing was changed")
    now = engine.clock.now()
    rows = [
        engine.store.update_email(
            row,
            {"state": State.SCHEDULED, "due": now, "attempts": 0, "last_error": None, "note": "retried by operator"},
        )
        for row in engine.store.emails_for_contact(contact.email)
        if row.state is State.FAILED and sequence in (None, row.sequence)
    ]
    return ChangeResult("retry", contact.email, rows, contact)


def unsubscribe(engine: Engine, email: str, reason: str = "unsubscribed") -> ChangeResult:
    """No more email of any kind: the contact is suppressed (even one we never saw) and pending rows cancelled."""
    address = stored_address(email)
    from ..core.payloads import validate_payload

    validate_payload("lead", {"email": address, "first_name": "-"})  # a real address, or exit 2
    now = engine.clock.now()
    with contact_lock(engine, address):
        contact = engine.store.get_contact(address) or Contact(email=address)
        if not contact.suppressed:
            contact = engine.store.save_contact(
                replace(contact, suppressed=True, suppressed_reason=f"{reason} {iso(now)}", updated_at=now)
            )
        rows = cancel_pending(engine.store, engine.store.emails_for_contact(address), reason)
    return ChangeResult("unsubscribe", address, rows, contact)


@dataclass(frozen=True)
class Timeline:
    contact: Contact
    rows: list[ScheduledEmail]
    events: list[Event] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "version": JSON_VERSION,
            "contact": {**contact_json(self.contact), "fields": self.contact.fields},
            "events": [event_json(e) for e in self.events],
            "emails": [row_json(r) for r in self.rows],
        }


def show(engine: Engine, email: str) -> Timeline:
    contact = _known_contact(engine, email)
    store = engine.store
    return Timeline(contact, store.emails_for_contact(contact.email), store.events_for_contact(contact.email))


@dataclass(frozen=True)
class Status:
    store: str
    now: datetime
    counts: dict[str, dict[str, int]]
    next_due: ScheduledEmail | None
    overdue: int
    problems: list[ScheduledEmail]  # failed rows, and scheduled rows that carry an error (waiting)
    # batches recorded and sent (or being sent) whose outcome is not recorded yet: a tick at work, or one that died
    in_flight: list[Batch] = field(default_factory=list)

    @property
    def healthy(self) -> bool:
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        return {
            "version": JSON_VERSION,
            "store": self.store,
            "now": iso(self.now),
            "counts": self.counts,
            "next_due": row_json(self.next_due) if self.next_due else None,
            "overdue": self.overdue,
            "problems": [{**row_json(r), "email": r.email} for r in self.problems],
            "in_flight": [
                {
                    "batch": b.key,
                    "emails": len(b.row_ids),
                    "opened_at": iso(b.opened_at),
                    "runner": b.owner,
                    "lease_until": iso(b.lease_until),
                    "attempts": b.attempts,
                    "retry_at": iso(b.retry_at),
                    "last_error": b.last_error,
                }
                for b in self.in_flight
            ],
        }


def status(engine: Engine) -> Status:
    now = engine.clock.now()
    store = engine.store
    summary = store.summary(now)
    counts: dict[str, dict[str, int]] = {name: {} for name in engine.campaign.sequences}
    counts.update(summary.counts)
    in_flight = store.open_batches() if store.supports_batches else []
    return Status(store.description, now, counts, summary.next_due, summary.overdue, summary.problems, in_flight)
