"""The numbers `xmas report` is built from, counted by the store: in SQL where it can (PostgreSQL: a million rows
are never read into Python), row by row here where it cannot (SQLite's and Notion's stores call `facts_from_rows`).

Both definitions must agree: tests/test_postgres.py compares them on the same rows.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from datetime import datetime

from .model import Contact, ScheduledEmail, Sender, State

COUNTS = ("sent", "delivered", "opened", "clicked", "bounced", "complained", "unsubscribed")
StepKey = tuple[str, int, int]  # (sequence, step, subject variant: 0 for the template's own subject)
DayKey = tuple[str, str]  # (day "2026-12-01" in UTC, sequence)
DEAD = (State.CANCELLED, State.SKIPPED)


@dataclass
class ReportFacts:
    # xmas's sent emails (since the report's start): how many, and what happened to them, per step and variant
    steps: dict[StepKey, dict[str, int]] = field(default_factory=dict)
    # the same emails per day of sending and sequence: sent, opened, clicked
    days: dict[DayKey, dict[str, int]] = field(default_factory=dict)
    # every live row (not cancelled or skipped), whatever its state: each contact's earliest due time per sequence
    first_due: dict[str, dict[str, datetime]] = field(default_factory=dict)


def is_unsubscribe(contact: Contact | None) -> bool:
    return bool(contact and contact.suppressed and (contact.suppressed_reason or "").startswith("unsubscribed"))


def counted(row: ScheduledEmail, since: datetime | None) -> bool:
    """An email xmas sent (not the website), since the start."""
    return (
        row.state is State.SENT
        and row.sender is Sender.XMAS
        and row.sent_at is not None
        and (since is None or row.sent_at >= since)
    )


def facts_from_rows(
    rows: Iterable[ScheduledEmail],
    contacts: Callable[[Collection[str]], dict[str, Contact]],
    since: datetime | None,
) -> ReportFacts:
    facts = ReportFacts()
    sent: list[ScheduledEmail] = []
    for r in rows:
        if r.state not in DEAD:
            per = facts.first_due.setdefault(r.sequence, {})
            per[r.email] = min(per.get(r.email, r.due), r.due)
        if counted(r, since):
            sent.append(r)
    latest: dict[str, ScheduledEmail] = {}  # each contact's last email: an unsubscribe is put down to it
    for r in sent:
        if r.email not in latest or (r.sent_at or r.due) > (latest[r.email].sent_at or r.due):
            latest[r.email] = r
    people = contacts({r.email for r in sent})
    for r in sent:
        d = r.delivery
        step = facts.steps.setdefault((r.sequence, r.step, r.variant or 0), dict.fromkeys(COUNTS, 0))
        seen = {
            "sent": True,
            "delivered": d.delivered_at is not None,
            "opened": d.opened_at is not None,
            "clicked": d.clicks > 0,
            "bounced": bool(d.bounce),
            "complained": d.complained_at is not None,
            "unsubscribed": latest[r.email].id == r.id and is_unsubscribe(people.get(r.email)),
        }
        for name, yes in seen.items():
            step[name] += int(yes)
        assert r.sent_at is not None
        day = facts.days.setdefault((r.sent_at.date().isoformat(), r.sequence), {"sent": 0, "opened": 0, "clicked": 0})
        for name in day:
            day[name] += int(seen[name])
    return facts
