"""`xmas report`: how the campaign is doing. Per sequence and step, what happened to the emails xmas sent (from
the delivery events); the funnel across sequences (lead nurture → assessment → booked → paid) with conversion
rates and the median time between stages; sends per day. One JSON document (version 1, README "Report"), which
the terminal tables and the HTML page (report_html.py) both show.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from statistics import median
from typing import Any

from .campaign import Campaign
from .clock import iso
from .engine import Engine, booked_by_events
from .errors import JSON_VERSION
from .model import Contact, Event, ScheduledEmail, Sender, State

COUNTS = ("sent", "delivered", "opened", "clicked", "bounced", "complained", "unsubscribed")


@dataclass(frozen=True)
class Stage:
    stage: str
    label: str
    sequences: tuple[str, ...]


def stages(campaign: Campaign) -> list[Stage]:
    """The funnel: enrolled in lead nurture → took the assessment → booked a call → paid."""
    seqs = campaign.sequences
    booking = tuple(n for n, s in seqs.items() if s.counts_as_booking and not s.takes_spot)
    return [
        Stage("lead-nurture", "Enrolled in lead nurture", tuple(n for n in ("lead-nurture",) if n in seqs)),
        Stage("assessment", "Took the assessment", tuple(n for n in ("assessment",) if n in seqs)),
        Stage("booked", "Booked a call", booking),
        Stage("paid", "Paid", tuple(n for n, s in seqs.items() if s.takes_spot)),
    ]


def _is_unsubscribe(contact: Contact | None) -> bool:
    return bool(contact and contact.suppressed and (contact.suppressed_reason or "").startswith("unsubscribed"))


def _step_counts(rows: list[ScheduledEmail], last_sent: dict[str, str], contacts: dict[str, Contact]) -> dict[str, int]:
    return {
        "sent": len(rows),
        "delivered": sum(1 for r in rows if r.delivery.delivered_at),
        "opened": sum(1 for r in rows if r.delivery.opened_at),
        "clicked": sum(1 for r in rows if r.delivery.clicks),
        "bounced": sum(1 for r in rows if r.delivery.bounce),
        "complained": sum(1 for r in rows if r.delivery.complained_at),
        # an unsubscribe is put down to the last email the contact was sent
        "unsubscribed": sum(
            1 for r in rows if last_sent.get(r.email) == r.id and _is_unsubscribe(contacts.get(r.email))
        ),
    }


def _variants(campaign: Campaign, name: str, step: int, rows: list[ScheduledEmail], own: str) -> list[dict[str, Any]]:
    subjects = [own, *campaign.sequences[name].steps[step - 1].subjects] if name in campaign.sequences else [own]
    by: dict[int, list[ScheduledEmail]] = defaultdict(list)
    for r in rows:
        by[r.variant or 0].append(r)
    return [
        {
            "variant": v,
            "subject": subjects[v] if v < len(subjects) else "(a variant no longer in campaign.toml)",
            "sent": len(by[v]),
            "opened": sum(1 for r in by[v] if r.delivery.opened_at),
            "clicked": sum(1 for r in by[v] if r.delivery.clicks),
        }
        for v in sorted(set(by) | (set(range(len(subjects))) if len(subjects) > 1 else set()))
    ]


def _funnel(
    campaign: Campaign, rows: list[ScheduledEmail], booked: dict[str, datetime], since: datetime | None
) -> list[dict[str, Any]]:
    """Each stage's contacts (when they reached it: their first email of it, or the booking), the share of the
    stage before's contacts who reached this one, and the median hours between the two for them."""
    reached: list[dict[str, datetime]] = []
    for stage in stages(campaign):
        at: dict[str, datetime] = {}
        for r in rows:
            if r.sequence in stage.sequences and r.state not in (State.CANCELLED, State.SKIPPED):
                at[r.email] = min(at.get(r.email, r.due), r.due)
        if stage.stage == "booked":
            for email, when in booked.items():
                at[email] = min(at.get(email, when), when)
        reached.append({e: t for e, t in at.items() if since is None or t >= since})
    out: list[dict[str, Any]] = []
    for i, (stage, at) in enumerate(zip(stages(campaign), reached, strict=True)):
        before = reached[i - 1] if i else None
        came = [e for e in at if before is not None and e in before]  # reached this stage from the one before
        hours = [(at[e] - before[e]).total_seconds() / 3600 for e in came if before and at[e] >= before[e]]
        out.append(
            {
                "stage": stage.stage,
                "label": stage.label,
                "contacts": len(at),
                "conversion": round(len(came) / len(before), 4) if before else None,
                "median_hours": round(median(hours), 1) if hours else None,
            }
        )
    return out


def _per_day(rows: Iterable[ScheduledEmail]) -> list[dict[str, Any]]:
    """Emails sent each day (UTC), and how many of those were opened and clicked so far."""
    days: dict[str, dict[str, int]] = {}
    for r in rows:
        if r.sent_at is None:
            continue
        day = days.setdefault(r.sent_at.date().isoformat(), {"sent": 0, "opened": 0, "clicked": 0})
        day["sent"] += 1
        day["opened"] += 1 if r.delivery.opened_at else 0
        day["clicked"] += 1 if r.delivery.clicks else 0
    return [{"day": d, **days[d]} for d in sorted(days)]


def _booked_at(engine: Engine, events: list[Event]) -> dict[str, datetime]:
    still = booked_by_events(engine)
    out: dict[str, datetime] = {}
    for e in events:
        if e.email in still and engine.campaign.events[e.name].counts_as_booking:
            out[e.email] = min(out.get(e.email, e.at), e.at)
    return out


def build_report(engine: Engine, since: datetime | None = None, sequence: str | None = None) -> dict[str, Any]:
    campaign, store = engine.campaign, engine.store
    if sequence is not None:
        campaign.sequence(sequence)  # an unknown name is an error naming the known ones
    every = list(store.all_emails())
    sent = [
        r
        for r in every
        if r.state is State.SENT and r.sender is Sender.XMAS and r.sent_at and (since is None or r.sent_at >= since)
    ]
    latest: dict[str, ScheduledEmail] = {}
    for r in sent:
        if r.sent_at and (r.email not in latest or r.sent_at > (latest[r.email].sent_at or r.sent_at)):
            latest[r.email] = r
    last_sent = {email: r.id for email, r in latest.items()}  # each contact's last email, by row id
    contacts = store.get_contacts({r.email for r in sent})
    templates = {t.id: t for t in store.list_templates()}
    sequences: list[dict[str, Any]] = []
    for name, seq in campaign.sequences.items():
        if sequence is not None and name != sequence:
            continue
        steps = []
        for number, step in enumerate(seq.steps, 1):
            if step.sent_by is not Sender.XMAS:
                continue
            rows = [r for r in sent if r.sequence == name and r.step == number]
            own = templates[step.template].subject if step.template in templates else step.template
            counts = _step_counts(rows, last_sent, contacts)
            variants = _variants(campaign, name, number, rows, own)
            steps.append({"step": number, "template": step.template, **counts, "variants": variants})
        sequences.append({"sequence": name, "steps": steps})
    named = {n for n, e in campaign.events.items() if e.counts_as_booking is not None}
    booked = _booked_at(engine, store.events_named(named)) if named else {}
    return {
        "version": JSON_VERSION,
        "campaign": campaign.campaign.name,
        "generated_at": iso(engine.clock.now()),
        "since": iso(since),
        "sequences": sequences,
        "funnel": _funnel(campaign, every, booked, since),
        "per_day": _per_day(r for r in sent if sequence is None or r.sequence == sequence),
    }


def rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def open_rate(step: dict[str, Any]) -> float | None:
    return rate(step["opened"], step["delivered"] or step["sent"])


def click_rate(step: dict[str, Any]) -> float | None:
    return rate(step["clicked"], step["delivered"] or step["sent"])
