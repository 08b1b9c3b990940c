"""Pacing requests to a provider's real limit, learned from its answers, in one budget that every runner shares.

Resend limits a team to N requests a second, whatever key or runner sends them (5 on its rate-limit page today, 2 on
older pages), and says so on every answer: `ratelimit-limit` (requests in a window), `ratelimit-remaining` (left in
this window), `ratelimit-reset` (seconds until the next window), and `retry-after` on a 429. The Pacer:

- starts at the configured rate, which stays a ceiling: an answer may lower the pace, never raise it above that;
- learns the limit from `ratelimit-limit` (requests per `window`: one second) and keeps MARGIN under it;
- spaces the requests of every runner evenly, one slot each 1 / rate seconds. Spaced at (1 - MARGIN) times the limit, no
  one-second window, whatever its phase, can hold more than `limit` of them, even when their arrival drifts by up
  to MARGIN / (1 - MARGIN) of a second (42 ms at 4 %) over a window;
- after a 429, holds every runner's next slot for `retry-after` (else `ratelimit-reset`, else one window).

`ratelimit-remaining` is not used to wait: Resend's `ratelimit-reset` is in whole seconds, so waiting for it whenever
a window is spent would idle most of the next window; even spacing never needs to.

The slots come from a Budget: LocalBudget for this process (SQLite and Notion: one runner holds the tick lock), or
one kept in the database all runners share (PostgreSQL: stores/pg_budget.py, wired in backends.py), which also
remembers the learned limit, so the next cron tick starts from it rather than from the configured rate.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Mapping
from typing import Protocol

MARGIN = 0.04  # paced this far under the provider's limit
WINDOW = 1.0  # seconds: Resend's limit is per second
LATE_SHARE = 0.25  # woken this share of an interval after its slot, a runner takes a new one (its turn has passed)
LATE_RETRIES = 3


# A slot: seconds from now until the request may start (0: now), and the provider's limit in requests per second as
# the budget last learned it (None: not yet). A plain tuple, so a store can hand one back without importing this.
Slot = tuple[float, float | None]


class Budget(Protocol):
    """Request slots for one provider account, evenly spaced, shared by whoever holds the same budget."""

    def reserve(self, interval: float) -> Slot:
        """Take the next slot: the latest of now, `interval` seconds after the previous slot began (the caller's
        interval: a runner that learned a lower limit spaces its request by it at once), and the end of a hold.
        Returns how long to wait for it, and the limit learned so far."""
        ...

    def hold(self, seconds: float) -> None:
        """No slot begins sooner than `seconds` from now (the provider said so with retry-after)."""
        ...

    def learn(self, limit: float) -> None:
        """Remember the provider's limit (requests per second) for every holder of this budget."""
        ...

    def close(self) -> None: ...


class LocalBudget:
    """A Budget for this process alone (its threads share it)."""

    def __init__(self, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._monotonic = monotonic
        self._last_at: float | None = None
        self._held_until: float | None = None
        self._limit: float | None = None
        self._lock = threading.Lock()

    def reserve(self, interval: float) -> Slot:
        with self._lock:
            now = self._monotonic()
            begins = now if self._held_until is None else max(now, self._held_until)
            if self._last_at is not None:
                begins = max(begins, self._last_at + interval)
            self._last_at = begins
            return begins - now, self._limit

    def hold(self, seconds: float) -> None:
        with self._lock:
            until = self._monotonic() + seconds
            self._held_until = until if self._held_until is None else max(self._held_until, until)

    def learn(self, limit: float) -> None:
        with self._lock:
            self._limit = limit

    def close(self) -> None:
        """Nothing to release."""


def header_seconds(headers: Mapping[str, str] | None, name: str) -> float | None:
    """A header's value as a finite number ≥ 0 (names in any case), else None (missing, an HTTP date, garbage)."""
    for key, value in (headers or {}).items():
        if str(key).lower() == name:
            try:
                number = float(value)
            except (TypeError, ValueError):
                return None
            return max(0.0, number) if math.isfinite(number) else None
    return None


class Pacer:
    """Waits before each request for this runner's slot in the shared budget, at the pace the answers allow.

    `ceiling` is the configured rate in requests per second (`math.inf`: unpaced until an answer gives a limit);
    `sleep` is injectable so tests never wait."""

    def __init__(
        self,
        ceiling: float,
        budget: Budget | None = None,
        *,
        margin: float = MARGIN,
        window: float = WINDOW,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if not ceiling > 0:
            raise ValueError("rate_limit must be a positive number of requests per second")
        if not 0 <= margin < 1 or not window > 0:
            raise ValueError("margin must be in [0, 1) and window positive")
        self.ceiling = ceiling
        self.margin = margin
        self.window = window
        self.budget: Budget = budget if budget is not None else LocalBudget(monotonic)
        self.limit: float | None = None  # learned: requests per second
        self._sleep = sleep
        self._monotonic = monotonic

    @property
    def rate(self) -> float:
        """Requests per second this pacer allows: under the learned limit, never above the configured ceiling."""
        limit = self.ceiling if self.limit is None else min(self.ceiling, self.limit)
        return limit * (1 - self.margin)

    def wait_turn(self) -> None:
        """Before a request: wait for this runner's slot. A runner that wakes up late (a busy machine did not run it)
        would send right before the next runner's slot; it takes a new slot instead, a few times at most."""
        for _ in range(LATE_RETRIES + 1):
            interval = 1.0 / self.rate
            wait, limit = self.budget.reserve(interval)
            if limit is not None:
                self.limit = limit
            if wait <= 0:
                return
            due = self._monotonic() + wait
            self._sleep(wait)
            if self._monotonic() - due <= interval * LATE_SHARE:
                return

    def answered(self, headers: Mapping[str, str] | None) -> None:
        """After any answer (a 2xx or an error): learn the limit it states, and share it when it changed."""
        stated = header_seconds(headers, "ratelimit-limit")
        if stated is None or stated < 1:
            return
        limit = stated / self.window
        if limit != self.limit:
            self.limit = limit
            self.budget.learn(limit)

    def throttled(self, headers: Mapping[str, str] | None, cap: float) -> float:
        """After a 429 for the rate limit: every runner holds off for retry-after (else ratelimit-reset, else one
        window), at most `cap` seconds. Returns the seconds held."""
        self.answered(headers)
        after = header_seconds(headers, "retry-after")
        if after is None:
            after = header_seconds(headers, "ratelimit-reset")
        held = min(self.window if after is None else after, cap)
        self.budget.hold(held)
        return held

    def close(self) -> None:
        self.budget.close()
