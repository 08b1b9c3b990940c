"""The Notion store's HTTP layer: one SDK client, paced, retried, and writes that survive a lost response.

- Pacing: a token bucket at `[notion] requests_per_second`, bursts of two seconds' worth (Notion allows "some
  bursts" above its average of 3/s), so a short command does not wait and a long one keeps to the average.
- Retries: the SDK's own retries are switched off (`retry=False`), so there is exactly one retry loop, here:
  429 `rate_limited`, 529 `service_overload`, 409 `conflict_error`, every 5xx, timeouts and connection errors,
  up to `[notion] max_retries`, honouring `Retry-After`. Retries nested in retries were one of the old system's
  failures; and the SDK sleeps with `time.sleep`, which tests could not skip.
- Lost responses: a create or an update that failed in a way that may have reached Notion is re-read before it is
  written again (`create_page` looks the row up by its key, `update_page` re-reads the page and writes only what
  still differs), because Notion has no unique constraint and no conditional update.
"""

from __future__ import annotations

import functools
import json
import logging
import ssl
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, NoReturn

import httpx
from notion_client import Client
from notion_client.errors import HTTPResponseError, RequestTimeoutError

from ..errors import ConfigError, StoreUnavailable
from .notion_records import JSON, Props, read_value

NOTION_API = "https://api.notion.com"
# The pacer keeps this share of the configured average: at exactly Notion's rate, a request delayed on the way
# (a thread switch, the network) lands right behind the next one and Notion's bucket, empty in the steady state,
# refuses it. 5 % below leaves Notion's bucket a little slack that absorbs such jitter.
HEADROOM = 0.95
MAX_RETRY_AFTER = 60.0  # seconds: a longer Retry-After is capped (cron runs the next tick anyway)
UNAVAILABLE_FIX = (
    "Notion did not answer or is overloaded; nothing was lost: run the command again (cron's next tick "
    "picks up where this one stopped)"
)


# -------------------------------------------------------------------------------------------- pacing


class Pacer:
    """A token bucket shared by every request of the process: `rate` requests a second on average, bursts of
    `burst`, and waiting callers (the web server's threads) served one after another.

    It slows down by itself: a 429 (or 529) halves the rate, down to a tenth of the configured one, and empties
    the bucket; every answered request then gives back a twentieth of the configured rate, so it climbs back
    within a few seconds once Notion stops refusing. `sleep` and `monotonic` are injectable, so tests check the
    pacing without waiting for it."""

    def __init__(
        self,
        rate: float,
        burst: float,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.target = rate
        self.rate = rate
        self.capacity = max(1.0, burst)
        self.tokens = self.capacity
        self.monotonic = monotonic
        self.sleep = sleep
        self.at: float | None = None
        self._lock = threading.Lock()

    def wait(self) -> None:
        with self._lock:  # one waiter at a time: a queue, not a stampede when the bucket refills
            now = self.monotonic()
            if self.at is not None:
                self.tokens = min(self.capacity, self.tokens + (now - self.at) * self.rate)
            self.at = now
            if self.tokens >= 1.0:
                self.tokens -= 1.0
                return
            delay = (1.0 - self.tokens) / self.rate
            self.sleep(delay)
            self.tokens = 0.0
            self.at = now + delay

    def answered(self) -> None:
        """A request went through: recover towards the configured rate."""
        with self._lock:
            self.rate = min(self.target, self.rate + self.target / 20)

    def drain(self) -> None:
        """Notion said slow down: no burst until the bucket refills, and half the rate for now."""
        with self._lock:
            self.tokens = min(self.tokens, 0.0)
            self.rate = max(self.target / 10, self.rate / 2)


# ------------------------------------------------------------------------------------------- client


@functools.lru_cache(maxsize=1)
def _ssl_context() -> ssl.SSLContext:
    # httpx builds (and loads CA certificates into) a new context per client, ~50 ms: one per process is enough
    return ssl.create_default_context()


@dataclass(frozen=True)
class _Failure:
    reason: str
    retry_after: float | None
    maybe_applied: bool  # the request may have reached Notion and been applied


Recover = Callable[[], tuple[bool, Any]]  # (True, result): done; (False, body): send this body again


class NotionApi:
    """One `notion_client.Client`, with pacing, retries and error mapping. Every method is one logical call."""

    def __init__(
        self,
        token: str,
        base_url: str = NOTION_API,
        *,
        timeout_seconds: float = 30,
        requests_per_second: float = 3.0,
        max_retries: int = 4,
        logger: logging.Logger,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.timeout_seconds = timeout_seconds
        self.shared = False  # True: the process's one client (stores/notion.py open_api); closing is the process's
        self.max_retries = max_retries
        self.backoff_base = min(1.0, 1.0 / requests_per_second)  # 0.4 s at 2.5/s, doubling per attempt
        self.logger = logger
        self.sleep = sleep
        # a burst of one second's worth: Notion does not say how big its own is, and a bigger one than Notion's
        # would be answered 429 at the start of every command
        self.pacer = Pacer(requests_per_second * HEADROOM, requests_per_second, monotonic, sleep)
        # Called with (kind, Notion's message) on a validation_error, before it is raised: the store re-checks
        # that database's schema there and raises the schema's own message when it does not match.
        self.on_validation_error: Callable[[str, str], None] | None = None
        sdk_logger = logger.getChild("sdk")  # our own logger: without one the SDK adds a stderr handler per client
        self.client = Client(
            auth=token,
            base_url=base_url,
            timeout_ms=max(1, int(timeout_seconds * 1000)),
            logger=sdk_logger,
            log_level=logging.ERROR,  # the SDK logs every failed attempt; we report what persists, once
            retry=False,
            client=httpx.Client(verify=_ssl_context()),
        )

    def close(self) -> None:
        if not self.shared:  # the process's shared client lives as long as the process
            self.client.close()

    # ------------------------------------------------------------------------------------ requests

    def call(
        self,
        method: str,
        path: str,
        body: JSON | None = None,
        *,
        what: str,
        kind: str | None = None,
        query: Mapping[str, Any] | None = None,
        write: bool = False,
        recover: Recover | None = None,
    ) -> Any:
        """One paced request, retried on transient failures. A `write` that may have been applied is sent
        again only after `recover` says so (and with the body it gives); without `recover` it is not retried."""
        attempt = 0
        while True:
            self.pacer.wait()
            try:
                answer = self.client.request(path=path, method=method, query=dict(query or {}) or None, body=body)
                self.pacer.answered()
                return answer
            except (HTTPResponseError, RequestTimeoutError, httpx.TransportError) as exc:
                failure = self._failure(exc, what, kind)
            if attempt >= self.max_retries:
                raise StoreUnavailable(
                    f"Notion: could not {what} after {attempt + 1} attempts ({failure.reason})", UNAVAILABLE_FIX
                )
            if write and failure.maybe_applied and recover is None:
                raise StoreUnavailable(
                    f"Notion: {what} failed ({failure.reason}); it may or may not have been applied",
                    "check in Notion before running the command again",
                )
            delay = max(failure.retry_after or 0.0, self.backoff_base * 2**attempt)
            self.logger.info("Notion: %s: %s; retrying in %.1f s", what, failure.reason, delay)
            self.sleep(delay)
            attempt += 1
            if write and failure.maybe_applied and recover is not None:
                done, result = recover()  # read before writing again: the first attempt may have landed
                if done:
                    return result
                body = result

    def _failure(self, exc: Exception, what: str, kind: str | None) -> _Failure:
        """Classify a failed attempt: return it when a retry may help, raise the project's error when not."""
        if isinstance(exc, RequestTimeoutError):
            return _Failure(f"no answer within {self.timeout_seconds:g} s", None, True)
        if isinstance(exc, httpx.TransportError):
            return _Failure(f"connection failed: {type(exc).__name__}", None, True)
        assert isinstance(exc, HTTPResponseError)
        status = exc.status
        code, message = _code_and_message(exc)
        retry_after = _retry_after(exc.headers)
        if status == 429:
            self.pacer.drain()
            return _Failure(f"429 {code}", retry_after, False)  # refused before anything was done
        if status == 409 or status >= 500:
            if status == 529:
                self.pacer.drain()
            return _Failure(f"{status} {code}", retry_after, True)
        self._raise(status, code, message, what, kind)

    def _raise(self, status: int, code: str, message: str, what: str, kind: str | None) -> NoReturn:
        if status == 401:
            raise ConfigError(
                "Notion did not accept NOTION_TOKEN (401 unauthorized)",
                "set NOTION_TOKEN to the secret of the integration the three databases are shared with",
            )
        if status in (403, 404):
            if kind is None:  # setup: the parent page
                fix = "share the page with the integration in Notion (••• menu → Connections) and check its id"
            else:
                fix = (
                    "share the database with the integration in Notion (••• menu → Connections), or fix "
                    f"[notion] {kind} (or XMAS_NOTION_{kind.upper()})"
                )
            raise ConfigError(f"Notion: could not {what}: {message}", fix)
        if code == "validation_error" and kind is not None and self.on_validation_error is not None:
            self.on_validation_error(kind, message)  # raises the schema's message when the schema is the cause
        raise StoreUnavailable(
            f"Notion refused to {what}: {status} {code}: {message}",
            "if the databases were changed in Notion, run `xmas notion check`",
        )

    # ------------------------------------------------------------------------------------- helpers

    def query(self, data_source: str, body: JSON, *, what: str, kind: str, limit: int | None = None) -> Iterator[JSON]:
        """Rows of a data source query, one request per page of up to 100, fetched as they are consumed."""
        cursor: str | None = None
        left = limit
        while True:
            page_body = {**body, "page_size": min(100, left) if left is not None else 100}
            if cursor:
                page_body["start_cursor"] = cursor
            answer = self.call("POST", f"data_sources/{data_source}/query", page_body, what=what, kind=kind)
            results: list[JSON] = answer.get("results") or []
            if left is not None:
                results = results[:left]
                left -= len(results)
            yield from results
            cursor = answer.get("next_cursor")
            if not answer.get("has_more") or not cursor or left == 0:
                return

    def create_page(
        self, data_source: str, properties: Props, *, find: Callable[[], JSON | None], what: str, kind: str
    ) -> JSON:
        """Create a row. After a failure that may have created it, `find` looks for it first."""
        body = {"parent": {"type": "data_source_id", "data_source_id": data_source}, "properties": properties}

        def recover() -> tuple[bool, Any]:
            found = find()
            return (True, found) if found is not None else (False, body)

        page: JSON = self.call("POST", "pages", body, what=what, kind=kind, write=True, recover=recover)
        return page

    def update_page(self, page_id: str, properties: Props, *, what: str, kind: str) -> JSON:
        """Write these properties of a row. After a failure that may have written them, re-read the page and
        write only what still differs."""

        def recover() -> tuple[bool, Any]:
            page = self.get_page(page_id, what=f"re-read the row to {what}", kind=kind)
            current = page.get("properties") or {}
            left = {k: v for k, v in properties.items() if k not in current or read_value(current[k]) != read_value(v)}
            return (True, page) if not left else (False, {"properties": left})

        page: JSON = self.call(
            "PATCH", f"pages/{page_id}", {"properties": properties}, what=what, kind=kind, write=True, recover=recover
        )
        return page

    def get_page(self, page_id: str, *, what: str, kind: str) -> JSON:
        page: JSON = self.call("GET", f"pages/{page_id}", what=what, kind=kind)
        return page


def _code_and_message(exc: HTTPResponseError) -> tuple[str, str]:
    code = getattr(exc.code, "value", exc.code)
    message = str(exc)
    try:  # codes the SDK does not know (service_overload, ...) arrive as UnknownHTTPResponseError
        body = json.loads(exc.body) if exc.body else None
    except ValueError:
        body = None
    if isinstance(body, dict):
        code = body.get("code") or code
        message = str(body.get("message") or message)
    return str(code), message


def _retry_after(headers: httpx.Headers | None) -> float | None:
    raw = headers.get("retry-after") if headers is not None else None
    if not raw:
        return None
    try:
        seconds = float(raw)
    except ValueError:
        return None
    return min(max(0.0, seconds), MAX_RETRY_AFTER)
