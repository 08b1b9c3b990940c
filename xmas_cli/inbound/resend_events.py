"""Resend webhooks for bounces and complaints: a hard bounce or a spam complaint suppresses the address.

The HTTP route hands over the raw body and headers; this module checks the Svix signature with the
SDK and calls `engine.unsubscribe`, which is idempotent, so Resend's redeliveries are harmless.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from email.utils import parseaddr
from typing import Any

import resend

from ..clock import parse_instant
from ..engine import Engine, unsubscribe
from ..errors import JSON_VERSION, ConfigError, InvalidInput, Unauthorized

SECRET_FIX = (
    "set RESEND_WEBHOOK_SECRET to the signing secret (whsec_...) shown for this endpoint in "
    "Resend's dashboard (Webhooks)"
)
SIGNATURE_FIX = (
    "check that RESEND_WEBHOOK_SECRET is this endpoint's signing secret and that this server's clock "
    "is right (a signature is valid for 5 minutes)"
)
SVIX_HEADERS = ("svix-id", "svix-timestamp", "svix-signature")
SUPPRESSING = {"email.bounced": "bounced", "email.complained": "complained"}
AT_ONCE = 20  # delivery events a webhook records itself, where the store keeps no pace


@dataclass(frozen=True)
class WebhookOutcome:
    event_type: str
    action: str  # "suppressed" | "recorded" | "ignored"; a reply: "replied" | "held" | "recorded" | "ignored"
    emails: list[str]
    detail: str

    def to_json(self) -> dict[str, Any]:
        return {
            "version": JSON_VERSION,
            "ok": True,
            "event_type": self.event_type,
            "action": self.action,
            "emails": self.emails,
            "detail": self.detail,
        }


def handle_resend_webhook(
    engine: Engine,
    payload: str,
    headers: Mapping[str, str],
    secret: str | None,
    read_received: Callable[[str], Mapping[str, Any]] | None = None,
) -> WebhookOutcome:
    """Verify one delivery and act on it: a reply (`email.received`, see replies.py, which reads the email with
    `read_received`); otherwise record what happened to the email (queued, see delivery_queue.py), and suppress
    the address on a permanent bounce or a complaint."""
    event = verify(payload, headers, secret)
    event_type = str(event.get("type") or "")
    if event_type == "email.received":
        from .replies import handle_received

        action, emails, detail = handle_received(engine, event, read_received)
        return WebhookOutcome(event_type, action, emails, detail)
    data = event.get("data")
    data = data if isinstance(data, Mapping) else {}
    recorded = _record(engine, event, {k.lower(): v for k, v in headers.items()}.get("svix-id", ""))
    reason = SUPPRESSING.get(event_type)
    if reason is None:
        action = "recorded" if recorded else "ignored"
        what = f"{event_type or 'an event without a type'}: " + (recorded or "nothing to do")
        return WebhookOutcome(event_type, action, [], what)
    if event_type == "email.bounced":
        bounce = data.get("bounce")
        kind = bounce.get("type") if isinstance(bounce, Mapping) else None
        if kind != "Permanent":
            kept = f"{kind or 'unknown'} bounce: the address is kept"
            return WebhookOutcome(event_type, "recorded" if recorded else "ignored", [], kept)
    candidates, skipped = recipients(data.get("to"))
    suppressed: list[str] = []
    parts: list[str] = []
    for address in candidates:
        try:
            change = unsubscribe(engine, address, reason=reason)
        except InvalidInput:  # checked before anything is written
            skipped.append(address)
            continue
        suppressed.append(change.email)
        parts.append(f"{change.email}: {len(change.rows)} pending email(s) cancelled")
    parts += [f"skipped {value!r}: not an email address" for value in skipped]
    if not suppressed:
        detail = "; ".join(["no valid recipient in data.to", *parts])
        return WebhookOutcome(event_type, "ignored", [], detail)
    return WebhookOutcome(event_type, "suppressed", suppressed, f"{reason}: " + "; ".join(parts))


def _record(engine: Engine, event: Mapping[str, Any], webhook_id: str) -> str | None:
    """Queue the delivery event this webhook carries; where the store is a local file, apply it at once.
    What happened, in words, or None for an event that is not about one of our emails' delivery."""
    from ..core.deliveries import parse_event
    from .delivery_queue import drain, open_queue

    now = engine.clock.now()

    def when(text: str) -> datetime:
        try:
            return parse_instant(text, "created_at")
        except InvalidInput:
            return now

    parsed = parse_event(webhook_id, event, when)  # verify() refused a webhook without its svix-id
    if parsed is None:
        return None
    queue = open_queue(engine)
    try:
        if not queue.add(parsed, now):
            return f"delivery {webhook_id} was recorded before"
        # Recorded now where the store takes that many writes within a second (SQLite, PostgreSQL); on a paced
        # store (Notion) the webhook answers at once and the next tick records it.
        if engine.store.requests_within(1.0) >= AT_ONCE:
            drain(engine, queue, limit=AT_ONCE)
            return f"recorded for email {parsed.email_id}"
        return f"queued for email {parsed.email_id} (the next tick records it)"
    finally:
        queue.close()


def verify(payload: str, headers: Mapping[str, str], secret: str | None) -> Mapping[str, Any]:
    """The event, once its Svix signature checks out with `secret`; Unauthorized otherwise."""
    if not secret:
        raise ConfigError("RESEND_WEBHOOK_SECRET is not set", SECRET_FIX)
    try:
        base64.b64decode(secret.removeprefix("whsec_"), validate=True)
    except (binascii.Error, ValueError):
        raise ConfigError("RESEND_WEBHOOK_SECRET is not a webhook signing secret", SECRET_FIX) from None
    lowered = {name.lower(): value for name, value in headers.items()}
    missing = [name for name in SVIX_HEADERS if not lowered.get(name)]
    if missing:
        raise Unauthorized("webhook signature does not verify", f"missing header {', '.join(missing)}; {SIGNATURE_FIX}")
    try:
        event = resend.Webhooks.verify(
            {
                "payload": payload,
                "headers": {
                    "id": lowered["svix-id"],
                    "timestamp": lowered["svix-timestamp"],
                    "signature": lowered["svix-signature"],
                },
                "webhook_secret": secret,
            }
        )
    except ValueError as exc:
        if str(exc).startswith("failed to parse webhook payload"):  # signed, but not JSON
            raise InvalidInput("the webhook body is not JSON", "nothing was changed") from None
        raise Unauthorized("webhook signature does not verify", f"{exc}; {SIGNATURE_FIX}") from None
    if not isinstance(event, Mapping):
        raise InvalidInput("the webhook body is not a JSON object", "nothing was changed")
    return event


def recipients(value: Any) -> tuple[list[str], list[str]]:
    """Bare lower-case addresses from `data.to` (a list, or one string; `Name <addr>` allowed), and the rest."""
    items = [value] if isinstance(value, str) else value if isinstance(value, list) else []
    addresses: list[str] = []
    skipped: list[str] = []
    for item in items:
        address = parseaddr(item)[1].strip().lower() if isinstance(item, str) else ""
        if "@" in address:
            if address not in addresses:
                addresses.append(address)
        else:
            skipped.append(str(item))
    return addresses, skipped
