"""A store copy's plan: record by record, copy, already there (the same), conflict or skipped."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from ..core.model import Contact, Event, ScheduledEmail, State
from .base import Changes
from .copy_records import (
    KINDS,
    Item,
    Source,
    Target,
    changes_of,
    contact_view,
    differences,
    event_key,
    event_view,
    row_view,
)
from .copy_templates import PagesSink, SourceTemplate, TemplateSink, read_templates, template_sink
from .files import template_source

# ---------------------------------------------------------------------------------------------- plan


@dataclass
class Tally:
    in_source: int = 0
    would_copy: int = 0
    already_there: int = 0
    conflicts: int = 0
    skipped: int = 0


@dataclass
class CopyPlan:
    """What a copy writes, counted per kind, and what it expects to read back at the target afterwards."""

    source: str
    target: str
    tallies: dict[str, Tally] = field(default_factory=lambda: {kind: Tally() for kind in KINDS})
    items: list[Item] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    contacts: list[Contact] = field(default_factory=list)  # to create
    suppress: list[tuple[Contact, Contact]] = field(default_factory=list)  # (the target's, the source's)
    templates: list[SourceTemplate] = field(default_factory=list)
    emails: list[ScheduledEmail] = field(default_factory=list)
    # target rows a copy cut short left without their delivery or variant (a store that writes those separately)
    complete: list[tuple[ScheduledEmail, Changes]] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    # kind → key → what the target must hold after the copy (None: only that it holds the key)
    expected: dict[str, dict[str, Any]] = field(default_factory=lambda: {kind: {} for kind in KINDS})
    sink: TemplateSink | None = None

    def note(self, kind: str, key: str, action: str, detail: str) -> None:
        tally = self.tallies[kind]
        if action == "conflict":
            tally.conflicts += 1
        elif action == "skipped":
            tally.skipped += 1
        self.items.append(Item(kind, key, action, detail))

    @property
    def writes(self) -> int:
        return sum(t.would_copy for t in self.tallies.values())


def plan_copy(source: Source, target: Target) -> CopyPlan:
    """Read both stores and decide, record by record: copy, already there (the same), conflict or skipped. A store
    that keeps its templates as files (SQLite, PostgreSQL) is read and written through the folder it reads."""
    plan = CopyPlan(source.description, target.description)
    rows = list(source.all_emails())
    _plan_contacts(plan, source, target, rows)
    _plan_templates(plan, source, target)
    _plan_emails(plan, target, rows)
    return plan


def _plan_contacts(plan: CopyPlan, source: Source, target: Target, rows: list[ScheduledEmail]) -> None:
    contacts = {c.email.strip().lower(): c for c in source.all_contacts()}
    emails = {r.email.strip().lower() for r in rows if r.email} | set(contacts)
    there = {c.email.strip().lower(): c for c in target.get_contacts(sorted(emails)).values()}
    tally, expected = plan.tallies["contacts"], plan.expected["contacts"]
    for address in sorted(contacts):
        contact = contacts[address]
        tally.in_source += 1
        held = there.get(address)
        if held is None:
            plan.contacts.append(replace(contact, email=address, ref=None))
            tally.would_copy += 1
            expected[address] = contact_view(contact)
            continue
        expected[address] = None
        differ = differences(contact_view(contact), contact_view(held))
        if not differ:
            tally.already_there += 1
            continue
        detail = f"differs at the target in {', '.join(differ)}: left as it is"
        if contact.suppressed and not held.suppressed:
            plan.suppress.append((held, contact))
            detail += ", but suppressed as at the source"
        plan.note("contacts", address, "conflict", detail)
    _plan_events(plan, source, target, sorted(emails), set(contacts) | set(there), set(there))


def _plan_events(
    plan: CopyPlan, source: Source, target: Target, emails: list[str], known: set[str], at_target: set[str]
) -> None:
    tally, expected = plan.tallies["events"], plan.expected["events"]
    for address in emails:
        events = source.events_for_contact(address)
        if not events:
            continue
        held = {e.key: e for e in target.events_for_contact(address)} if address in at_target else {}
        for event in events:
            tally.in_source += 1
            key = event_key(event)
            if address not in known:
                plan.note("events", key, "skipped", "its contact is in neither store")
                continue
            there = held.get(event.key)
            if there is None:
                plan.events.append(event)
                tally.would_copy += 1
                expected[key] = event_view(event)
                continue
            expected[key] = None
            differ = differences(event_view(event), event_view(there))
            if differ:
                plan.note("events", key, "conflict", f"differs at the target in {', '.join(differ)}: left as it is")
            else:
                tally.already_there += 1


def _plan_templates(plan: CopyPlan, source: Source, target: Target) -> None:
    found, left = read_templates(source)
    tally, expected = plan.tallies["templates"], plan.expected["templates"]
    tally.in_source = len(found) + len(left)
    for item in left:
        plan.note("templates", item.key, item.action, item.detail)
    plan.sink = sink = template_sink(target)
    for t in found:
        if sink is None:
            plan.note("templates", t.id, "skipped", f"{target.description} keeps no templates xmas can write")
            continue
        if isinstance(sink, PagesSink) and t.template is None:
            plan.note("templates", t.id, "skipped", f"its file cannot be read: {t.problem}")
            continue
        state = sink.compare(t)
        expected[t.id] = t
        if state == "absent":
            plan.templates.append(t)
            tally.would_copy += 1
            if (
                isinstance(sink, PagesSink)
                and t.template is not None
                and t.data != template_source(t.template).encode()
            ):
                plan.warnings.append(
                    f"template {t.id}: its file is not exactly 'Subject: …', one empty line, the HTML; "
                    f"{sink.where} keeps the subject and the HTML, so a copy back writes the file in that form"
                )
        elif state == "same":
            tally.already_there += 1
        else:
            plan.note("templates", t.id, "conflict", f"differs in {sink.where}: left as it is")


def _plan_emails(plan: CopyPlan, target: Target, rows: list[ScheduledEmail]) -> None:
    held = {r.id: r for r in target.all_emails()}
    tally, expected = plan.tallies["emails"], plan.expected["emails"]
    for row in rows:
        tally.in_source += 1
        if row.defect:
            plan.note("emails", row.id, "skipped", f"{row.defect}; repair it at the source and copy again")
            continue
        there = held.get(row.id)
        if there is None:
            plan.emails.append(replace(row, batch=None, ref=None))
            tally.would_copy += 1
            expected[row.id] = row_view(row)
            continue
        differ = differences(row_view(row), row_view(there))
        if not differ:
            tally.already_there += 1
            expected[row.id] = None
        elif set(differ) <= {"delivery", "variant"} and there.delivery.empty and there.variant is None:
            plan.complete.append((there, changes_of(row, differ)))  # a copy cut short between create and update
            tally.would_copy += 1
            expected[row.id] = row_view(row)
        else:
            plan.note("emails", row.id, "conflict", f"differs at the target in {', '.join(differ)}: left as it is")
            expected[row.id] = None
    pending = sum(1 for r in plan.emails if r.state is State.SCHEDULED)
    if pending:
        plan.warnings.append(
            f"{pending} scheduled email(s) will be in both stores: tick only one of them (move the cron job), "
            "or each goes out twice"
        )
