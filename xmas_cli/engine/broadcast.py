"""`xmas broadcast TEMPLATE (--where EXPR | --all)`: one email to the contacts an expression selects, written as
tracker rows of the `broadcast` sequence (core/campaign.py), which the tick sends like any other row.

Each contact's row has a deterministic id (`broadcast:<email>|<name>#1`, the name defaulting to the template;
core/broadcasts.py, which also reads the name back for the report), so running the same broadcast again, or again
after a crash half-way, adds nothing for whoever has their row: nobody gets it twice (the row id is also the
provider's idempotency key). Because the rows belong to a marketing
sequence, the tick applies consent, the send windows, the frequency cap, suppression and the unsubscribe header
exactly as for the sequences; an unsubscribed contact's row is written Skipped, as an enrollment's would be.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..clock import iso
from ..core.audience import Facts, Node, check_names, describe, matches, parse
from ..core.broadcasts import NAME, broadcast_key
from ..core.campaign import BROADCAST
from ..core.consent import on_file, refusal
from ..core.model import CONTACT_FIELDS, Contact, ScheduledEmail, Sender, State, row_id
from ..core.rows import is_live
from ..errors import JSON_VERSION, InvalidInput, NotFound
from .base import Engine, booked_by_events

AUTOMATIC_EVENTS = {"auto-reply", "bounce-notice"}  # recorded by inbound/replies.py


@dataclass(frozen=True)
class Target:
    email: str
    status: str  # "scheduled" | "already" | "skipped" (unsubscribed: written Skipped) | "not selected"
    reason: str = ""  # why not, or what the tick will do (no consent)


@dataclass(frozen=True)
class BroadcastResult:
    name: str
    template: str
    where: str  # the expression as read back, or "all"
    due: datetime
    dry_run: bool
    targets: list[Target]

    def count(self, status: str) -> int:
        return sum(1 for t in self.targets if t.status == status)

    def summary(self) -> str:
        verb = "would schedule" if self.dry_run else "scheduled"
        return (
            f"broadcast {self.name} ({self.template}) due {iso(self.due)}: {verb} {self.count('scheduled')}, "
            f"{self.count('already')} reached before, {self.count('skipped')} unsubscribed, "
            f"{self.count('not selected')} not selected"
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "version": JSON_VERSION,
            "ok": True,
            "name": self.name,
            "template": self.template,
            "where": self.where,
            "due": iso(self.due),
            "dry_run": self.dry_run,
            "targets": [{"email": t.email, "status": t.status, "reason": t.reason or None} for t in self.targets],
            "summary": self.summary(),
        }


def _facts(engine: Engine, contact: Contact, rows: list[ScheduledEmail], booked: set[str], now: datetime) -> Facts:
    campaign = engine.campaign
    live = frozenset(r.sequence for r in rows if is_live(r))
    consent = on_file(contact)
    fields = {
        **contact.fields,
        "email": contact.email,
        "segment": contact.segment,
        "consent": consent.kind if consent else "none",
    }
    booking = any(campaign.sequences[s].counts_as_booking for s in live if s in campaign.sequences)
    return Facts(
        fields=fields,
        booked=contact.email in booked or booking,
        suppressed=contact.suppressed,
        consent_valid=consent is not None and consent.valid_at(now),
        events=frozenset(e.name for e in engine.store.events_for_contact(contact.email)),
        sequences=live,
    )


def _expression(engine: Engine, where: str | None, everyone: bool) -> Node | None:
    if everyone == (where is not None):
        raise InvalidInput("say whom to send it to", "give either --where EXPR or --all, not both and not neither")
    if where is None:
        return None
    node = parse(where)
    campaign = engine.campaign
    fields = {*CONTACT_FIELDS, "email", "segment", "consent"}
    check_names(node, fields, set(campaign.events) | AUTOMATIC_EVENTS, set(campaign.sequences) | {BROADCAST})
    return node


def broadcast(
    engine: Engine,
    template: str,
    *,
    where: str | None = None,
    everyone: bool = False,
    at: datetime | None = None,
    name: str | None = None,
    dry_run: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> BroadcastResult:
    store, campaign = engine.store, engine.campaign
    node = _expression(engine, where, everyone)
    name = name or template
    if not NAME.fullmatch(name):
        raise InvalidInput(f"broadcast name {name!r} is not a plain name", "use letters, digits, _ . - (--name)")
    found = store.get_template(template)
    if found is None or not found.active:
        why = "does not exist" if found is None else "is not Active"
        raise NotFound(f"template {template!r} {why} in {store.description}", "push it first (xmas templates push)")
    now = engine.clock.now()
    due = at or now
    rows_by_contact: dict[str, list[ScheduledEmail]] = {}
    for row in store.all_emails():
        rows_by_contact.setdefault(row.email, []).append(row)
    booked = booked_by_events(engine) if node is not None else set()
    contacts = sorted(store.all_contacts(), key=lambda c: c.email)
    targets: list[Target] = []
    for done, contact in enumerate(contacts, 1):
        rows = rows_by_contact.get(contact.email, [])
        if node is not None and not matches(node, _facts(engine, contact, rows, booked, now)):
            targets.append(Target(contact.email, "not selected"))
            continue
        key = broadcast_key(name, contact.email)
        new = ScheduledEmail(row_id(key, 1), key, contact.email, BROADCAST, 1, template, Sender.XMAS, due,
                             note=f"broadcast {name}", data={"broadcast": name})  # fmt: skip
        before = next((r for r in rows if r.id == new.id), None)
        if before is not None:
            targets.append(Target(contact.email, "already", f"this broadcast's row is there: {before.state.value}"))
            continue
        if contact.suppressed:
            new = ScheduledEmail(new.id, key, contact.email, BROADCAST, 1, template, Sender.XMAS, due,
                                 State.SKIPPED, note="contact is unsubscribed", data=new.data)  # fmt: skip
            targets.append(Target(contact.email, "skipped", contact.suppressed_reason or "unsubscribed"))
        else:
            refused = refusal(campaign, BROADCAST, contact, due)
            targets.append(Target(contact.email, "scheduled", f"the tick will skip it: {refused}" if refused else ""))
        if not dry_run:
            store.add_email(new)  # the same id again leaves the row as it is
        if progress is not None:
            progress(done, len(contacts))
    return BroadcastResult(name, template, describe(node) if node else "all", due, dry_run, targets)
