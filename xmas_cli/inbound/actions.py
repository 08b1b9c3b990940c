"""What the owner does to one contact: pause, resume, stop, enroll in the post-call "maybe" follow-up, mark booked.

The same functions serve `xmas contact ACTION EMAIL` and Notion's `Action` column (the tick applies what a person
chose there, then clears it and writes the outcome beside it). An action checks everything it needs before it
writes anything: a contact without the data an action needs gets the reason, and nothing changed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any, Protocol

from ..clock import iso, parse_instant
from ..core.controls import ACTIONS, Pause, Queued
from ..core.model import Contact, ScheduledEmail, State
from ..engine import ChangeResult, Engine, contact_lock
from ..errors import InvalidInput, MailerUnavailable, NotFound, StoreUnavailable, XmasError
from .events import latest_booking, record_event

LABELS = {label: action for label, (action, _) in ACTIONS.items()}  # Notion's Action options → the action
NAMES = tuple(LABELS.values())
LIVE = (State.SCHEDULED, State.PAUSED)  # what a stop ends


def _contact(engine: Engine, email: str) -> Contact:
    contact = engine.store.get_contact(email.strip().lower())
    if contact is None:
        raise NotFound(f"no contact with email {email!r} in {engine.store.description}", "check the address")
    return contact


def _change(engine: Engine, rows: Sequence[ScheduledEmail], state: State, note: str) -> list[ScheduledEmail]:
    return [engine.store.update_email(r, {"state": state, "note": note}) for r in rows]


def pause_contact(engine: Engine, email: str, reason: str = "") -> ChangeResult:
    """The contact's Scheduled emails become Paused (never sent until resumed)."""
    contact = _contact(engine, email)
    note = "paused by operator" + (f": {reason}" if reason else "")
    with contact_lock(engine, contact.email):
        rows = [r for r in engine.store.emails_for_contact(contact.email) if r.state is State.SCHEDULED]
        return ChangeResult("pause", contact.email, _change(engine, rows, State.PAUSED, note), contact)


def resume_contact(engine: Engine, email: str) -> ChangeResult:
    """The contact's Paused emails are Scheduled again; those that came due meanwhile go out under catch-up."""
    contact = _contact(engine, email)
    if contact.suppressed:
        raise InvalidInput(f"{contact.email} is suppressed ({contact.suppressed_reason})", "nothing was changed")
    with contact_lock(engine, contact.email):
        rows = [r for r in engine.store.emails_for_contact(contact.email) if r.state is State.PAUSED]
        return ChangeResult(
            "resume", contact.email, _change(engine, rows, State.SCHEDULED, "resumed by operator"), contact
        )


def stop_contact(engine: Engine, email: str) -> ChangeResult:
    """Every pending email of the contact (Scheduled or Paused) is Cancelled; the contact is not suppressed."""
    contact = _contact(engine, email)
    with contact_lock(engine, contact.email):
        rows = [r for r in engine.store.emails_for_contact(contact.email) if r.state in LIVE]
        return ChangeResult(
            "stop", contact.email, _change(engine, rows, State.CANCELLED, "stopped by operator"), contact
        )


def maybe_payload(engine: Engine, contact: Contact) -> dict[str, Any]:
    """The post-call payload from what is on record: the contact's name and business, and the call's time from its
    latest booking. Raises InvalidInput naming what is missing."""
    sequence = engine.campaign.actions.maybe
    missing: list[tuple[str, str]] = []
    if not contact.first_name:
        missing.append(("first_name", "the contact has no first name on record"))
    booking = latest_booking(engine, contact.email)
    start = booking.data.get("start_time") or booking.data.get("call_date") if booking else None
    call: datetime | None = None
    if isinstance(start, str):
        try:
            call = parse_instant(start, "start_time")
        except InvalidInput:
            call = None
    if call is None:
        missing.append(("call_date", "no booked call with a start time on record"))
    if missing:
        raise InvalidInput(
            f"{contact.email} cannot be enrolled in {sequence}: " + "; ".join(why for _, why in missing),
            f"record the booking first (Calendly, or `xmas event booked`), or run `xmas enroll {sequence}` "
            "with the call's time",
            missing,
        )
    assert call is not None
    payload: dict[str, Any] = {"email": contact.email, "first_name": contact.first_name, "call_date": iso(call)}
    if contact.fields.get("business_name"):
        payload["business_name"] = contact.fields["business_name"]
    return payload


def enroll_maybe(engine: Engine, email: str) -> ChangeResult:
    """Enroll the contact in the post-call "maybe" follow-up ([actions] maybe), from its data on record."""
    from ..engine import enroll

    contact = _contact(engine, email)
    sequence = engine.campaign.actions.maybe
    engine.campaign.sequence(sequence)
    result = enroll(engine, sequence, maybe_payload(engine, contact))
    return ChangeResult("maybe", contact.email, result.rows, result.contact)


def mark_booked(engine: Engine, email: str) -> ChangeResult:
    """Record the booking event ([actions] booked) now: what it cancels is cancelled, as a Calendly booking would."""
    contact = _contact(engine, email)
    name = engine.campaign.actions.booked
    result = record_event(engine, name, contact.email)
    return ChangeResult("booked", contact.email, result.cancelled, result.contact)


RUN: dict[str, Callable[[Engine, str], ChangeResult]] = {
    "pause": pause_contact,
    "resume": resume_contact,
    "stop": stop_contact,
    "maybe": enroll_maybe,
    "booked": mark_booked,
}


def run(engine: Engine, action: str, email: str) -> ChangeResult:
    if action not in RUN:
        raise InvalidInput(f"unknown action {action!r}", f"use one of {', '.join(NAMES)}", [("action", "unknown")])
    return RUN[action](engine, email)


def outcome(result: ChangeResult) -> str:
    """One line for the contact's Action Result."""
    what = {
        "pause": "paused {n} scheduled email(s)",
        "resume": "resumed {n} paused email(s)",
        "stop": "cancelled {n} pending email(s)",
        "maybe": "enrolled: {n} email(s) scheduled",
        "booked": "marked booked: cancelled {n} pending email(s)",
    }[result.action]
    return what.format(n=len(result.rows))


# ------------------------------------------------------------------------------------- queued (Notion)


class Control(Protocol):
    """What a store read in one go before the tick sends: queued actions, contacts ticked Unsubscribed whose
    pending emails were not cancelled yet, and the pauses in force (see stores/notion_control.py)."""

    actions: list[Queued]
    unsubscribed: list[Contact]
    pauses: list[Pause]

    def settle(self, queued: Queued, outcome: str) -> None:
        """Clear the action and write its outcome (or error) beside it."""
        ...

    def suppressed(self, contact: Contact, reason: str) -> None:
        """Write the reason of an unsubscribe a person ticked (its Suppression Reason)."""
        ...


INFRASTRUCTURE = (StoreUnavailable, MailerUnavailable)


def apply_queued(engine: Engine, control: Control) -> list[str]:
    """Apply each queued action and each fresh unsubscribe; one line each for the tick's report."""
    lines: list[str] = []
    for queued in control.actions:
        action = LABELS.get(queued.label)
        try:
            if action is None:
                raise InvalidInput(f"unknown action {queued.label!r}", f"pick one of {', '.join(LABELS)}")
            text = outcome(run(engine, action, queued.contact.email))
        except INFRASTRUCTURE:
            raise
        except XmasError as exc:
            text = f"error: {exc.message}" + (f" — {exc.fix}" if exc.fix else "")
        control.settle(queued, f"{iso(engine.clock.now())} {queued.label}: {text}")
        lines.append(f"{queued.contact.email}: {queued.label}: {text}")
    for contact in control.unsubscribed:
        now = engine.clock.now()
        reason = f"unsubscribed in {engine.store.description} {iso(now)}"
        with contact_lock(engine, contact.email):
            rows = [r for r in engine.store.emails_for_contact(contact.email) if r.state in LIVE]
            cancelled = _change(engine, rows, State.CANCELLED, "unsubscribed (ticked in Notion)")
            control.suppressed(replace(contact, suppressed_reason=reason), reason)
        lines.append(f"{contact.email}: unsubscribed: cancelled {len(cancelled)} pending email(s)")
    return lines
