"""The web routes as a CGI script, for any web server that runs one (`xmas-cgi`, or `python -m xmas_cli.cgi_main`).

The server passes the request in the environment (REQUEST_METHOD, PATH_INFO, QUERY_STRING, CONTENT_TYPE,
CONTENT_LENGTH, HTTP_*) and the body on stdin; the answer goes to stdout with a `Status:` header. Configure
it like the CLI: XMAS_CONFIG (or campaign.toml in the working directory), XMAS_SECRET, and the keys the routes
need (XMAS_WEBHOOK_KEY..., XMAS_API_TOKEN, RESEND_WEBHOOK_SECRET). Errors go to stderr, the server's error log.
"""

from __future__ import annotations

import sys
from contextlib import suppress
from typing import BinaryIO
from wsgiref.handlers import CGIHandler

from . import make_app

DRAIN_LIMIT = 16 * 1024 * 1024  # bytes of an unread body read and dropped after answering, at most


def _drain(stdin: BinaryIO) -> None:
    """Read what the app left unread (the body of a request it refused: 401, 404, 413...). Apache's mod_cgid
    resets the connection when a CGI script exits with request body unread, and the answer is lost."""
    left = DRAIN_LIMIT
    with suppress(OSError, ValueError):
        while left > 0 and (chunk := stdin.read(min(65536, left))):
            left -= len(chunk)


def main() -> None:
    CGIHandler().run(make_app())
    _drain(sys.stdin.buffer)


if __name__ == "__main__":
    main()
