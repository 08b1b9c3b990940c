"""The value types of campaign.toml's keys that carry a little language of their own: durations ("3d"), send
windows ("08:00-20:00"), days, frequency caps ("1/24h"), a tick's margin before the next minute ("2s"), each checked
where it is read."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from pydantic import AfterValidator

from .durations import parse_duration
from .windows import DAYS, parse_window


def _duration(text: str) -> str:
    parse_duration(text)
    return text


Duration = Annotated[str, AfterValidator(_duration)]

MOST_MARGIN = timedelta(seconds=30)


def _minute_margin(text: str) -> str:
    if parse_duration(text) > MOST_MARGIN:
        raise ValueError(
            f'{text!r} would leave a tick less than half of its minute to send: use a few seconds, e.g. "2s"'
        )
    return text


def _window(text: str | None) -> str | None:
    if text is not None:
        parse_window(text)
    return text


def _days(days: list[str] | None) -> list[str] | None:
    if days is not None:
        unknown = [d for d in days if d not in DAYS]
        if unknown or not days:
            raise ValueError(f"{days!r}: name days as {', '.join(DAYS)} (at least one)")
    return days


def parse_cap(text: str) -> tuple[int, timedelta]:
    """`"1/24h"` → (1, 24 hours): at most N marketing emails to one contact in any such span."""
    count, _, span = text.partition("/")
    if not count.strip().isdigit() or int(count) < 1 or not span:
        raise ValueError(f"{text!r} is not a frequency cap: write N/DURATION, e.g. 1/24h or 3/7d")
    length = parse_duration(span)
    if length <= timedelta(0):
        raise ValueError(f"{text!r}: the span must be longer than zero")
    return int(count), length


def _cap(text: str | None) -> str | None:
    if text is not None:
        parse_cap(text)
    return text


SendWindow = Annotated[str | None, AfterValidator(_window)]
Cap = Annotated[str | None, AfterValidator(_cap)]
SendDays = Annotated[list[str] | None, AfterValidator(_days)]
MinuteMargin = Annotated[str, AfterValidator(_minute_margin)]
