"""How xmas's records are laid out in Notion: property values (text split and joined, dates, selects) and the
mapping between Contact / ScheduledEmail / Template and the properties named in `[notion.properties.*]`.

Text: one rich-text piece holds at most 2000 UTF-16 units and a property at most 100 pieces. Long values are
split on write (never inside a surrogate pair) and every piece is joined on read. The visible columns a person
can edit in Notion win over the Data JSON.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ..clock import iso
from ..core.campaign import NotionProperties
from ..core.model import Contact, Delivery, Event, ScheduledEmail, Sender, State, Template, parse_consent
from ..errors import InvalidInput
from .base import Changes

MAX_TEXT = 2000  # UTF-16 units in one rich-text piece
MAX_PIECES = 100  # pieces in one rich-text array
JSON = dict[str, Any]
Props = dict[str, Any]


# ------------------------------------------------------------------------------------------- text


def utf16_len(text: str) -> int:
    """Length as Notion counts it (JavaScript's `length`): an emoji counts 2."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def split_text(text: str, limit: int = MAX_TEXT) -> list[str]:
    """Pieces of at most `limit` UTF-16 units each, never cutting a surrogate pair; "" gives []."""
    if not text:
        return []
    if utf16_len(text) == len(text):  # no character outside the BMP: one unit each
        return [text[i : i + limit] for i in range(0, len(text), limit)]
    pieces: list[str] = []
    start = units = 0
    for i, char in enumerate(text):
        width = 2 if ord(char) > 0xFFFF else 1
        if units + width > limit:
            pieces.append(text[start:i])
            start, units = i, 0
        units += width
    pieces.append(text[start:])
    return pieces


def rich_text(text: str, what: str) -> list[JSON]:
    pieces = split_text(text)
    if len(pieces) > MAX_PIECES:
        raise InvalidInput(
            f"{what} is too long for Notion: {utf16_len(text)} characters, at most {MAX_PIECES * MAX_TEXT}",
            "shorten it; nothing was written for this value",
        )
    return [{"type": "text", "text": {"content": piece}} for piece in pieces]


# --------------------------------------------------------------------------- property values (write)


def title_value(text: str, what: str) -> JSON:
    return {"title": rich_text(text, what)}


def text_value(text: str | None, what: str) -> JSON:
    return {"rich_text": rich_text(text or "", what)}


def email_value(address: str | None) -> JSON:
    return {"email": address or None}


def select_value(name: str | None) -> JSON:
    return {"select": {"name": name} if name else None}


def number_value(number: float | None) -> JSON:
    return {"number": number}


def checkbox_value(flag: bool) -> JSON:
    return {"checkbox": bool(flag)}


def date_value(moment: datetime | None) -> JSON:
    return {"date": {"start": iso(moment)} if moment is not None else None}


# ---------------------------------------------------------------------------- property values (read)


def _piece(item: JSON) -> str:
    if "plain_text" in item:
        return str(item["plain_text"] or "")
    return str((item.get("text") or {}).get("content") or "")


def parse_date(value: Any) -> datetime | None:
    if not isinstance(value, dict) or not value.get("start"):
        return None
    try:
        moment = datetime.fromisoformat(str(value["start"]))
    except ValueError:
        return None
    if moment.tzinfo is None:
        zone: Any = UTC
        if value.get("time_zone"):
            try:
                zone = ZoneInfo(str(value["time_zone"]))
            except (ZoneInfoNotFoundError, ValueError):
                zone = UTC
        moment = moment.replace(tzinfo=zone)
    return moment.astimezone(UTC)


def read_value(prop: Any) -> Any:
    """A property value as Python, from a page (read shape) or from a request body (write shape):
    text → str (every piece joined), select/status → option name, date → aware UTC datetime, others as is."""
    if not isinstance(prop, dict):
        return None
    kind = prop.get("type") or next((k for k in prop if k not in ("id", "type")), None)
    if kind is None:
        return None
    value = prop.get(kind)
    if kind in ("title", "rich_text"):
        return "".join(_piece(item) for item in value or [] if isinstance(item, dict))
    if kind in ("select", "status"):
        return value.get("name") if isinstance(value, dict) else None
    if kind == "date":
        return parse_date(value)
    return value


def prop(page: JSON, name: str) -> Any:
    return read_value((page.get("properties") or {}).get(name))


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


def _dump(data: Mapping[str, Any]) -> str:
    return json.dumps(data, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


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
        return {
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
        return Contact(
            email=email,
            fields=fields,
            segment=prop(page, c.segment) or None,
            suppressed=bool(prop(page, c.unsubscribed)),
            suppressed_reason=prop(page, c.suppressed_reason) or None,
            updated_at=prop(page, c.updated),
            ref=str(page["id"]),
            consent=parse_consent(prop(page, c.consent)),
        )

    def row_properties(self, row: ScheduledEmail) -> Props:
        t = self.props.tracker
        return {
            t.title: title_value(row.title, f"row {row.id}: title"),
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
        t = self.props.tracker
        page_id = str(page["id"])
        row_id = str(prop(page, t.row_id) or page_id)
        where = f"Sequence Tracker row {row_id}"
        due = prop(page, t.due)
        if due is None:
            due = parse_date({"start": page.get("created_time")}) or datetime.fromtimestamp(0, UTC)
            self.logger.warning("%s has no %s: it is shown as due when it was created", where, t.due)
        state_name = prop(page, t.state)
        try:
            state = State(state_name)
        except ValueError:
            self.logger.warning("%s has %s %r, which xmas does not know: treated as Paused", where, t.state, state_name)
            state = State.PAUSED
        try:
            sender = Sender(prop(page, t.sender))
        except ValueError:
            sender = Sender.XMAS
        step, attempts = prop(page, t.step), prop(page, t.attempts)
        return ScheduledEmail(
            id=row_id,
            enrollment_key=str(prop(page, t.enrollment_key) or ""),
            email=str(prop(page, t.email) or "").strip().lower(),
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
            data=_json_field(prop(page, t.data), where, self.logger),
            ref=page_id,
            delivery=self.delivery(page),
            variant=int(variant) if isinstance(variant := prop(page, t.variant), int | float) else None,
        )

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
