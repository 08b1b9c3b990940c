"""`xmas report`: how the campaign is doing. Per sequence and step, and per broadcast (by its name), what happened
to the emails xmas sent (from the delivery events); the cohort funnel (of the contacts who entered: how many took
the assessment, booked a call, paid) with conversion rates and the median time between stages; sends per day. One
JSON document (version 1, docs), which the terminal tables and the HTML page (html.py) both show.

"Booked a call" is what the emails' `bookings_count` counts (engine.booking_sequences and booked_by_events). When
no sent email has any delivery recorded (the outbox mailer, or Resend before its first webhook), the open and click
rates are not 0 %: they are unknown, and `rates_note` says why.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..clock import iso
from ..core.campaign import BROADCAST, Campaign
from ..core.model import Sender
from ..core.report_facts import COUNTS, DELIVERY_COUNTS, Funnel, ReportFacts
from ..engine import Engine, booked_by_events, booking_sequences
from ..errors import JSON_VERSION


@dataclass(frozen=True)
class Stage:
    stage: str
    label: str
    sequences: tuple[str, ...]


def stages(campaign: Campaign) -> list[Stage]:
    """The funnel: entered (lead nurture, or straight into a later stage) → took the assessment → booked a call →
    paid. Reaching a stage counts for every stage before it (who paid has booked)."""
    seqs = campaign.sequences
    return [
        Stage("entered", "Entered (lead nurture or a later stage)", tuple(n for n in ("lead-nurture",) if n in seqs)),
        Stage("assessment", "Took the assessment (or went further)", tuple(n for n in ("assessment",) if n in seqs)),
        Stage("booked", "Booked a call", tuple(booking_sequences(campaign))),
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


def _broadcasts(facts: ReportFacts) -> list[dict[str, Any]]:
    """Each broadcast's line, by name: its template(s) and its counts (core/broadcasts.py reads the name)."""
    names: dict[str, tuple[list[str], dict[str, int]]] = {}
    for (name, template), counts in sorted(facts.broadcasts.items()):
        templates, total = names.setdefault(name, ([], dict.fromkeys(COUNTS, 0)))
        templates.append(template)
        for c in COUNTS:
            total[c] += counts[c]
    return [{"broadcast": n, "template": ", ".join(t), **total} for n, (t, total) in names.items()]


def _funnel(campaign: Campaign, facts: ReportFacts) -> list[dict[str, Any]]:
    """Each stage's contacts of the cohort, the share of the stage before's, and the median hours from it."""
    out: list[dict[str, Any]] = []
    for i, (stage, got) in enumerate(zip(stages(campaign), facts.funnel, strict=True)):
        before = facts.funnel[i - 1].contacts if i else None
        out.append(
            {
                "stage": stage.stage,
                "label": stage.label,
                "contacts": got.contacts,
                "conversion": round(got.contacts / before, 4) if before else None,
                "median_hours": round(got.median_hours, 1) if got.median_hours is not None else None,
            }
        )
    return out


def rates_note(campaign: Campaign, facts: ReportFacts) -> str | None:
    """Why there are no open and click rates (None when there are): no sent email has a delivery recorded."""
    lines = [*facts.steps.values(), *facts.broadcasts.values()]
    if not lines or any(counts[c] for counts in lines for c in DELIVERY_COUNTS):
        return None
    if campaign.mailer.backend == "outbox":
        return "no rates: the outbox mailer writes .eml files, and nothing reports their deliveries, opens or clicks"
    return "no rates yet: no delivery event has come from Resend (is its webhook set up? docs/delivery-and-report.md)"


def _per_day(facts: ReportFacts, sequence: str | None) -> list[dict[str, Any]]:
    """Emails sent each day (UTC), and how many of those were opened and clicked so far."""
    days: dict[str, dict[str, int]] = {}
    for (day, seq), counts in facts.days.items():
        if sequence is None or seq == sequence:
            total = days.setdefault(day, {"sent": 0, "opened": 0, "clicked": 0})
            for name, n in counts.items():
                total[name] += n
    return [{"day": d, **days[d]} for d in sorted(days)]


def _booked_at(engine: Engine) -> dict[str, datetime]:
    """Contacts booked by an event (booked_by_events, as bookings_count), at their earliest booking event."""
    still = booked_by_events(engine)
    named = {n for n, e in engine.campaign.events.items() if e.counts_as_booking}
    out: dict[str, datetime] = {}
    for e in engine.store.events_named(named) if still and named else []:
        if e.email in still:
            out[e.email] = min(out.get(e.email, e.at), e.at)
    return out


def funnel_of(engine: Engine) -> Funnel:
    """The stages' sequences, and the contacts who booked by an event (at the booked stage)."""
    chain = stages(engine.campaign)
    booked = _booked_at(engine)
    return Funnel(tuple(s.sequences for s in chain), tuple(booked if s.stage == "booked" else {} for s in chain))


def build_report(engine: Engine, since: datetime | None = None, sequence: str | None = None) -> dict[str, Any]:
    campaign, store = engine.campaign, engine.store
    if sequence is not None:
        campaign.sequence(sequence)  # an unknown name is an error naming the known ones
    facts = store.report_facts(since, funnel_of(engine))  # counted in SQL where the store can
    templates = {t.id: t for t in store.list_templates()}
    sequences: list[dict[str, Any]] = []
    names = list(campaign.sequences)
    if BROADCAST not in names and any(key[0] == BROADCAST for key in facts.steps):  # a row that names no broadcast
        names.append(BROADCAST)
    for name in names:
        seq = campaign.sequences[name]
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
    shown = sequence is None or sequence == BROADCAST
    return {
        "version": JSON_VERSION,
        "campaign": campaign.campaign.name,
        "generated_at": iso(engine.clock.now()),
        "since": iso(since),
        "sequences": sequences,
        "broadcasts": _broadcasts(facts) if shown else [],
        "rates_note": rates_note(campaign, facts),
        "funnel": _funnel(campaign, facts),
        "per_day": _per_day(facts, sequence),
    }


def rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def open_rate(doc: dict[str, Any], step: dict[str, Any]) -> float | None:
    """Of the emails delivered (of those sent when none is recorded as delivered); None: unknown (rates_note)."""
    return None if doc.get("rates_note") else rate(step["opened"], step["delivered"] or step["sent"])


def click_rate(doc: dict[str, Any], step: dict[str, Any]) -> float | None:
    return None if doc.get("rates_note") else rate(step["clicked"], step["delivered"] or step["sent"])
