"""What a store copy moves and compares: the two stores' sides (Source, Target), a record left out or different
(Item), and the view of each kind of record that a copy keeps and reads back (copy.py says what a copy is)."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol, cast

from ..clock import iso
from ..core.deliveries import to_json
from ..core.model import Contact, Event, ScheduledEmail, Template
from .base import Changes

KINDS = ("contacts", "templates", "emails", "events")
# The fields of a row that a store's update_email writes (Changes, without the batch).
UPDATABLE = ("due", "state", "sent_at", "message_id", "attempts", "last_error", "note", "data", "delivery", "variant")
Progress = Callable[[str, int, int], None]  # kind, written so far, to write in all


class Source(Protocol):
    """What is read from the store copied from (any Store)."""

    description: str

    def all_contacts(self) -> Iterator[Contact]: ...
    def all_emails(self) -> Iterator[ScheduledEmail]: ...
    def events_for_contact(self, email: str) -> list[Event]: ...
    def list_templates(self) -> list[Template]: ...


class Target(Protocol):
    """What is read from and written to the store copied into (any Store)."""

    description: str

    def get_contacts(self, emails: Collection[str]) -> dict[str, Contact]: ...
    def save_contact(self, contact: Contact) -> Contact: ...
    def all_emails(self) -> Iterator[ScheduledEmail]: ...
    def add_email(self, row: ScheduledEmail) -> ScheduledEmail: ...
    def update_email(self, row: ScheduledEmail, changes: Changes) -> ScheduledEmail: ...
    def events_for_contact(self, email: str) -> list[Event]: ...
    def add_event(self, event: Event) -> bool: ...
    def list_templates(self) -> list[Template]: ...


@dataclass(frozen=True)
class Item:
    """One record that is not simply copied: a conflict, one skipped, or (after copying) one missing or different."""

    kind: str
    key: str
    action: str  # conflict | skipped | missing | mismatch
    detail: str

    def to_json(self) -> dict[str, str]:
        return {"kind": self.kind, "key": self.key, "action": self.action, "detail": self.detail}


# ------------------------------------------------------------------------------------------- records


def row_view(row: ScheduledEmail) -> dict[str, Any]:
    """What a copy keeps of a row (a store reads an empty text as None, and keeps times to the second)."""
    return {
        "id": row.id,
        "enrollment_key": row.enrollment_key,
        "email": row.email.strip().lower(),
        "sequence": row.sequence,
        "step": row.step,
        "template": row.template,
        "sender": row.sender.value,
        "due": iso(row.due),
        "state": row.state.value,
        "sent_at": iso(row.sent_at),
        "message_id": row.message_id or None,
        "attempts": row.attempts,
        "last_error": row.last_error or None,
        "note": row.note or None,
        "data": row.data,
        "delivery": to_json(row.delivery),
        "variant": row.variant,
    }


def contact_view(contact: Contact) -> dict[str, Any]:
    return {
        "email": contact.email.strip().lower(),
        "fields": contact.fields,
        "segment": contact.segment or None,
        "suppressed": contact.suppressed,
        "suppressed_reason": contact.suppressed_reason or None,
        "updated_at": iso(contact.updated_at),
        "consent": contact.consent.describe() if contact.consent else None,
    }


def event_view(event: Event) -> dict[str, Any]:
    return {
        "key": event.key,
        "email": event.email.strip().lower(),
        "name": event.name,
        "at": iso(event.at),
        "data": event.data,
        "recorded_at": iso(event.recorded_at),
    }


def differences(want: dict[str, Any], have: dict[str, Any]) -> list[str]:
    return [name for name, value in want.items() if have.get(name) != value]


def changes_of(row: ScheduledEmail, names: Iterable[str]) -> Changes:
    return cast(Changes, {name: getattr(row, name) for name in names if name in UPDATABLE})


def event_key(event: Event) -> str:
    return f"{event.email.strip().lower()} {event.key}"
