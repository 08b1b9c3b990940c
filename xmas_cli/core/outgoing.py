"""Pure: the email a row becomes on its way out (OutgoingEmail), what a send returns (SendResult), the idempotency
keys that make a retry safe, and the rules for headers that carry URLs."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from pydantic import validate_email
from pydantic_core import PydanticCustomError

# Headers whose value is one or more <URL>s (RFC 2369's List-*, RFC 8058's List-Unsubscribe-Post, RFC 5064's
# Archived-At): a mail client reads them straight from the raw header, so they travel as plain ASCII, never RFC 2047
# encoded-words. Names in lower case.
URL_HEADERS = frozenset(
    {
        "list-unsubscribe",
        "list-unsubscribe-post",
        "list-help",
        "list-subscribe",
        "list-post",
        "list-owner",
        "list-archive",
        "archived-at",
    }
)
_BRACKETED = re.compile(r"<[^<>]*>")
_UNPRINTABLE = re.compile(r"[^\t\x20-\x7e]")


def _percent_encode(match: re.Match[str]) -> str:
    """Non-ASCII characters of one <URL> as %XX of their UTF-8 bytes (RFC 3987 3.1, IRI to URI; RFC 6068 for mailto)."""
    url = match.group()
    if url.isascii():
        return url
    try:
        return "".join(c if c.isascii() else "".join(f"%{b:02X}" for b in c.encode("utf-8")) for c in url)
    except UnicodeEncodeError:
        raise ValueError(f"{url!r} is not text (a lone surrogate)") from None


def plain_header_value(value: str) -> str:
    """The value of a URL-bearing header (URL_HEADERS) as it must travel: printable ASCII only.

    Non-ASCII inside a <URL> is percent-encoded (the same URL to a client); anything else that is not printable
    ASCII (a line break, a control character, non-ASCII text outside the brackets) raises ValueError: no encoding
    could carry it and leave the header readable.
    """
    plain = _BRACKETED.sub(_percent_encode, value.strip())
    bad = _UNPRINTABLE.search(plain)
    if bad is not None:
        raise ValueError(f"{bad.group()!r} at {bad.start()} of {plain!r}: a URL header is printable ASCII only")
    return plain


def plain_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """`headers` with every URL-bearing value made plain (plain_header_value); ValueError names the header."""
    plain = dict(headers)
    for name, value in headers.items():
        if name.lower() in URL_HEADERS:
            try:
                plain[name] = plain_header_value(value)
            except ValueError as exc:
                raise ValueError(f"{name}: {exc}") from None
    return plain


def stored_address(address: str) -> str:
    """An address given to look a contact up, as the stores key it: trimmed, lower case, an `xn--` domain in its
    Unicode form (as enrollment's validation stores it), so either spelling finds the contact."""
    text = address.strip().lower()
    if "xn--" not in text:
        return text
    try:
        return validate_email(text)[1].lower()
    except PydanticCustomError:
        return text


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


def batch_key(campaign: str, row_ids: Sequence[str]) -> str:
    """One key for a batch, derived from its membership: the same members always get the same key."""
    joined = "\n".join(sorted(row_ids))
    return f"xmas-{campaign}-batch-{hashlib.sha256(joined.encode()).hexdigest()[:40]}"


def idempotency_key(campaign: str, row_id: str) -> str:
    """`xmas-<campaign>-<hash>`: stable for a row, unique across campaigns, ASCII, under 256 chars."""
    return f"xmas-{campaign}-{hashlib.sha256(row_id.encode()).hexdigest()[:40]}"
