"""What the two API emulators share: an HTTP server on 127.0.0.1 (a free port) in a daemon thread,
request hooks, and seeded random faults ("chaos").

Request hooks
-------------
Assign ``emu.on_request = fn`` (None to remove), ``fn(event, index, method, path)``:

* ``"received"``: the request line, headers and body were read; nothing was processed or answered yet.
* ``"answered"``: the response bytes were written and flushed, or the connection was dropped instead.

``index`` is the 1-based number of the request in arrival order (the same number for both events of
one request). The hook runs in the server's request thread, so it may block (hold a request in flight,
slow an answer) without stopping other requests. An exception raised by a hook is printed to stderr
and otherwise ignored: the request carries on.

Chaos
-----
:class:`Chaos` draws, for each request that reaches its point in the emulator, either nothing or one
fault, from its own ``random.Random(seed)``: the same seed and the same request order give the same
faults. Each emulator decides where the draw happens and what a fault looks like (see their
``chaos()`` methods); :attr:`Chaos.applied` counts the faults actually answered.
"""

from __future__ import annotations

import random
import sys
import threading
import traceback
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from http.server import ThreadingHTTPServer
from types import TracebackType
from typing import Self

RequestHook = Callable[[str, int, str, str], None]
"""``hook(event, index, method, path)``; event is ``"received"`` or ``"answered"``."""


@dataclass(frozen=True)
class Fault:
    """One random fault: ``kind`` is ``"429"``, ``"5xx"`` or ``"drop"``; ``status`` the HTTP status
    (0 for a drop); ``after_processing`` says the request is applied first, then answered with it."""

    kind: str
    status: int
    after_processing: bool = False

    @property
    def label(self) -> str:
        """``"429"``, ``"503"``, ``"500 after"``, ``"drop"``: the key in :attr:`Chaos.applied`."""
        if self.kind == "drop":
            return "drop"
        return f"{self.status} after" if self.after_processing else str(self.status)


class Chaos:
    """Seeded random faults at fixed rates. Thread-safe.

    Per draw: with probability ``rate_429`` a 429; else with ``rate_5xx`` a 5xx whose status is picked
    uniformly from ``statuses`` and which is applied after processing with probability
    ``after_processing_share``; else with ``rate_drop`` a dropped connection (after processing); else
    nothing. The rates must sum to at most 1.
    """

    def __init__(
        self,
        seed: int,
        *,
        rate_429: float = 0.0,
        rate_5xx: float = 0.0,
        after_processing_share: float = 0.0,
        rate_drop: float = 0.0,
        statuses: Sequence[int] = (500,),
    ) -> None:
        rates = (rate_429, rate_5xx, after_processing_share, rate_drop)
        if any(not 0.0 <= r <= 1.0 for r in rates) or rate_429 + rate_5xx + rate_drop > 1.0:
            raise ValueError("rates must be within 0..1 and rate_429 + rate_5xx + rate_drop at most 1")
        if rate_5xx and (not statuses or any(not 500 <= s <= 599 for s in statuses)):
            raise ValueError("statuses must be a non-empty list of 5xx codes")
        self.seed = seed
        self.rate_429 = rate_429
        self.rate_5xx = rate_5xx
        self.after_processing_share = after_processing_share
        self.rate_drop = rate_drop
        self.statuses = tuple(statuses)
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self._drawn = 0
        self._applied: Counter[str] = Counter()

    def draw(self) -> Fault | None:
        """The fault for the next request, or None. Always consumes three numbers, so a run's faults
        depend only on the seed and on the order of the draws."""
        with self._lock:
            self._drawn += 1
            roll, pick, share = self._random.random(), self._random.random(), self._random.random()
        if roll < self.rate_429:
            return Fault("429", 429)
        roll -= self.rate_429
        if roll < self.rate_5xx:
            status = self.statuses[min(int(pick * len(self.statuses)), len(self.statuses) - 1)]
            return Fault("5xx", status, after_processing=share < self.after_processing_share)
        roll -= self.rate_5xx
        if roll < self.rate_drop:
            return Fault("drop", 0, after_processing=True)
        return None

    def record(self, fault: Fault) -> None:
        """Count a fault that was answered (a drawn fault may be waived, e.g. after a failed request)."""
        with self._lock:
            self._applied[fault.label] += 1

    @property
    def drawn(self) -> int:
        """How many requests were drawn for."""
        with self._lock:
            return self._drawn

    @property
    def applied(self) -> Counter[str]:
        """Faults answered so far by label: ``{"429": 12, "503": 3, "500 after": 2, "drop": 4}``."""
        with self._lock:
            return Counter(self._applied)


class LocalServer:
    """Start, stop and address a ThreadingHTTPServer that a subclass builds in `_new_server`."""

    thread_name = "local-server"
    poll_interval = 0.01  # stop() waits for at most one poll

    def __init__(self) -> None:
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.on_request: RequestHook | None = None
        self._chaos: Chaos | None = None
        self._hook_lock = threading.Lock()
        self._received = 0

    def _new_server(self) -> ThreadingHTTPServer:
        raise NotImplementedError

    def _on_stop(self, server: ThreadingHTTPServer) -> None:
        """Between shutdown and close: release what still holds a request (open connections, held replies)."""

    # ----------------------------------------------------------------- hooks

    @property
    def received_count(self) -> int:
        """Requests received so far (the ``index`` of the latest one)."""
        with self._hook_lock:
            return self._received

    def _request_received(self, method: str, path: str) -> int:
        """Number the request and call the hook with ``"received"``; returns its index."""
        with self._hook_lock:
            self._received += 1
            index = self._received
        self._call_hook("received", index, method, path)
        return index

    def _request_answered(self, index: int, method: str, path: str) -> None:
        self._call_hook("answered", index, method, path)

    def _call_hook(self, event: str, index: int, method: str, path: str) -> None:
        hook = self.on_request
        if hook is None:
            return
        try:
            hook(event, index, method, path)
        except Exception:  # a broken hook must not take the request (or the server thread) down with it
            where = f"{type(self).__name__}: on_request hook failed on {event} #{index} {method} {path}:"
            print(where, file=sys.stderr)
            traceback.print_exc()

    # ----------------------------------------------------------------- chaos

    @property
    def chaos_applied(self) -> Counter[str]:
        """Random faults answered since the last ``chaos(...)`` call (see :attr:`Chaos.applied`)."""
        chaos = self._chaos
        return chaos.applied if chaos is not None else Counter()

    def _draw_fault(self) -> tuple[Chaos, Fault] | None:
        chaos = self._chaos
        if chaos is None:
            return None
        fault = chaos.draw()
        return None if fault is None else (chaos, fault)

    # ----------------------------------------------------------------- lifecycle

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT``, without a trailing slash; only valid after :meth:`start`."""
        if self._server is None:
            raise RuntimeError(f"{type(self).__name__} is not started; call start() first")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> Self:
        if self._server is None:
            server = self._new_server()
            thread = threading.Thread(
                target=server.serve_forever,
                kwargs={"poll_interval": self.poll_interval},
                name=self.thread_name,
                daemon=True,
            )
            thread.start()
            self._server, self._thread = server, thread
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is not None:
            server.shutdown()
            self._on_stop(server)
            server.server_close()
        if thread is not None:
            thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
