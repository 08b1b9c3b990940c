"""Notion property values: text split on write (at most 2000 UTF-16 units a piece, 100 pieces, never inside a
surrogate pair) and joined on read; titles, selects, numbers, checkboxes and dates written and read back."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ..clock import iso
from ..errors import InvalidInput

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
