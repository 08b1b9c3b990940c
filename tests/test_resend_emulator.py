"""The Resend emulator, exercised through the real ``resend`` SDK."""

from __future__ import annotations

import http.client
import json
import re
import threading
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
import resend
from resend.exceptions import (
    ApplicationError,
    InvalidApiKeyError,
    MissingRequiredFieldsError,
    RateLimitError,
    ResendError,
    ValidationError,
)
from resend_emulator import (
    IDEMPOTENCY_TTL_SECONDS,
    ResendEmulator,
    new_webhook_secret,
    sdk_webhook_headers,
    sign_webhook,
)

UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@pytest.fixture
def emu() -> Iterator[ResendEmulator]:
    old_url, old_key = resend.api_url, resend.api_key
    with ResendEmulator(api_key="re_test_key", rate_limit=None) as emulator:
        resend.api_url = emulator.base_url
        resend.api_key = emulator.api_key
        try:
            yield emulator
        finally:
            resend.api_url, resend.api_key = old_url, old_key


def email(to: str | list[str] = "ada@example.com", **extra: Any) -> Any:
    params: dict[str, Any] = {
        "from": "Xmas Shop <shop@example.com>",
        "to": to,
        "subject": "Hello",
        "html": "<p>Hi</p>",
        "text": "Hi",
    }
    params.update(extra)
    return params


def raw_post(emulator: ResendEmulator, path: str, headers: dict[str, str], body: Any) -> tuple[int, Any]:
    """POST without the SDK, to control exactly which headers go out."""
    url = urlsplit(emulator.base_url)
    conn = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port, timeout=5)
    try:
        conn.request("POST", path, body=json.dumps(body), headers={"Content-Type": "application/json", **headers})
        response = conn.getresponse()
        assert response.getheader("content-type", "").startswith("application/json")
        return response.status, json.loads(response.read())
    finally:
        conn.close()


# ----------------------------------------------------------------------------- sending


def test_single_send_is_recorded(emu: ResendEmulator) -> None:
    resp = resend.Emails.send(
        email(
            to=["ada@example.com", "Bob <bob@example.org>"],
            reply_to="help@example.com",
            headers={"X-Campaign": "xmas"},
            tags=[{"name": "campaign", "value": "xmas-2024"}],
        )
    )

    assert UUID_RE.fullmatch(resp["id"])
    assert "http_headers" in resp  # the SDK injects the response headers into the result
    [message] = emu.sent
    assert message["id"] == resp["id"]
    assert message["from"] == "Xmas Shop <shop@example.com>"
    assert message["to"] == ["ada@example.com", "Bob <bob@example.org>"]
    assert message["reply_to"] == ["help@example.com"]
    assert message["headers"] == {"X-Campaign": "xmas"}
    assert message["tags"] == [{"name": "campaign", "value": "xmas-2024"}]
    assert (message["subject"], message["html"], message["text"]) == ("Hello", "<p>Hi</p>", "Hi")
    assert message["batch"] is False and message["idempotency_key"] is None
    assert emu.sent_to("bob@example.org") == [message]
    assert emu.sent_to("nobody@example.com") == []
    [request] = emu.requests
    assert (request["method"], request["path"], request["status"]) == ("POST", "/emails", 200)
    assert request["headers"]["authorization"] == "Bearer re_test_key"
    assert request["headers"]["user-agent"].startswith("resend-python:")


def test_missing_field_and_bad_address(emu: ResendEmulator) -> None:
    params = email()
    del params["subject"]
    with pytest.raises(MissingRequiredFieldsError) as missing:
        resend.Emails.send(params)
    assert missing.value.code == 422 and missing.value.error_type == "missing_required_field"

    with pytest.raises(ValidationError) as invalid:
        resend.Emails.send(email(to="not-an-address"))
    assert invalid.value.code == 422 and invalid.value.error_type == "validation_error"
    assert "`to`" in invalid.value.message

    with pytest.raises(ValidationError, match="`from`"):
        resend.Emails.send(email(**{"from": "Shop <not-an-address>"}))
    with pytest.raises(ValidationError):
        resend.Emails.send(email(to=[f"u{i}@example.com" for i in range(51)]))
    assert emu.sent == []


def test_tag_validation(emu: ResendEmulator) -> None:
    for bad in ({"name": "bad tag!", "value": "x"}, {"name": "ok", "value": "é"}, {"name": "a" * 257}):
        with pytest.raises(ValidationError) as exc:
            resend.Emails.send(email(tags=[bad]))
        assert exc.value.code == 422 and exc.value.error_type == "validation_error"
    resend.Emails.send(email(tags=[{"name": "A_b-9" * 51 + "z", "value": "v"}]))  # exactly 256 chars
    assert len(emu.sent) == 1


def test_batch_send(emu: ResendEmulator) -> None:
    resp = resend.Batch.send([email("a@example.com"), email("b@example.com")])

    ids = [item["id"] for item in resp["data"]]
    assert [m["id"] for m in emu.sent] == ids
    assert [m["to"] for m in emu.sent] == [["a@example.com"], ["b@example.com"]]
    assert all(m["batch"] for m in emu.sent)
    assert "errors" not in resp  # strict mode: no errors key
    assert "http_headers" in resp


def test_batch_of_101_is_refused(emu: ResendEmulator) -> None:
    with pytest.raises(ValidationError) as exc:
        resend.Batch.send([email(f"u{i}@example.com") for i in range(101)])
    assert exc.value.code == 422
    with pytest.raises(ValidationError):
        resend.Batch.send([])
    assert emu.sent == []


def test_batch_refuses_attachments_and_scheduled_at(emu: ResendEmulator) -> None:
    with pytest.raises(ValidationError, match="attachments"):
        resend.Batch.send([email(attachments=[{"filename": "a.txt", "content": "aGk="}])])
    with pytest.raises(ValidationError, match="scheduled_at"):
        resend.Batch.send([email(scheduled_at="2030-01-01T00:00:00Z")])
    assert emu.sent == []


def test_strict_and_permissive_batch_with_one_invalid_address(emu: ResendEmulator) -> None:
    batch = [email("a@example.com"), email("not-an-address"), email("c@example.com")]

    with pytest.raises(ValidationError) as exc:
        resend.Batch.send(batch)  # strict is the default
    assert exc.value.code == 422
    assert emu.sent == []
    with pytest.raises(ValidationError):
        resend.Batch.send(batch, {"batch_validation": "strict"})
    assert emu.sent == []

    resp = resend.Batch.send(batch, {"batch_validation": "permissive"})
    assert [item["id"] for item in resp["data"]] == [m["id"] for m in emu.sent]
    assert [m["to"] for m in emu.sent] == [["a@example.com"], ["c@example.com"]]
    [error] = resp["errors"]
    assert error["index"] == 1 and "`to`" in error["message"]
    assert emu.requests[-1]["headers"]["x-batch-validation"] == "permissive"


# ----------------------------------------------------------------------------- idempotency


def test_idempotent_replay_returns_same_id_and_sends_once(emu: ResendEmulator) -> None:
    first = resend.Emails.send(email(), {"idempotency_key": "welcome/1"})
    second = resend.Emails.send(email(), {"idempotency_key": "welcome/1"})

    assert second["id"] == first["id"]
    [message] = emu.sent
    assert message["idempotency_key"] == "welcome/1"
    assert [r["status"] for r in emu.requests] == [200, 200]
    assert emu.requests[0]["headers"]["idempotency-key"] == "welcome/1"


def test_idempotent_batch_replay(emu: ResendEmulator) -> None:
    batch = [email("a@example.com"), email("b@example.com")]
    first = resend.Batch.send(batch, {"idempotency_key": "batch/1"})
    second = resend.Batch.send(batch, {"idempotency_key": "batch/1"})
    assert second["data"] == first["data"]
    assert len(emu.sent) == 2


def test_same_key_other_payload_is_409(emu: ResendEmulator) -> None:
    resend.Emails.send(email(), {"idempotency_key": "k1"})
    with pytest.raises(ResendError) as exc:
        resend.Emails.send(email(subject="Other"), {"idempotency_key": "k1"})

    assert type(exc.value) is ResendError  # 409 is not mapped to a subclass by the SDK
    assert exc.value.code == 409
    assert exc.value.error_type == "invalid_idempotent_request"
    # Same key on the other endpoint is another payload too.
    with pytest.raises(ResendError) as batch_exc:
        resend.Batch.send([email()], {"idempotency_key": "k1"})
    assert batch_exc.value.code == 409
    assert len(emu.sent) == 1


def test_idempotency_key_expires_after_24_hours(emu: ResendEmulator) -> None:
    first = resend.Emails.send(email(), {"idempotency_key": "k2"})
    emu.advance(IDEMPOTENCY_TTL_SECONDS - 10)
    assert resend.Emails.send(email(), {"idempotency_key": "k2"})["id"] == first["id"]

    emu.advance(IDEMPOTENCY_TTL_SECONDS + 1)
    again = resend.Emails.send(email(), {"idempotency_key": "k2"})
    assert again["id"] != first["id"]
    assert len(emu.sent) == 2
    # After expiry the key is free for another payload as well.
    emu.advance(IDEMPOTENCY_TTL_SECONDS + 1)
    resend.Emails.send(email(subject="New"), {"idempotency_key": "k2"})
    assert len(emu.sent) == 3


def test_invalid_idempotency_key(emu: ResendEmulator) -> None:
    with pytest.raises(ResendError) as exc:
        resend.Emails.send(email(), {"idempotency_key": "k" * 257})
    assert exc.value.code == 400 and exc.value.error_type == "invalid_idempotency_key"
    assert emu.sent == []


def test_failed_request_does_not_burn_the_key(emu: ResendEmulator) -> None:
    with pytest.raises(ValidationError):
        resend.Emails.send(email(to="not-an-address"), {"idempotency_key": "k3"})
    resend.Emails.send(email(), {"idempotency_key": "k3"})
    assert len(emu.sent) == 1


def test_concurrent_requests_with_same_key(emu: ResendEmulator) -> None:
    release = emu.hold_processing()
    results: list[Any] = []
    worker = threading.Thread(target=lambda: results.append(resend.Emails.send(email(), {"idempotency_key": "k4"})))
    worker.start()
    try:
        deadline = time.monotonic() + 5
        while emu.in_flight == 0 and time.monotonic() < deadline:
            time.sleep(0.005)
        assert emu.in_flight == 1
        with pytest.raises(ResendError) as exc:
            resend.Emails.send(email(), {"idempotency_key": "k4"})
        assert exc.value.code == 409 and exc.value.error_type == "concurrent_idempotent_requests"
    finally:
        release.set()
        worker.join(timeout=5)
    assert [r["id"] for r in results] == [m["id"] for m in emu.sent]


# ----------------------------------------------------------------------------- limits and faults


def test_rate_limit_429_with_retry_after(emu: ResendEmulator) -> None:
    emu.rate_limit = 1.0
    emu.burst = 1
    emu.retry_after = 0

    ok = resend.Emails.send(email())
    assert ok["http_headers"]["ratelimit-limit"] == "1"
    assert ok["http_headers"]["ratelimit-remaining"] == "0"
    with pytest.raises(RateLimitError) as exc:
        resend.Emails.send(email())
    assert exc.value.code == 429 and exc.value.error_type == "rate_limit_exceeded"
    assert exc.value.headers["retry-after"] == "0"
    assert exc.value.headers["ratelimit-remaining"] == "0"
    assert len(emu.sent) == 1

    emu.advance(1)  # the bucket refills on the emulator's clock
    resend.Emails.send(email())
    assert len(emu.sent) == 2


def test_fixed_window_counts_and_answers_as_resend_documents(emu: ResendEmulator) -> None:
    at = [5000.3]
    emu.now = lambda: at[0]  # type: ignore[method-assign]
    emu.limit_window(2)

    replies = [resend.Emails.send(email())["http_headers"] for _ in range(2)]
    assert [(h["ratelimit-limit"], h["ratelimit-remaining"], h["ratelimit-reset"]) for h in replies] == [
        ("2", "1", "1"),
        ("2", "0", "1"),
    ]
    with pytest.raises(RateLimitError) as exc:
        resend.Emails.send(email())
    assert exc.value.headers["retry-after"] == "1" and exc.value.headers["ratelimit-remaining"] == "0"
    assert "You can only make 2 requests per second" in str(exc.value.message)
    at[0] = 5001.0  # the next window
    assert resend.Emails.send(email())["http_headers"]["ratelimit-remaining"] == "1"
    assert len(emu.sent) == 3 and emu.most_in_one_window() == 2
    assert [admitted for _, admitted in emu.window_log] == [True, True, False, True]

    emu.limit_window(3, window=0.25)  # shortened for quick tests: seconds with milliseconds
    at[0] = 5001.1
    assert resend.Emails.send(email())["http_headers"]["ratelimit-reset"] == "0.150"


def test_injected_500_then_recovery(emu: ResendEmulator) -> None:
    emu.inject_fault(500, "application_error")
    with pytest.raises(ApplicationError) as exc:
        resend.Emails.send(email())
    assert exc.value.code == 500 and exc.value.error_type == "application_error"
    assert emu.sent == []
    resend.Emails.send(email())
    assert len(emu.sent) == 1


def test_injected_503_only_on_its_path(emu: ResendEmulator) -> None:
    emu.inject_fault(503, "service_unavailable", times=2, path="/emails/batch")
    resend.Emails.send(email())  # other path: untouched
    for _ in range(2):
        with pytest.raises(ResendError) as exc:
            resend.Batch.send([email()])
        assert type(exc.value) is ResendError and exc.value.code == 503
    resend.Batch.send([email()])
    assert len(emu.sent) == 2


def test_dropped_connection_after_accept(emu: ResendEmulator) -> None:
    emu.drop_connection_after_accept()
    with pytest.raises(ResendError) as exc:
        resend.Emails.send(email(), {"idempotency_key": "order-42"})
    assert type(exc.value) is ResendError
    assert exc.value.code == 500 and exc.value.error_type == "HttpClientError"
    assert exc.value.headers == {}
    [message] = emu.sent  # accepted even though the client never heard back
    assert emu.requests[-1]["dropped"] is True

    retry = resend.Emails.send(email(), {"idempotency_key": "order-42"})
    assert retry["id"] == message["id"]
    assert len(emu.sent) == 1


# ----------------------------------------------------------------------------- auth


def test_wrong_api_key(emu: ResendEmulator) -> None:
    resend.api_key = "re_wrong"
    with pytest.raises(InvalidApiKeyError) as exc:
        resend.Emails.send(email())
    assert exc.value.code == 403 and exc.value.error_type == "invalid_api_key"
    resend.api_key = None  # the SDK then sends "Bearer None": a wrong key, not a missing one
    with pytest.raises(InvalidApiKeyError):
        resend.Emails.send(email())
    assert emu.sent == []


def test_missing_api_key_and_user_agent_over_raw_http(emu: ResendEmulator) -> None:
    status, body = raw_post(emu, "/emails", {"User-Agent": "raw-test"}, email())
    assert (status, body["name"], body["statusCode"]) == (401, "missing_api_key", 401)

    status, body = raw_post(emu, "/emails", {"Authorization": f"Bearer {emu.api_key}"}, email())
    assert (status, body["name"]) == (400, "validation_error")

    status, body = raw_post(emu, "/nope", {"Authorization": f"Bearer {emu.api_key}", "User-Agent": "t"}, {})
    assert (status, body["name"]) == (404, "not_found")
    assert emu.sent == []


# ----------------------------------------------------------------------------- webhooks


def test_sign_webhook_verified_by_sdk() -> None:
    secret = new_webhook_secret()
    assert secret.startswith("whsec_")
    payload = json.dumps({"type": "email.delivered", "data": {"email_id": "abc"}})
    headers = sign_webhook(secret, payload, msg_id="msg_1")
    assert set(headers) == {"svix-id", "svix-timestamp", "svix-signature"}
    assert headers["svix-signature"].startswith("v1,")

    event = resend.Webhooks.verify(
        {"payload": payload, "headers": sdk_webhook_headers(headers), "webhook_secret": secret}
    )
    assert event["type"] == "email.delivered"

    tampered = payload.replace("abc", "abd")
    with pytest.raises(ValueError, match="no matching signature"):
        resend.Webhooks.verify({"payload": tampered, "headers": sdk_webhook_headers(headers), "webhook_secret": secret})
    stale = sign_webhook(secret, payload, timestamp=int(time.time()) - 3600)
    with pytest.raises(ValueError, match="tolerance"):
        resend.Webhooks.verify({"payload": payload, "headers": sdk_webhook_headers(stale), "webhook_secret": secret})


# ----------------------------------------------------------------------------- random faults


def attempt(send: Any) -> str:
    """What the SDK saw: "ok", "429", "500", "503" ... or "drop" (no HTTP answer at all)."""
    try:
        send()
    except RateLimitError as exc:
        assert exc.headers["retry-after"] == "0"
        return "429"
    except ResendError as exc:
        return "drop" if exc.error_type == "HttpClientError" else str(exc.code)
    return "ok"


def send_many(n: int) -> list[str]:
    return [
        attempt(lambda i=i: resend.Emails.send(email(to=f"p{i}@example.com"), {"idempotency_key": f"key-{i}"}))
        for i in range(n)
    ]


CHAOS: dict[str, Any] = {"rate_429": 0.2, "rate_5xx": 0.15, "after_processing_share": 0.5, "rate_drop": 0.1}


def test_seeded_random_faults_honour_their_rates_and_repeat(emu: ResendEmulator) -> None:
    emu.retry_after = 0
    chaos = emu.chaos(7, **CHAOS)
    assert chaos is not None
    outcomes = send_many(200)
    seen = Counter(outcomes)
    assert 22 <= seen["429"] <= 60  # binomial(200, p): mean 40, 30 and 20; about 3 standard deviations
    assert 14 <= seen["500"] + seen["503"] <= 48 and seen["500"] and seen["503"]
    assert 7 <= seen["drop"] <= 35
    assert set(seen) == {"ok", "429", "500", "503", "drop"}
    applied = emu.chaos_applied
    assert applied == chaos.applied and chaos.drawn == 200
    assert (applied["429"], applied["drop"]) == (seen["429"], seen["drop"])
    assert applied["500"] + applied["500 after"] == seen["500"] and applied["503"] + applied["503 after"] == seen["503"]
    after = applied["500 after"] + applied["503 after"]
    assert 0 < after < seen["500"] + seen["503"]
    # refused before processing: nothing sent; after processing or dropped: sent, the client just never knew
    unsent = {f"p{i}@example.com" for i, o in enumerate(outcomes) if o == "429"}
    assert len(emu.sent) == 200 - seen["429"] - applied["500"] - applied["503"]
    assert not unsent & {m["to"][0] for m in emu.sent}
    assert sum(r["dropped"] for r in emu.requests) == seen["drop"]

    emu.reset()  # the same seed, the same requests: the same faults
    emu.chaos(7, **CHAOS)
    assert send_many(200) == outcomes
    emu.chaos(None)
    assert emu.chaos_applied == Counter() and set(send_many(20)) == {"ok"}


def test_a_fault_after_processing_keeps_the_send_and_a_retry_replays_it(emu: ResendEmulator) -> None:
    first = emu.chaos(3, rate_5xx=1.0, after_processing_share=1.0, statuses=[503])
    with pytest.raises(ResendError) as exc:
        resend.Emails.send(email(), {"idempotency_key": "order-7"})
    assert (exc.value.code, exc.value.error_type) == (503, "service_unavailable")
    [message] = emu.sent
    dropping = emu.chaos(3, rate_drop=1.0)
    with pytest.raises(ResendError) as exc:  # the retry is a replay, and its answer is lost too
        resend.Emails.send(email(), {"idempotency_key": "order-7"})
    assert exc.value.error_type == "HttpClientError"
    emu.chaos(None)
    assert resend.Emails.send(email(), {"idempotency_key": "order-7"})["id"] == message["id"]
    assert len(emu.sent) == 1
    assert first is not None and first.applied == {"503 after": 1}
    assert dropping is not None and dropping.applied == {"drop": 1}

    emu.chaos(4, rate_5xx=1.0, after_processing_share=1.0, statuses=[500])
    with pytest.raises(ApplicationError):
        resend.Batch.send([email(to="a@example.com"), email(to="b@example.com")], {"idempotency_key": "batch-1"})
    assert [m["to"] for m in emu.sent[1:]] == [["a@example.com"], ["b@example.com"]]


def test_random_faults_spare_requests_the_emulator_refuses_anyway(emu: ResendEmulator) -> None:
    chaos = emu.chaos(1, rate_429=1.0)
    resend.api_key = "re_wrong"
    with pytest.raises(InvalidApiKeyError):
        resend.Emails.send(email())
    resend.api_key = emu.api_key
    status, body = raw_post(emu, "/nope", {"Authorization": f"Bearer {emu.api_key}", "User-Agent": "t"}, {})
    assert (status, body["name"]) == (404, "not_found")
    with pytest.raises(ResendError) as exc:
        resend.Emails.send(email(), {"idempotency_key": "k" * 300})
    assert exc.value.error_type == "invalid_idempotency_key"
    assert chaos is not None and chaos.applied == {} and chaos.drawn == 0

    rate_sets: list[dict[str, Any]] = [{"rate_drop": 1.0}, {"rate_5xx": 1.0, "after_processing_share": 1.0}]
    for rates in rate_sets:
        late = emu.chaos(2, **rates)
        with pytest.raises(ValidationError):  # processed and refused: the client sees the real error
            resend.Emails.send(email(to="not-an-address"), {"idempotency_key": "bad"})
        assert late is not None and late.applied == {} and late.drawn == 1
    assert emu.sent == []


# ----------------------------------------------------------------------------- hooks and counts


def until(condition: Any, timeout: float = 5.0) -> None:
    """Wait for something the server's thread does after the client already has its answer."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


def test_request_hooks_fire_received_then_answered_with_the_index(emu: ResendEmulator) -> None:
    events: list[tuple[str, int, str, str, int]] = []
    emu.on_request = lambda event, index, method, path: events.append((event, index, method, path, len(emu.sent)))
    resend.Emails.send(email())
    until(lambda: len(events) == 2)  # "answered" comes once the reply is flushed: the client may be faster
    emu.drop_connection_after_accept()
    with pytest.raises(ResendError):
        resend.Batch.send([email()])
    until(lambda: len(events) == 4)
    raw_post(emu, "/nope", {"Authorization": f"Bearer {emu.api_key}", "User-Agent": "t"}, {})
    until(lambda: len(events) == 6)
    assert events == [
        ("received", 1, "POST", "/emails", 0),  # before processing: nothing sent yet
        ("answered", 1, "POST", "/emails", 1),
        ("received", 2, "POST", "/emails/batch", 1),
        ("answered", 2, "POST", "/emails/batch", 2),  # dropped: still "answered", once the socket is closed
        ("received", 3, "POST", "/nope", 2),
        ("answered", 3, "POST", "/nope", 2),
    ]
    assert emu.received_count == 3
    emu.on_request = None
    resend.Emails.send(email())
    assert len(events) == 6 and emu.received_count == 4


def test_a_hook_can_hold_one_request_in_flight_while_others_are_served(emu: ResendEmulator) -> None:
    arrived, release = threading.Event(), threading.Event()

    def hold_first(event: str, index: int, method: str, path: str) -> None:
        if (event, index) == ("received", 1):
            arrived.set()
            release.wait(5)

    emu.on_request = hold_first
    results: list[Any] = []
    worker = threading.Thread(target=lambda: results.append(resend.Emails.send(email(to="first@example.com"))))
    worker.start()
    try:
        assert arrived.wait(5)
        resend.Emails.send(email(to="second@example.com"))
        assert [m["to"] for m in emu.sent] == [["second@example.com"]]
    finally:
        release.set()
        worker.join(timeout=5)
    assert [m["to"][0] for m in emu.sent] == ["second@example.com", "first@example.com"]
    assert results[0]["id"] == emu.sent[1]["id"]


def test_a_failing_hook_is_reported_and_the_requests_still_answered(
    emu: ResendEmulator, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken(event: str, index: int, method: str, path: str) -> None:
        raise RuntimeError(f"hook bug on {event}")

    emu.on_request = broken
    resend.Emails.send(email())
    resend.Emails.send(email())
    assert len(emu.sent) == 2
    err: list[str] = []

    def reported() -> bool:
        err.append(capsys.readouterr().err)
        return "on_request hook failed on answered #2" in "".join(err)

    until(reported)
    assert "on_request hook failed on received #1 POST /emails" in "".join(err)
    assert "RuntimeError: hook bug on answered" in "".join(err)


def test_deliveries_count_by_recipient_and_tags(emu: ResendEmulator) -> None:
    def tags(step: str) -> list[dict[str, str]]:
        return [{"name": "sequence", "value": "lead"}, {"name": "step", "value": step}]

    resend.Emails.send(email(to="Ada <ADA@example.com>", tags=tags("1")))
    resend.Batch.send([email(to="ada@example.com", tags=tags("2")), email(to="bob@example.org", tags=tags("1"))])
    resend.Emails.send(email(to="ada@example.com", cc=["carl@example.net"], tags=tags("2")))
    assert emu.delivered_by_recipient() == {"ada@example.com": 3, "bob@example.org": 1, "carl@example.net": 1}
    assert emu.deliveries("step") == {
        ("ada@example.com", "1"): 1,
        ("ada@example.com", "2"): 2,
        ("bob@example.org", "1"): 1,
    }
    assert emu.deliveries("sequence", "missing")[("bob@example.org", "lead", "")] == 1
