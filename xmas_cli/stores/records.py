"""Stored records → model objects, for the SQL stores (SQLite and PostgreSQL): one reader for both.

A stored value that cannot be read (a hand edit, a bug) never stops a command: the row is read as well as it can
be, with the reason in `defect` (core/rows.py: the damaged-row policy). SQLite hands over text (times as ISO 8601,
data as JSON text); PostgreSQL hands over typed values (timestamptz, jsonb): each converter takes either.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, Protocol

from ..core.deliveries import from_json
from ..core.model import Contact, Delivery, Event, ScheduledEmail, Sender, State, parse_consent
from ..core.rows import damage

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class Record(Protocol):
    """A row read by name: sqlite3.Row, or a dict from psycopg's dict_row."""

    def __getitem__(self, key: str, /) -> Any: ...


def read_time(value: Any) -> datetime | None:
    if not value:
        return None
    parsed = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    if parsed.tzinfo is None:
        raise ValueError(f"{value!r} has no UTC offset")
    return parsed.astimezone(UTC)


class _Reader:
    """Reads one stored record field by field; a field that cannot be read gets a default and a defect."""

    def __init__(self, r: Record) -> None:
        self.r = r
        self.defects: list[str] = []

    def get(self, name: str, convert: Callable[[Any], Any], default: Any) -> Any:
        value = self.r[name]
        try:
            return convert(value)
        except (TypeError, ValueError, OverflowError, RecursionError) as exc:
            self.defects.append(f"{name} {str(value)[:60]!r} cannot be read ({type(exc).__name__})")
            return default

    @property
    def defect(self) -> str | None:
        return damage(self.defects)


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError("not text")
    return value


def _optional_text(value: Any) -> str | None:
    return None if value is None else str(value)


def _json_object(value: Any) -> dict[str, Any]:
    found = value if isinstance(value, dict) else json.loads(value)
    if not isinstance(found, dict):
        raise ValueError("not a JSON object")
    return found


def _delivery(value: Any) -> Delivery:
    return from_json(_json_object(value)) if value else Delivery()


def _integer(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError("not an integer")
    return value


def _optional_integer(value: Any) -> int | None:
    return None if value is None else _integer(value)


def _due(value: Any) -> datetime:
    return read_time(value if isinstance(value, datetime) else _text(value)) or EPOCH


def read_row(r: Record) -> ScheduledEmail:
    read = _Reader(r)
    row = ScheduledEmail(
        id=str(r["id"]),
        enrollment_key=read.get("enrollment_key", _text, ""),
        email=read.get("email", _text, ""),
        sequence=read.get("sequence", _text, ""),
        step=read.get("step", _integer, 0),
        template=read.get("template", _text, ""),
        sender=read.get("sender", Sender, Sender.XMAS),
        due=read.get("due", _due, EPOCH),
        state=read.get("state", State, State.PAUSED),
        sent_at=read.get("sent_at", read_time, None),
        message_id=read.get("message_id", _optional_text, None),
        attempts=read.get("attempts", _integer, 0),
        last_error=read.get("last_error", _optional_text, None),
        note=read.get("note", _optional_text, None),
        data=read.get("data", _json_object, {}),
        batch=read.get("batch", _optional_text, None),
        ref=str(r["id"]),
        delivery=read.get("delivery", _delivery, Delivery()),
        variant=read.get("variant", _optional_integer, None),
    )
    return row if read.defect is None else replace(row, defect=read.defect)


def read_contact(r: Record) -> Contact:
    read = _Reader(r)  # a damaged field reads as empty: the email then fails to render, visibly, on its own row
    return Contact(
        email=str(r["email"]),
        fields=read.get("fields", _json_object, {}),
        segment=read.get("segment", _optional_text, None),
        suppressed=bool(r["suppressed"]),
        suppressed_reason=read.get("suppressed_reason", _optional_text, None),
        updated_at=read.get("updated_at", read_time, None),
        ref=str(r["email"]),
        consent=parse_consent(r["consent"]),
    )


def read_event(r: Record) -> Event:
    read = _Reader(r)
    return Event(
        key=str(r["key"]),
        email=str(r["email"]),
        name=str(r["name"]),
        at=read.get("at", lambda v: read_time(v) or EPOCH, EPOCH),
        data=read.get("data", _json_object, {}),
        recorded_at=read.get("recorded_at", read_time, None),
    )
