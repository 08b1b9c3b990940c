"""The one clock. Nothing else in xmas asks the system for the time. (The stored form of an instant, `iso` and
`parse_instant`, is pure and lives in core/instants.py; it is re-exported here for the callers at the edge.)"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Protocol

from .core.instants import iso, parse_instant, to_utc
from .errors import ConfigError, InvalidInput

__all__ = ["Clock", "FixedClock", "SystemClock", "clock_from", "iso", "parse_instant", "to_utc"]


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
