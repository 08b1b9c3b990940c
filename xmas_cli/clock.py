"""The one clock. Nothing else in xmas asks the system for the time."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Protocol

from .errors import ConfigError, InvalidInput


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class FixedClock:
    """A clock fixed at one instant (--now / XMAS_NOW), which simulations may move forward."""

    def __init__(self, at: datetime) -> None:
        self._at = to_utc(at)

    def now(self) -> datetime:
        return self._at

    def set(self, at: datetime) -> None:
        self._at = to_utc(at)


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


def clock_from(now: str | None, env_now: str | None = None) -> Clock:
    """`--now` (bad: invalid input) or XMAS_NOW (bad: a configuration error), else the system clock."""
    if now:
        return FixedClock(parse_instant(now))
    if env_now:
        try:
            return FixedClock(parse_instant(env_now, "XMAS_NOW"))
        except InvalidInput as exc:
            raise ConfigError(exc.message, exc.fix) from None
    return SystemClock()


def iso(value: datetime | None) -> str | None:
    """Stored form of a time: UTC, second precision, `Z` suffix."""
    if value is None:
        return None
    return to_utc(value).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")
