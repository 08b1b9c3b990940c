"""Pure: contact + enrollment data + campaign + now → the variables a template sees.

Every name in ALWAYS and OPTIONAL is always defined (optional ones may be None, and templates guard
them with `{% if %}`), so a template that names anything else fails loudly under strict rendering.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from .campaign import Campaign
from .model import CONTACT_FIELDS
from .windows import zone_of

ALWAYS = (
    "first_name",
    "email",
    "company_name",
    "sender_name",
    "sender_address",
    "unsubscribe_url",
    "calendly_link",
    "pdf_download_link",
    "assessment_link",
    "portal_url",
    "deadline_date",
    "days_to_deadline",
    "spots_total",
    "spots_remaining",
    "bookings_count",
)
OPTIONAL = (
    # the contact's fields (model.CONTACT_FIELDS) other than first_name, which is always there
    *(name for name in CONTACT_FIELDS if name != "first_name"),
    "segment",
    "WeakestSystem1",
    "WeakestSystem2",
    "TotalRevenueLeak_K",
    "personalized_tip_1",
    "personalized_tip_2",
    "objection",
    "interest_level",
    "scheduled_time_display",
    "diagnostic_call_display",
    "payment_date_display",
    "package_type",
)

# One tip per business system (the old system's rules), and the other names real payloads used.
TIPS = {
    "GPS": "Map your customer journey from first contact to rebooking, and mark the one step where people drop off.",
    "CREW": "List every task you did this week and circle three that someone else could do by Friday.",
    "ENGINE": "Rank your services by margin, not by revenue, and promote the top two this month.",
    "FUEL": "Write down where your last 10 clients came from, and put next week's effort where most of them did.",
    "CABIN": "Ask five recent clients one question: what almost stopped you from coming back?",
    "COCKPIT": "Work out the real margin of each service, after product, time and rent.",
    "RADAR": "Track your daily bookings for one week, so you see the slow days before they cost you.",
    "AUTOPILOT": "Pick one task you do by hand every day and automate it this week.",
}
ALIASES = {
    "MONEY": "COCKPIT",
    "FINANCE": "COCKPIT",
    "FINANCES": "COCKPIT",
    "CASH": "COCKPIT",
    "PROFIT": "COCKPIT",
    "MARKETING": "FUEL",
    "LEADS": "FUEL",
    "SALES": "ENGINE",
    "TEAM": "CREW",
    "STAFF": "CREW",
    "PEOPLE": "CREW",
    "HIRING": "CREW",
    "LEADERSHIP": "GPS",
    "STRATEGY": "GPS",
    "VISION": "GPS",
    "CUSTOMER": "CABIN",
    "CUSTOMERS": "CABIN",
    "SERVICE": "CABIN",
    "DATA": "RADAR",
    "METRICS": "RADAR",
    "OPERATIONS": "AUTOPILOT",
    "SYSTEMS": "AUTOPILOT",
    "AUTOMATION": "AUTOPILOT",
}
DEFAULT_TIP = "Pick the one process that costs you the most hours each week and write its steps down today."

SAMPLE = {
    "email": "sarah@example.com",
    "first_name": "Sarah",
    "business_name": "Sarah's Salon",
    "red_systems": 2,
    "orange_systems": 1,
    "yellow_systems": 2,
    "green_systems": 3,
    "weakest_system_1": "GPS",
    "weakest_system_2": "FUEL",
    "strongest_system": "CABIN",
    "revenue_leak_total": 14700,
    "overall_score": 42,
    "email_1_sent_at": "2026-12-01T10:30:00Z",
    "calendly_event_id": "evt_sample",
    "scheduled_time": "2026-12-10T14:00:00Z",
    "call_date": "2026-12-08T15:00:00Z",
    "objection": "need_to_think",
    "interest_level": "medium",
    "payment_date": "2026-12-09T16:30:00Z",
    "portal_url": "https://portal.example.org/sarah",
    "diagnostic_call_date": "2026-12-12T10:00:00Z",
    "package_type": "foundation",
}


@dataclass(frozen=True)
class Counts:
    """Real campaign counts, read from the store once per tick."""

    bookings: int = 0
    spots_taken: int = 0


def classify_segment(red: int | None, orange: int | None) -> str | None:
    """CRITICAL if red >= 2; else URGENT if red == 1 or orange >= 2; else OPTIMIZE."""
    if red is None and orange is None:
        return None
    red, orange = red or 0, orange or 0
    if red >= 2:
        return "CRITICAL"
    if red == 1 or orange >= 2:
        return "URGENT"
    return "OPTIMIZE"


def tip_for(system: str | None) -> str | None:
    if not system:
        return None
    name = system.strip().upper()
    return TIPS.get(ALIASES.get(name, name), DEFAULT_TIP)


def _display(value: Any, zone: ZoneInfo, now: datetime) -> str | None:
    """E.g. "Tuesday, December 9 at 3:00 PM EST" in the recipient's time zone, with ", 2025" after the day when
    that is not the year of `now` there."""
    if not value:
        return None
    try:
        when = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    if when.tzinfo is None:
        return None
    local = when.astimezone(zone)
    year = "" if local.year == now.astimezone(zone).year else f", {local.year}"
    return f"{local:%A, %B} {local.day}{year} at {local.hour % 12 or 12}:{local:%M %p %Z}"


def build_variables(
    data: dict[str, Any],
    campaign: Campaign,
    now: datetime,
    unsubscribe_url: str,
    counts: Counts = Counts(),
) -> dict[str, Any]:
    """`data` is the enrollment's payload with the contact's latest fields laid over it."""
    values = campaign.values
    zone = zone_of(data.get("timezone")) or campaign.zone  # the contact's clock, else the campaign's
    today = now.astimezone(zone).date()
    leak = data.get("revenue_leak_total")
    weakest_1, weakest_2 = data.get("weakest_system_1"), data.get("weakest_system_2")
    out: dict[str, Any] = {name: None for name in OPTIONAL}
    out.update(data)
    out.update(
        first_name=data.get("first_name") or "there",
        email=data.get("email", ""),
        company_name=campaign.sender.company_name,
        sender_name=campaign.sender.name,
        sender_address=campaign.sender.postal_address,
        unsubscribe_url=unsubscribe_url,
        calendly_link=str(values.calendly_link),
        pdf_download_link=str(values.pdf_download_link),
        assessment_link=str(values.assessment_link),
        portal_url=str(data.get("portal_url") or values.portal_base_url),
        deadline_date=f"{values.deadline:%B} {values.deadline.day}, {values.deadline.year}",
        days_to_deadline=(values.deadline - today).days,
        spots_total=values.spots_total,
        spots_remaining=max(0, values.spots_total - counts.spots_taken),
        bookings_count=counts.bookings,
        segment=data.get("segment") or classify_segment(data.get("red_systems"), data.get("orange_systems")),
        TotalRevenueLeak_K=(int(leak) + 500) // 1000 if isinstance(leak, int) else None,
        WeakestSystem1=weakest_1,
        WeakestSystem2=weakest_2,
        personalized_tip_1=tip_for(weakest_1),
        personalized_tip_2=tip_for(weakest_2),
        scheduled_time_display=_display(data.get("scheduled_time"), zone, now),
        diagnostic_call_display=_display(data.get("diagnostic_call_date"), zone, now),
        payment_date_display=_display(data.get("payment_date"), zone, now),
    )
    return out
