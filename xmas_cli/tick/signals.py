"""SIGTERM and SIGINT during a tick: finish what is in flight, record it, and stop.

The first signal asks the tick to stop at the next safe point (between two sends): the request in flight
finishes and its outcome is recorded. A second signal abandons the request in flight at once; its batch
stays in the journal (or, unbatched, its row stays due) and the next tick sends it again under the same key.
So does the first signal's grace running out (STOP_GRACE seconds): a tick blocked on a network that went quiet
(a database or a mail API that never answers) stops within seconds of one SIGTERM, not when the kernel gives up.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType

SIGNALS = (signal.SIGTERM, signal.SIGINT)
STOP_GRACE = 5.0  # seconds after the first signal for what is in flight to finish before it is abandoned


class Abandoned(BaseException):
    """A second signal, or the first one's grace run out: leave the request in flight. A BaseException, like
    KeyboardInterrupt, so that no `except Exception` on the way keeps it. `hung`: the grace ran out (what was in
    flight did not finish: its connection is not to be relied on for clean-up)."""

    def __init__(self, name: str, hung: bool = False) -> None:
        super().__init__(name)
        self.hung = hung


@dataclass
class StopRequest:
    signal: str | None = None  # the name of the first signal received

    @property
    def requested(self) -> bool:
        return self.signal is not None


@contextmanager
def stop_on_signals(stop: StopRequest, grace: float = STOP_GRACE) -> Iterator[None]:
    """Install the handlers for the duration (only in the main thread, where Python delivers signals)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        if stop.requested:
            raise Abandoned(signal.Signals(signum).name)
        stop.signal = signal.Signals(signum).name
        signal.setitimer(signal.ITIMER_REAL, grace)

    def grace_over(signum: int, frame: FrameType | None) -> None:
        raise Abandoned(stop.signal or "SIGALRM", hung=True)

    previous = {s: signal.signal(s, handler) for s in SIGNALS}
    previous_alarm = signal.signal(signal.SIGALRM, grace_over)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous_alarm)
        for s, old in previous.items():
            signal.signal(s, old)
