"""Pure: send windows in the recipient's time zone ("08:00-20:00", Monday to Saturday, America/Toronto).

`next_opening(at, window)` is `at` itself when it falls inside the window, else the next local opening time on an
allowed day, as an aware UTC time. Local times are built with zoneinfo, so daylight-saving changes move nothing:
08:00 in Toronto is 13:00 UTC in winter and 12:00 UTC in summer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_WINDOW = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]|24):([0-5]\d)$")


def parse_window(text: str) -> tuple[time, time]:
    """`"08:00-20:00"` → (08:00, 20:00); ValueError with the fix otherwise. The end is excluded; 24:00 is midnight."""
    found = _WINDOW.match(text.strip())
    if not found:
        raise ValueError(f"{text!r} is not a window: write it like 08:00-20:00 (24-hour clock, local time)")
    start = time(int(found[1]), int(found[2]))
    end_hour, end_minute = int(found[3]), int(found[4])
    if end_hour == 24 and end_minute:
        raise ValueError(f"{text!r}: the window ends at 24:00 at the latest")
    end = time.max if end_hour == 24 else time(end_hour, end_minute)
    if end <= start:
        raise ValueError(f"{text!r}: the window must end after it starts, on the same day")
    return start, end


def zone_of(name: str | None) -> ZoneInfo | None:
    """The zone an IANA name names, or None (absent or unknown)."""
    if not name:
        return None
    try:
        return ZoneInfo(str(name))
    except (ZoneInfoNotFoundError, ValueError):
        return None


@dataclass(frozen=True)
class Window:
    start: time
    end: time  # excluded
    days: frozenset[int]  # weekday numbers, Monday = 0
    zone: ZoneInfo

    def describe(self) -> str:
        return f"window opens {self.start:%H:%M} {self.zone.key}"


def _local(day: datetime, at: time, zone: ZoneInfo) -> datetime:
    """`at` on the local calendar day of `day`, as an aware time (a time skipped by a DST change moves forward)."""
    naive = datetime.combine(day.date(), at)
    aware = naive.replace(tzinfo=zone)
    back = aware.astimezone(UTC).astimezone(zone)
    return back if back.replace(tzinfo=None) != naive else aware


def next_opening(at: datetime, window: Window) -> datetime:
    """`at` if it is inside the window, else the next opening (UTC)."""
    local = at.astimezone(window.zone)
    for offset in range(8):
        day = local + timedelta(days=offset)
        if day.weekday() not in window.days:
            continue
        opens = _local(day, window.start, window.zone)
        closes = _local(day, window.end, window.zone) if window.end != time.max else None
        if offset == 0 and opens <= local and (closes is None or local < closes):
            return at.astimezone(UTC)
        if offset > 0 or local < opens:
            return opens.astimezone(UTC)
    raise ValueError("a send window with no allowed day")  # campaign.toml refuses an empty send_days
