"""The Mailer protocol the engine is given: send a batch, get one result per email, in order."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol


@dataclass(frozen=True)
class OutgoingEmail:
    row_id: str
    idempotency_key: str  # derived from the row's identity, never from the time
    to: str
    sender: str
    reply_to: str
    subject: str
    html: str
    text: str
    date: datetime
    headers: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SendResult:
    row_id: str
    message_id: str | None = None  # None with ok=True: accepted earlier, id unknown (see note)
    error: str | None = None
    permanent: bool = False  # a validation error: retrying cannot help
    attempted: bool = True  # False: the mailer gave up before trying this one (an outage); no attempt counted
    note: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


class Mailer(Protocol):
    description: str
    max_batch: int
    # How long the provider remembers an idempotency key (None: for ever). A batch whose outcome is still
    # unknown after that is not sent again (it could go twice): its rows are Failed for a person to check.
    key_ttl: timedelta | None

    def send(self, emails: Sequence[OutgoingEmail], batch_key: str | None = None) -> list[SendResult]:
        """Send up to max_batch emails; one result per email, in order.

        With `batch_key`, the caller has recorded this exact membership before the call and will retry
        with the same members, so the mailer may send them as one request under that one key. Without
        it, each email goes under its own `idempotency_key`. Never raises for one email's failure: that
        is in its result; raises MailerUnavailable only when nothing can be sent at all.
        """
        ...

    def close(self) -> None: ...


def batch_key(campaign: str, row_ids: Sequence[str]) -> str:
    """One key for a batch, derived from its membership: the same members always get the same key."""
    joined = "\n".join(sorted(row_ids))
    return f"xmas-{campaign}-batch-{hashlib.sha256(joined.encode()).hexdigest()[:40]}"


def idempotency_key(campaign: str, row_id: str) -> str:
    """`xmas-<campaign>-<hash>`: stable for a row, unique across campaigns, ASCII, under 256 chars."""
    return f"xmas-{campaign}-{hashlib.sha256(row_id.encode()).hexdigest()[:40]}"
