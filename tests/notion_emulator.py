"""A local emulator of the Notion REST API (version 2025-09-03) for tests.

The real ``notion_client.Client`` talks to it over HTTP on 127.0.0.1::

    with NotionEmulator() as emu:
        parent = emu.add_page()
        client = Client(auth=emu.token, base_url=emu.base_url)
        db = client.databases.create(
            parent={"type": "page_id", "page_id": parent},
            title=[{"text": {"content": "Contacts"}}],
            initial_data_source={"properties": {"Name": {"title": {}}}},
        )

Covered: databases (which hold data sources), data sources (retrieve, update the schema, query with
filters / sorts / cursor pagination), pages (create, retrieve, update, trash), property-value
validation with Notion's error envelope, bearer auth, ``Notion-Version``, a token-bucket rate limiter
answering 429 + ``Retry-After``, and fault / latency injection for tests.

Order of checks for each request: injected fault (:meth:`NotionEmulator.inject_fault`), bearer token
(401 ``unauthorized``), ``Notion-Version`` (400), rate limit (429 ``rate_limited``), random fault
(:meth:`NotionEmulator.chaos`), then body size, JSON, route and the request itself.

Random faults: ``emu.chaos(seed=7, rate_429=0.3, rate_5xx=0.1, after_processing_share=0.5)`` draws one
fault (or none) per request that passed the token, version and rate-limit checks, so a request refused
anyway is answered as without chaos:

* 429 ``rate_limited`` with ``Retry-After: <emu.retry_after>``, before processing (Notion refuses
  before doing anything);
* a 5xx picked from ``statuses``: 500 ``internal_server_error``, 502 (a proxy's plain-text page, not
  JSON), 503 ``service_unavailable``, 504 ``gateway_timeout``, 529 ``service_overload`` (with
  ``Retry-After``).  ``after_processing_share`` of them are answered after the request was applied
  (the write happens), like ``inject_fault(..., after_processing=True)``; such a fault is waived when
  the request itself failed (the client sees that error).

``emu.chaos(None)`` turns it off; :attr:`NotionEmulator.chaos_applied` counts the faults answered by
label (``"429"``, ``"529"``, ``"500 after"``...).  ``emu.on_request = fn(event, index, method, path)`` is
called with ``"received"`` once the body is read and before anything is checked, and with ``"answered"``
once the reply was written and flushed (see ``local_server``).  :meth:`NotionEmulator.set_rate_limit`
changes the limiter at run time.

Deliberate Notion behaviours worth knowing:

* ``created_time`` / ``last_edited_time`` are rounded down to the minute, as Notion does.
* Text limits are counted in UTF-16 code units (JavaScript ``length``): an emoji counts as 2.
* Text filters: ``equals`` / ``does_not_equal`` are exact; ``contains`` / ``starts_with`` /
  ``ends_with`` / ``does_not_contain`` ignore case.
* An empty value never matches an ordering comparison (``before``, ``greater_than``...), and does
  match ``does_not_equal`` / ``does_not_contain``.  Empty values sort last in either direction.
* Select and multi-select option names are auto-created on write; status options are not (Notion
  refuses to create status options through the API).
* With no ``sorts`` a query returns rows in creation order.

Standard library only.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import itertools
import json
import math
import re
import secrets
import socket
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, cast
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import notion_emulator_relations
import notion_emulator_views
from local_server import Chaos, Fault, LocalServer

JSONDict = dict[str, Any]

NOTION_VERSION = "2025-09-03"
MAX_BODY_BYTES = 500_000
MAX_TEXT_CONTENT = 2000
MAX_RICH_TEXT_ITEMS = 100
MAX_EMAIL_LENGTH = 200
MAX_URL_LENGTH = 2000
MAX_PHONE_LENGTH = 200
MAX_OPTION_NAME_LENGTH = 100
MAX_PAGE_SIZE = 100
MAX_FILTER_DEPTH = 2
BOT_USER_ID = "00000000-0000-4000-8000-0000000000b0"

OPTION_COLORS = ("default", "gray", "brown", "orange", "yellow", "green", "blue", "purple", "pink", "red")
SUPPORTED_PROPERTY_TYPES = frozenset(
    {
        "title",
        "rich_text",
        "number",
        "select",
        "multi_select",
        "status",
        "date",
        "checkbox",
        "email",
        "url",
        "phone_number",
        "relation",  # relation and rollup: notion_emulator_relations.py
        "rollup",
    }
)

_HARD_BODY_CAP = 16 * 1024 * 1024  # beyond this the body is not even read; the connection is closed
_TEXT_COLORS = frozenset(OPTION_COLORS) | {f"{c}_background" for c in OPTION_COLORS if c != "default"}
_TEXT_TYPES = frozenset({"title", "rich_text", "email", "url", "phone_number"})
_SCHEMA_META_KEYS = frozenset({"name", "id", "type", "description"})
_TEXT_LIMITS = {"email": MAX_EMAIL_LENGTH, "url": MAX_URL_LENGTH, "phone_number": MAX_PHONE_LENGTH}
_ANNOTATION_FLAGS = ("bold", "italic", "strikethrough", "underline", "code")
_REASONS = {529: "Site Overloaded"}
_CHAOS_CODES = {
    500: "internal_server_error",
    502: "bad_gateway",
    503: "service_unavailable",
    504: "gateway_timeout",
    529: "service_overload",
}
CHAOS_STATUSES = tuple(_CHAOS_CODES)
_HEX32 = re.compile(r"[0-9a-fA-F]{32}")
_DATE_ONLY = re.compile(r"\d{4}-\d{2}-\d{2}")
_MISSING: Any = object()

_Pred = Callable[["_Page"], bool]


# --------------------------------------------------------------------------------------------- errors


class NotionAPIError(Exception):
    """An error the emulator answers in Notion's error envelope."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def _invalid(message: str) -> NotionAPIError:
    return NotionAPIError(400, "validation_error", message)


def _show(value: Any) -> str:
    if value is _MISSING:
        return "undefined"
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _failed(where: str, expectation: str, value: Any) -> NotionAPIError:
    return _invalid(f"body failed validation: {where} {expectation}, instead was `{_show(value)}`.")


def _too_big(where: str, limit: int, actual: int) -> NotionAPIError:
    return _invalid(f"body failed validation: {where} should be ≤ `{limit}`, instead was `{actual}`.")


def _too_long(where: str, limit: int, actual: int) -> NotionAPIError:
    return _too_big(f"{where}.length", limit, actual)


def _not_found(kind: str, object_id: str) -> NotionAPIError:
    return NotionAPIError(
        404,
        "object_not_found",
        f"Could not find {kind} with ID: {object_id}. "
        "Make sure the relevant pages and databases are shared with your integration.",
    )


# ----------------------------------------------------------------------------------- small helpers


def normalize_id(raw: object) -> str | None:
    """Canonical dashed lowercase UUID for an id given with or without dashes; None if not an id."""
    if not isinstance(raw, str):
        return None
    compact = raw.replace("-", "")
    if not _HEX32.fullmatch(compact):
        return None
    return str(uuid.UUID(compact))


def _new_id() -> str:
    return str(uuid.uuid4())


def _notion_url(object_id: str) -> str:
    return f"https://www.notion.so/{object_id.replace('-', '')}"


def _now() -> datetime:
    """Notion rounds created_time / last_edited_time to the minute."""
    return datetime.now(UTC).replace(second=0, microsecond=0)


def _fmt_timestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _js_length(text: str) -> int:
    """String length as JavaScript (and Notion's validator) counts it: UTF-16 code units."""
    return len(text.encode("utf-16-le")) // 2


def _user() -> JSONDict:
    return {"object": "user", "id": BOT_USER_ID}


def _plain_text(items: list[JSONDict]) -> str:
    return "".join(str(item.get("plain_text", "")) for item in items)


def _text_item(content: str, link: str | None = None) -> JSONDict:
    return {
        "type": "text",
        "text": {"content": content, "link": {"url": link} if link is not None else None},
        "annotations": {**dict.fromkeys(_ANNOTATION_FLAGS, False), "color": "default"},
        "plain_text": content,
        "href": link,
    }


@dataclass(frozen=True)
class _When:
    instant: datetime  # timezone-aware, millisecond precision
    date_only: bool
    naive: bool  # the text carried no UTC offset


def _parse_iso(text: str, time_zone: str | None = None) -> _When | None:
    """ISO 8601 date or date-time.  Without an offset: ``time_zone`` if given, else UTC.
    A date alone is that day at 00:00 UTC."""
    if _DATE_ONLY.fullmatch(text):
        try:
            day = date.fromisoformat(text)
        except ValueError:
            return None
        return _When(datetime(day.year, day.month, day.day, tzinfo=UTC), True, True)
    if "T" not in text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    naive = moment.tzinfo is None
    if naive:
        moment = moment.replace(tzinfo=ZoneInfo(time_zone) if time_zone else UTC)
    return _When(moment.replace(microsecond=moment.microsecond - moment.microsecond % 1000), False, naive)


def _fmt_when(when: _When, time_zone: str | None) -> str:
    if when.date_only:
        return when.instant.date().isoformat()
    if when.naive and time_zone:
        return when.instant.replace(tzinfo=None).isoformat(timespec="milliseconds")
    return when.instant.isoformat(timespec="milliseconds")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _decode_json(raw: bytes) -> tuple[Any, bool]:
    """(value, ok).  An empty body is (None, True)."""
    if not raw.strip():
        return None, True
    try:
        return json.loads(raw.decode("utf-8"), parse_constant=_reject_constant), True
    except (ValueError, UnicodeDecodeError):
        return None, False


def _require_true(operand: Any, where: str) -> None:
    if operand is not True:
        raise _failed(where, "should be `true`", operand)


def _always(page: _Page) -> bool:
    return True


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


# ------------------------------------------------------------------------------------------ model


@dataclass
class _Property:
    id: str
    name: str
    type: str
    config: JSONDict

    @property
    def options(self) -> list[JSONDict]:
        options = self.config.get("options")
        return cast(list[JSONDict], options) if isinstance(options, list) else []

    def option_by_id(self, option_id: Any) -> JSONDict | None:
        return next((o for o in self.options if o["id"] == option_id), None)

    def schema_json(self) -> JSONDict:
        config = copy.deepcopy(self.config)
        if self.type == "status":
            config["groups"] = _status_groups(self.id, self.options)
        return {"id": self.id, "name": self.name, "type": self.type, self.type: config}

    def clone(self) -> _Property:
        return _Property(self.id, self.name, self.type, copy.deepcopy(self.config))


@dataclass
class _DataSource:
    id: str
    database_id: str
    title: list[JSONDict]
    properties: dict[str, _Property]  # by property id, in schema order
    created: datetime
    edited: datetime
    rows: list[str] = field(default_factory=list)
    in_trash: bool = False

    def find(self, key: Any) -> _Property | None:
        """A property by name, else by id."""
        if not isinstance(key, str):
            return None
        for prop in self.properties.values():
            if prop.name == key:
                return prop
        return self.properties.get(key)


@dataclass
class _Database:
    id: str
    parent_page_id: str
    title: list[JSONDict]
    data_source_ids: list[str]
    created: datetime
    edited: datetime
    in_trash: bool = False


@dataclass
class _Page:
    id: str
    seq: int
    created: datetime
    edited: datetime
    data_source_id: str | None = None  # a data source row ...
    parent_page_id: str | None = None  # ... or a child page; neither: a workspace-level page
    title: list[JSONDict] = field(default_factory=list)  # plain pages only
    values: dict[str, Any] = field(default_factory=dict)  # rows only: property id -> stored value
    in_trash: bool = False


@dataclass
class _Fault:
    status: int
    code: str
    remaining: int
    method: str | None
    path_contains: str | None
    body_json: bool
    after_processing: bool
    retry_after: int | None


@dataclass
class _Delay:
    seconds: float
    remaining: int
    method: str | None
    path_contains: str | None


@dataclass
class _Response:
    status: int
    payload: bytes
    content_type: str
    headers: dict[str, str] = field(default_factory=dict)


def _matches(rule_method: str | None, rule_path: str | None, method: str, path: str) -> bool:
    if rule_method is not None and rule_method.upper() != method:
        return False
    return rule_path is None or rule_path in path


def _default_status_options() -> list[JSONDict]:
    return [
        {"id": _new_id(), "name": "Not started", "color": "default"},
        {"id": _new_id(), "name": "In progress", "color": "blue"},
        {"id": _new_id(), "name": "Done", "color": "green"},
    ]


def _status_groups(prop_id: str, options: list[JSONDict]) -> list[JSONDict]:
    ids = [o["id"] for o in options]
    split = {"To-do": ids[:1], "In progress": ids[1:-1], "Complete": ids[-1:] if len(ids) > 1 else []}
    colors = {"To-do": "gray", "In progress": "blue", "Complete": "green"}
    return [
        {
            "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{prop_id}/{name}")),
            "name": name,
            "color": colors[name],
            "option_ids": option_ids,
        }
        for name, option_ids in split.items()
    ]


# ----------------------------------------------------------------------------------------- server


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, emulator: NotionEmulator) -> None:
        self.emulator = emulator
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], OSError):
            return  # the client went away (e.g. it timed out during an injected delay) or stop() cut it
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 120  # idle keep-alive connections

    def setup(self) -> None:
        super().setup()
        # headers and body go out in separate writes: without this, Nagle + delayed ACK add ~40 ms each
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        server = cast(_Server, self.server)
        with server.connections_lock:
            server.connections.add(self.connection)

    def finish(self) -> None:
        server = cast(_Server, self.server)
        with server.connections_lock:
            server.connections.discard(self.connection)
        super().finish()

    def _dispatch(self) -> None:
        cast(_Server, self.server).emulator._serve(self)

    do_GET = _dispatch
    do_POST = _dispatch
    do_PATCH = _dispatch
    do_PUT = _dispatch
    do_DELETE = _dispatch

    def log_message(self, format: str, *args: Any) -> None:
        return


class _BodyUnreadable(Exception):
    pass


_Route = Callable[[tuple[str, ...], JSONDict, dict[str, list[str]]], JSONDict]


# --------------------------------------------------------------------------------------- emulator


class NotionEmulator(LocalServer):
    """In-process Notion API server for tests.  See the module docstring."""

    def __init__(
        self,
        token: str = "secret_test",
        rate_limit: float | None = None,
        burst: int = 10,
        retry_after: int = 1,
    ) -> None:
        if rate_limit is not None and rate_limit <= 0:
            raise ValueError("rate_limit must be positive (or None to disable)")
        if burst < 1:
            raise ValueError("burst must be at least 1")
        if retry_after < 0:
            raise ValueError("retry_after must be >= 0")
        self.token = token
        self.rate_limit = rate_limit
        self.burst = burst
        self.retry_after = retry_after
        self.requests: list[dict[str, Any]] = []

        self._lock = threading.RLock()  # all state below
        self._requests_lock = threading.Lock()
        self._bucket_lock = threading.Lock()
        self._tokens = float(burst)
        self._bucket_at = time.monotonic()
        self._seq = itertools.count()
        self._pages: dict[str, _Page] = {}
        self._databases: dict[str, _Database] = {}
        self._data_sources: dict[str, _DataSource] = {}
        self._faults: list[_Fault] = []
        self._delays: list[_Delay] = []
        super().__init__()
        self._routes: list[tuple[str, re.Pattern[str], _Route]] = [
            ("GET", re.compile(r"/v1/databases/([^/]+)"), self._get_database),
            ("PATCH", re.compile(r"/v1/databases/([^/]+)"), self._patch_database),
            ("POST", re.compile(r"/v1/databases"), self._post_database),
            ("POST", re.compile(r"/v1/data_sources"), self._post_data_source),
            ("GET", re.compile(r"/v1/data_sources/([^/]+)"), self._get_data_source),
            ("PATCH", re.compile(r"/v1/data_sources/([^/]+)"), self._patch_data_source),
            ("POST", re.compile(r"/v1/data_sources/([^/]+)/query"), self._query_data_source),
            ("POST", re.compile(r"/v1/pages"), self._post_page),
            ("GET", re.compile(r"/v1/pages/([^/]+)"), self._get_page),
            ("PATCH", re.compile(r"/v1/pages/([^/]+)"), self._patch_page),
            ("GET", re.compile(r"/v1/users/me"), self._get_me),
        ]
        self.views: dict[str, JSONDict] = {}  # the Views API's state: notion_emulator_views.py
        self.dashboard_rows: dict[str, list[list[str]]] = {}
        self._placing: int | None = None
        notion_emulator_views.install(self)

    # ---------------------------------------------------------------------------- lifecycle

    thread_name = "notion-emulator"

    def _new_server(self) -> _Server:
        return _Server(self)

    def _on_stop(self, server: ThreadingHTTPServer) -> None:
        assert isinstance(server, _Server)
        with server.connections_lock:
            open_connections = list(server.connections)
        for conn in open_connections:  # keep-alive connections would otherwise outlive the server
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    # ------------------------------------------------------------------- direct setup / inspection

    def add_page(self, page_id: str | None = None, title: str = "Parent") -> str:
        """A workspace-level page (it can parent databases).  Returns its id."""
        pid = _new_id() if page_id is None else normalize_id(page_id)
        if pid is None:
            raise ValueError(f"not a Notion id: {page_id!r}")
        with self._lock:
            if pid in self._pages:
                raise ValueError(f"page {pid} already exists")
            now = _now()
            self._pages[pid] = _Page(pid, next(self._seq), now, now, title=[_text_item(title)])
        return pid

    def create_database(self, parent_page_id: str, title: str, properties: JSONDict) -> tuple[str, str]:
        """Create a database (one data source) without HTTP.  ``properties`` is the API's schema form,
        e.g. ``{"Name": {"title": {}}, "Stage": {"select": {"options": [{"name": "A"}]}}}``.
        Returns ``(database_id, data_source_id)``; raises ValueError where the API answers 4xx."""
        with self._lock:
            try:
                parent = normalize_id(parent_page_id)
                if parent is None or parent not in self._pages:
                    raise _not_found("page", str(parent_page_id))
                db = self._create_database(parent, [_text_item(title)], properties, None)
            except NotionAPIError as exc:
                raise ValueError(exc.message) from exc
            return db.id, db.data_source_ids[0]

    def inject_fault(
        self,
        status: int,
        code: str,
        *,
        times: int = 1,
        method: str | None = None,
        path_contains: str | None = None,
        body_json: bool = True,
        after_processing: bool = False,
        retry_after: int | None = None,
    ) -> None:
        """The next ``times`` matching requests are answered with this error.

        ``body_json=False`` answers a text/plain body instead of Notion's JSON envelope.
        ``after_processing=True`` applies the request first (the write happens), then answers the
        error: a response lost after the server acted.  ``retry_after`` adds a ``Retry-After``
        header (429 faults get the emulator's ``retry_after`` by default)."""
        if status < 400 or times < 1:
            raise ValueError("status must be >= 400 and times >= 1")
        with self._lock:
            self._faults.append(
                _Fault(status, code, times, method, path_contains, body_json, after_processing, retry_after)
            )

    def inject_delay(
        self,
        seconds: float,
        *,
        times: int = 1,
        method: str | None = None,
        path_contains: str | None = None,
    ) -> None:
        """Sleep ``seconds`` before answering the next ``times`` matching requests.  The request is
        applied before the sleep, so a client that times out still leaves the write behind."""
        if seconds < 0 or times < 1:
            raise ValueError("seconds must be >= 0 and times >= 1")
        with self._lock:
            self._delays.append(_Delay(seconds, times, method, path_contains))

    def chaos(
        self,
        seed: int | None,
        *,
        rate_429: float = 0.0,
        rate_5xx: float = 0.0,
        after_processing_share: float = 0.0,
        statuses: Sequence[int] = CHAOS_STATUSES,
    ) -> Chaos | None:
        """Random faults from ``random.Random(seed)`` (see the module docstring); ``None`` turns them
        off.  Returns the :class:`local_server.Chaos` in use.  ``Retry-After`` (on 429 and 529) is
        :attr:`retry_after` at the time of the answer."""
        unknown = set(statuses) - set(_CHAOS_CODES)
        if unknown:
            raise ValueError(f"statuses must be among {sorted(_CHAOS_CODES)}, not {sorted(unknown)}")
        chaos = None
        if seed is not None:
            chaos = Chaos(
                seed,
                rate_429=rate_429,
                rate_5xx=rate_5xx,
                after_processing_share=after_processing_share,
                statuses=statuses,
            )
        self._chaos = chaos
        return chaos

    def set_rate_limit(self, rate_limit: float | None, burst: int | None = None) -> None:
        """Change the rate limiter while running (None: no limit); the bucket starts full."""
        if rate_limit is not None and rate_limit <= 0:
            raise ValueError("rate_limit must be positive (or None to disable)")
        if burst is not None and burst < 1:
            raise ValueError("burst must be at least 1")
        with self._bucket_lock:
            self.rate_limit = rate_limit
            if burst is not None:
                self.burst = burst
            self._tokens = float(self.burst)
            self._bucket_at = time.monotonic()

    def _chaos_response(self, fault: Fault) -> _Response:
        if fault.status == 429:
            return self._fault_response(_Fault(429, "rate_limited", 1, None, None, True, False, None))
        code = _CHAOS_CODES[fault.status]
        retry_after = self.retry_after if fault.status == 529 else None
        body_json = fault.status != 502  # a bad gateway is the proxy's page, not Notion's JSON
        return self._fault_response(_Fault(fault.status, code, 1, None, None, body_json, False, retry_after))

    def clear_faults(self) -> None:
        """Drop pending injected faults and delays."""
        with self._lock:
            self._faults.clear()
            self._delays.clear()

    def reset_requests(self) -> None:
        with self._requests_lock:
            self.requests.clear()

    def count(self, method: str | None = None, path_contains: str | None = None) -> int:
        """Number of recorded requests matching ``method`` (any case) and ``path_contains``."""
        with self._requests_lock:
            snapshot = list(self.requests)
        return sum(1 for r in snapshot if _matches(method, path_contains, r["method"], r["path"]))

    def pages(self, data_source_id: str, include_trashed: bool = False) -> list[JSONDict]:
        """Rows of a data source in read shape, creation order."""
        with self._lock:
            ds = self._data_sources[self._key(data_source_id)]
            rows = [self._pages[pid] for pid in ds.rows]
            return [self._render_page(p) for p in rows if include_trashed or not p.in_trash]

    def page(self, page_id: str) -> JSONDict:
        """One page in read shape (KeyError if unknown)."""
        with self._lock:
            return self._render_page(self._pages[self._key(page_id)])

    def data_source_id(self, database_id: str) -> str:
        """The (first) data source of a database."""
        with self._lock:
            return self._databases[self._key(database_id)].data_source_ids[0]

    @staticmethod
    def _key(object_id: str) -> str:
        key = normalize_id(object_id)
        if key is None:
            raise KeyError(object_id)
        return key

    # ------------------------------------------------------------------------------- HTTP layer

    def _serve(self, handler: BaseHTTPRequestHandler) -> None:
        method = handler.command.upper()
        split = urlsplit(handler.path)
        path, query = split.path, parse_qs(split.query)
        try:
            raw = self._read_body(handler)
        except _BodyUnreadable as exc:
            index = self._request_received(method, path)
            handler.close_connection = True
            response = self._error(400, "validation_error", str(exc), {"Connection": "close"})
            self._record(method, path, query, None, response.status)
            self._write(handler, response)
            self._request_answered(index, method, path)
            return
        index = self._request_received(method, path)
        body, body_ok = _decode_json(raw)
        with self._lock:
            fault = self._take_fault(method, path)
            delay = self._take_delay(method, path)
        if fault is not None and not fault.after_processing:
            response = self._fault_response(fault)
        else:
            response = self._process(method, path, query, handler.headers, raw, body, body_ok, chaos=fault is None)
            if fault is not None:
                response = self._fault_response(fault)
        self._record(method, path, query, body, response.status)
        if delay is not None:
            time.sleep(delay.seconds)
        self._write(handler, response)
        self._request_answered(index, method, path)

    @staticmethod
    def _read_body(handler: BaseHTTPRequestHandler) -> bytes:
        if handler.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks: list[bytes] = []
            total = 0
            while True:
                line = handler.rfile.readline(65537)
                try:
                    size = int(line.split(b";")[0].strip(), 16)
                except ValueError as exc:
                    raise _BodyUnreadable("Malformed chunked request body.") from exc
                if size == 0:
                    while handler.rfile.readline(65537).strip():
                        pass
                    return b"".join(chunks)
                total += size
                if total > _HARD_BODY_CAP:
                    raise _BodyUnreadable(f"Request body too large (limit {MAX_BODY_BYTES} bytes).")
                chunks.append(handler.rfile.read(size))
                handler.rfile.readline()
        length = handler.headers.get("Content-Length")
        if length is None:
            return b""
        try:
            size = int(length)
        except ValueError as exc:
            raise _BodyUnreadable("Invalid Content-Length header.") from exc
        if size < 0 or size > _HARD_BODY_CAP:
            raise _BodyUnreadable(f"Request body too large (limit {MAX_BODY_BYTES} bytes).")
        return handler.rfile.read(size)

    def _process(
        self,
        method: str,
        path: str,
        query: dict[str, list[str]],
        headers: Message,
        raw: bytes,
        body: Any,
        body_ok: bool,
        *,
        chaos: bool = False,
    ) -> _Response:
        drawn: tuple[Chaos, Fault] | None = None
        try:
            if headers.get("Authorization") != f"Bearer {self.token}":
                raise NotionAPIError(401, "unauthorized", "API token is invalid.")
            version = headers.get("Notion-Version")
            if version is None:
                raise NotionAPIError(
                    400,
                    "missing_version",
                    "Notion-Version header failed validation: "
                    "Notion-Version header should be defined, instead was `undefined`.",
                )
            if version != NOTION_VERSION:
                raise _invalid(
                    f"Notion-Version header failed validation: the emulator speaks `{NOTION_VERSION}`, "
                    f"instead was `{version}`."
                )
            if not self._take_token():
                return self._error(
                    429,
                    "rate_limited",
                    "You have been rate limited. Please try again in a few minutes.",
                    {"Retry-After": str(self.retry_after)},
                )
            drawn = self._draw_fault() if chaos else None
            if drawn is not None and not drawn[1].after_processing:
                drawn[0].record(drawn[1])
                return self._chaos_response(drawn[1])
            if len(raw) > MAX_BODY_BYTES:
                raise _invalid(f"Request body too large: {len(raw)} bytes; the limit is {MAX_BODY_BYTES} bytes.")
            if not body_ok:
                raise NotionAPIError(400, "invalid_json", "Error parsing JSON body.")
            route, params = self._route(method, path)
            if body is None:
                body = {}
            if not isinstance(body, dict):
                raise _failed("body", "should be an object", body)
            with self._lock:
                payload = route(params, body, query)
            if drawn is not None:  # applied: the write happened, the answer is lost
                drawn[0].record(drawn[1])
                return self._chaos_response(drawn[1])
            return self._json(200, payload)
        except NotionAPIError as exc:
            return self._error(exc.status, exc.code, exc.message)
        except Exception:  # a bug in the emulator: answer like Notion would, and show it
            traceback.print_exc()
            return self._error(500, "internal_server_error", "Unexpected error in the Notion emulator.")

    def _route(self, method: str, path: str) -> tuple[_Route, tuple[str, ...]]:
        for route_method, pattern, route in self._routes:
            match = pattern.fullmatch(path)
            if match is not None and route_method == method:
                return route, match.groups()
        raise NotionAPIError(400, "invalid_request_url", "Invalid request URL.")

    def _take_token(self) -> bool:
        if self.rate_limit is None:
            return True
        with self._bucket_lock:
            now = time.monotonic()
            elapsed = now - self._bucket_at
            self._tokens = min(float(self.burst), self._tokens + elapsed * self.rate_limit)
            self._bucket_at = now
            if self._tokens >= 1.0:
                self._tokens -= 1.0
                return True
            return False

    def _take_fault(self, method: str, path: str) -> _Fault | None:
        for fault in self._faults:
            if _matches(fault.method, fault.path_contains, method, path):
                fault.remaining -= 1
                if fault.remaining <= 0:
                    self._faults.remove(fault)
                return fault
        return None

    def _take_delay(self, method: str, path: str) -> _Delay | None:
        for delay in self._delays:
            if _matches(delay.method, delay.path_contains, method, path):
                delay.remaining -= 1
                if delay.remaining <= 0:
                    self._delays.remove(delay)
                return delay
        return None

    def _fault_response(self, fault: _Fault) -> _Response:
        headers: dict[str, str] = {}
        retry_after = fault.retry_after
        if retry_after is None and fault.status == 429:
            retry_after = self.retry_after
        if retry_after is not None:
            headers["Retry-After"] = str(retry_after)
        if fault.body_json:
            return self._error(fault.status, fault.code, f"Injected fault: {fault.code}", headers)
        text = f"{fault.status} {fault.code}\n".encode()
        return _Response(fault.status, text, "text/plain; charset=utf-8", headers)

    def _record(self, method: str, path: str, query: dict[str, list[str]], body: Any, status: int) -> None:
        entry = {"method": method, "path": path, "query": query, "body": body, "status": status}
        with self._requests_lock:
            self.requests.append(entry)

    @staticmethod
    def _json(status: int, payload: JSONDict, headers: dict[str, str] | None = None) -> _Response:
        data = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        return _Response(status, data, "application/json; charset=utf-8", dict(headers or {}))

    def _error(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> _Response:
        payload = {
            "object": "error",
            "status": status,
            "code": code,
            "message": message,
            "request_id": _new_id(),
        }
        return self._json(status, payload, headers)

    @staticmethod
    def _write(handler: BaseHTTPRequestHandler, response: _Response) -> None:
        try:
            handler.send_response(response.status, _REASONS.get(response.status))
            handler.send_header("Content-Type", response.content_type)
            handler.send_header("Content-Length", str(len(response.payload)))
            handler.send_header("x-notion-request-id", _new_id())
            for name, value in response.headers.items():
                handler.send_header(name, value)
            handler.end_headers()
            handler.wfile.write(response.payload)
            handler.wfile.flush()
        except (ConnectionError, TimeoutError):
            handler.close_connection = True

    # ------------------------------------------------------------------------------- id parsing

    @staticmethod
    def _path_id(raw: str, name: str) -> str:
        object_id = normalize_id(raw)
        if object_id is None:
            raise _invalid(f"path failed validation: path.{name} should be a valid uuid, instead was `{raw!r}`.")
        return object_id

    @staticmethod
    def _body_id(raw: Any, where: str) -> str:
        object_id = normalize_id(raw)
        if object_id is None:
            raise _failed(where, "should be a valid uuid", raw)
        return object_id

    # ------------------------------------------------------------------------------- databases

    def _get_database(self, params: tuple[str, ...], body: JSONDict, query: dict[str, list[str]]) -> JSONDict:
        db_id = self._path_id(params[0], "database_id")
        db = self._databases.get(db_id)
        if db is None:
            raise _not_found("database", db_id)
        return self._render_database(db)

    def _post_database(self, params: tuple[str, ...], body: JSONDict, query: dict[str, list[str]]) -> JSONDict:
        parent = body.get("parent", _MISSING)
        if not isinstance(parent, dict):
            raise _failed("body.parent", "should be an object", parent)
        if parent.get("type", "page_id") != "page_id" or "page_id" not in parent:
            raise _failed("body.parent", "should be a page parent (`{type: 'page_id', page_id}`)", parent)
        parent_id = self._body_id(parent["page_id"], "body.parent.page_id")
        if parent_id not in self._pages:
            raise _not_found("page", parent_id)
        title = self._parse_rich_text(body.get("title", []), "body.title")
        initial = body.get("initial_data_source", {})
        if not isinstance(initial, dict):
            raise _failed("body.initial_data_source", "should be an object", initial)
        schema = initial.get("properties", {"Name": {"title": {}}})
        ds_title = (
            self._parse_rich_text(initial["title"], "body.initial_data_source.title") if ("title" in initial) else None
        )
        db = self._create_database(parent_id, title, schema, ds_title)
        return self._render_database(db)

    def _patch_database(self, params: tuple[str, ...], body: JSONDict, query: dict[str, list[str]]) -> JSONDict:
        db_id = self._path_id(params[0], "database_id")
        db = self._databases.get(db_id)
        if db is None:
            raise _not_found("database", db_id)
        title = self._parse_rich_text(body["title"], "body.title") if "title" in body else None
        trash = self._trash_flag(body)
        if title is not None:
            db.title = title
        if trash is not None:
            db.in_trash = trash
        db.edited = _now()
        return self._render_database(db)

    def _create_database(
        self, parent_id: str, title: list[JSONDict], schema: Any, ds_title: list[JSONDict] | None
    ) -> _Database:
        properties = self._build_schema(schema, "body.initial_data_source.properties")
        now = _now()
        db = _Database(_new_id(), parent_id, title, [], now, now)
        ds = _DataSource(
            _new_id(), db.id, ds_title if ds_title is not None else copy.deepcopy(title), properties, now, now
        )
        db.data_source_ids.append(ds.id)
        notion_emulator_relations.check(self, ds, properties)
        self._databases[db.id] = db
        self._data_sources[ds.id] = ds
        notion_emulator_relations.link(self, ds)
        notion_emulator_views.default_view(self, db.id, ds.id)  # Notion makes one table view, "Default view"
        return db

    def _render_database(self, db: _Database) -> JSONDict:
        return {
            "object": "database",
            "id": db.id,
            "created_time": _fmt_timestamp(db.created),
            "last_edited_time": _fmt_timestamp(db.edited),
            "created_by": _user(),
            "last_edited_by": _user(),
            "title": copy.deepcopy(db.title),
            "description": [],
            "icon": None,
            "cover": None,
            "parent": {"type": "page_id", "page_id": db.parent_page_id},
            "is_inline": False,
            "in_trash": db.in_trash,
            "archived": db.in_trash,
            "is_locked": False,
            "data_sources": [
                {"id": ds_id, "name": _plain_text(self._data_sources[ds_id].title)} for ds_id in db.data_source_ids
            ],
            "url": _notion_url(db.id),
            "public_url": None,
        }

    # ---------------------------------------------------------------------------- data sources

    def _get_data_source(self, params: tuple[str, ...], body: JSONDict, query: dict[str, list[str]]) -> JSONDict:
        return self._render_data_source(self._data_source(params[0]))

    def _data_source(self, raw_id: str) -> _DataSource:
        ds_id = self._path_id(raw_id, "data_source_id")
        ds = self._data_sources.get(ds_id)
        if ds is None:
            raise _not_found("data_source", ds_id)
        return ds

    def _post_data_source(self, params: tuple[str, ...], body: JSONDict, query: dict[str, list[str]]) -> JSONDict:
        parent = body.get("parent", _MISSING)
        if not isinstance(parent, dict) or "database_id" not in parent:
            raise _failed("body.parent", "should be a database parent (`{type: 'database_id', ...}`)", parent)
        db_id = self._body_id(parent["database_id"], "body.parent.database_id")
        db = self._databases.get(db_id)
        if db is None:
            raise _not_found("database", db_id)
        properties = self._build_schema(body.get("properties", _MISSING), "body.properties")
        title = self._parse_rich_text(body.get("title", []), "body.title")
        now = _now()
        ds = _DataSource(_new_id(), db.id, title, properties, now, now)
        db.data_source_ids.append(ds.id)
        self._data_sources[ds.id] = ds
        return self._render_data_source(ds)

    def _patch_data_source(self, params: tuple[str, ...], body: JSONDict, query: dict[str, list[str]]) -> JSONDict:
        ds = self._data_source(params[0])
        title = self._parse_rich_text(body["title"], "body.title") if "title" in body else None
        trash = self._trash_flag(body)
        new_properties: dict[str, _Property] | None = None
        cleared: set[str] = set()
        if "properties" in body:
            new_properties, cleared = self._update_schema(ds, body["properties"], "body.properties")
            notion_emulator_relations.check(self, ds, new_properties)
        # validated: apply
        if title is not None:
            ds.title = title
        if trash is not None:
            ds.in_trash = trash
        if new_properties is not None:
            ds.properties = new_properties
            for page_id in ds.rows:
                values = self._pages[page_id].values
                for prop_id in cleared:
                    values.pop(prop_id, None)
            notion_emulator_relations.link(self, ds)
        ds.edited = _now()
        return self._render_data_source(ds)

    def _render_data_source(self, ds: _DataSource) -> JSONDict:
        db = self._databases[ds.database_id]
        return {
            "object": "data_source",
            "id": ds.id,
            "created_time": _fmt_timestamp(ds.created),
            "last_edited_time": _fmt_timestamp(ds.edited),
            "created_by": _user(),
            "last_edited_by": _user(),
            "title": copy.deepcopy(ds.title),
            "description": [],
            "icon": None,
            "cover": None,
            "properties": {p.name: p.schema_json() for p in ds.properties.values()},
            "parent": {"type": "database_id", "database_id": ds.database_id},
            "database_parent": {"type": "page_id", "page_id": db.parent_page_id},
            "is_inline": False,
            "in_trash": ds.in_trash,
            "archived": ds.in_trash,
            "url": _notion_url(ds.id),
            "public_url": None,
        }

    # ---------------------------------------------------------------------------------- schema

    @staticmethod
    def _schema_type(key: str, spec: JSONDict, where: str) -> tuple[str, Any] | None:
        """(type, raw config) named by a property schema object, or None if it names no type."""
        type_keys = [k for k in spec if k not in _SCHEMA_META_KEYS]
        declared = spec.get("type")
        if len(type_keys) > 1:
            raise _failed(where, "should name exactly one property type", spec)
        if type_keys:
            ptype, raw_config = type_keys[0], spec[type_keys[0]]
            if declared is not None and declared != ptype:
                raise _failed(f"{where}.type", f"should be `{ptype}`", declared)
        elif declared is not None:
            ptype, raw_config = declared, {}
        else:
            return None
        if ptype not in SUPPORTED_PROPERTY_TYPES:
            raise _invalid(
                f'Property "{key}": type `{ptype}` is not supported by the Notion emulator '
                f"(supported: {', '.join(sorted(SUPPORTED_PROPERTY_TYPES))})."
            )
        return ptype, raw_config

    def _build_config(self, name: str, ptype: str, raw: Any, where: str, existing: _Property | None) -> JSONDict:
        if raw is None:
            raw = {}
        if not isinstance(raw, dict):
            raise _failed(f"{where}.{ptype}", "should be an object", raw)
        same = existing if existing is not None and existing.type == ptype else None
        if ptype in ("relation", "rollup"):
            if same is not None and not raw:
                return copy.deepcopy(same.config)
            return notion_emulator_relations.config(ptype, raw, where)
        if ptype == "number":
            fmt = raw.get("format", same.config.get("format", "number") if same else "number")
            if not isinstance(fmt, str):
                raise _failed(f"{where}.number.format", "should be a string", fmt)
            return {"format": fmt}
        if ptype in ("select", "multi_select", "status"):
            previous = copy.deepcopy(same.options) if same else []
            if "options" in raw:
                options = self._parse_options(raw["options"], f"{where}.{ptype}.options", previous, name)
            elif previous:
                options = previous
            else:
                options = _default_status_options() if ptype == "status" else []
            if ptype == "status" and not options:
                raise _invalid(f'Status property "{name}" needs at least one option.')
            return {"options": options}
        return {}

    @staticmethod
    def _check_option_name(name: Any, where: str, prop_name: str) -> str:
        if not isinstance(name, str) or not name.strip():
            raise _failed(where, "should be a non-empty string", name)
        if "," in name:
            raise _invalid(
                f'Invalid select option name for property "{prop_name}": "{name}". Option names cannot contain commas.'
            )
        if _js_length(name) > MAX_OPTION_NAME_LENGTH:
            raise _too_long(where, MAX_OPTION_NAME_LENGTH, _js_length(name))
        return name

    def _parse_options(self, raw: Any, where: str, previous: list[JSONDict], prop_name: str) -> list[JSONDict]:
        if not isinstance(raw, list):
            raise _failed(where, "should be an array", raw)
        options: list[JSONDict] = []
        for i, item in enumerate(raw):
            item_where = f"{where}[{i}]"
            if not isinstance(item, dict):
                raise _failed(item_where, "should be an object", item)
            match = None
            if "id" in item:
                match = next((o for o in previous if o["id"] == item["id"]), None)
            if match is None and "name" in item:
                match = next((o for o in previous if o["name"] == item["name"]), None)
            name = self._check_option_name(
                item.get("name", match["name"] if match else _MISSING), f"{item_where}.name", prop_name
            )
            if any(o["name"] == name for o in options):
                raise _invalid(f'Duplicate option name "{name}" for property "{prop_name}".')
            color = item.get("color", match["color"] if match else OPTION_COLORS[len(options) % 10])
            if color not in OPTION_COLORS:
                raise _failed(f"{item_where}.color", f"should be one of {list(OPTION_COLORS)}", color)
            options.append({"id": match["id"] if match else _new_id(), "name": name, "color": color})
        return options

    @staticmethod
    def _new_property_id(taken: dict[str, _Property]) -> str:
        while True:
            candidate = secrets.token_urlsafe(3)
            if candidate not in taken and candidate != "title":
                return candidate

    def _build_schema(self, raw: Any, where: str) -> dict[str, _Property]:
        if not isinstance(raw, dict):
            raise _failed(where, "should be an object", raw)
        properties: dict[str, _Property] = {}
        for key, spec in raw.items():
            prop_where = f"{where}.{key}"
            if not isinstance(spec, dict):
                raise _failed(prop_where, "should be an object", spec)
            name = spec.get("name", key)
            if not isinstance(name, str) or not name.strip():
                raise _failed(f"{prop_where}.name", "should be a non-empty string", name)
            parsed = self._schema_type(key, spec, prop_where)
            if parsed is None:
                raise _failed(prop_where, "should name a property type", spec)
            ptype, raw_config = parsed
            if any(p.name == name for p in properties.values()):
                raise _invalid(f'Duplicate property name "{name}".')
            if ptype == "title" and any(p.type == "title" for p in properties.values()):
                raise _invalid(f'A data source has exactly one title property; "{name}" would be a second one.')
            prop_id = "title" if ptype == "title" else self._new_property_id(properties)
            config = self._build_config(name, ptype, raw_config, prop_where, None)
            properties[prop_id] = _Property(prop_id, name, ptype, config)
        if not any(p.type == "title" for p in properties.values()):
            raise _invalid("A data source needs exactly one title property; none was given.")
        return properties

    def _update_schema(self, ds: _DataSource, raw: Any, where: str) -> tuple[dict[str, _Property], set[str]]:
        """New schema after a PATCH, and the ids of properties whose stored values must go."""
        if not isinstance(raw, dict):
            raise _failed(where, "should be an object", raw)
        properties = {pid: prop.clone() for pid, prop in ds.properties.items()}
        cleared: set[str] = set()

        def find(key: str) -> _Property | None:
            by_name = next((p for p in properties.values() if p.name == key), None)
            return by_name if by_name is not None else properties.get(key)

        for key, spec in raw.items():
            prop_where = f"{where}.{key}"
            target = find(key)
            if spec is None:
                if target is None:
                    raise _invalid(f"{key} is not a property that exists.")
                if target.type == "title":
                    raise _invalid(f'Cannot delete the title property "{target.name}".')
                del properties[target.id]
                cleared.add(target.id)
                continue
            if not isinstance(spec, dict):
                raise _failed(prop_where, "should be an object or `null`", spec)
            new_name = spec.get("name")
            if new_name is not None and (not isinstance(new_name, str) or not new_name.strip()):
                raise _failed(f"{prop_where}.name", "should be a non-empty string", new_name)
            parsed = self._schema_type(key, spec, prop_where)
            if target is None:
                if parsed is None:
                    raise _invalid(f"{key} is not a property that exists.")
                ptype, raw_config = parsed
                name = new_name or key
                if ptype == "title":
                    raise _invalid(f'A data source has exactly one title property; "{name}" would be a second one.')
                if find(name) is not None:
                    raise _invalid(f'Duplicate property name "{name}".')
                prop_id = self._new_property_id(properties)
                config = self._build_config(name, ptype, raw_config, prop_where, None)
                properties[prop_id] = _Property(prop_id, name, ptype, config)
                continue
            if parsed is not None:
                ptype, raw_config = parsed
                if ptype != target.type and "title" in (ptype, target.type):
                    raise _invalid(f'Cannot change the type of property "{target.name}" to or from title.')
                target.config = self._build_config(target.name, ptype, raw_config, prop_where, target)
                if ptype != target.type:
                    cleared.add(target.id)
                    target.type = ptype
            if new_name is not None and new_name != target.name:
                if any(p.name == new_name for p in properties.values() if p is not target):
                    raise _invalid(f'Duplicate property name "{new_name}".')
                target.name = new_name
        return properties, cleared

    # -------------------------------------------------------------------------- property values

    def _parse_rich_text(self, raw: Any, where: str) -> list[JSONDict]:
        if not isinstance(raw, list):
            raise _failed(where, "should be an array", raw)
        if len(raw) > MAX_RICH_TEXT_ITEMS:
            raise _too_long(where, MAX_RICH_TEXT_ITEMS, len(raw))
        items: list[JSONDict] = []
        for i, item in enumerate(raw):
            item_where = f"{where}[{i}]"
            if not isinstance(item, dict):
                raise _failed(item_where, "should be an object", item)
            kind = item.get("type", "text")
            if kind != "text":
                raise _invalid(
                    f"body failed validation: {item_where}.type `{kind}` is not supported by the Notion "
                    "emulator (only `text`)."
                )
            text = item.get("text", _MISSING)
            if not isinstance(text, dict):
                raise _failed(f"{item_where}.text", "should be an object", text)
            content = text.get("content", _MISSING)
            if not isinstance(content, str):
                raise _failed(f"{item_where}.text.content", "should be a string", content)
            if _js_length(content) > MAX_TEXT_CONTENT:
                raise _too_long(f"{item_where}.text.content", MAX_TEXT_CONTENT, _js_length(content))
            link = text.get("link")
            url: str | None = None
            if link is not None:
                if not isinstance(link, dict) or not isinstance(link.get("url"), str):
                    raise _failed(f"{item_where}.text.link", "should be an object with a `url` string", link)
                url = link["url"]
            rendered = _text_item(content, url)
            annotations = item.get("annotations", {})
            if not isinstance(annotations, dict):
                raise _failed(f"{item_where}.annotations", "should be an object", annotations)
            for flag, value in annotations.items():
                if flag in _ANNOTATION_FLAGS and isinstance(value, bool):
                    rendered["annotations"][flag] = value
                elif flag == "color" and value in _TEXT_COLORS:
                    rendered["annotations"]["color"] = value
                else:
                    raise _failed(f"{item_where}.annotations.{flag}", "is not a valid annotation", value)
            items.append(rendered)
        return items

    def _parse_page_properties(
        self, ds: _DataSource, raw: Any, where: str
    ) -> tuple[dict[str, Any], list[tuple[_Property, JSONDict]]]:
        """Validated values by property id, and select options to create once all is valid."""
        if not isinstance(raw, dict):
            raise _failed(where, "should be an object", raw)
        values: dict[str, Any] = {}
        pending: list[tuple[_Property, JSONDict]] = []
        for key, value in raw.items():
            prop = ds.find(key)
            if prop is None:
                raise _invalid(f"{key} is not a property that exists.")
            values[prop.id] = self._parse_value(prop, value, f"{where}.{key}", pending)
        return values, pending

    def _parse_value(self, prop: _Property, raw: Any, where: str, pending: list[tuple[_Property, JSONDict]]) -> Any:
        ptype = prop.type
        if ptype == "rollup":
            raise _invalid(f"{prop.name} is a rollup: it is computed by Notion and cannot be written.")
        expected = _invalid(f"{prop.name} is expected to be {ptype}.")
        if not isinstance(raw, dict):
            raise expected
        declared = raw.get("type")
        if (declared is not None and declared != ptype) or set(raw) - {"id", "type"} != {ptype}:
            raise expected
        value = raw[ptype]
        value_where = f"{where}.{ptype}"
        if ptype in ("title", "rich_text"):
            return self._parse_rich_text(value, value_where)
        if ptype == "number":
            if value is not None and not _is_number(value):
                raise _failed(value_where, "should be a number or `null`", value)
            return value
        if ptype == "checkbox":
            if not isinstance(value, bool):
                raise _failed(value_where, "should be a boolean", value)
            return value
        if ptype in ("email", "url", "phone_number"):
            if value is None:
                return None
            if not isinstance(value, str):
                raise _failed(value_where, "should be a string or `null`", value)
            limit = _TEXT_LIMITS[ptype]
            if _js_length(value) > limit:
                raise _too_long(value_where, limit, _js_length(value))
            return value
        if ptype == "date":
            return None if value is None else self._parse_date_value(value, value_where)
        if ptype in ("select", "status"):
            return None if value is None else self._resolve_option(prop, value, value_where, pending)
        if ptype == "relation":
            return notion_emulator_relations.parse(self, prop, value, value_where)
        if ptype == "multi_select":
            if not isinstance(value, list):
                raise _failed(value_where, "should be an array", value)
            ids: list[str] = []
            for i, item in enumerate(value):
                option_id = self._resolve_option(prop, item, f"{value_where}[{i}]", pending)
                if option_id not in ids:
                    ids.append(option_id)
            return ids
        raise AssertionError(f"unhandled property type {ptype}")

    @staticmethod
    def _parse_date_value(value: Any, where: str) -> JSONDict:
        if not isinstance(value, dict):
            raise _failed(where, "should be an object or `null`", value)
        time_zone = value.get("time_zone")
        if time_zone is not None:
            try:
                if not isinstance(time_zone, str):
                    raise ValueError(time_zone)
                ZoneInfo(time_zone)
            except (ValueError, ZoneInfoNotFoundError) as exc:
                raise _failed(f"{where}.time_zone", "should be an IANA time zone", time_zone) from exc
        parsed: dict[str, str | None] = {"start": None, "end": None}
        for key in ("start", "end"):
            text = value.get(key, _MISSING if key == "start" else None)
            if text is None and key == "end":
                continue
            when = _parse_iso(text, time_zone) if isinstance(text, str) else None
            if when is None:
                raise _failed(f"{where}.{key}", "should be a valid ISO 8601 date string", text)
            parsed[key] = _fmt_when(when, time_zone)
        return {"start": parsed["start"], "end": parsed["end"], "time_zone": time_zone}

    def _resolve_option(
        self, prop: _Property, value: Any, where: str, pending: list[tuple[_Property, JSONDict]]
    ) -> str:
        if not isinstance(value, dict):
            raise _failed(where, "should be an object", value)
        known = prop.options + [o for p, o in pending if p is prop]
        if "id" in value:
            by_id = next((o for o in known if o["id"] == value["id"]), None)
            if by_id is not None:
                return str(by_id["id"])
            if "name" not in value:
                raise _invalid(f'Invalid option id "{value["id"]}" for property "{prop.name}".')
        name = self._check_option_name(value.get("name", _MISSING), f"{where}.name", prop.name)
        by_name = next((o for o in known if o["name"] == name), None)
        if by_name is not None:
            return str(by_name["id"])
        if prop.type == "status":
            raise _invalid(
                f'Invalid status option "{name}" for property "{prop.name}": '
                "status options cannot be created through the API."
            )
        color = value.get("color", OPTION_COLORS[len(known) % len(OPTION_COLORS)])
        if color not in OPTION_COLORS:
            raise _failed(f"{where}.color", f"should be one of {list(OPTION_COLORS)}", color)
        option = {"id": _new_id(), "name": name, "color": color}
        pending.append((prop, option))
        return str(option["id"])

    @staticmethod
    def _commit_options(pending: list[tuple[_Property, JSONDict]]) -> None:
        for prop, option in pending:
            prop.config.setdefault("options", []).append(option)

    @staticmethod
    def _trash_flag(body: JSONDict) -> bool | None:
        for key in ("in_trash", "archived"):
            if key in body:
                flag = body[key]
                if not isinstance(flag, bool):
                    raise _failed(f"body.{key}", "should be a boolean", flag)
                return flag
        return None

    # ----------------------------------------------------------------------------------- pages

    def _post_page(self, params: tuple[str, ...], body: JSONDict, query: dict[str, list[str]]) -> JSONDict:
        parent = body.get("parent", _MISSING)
        if not isinstance(parent, dict):
            raise _failed("body.parent", "should be an object", parent)
        declared = parent.get("type")
        now = _now()
        if "data_source_id" in parent and declared in (None, "data_source_id"):
            ds = self._data_sources.get(self._body_id(parent["data_source_id"], "body.parent.data_source_id"))
            if ds is None:
                raise _not_found("data_source", str(normalize_id(parent["data_source_id"])))
        elif "database_id" in parent and declared in (None, "database_id"):
            db_id = self._body_id(parent["database_id"], "body.parent.database_id")
            db = self._databases.get(db_id)
            if db is None:
                raise _not_found("database", db_id)
            ds = self._data_sources[db.data_source_ids[0]]
        elif "page_id" in parent and declared in (None, "page_id"):
            parent_id = self._body_id(parent["page_id"], "body.parent.page_id")
            if parent_id not in self._pages:
                raise _not_found("page", parent_id)
            title = self._plain_page_title(body.get("properties", {}))
            page = _Page(_new_id(), next(self._seq), now, now, parent_page_id=parent_id, title=title or [])
            self._pages[page.id] = page
            return self._render_page(page)
        else:
            raise _failed("body.parent", "should name a `data_source_id`, `database_id` or `page_id`", parent)
        values, pending = self._parse_page_properties(ds, body.get("properties", {}), "body.properties")
        self._commit_options(pending)
        page = _Page(_new_id(), next(self._seq), now, now, data_source_id=ds.id, values=values)
        self._pages[page.id] = page
        ds.rows.append(page.id)
        notion_emulator_relations.sync(self, page, {})
        return self._render_page(page)

    def _plain_page_title(self, raw: Any) -> list[JSONDict] | None:
        """The title of a page that is not a data source row (its only property)."""
        if not isinstance(raw, dict):
            raise _failed("body.properties", "should be an object", raw)
        title: list[JSONDict] | None = None
        for key, value in raw.items():
            if key != "title":
                raise _invalid(f"{key} is not a property that exists.")
            if isinstance(value, dict) and set(value) - {"id", "type"} == {"title"}:
                value = value["title"]
            title = self._parse_rich_text(value, "body.properties.title.title")
        return title

    def _page(self, raw_id: str) -> _Page:
        page_id = self._path_id(raw_id, "page_id")
        page = self._pages.get(page_id)
        if page is None:
            raise _not_found("page", page_id)
        return page

    def _get_page(self, params: tuple[str, ...], body: JSONDict, query: dict[str, list[str]]) -> JSONDict:
        return self._render_page(self._page(params[0]), query.get("filter_properties"))

    def _patch_page(self, params: tuple[str, ...], body: JSONDict, query: dict[str, list[str]]) -> JSONDict:
        page = self._page(params[0])
        trash = self._trash_flag(body)
        raw_properties = body.get("properties")
        if raw_properties and page.in_trash and trash is not False:
            raise _invalid("Can't edit block that is archived. You must unarchive the block before editing.")
        if raw_properties is not None:
            if page.data_source_id is not None:
                ds = self._data_sources[page.data_source_id]
                values, pending = self._parse_page_properties(ds, raw_properties, "body.properties")
                self._commit_options(pending)
                before = dict(page.values)
                page.values.update(values)
                notion_emulator_relations.sync(self, page, before)
            else:
                title = self._plain_page_title(raw_properties)
                if title is not None:
                    page.title = title
        if trash is not None:
            page.in_trash = trash
        page.edited = _now()
        return self._render_page(page)

    def _get_me(self, params: tuple[str, ...], body: JSONDict, query: dict[str, list[str]]) -> JSONDict:
        return {
            "object": "user",
            "id": BOT_USER_ID,
            "type": "bot",
            "name": "Notion emulator",
            "avatar_url": None,
            "bot": {"owner": {"type": "workspace", "workspace": True}, "workspace_name": "Emulator"},
        }

    def _effective(self, page: _Page, prop: _Property) -> Any:
        """The stored value of a row's property, or the property type's empty value."""
        if prop.id in page.values:
            return page.values[prop.id]
        if prop.type in ("title", "rich_text", "multi_select"):
            return []
        if prop.type == "checkbox":
            return False
        if prop.type == "status" and prop.options:  # Notion gives new rows the first status option
            return prop.options[0]["id"]
        return None

    def _render_value(self, prop: _Property, value: Any) -> Any:
        if prop.type in ("select", "status"):
            option = prop.option_by_id(value)
            return copy.deepcopy(option) if option is not None else None
        if prop.type == "multi_select":
            found = (prop.option_by_id(option_id) for option_id in value)
            return [copy.deepcopy(o) for o in found if o is not None]
        return copy.deepcopy(value)

    def _render_page(self, page: _Page, only: list[str] | None = None) -> JSONDict:
        properties: JSONDict = {}
        if page.data_source_id is not None:
            ds = self._data_sources[page.data_source_id]
            parent: JSONDict = {
                "type": "data_source_id",
                "data_source_id": ds.id,
                "database_id": ds.database_id,
            }
            for prop in ds.properties.values():
                if only is not None and prop.id not in only and prop.name not in only:
                    continue
                if prop.type in ("relation", "rollup"):
                    value, extra = notion_emulator_relations.render(self, page, prop)
                    properties[prop.name] = {"id": prop.id, "type": prop.type, prop.type: value, **extra}
                    continue
                value = self._render_value(prop, self._effective(page, prop))
                properties[prop.name] = {"id": prop.id, "type": prop.type, prop.type: value}
        else:
            if page.parent_page_id is not None:
                parent = {"type": "page_id", "page_id": page.parent_page_id}
            else:
                parent = {"type": "workspace", "workspace": True}
            if only is None or "title" in only:
                properties["title"] = {"id": "title", "type": "title", "title": copy.deepcopy(page.title)}
        return {
            "object": "page",
            "id": page.id,
            "created_time": _fmt_timestamp(page.created),
            "last_edited_time": _fmt_timestamp(page.edited),
            "created_by": _user(),
            "last_edited_by": _user(),
            "cover": None,
            "icon": None,
            "parent": parent,
            "in_trash": page.in_trash,
            "archived": page.in_trash,
            "is_locked": False,
            "properties": properties,
            "url": _notion_url(page.id),
            "public_url": None,
        }

    # ----------------------------------------------------------------------------------- query

    def _query_data_source(self, params: tuple[str, ...], body: JSONDict, query: dict[str, list[str]]) -> JSONDict:
        ds = self._data_source(params[0])
        page_size = body.get("page_size", MAX_PAGE_SIZE)
        if not isinstance(page_size, int) or isinstance(page_size, bool) or page_size < 1:
            raise _failed("body.page_size", "should be a positive integer", page_size)
        if page_size > MAX_PAGE_SIZE:
            raise _too_big("body.page_size", MAX_PAGE_SIZE, page_size)
        predicate: _Pred = _always
        if body.get("filter") is not None:
            predicate = self._compile_filter(ds, body["filter"], "body.filter", 0)
        compare = self._compile_sorts(ds, body.get("sorts"), "body.sorts")
        rows = [self._pages[pid] for pid in ds.rows]
        matched = [p for p in rows if not p.in_trash and predicate(p)]
        matched.sort(key=functools.cmp_to_key(compare))
        start = 0
        cursor = body.get("start_cursor")
        if cursor is not None:
            cursor_id = normalize_id(cursor)
            start = next((i for i, p in enumerate(matched) if p.id == cursor_id), -1)
            if start < 0:
                raise _invalid(f"body failed validation: body.start_cursor `{_show(cursor)}` is not a valid cursor.")
        chunk = matched[start : start + page_size]
        has_more = start + page_size < len(matched)
        only = query.get("filter_properties")
        return {
            "object": "list",
            "results": [self._render_page(p, only) for p in chunk],
            "next_cursor": matched[start + page_size].id if has_more else None,
            "has_more": has_more,
            "type": "page_or_data_source",
            "page_or_data_source": {},
            "request_id": _new_id(),
        }

    @staticmethod
    def _condition(raw: Any, where: str) -> tuple[str, Any]:
        if not isinstance(raw, dict) or len(raw) != 1:
            raise _failed(where, "should be an object with exactly one condition", raw)
        ((op, operand),) = raw.items()
        return str(op), operand

    def _compile_filter(self, ds: _DataSource, raw: Any, where: str, depth: int) -> _Pred:
        if not isinstance(raw, dict):
            raise _failed(where, "should be an object", raw)
        for compound in ("and", "or"):
            if compound in raw:
                if len(raw) != 1:
                    raise _failed(where, f"should contain only `{compound}`", raw)
                if depth >= MAX_FILTER_DEPTH:
                    raise _invalid(
                        f"body failed validation: {where}.{compound} is nested too deeply; compound filters "
                        f"can be nested at most {MAX_FILTER_DEPTH} levels deep."
                    )
                items = raw[compound]
                if not isinstance(items, list):
                    raise _failed(f"{where}.{compound}", "should be an array", items)
                preds = [
                    self._compile_filter(ds, item, f"{where}.{compound}[{i}]", depth + 1)
                    for i, item in enumerate(items)
                ]
                if compound == "and":
                    return lambda page: all(pred(page) for pred in preds)
                return lambda page: any(pred(page) for pred in preds)
        if "timestamp" in raw:
            kind = raw["timestamp"]
            if kind not in ("created_time", "last_edited_time"):
                raise _failed(f"{where}.timestamp", "should be `created_time` or `last_edited_time`", kind)
            op, operand = self._condition(raw.get(kind, _MISSING), f"{where}.{kind}")

            def stamp(page: _Page) -> datetime | None:
                return page.created if kind == "created_time" else page.edited

            return self._date_predicate(op, operand, f"{where}.{kind}", stamp)
        if "property" in raw:
            return self._property_filter(ds, raw, where)
        raise _failed(where, "should be a property, timestamp, `and` or `or` filter", raw)

    def _property_filter(self, ds: _DataSource, raw: JSONDict, where: str) -> _Pred:
        key = raw["property"]
        prop = ds.find(key)
        if prop is None:
            raise _invalid(f"Could not find property with name or id: {key}")
        kinds = [k for k in raw if k not in ("property", "type")]
        if len(kinds) != 1:
            raise _failed(where, "should have exactly one filter condition type", raw)
        kind = kinds[0]
        if not (kind == prop.type or (kind in _TEXT_TYPES and prop.type in _TEXT_TYPES)):
            raise _invalid(
                f'body failed validation: {where}.{kind} does not match the type of property "{prop.name}" '
                f"(`{prop.type}`)."
            )
        op, operand = self._condition(raw[kind], f"{where}.{kind}")
        cond_where = f"{where}.{kind}"
        ptype = prop.type

        if ptype in _TEXT_TYPES:

            def text(page: _Page) -> str:
                value = self._effective(page, prop)
                if isinstance(value, list):
                    return _plain_text(value)
                return value if isinstance(value, str) else ""

            return self._text_predicate(op, operand, cond_where, text)
        if ptype == "number":
            return self._number_predicate(op, operand, cond_where, lambda page: self._effective(page, prop))
        if ptype == "checkbox":
            if op not in ("equals", "does_not_equal"):
                raise self._unknown_op(cond_where, op, ["equals", "does_not_equal"])
            if not isinstance(operand, bool):
                raise _failed(f"{cond_where}.{op}", "should be a boolean", operand)
            want = op == "equals"
            return lambda page: (self._effective(page, prop) == operand) == want
        if ptype in ("select", "status"):

            def option_name(page: _Page) -> str | None:
                option = prop.option_by_id(self._effective(page, prop))
                return None if option is None else str(option["name"])

            return self._select_predicate(op, operand, cond_where, option_name)
        if ptype == "multi_select":

            def option_names(page: _Page) -> list[str]:
                found = (prop.option_by_id(i) for i in self._effective(page, prop))
                return [str(o["name"]) for o in found if o is not None]

            return self._multi_select_predicate(op, operand, cond_where, option_names)
        if ptype == "date":

            def start(page: _Page) -> datetime | None:
                value = self._effective(page, prop)
                if value is None:
                    return None
                when = _parse_iso(value["start"], value.get("time_zone"))
                return None if when is None else when.instant

            return self._date_predicate(op, operand, cond_where, start)
        raise AssertionError(f"unhandled property type {ptype}")

    @staticmethod
    def _unknown_op(where: str, op: str, supported: list[str]) -> NotionAPIError:
        return _invalid(
            f"body failed validation: {where}.{op} is not a supported condition here "
            f"(supported: {', '.join(supported)})."
        )

    def _text_predicate(self, op: str, operand: Any, where: str, get: Callable[[_Page], str]) -> _Pred:
        if op in ("is_empty", "is_not_empty"):
            _require_true(operand, f"{where}.{op}")
            empty = op == "is_empty"
            return lambda page: (get(page) == "") == empty
        ops: dict[str, _Pred] = {
            "equals": lambda page: get(page) == operand,
            "does_not_equal": lambda page: get(page) != operand,
            "contains": lambda page: needle in get(page).casefold(),
            "does_not_contain": lambda page: needle not in get(page).casefold(),
            "starts_with": lambda page: get(page).casefold().startswith(needle),
            "ends_with": lambda page: get(page).casefold().endswith(needle),
        }
        if op not in ops:
            raise self._unknown_op(where, op, [*ops, "is_empty", "is_not_empty"])
        if not isinstance(operand, str):
            raise _failed(f"{where}.{op}", "should be a string", operand)
        needle = operand.casefold()
        return ops[op]

    def _number_predicate(self, op: str, operand: Any, where: str, get: Callable[[_Page], float | None]) -> _Pred:
        if op in ("is_empty", "is_not_empty"):
            _require_true(operand, f"{where}.{op}")
            empty = op == "is_empty"
            return lambda page: (get(page) is None) == empty
        if op == "does_not_equal":
            if not _is_number(operand):
                raise _failed(f"{where}.{op}", "should be a number", operand)
            return lambda page: get(page) != operand
        comparisons: dict[str, Callable[[float, float], bool]] = {
            "equals": lambda a, b: a == b,
            "greater_than": lambda a, b: a > b,
            "less_than": lambda a, b: a < b,
            "greater_than_or_equal_to": lambda a, b: a >= b,
            "less_than_or_equal_to": lambda a, b: a <= b,
        }
        if op not in comparisons:
            raise self._unknown_op(where, op, [*comparisons, "does_not_equal", "is_empty", "is_not_empty"])
        if not _is_number(operand):
            raise _failed(f"{where}.{op}", "should be a number", operand)
        compare = comparisons[op]

        def check(page: _Page) -> bool:
            value = get(page)
            return value is not None and compare(value, operand)

        return check

    def _select_predicate(self, op: str, operand: Any, where: str, get: Callable[[_Page], str | None]) -> _Pred:
        if op in ("is_empty", "is_not_empty"):
            _require_true(operand, f"{where}.{op}")
            empty = op == "is_empty"
            return lambda page: (get(page) is None) == empty
        if op not in ("equals", "does_not_equal"):
            raise self._unknown_op(where, op, ["equals", "does_not_equal", "is_empty", "is_not_empty"])
        if not isinstance(operand, str):
            raise _failed(f"{where}.{op}", "should be a string", operand)
        want = op == "equals"
        return lambda page: (get(page) == operand) == want

    def _multi_select_predicate(self, op: str, operand: Any, where: str, get: Callable[[_Page], list[str]]) -> _Pred:
        if op in ("is_empty", "is_not_empty"):
            _require_true(operand, f"{where}.{op}")
            empty = op == "is_empty"
            return lambda page: (not get(page)) == empty
        if op not in ("contains", "does_not_contain"):
            raise self._unknown_op(where, op, ["contains", "does_not_contain", "is_empty", "is_not_empty"])
        if not isinstance(operand, str):
            raise _failed(f"{where}.{op}", "should be a string", operand)
        want = op == "contains"
        return lambda page: (operand in get(page)) == want

    def _date_predicate(self, op: str, operand: Any, where: str, get: Callable[[_Page], datetime | None]) -> _Pred:
        if op in ("is_empty", "is_not_empty"):
            _require_true(operand, f"{where}.{op}")
            empty = op == "is_empty"
            return lambda page: (get(page) is None) == empty
        comparisons: dict[str, Callable[[datetime, datetime], bool]] = {
            "equals": lambda a, b: a == b,
            "before": lambda a, b: a < b,
            "after": lambda a, b: a > b,
            "on_or_before": lambda a, b: a <= b,
            "on_or_after": lambda a, b: a >= b,
        }
        if op not in comparisons:
            raise self._unknown_op(where, op, [*comparisons, "is_empty", "is_not_empty"])
        when = _parse_iso(operand) if isinstance(operand, str) else None
        if when is None:
            raise _failed(f"{where}.{op}", "should be a valid ISO 8601 date string", operand)
        bound = when.instant
        compare = comparisons[op]

        def check(page: _Page) -> bool:
            value = get(page)
            return value is not None and compare(value, bound)

        return check

    def _compile_sorts(self, ds: _DataSource, raw: Any, where: str) -> Callable[[_Page, _Page], int]:
        if raw is None:
            raw = []
        if not isinstance(raw, list):
            raise _failed(where, "should be an array", raw)
        keys: list[tuple[Callable[[_Page], Any], int]] = []
        for i, spec in enumerate(raw):
            sort_where = f"{where}[{i}]"
            if not isinstance(spec, dict):
                raise _failed(sort_where, "should be an object", spec)
            direction = spec.get("direction", _MISSING)
            if direction not in ("ascending", "descending"):
                raise _failed(f"{sort_where}.direction", "should be `ascending` or `descending`", direction)
            sign = 1 if direction == "ascending" else -1
            if "property" in spec:
                prop = ds.find(spec["property"])
                if prop is None:
                    raise _invalid(f"Could not find sort property with name or id: {spec['property']}")
                keys.append((self._sort_key(prop), sign))
            elif spec.get("timestamp") == "created_time":
                keys.append(((lambda page: page.created), sign))
            elif spec.get("timestamp") == "last_edited_time":
                keys.append(((lambda page: page.edited), sign))
            else:
                raise _failed(sort_where, "should have a `property` or a `timestamp` (created/last_edited_time)", spec)

        def compare(a: _Page, b: _Page) -> int:
            for get, sign in keys:
                va, vb = get(a), get(b)
                if va is None and vb is None:
                    continue
                if va is None:  # empty values last, whichever the direction
                    return 1
                if vb is None:
                    return -1
                if va != vb:
                    return sign if va > vb else -sign
            return (a.seq > b.seq) - (a.seq < b.seq)

        return compare

    def _sort_key(self, prop: _Property) -> Callable[[_Page], Any]:
        def key(page: _Page) -> Any:
            value = self._effective(page, prop)
            if prop.type in ("title", "rich_text"):
                text = _plain_text(value)
                return (text.casefold(), text) if text else None
            if prop.type in ("email", "url", "phone_number"):
                return (value.casefold(), value) if value else None
            if prop.type in ("select", "status"):  # Notion orders options by their schema position
                ids = [o["id"] for o in prop.options]
                return ids.index(value) if value in ids else None
            if prop.type == "multi_select":
                ids = [o["id"] for o in prop.options]
                positions = tuple(ids.index(v) for v in value if v in ids)
                return positions or None
            if prop.type == "date":
                if value is None:
                    return None
                when = _parse_iso(value["start"], value.get("time_zone"))
                return None if when is None else when.instant
            if prop.type == "checkbox":
                return int(bool(value))
            return value

        return key
