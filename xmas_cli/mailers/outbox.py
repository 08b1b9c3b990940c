"""The embedded mailer: one .eml file per email, in a folder.

A file is named after its scheduled email and created exclusively, so sending the same row again
finds the first file and reports its Message-ID instead of writing a second one, however much later.
The folder and the files are readable by their owner only (or a group: `[store] file_mode`).
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Sequence
from datetime import timedelta
from email import policy
from email.message import EmailMessage
from email.parser import BytesHeaderParser
from email.utils import format_datetime
from pathlib import Path

from ..errors import MailerUnavailable
from ..perms import DEFAULT_MODE, private_dir
from .base import OutgoingEmail, SendResult


def file_name(row_id: str, key: str) -> str:
    safe = re.sub(r"[^A-Za-z0-9@._-]+", "_", row_id)[:150]
    return f"{safe}--{key[-12:]}.eml"


def build_message(email: OutgoingEmail) -> EmailMessage:
    msg = EmailMessage(policy=policy.SMTP)
    domain = email.sender.rsplit("@", 1)[-1].strip(" >") or "xmas.invalid"
    msg["Message-ID"] = f"<{email.idempotency_key}@{domain}>"
    msg["Date"] = format_datetime(email.date)
    msg["From"] = email.sender
    msg["To"] = email.to
    msg["Reply-To"] = email.reply_to
    msg["Subject"] = email.subject
    for name, value in email.headers.items():
        msg[name] = value
    if email.tags:
        msg["X-Xmas-Tags"] = ", ".join(f"{k}={v}" for k, v in email.tags.items())
    msg.set_content(email.text)
    msg.add_alternative(email.html, subtype="html")
    return msg


class OutboxMailer:
    max_batch = 100
    key_ttl: timedelta | None = None  # a file stays: the same row is never written twice, however late it is sent again

    def __init__(self, folder: Path, file_mode: int = DEFAULT_MODE) -> None:
        self.folder = folder
        self.file_mode = file_mode
        self.description = f"outbox {folder}"

    def path_for(self, email: OutgoingEmail) -> Path:
        return self.folder / file_name(email.row_id, email.idempotency_key)

    def send(self, emails: Sequence[OutgoingEmail], batch_key: str | None = None) -> list[SendResult]:
        try:
            private_dir(self.folder, self.file_mode)
        except OSError as exc:
            raise MailerUnavailable(f"cannot create {self.folder}: {exc}", "check the [mailer] outbox path") from None
        return [self._send_one(email) for email in emails]

    def _send_one(self, email: OutgoingEmail) -> SendResult:
        target = self.path_for(email)
        try:
            msg = build_message(email)
        except (ValueError, TypeError, LookupError) as exc:  # e.g. a header the email library refuses
            return SendResult(email.row_id, error=f"not a valid email: {type(exc).__name__}: {exc}", permanent=True)
        if target.exists():
            return SendResult(email.row_id, self._message_id(target), note=f"already in the outbox: {target.name}")
        try:
            fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=".sending-")
            with os.fdopen(fd, "wb") as fh:
                os.fchmod(fh.fileno(), self.file_mode)
                fh.write(msg.as_bytes())
            try:
                os.link(tmp, target)  # atomic and exclusive: a second writer gets FileExistsError
            except FileExistsError:
                return SendResult(email.row_id, self._message_id(target), note=f"already in the outbox: {target.name}")
            finally:
                os.unlink(tmp)
        except OSError as exc:
            return SendResult(email.row_id, error=f"cannot write {target}: {exc}")
        return SendResult(email.row_id, str(msg["Message-ID"]))

    @staticmethod
    def _message_id(path: Path) -> str:
        with path.open("rb") as fh:
            return str(BytesHeaderParser(policy=policy.default).parse(fh)["Message-ID"])

    def close(self) -> None:
        pass
