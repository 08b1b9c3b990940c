"""What the two API emulators share: an HTTP server on 127.0.0.1 (a free port) in a daemon thread."""

from __future__ import annotations

import threading
from http.server import ThreadingHTTPServer
from types import TracebackType
from typing import Self


class LocalServer:
    """Start, stop and address a ThreadingHTTPServer that a subclass builds in `_new_server`."""

    thread_name = "local-server"
    poll_interval = 0.01  # stop() waits for at most one poll

    def __init__(self) -> None:
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def _new_server(self) -> ThreadingHTTPServer:
        raise NotImplementedError

    def _on_stop(self, server: ThreadingHTTPServer) -> None:
        """Between shutdown and close: release what still holds a request (open connections, held replies)."""

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
