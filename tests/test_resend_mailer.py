"""The Resend mailer, through the real SDK against the local Resend emulator. Nothing really waits:
the mailer gets a fake clock whose sleep moves fake time (and the emulator's clock with it)."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
import resend
from resend_emulator import ResendEmulator

from xmas_cli.core.outgoing import OutgoingEmail, SendResult, batch_key, idempotency_key
from xmas_cli.errors import ConfigError, MailerUnavailable
from xmas_cli.mailers.pacer import MARGIN
from xmas_cli.mailers.resend import ALREADY_ACCEPTED, MAX_BATCH, ResendMailer, batch_results, from_env

KEY = "re_test_0123456789"
UNSUBSCRIBE = "<https://example.org/xmas/unsubscribe?t=tok>, <mailto:unsubscribe@example.org?subject=unsubscribe>"


class FakeTime:
    """monotonic() and sleep() for the mailer: sleeping moves fake time, and the emulator's clock too."""

    def __init__(self, emu: ResendEmulator | None = None) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []
        self.emu = emu

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.sleeps.append(seconds)
        self.now += seconds
        if self.emu is not None:
            self.emu.advance(seconds)


@pytest.fixture
def emu() -> Iterator[ResendEmulator]:
    old = resend.api_key, resend.api_url
    with ResendEmulator(api_key=KEY, rate_limit=None) as emulator:
        yield emulator
    assert (resend.api_key, resend.api_url) == old, "the mailer leaked its SDK settings"


@pytest.fixture
def clock(emu: ResendEmulator) -> FakeTime:
    return FakeTime(emu)


def mailer(emu: ResendEmulator, clock: FakeTime, **options: Any) -> ResendMailer:
    """A mailer on the emulator; unpaced (rate_limit=inf) unless a test says otherwise."""
    options.setdefault("rate_limit", math.inf)
    return ResendMailer(emu.api_key, api_url=emu.base_url, sleep=clock.sleep, monotonic=clock.monotonic, **options)


def outgoing(n: int = 1, **changes: Any) -> OutgoingEmail:
    row_id = f"lead-nurture/u{n}@example.com#{n}"
    email = OutgoingEmail(
        row_id=row_id,
        idempotency_key=idempotency_key("christmas-2026", row_id),
        to=f"u{n}@example.com",
        sender="BusinessX Canada <hello@example.org>",
        reply_to="sang@example.org",
        subject=f"Hello {n}",
        html=f"<p>Hi {n}</p>",
        text=f"Hi {n}",
        date=datetime(2026, 12, 1, 9, tzinfo=UTC),
        headers={"List-Unsubscribe": UNSUBSCRIBE, "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"},
        tags={"campaign": "christmas-2026", "sequence": "lead-nurture", "step": str(n)},
    )
    return replace(email, **changes)


def statuses(emu: ResendEmulator) -> list[int]:
    return [r["status"] for r in emu.requests]


# ----------------------------------------------------------------------------- one email


def test_single_send_carries_the_whole_email(emu: ResendEmulator, clock: FakeTime) -> None:
    email = outgoing()
    [result] = mailer(emu, clock).send([email])

    [message] = emu.sent
    assert result == SendResult(email.row_id, message_id=message["id"])
    assert message["from"] == "BusinessX Canada <hello@example.org>"
    assert message["to"] == ["u1@example.com"]
    assert (message["subject"], message["html"], message["text"]) == ("Hello 1", "<p>Hi 1</p>", "Hi 1")
    assert message["reply_to"] == ["sang@example.org"]
    assert message["headers"] == {
        "List-Unsubscribe": UNSUBSCRIBE,
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }
    assert message["tags"] == [
        {"name": "campaign", "value": "christmas-2026"},
        {"name": "sequence", "value": "lead-nurture"},
        {"name": "step", "value": "1"},
    ]
    assert message["idempotency_key"] == email.idempotency_key
    assert message["batch"] is False
    [request] = emu.requests
    assert (request["path"], request["status"]) == ("/emails", 200)
    assert request["headers"]["idempotency-key"] == email.idempotency_key
    assert request["headers"]["authorization"] == f"Bearer {KEY}"


LONG_URL = "https://example.org/xmas/unsubscribe?t=" + "Y2hyaXN0bWFzLXJlYWRlckBleGFtcGxlLm9yZw" * 2 + ".c2ln"


def test_url_headers_go_as_plain_ascii(emu: ResendEmulator, clock: FakeTime) -> None:
    """Resend writes the payload's headers into the email as given: a URL in them must already be ASCII."""
    unsubscribe = f"<{LONG_URL}>, <mailto:désabonner@exämple.org?subject=unsubscribe>"  # > 78 chars, non-ASCII
    headers = {"List-Unsubscribe": unsubscribe, "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}
    email = outgoing(sender="Zoë's Café <hello@example.org>", subject="Noël", headers=headers)
    [result] = mailer(emu, clock).send([email])

    assert result.ok
    [message] = emu.sent
    assert message["headers"] == {
        "List-Unsubscribe": f"<{LONG_URL}>, <mailto:d%C3%A9sabonner@ex%C3%A4mple.org?subject=unsubscribe>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }
    assert all(name.isascii() and value.isascii() for name, value in message["headers"].items())
    assert (message["from"], message["subject"]) == ("Zoë's Café <hello@example.org>", "Noël")  # Resend encodes these


def test_a_url_header_that_cannot_be_plain_is_not_sent(emu: ResendEmulator, clock: FakeTime) -> None:
    bad = outgoing(2, headers={"List-Unsubscribe": "<https://example.org/u>\r\nBcc: someone@example.org"})
    [result] = mailer(emu, clock).send([bad])
    assert not result.ok and result.permanent
    assert result.error is not None and result.error.startswith("not a valid email: List-Unsubscribe: ")
    assert emu.requests == []

    emails = [outgoing(1), bad, outgoing(3)]
    results = mailer(emu, clock, batch=True).send(emails, batch_key="xmas-test-batch-5")
    [request] = emu.requests
    assert request["path"] == "/emails/batch"
    assert [m["to"] for m in emu.sent] == [[emails[0].to], [emails[2].to]]
    assert [r.ok for r in results] == [True, False, True] and results[1].permanent
    assert [r.message_id for r in results] == [emu.sent[0]["id"], None, emu.sent[1]["id"]]


@pytest.fixture
def sdk_globals() -> Iterator[None]:
    """For tests that set the SDK's globals themselves: put them back before `emu` checks them."""
    old = resend.api_key, resend.api_url
    yield
    resend.api_key, resend.api_url = old


def test_sdk_settings_are_restored_after_each_request(emu: ResendEmulator, clock: FakeTime, sdk_globals: None) -> None:
    resend.api_key, resend.api_url = "re_someone_else", "http://127.0.0.1:9"
    [result] = mailer(emu, clock).send([outgoing()])
    assert result.ok
    assert (resend.api_key, resend.api_url) == ("re_someone_else", "http://127.0.0.1:9")


def test_without_api_url_the_sdk_url_is_used(emu: ResendEmulator, clock: FakeTime, sdk_globals: None) -> None:
    resend.api_url = emu.base_url  # as if RESEND_API_URL was set when the SDK was imported
    sender = ResendMailer(KEY, sleep=clock.sleep, monotonic=clock.monotonic)
    assert sender.description == f"Resend {emu.base_url}"
    assert sender.send([outgoing()])[0].ok
    assert len(emu.sent) == 1


def test_idempotent_replay_sends_once(emu: ResendEmulator, clock: FakeTime) -> None:
    sender = mailer(emu, clock)
    [first] = sender.send([outgoing()])
    [again] = sender.send([outgoing()])  # a later tick retries the same row: same key, same bytes

    [message] = emu.sent
    assert first.message_id == again.message_id == message["id"]
    assert statuses(emu) == [200, 200]


def test_same_key_other_payload_is_recorded_as_sent_without_resending(emu: ResendEmulator, clock: FakeTime) -> None:
    sender = mailer(emu, clock)
    [first] = sender.send([outgoing()])
    [second] = sender.send([outgoing(subject="Edited since")])

    assert first.ok and first.message_id == emu.sent[0]["id"]
    assert second == SendResult(outgoing().row_id, message_id=None, note=ALREADY_ACCEPTED)
    assert second.ok
    assert len(emu.sent) == 1
    assert statuses(emu) == [200, 409]  # not retried, not re-sent under another key
    assert {r["headers"]["idempotency-key"] for r in emu.requests} == {outgoing().idempotency_key}
    assert clock.sleeps == []


def test_without_batch_key_each_email_goes_under_its_own_key(emu: ResendEmulator, clock: FakeTime) -> None:
    emails = [outgoing(1), outgoing(2)]
    results = mailer(emu, clock, batch=True).send(emails)

    assert [r.message_id for r in results] == [m["id"] for m in emu.sent]
    assert [r["path"] for r in emu.requests] == ["/emails", "/emails"]
    assert [r["headers"]["idempotency-key"] for r in emu.requests] == [e.idempotency_key for e in emails]


# ----------------------------------------------------------------------------- batches


def test_batch_goes_as_one_request_under_one_key(emu: ResendEmulator, clock: FakeTime) -> None:
    emails = [outgoing(1), outgoing(2), outgoing(3)]
    key = batch_key("christmas-2026", [e.row_id for e in emails])
    results = mailer(emu, clock, batch=True).send(emails, batch_key=key)

    [request] = emu.requests
    assert (request["path"], request["status"]) == ("/emails/batch", 200)
    assert request["headers"]["idempotency-key"] == key
    assert request["headers"]["x-batch-validation"] == "permissive"
    assert len(emu.sent) == 3
    assert all(m["batch"] and m["idempotency_key"] == key for m in emu.sent)
    assert [m["to"] for m in emu.sent] == [[e.to] for e in emails]
    assert results == [SendResult(e.row_id, message_id=m["id"]) for e, m in zip(emails, emu.sent, strict=True)]


@pytest.mark.parametrize("bad", [{0}, {1}, {2}, {0, 2}, {0, 1, 2}])
def test_permissive_batch_fails_only_the_invalid_rows(emu: ResendEmulator, clock: FakeTime, bad: set[int]) -> None:
    emails = [outgoing(n, to="not-an-address") if n in bad else outgoing(n) for n in range(3)]
    results = mailer(emu, clock, batch=True).send(emails, batch_key="xmas-test-batch-1")

    assert len(emu.requests) == 1
    good = [e for n, e in enumerate(emails) if n not in bad]
    assert [m["to"] for m in emu.sent] == [[e.to] for e in good]
    ids = {m["to"][0]: m["id"] for m in emu.sent}
    for n, (email, result) in enumerate(zip(emails, results, strict=True)):
        assert result.row_id == email.row_id
        if n in bad:
            assert result.permanent and result.message_id is None
            assert "`to`" in (result.error or "")
        else:
            assert result == SendResult(email.row_id, message_id=ids[email.to])


def test_batch_size_limit(emu: ResendEmulator, clock: FakeTime) -> None:
    assert mailer(emu, clock, batch=True).max_batch == MAX_BATCH == 100
    assert mailer(emu, clock).max_batch == 1

    too_many = [outgoing(n) for n in range(101)]
    with pytest.raises(ValueError, match="at most 100"):
        mailer(emu, clock, batch=True).send(too_many, batch_key="xmas-test-batch-101")
    with pytest.raises(ValueError, match="at most 1"):
        mailer(emu, clock).send(too_many[:2])
    assert emu.requests == []

    results = mailer(emu, clock, batch=True).send(too_many[:100], batch_key="xmas-test-batch-100")
    assert all(r.ok for r in results) and len(emu.sent) == 100 and len(emu.requests) == 1


def test_batch_retried_after_dropped_connection_keeps_its_ids(emu: ResendEmulator, clock: FakeTime) -> None:
    emu.drop_connection_after_accept(path="/emails/batch")
    emails = [outgoing(1), outgoing(2), outgoing(3)]
    results = mailer(emu, clock, batch=True).send(emails, batch_key="xmas-test-batch-2")

    assert [r.message_id for r in results] == [m["id"] for m in emu.sent]
    assert len(emu.sent) == 3
    assert [r["dropped"] for r in emu.requests] == [True, False]
    assert emu.requests[0]["body"] == emu.requests[1]["body"]
    assert clock.sleeps == [1.0]


def test_batch_key_reused_with_other_payload_is_recorded_as_sent(emu: ResendEmulator, clock: FakeTime) -> None:
    sender = mailer(emu, clock, batch=True)
    emails = [outgoing(1), outgoing(2)]
    sender.send(emails, batch_key="xmas-test-batch-3")
    results = sender.send([emails[0], replace(emails[1], subject="Edited")], batch_key="xmas-test-batch-3")

    assert results == [SendResult(e.row_id, note=ALREADY_ACCEPTED) for e in emails]
    assert len(emu.sent) == 2


def test_batch_refused_as_a_whole_fails_every_row_for_good(emu: ResendEmulator, clock: FakeTime) -> None:
    emu.inject_fault(422, "validation_error", path="/emails/batch", message="Bad batch.")
    emails = [outgoing(1), outgoing(2)]
    results = mailer(emu, clock, batch=True).send(emails, batch_key="xmas-test-batch-4")
    assert [(r.row_id, r.permanent) for r in results] == [(e.row_id, True) for e in emails]
    assert all("Bad batch." in (r.error or "") for r in results)
    assert len(emu.requests) == 1


# ----------------------------------------------------------------------------- retries


@pytest.mark.parametrize(("retry_after", "waited"), [("3", [3.0]), ("0", []), ("120", [30.0])])
def test_429_honours_retry_after_capped(
    emu: ResendEmulator, clock: FakeTime, retry_after: str, waited: list[float]
) -> None:
    emu.inject_fault(429, "rate_limit_exceeded", headers={"retry-after": retry_after})
    [result] = mailer(emu, clock, max_wait_seconds=30).send([outgoing()])

    assert result.ok and result.message_id == emu.sent[0]["id"]
    assert clock.sleeps == waited  # "0": retried at once
    assert statuses(emu) == [429, 200]
    assert len({r["headers"]["idempotency-key"] for r in emu.requests}) == 1


def test_429_from_the_rate_limit_itself(emu: ResendEmulator, clock: FakeTime) -> None:
    emu.rate_limit, emu.burst, emu.retry_after = 1.0, 1, 2
    results = mailer(emu, clock).send([outgoing(1)]) + mailer(emu, clock).send([outgoing(2)])

    assert all(r.ok for r in results) and len(emu.sent) == 2
    assert statuses(emu) == [200, 429, 200]
    assert clock.sleeps == [2.0]  # the emulator's retry-after, and its bucket refilled meanwhile


def test_daily_quota_is_not_retried_now(emu: ResendEmulator, clock: FakeTime) -> None:
    emu.inject_fault(429, "daily_quota_exceeded", headers={"retry-after": "3600"}, message="Quota.")
    [result] = mailer(emu, clock).send([outgoing()])
    assert not result.ok and not result.permanent and "daily_quota_exceeded" in (result.error or "")
    assert clock.sleeps == [] and len(emu.requests) == 1


@pytest.mark.parametrize(
    ("status", "name"),
    [(500, "application_error"), (503, "service_unavailable"), (409, "concurrent_idempotent_requests")],
)
def test_transient_errors_are_retried_with_backoff(
    emu: ResendEmulator, clock: FakeTime, status: int, name: str
) -> None:
    emu.inject_fault(status, name, times=2)
    [result] = mailer(emu, clock, backoff_seconds=0.5).send([outgoing()])

    assert result.ok and result.message_id == emu.sent[0]["id"]
    assert statuses(emu) == [status, status, 200]
    assert clock.sleeps == [0.5, 1.0]
    assert len({r["headers"]["idempotency-key"] for r in emu.requests}) == 1
    assert all(r["body"] == emu.requests[0]["body"] for r in emu.requests)


def test_persistent_5xx_becomes_a_transient_error(emu: ResendEmulator, clock: FakeTime) -> None:
    emu.inject_fault(503, "service_unavailable", times=100)
    first, second = mailer(emu, clock, batch=True, max_retries=3).send([outgoing(1), outgoing(2)])

    assert not first.ok and not first.permanent
    assert "503" in (first.error or "") and "tried 4 times" in (first.error or "")
    assert clock.sleeps == [1.0, 2.0, 4.0]
    # Resend is down: the next email in the same call is not tried again, only marked for a later tick.
    assert not second.ok and not second.permanent and (second.error or "").startswith("not attempted:")
    assert len(emu.requests) == 4 and emu.sent == []


def test_backoff_is_capped_by_max_wait(emu: ResendEmulator, clock: FakeTime) -> None:
    emu.inject_fault(500, "application_error", times=100)
    [result] = mailer(emu, clock, max_retries=4, backoff_seconds=10, max_wait_seconds=25).send([outgoing()])
    assert not result.ok and clock.sleeps == [10, 20, 25, 25]


def test_dropped_connection_after_accept_gets_the_original_id(emu: ResendEmulator, clock: FakeTime) -> None:
    emu.drop_connection_after_accept()
    [result] = mailer(emu, clock).send([outgoing()])

    [message] = emu.sent
    assert result.ok and result.message_id == message["id"]
    assert [r["dropped"] for r in emu.requests] == [True, False]
    assert emu.requests[1]["headers"]["idempotency-key"] == outgoing().idempotency_key
    assert clock.sleeps == [1.0]


def test_unreachable_resend_is_a_transient_error(clock: FakeTime) -> None:
    with ResendEmulator(api_key=KEY) as gone:
        url = gone.base_url  # a port nobody listens on once stopped
    sender = ResendMailer(
        KEY, api_url=url, rate_limit=math.inf, max_retries=1, sleep=clock.sleep, monotonic=clock.monotonic
    )
    [result] = sender.send([outgoing()])
    assert not result.ok and not result.permanent
    assert (result.error or "").startswith("cannot reach Resend")
    assert clock.sleeps == [1.0]


# ----------------------------------------------------------------------------- refusals


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"tags": {"bad tag!": "x"}}, "tags[0].name"),
        ({"to": "not-an-address"}, "`to`"),
        ({"sender": "Shop <nowhere>"}, "`from`"),
    ],
)
def test_validation_error_is_permanent_and_not_retried(
    emu: ResendEmulator, clock: FakeTime, changes: dict[str, Any], field: str
) -> None:
    [result] = mailer(emu, clock).send([outgoing(**changes)])

    assert not result.ok and result.permanent
    assert field in (result.error or "") and "422" in (result.error or "")
    assert statuses(emu) == [422]
    assert clock.sleeps == [] and emu.sent == []


def test_wrong_api_key_makes_the_mailer_unavailable(emu: ResendEmulator, clock: FakeTime) -> None:
    sender = ResendMailer("re_wrong_secret_key", api_url=emu.base_url, sleep=clock.sleep, monotonic=clock.monotonic)
    with pytest.raises(MailerUnavailable) as exc:
        sender.send([outgoing()])
    assert "RESEND_API_KEY" in exc.value.fix
    assert "re_wrong_secret_key" not in str(exc.value)
    assert "403" in exc.value.message
    assert statuses(emu) == [403] and emu.sent == []


def test_api_key_never_in_description(emu: ResendEmulator, clock: FakeTime) -> None:
    sender = mailer(emu, clock)
    assert sender.description == f"Resend {emu.base_url}"
    assert KEY not in sender.description and KEY not in repr(sender)


# ----------------------------------------------------------------------------- pacing


def test_pacing_keeps_under_the_rate_limit_across_calls(emu: ResendEmulator) -> None:
    clock = FakeTime()
    emu.now = clock.monotonic  # type: ignore[method-assign]  # the emulator's window runs on fake time too
    emu.limit_window(5)
    sender = mailer(emu, clock, rate_limit=5)

    for n in range(10):
        assert sender.send([outgoing(n)])[0].ok

    assert statuses(emu) == [200] * 10  # no 429: the emulator never saw more than 5 a second
    assert emu.most_in_one_window() <= 5
    assert len(clock.sleeps) == 9
    assert sum(clock.sleeps) == pytest.approx(9 / (5 * (1 - MARGIN)))  # 4 % under Resend's limit


def test_pacing_leaves_alone_requests_that_are_already_far_apart(emu: ResendEmulator, clock: FakeTime) -> None:
    sender = mailer(emu, clock, rate_limit=5)
    sender.send([outgoing(1)])
    clock.now += 10
    sender.send([outgoing(2)])
    assert clock.sleeps == []


# ----------------------------------------------------------------------------- configuration


def test_from_env_needs_the_key() -> None:
    with pytest.raises(ConfigError) as exc:
        from_env({"RESEND_API_URL": "http://127.0.0.1:1"}, batch=False, rate_limit=5)
    assert exc.value.message == "RESEND_API_KEY is not set"
    assert "RESEND_API_KEY" in exc.value.fix


def test_from_env_passes_url_and_settings(emu: ResendEmulator, clock: FakeTime) -> None:
    sender = from_env(
        {"RESEND_API_KEY": KEY, "RESEND_API_URL": emu.base_url},
        batch=True,
        rate_limit=math.inf,
        sleep=clock.sleep,
        monotonic=clock.monotonic,
    )
    assert sender.max_batch == 100 and sender.description == f"Resend {emu.base_url}"
    assert sender.send([outgoing()])[0].ok
    assert emu.requests[0]["headers"]["authorization"] == f"Bearer {KEY}"


def test_rate_limit_must_be_positive() -> None:
    with pytest.raises(ValueError, match=r"^rate_limit must be a positive number of requests per second$"):
        ResendMailer(KEY, rate_limit=0)


def test_batch_reply_that_cannot_be_aligned_records_the_accepted_rows_without_ids() -> None:
    emails = [outgoing(1), outgoing(2), outgoing(3)]
    reply = {"data": [{"id": "only-one"}], "errors": [{"index": 1, "message": "Invalid `to` field."}]}
    first, second, third = batch_results(emails, reply)
    assert second.permanent and "Invalid `to`" in (second.error or "")
    for result in (first, third):  # accepted (not in errors), but which id is whose is unknown
        assert result.ok and result.message_id is None and "1 ids for 2 accepted" in (result.note or "")
