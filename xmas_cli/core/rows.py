"""The row rules, each defined once, for every store and every caller.

- **Live and dead.** A row that is Cancelled (exit rule, operator, unsubscribe) or Skipped (suppressed, too late)
  ends its enrollment: it is dead. Every other state is live, and a live row is what counts as an enrollment (the
  spots taken, the bookings, the report's funnel).
- **Due.** Only a Scheduled row is ever sent, once its due time has come (a person pauses or cancels a row by
  changing its state). A store adds only what is its own: not in an open batch, not claimed by another runner.
- **Problems.** What `xmas status` lists (and exits 1 for): a Failed row, a Scheduled row that waits with an error,
  and a damaged row.
- **Unknown sequence.** A row whose sequence campaign.toml does not have (a row a person added in Notion, a
  sequence removed) is never sent and never dropped silently: it stays Scheduled with the reason as its error, so
  it waits visibly and `status` lists it, until the sequence is back or someone cancels the row.
- **Damaged.** A stored value that cannot be read (a hand edit, a bug) never stops a command and is never replaced
  silently: the row is read as well as it can be, with the reason in `defect`; it is never sent (the tick marks a
  due one Failed with the reason) and `status` lists it.

The SQL stores build their WHERE clauses from the state sets here (DEAD, DUE_STATE, FAILED, WAITING), passed as
parameters; Notion builds its filters from the same sets.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from .model import ScheduledEmail, State

DEAD: tuple[State, ...] = (State.CANCELLED, State.SKIPPED)
LIVE: tuple[State, ...] = tuple(state for state in State if state not in DEAD)
DUE_STATE = State.SCHEDULED
FAILED: tuple[State, ...] = (State.FAILED,)
WAITING = State.SCHEDULED  # a row in this state that carries an error waits, visibly
DAMAGED = "stored row is damaged: "


def values(states: Collection[State]) -> list[str]:
    """The stored form of these states, in a stable order (a query's parameters)."""
    return sorted(state.value for state in states)


def is_live(row: ScheduledEmail) -> bool:
    return row.state not in DEAD


def is_due(row: ScheduledEmail, now: datetime) -> bool:
    return row.state is DUE_STATE and row.due <= now


def is_waiting(row: ScheduledEmail) -> bool:
    return row.state is WAITING and bool(row.last_error)


def is_damaged(row: ScheduledEmail) -> bool:
    return bool(row.defect)


def is_problem(row: ScheduledEmail) -> bool:
    return is_damaged(row) or row.state in FAILED or is_waiting(row)


def damage(defects: Collection[str]) -> str | None:
    """A damaged row's `defect`: every value that could not be read, or None when all could."""
    return DAMAGED + "; ".join(defects) if defects else None


def unknown_sequence(row: ScheduledEmail, sequences: Collection[str]) -> str | None:
    """The error a row waits with when its sequence is not in campaign.toml; None when it is."""
    if row.sequence in sequences:
        return None
    return f"sequence {row.sequence!r} is not in campaign.toml: the email waits until it is, or is cancelled"
