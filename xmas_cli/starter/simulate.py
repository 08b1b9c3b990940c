"""Plausible delivery events for emails that went to the outbox, so `xmas report` can be tried with no account.

Deterministic (a hash of each row's id decides), and fed through the same queue and rules as Resend's webhooks:
most emails are delivered, about half of those opened, some clicked, a few bounce.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta

from ..core.deliveries import DeliveryEvent
from ..core.model import ScheduledEmail, State
from ..inbound.delivery_queue import DeliveryQueue

LINKS = ("https://calendly.com/example/diagnostic", "https://example.org/assessment")


def _draw(row_id: str, what: str) -> float:
    """A number in [0, 1) that depends only on the row and what is drawn."""
    return int(hashlib.sha256(f"{row_id}:{what}".encode()).hexdigest()[:8], 16) / 0x1_0000_0000


def simulated_events(row: ScheduledEmail) -> list[DeliveryEvent]:
    if row.state is not State.SENT or row.sent_at is None or not row.message_id:
        return []
    at, events = row.sent_at, []

    def event(kind: str, minutes: float, **extra: str) -> DeliveryEvent:
        return DeliveryEvent(
            f"sim:{row.id}:{kind}", kind, row.message_id or "", at + timedelta(minutes=minutes), **extra
        )

    if _draw(row.id, "bounce") < 0.03:
        return [event("email.bounced", 1, bounce="Permanent/General")]
    events.append(event("email.delivered", 1))
    if _draw(row.id, "open") < 0.55:
        events.append(event("email.opened", 30 + 600 * _draw(row.id, "when")))
        if _draw(row.id, "click") < 0.35:
            link = LINKS[int(_draw(row.id, "link") * len(LINKS))]
            events.append(event("email.clicked", 45 + 600 * _draw(row.id, "when"), link=link))
    return events


def simulate(rows: list[ScheduledEmail], queue: DeliveryQueue) -> int:
    """Queue the simulated events of these rows; how many were queued."""
    count = 0
    for row in rows:
        for event in simulated_events(row):
            count += queue.add(event, event.at)
    return count
