"""Replies: Resend's `email.received` webhook, for mail sent to a receiving address (`[sender] reply_to`).

The webhook carries metadata only; the email's headers are read back through the SDK (`read`, given by the
caller) to tell a person's reply from an automatic one (core/replies.py):

- a person's reply records the `replied` event ([events.replied]), which cancels what that event names, as an
  event told by `xmas event` does; the event's data keeps the subject, so the contact shows it (Notion too);
- an automatic reply (out of office, a bounce notice) stops nothing: it is recorded as `auto-reply` or
  `bounce-notice` on the contact, and the contact's pending emails of the sequences `replied` cancels that are
  due within `[events.replied] auto_reply_hold` are held until then, noted with the reason;
- a reply from an address that is not a contact is recorded in `.xmas/replies-unknown.jsonl` beside the tick's
  lock, and changes nothing.

Resend redelivers webhooks: each received email is counted once (its `email_id` is the event's key), and a
redelivery is answered without reading the email again.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from ..clock import iso, parse_instant
from ..core.durations import parse_duration
from ..core.model import Event, ScheduledEmail, State
from ..core.plan import planned_due
from ..core.replies import BOUNCE, bare_address, classify, header_map
from ..engine import Engine, contact_lock
from ..errors import InvalidInput

REPLIED = "replied"
KIND_EVENT = {"auto-reply": "auto-reply", BOUNCE: "bounce-notice"}
UNKNOWN_FILE = "replies-unknown.jsonl"

ReadReceived = Callable[[str], Mapping[str, Any]]


def event_key(email_id: str) -> str:
    return f"resend-received:{email_id}"


def handle_received(engine: Engine, event: Mapping[str, Any], read: ReadReceived | None) -> tuple[str, list[str], str]:
    """Act on one verified `email.received`: (action, the contact's address or nothing, what happened)."""
    data = event.get("data")
    data = data if isinstance(data, Mapping) else {}
    email_id = str(data.get("email_id") or "").strip()
    if not email_id:
        return "ignored", [], "email.received without data.email_id: nothing to read"
    # The docs' example gives `from` as "Name <address>"; the fact sheet a bare address: both are read.
    sender = bare_address(str(data.get("from") or ""))
    subject = str(data.get("subject") or "")
    now = engine.clock.now()
    at = _when(str(data.get("created_at") or event.get("created_at") or ""), now)
    store = engine.store
    contact = store.get_contact(sender) if "@" in sender else None
    if contact is None:
        fresh = _record_unknown(engine, email_id, sender, subject, at)
        said = "recorded" if fresh else "recorded before"
        return "ignored", [], f"reply from {sender or 'no sender'}, not a contact: {said} in {UNKNOWN_FILE}"
    key = event_key(email_id)
    if any(e.key == key for e in store.events_for_contact(sender)):
        return "ignored", [sender], f"received email {email_id} was recorded before: nothing more to do"
    if read is None:
        raise InvalidInput("this server cannot read received emails", "set RESEND_API_KEY for the web server")
    received = read(email_id)
    headers = header_map(received.get("headers"))
    verdict = classify(headers, str(received.get("from") or data.get("from") or ""), subject)
    facts = {"subject": subject, "email_id": email_id, "message_id": str(data.get("message_id") or "")}
    if not verdict.automatic:
        return _human(engine, sender, at, facts, key)
    return _automatic(engine, sender, at, now, {**facts, "reason": verdict.reason}, key, verdict.kind)


def _human(engine: Engine, sender: str, at: datetime, facts: dict[str, str], key: str) -> tuple[str, list[str], str]:
    from .events import record_event

    if REPLIED not in engine.campaign.events:
        return "ignored", [sender], f"a reply from {sender}, but campaign.toml has no [events.{REPLIED}]"
    result = record_event(engine, REPLIED, sender, at=at, data=facts, key=key)
    if not result.recorded:
        return "ignored", [sender], f"received email {facts['email_id']} was recorded before: nothing more to do"
    subject = facts["subject"]
    return "replied", [sender], f"{sender} replied ({subject!r}): {len(result.cancelled)} pending email(s) cancelled"


def _automatic(
    engine: Engine, sender: str, at: datetime, now: datetime, facts: dict[str, str], key: str, kind: str
) -> tuple[str, list[str], str]:
    """Record the automatic reply and hold the contact's next emails; nothing is cancelled."""
    campaign, store = engine.campaign, engine.store
    config = campaign.events.get(REPLIED)
    hold = parse_duration(config.auto_reply_hold) if config and config.auto_reply_hold else None
    name = KIND_EVENT.get(kind, "auto-reply")
    held: list[ScheduledEmail] = []
    with contact_lock(engine, sender):
        if not store.add_event(Event(key, sender, name, at, facts, now)):
            return "ignored", [sender], f"received email {facts['email_id']} was recorded before: nothing more to do"
        if hold is not None and config is not None:
            until = now + hold
            targets = campaign.cancelled_by(REPLIED)
            why = f"held until {iso(until)}: {name} ({facts['reason']})"
            for row in store.emails_for_contact(sender):
                if row.state is State.SCHEDULED and row.sequence in targets and row.due < until:
                    note = f"{why}: was due {iso(planned_due(row))}"  # the tick's form for a moved row
                    held.append(store.update_email(row, {"due": until, "note": note}))
    what = f"{name} from {sender} ({facts['reason']}): nothing stopped"
    if hold is None:
        return "recorded", [sender], what + "; nothing held ([events.replied] auto_reply_hold is not set)"
    return (
        "held",
        [sender],
        what + f"; {len(held)} pending email(s) held for {config.auto_reply_hold if config else ''}",
    )


def _when(text: str, now: datetime) -> datetime:
    """Resend's time (ISO 8601 with Z, or `+00:00` with microseconds, or a list page's space-separated form)."""
    try:
        return parse_instant(text.replace(" ", "T", 1) if " " in text.strip() else text, "created_at")
    except InvalidInput:
        return now


def _record_unknown(engine: Engine, email_id: str, sender: str, subject: str, at: datetime) -> bool:
    """Append the reply to the unknown senders' file, once per email id; False when it is there already."""
    path = engine.lock_path(UNKNOWN_FILE)
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                if json.loads(line).get("email_id") == email_id:
                    return False
            except (ValueError, AttributeError):
                continue
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps({"email_id": email_id, "from": sender, "subject": subject, "at": iso(at)}, ensure_ascii=False)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, engine.campaign.store.mode)
    with os.fdopen(fd, "a", encoding="utf-8") as out:
        out.write(line + "\n")
    return True


def unknown_replies(engine: Engine) -> list[dict[str, Any]]:
    """What `_record_unknown` kept, oldest first."""
    path = engine.lock_path(UNKNOWN_FILE)
    if not path.exists():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            continue
    return out
