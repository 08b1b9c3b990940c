"""Requests and answers: the request object, its body (limits and Content-Length rules), JSON parsing, the
answer type, and which HTTP status an error maps to (and what of it the client may read)."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs
from wsgiref.types import WSGIEnvironment

from ..core import jsonin
from ..errors import Busy, ConfigError, InvalidInput, MailerUnavailable, StoreUnavailable, Unauthorized, XmasError

MAX_BODY = jsonin.MAX_BODY  # one limit for request bodies and `--payload`
JSON_TYPE = "application/json; charset=utf-8"
RETRY_AFTER = "5"
_FROM_LOG = "the operator will find the details in the server's error log"


# ------------------------------------------------------------------------------------ requests, answers


@dataclass(frozen=True)
class Request:
    environ: WSGIEnvironment
    env: Mapping[str, str]
    config: str | None

    @property
    def method(self) -> str:
        return str(self.environ.get("REQUEST_METHOD", "GET")).upper()

    @property
    def path(self) -> str:
        return str(self.environ.get("PATH_INFO", "")) or "/"

    def header(self, name: str) -> str:
        key = name.upper().replace("-", "_")
        return str(self.environ.get(key if key in ("CONTENT_TYPE", "CONTENT_LENGTH") else f"HTTP_{key}", ""))

    def query(self) -> dict[str, list[str]]:
        return parse_qs(str(self.environ.get("QUERY_STRING", "")))

    def log(self, text: str) -> None:
        stream = self.environ.get("wsgi.errors") or sys.stderr
        stream.write(text if text.endswith("\n") else text + "\n")
        stream.flush()


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    headers: list[tuple[str, str]] = field(default_factory=list)


class Refused(Exception):
    """An answer decided from the request alone, before the engine runs."""

    def __init__(self, status: int, error: XmasError, headers: list[tuple[str, str]] | None = None) -> None:
        super().__init__(error.message)
        self.status = status
        self.error = error
        self.headers = headers or []


def json_bytes(document: dict[str, Any]) -> bytes:
    """A JSON answer's body, as `xmas ... --json` prints it (server.py answers framing errors with it too)."""
    return (json.dumps(document, indent=2, ensure_ascii=False) + "\n").encode()


def json_answer(status: int, document: dict[str, Any], headers: list[tuple[str, str]] | None = None) -> Answer:
    return Answer(status, json_bytes(document), [("Content-Type", JSON_TYPE), *(headers or [])])


# ---------------------------------------------------------------------------------------------- errors


def status_of(exc: XmasError) -> int:
    if isinstance(exc, Unauthorized):
        return 401
    if isinstance(exc, InvalidInput):
        return 400
    if isinstance(exc, StoreUnavailable | MailerUnavailable | Busy):
        return 503
    return 500


def internal_error() -> XmasError:
    return XmasError("the server failed to handle this request", _FROM_LOG)


def public_error(exc: XmasError) -> XmasError:
    """What the client may read: the error itself for bad input, a generic one for what fails on our side."""
    if isinstance(exc, InvalidInput):
        return exc
    if isinstance(exc, Busy):
        return Busy("another enrollment is being written", "retry in a few seconds; a retry is safe")
    if isinstance(exc, StoreUnavailable | MailerUnavailable):
        return type(exc)("the campaign's store or mailer cannot be reached", "retry in a few seconds; a retry is safe")
    if isinstance(exc, ConfigError):
        return ConfigError("the server is not configured correctly", _FROM_LOG)
    return internal_error()


# ---------------------------------------------------------------------------------------------- bodies


def read_body(req: Request, *, required: bool, json_only: bool = False) -> bytes:
    """The request body, after the checks that need only the headers: 411, 413, 415."""
    length = req.header("Content-Length").strip()
    if req.header("Transfer-Encoding"):
        if length:  # two framings for one body: a request smuggling attempt, or a broken proxy
            raise Refused(
                400,
                InvalidInput(
                    "the request has both Transfer-Encoding and Content-Length",
                    "send the body with a Content-Length header only",
                ),
            )
        raise Refused(
            411, InvalidInput("chunked request bodies are not accepted", "send the body with a Content-Length header")
        )
    if not length and required:
        raise Refused(
            411, InvalidInput("the request has no Content-Length header", "send the body with a Content-Length header")
        )
    if length and not (length.isascii() and length.isdigit()):
        raise Refused(400, InvalidInput("Content-Length is not a number", "send the body's length in bytes"))
    digits = length.lstrip("0")
    if len(digits) > 9 or int(digits or "0") > MAX_BODY:  # decided from the header: the body stays unread
        raise Refused(
            413,
            InvalidInput(
                f"the request body is larger than the limit of {MAX_BODY} bytes",
                "send one enrollment per request",
                [("(body)", f"larger than {MAX_BODY} bytes")],
            ),
        )
    if json_only and req.header("Content-Type").partition(";")[0].strip().lower() != "application/json":
        raise Refused(415, InvalidInput("the request body must be JSON", "send it with Content-Type: application/json"))
    size = int(digits or "0")
    stream = req.environ["wsgi.input"]
    chunks: list[bytes] = []
    left = size
    try:
        while left > 0 and (chunk := stream.read(left)):
            chunks.append(chunk)
            left -= len(chunk)
    except TimeoutError:  # the client stalled past the read deadline (`xmas serve`'s timeout, xmas-cgi's deadline)
        raise Refused(
            408,
            InvalidInput(
                f"the request body stopped after {size - left} of {size} bytes and no more arrived in time",
                "send the whole body that Content-Length announces, without pausing",
            ),
        ) from None
    except OSError:  # the client went away
        pass
    if left > 0:
        raise Refused(
            400,
            InvalidInput(
                f"the request body ended after {size - left} of {size} bytes",
                "send the whole body that Content-Length announces",
            ),
        )
    return b"".join(chunks)


def parse_json(body: bytes) -> Any:
    """The same bounded reader as `xmas enroll --payload`: UTF-8, one value, no NaN, bounded depth and numbers."""
    return jsonin.loads(body, field="(body)", what="the request body")
