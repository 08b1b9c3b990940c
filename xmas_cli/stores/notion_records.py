"""How xmas's records are laid out in Notion: the mapping between Contact / ScheduledEmail / Template and the
properties named in `[notion.properties.*]` (their values: notion_values.py, re-exported here). The visible
columns a person can edit in Notion win over the Data JSON.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from ..clock import iso
from ..core.funnel_facts import FunnelFacts
from ..core.model import Contact, Delivery, Event, ScheduledEmail, Sender, State, Template, parse_consent
from ..core.notion_config import NotionProperties
from ..core.rows import damage
from .base import Changes
from .notion_values import (
    JSON,
    MAX_PIECES,
    MAX_TEXT,
    Props,
    checkbox_value,
    date_value,
    email_value,
    number_value,
    parse_date,
    prop,
    read_value,
    rich_text,
    select_value,
    split_text,
    text_value,
    title_value,
    utf16_len,
)


def _json_field(raw: Any, what: str, logger: logging.Logger) -> dict[str, Any]:
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except ValueError:
        logger.warning("%s: its Data is not valid JSON; it is ignored", what)
        return {}
    if not isinstance(value, dict):
        logger.warning("%s: its Data is not a JSON object; it is ignored", what)
        return {}
    return value


def _json_object(raw: Any, name: str, defects: list[str]) -> dict[str, Any]:
    """A row's Data: a JSON object, or {} with the reason added to `defects`."""
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except ValueError:
        defects.append(f"{name} {str(raw)[:60]!r} cannot be read (not JSON)")
        return {}
    if not isinstance(value, dict):
        defects.append(f"{name} {str(raw)[:60]!r} cannot be read (not a JSON object)")
        return {}
    return value


def _dump(data: Mapping[str, Any]) -> str:
    return json.dumps(data, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


# [notion.properties.contacts] key → the contact field its Number column shows
NUMBER_COLUMNS = {
    "red_systems": "red_systems",
    "orange_systems": "orange_systems",
    "yellow_systems": "yellow_systems",
    "green_systems": "green_systems",
    "revenue_leak": "revenue_leak_total",
}


def _count(value: Any) -> int | None:
    """A whole number from a contact field or a Number column; None for anything else."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not float(value).is_integer():
        return None
    return int(value)


def row_title(row: ScheduledEmail) -> str:
    """A tracker row's title names the person and the address: "Sarah <sarah@…> · assessment #2"."""
    name = " ".join(str(row.data.get("first_name") or "").split())
    return f"{name} <{row.email}> · {row.sequence} #{row.step}" if name else row.title


class Records:
    """Contact, ScheduledEmail and Template to and from Notion page properties, under the configured names."""

    def __init__(self, props: NotionProperties, logger: logging.Logger) -> None:
        self.props = props
        self.logger = logger

    def contact_properties(self, contact: Contact) -> Props:
        c = self.props.contacts
        fields = contact.fields
        score = fields.get("overall_score")
        if isinstance(score, bool) or not isinstance(score, int | float):
            score = None
        what = f"contact {contact.email}"
        weakest = ", ".join(str(fields[k]) for k in ("weakest_system_1", "weakest_system_2") if fields.get(k))
        return {
            **self.funnel_properties(contact.funnel, what),
            **{getattr(c, key): number_value(_count(fields.get(field))) for key, field in NUMBER_COLUMNS.items()},
            c.weakest_systems: text_value(weakest, f"{what}: weakest systems"),
            c.title: title_value(str(fields.get("first_name") or ""), f"{what}: first name"),
            c.email: email_value(contact.email.strip().lower()),
            c.business_name: text_value(str(fields.get("business_name") or ""), f"{what}: business name"),
            c.segment: select_value(contact.segment),
            c.score: number_value(score),
            c.unsubscribed: checkbox_value(contact.suppressed),
            c.suppressed_reason: text_value(contact.suppressed_reason, f"{what}: suppression reason"),
            c.data: text_value(_dump(fields), f"{what}: data"),
            c.updated: date_value(contact.updated_at),
            c.consent: text_value(contact.consent.describe() if contact.consent else None, f"{what}: consent"),
        }

    def funnel_properties(self, funnel: FunnelFacts, what: str) -> Props:
        """The funnel's columns for the facts known: one xmas knows nothing of is left as it is, never cleared."""
        c = self.props.contacts
        out: Props = {}
        if funnel.call_time is not None:
            out[c.call_time] = date_value(funnel.call_time)
        if funnel.payment_status:
            out[c.payment_status] = select_value(funnel.payment_status)
        if funnel.package:
            out[c.package] = text_value(funnel.package, f"{what}: package")
        return out

    def funnel(self, page: JSON) -> FunnelFacts:
        c = self.props.contacts
        call = prop(page, c.call_time)
        return FunnelFacts(
            call_time=call if isinstance(call, datetime) else None,
            payment_status=str(prop(page, c.payment_status) or "") or None,
            package=str(prop(page, c.package) or "") or None,
        )

    def contact(self, page: JSON) -> Contact:
        c = self.props.contacts
        email = str(prop(page, c.email) or "").strip().lower()
        fields = _json_field(prop(page, c.data), f"Contacts row {email or page.get('id')}", self.logger)
        # the columns a person can edit in Notion win over the Data JSON
        first, business, score = prop(page, c.title), prop(page, c.business_name), prop(page, c.score)
        if first:
            fields["first_name"] = first
        if business:
            fields["business_name"] = business
        if isinstance(score, int | float) and not isinstance(score, bool):
            fields["overall_score"] = int(score) if float(score).is_integer() else score
        for key, field in NUMBER_COLUMNS.items():
            if (count := _count(prop(page, getattr(c, key)))) is not None:
                fields[field] = count
        return Contact(
            email=email,
            fields=fields,
            segment=prop(page, c.segment) or None,
            suppressed=bool(prop(page, c.unsubscribed)),
            suppressed_reason=prop(page, c.suppressed_reason) or None,
            updated_at=prop(page, c.updated),
            ref=str(page["id"]),
            consent=parse_consent(prop(page, c.consent)),
            funnel=self.funnel(page),
        )

    def row_properties(self, row: ScheduledEmail) -> Props:
        t = self.props.tracker
        return {
            t.title: title_value(row_title(row), f"row {row.id}: title"),
            t.row_id: text_value(row.id, f"row {row.id}: id"),
            t.enrollment_key: text_value(row.enrollment_key, f"row {row.id}: enrollment key"),
            t.email: email_value(row.email.strip().lower()),
            t.sequence: select_value(row.sequence),
            t.step: number_value(row.step),
            t.template: text_value(row.template, f"row {row.id}: template"),
            t.sender: select_value(row.sender.value),
            t.due: date_value(row.due),
            **self.change_properties(
                row.id,
                {
                    "state": row.state,
                    "sent_at": row.sent_at,
                    "message_id": row.message_id,
                    "attempts": row.attempts,
                    "last_error": row.last_error,
                    "note": row.note,
                    "data": row.data,
                },
            ),
        }

    def change_properties(self, row_id: str, changes: Changes) -> Props:
        """The properties to write for these changes, and only those ("batch" has no column: Notion never batches)."""
        t = self.props.tracker
        out: Props = {}
        if "due" in changes:
            out[t.due] = date_value(changes["due"])
        if "state" in changes:
            out[t.state] = select_value(State(changes["state"]).value)
        if "sent_at" in changes:
            out[t.sent_at] = date_value(changes["sent_at"])
        if "message_id" in changes:
            out[t.message_id] = text_value(changes["message_id"], f"row {row_id}: message id")
        if "attempts" in changes:
            out[t.attempts] = number_value(changes["attempts"])
        if "last_error" in changes:
            out[t.last_error] = text_value(changes["last_error"], f"row {row_id}: last error")
        if "note" in changes:
            out[t.note] = text_value(changes["note"], f"row {row_id}: note")
        if "data" in changes:
            out[t.data] = text_value(_dump(changes["data"]), f"row {row_id}: data")
        if "variant" in changes:
            out[t.variant] = number_value(changes["variant"])
        if "delivery" in changes:
            d = changes["delivery"]
            out |= {
                t.delivered_at: date_value(d.delivered_at),
                t.opened_at: date_value(d.opened_at),
                t.opens: number_value(d.opens),
                t.clicks: number_value(d.clicks),
                t.links: text_value("\n".join(d.links), f"row {row_id}: clicked links"),
                t.bounce: select_value(d.bounce),
                t.complained_at: date_value(d.complained_at),
                t.delayed: checkbox_value(d.delayed),
            }
        return out

    def delivery(self, page: JSON) -> Delivery:
        """What Resend reported, from the row's delivery properties (absent ones: nothing reported)."""
        t = self.props.tracker

        def count(name: str) -> int:
            value = prop(page, name)
            return int(value) if isinstance(value, int | float) and value > 0 else 0

        links = str(prop(page, t.links) or "")
        return Delivery(
            delivered_at=prop(page, t.delivered_at),
            opened_at=prop(page, t.opened_at),
            opens=count(t.opens),
            clicks=count(t.clicks),
            links=tuple(x for x in links.splitlines() if x.strip()),
            bounce=prop(page, t.bounce) or None,
            complained_at=prop(page, t.complained_at),
            delayed=bool(prop(page, t.delayed)),
        )

    def row(self, page: JSON) -> ScheduledEmail:
        """The row on this page. A value xmas cannot read (a person's edit) is read as well as it can be and named
        in the row's `defect`, as on the SQL stores (core/rows.py: a damaged row is never sent, and `status` lists
        it); nothing is substituted silently."""
        t = self.props.tracker
        page_id = str(page["id"])
        row_id = str(prop(page, t.row_id) or page_id)
        defects: list[str] = []
        due = prop(page, t.due)
        if due is None:
            due = parse_date({"start": page.get("created_time")}) or datetime.fromtimestamp(0, UTC)
            defects.append(f"{t.due} is empty")
        state_name = prop(page, t.state)
        try:
            state = State(state_name)
        except ValueError:
            defects.append(f"{t.state} {state_name!r} is not one xmas knows (read as Paused)")
            state = State.PAUSED
        sender_name = prop(page, t.sender)
        try:
            sender = Sender(sender_name) if sender_name else Sender.XMAS  # empty: xmas sends it
        except ValueError:
            defects.append(f"{t.sender} {sender_name!r} is not one xmas knows")
            sender = Sender.XMAS
        step, attempts = prop(page, t.step), prop(page, t.attempts)
        if not isinstance(step, int | float):
            defects.append(f"{t.step} is empty")
        email = str(prop(page, t.email) or "").strip().lower()
        if not email:
            defects.append(f"{t.email} is empty")
        data = _json_object(prop(page, t.data), t.data, defects)
        row = ScheduledEmail(
            id=row_id,
            enrollment_key=str(prop(page, t.enrollment_key) or ""),
            email=email,
            sequence=str(prop(page, t.sequence) or ""),
            step=int(step) if isinstance(step, int | float) else 0,
            template=str(prop(page, t.template) or ""),
            sender=sender,
            due=due,
            state=state,
            sent_at=prop(page, t.sent_at),
            message_id=prop(page, t.message_id) or None,
            attempts=int(attempts) if isinstance(attempts, int | float) else 0,
            last_error=prop(page, t.last_error) or None,
            note=prop(page, t.note) or None,
            data=data,
            ref=page_id,
            delivery=self.delivery(page),
            variant=int(variant) if isinstance(variant := prop(page, t.variant), int | float) else None,
            defect=damage(defects),
        )
        return row

    def template(self, page: JSON) -> Template:
        t = self.props.templates
        name = str(prop(page, t.name) or "").strip()
        return Template(
            id=name,
            subject=str(prop(page, t.subject) or "").strip(),
            html=str(prop(page, t.body) or ""),
            active=prop(page, t.status) == "Active",
            origin=f"Notion Email Templates: {name} ({page.get('url') or page.get('id')})",
        )


def format_events(events: list[Event]) -> str:
    """The Events column: one line per event, oldest first: `2026-12-01T10:00:00Z booked {"key": ..., "data": ...}`."""
    lines = []
    for e in sorted(events, key=lambda e: e.order):
        rest = {"key": e.key, "data": e.data, "recorded_at": iso(e.recorded_at)}
        lines.append(f"{iso(e.at)} {e.name} {json.dumps(rest, ensure_ascii=False, sort_keys=True)}")
    return "\n".join(lines)


def parse_events(email: str, text: str, logger: logging.Logger) -> list[Event]:
    """The events in an Events column; a line a person broke is skipped, with a warning."""
    out = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            at, name, rest = line.split(" ", 2)
            extra = json.loads(rest)
            when = datetime.fromisoformat(at).astimezone(UTC)
            recorded = extra.get("recorded_at")
            out.append(
                Event(
                    key=str(extra["key"]),
                    email=email,
                    name=name,
                    at=when,
                    data=dict(extra.get("data") or {}),
                    recorded_at=datetime.fromisoformat(recorded).astimezone(UTC) if recorded else None,
                )
            )
        except (ValueError, KeyError, TypeError, AttributeError):
            logger.warning(
                "contact %s: line %d of its Events cannot be read and is ignored: %r", email, number, line[:80]
            )
    return out


__all__ = [
    "JSON",
    "MAX_PIECES",
    "MAX_TEXT",
    "Props",
    "Records",
    "checkbox_value",
    "date_value",
    "email_value",
    "format_events",
    "number_value",
    "parse_date",
    "parse_events",
    "prop",
    "read_value",
    "rich_text",
    "select_value",
    "split_text",
    "text_value",
    "title_value",
    "utf16_len",
]
