"""`xmas store copy`: what one store holds (contacts, templates, scheduled emails, events) copied into another.

Only the Store protocol is used (stores/base.py), so any two stores pair up: SQLite, Notion, PostgreSQL, either
way. Every row keeps its id, enrollment key, state, times, message id, attempts, error, note, data, delivery and
variant; a row's batch is not copied (the target has no journal entry for it). Nothing at the target is ever
overwritten: what is there already is left alone (a copy run twice copies nothing new), and what is there but
differs is a conflict, listed and left as it is. One exception: a contact suppressed at the source stays
suppressed at the target, so nobody who unsubscribed is emailed again. After copying, everything is read back.

Templates are files for SQLite and PostgreSQL (the campaign's templates folder: copied byte for byte) and pages of
the Email Templates database for Notion (created like `xmas templates push` creates them, Active).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from ..errors import JSON_VERSION, XmasError
from .copy_plan import CopyPlan, plan_copy
from .copy_records import (
    KINDS,
    Item,
    Progress,
    Source,
    Target,
    changes_of,
    contact_view,
    differences,
    event_key,
    event_view,
    row_view,
)

# ---------------------------------------------------------------------------------------------- copy

__all__ = ["CopyPlan", "CopyReport", "Progress", "Source", "Target", "copy_store", "plan_copy", "verify"]


@dataclass
class CopyReport:
    plan: CopyPlan
    dry_run: bool
    copied: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    at_target: dict[str, int] | None = None  # read back after copying: how many of the source's the target holds
    problems: list[Item] = field(default_factory=list)  # read back: missing or different

    @property
    def items(self) -> list[Item]:
        return [*self.plan.items, *self.problems]

    @property
    def ok(self) -> bool:
        return not any(i.action in ("conflict", "missing", "mismatch") for i in self.items)

    def to_json(self) -> dict[str, Any]:
        kinds = {
            kind: {
                "in_source": t.in_source,
                "would_copy": t.would_copy,
                "copied": self.copied[kind],
                "already_there": t.already_there,
                "conflicts": t.conflicts,
                "skipped": t.skipped,
                "at_target": None if self.at_target is None else self.at_target[kind],
            }
            for kind, t in self.plan.tallies.items()
        }
        return {
            "version": JSON_VERSION,
            "ok": self.ok,
            "dry_run": self.dry_run,
            "source": self.plan.source,
            "target": self.plan.target,
            "kinds": kinds,
            "items": [i.to_json() for i in self.items],
            "warnings": self.plan.warnings,
        }


def copy_store(
    source: Source,
    target: Target,
    plan: CopyPlan | None = None,
    *,
    progress: Progress | None = None,
) -> CopyReport:
    """Write what the plan says (planned now if not given), then read the target back and compare."""
    if plan is None:
        plan = plan_copy(source, target)
    report = CopyReport(plan, dry_run=False)
    try:
        _write(plan, target, report, progress or (lambda kind, done, total: None))
    except XmasError as exc:
        done = sum(report.copied.values())
        exc.fix = (f"{exc.fix}; " if exc.fix else "") + (
            f"{done} of {plan.writes} records were copied before this: run the copy again to copy the rest "
            "(nothing is copied twice)"
        )
        raise
    verify(report, target)
    return report


def _write(plan: CopyPlan, target: Target, report: CopyReport, progress: Progress) -> None:
    def done(kind: str) -> None:
        report.copied[kind] += 1
        progress(kind, report.copied[kind], plan.tallies[kind].would_copy)

    for contact in plan.contacts:
        target.save_contact(contact)
        done("contacts")
    for held, contact in plan.suppress:
        target.save_contact(
            replace(held, suppressed=True, suppressed_reason=contact.suppressed_reason, updated_at=contact.updated_at)
        )
    for t in plan.templates:
        assert plan.sink is not None
        plan.sink.write(t)
        done("templates")
    for row in plan.emails:
        stored = target.add_email(row)
        # a store may write some fields only on update (Notion: delivery and variant)
        rest = changes_of(row, differences(row_view(row), row_view(stored)))
        if rest:
            target.update_email(stored, rest)
        done("emails")
    for held_row, changes in plan.complete:
        target.update_email(held_row, changes)
        done("emails")
    for event in plan.events:
        target.add_event(event)
        done("events")


def verify(report: CopyReport, target: Target) -> None:
    """Read the target back: every record of the source that was not skipped is there, and what was copied is the
    same as at the source."""
    plan = report.plan
    expected = plan.expected
    held: dict[str, dict[str, dict[str, Any]]] = {
        "contacts": {
            a.strip().lower(): contact_view(c) for a, c in target.get_contacts(sorted(expected["contacts"])).items()
        },
        "emails": {r.id: row_view(r) for r in target.all_emails() if r.id in expected["emails"]},
        "events": {
            event_key(e): event_view(e)
            for address in sorted({e.email.strip().lower() for e in plan.events} | _addresses(expected["events"]))
            for e in target.events_for_contact(address)
        },
    }
    report.at_target = dict.fromkeys(KINDS, 0)
    for kind in ("contacts", "emails", "events"):
        for key, want in expected[kind].items():
            have = held[kind].get(key)
            _check(report, kind, key, have is not None, differences(want, have) if want and have else [])
    for held_contact, contact in plan.suppress:
        found = target.get_contacts([contact.email]).get(held_contact.email.strip().lower())
        if found is not None and not found.suppressed:
            report.problems.append(Item("contacts", held_contact.email, "mismatch", "not suppressed at the target"))
    if plan.sink is not None:
        plan.sink.refresh()
        copied = {t.id for t in plan.templates}
        for key, t in expected["templates"].items():
            state = plan.sink.compare(t)
            differ = ["content"] if key in copied and state != "same" else []
            _check(report, "templates", key, state != "absent", differ)


def _addresses(keys: Iterable[str]) -> set[str]:
    return {key.split(" ", 1)[0] for key in keys}


def _check(report: CopyReport, kind: str, key: str, present: bool, differ: list[str]) -> None:
    assert report.at_target is not None
    if not present:
        report.problems.append(Item(kind, key, "missing", "not found at the target after copying"))
        return
    report.at_target[kind] += 1
    if differ:
        report.problems.append(Item(kind, key, "mismatch", f"read back different in {', '.join(differ)}"))
