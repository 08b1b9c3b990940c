"""What happened to every sent email, from the provider's webhooks: pure rules for applying one event.

Resend posts `email.sent`, `email.delivered`, `email.delivery_delayed`, `email.opened`, `email.clicked`,
`email.bounced` and `email.complained`, each naming the email by the id Resend gave it at send time (recorded on
the row as its message id). Events arrive out of order and more than once: the queue (delivery_queue.py) drops a
webhook delivered twice, and `apply` keeps only facts that no later or earlier event can undo (the first delivery,
the first open, counts of distinct webhooks, the set of links).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from .instants import iso, parse_instant
from .model import Delivery

TYPES = (
    "email.sent",
    "email.delivered",
    "email.delivery_delayed",
    "email.opened",
    "email.clicked",
    "email.bounced",
    "email.complained",
)
MAX_LINKS = 20  # distinct clicked links kept per email
MAX_LINK = 500  # characters of one link


@dataclass(frozen=True)
class DeliveryEvent:
    """One verified webhook: its identity (Svix's message id), type, when it happened, the provider's email id."""

    id: str
    type: str
    email_id: str
    at: datetime
    link: str | None = None  # email.clicked
    bounce: str | None = None  # email.bounced: "Permanent/General"
    campaign: str | None = None  # the email's `campaign` tag, as xmas tags what it sends; None: no tags given


def _earliest(current: datetime | None, at: datetime) -> datetime:
    return at if current is None or at < current else current


def apply(delivery: Delivery, event: DeliveryEvent) -> Delivery:
    """`delivery` with `event` taken in. Applying the same set of events in any order gives the same result."""
    kind = event.type
    if kind == "email.delivered":
        return replace(delivery, delivered_at=_earliest(delivery.delivered_at, event.at))
    if kind == "email.delivery_delayed":
        return replace(delivery, delayed=True)
    if kind == "email.opened":
        return replace(delivery, opened_at=_earliest(delivery.opened_at, event.at), opens=delivery.opens + 1)
    if kind == "email.clicked":
        links = delivery.links
        if event.link and event.link not in links and len(links) < MAX_LINKS:
            links = (*links, event.link[:MAX_LINK])
        # a click is an open the pixel missed (images off): count the email as opened at the click at the latest
        return replace(
            delivery, clicks=delivery.clicks + 1, links=links, opened_at=_earliest(delivery.opened_at, event.at)
        )
    if kind == "email.bounced":
        permanent = (delivery.bounce or "").startswith("Permanent")
        return delivery if permanent else replace(delivery, bounce=event.bounce or "Unknown")
    if kind == "email.complained":
        return replace(delivery, complained_at=_earliest(delivery.complained_at, event.at))
    return delivery  # email.sent: the row already says Sent


def parse_event(webhook_id: str, event: Mapping[str, Any], parse_time: Any) -> DeliveryEvent | None:
    """The delivery event in a verified webhook body, or None when it is not one xmas records (contact.*)."""
    kind = str(event.get("type") or "")
    data = event.get("data")
    if kind not in TYPES or not isinstance(data, Mapping):
        return None
    email_id = str(data.get("email_id") or "").strip()
    if not email_id:
        return None
    click: Mapping[str, Any] = data["click"] if isinstance(data.get("click"), Mapping) else {}
    bounce: Mapping[str, Any] = data["bounce"] if isinstance(data.get("bounce"), Mapping) else {}
    at = parse_time(str(click.get("timestamp") or event.get("created_at") or data.get("created_at") or ""))
    link = str(click.get("link") or "").strip() or None
    bounce_text = None
    if kind == "email.bounced":
        bounce_text = "/".join(str(p) for p in (bounce.get("type"), bounce.get("subType")) if p) or "Unknown"
    return DeliveryEvent(webhook_id, kind, email_id, at, link, bounce_text, _campaign_tag(data.get("tags")))


def _campaign_tag(tags: Any) -> str | None:
    """The `campaign` tag of the email an event is about: Resend gives tags as {name: value} (or, like the send
    API, as [{name, value}]). "" when it has tags but no campaign tag (not an email xmas sent); None: no tags."""
    if isinstance(tags, Mapping):
        return str(tags.get("campaign") or "")
    if isinstance(tags, list):
        found = [t.get("value") for t in tags if isinstance(t, Mapping) and t.get("name") == "campaign"]
        return str(found[0] or "") if found else ""
    return None


def to_json(delivery: Delivery) -> dict[str, Any]:
    return {
        "delivered_at": iso(delivery.delivered_at),
        "opened_at": iso(delivery.opened_at),
        "opens": delivery.opens,
        "clicks": delivery.clicks,
        "links": list(delivery.links),
        "bounce": delivery.bounce,
        "complained_at": iso(delivery.complained_at),
        "delayed": delivery.delayed,
    }


def from_json(value: Mapping[str, Any]) -> Delivery:
    def when(key: str) -> datetime | None:
        text = value.get(key)
        return parse_instant(str(text), key) if text else None

    links = value.get("links") or []
    return Delivery(
        delivered_at=when("delivered_at"),
        opened_at=when("opened_at"),
        opens=int(value.get("opens") or 0),
        clicks=int(value.get("clicks") or 0),
        links=tuple(str(x) for x in links if isinstance(x, str))[:MAX_LINKS],
        bounce=str(value["bounce"]) if value.get("bounce") else None,
        complained_at=when("complained_at"),
        delayed=bool(value.get("delayed")),
    )
