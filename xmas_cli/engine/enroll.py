"""`xmas enroll` (and the website's enrollments): validate, upsert the contact, write the enrollment's rows
(idempotent), apply exit rules; one enrollment or unsubscribe of a contact at a time."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from ..clock import iso
from ..core.campaign import BROADCAST, Campaign, Sequence
from ..core.consent import given_by, on_file
from ..core.funnel_facts import enrollment_facts
from ..core.model import Contact, ScheduledEmail, State
from ..core.schedule import legacy_enrollment_key, plan_enrollment
from ..core.variables import classify_segment
from ..errors import JSON_VERSION, Busy, unknown_sequence
from ..lock import file_lock
from ..stores.base import Store
from .base import Engine, contact_json, events_in_force, row_json


@dataclass(frozen=True)
class EnrollResult:
    sequence: str
    key: str
    contact: Contact
    created: bool
    rows: list[ScheduledEmail]
    cancelled: list[ScheduledEmail]
    anchor: datetime
    anchor_source: str
    warnings: list[str]
    also: list[EnrollResult] = field(default_factory=list)  # the enrollments `[sequences.X] enrolls` started

    def to_json(self) -> dict[str, Any]:
        return {
            "version": JSON_VERSION,
            "ok": True,
            "sequence": self.sequence,
            "enrollment_key": self.key,
            "created": self.created,
            "anchor": iso(self.anchor),
            "anchor_source": self.anchor_source,
            "contact": contact_json(self.contact),
            "scheduled": [row_json(r) for r in self.rows],
            "cancelled": [row_json(r) for r in self.cancelled],
            "warnings": self.warnings,
            **(
                {"also": [{k: v for k, v in a.to_json().items() if k not in ("version", "ok")} for a in self.also]}
                if self.also
                else {}
            ),
        }


_IN_PROCESS: dict[tuple[Path, int], threading.Semaphore] = {}
_IN_PROCESS_GUARD = threading.Lock()
QUEUE_WAIT = 120.0  # seconds a web request waits behind the enrollments of its own process before a 503
# Enrollments of one process at once where the store locks each contact itself: each holds a pooled connection for
# its lock and borrows another for its writes, so at most half the pool (pg_connections.POOL_SIZE 10) is locks.
AT_ONCE_PER_CONTACT_LOCK = 4


def _turns(path: Path, at_once: int) -> threading.Semaphore:
    with _IN_PROCESS_GUARD:
        return _IN_PROCESS.setdefault((path, at_once), threading.BoundedSemaphore(at_once))


@contextmanager
def contact_lock(engine: Engine, email: str) -> Iterator[None]:
    """Enrollments and unsubscribes of one contact one after another: an enrollment saves the contact it read, so
    an unsubscribe landing in between would otherwise be overwritten.

    A store shared by many machines (PostgreSQL) locks the contact itself (Store.contact_lock: an advisory lock per
    address), so enrollments of different contacts run at once, in every process and, up to
    AT_ONCE_PER_CONTACT_LOCK, in the threads of one. Where the lock is this machine's lock file (SQLite, Notion: one
    file for every contact), the threads of one process (the web server's) take turns first, one at a time, so a
    burst of website enrollments waits its turn instead of answering 503 while each one is written; the file lock
    then orders the process against others (the CLI, cron, the workers of a WSGI server), waiting up to 10 s."""
    path = engine.lock_path("enroll.lock")
    local = file_lock(path, wait=10, what="enrollment or unsubscribe", mode=engine.campaign.store.mode)
    held = engine.store.contact_lock(email, local)  # the lock file, or the store's own (PostgreSQL)
    turns = _turns(path, 1 if held is local else AT_ONCE_PER_CONTACT_LOCK)
    if not turns.acquire(timeout=QUEUE_WAIT):
        raise Busy(f"{QUEUE_WAIT:.0f} s behind other enrollments", "retry in a minute; a retry is safe")
    try:
        with held:
            yield
    finally:
        turns.release()


def cancel_pending(store: Store, rows: Iterable[ScheduledEmail], note: str) -> list[ScheduledEmail]:
    return [
        store.update_email(row, {"state": State.CANCELLED, "note": note})
        for row in rows
        if row.state is State.SCHEDULED
    ]


def enrollable(campaign: Campaign, name: str) -> Sequence:
    """The sequence an enrollment may name: any of campaign.toml's, not the built-in one of `xmas broadcast`."""
    if name == BROADCAST and not dict.__contains__(campaign.sequences, BROADCAST):
        raise unknown_sequence(name, list(campaign.sequences))
    return campaign.sequence(name)


def enroll(engine: Engine, sequence_name: str, raw: Any, *, noted: bool = True) -> EnrollResult:
    """Validate, upsert the contact, write the enrollment's rows (idempotent), apply exit rules: all of it or
    nothing (unfinished.py; `noted`=False: completing an enrollment already noted as unfinished)."""
    from .unfinished import written_whole

    campaign, store = engine.campaign, engine.store
    from ..core.payloads import validate_payload

    sequence = enrollable(campaign, sequence_name)
    payload = validate_payload(sequence.payload, raw)
    now = engine.clock.now()
    data = payload.data()
    whole = written_whole(engine, sequence_name, raw) if noted else nullcontext()
    with contact_lock(engine, payload.email), whole:
        existing_contact = store.get_contact(payload.email) or Contact(email=payload.email)
        history = store.emails_for_contact(payload.email)
        legacy = legacy_enrollment_key(sequence_name, sequence, payload)
        key = legacy if legacy and any(r.enrollment_key == legacy for r in history) else None
        # planned before anything is written: a payload that cannot be planned leaves no trace
        plan = plan_enrollment(campaign, sequence_name, payload, now, existing_contact.suppressed, key)
        segment = classify_segment(data.get("red_systems"), data.get("orange_systems"))
        facts = enrollment_facts(sequence.payload, data)  # call time, payment, package: not fields (funnel_facts.py)
        merged = existing_contact.merged(data, segment, now, facts)
        consent = given_by(campaign, sequence_name, payload.consent, now)
        if consent.outranks(on_file(existing_contact)):
            merged = replace(merged, consent=consent)
        contact = store.save_contact(merged)
        seen = {r.sequence for r in history if r.sequence in campaign.sequences}
        blockers = sorted(
            f"already in {name}"
            for name in seen
            if campaign.sequences[name].final and sequence_name in campaign.sequences[name].cancels
        )
        blockers += events_in_force(campaign, store.events_for_contact(payload.email), sequence_name)
        existing = {r.id: r for r in history if r.enrollment_key == plan.key}
        rows: list[ScheduledEmail] = []
        for planned in plan.rows:
            old = existing.get(planned.id)
            if old is None:
                if blockers and planned.state is State.SCHEDULED:
                    planned = replace(planned, state=State.CANCELLED, note=f"exit rule: {blockers[0]}")
                rows.append(store.add_email(planned))
            elif old.state is State.SCHEDULED and old.data != planned.data:
                rows.append(store.update_email(old, {"data": planned.data}))
            else:
                rows.append(old)
        note = f"exit rule: enrolled in {sequence_name}"
        cancelled = cancel_pending(store, (r for r in history if r.sequence in sequence.cancels), note)
        if sequence.concurrent == "replace" and not existing:  # one conversation per sequence: the newest
            earlier = (r for r in history if r.sequence == sequence_name and r.enrollment_key != plan.key)
            cancelled += cancel_pending(store, earlier, f"superseded by {plan.key}")
    # after the lock: each of these takes it again
    also = [enroll(engine, other, raw, noted=noted) for other in sequence.enrolls]
    return EnrollResult(
        sequence=sequence_name,
        key=plan.key,
        contact=contact,
        created=not existing,
        rows=rows,
        cancelled=cancelled,
        anchor=plan.anchor,
        anchor_source=plan.anchor_source,
        warnings=plan.warnings,
        also=also,
    )
