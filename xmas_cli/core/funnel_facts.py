"""The funnel's facts about a contact that come with its enrollments and events, not with its fields: when its
booked call is, the status of its payment, the package it bought.

They are no contact field and never a template variable (an enrollment's emails read them from the enrollment's
own data, as before). The Notion store shows them as Contacts columns (Call Time, Payment Status, Package) and
reads them back; the SQL stores keep them where they came: in the enrollment's rows and in the events.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

CALL_TIMES = {"postcall": "call_date", "noshow": "scheduled_time"}  # a payload kind → the field with its call's time
BOOKING_TIMES = ("start_time", "call_date")  # in a booking event's data: Calendly's start time, or a call date


@dataclass(frozen=True)
class FunnelFacts:
    call_time: datetime | None = None  # aware UTC
    payment_status: str | None = None  # lower case: "paid" (onboarding takes no other)
    package: str | None = None

    def merged(self, newer: FunnelFacts) -> FunnelFacts:
        """The later of both call times (whichever fact says it: an earlier time arriving later moves nothing, so
        facts applied in any order end the same); the newer payment status and package where it says them."""
        times = [t for t in (self.call_time, newer.call_time) if t is not None]
        return FunnelFacts(
            call_time=max(times, default=None),
            payment_status=newer.payment_status or self.payment_status,
            package=newer.package or self.package,
        )


def _instant(value: Any) -> datetime | None:
    """An aware time from a payload's or an event's ISO 8601 text; None for anything else."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.strip())
        except ValueError:
            return None
    else:
        return None
    return moment.astimezone(UTC) if moment.tzinfo is not None else None


def _text(value: Any) -> str | None:
    return " ".join(value.split()) or None if isinstance(value, str) else None


def enrollment_facts(kind: str, data: Mapping[str, Any]) -> FunnelFacts:
    """What an enrollment with a payload of this kind says: a post-call's call_date and a no-show's scheduled_time
    are the call's time; an onboarding's payment_status and package_type the payment and the package."""
    field = CALL_TIMES.get(kind)
    call = _instant(data.get(field)) if field else None
    if kind != "onboarding":
        return FunnelFacts(call_time=call)
    status = _text(data.get("payment_status"))
    return FunnelFacts(
        call_time=call,
        payment_status=status.lower() if status else None,
        package=_text(data.get("package_type")),
    )


def booking_facts(data: Mapping[str, Any]) -> FunnelFacts:
    """What a booking event (counts_as_booking = true) says: its call's time (Calendly's start_time)."""
    times = (_instant(data.get(key)) for key in BOOKING_TIMES)
    return FunnelFacts(call_time=next((t for t in times if t is not None), None))
