"""The web routes as a CGI script, for any web server that runs one (`xmas-cgi`, or `python -m xmas_cli.cgi_main`).

The server passes the request in the environment (REQUEST_METHOD, PATH_INFO, QUERY_STRING, CONTENT_TYPE,
CONTENT_LENGTH, HTTP_*) and the body on stdin; the answer goes to stdout with a `Status:` header. Configure
it like the CLI: XMAS_CONFIG (or campaign.toml in the working directory), XMAS_SECRET, and the keys the routes
need (XMAS_WEBHOOK_KEY..., XMAS_API_TOKEN, RESEND_WEBHOOK_SECRET). Errors go to stderr, the server's error log.

The body must arrive within READ_DEADLINE seconds, as `xmas serve` gives a client: a request whose body stops
short (a client that stalls, a proxy that holds it) is answered 408 instead of keeping the script for ever.
"""

from __future__ import annotations

import io
import os
import select
import sys
import time
from contextlib import suppress
from typing import BinaryIO
from wsgiref.handlers import CGIHandler

from . import make_app

DRAIN_LIMIT = 16 * 1024 * 1024  # bytes of an unread body read and dropped after answering, at most
READ_DEADLINE = 30.0  # seconds from the start for the whole body to arrive (web/server.py's timeout is the same)


class DeadlineInput(io.RawIOBase):
    """The request body from a file descriptor, as it arrives, raising TimeoutError once the deadline has passed.

    Unbuffered: a read returns what has arrived, so a body that stops short is counted exactly."""

    def __init__(self, fd: int, seconds: float) -> None:
        super().__init__()
        self.fd = fd
        self.until = time.monotonic() + seconds

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        left = self.until - time.monotonic()
        if left <= 0 or not select.select([self.fd], [], [], left)[0]:
            raise TimeoutError("no more of the request body arrived before the deadline")
        data = os.read(self.fd, len(buffer))
        buffer[: len(data)] = data
        return len(data)


class _Handler(CGIHandler):
    def __init__(self, stdin: BinaryIO) -> None:
        super().__init__()
        self.stdin = stdin


def _drain(stdin: BinaryIO) -> None:
    """Read what the app left unread (the body of a request it refused: 401, 404, 413...). Apache's mod_cgid
    resets the connection when a CGI script exits with request body unread, and the answer is lost."""
    left = DRAIN_LIMIT
    with suppress(OSError, ValueError):
        while left > 0 and (chunk := stdin.read(min(65536, left))):
            left -= len(chunk)


def main(deadline: float = READ_DEADLINE) -> None:
    stdin = DeadlineInput(sys.stdin.fileno(), deadline)
    _Handler(stdin).run(make_app())  # type: ignore[arg-type]
    _drain(stdin)  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
