"""The web routes over real HTTP on 127.0.0.1, the CGI script as a subprocess, and the shell-out contract."""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
from conftest import SECRET, Cli, cgi_request, clean_environ, replace_once, store_env

from xmas_cli import engine as core
from xmas_cli.backends import engine_from_config
from xmas_cli.core.model import Contact, ScheduledEmail
from xmas_cli.core.tokens import make_token
from xmas_cli.engine import Engine
from xmas_cli.web import KESTRA_PREFIX, MAX_BODY
from xmas_cli.web.server import RunningServer, start

pytestmark = pytest.mark.every_store  # the routes work the same on SQLite and on PostgreSQL

NOW = "2025-12-01T10:31:00Z"
KEY = "kestra-key-7c1f0e9b2d"
API_TOKEN = "api-token-5d2a81c4f9"
JSON_TYPE = "application/json; charset=utf-8"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
# The website integration guide's example bodies, exactly, by handler.
SEEDS: dict[str, dict[str, Any]] = {
    "signup-handler": {"email": "customer@example.com", "first_name": "Sarah", "business_name": "Sarah's Salon"},
    "assessment-handler": {
        "email": "customer@example.com",
        "first_name": "Sarah",
        "business_name": "Sarah's Salon",
        "red_systems": 2,
        "orange_systems": 1,
        "yellow_systems": 2,
        "green_systems": 3,
        "weakest_system_1": "GPS",
        "weakest_system_2": "Money",
        "revenue_leak_total": 14700,
        "email_1_sent_at": "2025-12-01T10:30:00Z",
        "email_1_status": "sent",
    },
    "noshow-recovery-handler": {
        "email": "customer@example.com",
        "first_name": "Sarah",
        "calendly_event_id": "evt_123abc",
        "scheduled_time": "2025-12-10T14:00:00Z",
    },
    "postcall-maybe-handler": {
        "email": "customer@example.com",
        "first_name": "Sarah",
        "business_name": "Sarah's Salon",
        "call_date": "2025-12-08T15:00:00Z",
        "interest_level": "medium",
    },
    "onboarding-handler": {
        "email": "customer@example.com",
        "first_name": "Sarah",
        "business_name": "Sarah's Salon",
        "payment_status": "paid",
        "payment_date": "2025-12-09T16:30:00Z",
        "package_type": "foundation",
    },
}


def assessment(email: str) -> dict[str, Any]:
    return {**SEEDS["assessment-handler"], "email": email}


@dataclass
class Answer:
    status: int
    headers: Message
    body: bytes
    elapsed: float

    @property
    def text(self) -> str:
        return self.body.decode()

    def json(self) -> Any:
        assert self.headers["Content-Type"] == JSON_TYPE, self.headers["Content-Type"]
        return json.loads(self.body)

    def error(self) -> dict[str, Any]:
        doc = self.json()
        assert doc["version"] == 1 and doc["ok"] is False, doc
        return dict(doc["error"])


class Web:
    """A client for the server under test; every answer is checked for leaks on the way."""

    def __init__(self, running: RunningServer, env: dict[str, str], project: Path) -> None:
        self.running, self.env, self.project = running, env, project

    def send(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        *,
        length: str | None = None,
        content_length: bool = True,
    ) -> Answer:
        """One request, sent piece by piece so tests control the framing (length=None: the body's real length;
        content_length=False: no Content-Length header of our own)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.running.port, timeout=10)
        started = time.monotonic()
        try:
            conn.putrequest(method, path, skip_accept_encoding=True)
            for name, value in (headers or {}).items():
                conn.putheader(name, value)
            if content_length and (length is not None or body is not None):
                conn.putheader("Content-Length", length if length is not None else str(len(body or b"")))
            conn.endheaders(body)
            resp = conn.getresponse()
            answer = Answer(resp.status, resp.msg, resp.read(), time.monotonic() - started)
        finally:
            conn.close()
        for leak in (
            b"Traceback",
            b'File "',
            KEY.encode(),
            API_TOKEN.encode(),
            SECRET.encode(),
            str(self.project).encode(),
        ):
            assert leak not in answer.body, f"{leak!r} in the answer to {method} {path}:\n{answer.text}"
        return answer

    def post_json(self, path: str, payload: Any, headers: dict[str, str] | None = None) -> Answer:
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        return self.send("POST", path, body, {"Content-Type": "application/json", **(headers or {})})

    def kestra(self, handler: str, payload: Any, key: str = KEY) -> Answer:
        return self.post_json(f"{KESTRA_PREFIX}{handler}/{key}", payload)

    def enroll(self, sequence: str, payload: Any, token: str | None = API_TOKEN) -> Answer:
        auth = {"Authorization": f"Bearer {token}"} if token is not None else {}
        return self.post_json(f"/enroll/{sequence}", payload, auth)

    def store(self) -> Engine:
        return engine_from_config(str(self.project / "campaign.toml"), NOW, self.env)

    def rows(self, email: str) -> list[ScheduledEmail]:
        engine = self.store()
        try:
            return engine.store.emails_for_contact(email)
        finally:
            engine.close()

    def contact(self, email: str) -> Contact | None:
        engine = self.store()
        try:
            return engine.store.get_contact(email)
        finally:
            engine.close()


@pytest.fixture
def web(project: Path) -> Iterator[Web]:
    env = {"XMAS_SECRET": SECRET, "XMAS_NOW": NOW, "XMAS_WEBHOOK_KEY": KEY, "XMAS_API_TOKEN": API_TOKEN, **store_env()}
    running = start(config=str(project / "campaign.toml"), env=env)  # env is read per request: tests edit it
    try:
        yield Web(running, env, project)
    finally:
        running.stop()


def dues(doc: dict[str, Any]) -> list[tuple[int, str, str | None, str]]:
    return [
        (r["step"], r["state"], r["due"] if r["state"] == "Scheduled" else r["sent_at"], r["sender"])
        for r in doc["scheduled"]
    ]


# -------------------------------------------------------------------------------------------- the Kestra routes


def test_kestra_handlers_take_the_seeds_payloads(web: Web) -> None:
    docs = {}
    for handler, payload in SEEDS.items():
        answer = web.kestra(handler, payload)
        assert answer.status == 200, answer.text
        docs[handler] = answer.json()
        assert docs[handler]["ok"] is True and docs[handler]["created"] is True
    assert [d["sequence"] for d in docs.values()] == ["signup", "assessment", "noshow", "postcall", "onboarding"]
    assert docs["signup-handler"]["scheduled"] == []
    assert docs["signup-handler"]["contact"]["business_name"] == "Sarah's Salon"

    # E1 was sent by the website at email_1_sent_at; E2-E5 follow it by 24, 72, 96 and 120 hours.
    assert dues(docs["assessment-handler"]) == [
        (1, "Sent by website", "2025-12-01T10:30:00Z", "website"),
        (2, "Scheduled", "2025-12-02T10:30:00Z", "xmas"),
        (3, "Scheduled", "2025-12-04T10:30:00Z", "xmas"),
        (4, "Scheduled", "2025-12-05T10:30:00Z", "xmas"),
        (5, "Scheduled", "2025-12-06T10:30:00Z", "xmas"),
    ]
    assert docs["assessment-handler"]["anchor_source"] == "email_1_sent_at"
    assert docs["assessment-handler"]["contact"]["segment"] == "CRITICAL"
    assert [r["due"] for r in docs["noshow-recovery-handler"]["scheduled"]] == [
        "2025-12-10T14:05:00Z",
        "2025-12-11T14:00:00Z",
        "2025-12-12T14:00:00Z",
    ]
    assert [r["due"] for r in docs["postcall-maybe-handler"]["scheduled"]] == [
        "2025-12-08T16:00:00Z",
        "2025-12-11T15:00:00Z",
        "2025-12-15T15:00:00Z",
    ]
    assert [r["due"] for r in docs["onboarding-handler"]["scheduled"]] == [
        "2025-12-09T17:30:00Z",
        "2025-12-10T16:30:00Z",
        "2025-12-12T16:30:00Z",
    ]
    # exit rules ran as in the CLI: each later stage cancelled the earlier one's pending emails
    assert {r["sequence"] for r in docs["postcall-maybe-handler"]["cancelled"]} == {"noshow"}
    assert {r["sequence"] for r in docs["onboarding-handler"]["cancelled"]} == {"postcall"}

    stored = {(r.sequence, r.step): r for r in web.rows("customer@example.com")}
    assert len(stored) == 5 + 3 + 3 + 3
    assert stored[("assessment", 1)].state.value == "Sent by website"
    assert stored[("onboarding", 3)].state.value == "Scheduled"


def test_each_handler_key_overrides_the_shared_key(web: Web, capsys: pytest.CaptureFixture[str]) -> None:
    web.env["XMAS_WEBHOOK_KEY_ASSESSMENT"] = "assessment-only-key-31b0"
    wrong = web.kestra("assessment-handler", assessment("ana@example.com"))
    assert wrong.status == 401
    assert wrong.error()["code"] == 2 and "XMAS_WEBHOOK_KEY_ASSESSMENT" in wrong.error()["fix"]
    assert web.rows("ana@example.com") == [] and web.contact("ana@example.com") is None
    assert web.kestra("assessment-handler", assessment("ana@example.com"), "assessment-only-key-31b0").status == 200
    assert web.kestra("signup-handler", SEEDS["signup-handler"]).status == 200  # the shared key still works here
    assert web.kestra("signup-handler", SEEDS["signup-handler"], KEY[:-1]).status == 401
    assert web.kestra("signup-handler", SEEDS["signup-handler"], "%C3%A9t%C3%A9").status == 401  # not ASCII
    # the access log names the route, never the key
    deadline, log = time.monotonic() + 3, ""
    while "signup-handler/*** " not in log and time.monotonic() < deadline:
        time.sleep(0.02)
        log += capsys.readouterr().err
    assert "signup-handler/*** " in log and KEY not in log and "assessment-only-key" not in log


def test_a_handler_without_a_key_does_not_exist(web: Web) -> None:
    assert web.kestra("signup-handler", SEEDS["signup-handler"], "").status == 404  # an empty key is no key
    del web.env["XMAS_WEBHOOK_KEY"]
    for handler, payload in SEEDS.items():
        answer = web.kestra(handler, payload)
        assert answer.status == 404 and answer.error()["code"] == 2
    web.env["XMAS_WEBHOOK_KEY"] = ""
    assert web.kestra("signup-handler", SEEDS["signup-handler"], "").status == 404
    web.env["XMAS_WEBHOOK_KEY_SIGNUP"] = "signup-only-key-88aa"
    assert web.kestra("signup-handler", SEEDS["signup-handler"], "signup-only-key-88aa").status == 200
    assert web.kestra("assessment-handler", SEEDS["assessment-handler"], "signup-only-key-88aa").status == 404
    assert web.kestra("other-handler", SEEDS["signup-handler"], "signup-only-key-88aa").status == 404


# ------------------------------------------------------------------------------------------ /enroll/{sequence}


def test_enroll_route_needs_the_bearer_token(web: Web) -> None:
    lead = {"email": "lea@example.com", "first_name": "Lea"}
    for token in (None, "", "wrong-token", API_TOKEN + "x"):
        answer = web.enroll("lead-nurture", lead, token)
        assert answer.status == 401, token
        assert answer.headers["WWW-Authenticate"].startswith("Bearer")
        assert answer.error()["code"] == 2
    basic = web.post_json("/enroll/lead-nurture", lead, {"Authorization": f"Basic {API_TOKEN}"})
    assert basic.status == 401
    assert web.rows("lea@example.com") == []

    answer = web.enroll("lead-nurture", lead)
    assert answer.status == 200, answer.text
    doc = answer.json()
    assert doc["sequence"] == "lead-nurture" and [r["step"] for r in doc["scheduled"]] == [1, 2, 3, 4, 5]
    assert len(web.rows("lea@example.com")) == 5

    unknown = web.enroll("christmas", lead)
    assert unknown.status == 400 and "unknown sequence" in unknown.error()["message"]
    del web.env["XMAS_API_TOKEN"]
    assert web.enroll("lead-nurture", lead).status == 404  # no token configured: the route is off


# ------------------------------------------------------------------------------------------------------ 400s


def test_bad_payload_is_400_with_one_entry_per_field_and_writes_nothing(web: Web) -> None:
    bad = {**assessment("not-an-address"), "red_systems": 9}
    del bad["business_name"]
    answer = web.kestra("assessment-handler", bad)
    assert answer.status == 400
    error = answer.error()
    assert error["code"] == 2
    assert sorted(f["field"] for f in error["fields"]) == ["business_name", "email", "red_systems"]
    assert {f["field"]: f["problem"] for f in error["fields"]}["business_name"] == "is required"
    engine = web.store()
    try:
        assert list(engine.store.all_emails()) == [] and engine.store.get_contact("not-an-address") is None
    finally:
        engine.close()


@pytest.mark.parametrize(
    ("body", "field", "problem"),
    [
        (b'{"email": "ana@example.com",', "(body)", "not valid JSON"),
        (b"", "(body)", "not valid JSON"),
        (b'{"email": "ana@example.com", "first_name": "Ana", "score": NaN}', "(body)", "NaN"),
        (b"\xff\xfe{}", "(body)", "not UTF-8"),
        (b'{"email": "ana@example.com", "first_name": "An\xe9"}', "(body)", "not UTF-8"),
        (b'["ana@example.com"]', "(payload)", "got list"),
        (b'"ana@example.com"', "(payload)", "got str"),
    ],
)
def test_a_body_that_is_not_a_json_object_is_400(web: Web, body: bytes, field: str, problem: str) -> None:
    answer = web.enroll("lead-nurture", body)
    assert answer.status == 400
    [entry] = answer.error()["fields"]
    assert entry["field"] == field and problem in entry["problem"]


def test_a_time_out_of_range_is_400_and_writes_nothing(web: Web) -> None:
    """Before: a 500 after the contact was written (the schedule overflowed past year 9999)."""
    for when in ("9999-12-31T23:59:00Z", "0001-01-01T00:00:00Z"):
        bad = {**SEEDS["noshow-recovery-handler"], "scheduled_time": when}
        answer = web.kestra("noshow-recovery-handler", bad)
        assert answer.status == 400, answer.text
        assert answer.error()["fields"] == [
            {
                "field": "scheduled_time",
                "problem": (
                    "is out of range: send a time from 2000-01-01T00:00:00Z up to (not including) 2100-01-01T00:00:00Z "
                    f"(got '{when}')"
                ),
            }
        ]
    assert web.contact("customer@example.com") is None and web.rows("customer@example.com") == []


def test_bad_json_gets_the_same_answer_from_the_cli_and_the_route(web: Web, project: Path) -> None:
    for body in (
        '{"email": "ana@example.com", "first_name": "Ana", "score": NaN}',
        "[" * 20000 + "]" * 20000,
        '{"email": "ana@example.com", "first_name": "Ana", "score": 1e999}',
    ):
        answer = web.enroll("lead-nurture", body.encode())
        cli = shell_out(project, "enroll", "lead-nurture", "--payload", "-", "--json", stdin=body)
        assert answer.status == 400 and cli.returncode == 2, cli.stderr
        assert "Traceback" not in cli.stderr
        http_error, cli_error = answer.error(), json.loads(cli.stdout)["error"]
        assert http_error["fields"][0]["field"] == "(body)" and cli_error["fields"][0]["field"] == "--payload"
        assert http_error["fields"][0]["problem"] == cli_error["fields"][0]["problem"]
        assert http_error["fix"] == cli_error["fix"]
    assert web.contact("ana@example.com") is None


# ------------------------------------------------------------------------------------ framing: 404 405 411 413 415


def test_unknown_paths_are_404_json(web: Web) -> None:
    for method, path in (
        ("GET", "/"),
        ("GET", "/nope"),
        ("POST", "/enroll/"),
        ("POST", "/enroll/a/b"),
        ("GET", "/healthz/"),
        ("POST", f"{KESTRA_PREFIX}signup-handler/{KEY}/extra"),
    ):
        answer = web.send(method, path)
        assert answer.status == 404, path
        assert answer.error()["code"] == 2


def test_a_wrong_method_is_405_with_allow(web: Web) -> None:
    for method, path, allow in (
        ("GET", f"{KESTRA_PREFIX}assessment-handler/{KEY}", "POST"),
        ("GET", "/enroll/assessment", "POST"),
        ("DELETE", "/healthz", "GET"),
        ("GET", "/webhooks/resend", "POST"),
    ):
        answer = web.send(method, path)
        assert (answer.status, answer.headers["Allow"]) == (405, allow), path
        assert answer.error()["code"] == 2
    page = web.send("PUT", "/unsubscribe?t=x")
    assert (page.status, page.headers["Allow"]) == (405, "GET, POST")
    assert page.headers["Content-Type"] == "text/html; charset=utf-8"


def test_a_post_without_content_length_is_411(web: Web) -> None:
    path = f"{KESTRA_PREFIX}signup-handler/{KEY}"
    answer = web.send("POST", path, None, {"Content-Type": "application/json"})
    assert answer.status == 411 and "Content-Length" in answer.error()["fix"]
    chunk = json.dumps(SEEDS["signup-handler"]).encode()
    chunked = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n0\r\n\r\n"
    te = {"Content-Type": "application/json", "Transfer-Encoding": "chunked"}
    answer = web.send("POST", path, chunked, te, content_length=False)
    assert answer.status == 411 and "Content-Length" in answer.error()["fix"]
    assert web.contact("customer@example.com") is None


def test_a_body_framed_two_ways_is_400_before_it_is_read(web: Web) -> None:
    """Two Content-Length headers (equal or not), or Content-Length with Transfer-Encoding: what a proxy in front
    made of the body is unknown (request smuggling), so the server refuses it from the headers alone."""
    path = f"{KESTRA_PREFIX}signup-handler/{KEY}"
    body = json.dumps(SEEDS["signup-handler"]).encode()
    cases = [
        (
            {"Content-Length": str(len(body))},
            "the request has 2 Content-Length headers",
            "send exactly one Content-Length header",
        ),
        ({"Content-Length": "5"}, "the request has 2 Content-Length headers", "send exactly one Content-Length header"),
        (
            {"Transfer-Encoding": "chunked"},
            "the request has both Transfer-Encoding and Content-Length",
            "send the body with a Content-Length header only",
        ),
    ]
    for extra, message, fix in cases:
        answer = web.send("POST", path, body, {"Content-Type": "application/json", **extra})
        assert answer.status == 400, extra
        assert answer.headers["Connection"] == "close"
        assert answer.error() == {"code": 2, "message": message, "fix": fix, "fields": []}
    # 10 MB announced twice and 1 KiB sent: the answer comes from the headers, without waiting for a body
    slow = web.send(
        "POST",
        path,
        b"{" + b" " * 1023,
        {"Content-Type": "application/json", "Content-Length": "10485760"},
        length="10485760",
    )
    assert slow.status == 400 and slow.elapsed < 2.0
    assert web.contact("customer@example.com") is None
    assert web.send("GET", "/healthz").status == 200


def test_a_body_over_64_kib_is_413_decided_from_the_header(web: Web) -> None:
    # 10 MB announced, 1 KiB sent: the answer must come without waiting for the rest
    path = f"{KESTRA_PREFIX}assessment-handler/{KEY}"
    answer = web.send("POST", path, b"{" + b" " * 1023, {"Content-Type": "application/json"}, length="10485760")
    assert answer.status == 413 and answer.elapsed < 2.0
    assert str(MAX_BODY) in answer.error()["message"]
    # the limit is exact: 64 KiB is read, one byte more is refused
    body = json.dumps(assessment("big@example.com")).encode()
    at_limit = body + b" " * (MAX_BODY - len(body))
    assert web.post_json(path, at_limit).status == 200
    assert web.post_json(path, at_limit + b" ").status == 413
    assert web.send("GET", "/healthz").status == 200  # and the server is still fine


def test_a_body_that_is_not_json_is_415(web: Web) -> None:
    body = json.dumps(SEEDS["signup-handler"]).encode()
    for headers in ({"Content-Type": "text/plain"}, {"Content-Type": "application/x-www-form-urlencoded"}, {}):
        for path in (f"{KESTRA_PREFIX}signup-handler/{KEY}", "/enroll/signup"):
            answer = web.send("POST", path, body, {**headers, "Authorization": f"Bearer {API_TOKEN}"})
            assert answer.status == 415, (path, headers)
            assert answer.error()["code"] == 2
    charset = web.send(
        "POST",
        "/enroll/signup",
        body,
        {"Content-Type": "application/json; charset=UTF-8", "Authorization": f"Bearer {API_TOKEN}"},
    )
    assert charset.status == 200


# ------------------------------------------------------------------------------------------------ 5xx answers


def block_the_store(project: Path) -> Path:
    """Point [store] path below an existing *file*: the store cannot be opened, even by root."""
    config = project / "campaign.toml"
    config.write_text(replace_once(config.read_text(), 'path = ".xmas/xmas.db"', 'path = "blocker/xmas.db"'))
    blocker = project / "blocker"
    blocker.write_text("a file where the store's folder should be\n")
    return blocker


def test_an_unreachable_store_is_503_and_the_retry_writes_one_set_of_rows(web: Web, project: Path) -> None:
    if real := web.env.get("XMAS_DATABASE_URL"):  # PostgreSQL: the server stops answering, then answers again
        web.env["XMAS_DATABASE_URL"] = "postgresql://postgres@127.0.0.1:1/test"

        def unblock() -> None:
            web.env["XMAS_DATABASE_URL"] = real

    else:  # SQLite: the file cannot be opened
        unblock = block_the_store(project).unlink
    path = f"{KESTRA_PREFIX}assessment-handler/{KEY}"
    for answer in (web.post_json(path, assessment("ana@example.com")), web.send("GET", "/healthz")):
        assert answer.status == 503 and answer.headers["Retry-After"] == "5"
        assert answer.error()["code"] == 4
        assert "blocker" not in answer.text
    token = make_token(SECRET, "ana@example.com")
    page = web.send("POST", f"/unsubscribe?t={token}", b"List-Unsubscribe=One-Click", FORM)
    assert page.status == 503 and page.headers["Retry-After"] == "5" and "ana@" not in page.text

    unblock()  # the store is back: the website retries the same request, twice
    first = web.post_json(path, assessment("ana@example.com"))
    again = web.post_json(path, assessment("ana@example.com"))
    assert (first.status, again.status) == (200, 200)
    assert (first.json()["created"], again.json()["created"]) == (True, False)
    assert [r["id"] for r in first.json()["scheduled"]] == [r["id"] for r in again.json()["scheduled"]]
    assert len(web.rows("ana@example.com")) == 5
    assert web.send("GET", "/healthz").json() == {"ok": True}


def test_a_config_error_is_500_with_a_generic_message(
    web: Web, project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (project / "campaign.toml").write_text("[campaign\n")
    answer = web.kestra("signup-handler", SEEDS["signup-handler"])
    assert answer.status == 500
    error = answer.error()
    assert error["code"] == 3 and "campaign.toml" not in answer.text and "TOML" not in answer.text
    assert "not valid TOML" in capsys.readouterr().err  # the detail is in the server's log


def test_a_missing_xmas_secret_is_500_on_the_unsubscribe_page(web: Web, capsys: pytest.CaptureFixture[str]) -> None:
    del web.env["XMAS_SECRET"]
    page = web.send("GET", f"/unsubscribe?t={make_token(SECRET, 'ana@example.com')}")
    assert page.status == 500 and page.headers["Content-Type"] == "text/html; charset=utf-8"
    assert "XMAS_SECRET" not in page.text and "ana@" not in page.text
    assert "XMAS_SECRET is not set" in capsys.readouterr().err


def test_an_unexpected_exception_is_500_and_its_traceback_goes_only_to_the_log(
    web: Web, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("kaboom: internal detail")

    monkeypatch.setattr(core, "enroll", broken)
    answer = web.kestra("signup-handler", SEEDS["signup-handler"])  # Web.send checks: no traceback in the body
    assert answer.status == 500 and answer.error()["code"] == 1
    assert "kaboom" not in answer.text
    log = capsys.readouterr().err
    assert "Traceback" in log and "RuntimeError: kaboom: internal detail" in log


# ------------------------------------------------------------------------------------------------ concurrency


def test_concurrent_enrollments_of_one_contact_write_one_set_of_rows(web: Web) -> None:
    barrier = threading.Barrier(8)
    answers: list[Answer] = []

    def post() -> None:
        barrier.wait()
        answers.append(web.kestra("assessment-handler", assessment("ana@example.com")))

    threads = [threading.Thread(target=post) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert [a.status for a in answers] == [200] * 8, [a.text for a in answers if a.status != 200]
    assert sorted(a.json()["created"] for a in answers) == [False] * 7 + [True]
    engine = web.store()
    try:
        rows = engine.store.emails_for_enrollment("assessment:ana@example.com")
        assert [r.step for r in rows] == [1, 2, 3, 4, 5]
        assert len(engine.store.emails_for_contact("ana@example.com")) == 5
    finally:
        engine.close()


# ------------------------------------------------------------------------------------------------ unsubscribe


def test_unsubscribe_get_confirms_post_unsubscribes_and_tick_sends_nothing(web: Web, xmas: Cli, project: Path) -> None:
    for email in ("ana@example.com", "bea@example.com"):
        assert web.kestra("assessment-handler", assessment(email)).status == 200
    token = make_token(SECRET, "ana@example.com")

    page = web.send("GET", f"/unsubscribe?t={token}")
    assert page.status == 200 and page.headers["Content-Type"] == "text/html; charset=utf-8"
    assert '<form method="post">' in page.text and f'name="t" value="{token}"' in page.text
    assert "BusinessX Canada" in page.text and "ana@example.com" not in page.text
    contact = web.contact("ana@example.com")
    assert contact is not None and not contact.suppressed  # a GET changes nothing
    assert [r.state.value for r in web.rows("ana@example.com")].count("Scheduled") == 4

    done = web.send("POST", f"/unsubscribe?t={token}", b"List-Unsubscribe=One-Click", FORM)
    assert done.status == 200 and "unsubscribed" in done.text
    contact = web.contact("ana@example.com")
    assert contact is not None and contact.suppressed
    assert (contact.suppressed_reason or "").startswith("unsubscribed (one-click)")
    assert [r.state.value for r in web.rows("ana@example.com")] == ["Sent by website"] + ["Cancelled"] * 4
    again = web.send("POST", f"/unsubscribe?t={token}", b"List-Unsubscribe=One-Click", FORM)
    assert again.status == 200  # mail clients retry: still fine

    report = xmas.json("tick", "--now", "2025-12-02T11:00:00Z")
    assert [(o["email"], o["step"], o["action"]) for o in report["outcomes"]] == [("bea@example.com", 2, "sent")]
    outbox = "".join(p.read_text(errors="replace") for p in (project / ".xmas" / "outbox").rglob("*.eml"))
    assert "bea@example.com" in outbox and "ana@example.com" not in outbox


def test_the_pages_form_posts_the_token_in_its_body(web: Web) -> None:
    token = make_token(SECRET, "cy@example.com")
    done = web.send("POST", "/unsubscribe", f"t={token}".encode(), FORM)
    assert done.status == 200
    contact = web.contact("cy@example.com")  # an address we never enrolled is suppressed all the same
    assert contact is not None and contact.suppressed
    assert (contact.suppressed_reason or "").startswith("unsubscribed (web page)")


def test_a_tampered_token_is_400_and_leaks_nothing(web: Web) -> None:
    assert web.kestra("assessment-handler", assessment("ana@example.com")).status == 200
    token = make_token(SECRET, "ana@example.com")
    address, _, mac = token.partition(".")
    forged = make_token(SECRET + "-not-ours", "ana@example.com")
    other = make_token(SECRET, "bea@example.com").partition(".")[2]
    for bad in (f"{address}.{mac[:-1]}{'A' if mac[-1] != 'A' else 'B'}", forged, f"{address}.{other}", address, ""):
        for method in ("GET", "POST"):
            body = b"List-Unsubscribe=One-Click" if method == "POST" else None
            page = web.send(method, f"/unsubscribe?t={bad}", body, FORM)
            assert page.status == 400 and page.headers["Content-Type"] == "text/html; charset=utf-8"
            assert "ana@" not in page.text and "example.com" not in page.text
            assert (not bad or bad not in page.text) and "token" not in page.text.lower()
    contact = web.contact("ana@example.com")
    assert contact is not None and not contact.suppressed


def test_healthz_reads_the_store(web: Web) -> None:
    answer = web.send("GET", "/healthz")
    assert answer.status == 200 and answer.json() == {"ok": True}


# --------------------------------------------------------------------------------------------- Resend webhooks


def test_resend_webhook_route(web: Web) -> None:
    from resend_emulator import new_webhook_secret, sign_webhook

    assert web.kestra("assessment-handler", assessment("ana@example.com")).status == 200
    payload = json.dumps(
        {
            "type": "email.bounced",
            "created_at": "2025-12-01T11:00:00.000Z",
            "data": {
                "email_id": "4ef9a417-02e9-4d39-ad75-9611e0fcc33c",
                "to": ["ana@example.com"],
                "subject": "Hi",
                "bounce": {"type": "Permanent", "message": "No such user"},
            },
        }
    )
    secret = new_webhook_secret()
    signed = {"Content-Type": "application/json", **sign_webhook(secret, payload)}

    missing = web.send("POST", "/webhooks/resend", payload.encode(), signed)
    assert missing.status == 500 and missing.error()["code"] == 3  # RESEND_WEBHOOK_SECRET is not set
    web.env["RESEND_WEBHOOK_SECRET"] = secret
    forged = {**signed, **sign_webhook(new_webhook_secret(), payload)}
    answer = web.send("POST", "/webhooks/resend", payload.encode(), forged)
    assert answer.status == 401 and answer.error()["code"] == 2
    other_body = web.send("POST", "/webhooks/resend", b'{"type": "email.bounced"}', signed)
    assert other_body.status == 401  # not the body that was signed
    contact = web.contact("ana@example.com")
    assert contact is not None and not contact.suppressed

    answer = web.send("POST", "/webhooks/resend", payload.encode(), signed)
    assert answer.status == 200
    assert answer.json()["action"] == "suppressed" and answer.json()["emails"] == ["ana@example.com"]
    contact = web.contact("ana@example.com")
    assert contact is not None and contact.suppressed
    assert web.send("POST", "/webhooks/resend", b"", {"Content-Type": "application/json"}).status == 401


# ----------------------------------------------------------------------------------------------------- CGI


def run_cgi(project: Path, method: str, path: str, body: bytes) -> tuple[str, dict[str, str], Any]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        **cgi_request(project, method, path, body),
        "XMAS_WEBHOOK_KEY": KEY,
        "XMAS_NOW": NOW,
        **store_env(),
    }
    done = subprocess.run(
        [sys.executable, "-m", "xmas_cli.web.cgi"],
        input=body,
        env=env,
        cwd=project,
        capture_output=True,
        timeout=30,
        check=True,
    )
    head, _, payload = done.stdout.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines)
    return headers.pop("Status"), headers, json.loads(payload)


def test_the_cgi_script_answers_like_the_server(project: Path) -> None:
    body = json.dumps(assessment("ana@example.com")).encode()
    status, headers, doc = run_cgi(project, "POST", f"{KESTRA_PREFIX}assessment-handler/{KEY}", body)
    assert status == "200 OK" and headers["Content-Type"] == JSON_TYPE
    assert doc["enrollment_key"] == "assessment:ana@example.com" and len(doc["scheduled"]) == 5
    assert dues(doc)[1] == (2, "Scheduled", "2025-12-02T10:30:00Z", "xmas")

    status, headers, doc = run_cgi(project, "POST", f"{KESTRA_PREFIX}assessment-handler/not-the-key", body)
    assert status == "401 Unauthorized" and headers["Content-Type"] == JSON_TYPE
    assert doc["ok"] is False and doc["error"]["code"] == 2


# ------------------------------------------------------------------------------------ the shell-out contract


def shell_out(project: Path, *args: str, stdin: str) -> subprocess.CompletedProcess[str]:
    """`xmas ARGS` as a website would run it: a real process, JSON on stdin and stdout."""
    env = clean_environ({"XMAS_SECRET": SECRET, "XMAS_NOW": NOW, **store_env()})
    return subprocess.run(
        [sys.executable, "-c", "from xmas_cli.commands import main; main()", *args],
        input=stdin,
        env=env,
        cwd=project,
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_the_cli_prints_the_document_the_route_answers(web: Web, project: Path) -> None:
    http_doc = web.kestra("assessment-handler", assessment("ana@example.com")).json()
    cli = shell_out(
        project, "enroll", "assessment", "--payload", "-", "--json", stdin=json.dumps(assessment("bea@example.com"))
    )
    assert cli.returncode == 0, cli.stderr
    cli_doc = json.loads(cli.stdout)
    # only the address differs, and with it the enrollment key and the row ids
    assert json.loads(json.dumps(cli_doc).replace("bea@example.com", "ana@example.com")) == http_doc
    assert cli_doc["enrollment_key"] == "assessment:bea@example.com"

    bad = {**assessment("not-an-address"), "red_systems": "two"}
    http_error = web.kestra("assessment-handler", bad)
    cli = shell_out(project, "enroll", "assessment", "--payload", "-", "--json", stdin=json.dumps(bad))
    assert cli.returncode == 2 and http_error.status == 400
    assert json.loads(cli.stdout) == http_error.json()
    assert len(http_error.error()["fields"]) == 2
