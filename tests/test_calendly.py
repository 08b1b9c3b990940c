"""Calendly's webhooks: the signature and payload parsers, then POST /webhooks/calendly through a real server,
signed the way Calendly signs (HMAC-SHA256 over "{t}.{raw body}"), with fixtures of the documented shapes."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import SECRET, store_env
from test_notion_e2e import TOKEN, Notion, emu, notion, on_notion  # noqa: F401  (emu and notion are fixtures)
from test_web import API_TOKEN, Answer, Web

from xmas_cli import engine as core
from xmas_cli.backends import engine_from_config
from xmas_cli.clock import parse_instant
from xmas_cli.core.model import State
from xmas_cli.engine import Engine
from xmas_cli.errors import ConfigError, InvalidInput, Unauthorized
from xmas_cli.inbound.calendly import (
    SIGNATURE_HEADER,
    event_key,
    parse_delivery,
    parse_invitee,
    parse_signature,
    sign,
    signature_header,
    verify,
)
from xmas_cli.inbound.events import latest_booking
from xmas_cli.web.server import start

pytestmark = pytest.mark.every_store  # the rules hold on SQLite and on PostgreSQL

FIXTURES = Path(__file__).parent / "fixtures" / "calendly"
NOW = "2025-12-10T14:03:00Z"  # 3 minutes into the call: it has been marked a no-show
NOW_T = int(parse_instant(NOW).timestamp())
SIGNING_KEY = "calendly-signing-key-3f9a1c7e52"
PATH = "/webhooks/calendly"
NINA = "nina@example.com"
INVITEE = "https://api.calendly.com/scheduled_events/EVENT00000000001/invitees/INVITEE0000000001"
EVENT_ID = "EVENT00000000001"
START = "2025-12-10T14:00:00.000000Z"


def fixture(name: str) -> dict[str, Any]:
    return dict(json.loads((FIXTURES / f"{name}.json").read_text()))


def body_of(delivery: dict[str, Any]) -> bytes:
    return json.dumps(delivery).encode()


# ------------------------------------------------------------------------------------------ the signature


def test_parse_signature() -> None:
    sig = "ab" * 32
    assert parse_signature(f"t=1492774577,v1={sig}").timestamp == 1492774577
    assert parse_signature(f"t=1492774577,v1={sig}").signatures == (sig,)
    assert parse_signature(f" t=1 , v1={sig.upper()} ,v0=ignored").signatures == (sig,)  # other schemes skipped
    assert parse_signature(f"t=1,v1={sig},v1={'cd' * 32}").signatures == (sig, "cd" * 32)  # during a key change


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "   ",
        "garbage",
        "t=1492774577",
        f"v1={'ab' * 32}",
        f"t=,v1={'ab' * 32}",
        f"t=abc,v1={'ab' * 32}",
        f"t=-5,v1={'ab' * 32}",
        f"t=1,t=2,v1={'ab' * 32}",
        "t=1,v1=",
        "t=1,v1=xyz",
        f"t=1,v1={'ab' * 31}",
        f"t=1,v1={'zz' * 32}",
        f"t=1;v1={'ab' * 32}",
        f"t=1,v1={'ab' * 32},junk",
        f"t=99999999999999,v1={'ab' * 32}",
    ],
)
def test_malformed_signature_headers_are_refused(header: str | None) -> None:
    with pytest.raises(Unauthorized) as exc:
        parse_signature(header)
    assert exc.value.message == "webhook signature does not verify"
    assert SIGNATURE_HEADER in exc.value.fix


def test_sign_is_hmac_sha256_hex_over_timestamp_dot_body() -> None:
    import hashlib
    import hmac

    expected = hmac.new(b"key", b'1700000000.{"a": 1}', hashlib.sha256).hexdigest()
    assert sign("key", 1700000000, b'{"a": 1}') == expected
    assert signature_header("key", 1700000000, b'{"a": 1}') == f"t=1700000000,v1={expected}"


def test_verify() -> None:
    now = parse_instant(NOW)
    body = b'{"event": "invitee.created"}'
    verify(body, signature_header(SIGNING_KEY, NOW_T, body), SIGNING_KEY, now)
    verify(body, signature_header(SIGNING_KEY, NOW_T - 180, body), SIGNING_KEY, now)  # 3 minutes: still fresh
    verify(body, signature_header(SIGNING_KEY, NOW_T + 180, body), SIGNING_KEY, now)  # a clock a little ahead
    two = f"t={NOW_T},v1={'00' * 32},v1={sign(SIGNING_KEY, NOW_T, body)}"
    verify(body, two, SIGNING_KEY, now)  # any v1 may match
    refused = [
        (body, signature_header(SIGNING_KEY, NOW_T - 181, body), "old"),  # stale
        (body, signature_header(SIGNING_KEY, NOW_T + 181, body), "future"),
        (body, signature_header("another-key", NOW_T, body), "does not match"),  # forged
        (body + b" ", signature_header(SIGNING_KEY, NOW_T, body), "does not match"),  # another body
        (body, f"t={NOW_T - 1},v1={sign(SIGNING_KEY, NOW_T, body)}", "does not match"),  # the timestamp is signed
        (body, None, "missing"),
    ]
    for given, header, why in refused:
        with pytest.raises(Unauthorized) as exc:
            verify(given, header, SIGNING_KEY, now)
        assert why in exc.value.fix and SIGNING_KEY not in str(exc.value)
    with pytest.raises(ConfigError):
        verify(body, signature_header(SIGNING_KEY, NOW_T, body), "", now)


# ------------------------------------------------------------------------------------------- the payload


def test_parse_invitee_created() -> None:
    event_type, envelope = parse_delivery(body_of(fixture("invitee_created")))
    invitee = parse_invitee(event_type, envelope)
    assert event_type == "invitee.created"
    assert (invitee.uri, invitee.email, invitee.event_id, invitee.start_time, invitee.event_name) == (
        INVITEE,
        NINA,
        EVENT_ID,
        START,
        "Diagnostic call",
    )
    assert invitee.first_name == "Nina"  # first_name is null: the first word of name
    assert invitee.at == parse_instant("2025-12-01T10:00:00Z")  # the invitee's created_at: when it was booked
    assert invitee.key == event_key("invitee.created", INVITEE) == f"calendly:invitee.created:{INVITEE}"
    assert not invitee.rescheduled


def test_parse_invitee_first_name_and_cancellation_time() -> None:
    delivery = fixture("invitee_canceled")
    delivery["payload"]["first_name"] = "Nin"
    invitee = parse_invitee(*parse_delivery(body_of(delivery)))
    assert invitee.first_name == "Nin"
    assert invitee.at == parse_instant("2025-12-05T08:00:00Z")  # the cancellation's own time
    assert invitee.key == f"calendly:invitee.canceled:{INVITEE}"


def test_parse_no_show_by_invitee_reference() -> None:
    """An `invitee` reference (a URI, or an object) identifies the invitee as well as the payload's own uri."""
    delivery = fixture("invitee_no_show_created")
    payload = delivery["payload"]
    delivery["payload"] = {"invitee": {"uri": payload["uri"], "email": NINA}, "created_at": payload["created_at"]}
    invitee = parse_invitee(*parse_delivery(body_of(delivery)))
    assert (invitee.uri, invitee.email, invitee.event_id) == (INVITEE, NINA, EVENT_ID)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda d: d.update(payload=[]), "payload"),
        (lambda d: d["payload"].update(uri="https://api.calendly.com/users/X"), "payload.uri"),
        (lambda d: d["payload"].update(uri="x" * 300), "payload.uri"),
        (
            lambda d: d["payload"]["scheduled_event"].update(start_time="next Tuesday"),
            "payload.scheduled_event.start_time",
        ),
        (lambda d: d["payload"].update(created_at="yesterday"), "payload.created_at"),
    ],
)
def test_bad_invitee_payloads_name_the_field(change: Any, field: str) -> None:
    delivery = fixture("invitee_created")
    change(delivery)
    with pytest.raises(InvalidInput) as exc:
        parse_invitee(*parse_delivery(body_of(delivery)))
    assert field in [f for f, _ in exc.value.problems]


@pytest.mark.parametrize("body", [b"[]", b"not json", b"{}", b'{"event": 3}'])
def test_bad_envelopes(body: bytes) -> None:
    with pytest.raises(InvalidInput):
        parse_delivery(body)


# ---------------------------------------------------------------------------------------- through HTTP


class Hooks(Web):
    def store(self) -> Engine:
        return engine_from_config(str(self.project / "campaign.toml"), NOW, self.env)

    def deliver(
        self,
        delivery: dict[str, Any] | bytes,
        *,
        header: str | None = "sign",
        t: int = NOW_T,
        signed: bytes | None = None,
    ) -> Answer:
        body = delivery if isinstance(delivery, bytes) else body_of(delivery)
        headers = {"Content-Type": "application/json"}
        if header == "sign":
            header = signature_header(SIGNING_KEY, t, body if signed is None else signed)
        if header is not None:
            headers[SIGNATURE_HEADER] = header
        answer = self.send("POST", PATH, body, headers)
        assert SIGNING_KEY.encode() not in answer.body
        return answer

    def snapshot(self, email: str = NINA) -> tuple[Any, ...]:
        engine = self.store()
        try:
            return (
                engine.store.get_contact(email),
                engine.store.emails_for_contact(email),
                engine.store.events_for_contact(email),
            )
        finally:
            engine.close()

    def booking(self, email: str = NINA) -> Any:
        engine = self.store()
        try:
            return latest_booking(engine, email)
        finally:
            engine.close()

    def enroll_lead(self, email: str = NINA) -> None:
        engine = self.store()
        try:
            core.enroll(engine, "lead-nurture", {"email": email, "first_name": "Nina"})
        finally:
            engine.close()


@pytest.fixture
def hooks(project: Path) -> Iterator[Hooks]:
    env = {
        "XMAS_SECRET": SECRET,
        "XMAS_NOW": NOW,
        "XMAS_API_TOKEN": API_TOKEN,
        **store_env(),
        "CALENDLY_WEBHOOK_SIGNING_KEY": SIGNING_KEY,
    }
    running = start(config=str(project / "campaign.toml"), env=env)  # env is read per request: tests edit it
    try:
        yield Hooks(running, env, project)
    finally:
        running.stop()


def test_booking_is_recorded_and_stops_lead_nurture(hooks: Hooks) -> None:
    hooks.enroll_lead()
    answer = hooks.deliver(fixture("invitee_created"))

    assert answer.status == 200, answer.text
    doc = answer.json()
    assert doc["version"] == 1 and doc["ok"] is True and doc["recorded"] is True
    assert doc["event"]["name"] == "booked" and doc["event"]["key"] == f"calendly:invitee.created:{INVITEE}"
    assert len(doc["cancelled"]) == 5 and {r["sequence"] for r in doc["cancelled"]} == {"lead-nurture"}
    booking = hooks.booking()
    assert booking is not None and booking.name == "booked" and booking.email == NINA
    assert booking.at == parse_instant("2025-12-01T10:00:00Z")
    assert booking.data == {
        "calendly_event_id": EVENT_ID,
        "start_time": START,
        "first_name": "Nina",
        "invitee_uri": INVITEE,
        "name": "Diagnostic call",
    }
    _, rows, _ = hooks.snapshot()
    assert [r.state for r in rows] == [State.CANCELLED] * 5


def test_redelivery_changes_nothing(hooks: Hooks) -> None:
    hooks.enroll_lead()
    assert hooks.deliver(fixture("invitee_created")).status == 200
    before = hooks.snapshot()

    again = hooks.deliver(fixture("invitee_created"), t=NOW_T + 60)  # Calendly retries, signed anew
    assert again.status == 200 and again.json()["recorded"] is False and again.json()["cancelled"] == []
    assert hooks.snapshot() == before


def test_cancellation_is_recorded(hooks: Hooks) -> None:
    hooks.deliver(fixture("invitee_created"))
    answer = hooks.deliver(fixture("invitee_canceled"))

    assert answer.status == 200, answer.text
    doc = answer.json()
    assert doc["event"]["name"] == "call-canceled" and doc["recorded"] is True
    assert doc["event"]["at"] == "2025-12-05T08:00:00Z"
    assert doc["event"]["data"]["calendly_event_id"] == EVENT_ID and doc["event"]["data"]["rescheduled"] is False
    _, _, events = hooks.snapshot()
    assert [e.name for e in events if e.name == "call-canceled"] == ["call-canceled"]
    assert hooks.deliver(fixture("invitee_canceled")).json()["recorded"] is False


def test_cancellation_of_a_reschedule_is_not_a_canceled_call(hooks: Hooks) -> None:
    delivery = fixture("invitee_canceled")
    delivery["payload"]["rescheduled"] = True
    answer = hooks.deliver(delivery)
    assert answer.status == 202 and "reschedule" in answer.json()["ignored"]
    assert hooks.snapshot() == (None, [], [])


def test_no_show_enrolls_from_the_stored_booking(hooks: Hooks) -> None:
    hooks.deliver(fixture("invitee_created"))
    no_show = fixture("invitee_no_show_created")
    no_show["payload"]["scheduled_event"]["start_time"] = "2030-01-01T00:00:00Z"  # the stored booking wins
    no_show["payload"]["first_name"] = "Someone"
    answer = hooks.deliver(no_show)

    assert answer.status == 200, answer.text
    doc = answer.json()
    assert doc["sequence"] == "noshow" and doc["created"] is True
    assert doc["enrollment_key"] == f"noshow:{NINA}|{EVENT_ID}"
    assert doc["anchor"] == "2025-12-10T14:00:00Z"  # the call's start time
    start = parse_instant(START)
    assert [(r["step"], r["due"]) for r in doc["scheduled"]] == [  # 5 min, 24 h, 48 h after the call's start
        (n, (start + offset).strftime("%Y-%m-%dT%H:%M:%SZ"))
        for n, offset in ((1, timedelta(minutes=5)), (2, timedelta(hours=24)), (3, timedelta(hours=48)))
    ]
    _, rows, _ = hooks.snapshot()
    noshow = [r for r in rows if r.sequence == "noshow"]
    assert [r.id for r in noshow] == [f"noshow:{NINA}|{EVENT_ID}#{n}" for n in (1, 2, 3)]
    assert all(r.state is State.SCHEDULED and r.data["first_name"] == "Nina" for r in noshow)
    assert all(r.data["scheduled_time"] == "2025-12-10T14:00:00Z" for r in noshow)

    before = hooks.snapshot()
    again = hooks.deliver(no_show, t=NOW_T - 30)  # redelivered
    assert again.status == 200 and again.json()["created"] is False
    assert hooks.snapshot() == before


def test_no_show_of_an_unknown_invitee_is_ignored(hooks: Hooks) -> None:
    answer = hooks.deliver(fixture("invitee_no_show_created"))
    assert answer.status == 202, answer.text
    assert answer.json()["version"] == 1 and answer.json()["ok"] is True and "no booking" in answer.json()["ignored"]
    assert hooks.snapshot() == (None, [], [])

    hooks.deliver(fixture("invitee_created"))  # a booking of another call does not resolve it either
    other = fixture("invitee_no_show_created")
    other["payload"]["uri"] = INVITEE.replace("INVITEE0000000001", "INVITEE0000000002")
    before = hooks.snapshot()
    assert hooks.deliver(other).status == 202
    assert hooks.snapshot() == before


@pytest.mark.parametrize(
    "event_type", ["invitee_no_show.deleted", "routing_form_submission.created", "event_type.updated"]
)
def test_other_event_types_are_ignored(hooks: Hooks, event_type: str) -> None:
    delivery = fixture("invitee_created")
    delivery["event"] = event_type
    answer = hooks.deliver(delivery)
    assert answer.status == 202 and answer.json() == {
        "version": 1,
        "ok": True,
        "ignored": f"{event_type}: not an event xmas acts on",
    }
    assert hooks.snapshot() == (None, [], [])


def test_refused_deliveries_write_nothing(hooks: Hooks) -> None:
    hooks.enroll_lead()
    before = hooks.snapshot()
    delivery = fixture("invitee_created")
    body = body_of(delivery)
    other = copy.deepcopy(delivery)
    other["payload"]["email"] = "mallory@example.com"
    refusals = {
        "forged": hooks.deliver(delivery, header=signature_header("not-the-key", NOW_T, body)),
        "stale": hooks.deliver(delivery, t=NOW_T - 181),
        "future": hooks.deliver(delivery, t=NOW_T + 3600),
        "missing header": hooks.deliver(delivery, header=None),
        "malformed header": hooks.deliver(delivery, header="t=soon,v1=abc"),
        "wrong body": hooks.deliver(other, signed=body),
        "empty body": hooks.deliver(b"", signed=body),
    }
    for why, answer in refusals.items():
        assert answer.status == 401, (why, answer.text)
        assert answer.error()["message"] == "webhook signature does not verify", why
    assert hooks.snapshot() == before
    assert hooks.snapshot("mallory@example.com") == (None, [], [])


def test_signed_but_invalid_delivery_is_a_400(hooks: Hooks) -> None:
    delivery = fixture("invitee_created")
    delivery["payload"]["email"] = "not an address"
    answer = hooks.deliver(delivery)
    assert answer.status == 400 and answer.error()["fields"][0]["field"] == "email"
    answer = hooks.deliver(b"{not json")
    assert answer.status == 400
    assert hooks.snapshot() == (None, [], [])


def test_route_exists_only_with_a_signing_key(hooks: Hooks) -> None:
    assert hooks.send("GET", PATH).status == 405
    del hooks.env["CALENDLY_WEBHOOK_SIGNING_KEY"]
    answer = hooks.deliver(fixture("invitee_created"))
    assert answer.status == 404
    hooks.env["CALENDLY_WEBHOOK_SIGNING_KEY"] = ""
    assert hooks.deliver(fixture("invitee_created")).status == 404
    assert hooks.snapshot() == (None, [], [])


def test_tolerance_is_measured_on_the_engines_clock(hooks: Hooks) -> None:
    """XMAS_NOW is the server's clock: a signature made at the real time is refused against it."""
    real = int(datetime.now().timestamp())
    assert abs(real - NOW_T) > 180
    assert hooks.deliver(fixture("invitee_created"), t=real).status == 401
    hooks.env["XMAS_NOW"] = datetime.fromtimestamp(real).astimezone().isoformat()
    assert hooks.deliver(fixture("invitee_created"), t=real).status == 200


# ---------------------------------------------------------------------------------------------- on Notion


def test_booking_then_no_show_on_notion(project: Path, notion: Notion) -> None:  # noqa: F811
    env = {
        "XMAS_SECRET": SECRET,
        "XMAS_NOW": NOW,
        "XMAS_API_TOKEN": API_TOKEN,
        **store_env(),
        "CALENDLY_WEBHOOK_SIGNING_KEY": SIGNING_KEY,
        "NOTION_TOKEN": TOKEN,
        "NOTION_BASE_URL": notion.emu.base_url,
    }
    running = start(config=str(project / "campaign.toml"), env=env)
    try:
        hooks = Hooks(running, env, project)
        hooks.enroll_lead()
        assert hooks.deliver(fixture("invitee_created")).status == 200
        assert hooks.deliver(fixture("invitee_created"), t=NOW_T + 30).json()["recorded"] is False  # redelivered
        contact = notion.contact(NINA)
        assert contact["Booking Status"] == "booked" and EVENT_ID in contact["Events"]
        assert {r["State"] for r in notion.rows() if r["Sequence"] == "lead-nurture"} == {"Cancelled"}
        answer = hooks.deliver(fixture("invitee_no_show_created"))
        assert answer.status == 200 and answer.json()["enrollment_key"] == f"noshow:{NINA}|{EVENT_ID}"
        noshow = [r for r in notion.rows() if r["Sequence"] == "noshow"]
        assert [(r["Row ID"], r["State"]) for r in noshow] == [
            (f"noshow:{NINA}|{EVENT_ID}#{n}", "Scheduled") for n in (1, 2, 3)
        ]
    finally:
        running.stop()
