"""Pausing the campaign: `xmas pause` / `xmas resume`, `POST /pause` / `/resume`, and Notion's control row.

A pause covers the whole campaign or one sequence. While one holds, the tick sends nothing it covers (it reads
the pauses first, and says so in its report); `[pause] exempt_transactional = true` lets transactional sequences
(onboarding) go on under a whole-campaign pause. Resuming lifts the pause: what came due meanwhile goes out under
the tick's catch-up rules (one email per enrollment per tick), or, with `discard_missed`, is Skipped with the
reason.

Where a pause is kept is the store's business (`PauseBoard`): a store may offer its own (`store.pause_board()`:
Notion keeps it on control rows a person can flip); every other store keeps it as the campaign's own events
(address `~campaign`, which no contact can have), so the history of pauses is kept with no change to its schema.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, cast

from ..clock import iso
from ..core.controls import Pause
from ..core.model import Event, ScheduledEmail, State
from ..errors import JSON_VERSION, InvalidInput
from ..stores.base import Store
from .base import Engine, row_json

CAMPAIGN = "~campaign"  # the events address of the campaign itself: not an email address, so never a contact's
PAUSED = "xmas.paused"
RESUMED = "xmas.resumed"
MAX_REASON = 500


class PauseBoard(Protocol):
    """Where a store keeps the pauses in force."""

    def pauses(self, now: datetime) -> list[Pause]:
        """The pauses in force (`now`: the since of a pause a person made that xmas has not stamped yet)."""
        ...

    def record_pause(self, pause: Pause) -> None: ...

    def record_resume(self, lifted: Collection[Pause], at: datetime, by: str) -> None: ...


class EventBoard:
    """The pauses as the campaign's own events: each pause and resume is one event of `~campaign`."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def pauses(self, now: datetime) -> list[Pause]:
        return fold(self.store.events_for_contact(CAMPAIGN))

    def record_pause(self, pause: Pause) -> None:
        data = {"sequence": pause.sequence, "reason": pause.reason, "by": pause.by}
        key = f"{PAUSED}@{iso(pause.since)}@{uuid.uuid4().hex[:8]}"
        self.store.add_event(Event(key, CAMPAIGN, PAUSED, pause.since, data, pause.since))

    def record_resume(self, lifted: Collection[Pause], at: datetime, by: str) -> None:
        for pause in lifted:
            data = {"sequence": pause.sequence, "by": by}
            key = f"{RESUMED}@{iso(at)}@{uuid.uuid4().hex[:8]}"
            self.store.add_event(Event(key, CAMPAIGN, RESUMED, at, data, at))


def fold(events: list[Event]) -> list[Pause]:
    """The pauses in force after these events, oldest first: a pause holds until a resume of its scope."""
    held: dict[str | None, Pause] = {}
    for event in sorted(events, key=lambda e: e.order):
        sequence = event.data.get("sequence")
        sequence = str(sequence) if sequence is not None else None
        if event.name == PAUSED and sequence not in held:
            reason, by = str(event.data.get("reason") or ""), str(event.data.get("by") or "cli")
            held[sequence] = Pause(sequence, event.at, reason, by)
        elif event.name == RESUMED:
            held.pop(sequence, None)
    return sorted(held.values(), key=lambda p: p.since)


def board(engine: Engine) -> PauseBoard:
    """The store's own board where it has one (Notion), else the campaign's events."""
    own = getattr(engine.store, "pause_board", None)
    return cast(PauseBoard, own()) if callable(own) else EventBoard(engine.store)


@dataclass(frozen=True)
class Gate:
    """What the pauses in force let the tick send."""

    pauses: list[Pause]
    exempt: frozenset[str]  # sequences that go on under a whole-campaign pause (transactional, by config)

    @property
    def whole(self) -> Pause | None:
        return next((p for p in self.pauses if p.sequence is None), None)

    @property
    def closed(self) -> bool:
        """Nothing at all may go out: the tick need not even read the due rows."""
        return self.whole is not None and not self.exempt

    def holding(self, sequence: str) -> Pause | None:
        """The pause that holds this sequence's emails, or None."""
        whole = self.whole
        if whole is not None and sequence not in self.exempt:
            return whole
        return next((p for p in self.pauses if p.sequence == sequence), None)


def exempt(engine: Engine) -> frozenset[str]:
    """The sequences a whole-campaign pause lets go on: the transactional ones, if [pause] says so."""
    campaign = engine.campaign
    if not campaign.pause.exempt_transactional:
        return frozenset()
    return frozenset(name for name, seq in campaign.sequences.items() if seq.transactional)


def gate(engine: Engine, pauses: list[Pause] | None = None) -> Gate:
    return Gate(board(engine).pauses(engine.clock.now()) if pauses is None else pauses, exempt(engine))


# ------------------------------------------------------------------------------------------ use cases


@dataclass(frozen=True)
class PauseResult:
    action: str  # pause | resume
    changed: bool  # False: already paused (pause), nothing was paused (resume)
    pauses: list[Pause]  # the pause set or found (pause), the pauses lifted (resume)
    in_force: list[Pause]  # what holds afterwards
    skipped: list[ScheduledEmail]  # resume --discard-missed: the emails that came due meanwhile, now Skipped

    def message(self) -> str:
        if self.action == "pause":
            pause = self.pauses[0]
            return ("already " if not self.changed else "") + pause.describe()
        if not self.changed:
            return "nothing was paused"
        lifted = "; ".join(f"{p.scope} resumed (paused since {iso(p.since)})" for p in self.pauses)
        tail = f"; {len(self.skipped)} email(s) that came due meanwhile skipped" if self.skipped else ""
        return lifted + tail

    def to_json(self) -> dict[str, Any]:
        return {
            "version": JSON_VERSION,
            "ok": True,
            "action": self.action,
            "changed": self.changed,
            "pauses": [p.to_json() for p in self.pauses],
            "in_force": [p.to_json() for p in self.in_force],
            "skipped": [{**row_json(r), "email": r.email} for r in self.skipped],
        }


def _reason(reason: str | None) -> str:
    text = " ".join((reason or "").split())
    if len(text) > MAX_REASON or not text.isprintable():
        raise InvalidInput(
            "the pause's reason is too long or not printable",
            f"give at most {MAX_REASON} printable characters",
            [("reason", "too long or not printable")],
        )
    return text


def _sequence(engine: Engine, sequence: str | None) -> str | None:
    if sequence is None or sequence == "":
        return None
    engine.campaign.sequence(sequence)  # an unknown name: InvalidInput naming the sequences
    return sequence


def pause(engine: Engine, sequence: str | None = None, reason: str | None = None, by: str = "cli") -> PauseResult:
    """Pause the whole campaign or one sequence; pausing what is paused changes nothing."""
    name = _sequence(engine, sequence)
    text = _reason(reason)
    where = board(engine)
    found = where.pauses(engine.clock.now())
    existing = next((p for p in found if p.sequence == name), None)
    if existing is not None:
        return PauseResult("pause", False, [existing], found, [])
    new = Pause(name, engine.clock.now(), text, by)
    where.record_pause(new)
    return PauseResult("pause", True, [new], [*found, new], [])


def resume(engine: Engine, sequence: str | None = None, discard_missed: bool = False, by: str = "cli") -> PauseResult:
    """Lift the pauses (all of them, or one sequence's). The emails that came due while paused go out under the
    catch-up rules at the next tick, or, with `discard_missed`, are Skipped now with the reason."""
    name = _sequence(engine, sequence)
    where = board(engine)
    found = where.pauses(engine.clock.now())
    if name is not None and any(p.sequence is None for p in found) and not any(p.sequence == name for p in found):
        raise InvalidInput(
            f"the whole campaign is paused, not only {name}: nothing was resumed",
            "run `xmas resume` without --sequence to resume the whole campaign",
        )
    lifted = [p for p in found if name is None or p.sequence == name]
    if not lifted:
        return PauseResult("resume", False, [], found, [])
    now = engine.clock.now()
    skipped: list[ScheduledEmail] = []
    if discard_missed:
        skipped = _discard(engine, lifted, [p for p in found if p not in lifted], now)
    where.record_resume(lifted, now, by)
    return PauseResult("resume", True, lifted, [p for p in found if p not in lifted], skipped)


def _discard(engine: Engine, lifted: list[Pause], kept: list[Pause], now: datetime) -> list[ScheduledEmail]:
    """Skip the Scheduled emails that came due during a lifted pause and that no pause still holds."""
    after, before = Gate(kept, exempt(engine)), Gate(lifted, exempt(engine))
    out: list[ScheduledEmail] = []
    for row in list(engine.store.due_emails(now)):
        pause_of = before.holding(row.sequence)
        if pause_of is None or after.holding(row.sequence) is not None or row.due < pause_of.since:
            continue
        because = f": {pause_of.reason}" if pause_of.reason else ""
        why = f"came due while paused (since {iso(pause_of.since)}{because}); discarded at resume"
        out.append(engine.store.update_email(row, {"state": State.SKIPPED, "note": why}))
    return out


def in_force(engine: Engine) -> list[Pause]:
    """The pauses that hold now (for `xmas status`)."""
    return board(engine).pauses(engine.clock.now())
