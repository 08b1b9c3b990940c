"""Instants as xmas stores and reads them: aware UTC, second precision, ISO 8601 with `Z`. Pure: what time it is
now is the clock's business (clock.py), never this module's."""

from __future__ import annotations

from datetime import UTC, datetime

from ..errors import InvalidInput


def to_utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("naive datetime: every time in xmas carries its offset")
    return value.astimezone(UTC)


def parse_instant(text: str, field: str = "--now") -> datetime:
    """Parse an ISO 8601 time that carries an offset (`2025-12-01T10:30:00Z`, `...+01:00`)."""
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InvalidInput(f"{field}: {text!r} is not an ISO 8601 time", "write it like 2025-12-01T10:30:00Z") from None
    if value.tzinfo is None:
        raise InvalidInput(f"{field}: {text!r} has no UTC offset", "add Z or an offset, e.g. 2025-12-01T10:30:00Z")
    return value.astimezone(UTC)


def iso(value: datetime | None) -> str | None:
    """Stored form of a time: UTC, second precision, `Z` suffix."""
    if value is None:
        return None
    return to_utc(value).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")
