"""The embedded mailer: one .eml file per email, in a folder.

A file is named after its scheduled email and created exclusively, so sending the same row again
finds the first file and reports its Message-ID instead of writing a second one, however much later.
The folder and the files are readable by their owner only (or a group: `[store] file_mode`).

The message is assembled here (message_bytes); its headers are parsed and folded by the standard library under
the SMTP policy (RFC 2047 encoded-words where a value is not ASCII), except the URL-bearing ones (base.URL_HEADERS):
those stay plain ASCII, folded only at their own whitespace, because a mail client reads the one-click unsubscribe URL
straight from the raw header.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import os
import re
import tempfile
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from email import policy
from email.headerregistry import BaseHeader, HeaderRegistry, UnstructuredHeader
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
MAX_BODY_LINE = 78  # longer body lines are quoted-printable (or base64), as EmailMessage.set_content does
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


def boundary_for(email: OutgoingEmail) -> str:
    """The MIME boundary, from the email's key: the same email composes to the same bytes. It cannot occur in a
    quoted-printable or base64 body ("=_"); where the text or HTML holds it as is, a numbered one that it does not."""
    boundary = f"=_xmas_{hashlib.sha256(email.idempotency_key.encode()).hexdigest()[:32]}"
    number = 0
    candidate = boundary
    while candidate in email.text or candidate in email.html:
        number += 1
        candidate = f"{boundary}_{number}"
    return candidate


def message_bytes(email: OutgoingEmail, sent_at: datetime | None = None) -> tuple[bytes, str]:
    """The .eml file's bytes and its Message-ID. Its Date is `sent_at`, when the mailer writes it (RFC 5322 3.6.1: when
    the message was ready to go), else the time it was composed for.

    Written directly, not through EmailMessage and its generator (1.3 ms an email, most of it folding the same
    headers again): each header is parsed and folded by the standard library's SMTP policy once per value (From,
    Reply-To, the one-click header and the tags are the same on many emails), and the two parts are encoded here
    as the library would choose (7bit, 8bit, quoted-printable or base64)."""
    domain = email.sender.rsplit("@", 1)[-1].strip(" >") or "xmas.invalid"
    message_id = f"<{email.idempotency_key}@{domain}>"
    head = [
        _folded("Message-ID", message_id),
        _folded("Date", format_datetime(sent_at or email.date)),
        _folded("From", email.sender),
        _folded("To", ascii_address(email.to)),  # an international domain in its ASCII form
        _folded("Reply-To", email.reply_to),
        _folded("Subject", email.subject),
    ]
    for name, value in email.headers.items():
        try:
            head.append(_folded(name, value))
        except ValueError as exc:
            raise ValueError(f"{name}: {exc}") from None
    if email.tags:
        head.append(_folded("X-Xmas-Tags", ", ".join(f"{k}={v}" for k, v in email.tags.items())))
    boundary = boundary_for(email)
    head.append(f'MIME-Version: 1.0\r\nContent-Type: multipart/alternative;\r\n boundary="{boundary}"\r\n\r\n'.encode())
    separator = f"--{boundary}\r\n".encode()
    return b"".join(
        [
            *head,
            separator,
            _part("plain", email.text),
            separator,
            _part("html", email.html),
            f"--{boundary}--\r\n".encode(),
        ]
    ), message_id


def _folded(name: str, value: str) -> bytes:
    """`Name: value` as the SMTP policy writes it (RFC 2047 where not ASCII, folded at 78), once per (name, value)."""
    key = (name, value)
    found = _FOLDED.get(key)
    if found is None:
        if len(_FOLDED) >= PARSED_KEPT:
            _FOLDED.clear()
        stored_name, header = POLICY.header_store_parse(name, value)
        found = _FOLDED[key] = POLICY.fold_binary(stored_name, header)
    return found


_FOLDED: dict[tuple[str, str], bytes] = {}


def _part(subtype: str, content: str) -> bytes:
    """One text part, encoded as EmailMessage.set_content would: lines of at most 78 bytes go as they are (7bit if
    ASCII, else 8bit: the SMTP policy allows it); longer ones quoted-printable, or base64 where quoting would make
    them longer (mostly non-Latin text). Line ends become CRLF; the body ends with one."""
    lines = content.encode("utf-8").splitlines()
    body = b"\r\n".join(lines) + b"\r\n"
    if max(map(len, lines), default=0) <= MAX_BODY_LINE:
        cte = "7bit" if body.isascii() else "8bit"
    elif 6 * (len(body) - len(content.encode("ascii", "ignore"))) > len(body):  # a sixth not ASCII: qp is longer
        cte = "base64"
        body = b"\r\n".join(_base64_lines(body)) + b"\r\n"
    else:
        cte = "quoted-printable"
        body = binascii.b2a_qp(b"\n".join(lines) + b"\n", istext=True).replace(b"\n", b"\r\n")
    type_line = f'Content-Type: text/{subtype}; charset="utf-8"\r\nContent-Transfer-Encoding: {cte}\r\n\r\n'
    return type_line.encode() + body + b"\r\n"


def _base64_lines(data: bytes) -> list[bytes]:
    encoded = base64.b64encode(data)
    return [encoded[i : i + 76] for i in range(0, len(encoded), 76)]


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
            data, message_id = message_bytes(email, self.now() if self.now else None)
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
        return SendResult(email.row_id, message_id)

    @staticmethod
    def _message_id(path: Path) -> str:
        with path.open("rb") as fh:
            return str(BytesHeaderParser(policy=policy.default).parse(fh)["Message-ID"])

    def close(self) -> None:
        pass
