"""What an operator does to a contact (cancel, retry, unsubscribe, show) and the store's status."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from ..clock import iso
from ..core.controls import Pause
from ..core.model import Contact, Event, ScheduledEmail, State
from ..core.outgoing import stored_address
from ..errors import JSON_VERSION, InvalidInput, NotFound
from ..stores.base import Batch
from .base import Engine, contact_json, event_json, row_json
from .control import in_force
from .enroll import cancel_pending, contact_lock
from .unfinished import Unfinished, unfinished


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
    pauses: list[Pause] = field(default_factory=list)  # what holds the sending, since when and why
    unfinished: list[Unfinished] = field(default_factory=list)  # enrollments interrupted mid-way (Notion)

    @property
    def healthy(self) -> bool:
        return not self.problems and not self.unfinished

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
            "paused": [p.to_json() for p in self.pauses],
            "unfinished_enrollments": [u.to_json() for u in self.unfinished],
        }


def status(engine: Engine) -> Status:
    now = engine.clock.now()
    store = engine.store
    summary = store.summary(now)
    counts: dict[str, dict[str, int]] = {name: {} for name in engine.campaign.sequences}
    counts.update(summary.counts)
    in_flight = engine.journal.open_batches() if engine.journal is not None else []
    paused = in_force(engine)
    return Status(
        store.description,
        now,
        counts,
        summary.next_due,
        summary.overdue,
        summary.problems,
        in_flight,
        paused,
        unfinished(engine),
    )
