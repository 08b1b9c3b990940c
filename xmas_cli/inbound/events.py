"""Funnel events: what a contact did, so that a correct engine does not send the wrong email.

`record_event` records an event (campaign.toml's [events.NAME]) on its contact, once per key, and applies it:
the contact's pending emails in the sequences the event cancels become Cancelled, noted "<event> at <time>".
Whether a contact counts as having booked a call follows its latest event that says so (`counts_as_booking`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import TypeAdapter, ValidationError

from ..clock import iso, parse_instant
from ..core.model import Contact, Event, ScheduledEmail
from ..core.payloads import EARLIEST, LATEST, Email, extra_problems
from ..engine import Engine, cancel_pending, contact_json, contact_lock, event_json, row_json
from ..errors import JSON_VERSION, InvalidInput

_ADDRESS: TypeAdapter[str] = TypeAdapter(Email)


@dataclass(frozen=True)
class EventResult:
    event: Event
    recorded: bool  # False: an event with this key was recorded before, and nothing changed
    contact: Contact
    cancelled: list[ScheduledEmail]

    def to_json(self) -> dict[str, Any]:
        return {
            "version": JSON_VERSION,
            "ok": True,
            "event": event_json(self.event),
            "recorded": self.recorded,
            "contact": contact_json(self.contact),
            "cancelled": [row_json(r) for r in self.cancelled],
        }


def _address(email: str) -> str:
    try:
        return str(_ADDRESS.validate_python(email))
    except ValidationError as exc:
        problem = str(exc.errors()[0]["msg"]).removeprefix("Value error, ")
        raise InvalidInput(
            f"invalid email address {email!r}", "give the contact's address", [("email", problem)]
        ) from None


def _data(data: Any) -> dict[str, Any]:
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InvalidInput(
            "the event's data must be a JSON object", 'send {"key": "value", ...}', [("data", "not an object")]
        )
    problems = extra_problems(data)
    if problems:
        raise InvalidInput(
            f"invalid event data: {len(problems)} problem(s)",
            "fix the fields listed; nothing was written",
            [(f"data.{field}", problem) for field, problem in problems],
        )
    return dict(data)


def record_event(
    engine: Engine,
    name: str,
    email: str,
    *,
    at: datetime | None = None,
    data: Any = None,
    key: str | None = None,
) -> EventResult:
    """Record `name` for the contact (created if new) and apply it; the same key again changes nothing."""
    campaign, store = engine.campaign, engine.store
    campaign.event(name)
    address = _address(email)
    values = _data(data)
    now = engine.clock.now()
    when = at or now
    if key is not None and not (0 < len(key) <= 300 and key.isprintable()):
        raise InvalidInput(
            "the event's key must be 1 to 300 printable characters",
            "send a shorter key",
            [("key", "too long or not printable")],
        )
    event = Event(key or f"{name}@{iso(when)}", address, name, when, values, now)
    with contact_lock(engine, address):
        contact = store.get_contact(address) or store.save_contact(Contact(email=address, updated_at=now))
        if not store.add_event(event):
            return EventResult(event, False, contact, [])
        targets = campaign.cancelled_by(name)
        rows = (r for r in store.emails_for_contact(address) if r.sequence in targets)
        cancelled = cancel_pending(store, rows, f"{name} at {iso(when)}")
    return EventResult(event, True, contact, cancelled)


def latest_booking(engine: Engine, email: str) -> Event | None:
    """The contact's latest booking (an event with counts_as_booking = true), or None."""
    return engine.campaign.booking_news(engine.store.events_for_contact(email.strip().lower()), booked_only=True)


REQUEST_FIELDS = ("email", "at", "data", "key")


def record_from_request(engine: Engine, name: str, raw: Any) -> EventResult:
    """`xmas event` and `POST /events/NAME` alike: {"email", "at"?, "data"?, "key"?} validated, then recorded."""
    if not isinstance(raw, dict):
        raise InvalidInput(
            "the event must be a JSON object",
            'send {"email": ..., "at": ..., "data": {...}}',
            [("(body)", f"got {type(raw).__name__}")],
        )
    unknown = sorted(str(k) for k in raw if k not in REQUEST_FIELDS)
    if unknown:
        raise InvalidInput(
            f"unknown field(s) in the event: {', '.join(unknown)}",
            f"send only {', '.join(REQUEST_FIELDS)}; details go in data",
            [(k, "is not a field of an event") for k in unknown],
        )
    if not isinstance(raw.get("email"), str):
        raise InvalidInput("the event names no contact", "send the contact's email address", [("email", "is required")])
    at = raw.get("at")
    when = None
    if at is not None:
        if not isinstance(at, str):
            raise InvalidInput("invalid event time", "send ISO 8601 with an offset", [("at", "is not text")])
        when = parse_instant(at, "at")
        if not EARLIEST <= when < LATEST:
            raise InvalidInput("invalid event time", "send a time from 2000 up to 2100", [("at", "is out of range")])
    key = raw.get("key")
    if key is not None and not isinstance(key, str):
        raise InvalidInput("invalid event key", "send it as text", [("key", "is not text")])
    return record_event(engine, name, raw["email"], at=when, data=raw.get("data"), key=key)
