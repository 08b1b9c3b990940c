"""What a tick did, row by row: the report `xmas tick` prints (a table and a summary line) or emits as JSON."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ..clock import iso
from ..core.model import ScheduledEmail
from ..errors import JSON_VERSION

DRY_RUN = {
    "sent": "would-send",
    "skipped": "would-skip",
    "failed": "would-fail",
    "waiting": "would-wait",
    "deferred": "would-defer",
    "held": "would-hold",
    "retry": "would-retry",
}
TROUBLE = frozenset({"failed", "waiting", "retry", "would-fail", "would-wait"})


@dataclass(frozen=True)
class Outcome:
    row: ScheduledEmail
    action: str  # sent | skipped | failed | waiting | retry | deferred | would-send | would-replay | would-...
    detail: str = ""


@dataclass
class TickReport:
    now: datetime
    dry_run: bool
    due: int = 0  # due rows this tick read (and batches it found open)
    outcomes: list[Outcome] = field(default_factory=list)
    left_over: int = 0  # due rows not reached (time budget or a stop signal)
    more_left: bool = False  # and there are more than left_over (not all were read)
    stopped: str | None = None  # the signal that stopped the tick early (SIGTERM, SIGINT)
    deliveries: int = 0  # delivery events (opens, clicks...) recorded on their rows from the queue
    paused: list[str] = field(default_factory=list)  # the pauses in force (engine/control.py), described
    held_by_pause: int = 0  # due rows a pause kept back (left as they are, due)
    actions: list[str] = field(default_factory=list)  # what the store's queued actions did (Notion's Action column)

    def count(self, action: str) -> int:
        return sum(1 for o in self.outcomes if o.action == action)

    @property
    def ok(self) -> bool:
        return not any(o.action in TROUBLE for o in self.outcomes)

    def summary(self) -> str:
        order = (
            "sent",
            "would-send",
            "would-replay",
            "stopped",
            "skipped",
            "would-skip",
            "deferred",
            "would-defer",
            "held",
            "would-hold",
            "retry",
            "waiting",
            "would-wait",
            "failed",
            "would-fail",
        )
        parts = [f"{self.count(a)} {a}" for a in order if self.count(a)]
        if self.left_over or self.more_left:
            why = f"stopped by {self.stopped}" if self.stopped else "time budget"
            parts.append(f"{self.left_over}{'+' if self.more_left else ''} left for the next tick ({why})")
        elif self.stopped:
            parts.append(f"stopped by {self.stopped}")
        head = f"tick {iso(self.now)}{' (dry run)' if self.dry_run else ''}: {self.due} due"
        tail = f"; {self.deliveries} delivery event(s) recorded" if self.deliveries else ""
        if self.actions:
            tail += f"; {len(self.actions)} action(s) applied"
        if self.paused:
            kept = f", {self.held_by_pause} due email(s) wait" if self.held_by_pause else ""
            tail += f"; PAUSED: {'; '.join(self.paused)}{kept}"
        return head + (": " + ", ".join(parts) if parts else "") + tail

    def to_json(self) -> dict[str, Any]:
        return {
            "version": JSON_VERSION,
            "ok": self.ok,
            "now": iso(self.now),
            "dry_run": self.dry_run,
            "due": self.due,
            "left_over": self.left_over,
            "more_left": self.more_left,
            "stopped": self.stopped,
            "deliveries": self.deliveries,
            "paused": self.paused,
            "held_by_pause": self.held_by_pause,
            "actions": self.actions,
            "outcomes": [
                {
                    "id": o.row.id,
                    "email": o.row.email,
                    "sequence": o.row.sequence,
                    "step": o.row.step,
                    "template": o.row.template,
                    "action": o.action,
                    "detail": o.detail,
                }
                for o in self.outcomes
            ],
        }
