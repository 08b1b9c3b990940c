"""campaign.toml's [tick] table, and the rule of how long a tick sends.

Cron starts a tick every minute. A tick sends until `end_before_next_minute` before the next minute begins, judged
on its own clock from where in its minute it started (`until`), and never starts a send it cannot expect to finish
before that minute begins, when cron's next tick takes the lock (tick/state.py measures what a send takes).
`budget_seconds`, when set, ends it sooner: no send starts after that many seconds. Either way a tick always makes
its first send, so a backlog always drains.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from .campaign_fields import Duration, MinuteMargin
from .durations import parse_duration

MINUTE = 60.0  # seconds between two ticks started by cron
LAST_SEND = 10.0  # what a lease adds to the longest a tick sends, for the send still in flight at its end


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class TickConfig(_Strict):
    lock: str = ".xmas/tick.lock"
    catch_up_gap: Duration = "24h"
    testing_catch_up_gap: Duration = "1m"
    # No send starts after this many seconds of a tick (None: the minute decides, below).
    budget_seconds: float | None = Field(default=None, gt=0)
    # A tick sends until this long before the next minute (cron's next tick), on its own clock.
    end_before_next_minute: MinuteMargin = "2s"
    slice: int = Field(default=100, ge=1, le=1000)  # emails rendered and sent between two looks at the budget

    @property
    def margin(self) -> float:
        return parse_duration(self.end_before_next_minute).total_seconds()

    @property
    def longest(self) -> float:
        """The most seconds a tick started by cron goes on starting sends (at the very start of its minute)."""
        within = MINUTE - self.margin
        return within if self.budget_seconds is None else min(within, self.budget_seconds)

    def until(self, now: datetime) -> Sending:
        """How long a tick that started at `now` (its clock) may send, in seconds from its start."""
        into = now.second + now.microsecond / 1_000_000  # offsets are whole minutes: the UTC minute is the local one
        minute_ends = MINUTE - into
        stop = minute_ends - self.margin
        if self.budget_seconds is not None:
            stop = min(stop, self.budget_seconds)
        return Sending(stop, minute_ends)

    def describe(self) -> str:
        """`until 2s before the next minute`, with the budget when it is set: for messages."""
        text = f"until {self.end_before_next_minute} before the next minute"
        return text if self.budget_seconds is None else f"{text}, at most {self.budget_seconds:g} s"


@dataclass(frozen=True)
class Sending:
    """A tick's sending time, in seconds since it started: no send starts after `stop`, and none that is expected
    to end after `minute_ends` (when cron starts the next tick)."""

    stop: float
    minute_ends: float
