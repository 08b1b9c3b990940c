"""What every use case is given (the Engine: campaign, store, clock, mailer) and the records' JSON, plus the
real counts templates may show."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..clock import Clock, iso
from ..core.campaign import Campaign
from ..core.consent import on_file
from ..core.model import Contact, Event, ScheduledEmail
from ..core.variables import Counts
from ..mailers.base import Mailer
from ..stores.base import BatchJournal, RunnerClaims, Store, claims_of, journal_of


@dataclass
class Engine:
    campaign: Campaign
    store: Store
    clock: Clock
    secret: str | None = None
    mailer_factory: Callable[[], Mailer] | None = None
    _mailer: Mailer | None = field(default=None, repr=False)
    # The ports the store implements beside Store, asked once here (stores/base.py): its batch journal (SQLite,
    # PostgreSQL) and its claims for many runners (PostgreSQL); None where it has none.
    journal: BatchJournal | None = field(init=False, repr=False)
    claims: RunnerClaims | None = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.journal = journal_of(self.store)
        self.claims = claims_of(self.store)

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


def booking_sequences(campaign: Campaign) -> list[str]:
    """The sequences whose live enrollment says the contact booked a call (with booked_by_events: who booked,
    for `bookings_count` and for the report's funnel alike)."""
    return [n for n, s in campaign.sequences.items() if s.counts_as_booking]


def campaign_counts(engine: Engine) -> Counts:
    """The real counts templates may show: contacts who booked a call (a live enrollment in a sequence that
    counts as a booking, or a `booked` event not canceled since), and contacts who took a spot."""
    seqs = engine.campaign.sequences
    return Counts(
        bookings=engine.store.count_contacts(booking_sequences(engine.campaign), also=booked_by_events(engine)),
        spots_taken=engine.store.count_contacts([n for n, s in seqs.items() if s.takes_spot]),
    )
