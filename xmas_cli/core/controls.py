"""Pauses and actions: campaign.toml's [pause] and [actions] (what a pause of the whole campaign spares, what the
actions on one contact enroll or record), a pause in force, and an action a person queued in the store."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from .instants import iso
from .model import Contact

# What a person picks in Notion's Action column → the action (`xmas contact ACTION`), and the option's colour
ACTIONS = {
    "Pause": ("pause", "orange"),
    "Resume": ("resume", "blue"),
    "Stop": ("stop", "red"),
    "Enroll in post-call maybe": ("maybe", "purple"),
    "Mark booked": ("booked", "green"),
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class PauseConfig(_Strict):
    # Under a pause of the whole campaign (`xmas pause`), transactional sequences (onboarding) still go out
    exempt_transactional: bool = False


class ActionsConfig(_Strict):
    maybe: str = "postcall"  # the post-call "maybe" follow-up a contact is enrolled in
    booked: str = "booked"  # the event a booking records


WHOLE = "the whole campaign"


@dataclass(frozen=True)
class Pause:
    sequence: str | None  # None: the whole campaign
    since: datetime
    reason: str = ""
    by: str = "cli"  # cli | web | notion

    @property
    def scope(self) -> str:
        return WHOLE if self.sequence is None else f"sequence {self.sequence}"

    def describe(self) -> str:
        why = f": {self.reason}" if self.reason else ""
        return f"{self.scope} paused since {iso(self.since)} (by {self.by}){why}"

    def to_json(self) -> dict[str, Any]:
        return {"sequence": self.sequence, "since": iso(self.since), "reason": self.reason, "by": self.by}


@dataclass(frozen=True)
class Queued:
    """An action a person chose on a contact in the store itself (Notion's Action column)."""

    contact: Contact
    label: str  # as chosen: one of ACTIONS, or anything a person typed
