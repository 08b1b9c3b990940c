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

import re
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol, cast

from ..clock import iso
from ..core.deliveries import to_json
from ..core.model import Contact, Event, ScheduledEmail, State, Template
from ..errors import JSON_VERSION, RenderError, StoreUnavailable, XmasError
from .base import Batch, Changes
from .files import FileTemplates, parse_template_source, template_source

KINDS = ("contacts", "templates", "emails", "events")
# The fields of a row that a store's update_email writes (Changes, without the batch).
UPDATABLE = ("due", "state", "sent_at", "message_id", "attempts", "last_error", "note", "data", "delivery", "variant")
_FILE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")  # as notion_admin.pull_templates accepts
Progress = Callable[[str, int, int], None]  # kind, written so far, to write in all


class Source(Protocol):
    """What is read from the store copied from (any Store)."""

    description: str
    supports_batches: bool

    def all_contacts(self) -> Iterator[Contact]: ...
    def all_emails(self) -> Iterator[ScheduledEmail]: ...
    def events_for_contact(self, email: str) -> list[Event]: ...
    def list_templates(self) -> list[Template]: ...
    def open_batches(self) -> list[Batch]: ...


class Target(Protocol):
    """What is read from and written to the store copied into (any Store)."""

    description: str

    def get_contacts(self, emails: Collection[str]) -> dict[str, Contact]: ...
    def save_contact(self, contact: Contact) -> Contact: ...
    def all_emails(self) -> Iterator[ScheduledEmail]: ...
    def add_email(self, row: ScheduledEmail) -> ScheduledEmail: ...
    def update_email(self, row: ScheduledEmail, changes: Changes) -> ScheduledEmail: ...
    def events_for_contact(self, email: str) -> list[Event]: ...
    def add_event(self, event: Event) -> bool: ...
    def list_templates(self) -> list[Template]: ...


class _TemplatePages(Protocol):
    """A store whose templates are its own records (Notion): `save_template(t, None)` creates one, Active."""

    def list_templates(self) -> list[Template]: ...
    def save_template(self, template: Template, page: dict[str, Any] | None) -> str: ...


# ------------------------------------------------------------------------------------------ templates


@dataclass(frozen=True)
class SourceTemplate:
    id: str
    data: bytes  # the file: as read from the source's folder, or the template written in the file format
    template: Template | None  # as the store reads it; None when the file cannot be read (problem says why)
    problem: str = ""


def _folder_of(store: object) -> Path | None:
    templates = getattr(store, "templates", None)
    return templates.folder if isinstance(templates, FileTemplates) else None


def read_templates(source: Source) -> tuple[list[SourceTemplate], list[Item]]:
    """The source's templates (its folder's `*.html` files, byte for byte; or its own records), and those left out."""
    found: list[SourceTemplate] = []
    left: list[Item] = []
    if (folder := _folder_of(source)) is not None:
        for path in sorted(folder.glob("*.html")) if folder.is_dir() else []:
            try:
                data = path.read_bytes()
            except OSError as exc:
                raise StoreUnavailable(f"cannot read {path}: {exc.strerror}", "check the templates folder") from None
            try:  # read as FileTemplates reads it (universal newlines), for a target that keeps subject and body
                text = data.decode("utf-8").replace("\r\n", "\n").replace("\r", "\n")
                found.append(SourceTemplate(path.stem, data, parse_template_source(path.stem, text, str(path))))
            except UnicodeDecodeError:
                found.append(SourceTemplate(path.stem, data, None, "it is not UTF-8 text"))
            except RenderError as exc:
                found.append(SourceTemplate(path.stem, data, None, exc.message))
        return found, left
    for t in source.list_templates():
        why = (
            "not a usable file name (letters, digits, _ . - only)"
            if not _FILE_NAME.match(t.id)
            else "not Active at the source"
            if not t.active
            else "it has no subject line"
            if not t.subject
            else ""
        )
        if why:
            left.append(Item("templates", t.id, "skipped", why))
        else:
            found.append(SourceTemplate(t.id, template_source(t).encode("utf-8"), t))
    return found, left


class TemplateSink(Protocol):
    where: str

    def compare(self, t: SourceTemplate) -> str:
        """absent | same | different"""
        ...

    def write(self, t: SourceTemplate) -> None: ...

    def refresh(self) -> None:
        """Read again what the target holds (after writing)."""
        ...


class FolderSink:
    """A templates folder (SQLite, PostgreSQL): the file written byte for byte, never over a different one."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.where = str(folder)

    def compare(self, t: SourceTemplate) -> str:
        path = self.folder / f"{t.id}.html"
        if not path.is_file():
            return "absent"
        return "same" if path.read_bytes() == t.data else "different"

    def write(self, t: SourceTemplate) -> None:
        path = self.folder / f"{t.id}.html"
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            path.write_bytes(t.data)
        except OSError as exc:
            raise StoreUnavailable(f"cannot write {path}: {exc.strerror}", "check the templates folder") from None

    def refresh(self) -> None:
        pass  # every compare reads the file


class PagesSink:
    """A store's own template records (Notion): created Active, as `templates push` creates them."""

    def __init__(self, store: _TemplatePages, where: str) -> None:
        self.store = store
        self.where = where
        self._held: dict[str, Template] | None = None

    def _existing(self) -> dict[str, Template]:
        if self._held is None:
            self._held = {t.id: t for t in self.store.list_templates()}
        return self._held

    def compare(self, t: SourceTemplate) -> str:
        held = self._existing().get(t.id)
        if held is None:
            return "absent"
        same = t.template is not None and (held.subject, held.html) == (t.template.subject, t.template.html)
        return "same" if same else "different"

    def write(self, t: SourceTemplate) -> None:
        assert t.template is not None  # the plan skips a file that cannot be read
        self.store.save_template(t.template, None)

    def refresh(self) -> None:
        self._held = None


def template_sink(target: Target) -> TemplateSink | None:
    """Where the target keeps templates: its own records (Notion), or the folder its store reads."""
    if callable(getattr(target, "save_template", None)):
        return PagesSink(cast(_TemplatePages, target), target.description)
    own = _folder_of(target)
    return FolderSink(own) if own is not None else None


# ------------------------------------------------------------------------------------------- records


def row_view(row: ScheduledEmail) -> dict[str, Any]:
    """What a copy keeps of a row (a store reads an empty text as None, and keeps times to the second)."""
    return {
        "id": row.id,
        "enrollment_key": row.enrollment_key,
        "email": row.email.strip().lower(),
        "sequence": row.sequence,
        "step": row.step,
        "template": row.template,
        "sender": row.sender.value,
        "due": iso(row.due),
        "state": row.state.value,
        "sent_at": iso(row.sent_at),
        "message_id": row.message_id or None,
        "attempts": row.attempts,
        "last_error": row.last_error or None,
        "note": row.note or None,
        "data": row.data,
        "delivery": to_json(row.delivery),
        "variant": row.variant,
    }


def contact_view(contact: Contact) -> dict[str, Any]:
    return {
        "email": contact.email.strip().lower(),
        "fields": contact.fields,
        "segment": contact.segment or None,
        "suppressed": contact.suppressed,
        "suppressed_reason": contact.suppressed_reason or None,
        "updated_at": iso(contact.updated_at),
        "consent": contact.consent.describe() if contact.consent else None,
    }


def event_view(event: Event) -> dict[str, Any]:
    return {
        "key": event.key,
        "email": event.email.strip().lower(),
        "name": event.name,
        "at": iso(event.at),
        "data": event.data,
        "recorded_at": iso(event.recorded_at),
    }


def differences(want: dict[str, Any], have: dict[str, Any]) -> list[str]:
    return [name for name, value in want.items() if have.get(name) != value]


def _changes(row: ScheduledEmail, names: Iterable[str]) -> Changes:
    return cast(Changes, {name: getattr(row, name) for name in names if name in UPDATABLE})


def _event_key(event: Event) -> str:
    return f"{event.email.strip().lower()} {event.key}"


# ---------------------------------------------------------------------------------------------- plan


@dataclass(frozen=True)
class Item:
    """One record that is not simply copied: a conflict, one skipped, or (after copying) one missing or different."""

    kind: str
    key: str
    action: str  # conflict | skipped | missing | mismatch
    detail: str

    def to_json(self) -> dict[str, str]:
        return {"kind": self.kind, "key": self.key, "action": self.action, "detail": self.detail}


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
            key = _event_key(event)
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
            plan.complete.append((there, _changes(row, differ)))  # a copy cut short between create and update
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


# ---------------------------------------------------------------------------------------------- copy


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
        rest = _changes(row, differences(row_view(row), row_view(stored)))
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
            _event_key(e): event_view(e)
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
