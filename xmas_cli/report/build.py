"""`xmas report`: how the campaign is doing. Per sequence and step, what happened to the emails xmas sent (from
the delivery events); the funnel across sequences (lead nurture → assessment → booked → paid) with conversion
rates and the median time between stages; sends per day. One JSON document (version 1, README "Report"), which
the terminal tables and the HTML page (report_html.py) both show.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from statistics import median
from typing import Any

from ..clock import iso
from ..core.campaign import Campaign
from ..core.model import Event, Sender
from ..core.report_facts import COUNTS, ReportFacts
from ..engine import Engine, booked_by_events
from ..errors import JSON_VERSION


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


def _step(facts: ReportFacts, name: str, number: int) -> tuple[dict[str, int], dict[int, dict[str, int]]]:
    """One step's counts, and per subject variant."""
    by = {key[2]: counts for key, counts in facts.steps.items() if key[:2] == (name, number)}
    total = {c: sum(counts[c] for counts in by.values()) for c in COUNTS}
    return total, by


def _variants(
    campaign: Campaign, name: str, step: int, by: dict[int, dict[str, int]], own: str
) -> list[dict[str, Any]]:
    subjects = [own, *campaign.sequences[name].steps[step - 1].subjects] if name in campaign.sequences else [own]
    none = dict.fromkeys(COUNTS, 0)
    return [
        {
            "variant": v,
            "subject": subjects[v] if v < len(subjects) else "(a variant no longer in campaign.toml)",
            "sent": by.get(v, none)["sent"],
            "opened": by.get(v, none)["opened"],
            "clicked": by.get(v, none)["clicked"],
        }
        for v in sorted(set(by) | (set(range(len(subjects))) if len(subjects) > 1 else set()))
    ]


def _funnel(
    campaign: Campaign, facts: ReportFacts, booked: dict[str, datetime], since: datetime | None
) -> list[dict[str, Any]]:
    """Each stage's contacts (when they reached it: their first email of it, or the booking), the share of the
    stage before's contacts who reached this one, and the median hours between the two for them."""
    reached: list[dict[str, datetime]] = []
    for stage in stages(campaign):
        at: dict[str, datetime] = {}
        for sequence in stage.sequences:
            for email, when in facts.first_due.get(sequence, {}).items():
                at[email] = min(at.get(email, when), when)
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


def _per_day(facts: ReportFacts, sequence: str | None) -> list[dict[str, Any]]:
    """Emails sent each day (UTC), and how many of those were opened and clicked so far."""
    days: dict[str, dict[str, int]] = {}
    for (day, seq), counts in facts.days.items():
        if sequence is None or seq == sequence:
            total = days.setdefault(day, {"sent": 0, "opened": 0, "clicked": 0})
            for name, n in counts.items():
                total[name] += n
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
    facts = store.report_facts(since)  # counted in SQL where the store can
    templates = {t.id: t for t in store.list_templates()}
    sequences: list[dict[str, Any]] = []
    for name, seq in campaign.sequences.items():
        if sequence is not None and name != sequence:
            continue
        steps = []
        for number, step in enumerate(seq.steps, 1):
            if step.sent_by is not Sender.XMAS:
                continue
            own = templates[step.template].subject if step.template in templates else step.template
            counts, by_variant = _step(facts, name, number)
            variants = _variants(campaign, name, number, by_variant, own)
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
        "funnel": _funnel(campaign, facts, booked, since),
        "per_day": _per_day(facts, sequence),
    }


def rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def open_rate(step: dict[str, Any]) -> float | None:
    return rate(step["opened"], step["delivered"] or step["sent"])


def click_rate(step: dict[str, Any]) -> float | None:
    return rate(step["clicked"], step["delivered"] or step["sent"])
