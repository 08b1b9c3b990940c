"""A local emulator of the Resend HTTP API, for tests that drive the real ``resend`` SDK.

Point the SDK at it (the SDK re-reads both settings on every request)::

    with ResendEmulator(rate_limit=None) as emu:
        resend.api_url = emu.base_url
        resend.api_key = emu.api_key
        resend.Emails.send({...})
        assert emu.sent[0]["to"] == ["ada@example.com"]

Only the standard library is used. The server is a ``ThreadingHTTPServer`` bound to
127.0.0.1 on a free port, run in a daemon thread.

Wire format (what the emulator answers)
---------------------------------------
* ``POST /emails`` -> ``200 {"id": "<uuid>"}``.
* ``POST /emails/batch`` (1..100 emails) -> ``200 {"data": [{"id": ...}, ...]}``; with
  ``x-batch-validation: permissive`` the invalid items are skipped and reported:
  ``{"data": [ids of the valid items, in order], "errors": [{"index": i, "message": "..."}]}``
  (``errors`` is always present in permissive mode, possibly empty, and absent in strict mode).
  In strict mode (the default) one invalid item fails the whole request with its 422 and
  nothing is sent. ``attachments`` and ``scheduled_at`` are refused in batch items (422).
* ``GET /emails/receiving/{id}`` -> a received email as the retrieve API documents it (``headers``
  with lower-case names, ``created_at`` as ``2026-12-01T09:00:00.000000+00:00``), 404 ``not_found``
  otherwise; ``GET /emails/receiving?limit=&after=&before=`` -> ``{"object": "list", "has_more",
  "data"}``, newest first, without html, text, headers and raw, ``created_at`` as the list page
  prints it (``2026-12-01 09:00:00.000000+00``); ``limit`` 1..100 (422 otherwise), all without it.
  :meth:`ResendEmulator.add_received` receives an email, :meth:`ResendEmulator.received_event` is
  its ``email.received`` webhook body (metadata only) and :meth:`ResendEmulator.post_received`
  signs and POSTs it to a URL, as Resend does.
* Every error is ``{"statusCode": <status>, "message": "...", "name": "<error name>"}`` with
  ``content-type: application/json``.
* Every reply carries ``ratelimit-limit``, ``ratelimit-remaining`` and ``ratelimit-reset``
  (omitted when ``rate_limit`` is None); a 429 also carries ``retry-after``. The limit is a token
  bucket (``rate_limit``, ``burst``), or, after :meth:`ResendEmulator.limit_window`, Resend's
  documented fixed window: at most N requests in each window (1 s, or shorter for quick tests).
* All response header names are lower case (as the real API, served over HTTP/2, sends them),
  so ``exc.headers["retry-after"]`` works on the plain ``dict`` the SDK builds.

Order of checks for each request: injected fault, ``User-Agent`` present (400
``validation_error``), ``Authorization: Bearer`` (401 ``missing_api_key`` / 403
``invalid_api_key``), rate limit (429 ``rate_limit_exceeded``), route (404 ``not_found`` /
405 ``method_not_allowed``), ``Idempotency-Key`` length (400 ``invalid_idempotency_key``),
random fault (:meth:`ResendEmulator.chaos`), idempotency store (replay / 409), then body
validation and sending.

Random faults and request hooks
-------------------------------
``emu.chaos(seed=7, rate_429=0.2, rate_5xx=0.1, after_processing_share=0.5, rate_drop=0.1)``
draws one fault (or none) per request that passed every check up to the idempotency-key length
(so a request the emulator refuses anyway is answered as without chaos):

* 429 ``rate_limit_exceeded`` with ``retry-after: <emu.retry_after>``, before processing;
* 5xx from ``statuses`` (default 500 ``application_error`` and 503 ``service_unavailable``):
  before processing, or, for ``after_processing_share`` of them, after it: the messages are
  recorded and the key stores the 2xx reply (a retry gets that reply), but the client sees the
  5xx. An after-processing fault is waived when processing itself failed (the client sees that
  error);
* a drop (``rate_drop``): as :meth:`ResendEmulator.drop_connection_after_accept`, and waived in
  the same way when the request did not succeed.

Replays are subject to after-processing faults and drops too. ``emu.chaos(None)`` turns it
off; :attr:`ResendEmulator.chaos_applied` counts the faults answered by label (``"429"``,
``"503"``, ``"500 after"``, ``"drop"``).

``emu.on_request = fn(event, index, method, path)`` is called with ``"received"`` once the
body is read and before anything is checked, and with ``"answered"`` once the reply was
written and flushed or the connection dropped (see ``local_server``).

Deviations from the hosted API, on purpose: a request without ``User-Agent`` gets a JSON 400
``validation_error`` (the hosted API is fronted by Cloudflare, which answers a non-JSON
``403 error code: 1010``); address validation is a pragmatic regex (the domain needs a dot);
only 2xx responses are stored under an idempotency key (an error releases the key, so a
corrected retry with the same key is processed).

Idempotency
-----------
The key is remembered for 24 hours of the emulator's clock (see :meth:`ResendEmulator.now` and
:meth:`ResendEmulator.advance`) together with a SHA-256 of method, path, batch-validation mode
and canonical JSON body. Same key and payload -> the first response again, nothing new sent;
same key, other payload -> 409 ``invalid_idempotent_request``; same key while the first request
is still being processed -> 409 ``concurrent_idempotent_requests`` (use
:meth:`ResendEmulator.hold_processing` to keep a request in flight).

What the resend SDK (2.51.0, sync ``requests`` client) raises for each failure
-----------------------------------------------------------------------------
``exc.code`` is the integer HTTP status, ``exc.error_type`` the ``name`` of the body, and
``exc.headers`` the response headers as a plain ``dict``:

* 400 ``validation_error``           -> ``resend.exceptions.ValidationError``
* 400 ``invalid_idempotency_key``    -> ``resend.exceptions.ResendError`` (base class: not mapped)
* 401 ``missing_api_key``            -> ``MissingApiKeyError`` (its message is always replaced by
  "Missing API key in the authorization header."). NB: with ``resend.api_key = None`` the SDK
  sends ``Authorization: Bearer None``, which is a *wrong* key (403), not a missing one.
* 403 ``invalid_api_key``            -> ``InvalidApiKeyError``
* 409 ``invalid_idempotent_request`` / ``concurrent_idempotent_requests`` -> base ``ResendError``
* 422 ``validation_error``           -> ``ValidationError``
* 422 ``missing_required_field``     -> ``MissingRequiredFieldsError``
* 422 ``invalid_attachment``         -> base ``ResendError``
* 429 ``rate_limit_exceeded``        -> ``RateLimitError`` (``exc.headers["retry-after"]``)
* 500 ``application_error``          -> ``ApplicationError``; any other status/name (503 ...) ->
  base ``ResendError`` with that code.
* connection closed without a response (:meth:`ResendEmulator.drop_connection_after_accept`)
  -> base ``ResendError`` with ``code == 500``, ``error_type == "HttpClientError"``,
  ``headers == {}`` and a message like ``"Request failed: ('Connection aborted.',
  RemoteDisconnected('Remote end closed connection without response'))"``. The code is the
  same 500 as a genuine ``application_error``: tell them apart by ``error_type``.

On success the SDK returns a ``ResponseDict`` and *adds* ``"http_headers"`` (the response
headers) to it, for single and batch sends alike; so compare ``resp["id"]``, not the whole dict.
The items of a batch's ``data``/``errors`` lists are plain dicts.

Webhooks
--------
:func:`sign_webhook` produces Svix headers (``svix-id``, ``svix-timestamp``,
``svix-signature``). ``resend.Webhooks.verify`` wants them under the keys ``id``,
``timestamp`` and ``signature`` instead: convert with :func:`sdk_webhook_headers`. ``verify``
checks the timestamp against the real wall clock (5 minutes tolerance), not the emulator's.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import math
import re
import secrets
import socket
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypedDict, cast
from urllib.parse import parse_qs, urlsplit
from urllib.request import Request, urlopen

from local_server import Chaos, Fault, LocalServer

__all__ = [
    "IDEMPOTENCY_TTL_SECONDS",
    "MAX_BATCH_SIZE",
    "MAX_RECIPIENTS",
    "ResendEmulator",
    "new_webhook_secret",
    "sdk_webhook_headers",
    "sign_webhook",
]

IDEMPOTENCY_TTL_SECONDS = 24 * 60 * 60
MAX_BATCH_SIZE = 100
MAX_RECIPIENTS = 50
MAX_IDEMPOTENCY_KEY_LENGTH = 256
MAX_TAG_LENGTH = 256

_EMAILS_PATH = "/emails"
_BATCH_PATH = "/emails/batch"
_RECEIVING_PATH = "/emails/receiving"

_ADDRESS_RE = re.compile(
    r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\.)+[A-Za-z]{2,}"
)
_NAMED_ADDRESS_RE = re.compile(r'(?:"[^"]*"|[^<>"]*?)\s*<(?P<address>[^<>]+)>')
_TAG_RE = re.compile(r"[A-Za-z0-9_-]+")

_ADDRESS_FORMAT_HINT = "The email address needs to follow the `email@example.com` or `Name <email@example.com>` format."
_RATE_LIMIT_MESSAGE = (
    "Too many requests. You can only make {limit} requests per second. "
    "See rate limit response headers for more information."
)
_DEFAULT_FAULT_MESSAGES = {
    500: "An unexpected error occurred.",
    502: "Bad gateway.",
    503: "Service unavailable.",
    504: "Gateway timeout.",
}
_FAULT_NAMES = {500: "application_error", 502: "bad_gateway", 503: "service_unavailable", 504: "gateway_timeout"}


class _ApiError(Exception):
    def __init__(self, status: int, name: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.name = name
        self.message = message


@dataclass
class _Reply:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def error(cls, status: int, name: str, message: str, headers: Mapping[str, str] | None = None) -> _Reply:
        body = {"statusCode": status, "message": message, "name": name}
        return cls(status, body, dict(headers or {}))

    @classmethod
    def from_api_error(cls, err: _ApiError) -> _Reply:
        return cls.error(err.status, err.name, err.message)

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def copy(self) -> _Reply:
        return _Reply(self.status, json.loads(json.dumps(self.body)), dict(self.headers))


@dataclass
class _Fault:
    status: int
    name: str
    message: str
    remaining: int
    path: str | None
    headers: dict[str, str]


@dataclass
class _Drop:
    remaining: int
    path: str | None


@dataclass
class _IdempotencyEntry:
    fingerprint: str
    created_at: float
    reply: _Reply | None = None  # None while the first request is still being processed


# --------------------------------------------------------------------------- validation


def _bare_address(value: str) -> str | None:
    """The plain address of ``addr@x.y`` or ``Name <addr@x.y>``, or None if invalid."""
    text = value.strip()
    named = _NAMED_ADDRESS_RE.fullmatch(text)
    if named is not None:
        text = named.group("address").strip()
    if _ADDRESS_RE.fullmatch(text) is None:
        return None
    local = text.split("@", 1)[0]
    if local.startswith(".") or local.endswith(".") or ".." in local:
        return None
    return text


def _address_list(params: Mapping[str, Any], name: str, *, required: bool) -> list[str]:
    value = params.get(name)
    if value is None or value == "" or value == []:
        if required:
            raise _ApiError(422, "missing_required_field", f"Missing `{name}` field.")
        return []
    items: list[Any] = [value] if isinstance(value, str) else value if isinstance(value, list) else []
    if not items or not all(isinstance(item, str) for item in items):
        raise _ApiError(422, "validation_error", f"Invalid `{name}` field. {_ADDRESS_FORMAT_HINT}")
    addresses = cast(list[str], items)
    if name == "to" and len(addresses) > MAX_RECIPIENTS:
        raise _ApiError(
            422,
            "validation_error",
            f"Invalid `to` field. Too many recipients: {len(addresses)} (maximum {MAX_RECIPIENTS}).",
        )
    for address in addresses:
        if _bare_address(address) is None:
            raise _ApiError(422, "validation_error", f"Invalid `{name}` field: {address!r}. {_ADDRESS_FORMAT_HINT}")
    return list(addresses)


def _optional_str(params: Mapping[str, Any], name: str) -> str | None:
    value = params.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise _ApiError(422, "validation_error", f"Invalid `{name}` field. It must be a string.")
    return value


def _check_tag_part(index: int, part: str, value: Any) -> str:
    if not isinstance(value, str) or _TAG_RE.fullmatch(value) is None or len(value) > MAX_TAG_LENGTH:
        raise _ApiError(
            422,
            "validation_error",
            f"Invalid `tags[{index}].{part}` field. Tags should only contain ASCII letters (a-z, A-Z), "
            f"numbers (0-9), underscores (_), or dashes (-), and be at most {MAX_TAG_LENGTH} characters.",
        )
    return value


def _tags(params: Mapping[str, Any]) -> list[dict[str, str]]:
    value = params.get("tags")
    if value is None:
        return []
    if not isinstance(value, list):
        raise _ApiError(422, "validation_error", "Invalid `tags` field. It must be a list of {name, value}.")
    tags: list[dict[str, str]] = []
    for index, tag in enumerate(value):
        if not isinstance(tag, dict):
            raise _ApiError(422, "validation_error", f"Invalid `tags[{index}]` field. It must be an object.")
        if tag.get("name") in (None, ""):
            raise _ApiError(422, "missing_required_field", f"Missing `tags[{index}].name` field.")
        checked = {"name": _check_tag_part(index, "name", tag["name"])}
        if tag.get("value") is not None:
            checked["value"] = _check_tag_part(index, "value", tag["value"])
        tags.append(checked)
    return tags


def _headers(params: Mapping[str, Any]) -> dict[str, str]:
    value = params.get("headers")
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise _ApiError(422, "validation_error", "Invalid `headers` field. It must map strings to strings.")
    return dict(value)


def _attachments(params: Mapping[str, Any]) -> list[dict[str, Any]]:
    value = params.get("attachments")
    if value is None:
        return []
    if not isinstance(value, list):
        raise _ApiError(422, "validation_error", "Invalid `attachments` field. It must be a list.")
    for item in value:
        if not isinstance(item, dict) or not (item.get("content") or item.get("path")):
            raise _ApiError(422, "invalid_attachment", "Attachment must have either a `content` or `path`.")
    return [dict(item) for item in value]


def _validate_email(params: Any, *, batch: bool) -> dict[str, Any]:
    """Check one email's params; return the fields to record (without id/idempotency/batch)."""
    if not isinstance(params, dict):
        raise _ApiError(422, "validation_error", "The email must be a JSON object.")
    if batch:
        for refused in ("attachments", "scheduled_at"):
            if params.get(refused) is not None:
                raise _ApiError(422, "validation_error", f"The `{refused}` field is not supported for batch emails.")
    sender = params.get("from")
    if sender is None or sender == "":
        raise _ApiError(422, "missing_required_field", "Missing `from` field.")
    if not isinstance(sender, str) or _bare_address(sender) is None:
        raise _ApiError(422, "validation_error", f"Invalid `from` field. {_ADDRESS_FORMAT_HINT}")
    to = _address_list(params, "to", required=True)
    subject = params.get("subject")
    if subject is None or subject == "":
        raise _ApiError(422, "missing_required_field", "Missing `subject` field.")
    if not isinstance(subject, str):
        raise _ApiError(422, "validation_error", "Invalid `subject` field. It must be a string.")
    html = _optional_str(params, "html")
    text = _optional_str(params, "text")
    template = params.get("template")
    if not html and not text and not template:
        raise _ApiError(422, "missing_required_field", "Missing `html` or `text` field.")
    if template is not None and not (isinstance(template, dict) and template.get("id")):
        raise _ApiError(422, "validation_error", "Invalid `template` field. It needs an `id`.")
    scheduled_at = _optional_str(params, "scheduled_at")
    if scheduled_at == "":
        raise _ApiError(422, "validation_error", "Invalid `scheduled_at` field. It must not be empty.")
    return {
        "from": sender,
        "to": to,
        "cc": _address_list(params, "cc", required=False),
        "bcc": _address_list(params, "bcc", required=False),
        "reply_to": _address_list(params, "reply_to", required=False),
        "subject": subject,
        "html": html,
        "text": text,
        "headers": _headers(params),
        "tags": _tags(params),
        "attachments": _attachments(params),
        "scheduled_at": scheduled_at,
        "template": dict(template) if isinstance(template, dict) else None,
    }


# --------------------------------------------------------------------------- HTTP plumbing


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, emulator: ResendEmulator) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.emulator = emulator

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], OSError):
            return  # the client went away (e.g. a test killed it) while its connection was open
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "resend-emulator"
    sys_version = ""

    def version_string(self) -> str:
        return self.server_version

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet."""

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()

    def do_PATCH(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def _serve(self) -> None:
        emulator = cast(_Server, self.server).emulator
        headers = {name.lower(): value for name, value in self.headers.items()}
        path = urlsplit(self.path).path
        try:
            length = int(headers.get("content-length") or 0)
        except ValueError:
            length = -1
        if length < 0:
            index = emulator._request_received(self.command, path)
            self.close_connection = True
            self._write(_Reply.error(400, "validation_error", "Invalid Content-Length header."))
            emulator._request_answered(index, self.command, path)
            return
        raw_body = self.rfile.read(length) if length else b""
        index = emulator._request_received(self.command, path)
        reply, drop = emulator._dispatch(self.command, self.path, headers, raw_body)
        if drop:
            # Fully processed, but no byte of an HTTP response: the client sees the socket close.
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
        else:
            self._write(reply)
        emulator._request_answered(index, self.command, path)

    def _write(self, reply: _Reply) -> None:
        payload = json.dumps(reply.body).encode("utf-8")
        try:
            self.send_response(reply.status)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.send_header("content-type", "application/json; charset=utf-8")
            self.send_header("content-length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
            self.wfile.flush()
        except OSError:  # the client went away (e.g. it was killed while its request was in flight)
            self.close_connection = True


# --------------------------------------------------------------------------- the emulator


class ResendEmulator(LocalServer):
    """An in-process fake of ``api.resend.com`` (``POST /emails`` and ``POST /emails/batch``).

    Args:
        api_key: the only key accepted in ``Authorization: Bearer <key>``.
        rate_limit: token-bucket refill rate in requests per second; None disables limiting
            (and the ``ratelimit-*`` headers). Settable later through :attr:`rate_limit`.
        burst: bucket capacity; defaults to ``ceil(rate_limit)`` (at least 1).
        retry_after: value of the ``retry-after`` header of a 429 (0 allowed). Settable.

    Time: :meth:`now` is ``time.time()`` plus an offset moved by :meth:`advance`; it drives
    idempotency expiry and the token bucket's refill. Assigning a callable to ``emu.now``
    replaces the clock altogether.

    ``sent`` and ``requests`` return snapshots (new lists) taken under the emulator's lock;
    :meth:`reset` clears everything.
    """

    def __init__(
        self,
        api_key: str = "re_test_key",
        rate_limit: float | None = 5.0,
        burst: int | None = None,
        retry_after: int = 1,
    ) -> None:
        self.api_key = api_key
        self.retry_after = retry_after
        self._lock = threading.RLock()
        self._offset = 0.0
        self._rate_limit: float | None = None
        self._burst: int | None = burst
        self._tokens = 0.0
        self._refilled_at = 0.0
        self._sent: list[dict[str, Any]] = []
        self._requests: list[dict[str, Any]] = []
        self._idempotency: dict[str, _IdempotencyEntry] = {}
        self._faults: list[_Fault] = []
        self._drops: list[_Drop] = []
        self._hold: threading.Event | None = None
        self._in_flight = 0
        self._inbound: list[dict[str, Any]] = []  # received (inbound) emails, oldest first: see add_received
        self._window: tuple[int, float] | None = None  # (limit, seconds): see limit_window
        self._window_index = 0
        self._window_used = 0
        self._window_log: list[tuple[float, bool]] = []
        super().__init__()
        self.rate_limit = rate_limit

    # ----------------------------------------------------------------- lifecycle

    thread_name = "resend-emulator"

    def _new_server(self) -> _Server:
        return _Server(self)

    def _on_stop(self, server: ThreadingHTTPServer) -> None:
        hold = self._hold
        if hold is not None:
            hold.set()

    # ----------------------------------------------------------------- clock

    def now(self) -> float:
        """The emulator's clock: wall-clock seconds plus the offset set by :meth:`advance`."""
        return time.time() + self._offset

    def advance(self, seconds: float) -> None:
        """Move the emulator's clock forward (idempotency expiry, token-bucket refill)."""
        with self._lock:
            self._offset += seconds

    # ----------------------------------------------------------------- rate limit

    @property
    def rate_limit(self) -> float | None:
        return self._rate_limit

    @rate_limit.setter
    def rate_limit(self, value: float | None) -> None:
        if value is not None and value <= 0:
            raise ValueError("rate_limit must be positive or None")
        with self._lock:
            self._rate_limit = value
            self._tokens = float(self._capacity())
            self._refilled_at = self.now()

    @property
    def burst(self) -> int | None:
        return self._burst

    @burst.setter
    def burst(self, value: int | None) -> None:
        if value is not None and value < 1:
            raise ValueError("burst must be >= 1 or None")
        with self._lock:
            self._burst = value
            self._tokens = float(self._capacity())

    def _capacity(self) -> int:
        if self._burst is not None:
            return self._burst
        return max(1, math.ceil(self._rate_limit or 1))

    def _refill(self) -> None:
        rate = self._rate_limit
        if rate is None:
            return
        now = self.now()
        elapsed = max(0.0, now - self._refilled_at)
        self._tokens = min(float(self._capacity()), self._tokens + elapsed * rate)
        self._refilled_at = now

    def _take_token(self) -> bool:
        if self._window is not None:
            return self._take_window_slot()
        if self._rate_limit is None:
            return True
        self._refill()
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False

    def _ratelimit_headers(self) -> dict[str, str]:
        if self._window is not None:
            return self._window_headers()
        rate = self._rate_limit
        if rate is None:
            return {}
        self._refill()
        capacity = self._capacity()
        return {
            "ratelimit-limit": str(capacity),
            "ratelimit-remaining": str(max(0, math.floor(self._tokens))),
            "ratelimit-reset": str(max(0, math.ceil((capacity - self._tokens) / rate))),
        }

    # ----------------------------------------------------------------- fixed window (Resend's documented limit)

    def limit_window(self, limit: int | None, window: float = 1.0) -> None:
        """Count requests in fixed windows of ``window`` seconds of :meth:`now` (aligned to its epoch), at most
        ``limit`` in each, as Resend documents its limit (N requests per second per team); ``None`` goes back to
        the token bucket of :attr:`rate_limit`. A refused request does not count. Every reply then carries
        ``ratelimit-limit`` (``limit``), ``ratelimit-remaining`` (left in this window) and ``ratelimit-reset``
        (seconds until the next window), and a 429 ``retry-after`` the same seconds: whole seconds rounded up
        for a window of whole seconds, as Resend sends them; with milliseconds for a shorter window (tests)."""
        if limit is not None and (limit < 1 or not window > 0):
            raise ValueError("limit must be >= 1 and window > 0")
        with self._lock:
            self._window = None if limit is None else (limit, window)
            self._window_index = -1
            self._window_used = 0
            self._window_log.clear()

    @property
    def window_log(self) -> list[tuple[float, bool]]:
        """In window mode, every request the limit judged: (emulator time, admitted), oldest first."""
        with self._lock:
            return list(self._window_log)

    def most_in_one_window(self) -> int:
        """The most requests admitted in one window (never above the limit, unless the limiter is broken)."""
        if self._window is None:
            raise ValueError("not in window mode: call limit_window first")
        length = self._window[1]
        counts = Counter(math.floor(at / length) for at, admitted in self.window_log if admitted)
        return max(counts.values(), default=0)

    def _current_window(self) -> tuple[int, float]:
        """This window's (limit, seconds until it ends), moving to a new window when one began."""
        assert self._window is not None
        limit, length = self._window
        now = self.now()
        index = math.floor(now / length)
        if index != self._window_index:
            self._window_index, self._window_used = index, 0
        return limit, (index + 1) * length - now

    def _take_window_slot(self) -> bool:
        limit, _ = self._current_window()
        admitted = self._window_used < limit
        if admitted:
            self._window_used += 1
        self._window_log.append((self.now(), admitted))
        return admitted

    def _window_seconds(self, seconds: float) -> str:
        assert self._window is not None
        if float(self._window[1]).is_integer():
            return str(max(0, math.ceil(seconds)))
        return f"{max(0.0, seconds):.3f}"

    def _window_headers(self) -> dict[str, str]:
        limit, left = self._current_window()
        return {
            "ratelimit-limit": str(limit),
            "ratelimit-remaining": str(max(0, limit - self._window_used)),
            "ratelimit-reset": self._window_seconds(left),
        }

    def _rate_limited(self) -> _Reply:
        """The 429 of the limit itself: retry-after is the end of the window in window mode."""
        with self._lock:
            if self._window is not None:
                limit, left = self._current_window()
                message = _RATE_LIMIT_MESSAGE.format(limit=limit)
                return _Reply.error(429, "rate_limit_exceeded", message, {"retry-after": self._window_seconds(left)})
        message = _RATE_LIMIT_MESSAGE.format(limit=f"{self._rate_limit:g}")
        return _Reply.error(429, "rate_limit_exceeded", message, {"retry-after": str(self.retry_after)})

    # ----------------------------------------------------------------- faults

    def inject_fault(
        self,
        status: int,
        name: str,
        *,
        times: int = 1,
        path: str | None = None,
        message: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """Answer the next ``times`` requests (to ``path`` if given, e.g. ``"/emails/batch"``)
        with ``{"statusCode": status, "message": ..., "name": name}``, before any other check.
        Nothing is sent, no token is spent, no idempotency key is touched."""
        if times < 1:
            raise ValueError("times must be >= 1")
        text = message if message is not None else _DEFAULT_FAULT_MESSAGES.get(status, f"Injected {name}.")
        with self._lock:
            self._faults.append(
                _Fault(status, name, text, times, path, {k.lower(): v for k, v in (headers or {}).items()})
            )

    def drop_connection_after_accept(self, times: int = 1, path: str | None = None) -> None:
        """Process the next ``times`` requests (to ``path`` if given) that get a 2xx answer
        completely (messages recorded in :attr:`sent`, idempotency key stored with its response,
        replays included) and then close the socket without writing any HTTP response.

        The SDK then raises base ``resend.exceptions.ResendError`` with ``code == 500``,
        ``error_type == "HttpClientError"`` and ``headers == {}``. Requests that end in an
        error status are answered normally and do not use up a drop."""
        if times < 1:
            raise ValueError("times must be >= 1")
        with self._lock:
            self._drops.append(_Drop(times, path))

    def hold_processing(self) -> threading.Event:
        """Make requests that pass every check wait, just before validation and sending
        (their idempotency key reserved), until the returned event is set. See
        :attr:`in_flight`. :meth:`stop` releases them."""
        event = threading.Event()
        with self._lock:
            self._hold = event
        return event

    @property
    def in_flight(self) -> int:
        """Requests currently between idempotency reservation and their reply."""
        with self._lock:
            return self._in_flight

    def chaos(
        self,
        seed: int | None,
        *,
        rate_429: float = 0.0,
        rate_5xx: float = 0.0,
        after_processing_share: float = 0.0,
        rate_drop: float = 0.0,
        statuses: Sequence[int] = (500, 503),
    ) -> Chaos | None:
        """Random faults from ``random.Random(seed)`` (see the module docstring); ``None`` turns
        them off. Returns the :class:`local_server.Chaos` in use. The ``retry-after`` of a 429 is
        :attr:`retry_after` at the time of the answer."""
        chaos = None
        if seed is not None:
            chaos = Chaos(
                seed,
                rate_429=rate_429,
                rate_5xx=rate_5xx,
                after_processing_share=after_processing_share,
                rate_drop=rate_drop,
                statuses=statuses,
            )
        self._chaos = chaos
        return chaos

    def _fault_reply(self, fault: Fault) -> _Reply:
        if fault.status == 429:
            message = _RATE_LIMIT_MESSAGE.format(limit=f"{self._rate_limit or 5:g}")
            return _Reply.error(429, "rate_limit_exceeded", message, {"retry-after": str(self.retry_after)})
        name = _FAULT_NAMES.get(fault.status, "application_error")
        return _Reply.error(fault.status, name, _DEFAULT_FAULT_MESSAGES.get(fault.status, "Server error."))

    def _after_processing(self, reply: _Reply, drop: bool, drawn: tuple[Chaos, Fault] | None) -> tuple[_Reply, bool]:
        """Apply a drawn after-processing fault or drop to a successful reply (else waive it)."""
        if drawn is None or drop or not reply.ok:
            return reply, drop
        chaos, fault = drawn
        if fault.kind == "drop":
            chaos.record(fault)
            return reply, True
        if fault.after_processing:
            chaos.record(fault)
            return self._fault_reply(fault), False
        return reply, drop

    def _take_fault(self, path: str) -> _Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.path is None or fault.path == path:
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        self._faults.remove(fault)
                    return fault
        return None

    def _take_drop(self, path: str) -> bool:
        with self._lock:
            for drop in self._drops:
                if drop.path is None or drop.path == path:
                    drop.remaining -= 1
                    if drop.remaining <= 0:
                        self._drops.remove(drop)
                    return True
        return False

    # ----------------------------------------------------------------- records

    @property
    def sent(self) -> list[dict[str, Any]]:
        """Accepted messages, oldest first: ``id, from, to (list), cc, bcc, reply_to (lists),
        subject, html, text, headers, tags, attachments, scheduled_at, template,
        idempotency_key, batch``."""
        with self._lock:
            return [dict(message) for message in self._sent]

    @property
    def requests(self) -> list[dict[str, Any]]:
        """Every request received, oldest first: ``method, path, headers`` (lower-case
        names), ``body`` (parsed JSON, else text), ``status``, ``dropped``."""
        with self._lock:
            return [dict(request) for request in self._requests]

    def delivered_by_recipient(self) -> Counter[str]:
        """How many accepted messages each address received (to/cc/bcc, bare and lower-cased)."""
        counts: Counter[str] = Counter()
        for message in self.sent:
            for recipient in [*message["to"], *message["cc"], *message["bcc"]]:
                counts[(_bare_address(recipient) or recipient).lower()] += 1
        return counts

    def deliveries(self, *tags: str) -> Counter[tuple[str, ...]]:
        """Accepted messages counted by ``(recipient, value of each named tag...)``, e.g.
        ``emu.deliveries("sequence", "step")[("ada@example.com", "lead-nurture", "1")]``. A missing
        tag counts as ``""``; one entry per ``to`` address (bare, lower-cased)."""
        counts: Counter[tuple[str, ...]] = Counter()
        for message in self.sent:
            values = {tag["name"]: tag.get("value", "") for tag in message["tags"]}
            for recipient in message["to"]:
                address = (_bare_address(recipient) or recipient).lower()
                counts[(address, *(values.get(name, "") for name in tags))] += 1
        return counts

    def sent_to(self, address: str) -> list[dict[str, Any]]:
        """Accepted messages with ``address`` among to/cc/bcc (bare addresses, case-insensitive;
        ``Name <addr>`` forms on either side are reduced to the address)."""
        wanted = (_bare_address(address) or address).lower()

        def matches(message: dict[str, Any]) -> bool:
            recipients = [*message["to"], *message["cc"], *message["bcc"]]
            return any((_bare_address(r) or r).lower() == wanted for r in recipients)

        return [message for message in self.sent if matches(message)]

    def reset(self) -> None:
        """Forget sent messages, requests, idempotency keys, faults and drops; refill the bucket."""
        with self._lock:
            self._sent.clear()
            self._requests.clear()
            self._idempotency.clear()
            self._faults.clear()
            self._drops.clear()
            self._inbound.clear()
            self._tokens = float(self._capacity())
            self._refilled_at = self.now()
            self._window_index, self._window_used = -1, 0
            self._window_log.clear()

    # ----------------------------------------------------------------- request handling

    def _dispatch(self, method: str, raw_path: str, headers: dict[str, str], raw_body: bytes) -> tuple[_Reply, bool]:
        path = urlsplit(raw_path).path.rstrip("/") or "/"
        body: Any
        try:
            body = json.loads(raw_body) if raw_body else None
            parsed = True
        except (json.JSONDecodeError, UnicodeDecodeError):
            body = raw_body.decode("utf-8", "replace")
            parsed = False
        reply, drop = self._process(method.upper(), path, headers, raw_body, body, parsed, urlsplit(raw_path).query)
        with self._lock:
            reply.headers = {**reply.headers, **self._ratelimit_headers()}
            self._requests.append(
                {
                    "method": method.upper(),
                    "path": path,
                    "headers": dict(headers),
                    "body": body,
                    "status": reply.status,
                    "dropped": drop,
                }
            )
        return reply, drop

    def _process(
        self,
        method: str,
        path: str,
        headers: dict[str, str],
        raw_body: bytes,
        body: Any,
        parsed: bool,
        query: str = "",
    ) -> tuple[_Reply, bool]:
        fault = self._take_fault(path)
        if fault is not None:
            return _Reply.error(fault.status, fault.name, fault.message, fault.headers), False
        if not headers.get("user-agent"):
            return _Reply.error(400, "validation_error", "Missing `User-Agent` header."), False
        authorization = headers.get("authorization", "")
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return _Reply.error(401, "missing_api_key", "Missing API key in the authorization header."), False
        if not hmac.compare_digest(token.encode(), self.api_key.encode()):
            return _Reply.error(403, "invalid_api_key", "API key is invalid."), False
        with self._lock:
            allowed = self._take_token()
        if not allowed:
            return self._rate_limited(), False
        if path == _RECEIVING_PATH or path.startswith(_RECEIVING_PATH + "/"):
            return self._serve_received(method, path, query), False
        if path not in (_EMAILS_PATH, _BATCH_PATH):
            return _Reply.error(404, "not_found", "The requested endpoint does not exist."), False
        if method != "POST":
            message = "Method is not allowed for the requested path."
            return _Reply.error(405, "method_not_allowed", message), False

        key = headers.get("idempotency-key")
        if key is not None and not 1 <= len(key) <= MAX_IDEMPOTENCY_KEY_LENGTH:
            return (
                _Reply.error(
                    400,
                    "invalid_idempotency_key",
                    f"The key must be between 1-{MAX_IDEMPOTENCY_KEY_LENGTH} chars.",
                ),
                False,
            )
        mode = headers.get("x-batch-validation", "strict").strip().lower() if path == _BATCH_PATH else ""
        drawn = self._draw_fault()
        if drawn is not None and drawn[1].kind != "drop" and not drawn[1].after_processing:
            drawn[0].record(drawn[1])
            return self._fault_reply(drawn[1]), False
        if key is not None:
            canonical = json.dumps(body, sort_keys=True, separators=(",", ":")).encode() if parsed else raw_body
            fingerprint = hashlib.sha256(f"{method} {path} {mode}\n".encode() + canonical).hexdigest()
            with self._lock:
                now = self.now()
                entry = self._idempotency.get(key)
                expired = entry is not None and now - entry.created_at >= IDEMPOTENCY_TTL_SECONDS
                if entry is not None and entry.reply is not None and expired:
                    del self._idempotency[key]
                    entry = None
                if entry is not None:
                    if entry.reply is None:
                        return (
                            _Reply.error(
                                409,
                                "concurrent_idempotent_requests",
                                "Same idempotency key used while original request is still in progress.",
                            ),
                            False,
                        )
                    if entry.fingerprint != fingerprint:
                        return (
                            _Reply.error(
                                409,
                                "invalid_idempotent_request",
                                "Same idempotency key used with a different request payload.",
                            ),
                            False,
                        )
                    return self._after_processing(entry.reply.copy(), self._take_drop(path), drawn)
                self._idempotency[key] = _IdempotencyEntry(fingerprint, now)

        with self._lock:
            self._in_flight += 1
            hold = self._hold
        reply = _Reply.error(500, "application_error", "The emulator failed to process the request.")
        try:
            if hold is not None:
                hold.wait(timeout=60)
            if not parsed:
                reply = _Reply.error(400, "validation_error", "The request body is not valid JSON.")
            elif path == _EMAILS_PATH:
                reply = self._send_single(body, key)
            else:
                reply = self._send_batch(body, key, mode)
        finally:
            with self._lock:
                self._in_flight -= 1
                if key is not None:
                    if reply.ok:
                        self._idempotency[key].reply = reply.copy()
                    else:
                        self._idempotency.pop(key, None)
        return self._after_processing(reply, reply.ok and self._take_drop(path), drawn)

    def _record(self, fields: dict[str, Any], key: str | None, *, batch: bool) -> str:
        message_id = str(uuid.uuid4())
        with self._lock:
            self._sent.append({"id": message_id, **fields, "idempotency_key": key, "batch": batch})
        return message_id

    def _send_single(self, body: Any, key: str | None) -> _Reply:
        try:
            fields = _validate_email(body, batch=False)
        except _ApiError as err:
            return _Reply.from_api_error(err)
        return _Reply(200, {"id": self._record(fields, key, batch=False)})

    def _send_batch(self, body: Any, key: str | None, mode: str) -> _Reply:
        if mode not in ("strict", "permissive"):
            return _Reply.error(
                422, "validation_error", "Invalid `x-batch-validation` header: use `strict` or `permissive`."
            )
        if not isinstance(body, list):
            return _Reply.error(422, "validation_error", "The batch body must be a JSON array of emails.")
        if not 1 <= len(body) <= MAX_BATCH_SIZE:
            return _Reply.error(
                422,
                "validation_error",
                f"The batch must contain between 1 and {MAX_BATCH_SIZE} emails, got {len(body)}.",
            )
        valid: list[dict[str, Any]] = []
        errors: list[dict[str, Any]] = []
        for index, item in enumerate(body):
            try:
                valid.append(_validate_email(item, batch=True))
            except _ApiError as err:
                if mode == "strict":
                    return _Reply.error(err.status, err.name, f"emails[{index}]: {err.message}")
                errors.append({"index": index, "message": err.message})
        with self._lock:  # one batch is recorded contiguously
            data = [{"id": self._record(fields, key, batch=True)} for fields in valid]
        if mode == "permissive":
            return _Reply(200, {"data": data, "errors": errors})
        return _Reply(200, {"data": data})

    # ----------------------------------------------------------------- received (inbound) emails

    def add_received(
        self,
        sender: str,
        to: Sequence[str],
        subject: str,
        *,
        headers: Mapping[str, str] | None = None,
        text: str | None = "",
        html: str | None = None,
        created_at: datetime | None = None,
    ) -> dict[str, Any]:
        """Receive an email as Resend would (`sender` may be "Name <address>"): it is then served by
        ``GET /emails/receiving/{id}`` and listed by ``GET /emails/receiving``. Returns the stored email as
        the retrieve endpoint answers it. `headers` are merged over the usual ones (from, to, subject,
        message-id, mime-version) with lower-case names, as Resend's ``headers`` object has them."""
        when = (created_at or datetime.fromtimestamp(self.now(), UTC)).astimezone(UTC)
        message_id = f"<{uuid.uuid4().hex}@mail.example.net>"
        heads = {
            "from": sender,
            "to": ", ".join(to),
            "subject": subject,
            "message-id": message_id,
            "mime-version": "1.0",
            **{name.lower(): value for name, value in (headers or {}).items()},
        }
        email: dict[str, Any] = {
            "object": "email",
            "id": str(uuid.uuid4()),
            "to": list(to),
            "from": sender,
            "created_at": when.isoformat(timespec="microseconds"),  # "2026-12-07T10:00:00.870000+00:00"
            "subject": subject,
            "html": html,
            "text": text,
            "html_format": "data_uri",
            "bcc": [],
            "cc": [],
            "reply_to": [],
            "received_for": [],
            "message_id": message_id,
            "headers": heads,
            "raw": {"download_url": f"{self.base_url}/raw/{uuid.uuid4().hex}", "expires_at": when.isoformat()},
            "attachments": [],
        }
        with self._lock:
            self._inbound.append(email)
        copy: dict[str, Any] = json.loads(json.dumps(email))
        return copy

    def received_event(self, email: Mapping[str, Any]) -> str:
        """The body of the `email.received` webhook for a received email: metadata only (no body, no headers),
        as Resend's docs show it."""
        created = datetime.fromisoformat(str(email["created_at"]))
        data = {key: email[key] for key in ("from", "to", "bcc", "cc", "received_for", "message_id", "subject")}
        body = {
            "type": "email.received",
            "created_at": (created.astimezone(UTC)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
            "data": {"email_id": email["id"], "created_at": email["created_at"], **data, "attachments": []},
        }
        return json.dumps(body)

    def post_received(self, url: str, secret: str, email: Mapping[str, Any], *, msg_id: str | None = None) -> Any:
        """POST the signed `email.received` webhook for `email` to `url`, as Resend does; the JSON answer (or, for
        an error status, ``{"status": N, "body": ...}``)."""
        payload = self.received_event(email)
        heads = sign_webhook(secret, payload, msg_id=msg_id or f"msg_{uuid.uuid4().hex}")
        request = Request(url, payload.encode(), {**heads, "content-type": "application/json"}, method="POST")
        try:
            with urlopen(request, timeout=10) as answer:
                return json.loads(answer.read())
        except OSError as exc:
            error_body = exc.read() if hasattr(exc, "read") else b""
            return {"status": getattr(exc, "code", None), "body": error_body.decode("utf-8", "replace")}

    def _serve_received(self, method: str, path: str, query: str) -> _Reply:
        if method != "GET":
            return _Reply.error(405, "method_not_allowed", "Method is not allowed for the requested path.")
        with self._lock:
            received = [json.loads(json.dumps(e)) for e in self._inbound]
        if path != _RECEIVING_PATH:
            email_id = path.removeprefix(_RECEIVING_PATH + "/")
            found = [e for e in received if e["id"] == email_id]
            if "/" in email_id or not found:
                return _Reply.error(404, "not_found", "Email not found")
            return _Reply(200, found[0])
        params = {k: v[-1] for k, v in parse_qs(query).items()}
        newest = list(reversed(received))
        if "limit" in params and (not params["limit"].isdigit() or not 1 <= int(params["limit"]) <= 100):
            return _Reply.error(422, "validation_error", "The `limit` parameter must be between 1 and 100.")
        ids = [e["id"] for e in newest]
        for cursor in ("after", "before"):
            if cursor in params and params[cursor] not in ids:
                return _Reply.error(422, "validation_error", f"The `{cursor}` cursor is not a received email's id.")
        if "after" in params:
            newest = newest[ids.index(params["after"]) + 1 :]
        elif "before" in params:
            newest = newest[: ids.index(params["before"])]
        limit = int(params.get("limit") or len(newest) or 1)
        page = newest[:limit]
        listed = [
            {
                **{k: v for k, v in e.items() if k not in ("html", "text", "headers", "raw", "html_format")},
                "created_at": datetime.fromisoformat(e["created_at"]).strftime("%Y-%m-%d %H:%M:%S.%f+00"),
            }
            for e in page
        ]
        return _Reply(200, {"object": "list", "has_more": len(newest) > limit, "data": listed})


# --------------------------------------------------------------------------- webhooks


def new_webhook_secret() -> str:
    """A Svix-style signing secret: ``"whsec_"`` + base64 of 24 random bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode("ascii")


def sign_webhook(
    secret: str, payload: str, *, msg_id: str = "msg_test", timestamp: int | None = None
) -> dict[str, str]:
    """Svix headers for ``payload`` as Resend would send them with a webhook.

    The signature is ``base64(HMAC-SHA256(base64decode(secret without "whsec_"),
    f"{msg_id}.{timestamp}.{payload}"))``. ``timestamp`` defaults to the current wall-clock
    time (``resend.Webhooks.verify`` allows 5 minutes of skew against ``time.time()``).
    Returns ``{"svix-id", "svix-timestamp", "svix-signature": "v1,<sig>"}``; pass it through
    :func:`sdk_webhook_headers` for ``resend.Webhooks.verify``.
    """
    ts = int(time.time()) if timestamp is None else int(timestamp)
    key = base64.b64decode(secret.removeprefix("whsec_"))
    digest = hmac.new(key, f"{msg_id}.{ts}.{payload}".encode(), hashlib.sha256).digest()
    signature = base64.b64encode(digest).decode("ascii")
    return {"svix-id": msg_id, "svix-timestamp": str(ts), "svix-signature": f"v1,{signature}"}


class SdkWebhookHeaders(TypedDict):
    """The shape of ``resend.WebhookHeaders`` (this module does not import the SDK)."""

    id: str
    timestamp: str
    signature: str


def sdk_webhook_headers(svix_headers: Mapping[str, str]) -> SdkWebhookHeaders:
    """``{"svix-id", "svix-timestamp", "svix-signature"}`` (any case) -> the
    ``{"id", "timestamp", "signature"}`` dict that ``resend.Webhooks.verify`` expects."""
    lowered = {name.lower(): value for name, value in svix_headers.items()}
    return {
        "id": lowered.get("svix-id", ""),
        "timestamp": lowered.get("svix-timestamp", ""),
        "signature": lowered.get("svix-signature", ""),
    }
