"""The embedded mailer: one .eml file per email, in a folder.

A file is named after its scheduled email and created exclusively, so sending the same row again
finds the first file and reports its Message-ID instead of writing a second one, however much later.
The folder and the files are readable by their owner only (or a group: `[store] file_mode`).

Headers are written by the standard library under the SMTP policy (RFC 2047 encoded-words where a value is not
ASCII), except the URL-bearing ones (base.URL_HEADERS): those stay plain ASCII, folded only at their own whitespace,
because a mail client reads the one-click unsubscribe URL straight from the raw header.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tempfile
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from email import policy
from email.headerregistry import BaseHeader, HeaderRegistry, UnstructuredHeader
from email.message import EmailMessage
from email.parser import BytesHeaderParser
from email.policy import Policy
from email.utils import format_datetime
from pathlib import Path
from typing import Any, ClassVar, Literal

from ..core.outgoing import URL_HEADERS, OutgoingEmail, SendResult, plain_header_value
from ..errors import MailerUnavailable
from ..perms import DEFAULT_MODE, disk_full, full_disk_fix, private_dir
from .base import ascii_address

PARSED_KEPT = 4096  # parsed headers kept for reuse (most are the same on every email)
MAX_LINE = 998  # RFC 5322 2.1.1: a header line is at most 998 characters, whatever the folding
_WORDS = re.compile(r"[ \t]*[^ \t]+")  # a run of non-whitespace with the whitespace before it


class PlainHeader(BaseHeader):
    """A URL-bearing header: printable ASCII (plain_header_value), never RFC 2047-encoded, folded only before the
    whitespace its value already has (so unfolding gives back the value exactly)."""

    max_count: ClassVar[Literal[1] | None] = 1

    @classmethod
    def parse(cls, value: str, kwds: dict[str, Any]) -> None:
        kwds["decoded"] = plain = plain_header_value(str(value))
        kwds["parse_tree"] = UnstructuredHeader.value_parser(plain)

    def fold(self, *, policy: Policy) -> str:
        width = policy.max_line_length or 0  # None or 0: no folding
        lines, line = [], f"{self.name}:"
        for index, word in enumerate(_WORDS.findall(str(self))):
            if index == 0:
                word = f" {word}"
            elif width and len(line) + len(word) > width:
                lines.append(line)
                line = ""  # the next line starts with the word's whitespace: a folded line
            line += word
        lines.append(line)
        longest = max(lines, key=len)
        if len(longest) > MAX_LINE:
            raise ValueError(
                f"{self.name}: a line of {len(longest)} characters (at most {MAX_LINE}) without whitespace"
            )
        return policy.linesep.join(lines) + policy.linesep


class _HeaderClasses(HeaderRegistry):
    """The standard registry, with PlainHeader for the URL headers, building each header class once.

    `HeaderRegistry` creates a new class (`type(...)`) for every header it parses, about twenty per .eml; these
    classes hold no state, so one per header name serves every message.
    """

    def __init__(self) -> None:
        super().__init__()
        for name in URL_HEADERS:
            super().map_to_type(name, PlainHeader)
        self._built: dict[str, type[BaseHeader]] = {}
        self._parsed: dict[tuple[str, str], BaseHeader] = {}

    def map_to_type(self, name: str, cls: type[BaseHeader]) -> None:
        super().map_to_type(name, cls)
        self._built.pop(name.lower(), None)

    def __getitem__(self, name: str) -> type[BaseHeader]:
        key = name.lower()
        built = self._built.get(key)
        if built is None:
            built = self._built[key] = super().__getitem__(key)
        return built

    def __call__(self, name: str, value: Any) -> BaseHeader:
        """A header parsed once per (name, value): From, Reply-To, MIME-Version, the content types and the one-click
        header are the same on every email, and parsing an address header is most of composing an .eml. Header
        objects are immutable strings, so one serves every message."""
        if not isinstance(value, str):
            return self[name](name, value)
        key = (name.lower(), value)
        header = self._parsed.get(key)
        if header is None:
            if len(self._parsed) >= PARSED_KEPT:
                self._parsed.clear()
            header = self._parsed[key] = self[name](name, value)
        return header


# RFC 5322 output, CRLF line ends, lines folded at 78 where they can be; one registry for every message
POLICY = policy.SMTP.clone(header_factory=_HeaderClasses())


def file_name(row_id: str, key: str) -> str:
    safe = re.sub(r"[^A-Za-z0-9@._-]+", "_", row_id)[:150]
    return f"{safe}--{key[-12:]}.eml"


def boundary_for(email: OutgoingEmail) -> str | None:
    """The MIME boundary, from the email's key: the same email composes to the same bytes, and the generator does not
    search the bodies for a random one (a regular expression compiled per message). It cannot occur in a quoted-
    printable or base64 body ("=_"); None if the text or HTML has it as is: the generator then picks one."""
    boundary = f"=_xmas_{hashlib.sha256(email.idempotency_key.encode()).hexdigest()[:32]}"
    return None if boundary in email.text or boundary in email.html else boundary


def build_message(email: OutgoingEmail, sent_at: datetime | None = None) -> EmailMessage:
    """The email as an RFC 5322 message. Its Date is `sent_at`, when the mailer writes it (RFC 5322 3.6.1: when
    the message was ready to go), else the time it was composed for."""
    msg = EmailMessage(policy=POLICY)
    domain = email.sender.rsplit("@", 1)[-1].strip(" >") or "xmas.invalid"
    msg["Message-ID"] = f"<{email.idempotency_key}@{domain}>"
    msg["Date"] = format_datetime(sent_at or email.date)
    msg["From"] = email.sender
    msg["To"] = ascii_address(email.to)  # an international domain in its ASCII form
    msg["Reply-To"] = email.reply_to
    msg["Subject"] = email.subject
    for name, value in email.headers.items():
        try:
            msg[name] = value
        except ValueError as exc:
            raise ValueError(f"{name}: {exc}") from None
    if email.tags:
        msg["X-Xmas-Tags"] = ", ".join(f"{k}={v}" for k, v in email.tags.items())
    msg.set_content(email.text)
    msg.make_alternative(boundary=boundary_for(email))
    msg.add_alternative(email.html, subtype="html")
    return msg


class OutboxMailer:
    max_batch = 100
    key_ttl: timedelta | None = None  # a file stays: the same row is never written twice, however late it is sent again

    def __init__(self, folder: Path, file_mode: int = DEFAULT_MODE, now: Callable[[], datetime] | None = None) -> None:
        """`now`: the engine's clock, read as each file is written for its Date header (the wiring always gives
        it; without it, Date is the time the email was composed for)."""
        self.folder = folder
        self.file_mode = file_mode
        self.now = now
        self.description = f"outbox {folder}"

    def path_for(self, email: OutgoingEmail) -> Path:
        return self.folder / file_name(email.row_id, email.idempotency_key)

    def send(self, emails: Sequence[OutgoingEmail], batch_key: str | None = None) -> list[SendResult]:
        try:
            private_dir(self.folder, self.file_mode)
        except OSError as exc:
            if disk_full(self.folder, exc):
                what = f"cannot create {self.folder}: the disk is full"
                raise MailerUnavailable(what, full_disk_fix(self.folder)) from None
            raise MailerUnavailable(f"cannot create {self.folder}: {exc}", "check the [mailer] outbox path") from None
        return [self._send_one(email) for email in emails]

    def _send_one(self, email: OutgoingEmail) -> SendResult:
        target = self.path_for(email)
        try:
            msg = build_message(email, self.now() if self.now else None)
            data = msg.as_bytes()
        except (ValueError, TypeError, LookupError) as exc:  # e.g. a header the email library refuses
            return SendResult(email.row_id, error=f"not a valid email: {type(exc).__name__}: {exc}", permanent=True)
        if target.exists():
            return SendResult(email.row_id, self._message_id(target), note=f"already in the outbox: {target.name}")
        tmp = ""
        try:
            fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=".sending-")
            with os.fdopen(fd, "wb") as fh:
                os.fchmod(fh.fileno(), self.file_mode)
                fh.write(data)
            os.link(tmp, target)  # atomic and exclusive: a second writer gets FileExistsError
        except FileExistsError:
            return SendResult(email.row_id, self._message_id(target), note=f"already in the outbox: {target.name}")
        except OSError as exc:
            if disk_full(self.folder, exc):
                return SendResult(email.row_id, error=f"cannot write {target}: {full_disk_fix(target)}")
            return SendResult(email.row_id, error=f"cannot write {target}: {exc}")
        finally:
            if tmp:  # written or not, the temporary file goes (on a full disk, a failed write leaves it half-written)
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
        return SendResult(email.row_id, str(msg["Message-ID"]))

    @staticmethod
    def _message_id(path: Path) -> str:
        with path.open("rb") as fh:
            return str(BytesHeaderParser(policy=policy.default).parse(fh)["Message-ID"])

    def close(self) -> None:
        pass
