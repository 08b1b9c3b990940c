"""Poison inputs: every bad payload is refused cleanly by both ways in, and nothing of it is ever written.

Each case goes through `xmas enroll SEQUENCE --payload - --json` (in-process) and through POST /enroll/SEQUENCE to a
real server on 127.0.0.1. Both must refuse it with the same JSON error document (CLI: exit 2, `xmas: error: ...` on
stderr, no traceback; HTTP: 4xx), naming the bad field, and leave the SQLite store's contacts and emails exactly as
they were. Malformed HTTP framing (two Content-Lengths, a short body...) has no CLI equivalent and is sent over raw
sockets. The last test sends all of it into one project, then enrolls a good contact and ticks: its email goes out.
"""

from __future__ import annotations

import json
import socket
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import SECRET, Cli

from xmas_cli.commands import app
from xmas_cli.web.server import RunningServer, start

pytestmark = pytest.mark.chaos

NOW = "2026-12-01T10:30:00Z"
API_TOKEN = "poison-api-token-3f9a61"
JSON_TYPE = "application/json"

GOOD: dict[str, dict[str, Any]] = {
    "signup": {"email": "pat@example.com", "first_name": "Pat", "business_name": "Pat's Salon"},
    "lead-nurture": {"email": "pat@example.com", "first_name": "Pat"},
    "assessment": {
        "email": "pat@example.com",
        "first_name": "Pat",
        "business_name": "Pat's Salon",
        "red_systems": 2,
        "orange_systems": 1,
        "yellow_systems": 2,
        "green_systems": 3,
        "weakest_system_1": "GPS",
        "revenue_leak_total": 14700,
        "overall_score": 40,
        "email_1_sent_at": "2026-12-01T10:00:00Z",
    },
    "noshow": {
        "email": "pat@example.com",
        "first_name": "Pat",
        "calendly_event_id": "evt_1",
        "scheduled_time": "2026-12-10T14:00:00Z",
        "business_name": "Pat's Salon",
    },
    "postcall": {
        "email": "pat@example.com",
        "first_name": "Pat",
        "call_date": "2026-12-08T15:00:00Z",
        "business_name": "Pat's Salon",
        "objection": "price",
    },
    "onboarding": {
        "email": "pat@example.com",
        "first_name": "Pat",
        "business_name": "Pat's Salon",
        "payment_date": "2026-12-09T16:30:00Z",
        "diagnostic_call_date": "2026-12-12T16:30:00Z",
        "portal_url": "https://portal.example.com/pat",
    },
}
TIME_FIELDS = [
    ("assessment", "email_1_sent_at"),
    ("noshow", "scheduled_time"),
    ("postcall", "call_date"),
    ("onboarding", "payment_date"),
    ("onboarding", "diagnostic_call_date"),
]
RANGE = "is out of range: send a time from 2000-01-01T00:00:00Z up to (not including) 2100-01-01T00:00:00Z"
BAD_KEY = "is not a usable field name"
BODY = "(body)"  # a problem of the JSON text itself: `(body)` over HTTP, `--payload` on the command line


@dataclass(frozen=True)
class Case:
    name: str
    sequence: str
    body: bytes
    field: str | None  # the field the error names; None: it names none
    problem: str  # a part of the problem line (or of the message, when no field is named)
    status: int = 400


def payload(sequence: str, **changes: Any) -> bytes:
    return json.dumps({**GOOD[sequence], **changes}).encode()


def with_raw(sequence: str, key: str, raw_json: str) -> bytes:
    """A payload with one value written as raw JSON text (NaN, deep nesting, a raw control byte...)."""
    text = json.dumps({**GOOD[sequence], key: "@@"})
    return text.replace('"@@"', raw_json).encode("utf-8", "surrogatepass")


def cases() -> Iterator[Case]:
    def case(name: str, sequence: str, body: bytes, field: str | None, problem: str, status: int = 400) -> Case:
        return Case(name, sequence, body, field, problem, status)

    for sequence, field in TIME_FIELDS:
        for label, value, problem in [
            ("zero-time", "0001-01-01T00:00:00Z", RANGE),
            ("year-9999", "9999-12-31T23:59:00Z", RANGE),
            ("before-2000", "1999-12-31T23:59:59+00:00", RANGE),
            ("naive", "2026-12-10T14:00:00", "needs a UTC offset"),
            ("epoch", 1765375200, "is a number, not a time"),
        ]:
            yield case(f"{field}-{label}", sequence, payload(sequence, **{field: value}), field, problem)
    yield case(
        "epoch-string",
        "noshow",
        payload("noshow", scheduled_time="1765375200"),
        "scheduled_time",
        "is a number, not a time",
    )
    yield case(
        "epoch-float", "postcall", payload("postcall", call_date=1765375200.5), "call_date", "is a number, not a time"
    )
    yield case(
        "zero-time-offset",
        "noshow",
        payload("noshow", scheduled_time="0001-01-01T00:00:00+01:00"),
        "scheduled_time",
        RANGE,
    )
    yield case(
        "date-words", "postcall", payload("postcall", call_date="next tuesday"), "call_date", "is not an ISO 8601 time"
    )

    # JSON that is not JSON, or not bounded
    for constant in ("NaN", "Infinity", "-Infinity"):
        yield case(
            f"json-{constant}",
            "lead-nurture",
            with_raw("lead-nurture", "score", constant),
            BODY,
            f"{constant} is not a JSON number",
        )
    yield case("json-1e999", "lead-nurture", with_raw("lead-nurture", "score", "1e999"), BODY, "out of range")
    yield case(
        "json-long-number",
        "assessment",
        with_raw("assessment", "revenue_leak_total", "1" * 5000),
        BODY,
        "a number longer than 40 characters",
    )
    yield case("deep-arrays", "lead-nurture", b"[" * 5000 + b"]" * 5000, BODY, "nested deeper than 32 levels")
    yield case(
        "deep-objects", "lead-nurture", b'{"a":' * 5000 + b"1" + b"}" * 5000, BODY, "nested deeper than 32 levels"
    )
    yield case(
        "deep-in-a-field",
        "lead-nurture",
        with_raw("lead-nurture", "utm", "[" * 40 + "]" * 40),
        BODY,
        "nested deeper than 32 levels",
    )
    yield case(
        "oversized",
        "assessment",
        payload("assessment", note="x" * 70_000),
        BODY,
        "larger than the limit of 65536 bytes",
        413,
    )
    yield case("syntax", "lead-nurture", b'{"email": "pat@example.com",', BODY, "not valid JSON")
    yield case("empty", "lead-nurture", b"", BODY, "Expecting value")
    yield case("two-values", "lead-nurture", payload("lead-nurture") + b" {}", BODY, "Extra data")
    yield case(
        "duplicate-key",
        "lead-nurture",
        b'{"email": "pat@example.com", "first_name": "P", "email": "x@y.z"}',
        BODY,
        "appears twice",
    )
    yield case(
        "latin-1",
        "lead-nurture",
        '{"email": "pat@example.com", "first_name": "Pé"}'.encode("latin-1"),
        BODY,
        "not UTF-8 text",
    )
    yield case("utf-16", "lead-nurture", payload("lead-nurture").decode().encode("utf-16"), BODY, "not UTF-8 text")
    yield case("utf-8-bom", "lead-nurture", b"\xef\xbb\xbf" + payload("lead-nurture"), BODY, "BOM")
    yield case(
        "raw-control-byte",
        "lead-nurture",
        with_raw("lead-nurture", "first_name", '"Pat\x1b[2J"'),
        BODY,
        "Invalid control character",
    )

    # not an object
    for label, raw in (
        ("list", b'["pat@example.com"]'),
        ("string", b'"pat@example.com"'),
        ("number", b"42"),
        ("null", b"null"),
        ("true", b"true"),
    ):
        yield case(f"not-an-object-{label}", "signup", raw, "(payload)", "got ")

    # wrong types, bools and floats as integers
    yield case("first-name-number", "signup", payload("signup", first_name=42), "first_name", "valid string")
    yield case("email-list", "signup", payload("signup", email=["pat@example.com"]), "email", "valid string")
    yield case("business-name-null", "signup", payload("signup", business_name=None), "business_name", "valid string")
    yield case("count-text", "assessment", payload("assessment", red_systems="2"), "red_systems", "not text")
    yield case("count-bool", "assessment", payload("assessment", red_systems=True), "red_systems", "not a boolean")
    yield case(
        "leak-bool",
        "assessment",
        payload("assessment", revenue_leak_total=False),
        "revenue_leak_total",
        "not a boolean",
    )
    yield case("score-bool", "assessment", payload("assessment", overall_score=True), "overall_score", "not a boolean")
    yield case("count-float", "assessment", payload("assessment", green_systems=3.0), "green_systems", "not a decimal")
    yield case(
        "count-negative",
        "assessment",
        payload("assessment", red_systems=-1),
        "red_systems",
        "greater than or equal to 0",
    )
    yield case("counts-over-8", "assessment", payload("assessment", red_systems=8), "(payload)", "add up to")
    yield case(
        "known-field-as-extra", "lead-nurture", payload("lead-nurture", red_systems="lots"), "red_systems", "not text"
    )
    yield case(
        "time-as-extra", "lead-nurture", payload("lead-nurture", call_date="9999-01-01T00:00:00Z"), "call_date", RANGE
    )
    yield case(
        "portal-javascript",
        "onboarding",
        payload("onboarding", portal_url="javascript:alert(1)"),
        "portal_url",
        "URL scheme",
    )

    # control characters
    for field in ("first_name", "business_name"):
        for label, char in (("nul", "\x00"), ("bel", "\x07"), ("esc", "\x1b"), ("del", "\x7f"), ("c1", "\x9b")):
            yield case(
                f"{field}-{label}",
                "signup",
                payload("signup", **{field: f"Pat{char}[2J"}),
                field,
                f"contains a control character (U+{ord(char):04X}): remove it",
            )
        yield case(
            f"{field}-bidi",
            "signup",
            payload("signup", **{field: "Pat\u202egnp.exe"}),
            field,
            "contains a bidirectional control character (U+202E): remove it",
        )
        yield case(
            f"{field}-surrogate",
            "signup",
            payload("signup", **{field: "Pat\ud800"}),
            field,
            "contains an unpaired surrogate (U+D800): remove it",
        )
    yield case(
        "first-name-newline",
        "signup",
        payload("signup", first_name="Pat\nBcc: all@example.com"),
        "first_name",
        "contains a control character (U+000A): remove it",
    )
    yield case(
        "business-name-crlf",
        "signup",
        payload("signup", business_name="Pat\r\nX-Spam: yes"),
        "business_name",
        "contains a control character (U+000D): remove it",
    )
    yield case(
        "event-id-newline",
        "noshow",
        payload("noshow", calendly_event_id="evt\n1"),
        "calendly_event_id",
        "contains a control character (U+000A): remove it",
    )
    yield case(
        "weakest-system-newline",
        "assessment",
        payload("assessment", weakest_system_1="GPS\nBcc: x"),
        "weakest_system_1",
        "contains a control character (U+000A): remove it",
    )
    yield case(
        "objection-esc",
        "postcall",
        payload("postcall", objection="too\x1b[2J expensive"),
        "objection",
        "contains a control character (U+001B): remove it",
    )
    for label, char in (("nul", "\x00"), ("esc", "\x1b"), ("c1", "\x85")):
        yield case(
            f"extra-{label}",
            "lead-nurture",
            payload("lead-nurture", utm_source=f"fb{char}"),
            "utm_source",
            f"contains a control character (U+{ord(char):04X}): remove it",
        )

    # extra fields
    yield case(
        "too-many-extras",
        "lead-nurture",
        payload("lead-nurture", **{f"k{i}": i for i in range(51)}),
        "(payload)",
        "at most 50 are kept",
    )
    for label, key in (
        ("space", "utm source"),
        ("digit-first", "1st_visit"),
        ("dash", "utm-source"),
        ("too-long", "k" * 65),
        ("markup", "[/bold]"),
        ("esc", "x\x1b"),
    ):
        shown = key if len(key) <= 64 else key[:64] + "…"
        yield case(
            f"extra-key-{label}",
            "lead-nurture",
            payload("lead-nurture", **{key: 1}),
            shown.replace("\x1b", "\\x1b"),
            BAD_KEY,
        )
    yield case("extra-nested", "lead-nurture", payload("lead-nurture", utm={"a": 1}), "utm", "string, number")
    yield case(
        "extra-too-long",
        "lead-nurture",
        payload("lead-nurture", note="x" * 2001),
        "note",
        "longer than 2000 characters",
    )

    # addresses
    for label, address in (
        ("no-at", "pat-at-example.com"),
        ("no-domain", "pat@"),
        ("spaces", "pat @example.com"),
        ("two-ats", "pat@@example.com"),
    ):
        yield case(
            f"email-{label}", "lead-nurture", payload("lead-nurture", email=address), "email", "not a valid email"
        )
    yield case(
        "email-header-injection",
        "lead-nurture",
        payload("lead-nurture", email="pat@example.com\nBcc: all@example.com"),
        "email",
        "contains a control character (U+000A): remove it",
    )
    yield case(
        "email-missing",
        "signup",
        json.dumps({"first_name": "Pat", "business_name": "B"}).encode(),
        "email",
        "is required",
    )

    # sequences
    yield case("unknown-sequence", "christmas", payload("lead-nurture"), None, "unknown sequence 'christmas'")
    yield case("unknown-sequence-esc", "x\x1b[2J", payload("lead-nurture"), None, "unknown sequence")


POISON = list(cases())
CASES = [pytest.param(case, id=case.name) for case in POISON]

# ------------------------------------------------------------------------------------------------ helpers


def snapshot(project: Path) -> tuple[list[Any], list[Any]]:
    """The store's contacts and emails, every column; empty when no database was ever written."""
    db = project / ".xmas" / "xmas.db"
    if not db.exists():
        return [], []
    con = sqlite3.connect(db)
    try:
        return (
            con.execute("SELECT * FROM contacts ORDER BY email").fetchall(),
            con.execute("SELECT * FROM emails ORDER BY id").fetchall(),
        )
    finally:
        con.close()


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def error(self) -> dict[str, Any]:
        assert self.headers.get("content-type") == "application/json; charset=utf-8", self.headers
        doc = json.loads(self.body)
        assert doc["version"] == 1 and doc["ok"] is False, doc
        return dict(doc["error"])


def quoted(sequence: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else f"%{ord(c):02X}" for c in sequence)


def post(server: RunningServer, sequence: str, body: bytes, headers: dict[str, str] | None = None) -> Reply:
    """POST /enroll/SEQUENCE, read until the server closes the connection. The server logs a request after it sent
    the answer, to whatever sys.stderr is then: read only to the answer, the next in-process command (CliRunner
    swaps sys.stderr) could find that log line at the top of its own stderr."""
    fields = {
        "Host": "127.0.0.1",
        "Content-Type": JSON_TYPE,
        "Authorization": f"Bearer {API_TOKEN}",
        "Content-Length": str(len(body)),
        "Connection": "close",
        **(headers or {}),
    }
    head = "".join(f"{name}: {value}\n" for name, value in fields.items())
    return raw(server, f"POST /enroll/{quoted(sequence)} HTTP/1.1\n{head}", body)


def raw(server: RunningServer, head: str, body: bytes = b"", *, close_write: bool = False) -> Reply:
    """One request written byte for byte (the framing under test), read until the server closes."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(head.replace("\n", "\r\n").encode("latin-1") + b"\r\n" + body)
        if close_write:
            sock.shutdown(socket.SHUT_WR)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head_bytes, _, payload_bytes = data.partition(b"\r\n\r\n")
    status_line, *lines = head_bytes.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
    return Reply(int(status_line.split()[1]), headers, payload_bytes)


@pytest.fixture
def server(project: Path) -> Iterator[RunningServer]:
    env = {"XMAS_SECRET": SECRET, "XMAS_API_TOKEN": API_TOKEN, "XMAS_NOW": NOW}
    running = start(config=str(project / "campaign.toml"), env=env)
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def seeded(xmas: Cli, project: Path) -> tuple[list[Any], list[Any]]:
    """A store that holds one good enrollment, so that any write at all would show."""
    xmas("enroll", "lead-nurture", "--email", "seed@example.com", "--first-name", "Seed", "--now", NOW)
    before = snapshot(project)
    assert len(before[0]) == 1 and len(before[1]) == 5
    return before


def through_cli(xmas: Cli, case: Case) -> dict[str, Any]:
    """`xmas enroll --payload - --json`: exit 2, the error on stderr line by line, the document on stdout."""
    result = xmas.runner.invoke(
        app, ["enroll", case.sequence, "--payload", "-", "--json", "--now", NOW], input=case.body
    )
    assert result.exit_code == 2, (result.exit_code, result.stdout, result.stderr, result.exception)
    assert "Traceback" not in result.stdout + result.stderr
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    error = dict(json.loads(result.stdout)["error"])
    assert error["code"] == 2
    lines = result.stderr.splitlines()
    assert lines[0].startswith("xmas: error: ") and "\x1b" not in result.stderr
    fields = [(f["field"], f["problem"]) for f in error["fields"]]
    assert lines[0] == f"xmas: error: {error['message']} — {error['fix']}".replace("\x1b", "\\x1b")
    assert lines[1:] == [f"  {f}: {p}".replace("\x1b", "\\x1b") for f, p in fields]
    return error


def check_names(error: dict[str, Any], case: Case, json_field: str) -> None:
    field = json_field if case.field == BODY else case.field
    if field is None:
        assert error["fields"] == [] and case.problem in error["message"], error
        return
    problems = {f["field"]: f["problem"] for f in error["fields"]}
    assert field in problems, error
    assert case.problem in problems[field] or case.problem in error["message"], error


# --------------------------------------------------------------------------------------------------- tests


def test_the_corpus_is_large_and_distinct() -> None:
    assert len(POISON) >= 60
    assert len({(c.sequence, c.body) for c in POISON}) == len({c.name for c in POISON}) == len(POISON)


@pytest.mark.parametrize("case", CASES)
def test_poison_is_refused_by_cli_and_http_alike_and_nothing_is_written(
    case: Case, xmas: Cli, project: Path, server: RunningServer, seeded: tuple[list[Any], list[Any]]
) -> None:
    cli_error = through_cli(xmas, case)
    check_names(cli_error, case, "--payload")
    assert snapshot(project) == seeded

    reply = post(server, case.sequence, case.body)
    assert reply.status == case.status, reply.body
    http_error = reply.error()
    assert http_error["code"] == 2
    check_names(http_error, case, BODY)
    if case.field != BODY:
        assert http_error == cli_error  # the same document, whichever way the website sends it
    assert b"Traceback" not in reply.body
    assert snapshot(project) == seeded


BODY_OK = json.dumps(GOOD["lead-nurture"]).encode()
# (name, extra header lines, body, close the sending side after it, status, part of the message or problem)
FRAMING_CASES: list[tuple[str, str, bytes, bool, int, str]] = [
    (
        "two-equal-content-lengths",
        f"Content-Length: {len(BODY_OK)}\nContent-Length: {len(BODY_OK)}",
        BODY_OK,
        False,
        400,
        "the request has 2 Content-Length headers",
    ),
    (
        "two-conflicting-content-lengths",
        f"Content-Length: {len(BODY_OK)}\nContent-Length: 5",
        BODY_OK,
        False,
        400,
        "the request has 2 Content-Length headers",
    ),
    (
        "two-content-lengths-any-case",
        f"Content-Length: {len(BODY_OK)}\ncontent-length: {len(BODY_OK)}",
        BODY_OK,
        False,
        400,
        "the request has 2 Content-Length headers",
    ),
    (
        "content-length-and-chunked",
        f"Content-Length: {len(BODY_OK)}\nTransfer-Encoding: chunked",
        BODY_OK,
        False,
        400,
        "both Transfer-Encoding and Content-Length",
    ),
    (
        "chunked",
        "Transfer-Encoding: chunked",
        f"{len(BODY_OK):x}\r\n".encode() + BODY_OK + b"\r\n0\r\n\r\n",
        False,
        411,
        "chunked request bodies are not accepted",
    ),
    ("no-content-length", "", b"", True, 411, "no Content-Length header"),
    (
        "content-length-longer-than-body",
        f"Content-Length: {len(BODY_OK) + 10}",
        BODY_OK,
        True,
        400,
        "the request body ended after",
    ),
    ("content-length-shorter-than-body", f"Content-Length: {len(BODY_OK) - 10}", BODY_OK, False, 400, "not valid JSON"),
    ("negative-content-length", "Content-Length: -5", BODY_OK, True, 400, "Content-Length is not a number"),
    ("hex-content-length", "Content-Length: 0x20", BODY_OK, True, 400, "Content-Length is not a number"),
    ("huge-content-length", "Content-Length: 99999999999999999999", BODY_OK, True, 413, "larger than the limit"),
]
FRAMING = [pytest.param(*case[1:], id=case[0]) for case in FRAMING_CASES]


def framed(framing: str) -> str:
    return (
        f"POST /enroll/lead-nurture HTTP/1.1\nHost: 127.0.0.1\nAuthorization: Bearer {API_TOKEN}\n"
        f"Content-Type: {JSON_TYPE}\nConnection: close\n{framing + chr(10) if framing else ''}"
    )


@pytest.mark.parametrize(("framing", "body", "close_write", "status", "message"), FRAMING)
def test_malformed_framing_is_refused_and_nothing_is_written(
    framing: str,
    body: bytes,
    close_write: bool,
    status: int,
    message: str,
    project: Path,
    server: RunningServer,
    seeded: tuple[list[Any], list[Any]],
) -> None:
    reply = raw(server, framed(framing), body, close_write=close_write)
    assert reply.status == status, reply.body
    error = reply.error()
    assert error["code"] == 2 and message in error["message"] + " ".join(f["problem"] for f in error["fields"])
    assert snapshot(project) == seeded


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "application/jsonx", None])
def test_a_body_that_is_not_declared_json_is_415_and_nothing_is_written(
    content_type: str | None, project: Path, server: RunningServer, seeded: tuple[list[Any], list[Any]]
) -> None:
    declared = f"Content-Type: {content_type}\n" if content_type is not None else ""
    head = f"POST /enroll/lead-nurture HTTP/1.1\nHost: 127.0.0.1\nAuthorization: Bearer {API_TOKEN}\n{declared}"
    reply = raw(server, f"{head}Content-Length: {len(BODY_OK)}\nConnection: close\n", BODY_OK)
    assert reply.status == 415 and reply.error()["message"] == "the request body must be JSON"
    assert snapshot(project) == seeded


def test_poison_never_stops_the_others(xmas: Cli, project: Path, server: RunningServer) -> None:
    """All of the corpus into one project, both ways; then a good contact enrolls and its email goes out."""
    for case in POISON:
        through_cli(xmas, case)
        assert post(server, case.sequence, case.body).status == case.status
    for _, framing, body, close_write, status, _ in FRAMING_CASES:
        assert raw(server, framed(framing), body, close_write=close_write).status == status
    assert snapshot(project) == ([], [])

    good = post(server, "lead-nurture", json.dumps({"email": "good@example.com", "first_name": "Good"}).encode())
    assert good.status == 200, good.body
    xmas(
        "enroll", "signup", "--email", "also@example.com", "--first-name", "Also", "--business-name", "A", "--now", NOW
    )
    contacts, _ = snapshot(project)
    assert sorted(c[0] for c in contacts) == ["also@example.com", "good@example.com"]
    tick = xmas("tick", "--now", "2026-12-01T10:31:00Z")
    assert "Traceback" not in tick.stdout + tick.stderr
    outbox = list((project / ".xmas" / "outbox").rglob("*.eml"))
    assert len(outbox) == 1
    sent = outbox[0].read_text(errors="replace")
    assert "good@example.com" in sent and "pat@example.com" not in sent
    con = sqlite3.connect(project / ".xmas" / "xmas.db")
    try:
        sent_rows = con.execute("SELECT email, step FROM emails WHERE state = 'Sent'").fetchall()
    finally:
        con.close()
    assert sent_rows == [("good@example.com", 1)]
