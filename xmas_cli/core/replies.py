"""What kind of mail a received email is: a person's reply, an automatic reply, or a bounce notice.

Pure: the headers of the received email (Resend's `headers` object: lower-case names to values), its sender and
its subject in, a verdict with the reason out. The rules, strongest first:

1. A bounce notice: the sender is MAILER-DAEMON or postmaster, or the body is a delivery-status report
   (`Content-Type: multipart/report; report-type=delivery-status`, RFC 3464).
2. RFC 3834: `Auto-Submitted` with any value other than `no` (auto-replied, auto-generated, auto-notified).
3. The common non-standard markers of vacation responders: `X-Autoreply`, `X-Autorespond`, `Precedence:
   auto_reply | bulk | junk | list`, `X-MS-Exchange-Inbox-Rules-Loop`, mailing-list headers (`List-Id`,
   `List-Unsubscribe`), and a null envelope sender (`Return-Path: <>`), which RFC 3834 asks responders to use.
4. A subject such as "Automatic reply:", "Auto:", "Out of Office" (a heuristic, said so in the reason).

`X-Auto-Response-Suppress` alone is not a marker: Outlook puts it on mail people write too.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

HUMAN = "human"
AUTO_REPLY = "auto-reply"
BOUNCE = "bounce"

_BOUNCERS = ("mailer-daemon", "postmaster")
_PRECEDENCE = ("auto_reply", "bulk", "junk", "list")
_MARKERS = ("x-autoreply", "x-autorespond", "x-ms-exchange-inbox-rules-loop", "list-id", "list-unsubscribe")
_SUBJECTS = re.compile(
    r"^\s*(automatic reply|auto(matic)?[ -]?(reply|response)|auto:|out of (the )?office|abwesenheitsnotiz|"
    r"r[ée]ponse automatique|respuesta autom[áa]tica|undeliverable:|delivery status notification|"
    r"mail delivery failed|returned mail:)",
    re.IGNORECASE,
)
_BOUNCE_SUBJECTS = re.compile(
    r"^\s*(undeliverable|delivery status notification|mail delivery failed|returned mail)", re.IGNORECASE
)


@dataclass(frozen=True)
class Verdict:
    kind: str  # HUMAN | AUTO_REPLY | BOUNCE
    reason: str  # what decided it, e.g. "Auto-Submitted: auto-replied"; "" for a person's reply

    @property
    def automatic(self) -> bool:
        return self.kind != HUMAN


def header_map(headers: Any) -> dict[str, str]:
    """Resend's `headers` with lower-case names; a repeated header given as a list is joined, anything that is not
    text is left out (the docs leave repeated names open)."""
    out: dict[str, str] = {}
    if not isinstance(headers, Mapping):
        return out
    for name, value in headers.items():
        if isinstance(value, list):
            value = ", ".join(str(v) for v in value if isinstance(v, str | int))
        if isinstance(name, str) and isinstance(value, str | int):
            out[name.strip().lower()] = str(value).strip()
    return out


def classify(headers: Mapping[str, str], sender: str, subject: str) -> Verdict:
    """The verdict on one received email; `headers` as `header_map` returns them."""
    address = bare_address(headers.get("from") or sender) or bare_address(sender)
    local = address.partition("@")[0].strip().lower()
    content_type = headers.get("content-type", "").lower().replace(" ", "")
    if local in _BOUNCERS:
        return Verdict(BOUNCE, f"sent by {local.upper() if local == 'mailer-daemon' else local}")
    if content_type.startswith("multipart/report") and "report-type=delivery-status" in content_type:
        return Verdict(BOUNCE, "Content-Type: multipart/report; report-type=delivery-status")
    submitted = headers.get("auto-submitted", "").partition(";")[0].strip().lower()
    if submitted and submitted != "no":
        return Verdict(AUTO_REPLY, f"Auto-Submitted: {submitted}")
    for name in _MARKERS:
        value = headers.get(name)
        if value is not None and value.strip().lower() not in ("no", "false", "0"):
            return Verdict(AUTO_REPLY, f"{_title(name)}: {value}" if value else _title(name))
    precedence = headers.get("precedence", "").strip().lower()
    if precedence in _PRECEDENCE:
        return Verdict(AUTO_REPLY, f"Precedence: {precedence}")
    if headers.get("return-path", "").replace(" ", "") == "<>":
        kind = BOUNCE if _BOUNCE_SUBJECTS.match(subject) else AUTO_REPLY
        return Verdict(kind, "Return-Path: <> (a null envelope sender)")
    if _SUBJECTS.match(subject):
        kind = BOUNCE if _BOUNCE_SUBJECTS.match(subject) else AUTO_REPLY
        return Verdict(kind, f"subject {subject.strip()[:60]!r}")
    return Verdict(HUMAN, "")


def bare_address(text: str) -> str:
    """`Ada <ada@example.com>` or `ada@example.com` → `ada@example.com` (lower case); "" when there is none."""
    found = re.findall(r"<([^<>]*)>", text)
    address = (found[-1] if found else text).strip().strip('"').lower()
    return address if "@" in address and not any(c.isspace() for c in address) else ""


def _title(name: str) -> str:
    return "-".join(part.upper() if part in ("ms", "id") else part.capitalize() for part in name.split("-"))
