"""The Store protocol the engine is given.

Every write touches one row, and nothing relies on a transaction or a compare-and-swap: Notion offers
neither. Row ids are deterministic (enrollment key + step), so a retried write finds what the first
one wrote instead of writing it twice.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from datetime import datetime
from typing import Any, Protocol, TypedDict

from ..model import Contact, ScheduledEmail, State, Template


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


class Store(Protocol):
    description: str  # e.g. "SQLite .xmas/xmas.db", for messages
    # True when assign_batch() records a whole batch's membership in one cheap atomic write, so the
    # tick may send up to 100 emails under one idempotency key (see tick.py). Notion: False.
    supports_batches: bool

    def get_contact(self, email: str) -> Contact | None: ...

    def get_contacts(self, emails: Collection[str]) -> dict[str, Contact]: ...

    def save_contact(self, contact: Contact) -> Contact: ...

    def emails_for_enrollment(self, key: str) -> list[ScheduledEmail]: ...

    def emails_for_contact(self, email: str) -> list[ScheduledEmail]: ...

    def add_email(self, row: ScheduledEmail) -> ScheduledEmail:
        """Write a new row. If a row with the same id exists, leave it and return it."""
        ...

    def update_email(self, row: ScheduledEmail, changes: Changes) -> ScheduledEmail: ...

    def due_emails(self, now: datetime, limit: int | None = None) -> Iterator[ScheduledEmail]:
        """Rows in state Scheduled with due <= now, earliest first. Filtered and sorted by the store."""
        ...

    def assign_batch(self, batch: str, rows: Collection[ScheduledEmail]) -> None:
        """Record, atomically, that these rows go out together as `batch`. Only when supports_batches."""
        ...

    def all_emails(self) -> Iterator[ScheduledEmail]: ...

    def count_contacts(self, sequences: Collection[str]) -> int:
        """How many distinct contacts have an enrollment in any of these sequences."""
        ...

    def get_template(self, template_id: str) -> Template | None: ...

    def list_templates(self) -> list[Template]: ...

    def close(self) -> None: ...
