"""The numbers `xmas report` is built from, and their one definition.

Two ways to count the same numbers: row by row here (`facts_from_rows`, for Notion's store, which cannot count), and
in SQL (stores/report_sql.py, for SQLite and PostgreSQL: a million rows are never read into Python). What both
share lives here: which emails count (`counted`), which broadcast an email is of (core/broadcasts.py) and where its
numbers go (`counts_of`: a broadcast's own line, else its step's), what an unsubscribe is (`is_unsubscribe`) and
which email it is put down to (`last_sent`: the contact's last email sent, since sending stops at the unsubscribe),
and the cohort funnel (`FunnelCounter`), fed by each contact's earliest time at each stage, from rows or from one
SQL query.
tests/test_report_stores.py compares the SQL numbers with these on the same rows, on every store.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from statistics import median

from . import rows
from .broadcasts import broadcast_name
from .model import Contact, ScheduledEmail, Sender, State

COUNTS = ("sent", "delivered", "opened", "clicked", "bounced", "complained", "unsubscribed")
DELIVERY_COUNTS = ("delivered", "opened", "clicked", "bounced", "complained")  # what only the provider reports
StepKey = tuple[str, int, int]  # (sequence, step, subject variant: 0 for the template's own subject)
BroadcastKey = tuple[str, str]  # (the broadcast's name: core/broadcasts.py, its row's template)
DayKey = tuple[str, str]  # (day "2026-12-01" in UTC, sequence)
DEAD = rows.DEAD  # core/rows.py: the one definition of a dead row
UNSUBSCRIBED = "unsubscribed"  # how the reason of a suppression by unsubscribe begins (engine.unsubscribe)


@dataclass(frozen=True)
class Funnel:
    """The funnel's stages, in order: each stage's sequences (a contact reaches a stage with a live row in one of
    them, at that row's due time), and the contacts who reached it by an event instead (when: the earliest one)."""

    sequences: tuple[tuple[str, ...], ...]
    by_event: tuple[Mapping[str, datetime], ...] = ()

    def extra(self, stage: int) -> Mapping[str, datetime]:
        return self.by_event[stage] if stage < len(self.by_event) else {}


@dataclass(frozen=True)
class StageFacts:
    contacts: int  # contacts of the cohort who reached this stage or a later one
    # the median time from the stage before, for those of them who reached that one by a row or an event of its own
    # (not straight into this one); None for the first stage
    median_hours: float | None


@dataclass
class ReportFacts:
    # xmas's sent emails (since the report's start): how many, and what happened to them, per step and variant
    steps: dict[StepKey, dict[str, int]] = field(default_factory=dict)
    # the same of the emails of `xmas broadcast`, per broadcast (not in steps), whatever their subject variant
    broadcasts: dict[BroadcastKey, dict[str, int]] = field(default_factory=dict)
    # the same emails per day of sending and sequence: sent, opened, clicked
    days: dict[DayKey, dict[str, int]] = field(default_factory=dict)
    # the cohort funnel: of the contacts who entered (since the start), how many reached each stage
    funnel: list[StageFacts] = field(default_factory=list)


def is_unsubscribe(contact: Contact | None) -> bool:
    return bool(contact and contact.suppressed and (contact.suppressed_reason or "").startswith(UNSUBSCRIBED))


def counted(row: ScheduledEmail, since: datetime | None) -> bool:
    """An email xmas sent (not the website), since the start."""
    return (
        row.state is State.SENT
        and row.sender is Sender.XMAS
        and row.sent_at is not None
        and (since is None or row.sent_at >= since)
    )


def last_sent(rows: Iterable[ScheduledEmail]) -> dict[str, ScheduledEmail]:
    """Each contact's last sent email: the latest sent_at, and of emails sent in the same second the greatest id
    (SQL: ORDER BY sent_at DESC, id DESC with byte-wise collation). An unsubscribe is put down to it alone."""
    latest: dict[str, ScheduledEmail] = {}
    for r in rows:
        held = latest.get(r.email)
        if held is None or (r.sent_at, r.id) > (held.sent_at, held.id):
            latest[r.email] = r
    return latest


class FunnelCounter:
    """The cohort funnel from each contact's earliest time at each stage (None: never there by a row).

    A contact is at stage k from the earliest time it reached stage k or any later one (who paid has booked), so
    the times never go down a stage and no stage is wider than the one before. The cohort is the contacts whose
    entry (their time at the first stage) is since the start. Feed every contact once (`add`), then `result()`;
    contacts who reached a stage by an event only are added by `result()` itself."""

    def __init__(self, funnel: Funnel, since: datetime | None) -> None:
        self.funnel, self.since = funnel, since
        self.size = len(funnel.sequences)
        self.contacts = [0] * self.size
        self.hours: list[list[float]] = [[] for _ in range(self.size)]
        self.pending = {email for k in range(self.size) for email in funnel.extra(k)}

    def add(self, email: str, times: Sequence[datetime | None]) -> None:
        at = list(times)
        if self.pending and email in self.pending:
            self.pending.discard(email)
            for k in range(self.size):
                when = self.funnel.extra(k).get(email)
                if when is not None and (at[k] is None or when < at[k]):  # type: ignore[operator]
                    at[k] = when
        own = [t is not None for t in at]  # reached by itself, not only through a later stage
        for k in range(self.size - 2, -1, -1):  # at stage k from the earliest of k and every later stage
            later = at[k + 1]
            if later is not None and (at[k] is None or later < at[k]):  # type: ignore[operator]
                at[k] = later
        entry = at[0]
        if entry is None or (self.since is not None and entry < self.since):
            return
        for k in range(self.size):
            now = at[k]
            if now is None:
                break
            self.contacts[k] += 1
            if k and own[k - 1]:  # the time from the stage before, for who was really there first
                before = at[k - 1]
                assert before is not None
                self.hours[k].append((now - before).total_seconds() / 3600)

    def result(self) -> list[StageFacts]:
        for email in sorted(self.pending):
            self.add(email, [None] * self.size)
        return [
            StageFacts(n, float(median(h)) if k and len(h) else None)
            for k, (n, h) in enumerate(zip(self.contacts, self.hours, strict=True))
        ]


def counts_of(
    facts: ReportFacts, sequence: str, step: int, variant: int, broadcast: str | None, template: str
) -> dict[str, int]:
    """Where an email's numbers add up: its broadcast's (named), else its step's and subject variant's."""
    if broadcast is not None:
        return facts.broadcasts.setdefault((broadcast, template), dict.fromkeys(COUNTS, 0))
    return facts.steps.setdefault((sequence, step, variant), dict.fromkeys(COUNTS, 0))


def facts_from_rows(
    rows: Iterable[ScheduledEmail],
    contacts: Callable[[Collection[str]], dict[str, Contact]],
    since: datetime | None,
    funnel: Funnel,
) -> ReportFacts:
    facts = ReportFacts()
    stage_of: dict[str, list[int]] = {}
    for k, names in enumerate(funnel.sequences):
        for name in names:
            stage_of.setdefault(name, []).append(k)
    reach: dict[str, list[datetime | None]] = {}
    sent: list[ScheduledEmail] = []
    for r in rows:
        if r.state not in DEAD:
            for k in stage_of.get(r.sequence, ()):
                times = reach.setdefault(r.email, [None] * len(funnel.sequences))
                held = times[k]
                times[k] = r.due if held is None or r.due < held else held
        if counted(r, since):
            sent.append(r)
    latest = last_sent(sent)
    people = contacts({r.email for r in sent})
    for r in sent:
        d = r.delivery
        step = counts_of(facts, r.sequence, r.step, r.variant or 0, broadcast_name(r), r.template)
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
    counter = FunnelCounter(funnel, since)
    for email, times in reach.items():
        counter.add(email, times)
    facts.funnel = counter.result()
    return facts
