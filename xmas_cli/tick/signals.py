"""SIGTERM and SIGINT during a tick: finish what is in flight, record it, and stop.

The first signal asks the tick to stop at the next safe point (between two sends): the request in flight
finishes and its outcome is recorded. A second signal abandons the request in flight at once; its batch
stays in the journal (or, unbatched, its row stays due) and the next tick sends it again under the same key.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType

SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Abandoned(BaseException):
    """A second signal: leave the request in flight. A BaseException, like KeyboardInterrupt, so that no
    `except Exception` on the way keeps it."""


@dataclass
class StopRequest:
    signal: str | None = None  # the name of the first signal received

    @property
    def requested(self) -> bool:
        return self.signal is not None


@contextmanager
def stop_on_signals(stop: StopRequest) -> Iterator[None]:
    """Install the handlers for the duration (only in the main thread, where Python delivers signals)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        if stop.requested:
            raise Abandoned(signal.Signals(signum).name)
        stop.signal = signal.Signals(signum).name

    previous = {s: signal.signal(s, handler) for s in SIGNALS}
    try:
        yield
    finally:
        for s, old in previous.items():
            signal.signal(s, old)
