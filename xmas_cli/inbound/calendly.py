"""Calendly's webhooks: a booked call, a canceled call and a no-show, signed with the subscription's signing key.

The HTTP route (`POST /webhooks/calendly`) hands over the raw body and the `Calendly-Webhook-Signature` header;
this module checks the signature (HMAC-SHA256, hex, over "{t}.{raw body}", against the engine's clock), reads
the invitee from the delivery, and acts on it:

    invitee.created           → the event `booked` (cancels pending lead-nurture/assessment emails)
    invitee.canceled          → the event `call-canceled` (half of a reschedule: ignored, the new time follows)
    invitee_no_show.created   → a `noshow` enrollment, from the booking stored at invitee.created
    anything else             → ignored (202 with the reason)

Every event's key is derived from the invitee's URI and the event type, and enrollments have deterministic
ids, so Calendly's redeliveries change nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from .. import engine as core
from ..clock import parse_instant
from ..core import jsonin
from ..engine import Engine
from ..errors import JSON_VERSION, ConfigError, InvalidInput, Unauthorized
from .events import latest_booking, record_event

SIGNATURE_HEADER = "Calendly-Webhook-Signature"
TOLERANCE = timedelta(minutes=3)
KEY_FIX = (
    "set CALENDLY_WEBHOOK_SIGNING_KEY to the signing_key the webhook subscription was created with "
    "(Calendly generates it for OAuth apps)"
)
SIGNATURE_FIX = (
    "check that CALENDLY_WEBHOOK_SIGNING_KEY is this subscription's signing key and that this server's clock "
    "is right (a signature is valid for 3 minutes); nothing was changed"
)
BOOKED = "invitee.created"
CANCELED = "invitee.canceled"
NO_SHOW = "invitee_no_show.created"
EVENT_NAMES = {BOOKED: "booked", CANCELED: "call-canceled"}  # Calendly's event type → campaign.toml's [events.*]

_HEX = re.compile(r"[0-9a-fA-F]{64}")
_SEGMENT = re.compile(r"[A-Za-z0-9_-]{1,100}")
_INVITEE_PATH = re.compile(r"/scheduled_events/([A-Za-z0-9_-]{1,100})/invitees/[A-Za-z0-9_-]{1,100}$")
MAX_URI = 250


# -------------------------------------------------------------------------------------------- signature


@dataclass(frozen=True)
class Signature:
    timestamp: int  # unix seconds (`t=`)
    signatures: tuple[str, ...]  # the `v1=` values, lower-case hex


def _refused(problem: str) -> Unauthorized:
    return Unauthorized("webhook signature does not verify", f"{problem}; {SIGNATURE_FIX}")


def parse_signature(header: str | None) -> Signature:
    """`t=<unix seconds>,v1=<hex>` (several v1 allowed, other schemes skipped); Unauthorized when malformed."""
    if not header or not header.strip():
        raise _refused(f"missing header {SIGNATURE_HEADER}")
    timestamps: list[str] = []
    signatures: list[str] = []
    for part in header.split(","):
        name, sep, value = part.strip().partition("=")
        if not sep:
            raise _refused(f"malformed {SIGNATURE_HEADER}: expected t=<unix seconds>,v1=<hex>")
        if name == "t":
            timestamps.append(value.strip())
        elif name == "v1":
            signatures.append(value.strip())
    if len(timestamps) != 1 or not (timestamps[0].isascii() and timestamps[0].isdigit()) or len(timestamps[0]) > 12:
        raise _refused(f"malformed {SIGNATURE_HEADER}: it needs one timestamp t=<unix seconds>")
    if not signatures or not all(_HEX.fullmatch(s) for s in signatures):
        raise _refused(f"malformed {SIGNATURE_HEADER}: it needs a v1=<64 hex digits> signature")
    return Signature(int(timestamps[0]), tuple(s.lower() for s in signatures))


def sign(key: str, timestamp: int, body: bytes) -> str:
    """The v1 signature of `body` sent at `timestamp`: HMAC-SHA256, hex, over "{t}.{body}"."""
    return hmac.new(key.encode("utf-8"), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def signature_header(key: str, timestamp: int, body: bytes) -> str:
    """The header Calendly sends with `body` (tests and local tools sign deliveries with it)."""
    return f"t={timestamp},v1={sign(key, timestamp, body)}"


def verify(body: bytes, header: str | None, key: str | None, now: datetime, tolerance: timedelta = TOLERANCE) -> None:
    """Nothing when `header` signs exactly `body` with `key` within `tolerance` of `now`; Unauthorized otherwise."""
    if not key:
        raise ConfigError("CALENDLY_WEBHOOK_SIGNING_KEY is not set", KEY_FIX)
    signature = parse_signature(header)
    age = now.timestamp() - signature.timestamp
    if age > tolerance.total_seconds():
        raise _refused(f"the signature's timestamp is {int(age)} s old, more than {int(tolerance.total_seconds())} s")
    if -age > tolerance.total_seconds():
        raise _refused(f"the signature's timestamp is {int(-age)} s in the future")
    expected = sign(key, signature.timestamp, body)
    if not any(hmac.compare_digest(expected, given) for given in signature.signatures):
        raise _refused("the signature does not match the body")


# ---------------------------------------------------------------------------------------------- payload


@dataclass(frozen=True)
class Invitee:
    """What xmas uses of an invitee delivery (invitee.created, invitee.canceled, invitee_no_show.created)."""

    event_type: str
    uri: str  # https://api.calendly.com/scheduled_events/<event>/invitees/<invitee>
    email: str | None
    first_name: str | None  # `first_name`, else the first word of `name`
    at: datetime  # when it happened: the invitee's created_at (a booking), the cancellation's, else the delivery's
    event_id: str | None  # the scheduled event's UUID
    start_time: str | None  # the call's start, ISO 8601 as Calendly gives it
    event_name: str | None  # the scheduled event's name
    rescheduled: bool

    @property
    def key(self) -> str:
        return event_key(self.event_type, self.uri)


def event_key(event_type: str, invitee_uri: str) -> str:
    """One delivery's identity: the same invitee and event type is the same event, however often it comes."""
    return f"calendly:{event_type}:{invitee_uri}"


def parse_delivery(body: bytes) -> tuple[str, Mapping[str, Any]]:
    """The delivery's event type and its envelope; InvalidInput when it is not a Calendly webhook."""
    envelope = jsonin.loads(body, field="(body)", what="the webhook body")
    if not isinstance(envelope, Mapping):
        raise InvalidInput(
            "the webhook body is not a JSON object", "nothing was changed", [("(body)", "not a JSON object")]
        )
    event_type = envelope.get("event")
    if not isinstance(event_type, str) or not event_type:
        raise InvalidInput("the webhook body names no event", "nothing was changed", [("event", "missing")])
    return event_type, envelope


def _text(value: Any) -> str | None:
    return (value.strip() or None) if isinstance(value, str) else None


def _uri(value: Any) -> str | None:
    text = _text(value)
    if text and len(text) <= MAX_URI and text.startswith("https://") and text.isprintable() and " " not in text:
        return text
    return None


def _last_segment(uri: str | None) -> str | None:
    segment = uri.rstrip("/").rsplit("/", 1)[-1] if uri else None
    return segment if segment and _SEGMENT.fullmatch(segment) else None


def _instant(value: Any, field: str, problems: list[tuple[str, str]]) -> datetime | None:
    text = _text(value)
    if text is None:
        return None
    try:
        return parse_instant(text, field)
    except InvalidInput:
        problems.append((field, f"{text[:40]!r} is not an ISO 8601 time with an offset"))
        return None


def parse_invitee(event_type: str, envelope: Mapping[str, Any]) -> Invitee:
    """The invitee a delivery is about. For no-shows the payload is the invitee too (with `no_show` set);
    an `invitee` reference (a URI, or an object with `uri` and `email`) is read as well."""
    payload = envelope.get("payload")
    if not isinstance(payload, Mapping):
        raise InvalidInput(
            "the webhook body has no payload object", "nothing was changed", [("payload", "missing or not an object")]
        )
    problems: list[tuple[str, str]] = []
    reference = payload.get("invitee")
    reference = reference if isinstance(reference, Mapping) else {"uri": reference}
    uri = next(
        (u for u in (_uri(payload.get("uri")), _uri(reference.get("uri"))) if u and _INVITEE_PATH.search(u)), None
    )
    if uri is None:
        problems.append(("payload.uri", f"missing, or not an invitee URI of at most {MAX_URI} characters"))
    email = _text(payload.get("email")) or _text(reference.get("email"))
    scheduled = payload.get("scheduled_event")
    scheduled = scheduled if isinstance(scheduled, Mapping) else {}
    event_uri = _uri(scheduled.get("uri")) or _uri(payload.get("event"))
    match = _INVITEE_PATH.search(uri or "")
    event_id = _last_segment(event_uri) or (match.group(1) if match else None)
    start_time = _text(scheduled.get("start_time"))
    if start_time is not None and _instant(start_time, "payload.scheduled_event.start_time", problems) is None:
        start_time = None
    name = _text(payload.get("name"))
    first_name = _text(payload.get("first_name")) or (name.split()[0] if name else None)
    cancellation = payload.get("cancellation")
    cancellation = cancellation if isinstance(cancellation, Mapping) else {}
    own = cancellation.get("created_at") if event_type == CANCELED else payload.get("created_at")
    at = _instant(own, "payload.created_at", problems) or _instant(envelope.get("created_at"), "created_at", problems)
    if at is None and not problems:
        problems.append(("created_at", "missing"))
    if problems:
        raise InvalidInput(
            f"invalid Calendly {event_type} delivery: {len(problems)} problem(s)", "nothing was changed", problems
        )
    assert uri is not None and at is not None
    return Invitee(
        event_type,
        uri,
        email,
        first_name,
        at,
        event_id,
        start_time,
        _text(scheduled.get("name")),
        payload.get("rescheduled") is True,
    )


def booking_data(invitee: Invitee) -> dict[str, str | None]:
    """What a `booked` (or `call-canceled`) event stores: enough to enroll a no-show later without Calendly."""
    return {
        "calendly_event_id": invitee.event_id,
        "start_time": invitee.start_time,
        "first_name": invitee.first_name,
        "invitee_uri": invitee.uri,
        "name": invitee.event_name,
    }


# --------------------------------------------------------------------------------------------- handling


@dataclass(frozen=True)
class CalendlyOutcome:
    status: int  # 200 acted on (the result document), 202 not acted on (the reason)
    document: dict[str, Any]


def ignored(reason: str) -> CalendlyOutcome:
    return CalendlyOutcome(202, {"version": JSON_VERSION, "ok": True, "ignored": reason})


def _require(invitee: Invitee, **fields: str | None) -> None:
    missing = [(f"payload.{name}", "missing") for name, value in fields.items() if not value]
    if missing:
        raise InvalidInput(
            f"invalid Calendly {invitee.event_type} delivery: {len(missing)} problem(s)", "nothing was changed", missing
        )


def handle_calendly_webhook(engine: Engine, body: bytes, header: str | None, key: str | None) -> CalendlyOutcome:
    """Verify one delivery against the engine's clock and act on it."""
    verify(body, header, key, engine.clock.now())
    event_type, envelope = parse_delivery(body)
    if event_type not in (BOOKED, CANCELED, NO_SHOW):
        return ignored(f"{event_type[:80]}: not an event xmas acts on")
    invitee = parse_invitee(event_type, envelope)
    if event_type == NO_SHOW:
        return _no_show(engine, invitee)
    if event_type == CANCELED and invitee.rescheduled:
        return ignored("invitee.canceled for a reschedule: the new time arrives as invitee.created")
    _require(
        invitee,
        email=invitee.email,
        **(
            {"scheduled_event.uri": invitee.event_id, "scheduled_event.start_time": invitee.start_time}
            if event_type == BOOKED
            else {}
        ),
    )
    assert invitee.email is not None
    data: dict[str, Any] = booking_data(invitee)
    if event_type == CANCELED:
        data["rescheduled"] = invitee.rescheduled
    result = record_event(engine, EVENT_NAMES[event_type], invitee.email, at=invitee.at, data=data, key=invitee.key)
    return CalendlyOutcome(200, result.to_json())


def _no_show(engine: Engine, invitee: Invitee) -> CalendlyOutcome:
    """A no-show enrolls from the booking stored at invitee.created: its event id, start time and first name."""
    if not invitee.email:
        return ignored(f"no-show for {invitee.uri}: the delivery names no address, so no booking can be found")
    booking = latest_booking(engine, invitee.email)
    if booking is None or booking.data.get("invitee_uri") != invitee.uri:
        return ignored(
            f"no-show for {invitee.uri}: no booking of this invitee on record (invitee.created "
            "was never received); nothing was changed"
        )
    data = booking.data
    result = core.enroll(
        engine,
        "noshow",
        {
            "email": booking.email,
            "first_name": data.get("first_name") or invitee.first_name,
            "calendly_event_id": data.get("calendly_event_id"),
            "scheduled_time": data.get("start_time"),
        },
    )
    return CalendlyOutcome(200, result.to_json())
