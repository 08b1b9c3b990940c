"""The engine: the use cases that touch the store, the mailer and the clock together.

base.py is the Engine every use case is given and the records' JSON; enroll.py enrolls (and orders a contact's
enrollments and unsubscribes); operators.py cancels, retries, unsubscribes, shows and reports status; preview and
send-test beside them. This file re-exports what callers import from `xmas_cli.engine`. The tick is in tick/,
what arrives from outside in inbound/, store copy in stores/copy.py.

May import: core, the ports (stores/base.py, mailers/base.py), errors, clock, lock, perms. Never a store or a
mailer itself (only their ports), commands, web, tick, inbound, report, starter or backends.
"""

from __future__ import annotations

from .base import (
    Engine,
    booked_by_events,
    booking_sequences,
    campaign_counts,
    contact_json,
    event_json,
    events_in_force,
    row_json,
)
from .enroll import EnrollResult, cancel_pending, contact_lock, enroll
from .operators import ChangeResult, Status, Timeline, cancel, retry, show, status, unsubscribe

__all__ = [
    "ChangeResult",
    "Engine",
    "EnrollResult",
    "Status",
    "Timeline",
    "booked_by_events",
    "booking_sequences",
    "campaign_counts",
    "cancel",
    "cancel_pending",
    "contact_json",
    "contact_lock",
    "enroll",
    "event_json",
    "events_in_force",
    "retry",
    "row_json",
    "show",
    "status",
    "unsubscribe",
]
