"""The Resend mailer: emails leave through the real `resend` SDK, paced, retried and idempotent.

Paced by pacer.Pacer: to the limit Resend's answers state, under the configured rate, in a budget that every runner
of the campaign shares where the store provides one (PostgreSQL; backends.py wires it).

Every request carries an idempotency key derived from the scheduled email (or, for a batch, from its
membership), and a retry always repeats the same key with the same payload: Resend then answers with
the first reply instead of sending twice. What each SDK exception means is decided in one place,
`classify`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import timedelta
from typing import Any, NamedTuple, TypeVar

import resend
from resend.exceptions import ResendError

from ..core.outgoing import OutgoingEmail, SendResult, plain_headers
from ..errors import ConfigError, MailerUnavailable
from .base import ascii_address
from .pacer import WINDOW, Budget, Pacer

MAX_BATCH = 100  # Resend's limit for POST /emails/batch
KEY_TTL = timedelta(hours=24)  # Resend remembers an idempotency key for 24 hours
ALREADY_ACCEPTED = (
    "Resend already accepted this email under its key (409 invalid_idempotent_request); recorded as sent, not re-sent"
)
KEY_FIX = "set RESEND_API_KEY to a Resend API key with sending access (Resend dashboard → API Keys)"

T = TypeVar("T")


class Verdict(NamedTuple):
    """What one failed request means."""

    retryable: bool  # worth another attempt inside this send(): same key, same payload
    permanent: bool  # retrying can never help: the row fails
    message: str
    already_accepted: bool = False  # the key was used before with another payload: the first one went


def status_of(exc: ResendError) -> int:
    try:
        return int(exc.code)
    except (TypeError, ValueError):
        return 500


def classify(exc: ResendError, api_key: str = "") -> Verdict:
    """Turn an SDK exception into a verdict; raise MailerUnavailable when nothing can be sent at all.

    The one table of Resend failures (see the module docstring of tests/resend_emulator.py for what
    the SDK raises). `api_key` is only used to scrub the key from a message, should one ever echo it.
    """
    code, kind = status_of(exc), str(exc.error_type or "")
    text = str(exc.message or exc) or "no message"
    if api_key:
        text = text.replace(api_key, "[RESEND_API_KEY]")
    what = f"Resend {code} {kind}: {text}"
    if code in (401, 403):
        raise MailerUnavailable(f"Resend refused the API key ({code} {kind})", KEY_FIX)
    if code in (404, 405):
        raise MailerUnavailable(
            f"Resend has no sending endpoint at the configured URL ({code} {kind})",
            "unset RESEND_API_URL to use https://api.resend.com, or point it at a Resend-compatible API",
        )
    if kind == "HttpClientError":  # no HTTP answer at all (the SDK reports it as 500)
        return Verdict(True, False, f"cannot reach Resend: {text}")
    if code == 409 and kind == "invalid_idempotent_request":
        return Verdict(False, False, what, already_accepted=True)
    if code == 409 and kind == "concurrent_idempotent_requests":
        return Verdict(True, False, what)
    if code == 429:
        # A spent daily or monthly quota does not come back within seconds: leave it to a later tick.
        return Verdict(kind not in ("daily_quota_exceeded", "monthly_quota_exceeded"), False, what)
    if code >= 500:
        return Verdict(True, False, what)
    if code in (400, 422):
        return Verdict(False, True, f"Resend refused the email ({code} {kind}): {text}")
    return Verdict(False, False, what)  # another 4xx: not retried now, the engine tries a later tick


def email_params(email: OutgoingEmail) -> resend.Emails.SendParams:
    """The API payload of one email. URL-bearing headers go as plain ASCII (base.plain_headers: Resend writes them
    into the message as given); ValueError when one cannot be (a line break, non-ASCII outside a <URL>)."""
    params: resend.Emails.SendParams = {
        "from": email.sender,
        "to": [ascii_address(email.to)],  # an international domain in its ASCII form
        "subject": email.subject,
        "html": email.html,
        "text": email.text,
        "headers": plain_headers(email.headers),
        "tags": [{"name": name, "value": value} for name, value in email.tags.items()],
    }
    if email.reply_to:
        params["reply_to"] = email.reply_to
    return params


def batch_results(emails: Sequence[OutgoingEmail], response: Mapping[str, Any]) -> list[SendResult]:
    """Map a permissive batch reply back to the rows.

    `errors` names the refused rows by index; `data` lists the ids of the accepted rows only, in
    their order (Resend skips the refused ones), so ids are handed out to the rows not in `errors`.
    """
    refused: dict[int, str] = {}
    for item in response.get("errors") or []:
        index = item.get("index") if isinstance(item, Mapping) else None
        if isinstance(index, int) and 0 <= index < len(emails):
            refused[index] = str(item.get("message") or "invalid email")
    ids = [str(item["id"]) for item in response.get("data") or [] if isinstance(item, Mapping) and "id" in item]
    accepted = len(emails) - len(refused)
    note = None
    if len(ids) != accepted:  # cannot align: the emails went, but which id is whose is unknown
        note = (
            f"Resend accepted the batch but answered {len(ids)} ids for {accepted} accepted emails; "
            "recorded as sent without an id"
        )
        ids = []
    next_id = iter(ids)
    results = []
    for index, email in enumerate(emails):
        if index in refused:
            message = f"Resend refused the email (batch validation): {refused[index]}"
            results.append(SendResult(email.row_id, error=message, permanent=True))
        else:
            results.append(SendResult(email.row_id, message_id=next(next_id, None), note=note))
    return results


def invalid(email: OutgoingEmail, exc: ValueError) -> SendResult:
    """An email no request can carry: it fails for good, and nothing is sent for it."""
    return SendResult(email.row_id, error=f"not a valid email: {exc}", permanent=True)


class ResendMailer:
    """Sends through Resend. `batch=True` allows up to 100 emails per call, sent as one request when the
    caller gives a `batch_key`; otherwise every email is its own request under its own key.
    `rate_limit` is the configured requests per second, a ceiling (`math.inf`: unpaced until an answer states
    Resend's limit); `budget` the slots shared with other runners (default: this instance's own); `window` the
    seconds Resend's `ratelimit-limit` counts in (one; shorter only against a test emulator). `sleep` and
    `monotonic` are injectable so tests never wait."""

    def __init__(
        self,
        api_key: str,
        *,
        api_url: str | None = None,
        batch: bool = False,
        rate_limit: float = 5.0,
        max_retries: int = 3,
        backoff_seconds: float = 1.0,
        max_wait_seconds: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
        budget: Budget | None = None,
        window: float = WINDOW,
    ) -> None:
        # first: the pacer refuses a rate_limit that is not a positive number of requests per second
        self.pacer = Pacer(rate_limit, budget, window=window, sleep=sleep, monotonic=monotonic)
        if max_retries < 0:
            raise ValueError("max_retries must be 0 or more")
        self._api_key = api_key
        self.api_url = api_url.rstrip("/") if api_url else None
        self.batch = batch
        self.max_batch = MAX_BATCH if batch else 1
        self.key_ttl: timedelta | None = KEY_TTL
        self.description = f"Resend {self.api_url or resend.api_url}"
        self.rate_limit = rate_limit
        self.max_retries = max_retries
        self.backoff_seconds = backoff_seconds
        self.max_wait_seconds = max_wait_seconds
        self._sleep = sleep

    def __repr__(self) -> str:
        return f"ResendMailer({self.description!r}, batch={self.batch})"

    def send(self, emails: Sequence[OutgoingEmail], batch_key: str | None = None) -> list[SendResult]:
        if len(emails) > self.max_batch:
            raise ValueError(f"{len(emails)} emails in one call; this mailer sends at most {self.max_batch}")
        if batch_key is not None and len(emails) > 1:
            return self._send_batch(emails, batch_key)
        results: list[SendResult] = []
        outage: str | None = None
        for email in emails:
            if outage is not None:  # Resend is down or throttling: don't spend the retries again per email
                results.append(SendResult(email.row_id, error=f"not attempted: {outage}", attempted=False))
                continue
            result = self._send_one(email)
            if not result.ok and not result.permanent:
                outage = result.error
            results.append(result)
        return results

    def close(self) -> None:
        """The SDK opens a connection per request; the budget may hold one (PostgreSQL)."""
        self.pacer.close()

    # ------------------------------------------------------------------ one request each

    def _send_one(self, email: OutgoingEmail) -> SendResult:
        try:
            params = email_params(email)
        except ValueError as exc:
            return invalid(email, exc)
        options: resend.Emails.SendOptions = {"idempotency_key": email.idempotency_key}
        response, verdict = self._call(lambda: resend.Emails.send(params, options))
        if verdict is not None:
            return self._failed(email.row_id, verdict)
        assert response is not None
        return SendResult(email.row_id, message_id=str(response["id"]))

    def _send_batch(self, emails: Sequence[OutgoingEmail], batch_key: str) -> list[SendResult]:
        """One request for the batch. An email whose payload cannot be made fails alone, before the request: the
        same members always leave out the same ones, so a retry repeats the same payload under the key."""
        results: dict[int, SendResult] = {}
        params: list[resend.Emails.SendParams] = []
        sent: list[OutgoingEmail] = []
        for index, email in enumerate(emails):
            try:
                params.append(email_params(email))
                sent.append(email)
            except ValueError as exc:
                results[index] = invalid(email, exc)
        if sent:
            options: resend.Batch.SendOptions = {"idempotency_key": batch_key, "batch_validation": "permissive"}
            response, verdict = self._call(lambda: resend.Batch.send(params, options))
            if verdict is not None:
                outcome = [self._failed(email.row_id, verdict) for email in sent]
            else:
                assert response is not None
                outcome = batch_results(sent, response)
            in_request = (index for index in range(len(emails)) if index not in results)
            results.update(zip(in_request, outcome, strict=True))
        return [results[index] for index in range(len(emails))]

    @staticmethod
    def _failed(row_id: str, verdict: Verdict) -> SendResult:
        if verdict.already_accepted:
            return SendResult(row_id, message_id=None, note=ALREADY_ACCEPTED)
        return SendResult(row_id, error=verdict.message, permanent=verdict.permanent)

    # ------------------------------------------------------------------ transport

    def _call(self, request: Callable[[], T]) -> tuple[T | None, Verdict | None]:
        """Run one request, retrying what `classify` calls retryable; the caller reuses key and payload."""
        attempt = 0
        while True:
            self.pacer.wait_turn()
            try:
                with self._sdk_settings():
                    response = request()
            except ResendError as exc:
                verdict = classify(exc, self._api_key)
                if not verdict.retryable:
                    self.pacer.answered(exc.headers)
                    return None, verdict
                if attempt >= self.max_retries:
                    self.pacer.answered(exc.headers)
                    return None, verdict._replace(message=f"{verdict.message} (tried {attempt + 1} times)")
                if status_of(exc) == 429:  # every runner holds off; this one's next turn comes after it
                    self.pacer.throttled(exc.headers, self.max_wait_seconds)
                else:
                    self.pacer.answered(exc.headers)
                    self._sleep(min(self.backoff_seconds * 2**attempt, self.max_wait_seconds))
                attempt += 1
            else:
                self.pacer.answered(response.get("http_headers") if isinstance(response, Mapping) else None)
                return response, None

    @contextmanager
    def _sdk_settings(self) -> Iterator[None]:
        """The SDK reads module globals on every request: set ours for this request only."""
        old_key, old_url = resend.api_key, resend.api_url
        resend.api_key = self._api_key
        if self.api_url is not None:
            resend.api_url = self.api_url
        try:
            yield
        finally:
            resend.api_key, resend.api_url = old_key, old_url


def from_env(
    env: Mapping[str, str],
    *,
    batch: bool = False,
    rate_limit: float = 5.0,
    max_retries: int = 3,
    backoff_seconds: float = 1.0,
    max_wait_seconds: float = 30.0,
    sleep: Callable[[float], None] = time.sleep,
    monotonic: Callable[[], float] = time.monotonic,
    budget: Budget | None = None,
) -> ResendMailer:
    """The mailer for `[mailer] backend = "resend"`: the key from RESEND_API_KEY, the URL from RESEND_API_URL."""
    api_key = (env.get("RESEND_API_KEY") or "").strip()
    if not api_key:
        raise ConfigError(
            "RESEND_API_KEY is not set",
            f'{KEY_FIX}, or use [mailer] backend = "outbox" in campaign.toml',
        )
    return ResendMailer(
        api_key,
        api_url=(env.get("RESEND_API_URL") or "").strip() or None,
        batch=batch,
        rate_limit=rate_limit,
        max_retries=max_retries,
        backoff_seconds=backoff_seconds,
        max_wait_seconds=max_wait_seconds,
        sleep=sleep,
        monotonic=monotonic,
        budget=budget,
    )
