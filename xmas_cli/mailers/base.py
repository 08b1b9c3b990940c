"""The Mailer port the engine is given: send a batch, get one result per email, in order.

The data it moves (OutgoingEmail, SendResult, the idempotency keys) is pure and lives in core/outgoing.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Protocol

from email_validator import EmailNotValidError, validate_email

from ..core.outgoing import OutgoingEmail, SendResult

__all__ = ["Mailer", "OutgoingEmail", "SendResult", "ascii_address"]


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


def ascii_address(address: str) -> str:
    """`address` with its domain in the ASCII (IDNA) form mail is routed by: `user@bücher.example` becomes
    `user@xn--bcher-kva.example`. The store and every display keep the Unicode form the contact gave (or that
    validation made of `xn--` input); only what goes to a mailer is converted. Unchanged when already ASCII."""
    if address.isascii():
        return address
    try:
        found = validate_email(address, check_deliverability=False)
    except EmailNotValidError:
        return address  # not an address validation let through: the mailer refuses it with its own message
    return f"{found.local_part}@{found.ascii_domain}"
