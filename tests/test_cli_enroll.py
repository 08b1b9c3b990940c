"""`xmas enroll` through the CLI: options and payloads, validation, idempotency, exit rules, unsubscribe."""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from conftest import Cli

pytestmark = pytest.mark.every_store  # the rules hold on SQLite and on PostgreSQL

NOW = "2026-12-01T10:30:00Z"
ASSESSMENT = {
    "email": "sarah@sarahssalon.com",
    "first_name": "Sarah",
    "business_name": "Sarah's Salon",
    "red_systems": 2,
    "orange_systems": 1,
    "yellow_systems": 2,
    "green_systems": 3,
    "weakest_system_1": "GPS",
    "weakest_system_2": "Money",
    "revenue_leak_total": 14700,
    "email_1_sent_at": "2026-12-01T10:30:00Z",
    "email_1_status": "sent",
}


def rows_in_db(project: Path) -> list[dict[str, Any]]:
    """The emails table as stored, in the SQLite file or (a test on every store) the PostgreSQL schema: times as
    ISO 8601 text and JSON as text, the way SQLite keeps them."""
    return _table(project, "SELECT * FROM emails ORDER BY id")


def _table(project: Path, sql: str) -> list[dict[str, Any]]:
    import os

    if dsn := os.environ.get("XMAS_DATABASE_URL"):  # set only by the every_store fixture, for PostgreSQL
        import json

        import psycopg
        from psycopg.rows import dict_row

        from xmas_cli.clock import iso

        with psycopg.connect(dsn, row_factory=dict_row) as conn:
            rows = conn.execute(sql).fetchall()
        return [
            {
                k: iso(v) if isinstance(v, datetime) else json.dumps(v, sort_keys=True) if isinstance(v, dict) else v
                for k, v in r.items()
            }
            for r in rows
        ]
    db = project / ".xmas" / "xmas.db"
    if not db.exists():
        return []
    con = sqlite3.connect(db)
    con.row_factory = sqlite3.Row
    return [dict(r) for r in con.execute(sql)]


def contacts_in_db(project: Path) -> list[str]:
    return [r["email"] for r in _table(project, "SELECT email FROM contacts")]


def test_enroll_with_options_prints_what_was_scheduled(xmas: Cli) -> None:
    result = xmas(
        "enroll",
        "noshow",
        "--email",
        "nina@example.com",
        "--first-name",
        "Nina",
        "--calendly-event-id",
        "evt_123abc",
        "--scheduled-time",
        "2026-12-10T14:00:00Z",
        "--now",
        NOW,
    )
    assert "nina@example.com enrolled: noshow:nina@example.com|evt_123abc" in result.stdout
    for template in ("noshow_recovery_email_1", "noshow_recovery_email_2", "noshow_recovery_email_3"):
        assert template in result.stdout
    assert "2026-12-10T14:05:00Z" in result.stdout


def test_enroll_json_document_from_a_payload_file(xmas: Cli, project: Path) -> None:
    (project / "payload.json").write_text(json.dumps(ASSESSMENT))
    doc = xmas.json("enroll", "assessment", "--payload", "payload.json", "--now", "2026-12-01T10:31:00Z")
    assert doc["ok"] is True and doc["version"] == 1 and doc["created"] is True
    assert doc["enrollment_key"] == "assessment:sarah@sarahssalon.com"
    assert doc["contact"] == {
        "email": "sarah@sarahssalon.com",
        "first_name": "Sarah",
        "business_name": "Sarah's Salon",
        "segment": "CRITICAL",
        "suppressed": False,
        "suppressed_reason": None,
        # CASL: an assessment is an inquiry: implied consent for 6 months
        "consent": {
            "kind": "implied",
            "source": "assessment",
            "at": "2026-12-01T10:31:00Z",
            "expires": "2027-06-02T10:31:00Z",
        },
    }
    got = [(r["sequence"], r["step"], r["template"], r["sender"], r["state"], r["due"]) for r in doc["scheduled"]]
    assert got == [
        ("assessment", 1, "christmas_email_1", "website", "Sent by website", "2026-12-01T10:30:00Z"),
        ("assessment", 2, "christmas_email_2", "xmas", "Scheduled", "2026-12-02T10:30:00Z"),
        ("assessment", 3, "christmas_email_3", "xmas", "Scheduled", "2026-12-04T10:30:00Z"),
        ("assessment", 4, "christmas_email_4", "xmas", "Scheduled", "2026-12-05T10:30:00Z"),
        ("assessment", 5, "christmas_email_5", "xmas", "Scheduled", "2026-12-06T10:30:00Z"),
    ]
    assert doc["warnings"] == []


def test_enroll_reads_the_payload_from_stdin(xmas: Cli) -> None:
    doc = xmas.json("enroll", "assessment", "--payload", "-", "--now", NOW, input=json.dumps(ASSESSMENT))
    assert len(doc["scheduled"]) == 5


def test_missing_email_1_sent_at_warns_on_stderr_and_uses_now(xmas: Cli) -> None:
    payload = {k: v for k, v in ASSESSMENT.items() if k != "email_1_sent_at"}
    result = xmas("enroll", "assessment", "--payload", "-", "--now", "2026-12-03T08:00:00Z", input=json.dumps(payload))
    assert "xmas: warning: email_1_sent_at is missing" in result.stderr
    assert "2026-12-04T08:00:00Z" in result.stdout  # E2 = now + 24 h


def test_bad_input_exits_2_with_one_line_per_field_and_writes_nothing(xmas: Cli, project: Path) -> None:
    bad = {**ASSESSMENT, "email": "sarah-at-salon", "red_systems": 12, "email_1_sent_at": "yesterday"}
    del bad["first_name"]
    result = xmas("enroll", "assessment", "--payload", "-", "--now", NOW, input=json.dumps(bad), code=2)
    lines = result.stderr.strip().splitlines()
    assert lines[0].startswith("xmas: error: invalid assessment payload: 4 problems")
    assert sorted(line.split(":")[0].strip() for line in lines[1:]) == [
        "email",
        "email_1_sent_at",
        "first_name",
        "red_systems",
    ]
    assert rows_in_db(project) == [] and contacts_in_db(project) == []


def test_bad_input_as_json_names_every_field(xmas: Cli, project: Path) -> None:
    doc = xmas.json("enroll", "postcall", "--email", "paul@example.com", "--now", NOW, code=2)
    assert doc["ok"] is False and doc["error"]["code"] == 2
    assert sorted(f["field"] for f in doc["error"]["fields"]) == ["call_date", "first_name"]
    assert rows_in_db(project) == []


def test_unreadable_payloads_are_refused(xmas: Cli, project: Path) -> None:
    assert "not valid JSON" in xmas("enroll", "signup", "--payload", "-", input="{nope", code=2).stderr
    assert "must be a JSON object" in xmas("enroll", "signup", "--payload", "-", input="[1, 2]", code=2).stderr
    assert "cannot read" in xmas("enroll", "signup", "--payload", "missing.json", code=2).stderr
    assert "unknown sequence 'nurture'" in xmas("enroll", "nurture", "--email", "a@example.com", code=2).stderr
    assert rows_in_db(project) == [] and contacts_in_db(project) == []


def test_re_enrolling_refreshes_data_and_schedules_nothing_new(xmas: Cli, project: Path) -> None:
    first = xmas.json("enroll", "assessment", "--payload", "-", "--now", NOW, input=json.dumps(ASSESSMENT))
    again = {**ASSESSMENT, "first_name": "Sara", "red_systems": 0, "orange_systems": 0}
    second = xmas.json(
        "enroll", "assessment", "--payload", "-", "--now", "2026-12-01T12:00:00Z", input=json.dumps(again)
    )
    assert second["created"] is False
    assert [r["id"] for r in second["scheduled"]] == [r["id"] for r in first["scheduled"]]
    assert [r["due"] for r in second["scheduled"]] == [r["due"] for r in first["scheduled"]]
    rows = rows_in_db(project)
    assert len(rows) == 5
    assert all(json.loads(r["data"])["first_name"] == "Sara" for r in rows if r["state"] == "Scheduled")
    assert second["contact"]["first_name"] == "Sara" and second["contact"]["segment"] == "OPTIMIZE"


@pytest.mark.sqlite_only
def test_noshow_is_keyed_by_event_and_postcall_by_call_date(xmas: Cli, project: Path) -> None:
    base = ["--email", "nina@example.com", "--first-name", "Nina", "--now", NOW]
    xmas("enroll", "noshow", *base, "--calendly-event-id", "evt_1", "--scheduled-time", "2026-12-01T10:00:00Z")
    xmas("enroll", "noshow", *base, "--calendly-event-id", "evt_1", "--scheduled-time", "2026-12-01T10:00:00Z")
    xmas("enroll", "noshow", *base, "--calendly-event-id", "evt_2", "--scheduled-time", "2026-12-08T10:00:00Z")
    xmas("enroll", "postcall", *base, "--call-date", "2026-12-02T10:00:00Z")
    xmas("enroll", "postcall", *base, "--call-date", "2026-12-02T10:00:00Z")
    xmas("enroll", "postcall", *base, "--call-date", "2026-12-09T10:00:00Z")
    keys = sorted({r["enrollment_key"] for r in rows_in_db(project)})
    assert keys == [
        "noshow:nina@example.com|evt_1",
        "noshow:nina@example.com|evt_2",
        "postcall:nina@example.com|2026-12-02T10:00:00Z",
        "postcall:nina@example.com|2026-12-09T10:00:00Z",
    ]
    assert len(rows_in_db(project)) == 12


def test_a_shared_calendly_event_id_is_each_contacts_own_enrollment(xmas: Cli, project: Path) -> None:
    """Bob enrolled with Alice's event id used to get "created": true and her rows, and was never emailed."""
    event = ["--calendly-event-id", "evt_shared", "--scheduled-time", "2026-12-01T10:00:00Z", "--now", NOW]
    alice = xmas.json("enroll", "noshow", "--email", "alice@example.com", "--first-name", "Alice", *event)
    bob = xmas.json("enroll", "noshow", "--email", "bob@example.com", "--first-name", "Bob", *event)
    assert alice["created"] and bob["created"] and alice["enrollment_key"] != bob["enrollment_key"]
    owners = {r["id"]: r["email"] for r in rows_in_db(project)}
    assert sorted(owners.values()) == ["alice@example.com"] * 3 + ["bob@example.com"] * 3
    assert all(owners[r["id"]] == "bob@example.com" for r in bob["scheduled"])


@pytest.mark.sqlite_only  # a file written by an earlier version
def test_rows_written_under_the_old_key_are_found_again_not_written_twice(xmas: Cli, project: Path) -> None:
    event = ["--calendly-event-id", "evt_1", "--scheduled-time", "2026-12-01T10:00:00Z", "--now", NOW]
    xmas("enroll", "noshow", "--email", "nina@example.com", "--first-name", "Nina", *event)
    con = sqlite3.connect(project / ".xmas" / "xmas.db", isolation_level=None)  # as versions before 0.2 wrote them
    con.execute("UPDATE emails SET enrollment_key = 'noshow:evt_1', id = replace(id, 'nina@example.com|', '')")
    again = xmas.json("enroll", "noshow", "--email", "nina@example.com", "--first-name", "Nina", *event)
    assert not again["created"] and again["enrollment_key"] == "noshow:evt_1"
    assert sorted(r["id"] for r in rows_in_db(project)) == [f"noshow:evt_1#{n}" for n in (1, 2, 3)]


def test_exit_rules_cancel_pending_emails_of_earlier_sequences(xmas: Cli, project: Path) -> None:
    who = ["--email", "sarah@sarahssalon.com", "--first-name", "Sarah"]
    xmas("enroll", "lead-nurture", *who, "--now", NOW)
    doc = xmas.json(
        "enroll", "assessment", "--payload", "-", "--now", "2026-12-01T11:00:00Z", input=json.dumps(ASSESSMENT)
    )
    assert sorted(r["step"] for r in doc["cancelled"]) == [1, 2, 3, 4, 5]  # E1 was due 10:30 but no tick ran
    assert all(r["note"] == "exit rule: enrolled in assessment" for r in doc["cancelled"])
    doc = xmas.json(
        "enroll", "onboarding", *who, "--payment-date", "2026-12-03T09:00:00Z", "--now", "2026-12-03T09:00:00Z"
    )
    assert sorted((r["sequence"], r["step"]) for r in doc["cancelled"]) == [("assessment", n) for n in (2, 3, 4, 5)]
    states = {(r["sequence"], r["step"]): r["state"] for r in rows_in_db(project)}
    assert states[("assessment", 2)] == "Cancelled"  # due 12-02 10:30: no tick ran, so it was still pending
    assert [states[("onboarding", n)] for n in (1, 2, 3)] == ["Scheduled"] * 3


def test_enrolling_into_a_sequence_an_earlier_one_exits_creates_cancelled_rows(xmas: Cli, project: Path) -> None:
    who = ["--email", "olivia@example.com", "--first-name", "Olivia"]
    xmas("enroll", "onboarding", *who, "--now", NOW)
    doc = xmas.json("enroll", "lead-nurture", *who, "--now", NOW)
    assert {r["state"] for r in doc["scheduled"]} == {"Cancelled"}
    assert doc["scheduled"][0]["note"] == "exit rule: already in onboarding"


def test_unsubscribe_cancels_pending_and_later_enrollments_are_skipped(xmas: Cli, project: Path) -> None:
    who = ["--email", "lena@example.com", "--first-name", "Lena"]
    xmas("enroll", "lead-nurture", *who, "--now", NOW)
    result = xmas("unsubscribe", "Lena@Example.com", "--now", NOW)
    assert "lena@example.com: unsubscribed; cancelled 5 pending email(s)" in result.stdout
    doc = xmas.json("enroll", "postcall", *who, "--call-date", NOW, "--now", NOW)
    assert {r["state"] for r in doc["scheduled"]} == {"Skipped"}
    assert doc["contact"]["suppressed"] is True
    assert "sent" not in xmas("tick", "--now", "2026-12-20T00:00:00Z").stdout.split(":")[-1]
    assert not list((project / ".xmas" / "outbox").glob("*.eml")) if (project / ".xmas" / "outbox").exists() else True


def test_unsubscribing_an_unknown_address_suppresses_it_for_later(xmas: Cli) -> None:
    xmas("unsubscribe", "ghost@example.com")
    doc = xmas.json("enroll", "lead-nurture", "--email", "ghost@example.com", "--first-name", "G", "--now", NOW)
    assert {r["state"] for r in doc["scheduled"]} == {"Skipped"}
    assert "not a valid email" in xmas("unsubscribe", "not-an-address", code=2).stderr


def test_cancel_one_sequence_or_all(xmas: Cli, project: Path) -> None:
    who = ["--email", "paul@example.com", "--first-name", "Paul", "--now", NOW]
    xmas("enroll", "postcall", *who, "--call-date", NOW)
    xmas("enroll", "postcall", *who, "--call-date", "2026-12-08T10:00:00Z")
    xmas("enroll", "noshow", *who, "--calendly-event-id", "evt_9", "--scheduled-time", NOW)
    assert "cancelled 3 pending" in xmas("cancel", "paul@example.com", "--sequence", "noshow").stdout
    postcall = [r["state"] for r in rows_in_db(project) if r["sequence"] == "postcall"]
    assert sorted(postcall) == ["Cancelled"] * 3 + ["Scheduled"] * 3  # the later call superseded the first
    assert "cancelled 3 pending" in xmas("cancel", "paul@example.com").stdout
    assert {r["state"] for r in rows_in_db(project)} == {"Cancelled"}
    assert "no contact with email 'nobody@example.com'" in xmas("cancel", "nobody@example.com", code=2).stderr
    assert "unknown sequence" in xmas("cancel", "paul@example.com", "--sequence", "nope", code=2).stderr


# ------------------------------------------------------------------------------------------------- bad input


def test_nan_and_deep_nesting_are_refused_on_stdin_as_over_http(xmas: Cli, project: Path) -> None:
    nan = '{"email": "ana@example.com", "first_name": "Ana", "score": NaN}'
    result = xmas("enroll", "lead-nurture", "--payload", "-", input=nan, code=2)
    assert result.stderr.splitlines() == [
        "xmas: error: --payload is not valid JSON — send plain JSON numbers of at most 40 characters; "
        "NaN and Infinity are not JSON",
        "  --payload: not valid JSON: NaN is not a JSON number",
    ]
    deep = "[" * 20000 + "]" * 20000  # a RecursionError traceback before the bounded reader
    result = xmas("enroll", "lead-nurture", "--payload", "-", input=deep, code=2)
    assert result.stderr.splitlines() == [
        "xmas: error: --payload is not valid JSON — send one flat JSON object with the seeds' snake_case keys",
        "  --payload: not valid JSON: nested deeper than 32 levels",
    ]
    big = json.dumps({**ASSESSMENT, "note": "x" * 70_000})
    result = xmas("enroll", "assessment", "--payload", "-", input=big, code=2)
    assert result.stderr.splitlines()[1] == "  --payload: larger than 65536 bytes"
    (project / "latin1.json").write_bytes('{"email": "ana@example.com", "first_name": "Ana\xe9"}'.encode("latin-1"))
    result = xmas("enroll", "lead-nurture", "--payload", "latin1.json", code=2)
    assert result.stderr.splitlines()[1] == "  --payload: not UTF-8 text (byte 0xe9 at offset 47)"
    (project / "vars.json").write_text('{"first_name": Infinity}')
    result = xmas("preview", "christmas_email_2", "--data", "vars.json", code=2)
    assert result.stderr.splitlines()[1] == "  --data: not valid JSON: Infinity is not a JSON number"
    assert rows_in_db(project) == [] and contacts_in_db(project) == []


def test_times_out_of_range_or_as_numbers_are_refused_and_nothing_is_written(xmas: Cli, project: Path) -> None:
    who = ["--email", "nina@example.com", "--first-name", "Nina", "--calendly-event-id", "evt_1", "--now", NOW]
    for when in ("0001-01-01T00:00:00Z", "9999-12-31T23:59:00Z"):
        result = xmas("enroll", "noshow", *who, "--scheduled-time", when, code=2)
        assert result.stderr.splitlines() == [
            "xmas: error: invalid noshow payload: 1 problem — fix the fields listed; nothing was written",
            "  scheduled_time: is out of range: send a time from 2000-01-01T00:00:00Z up to (not including) "
            f"2100-01-01T00:00:00Z (got '{when}')",
        ]
    result = xmas("enroll", "noshow", *who, "--scheduled-time", "1765375200", code=2)
    assert result.stderr.splitlines()[1] == (
        "  scheduled_time: is a number, not a time (got '1765375200'): send ISO 8601 with an offset, "
        "like 2025-12-01T10:30:00Z"
    )
    epoch = {**ASSESSMENT, "email_1_sent_at": 1764585000, "red_systems": True}
    result = xmas("enroll", "assessment", "--payload", "-", input=json.dumps(epoch), code=2)
    assert result.stderr.splitlines()[1:] == [
        "  red_systems: must be a whole number like 2, not a boolean (got true)",
        "  email_1_sent_at: is a number, not a time (got 1764585000): send ISO 8601 with an offset, "
        "like 2025-12-01T10:30:00Z",
    ]
    assert rows_in_db(project) == [] and contacts_in_db(project) == []


def test_control_characters_are_refused_and_never_printed_raw(xmas: Cli, project: Path) -> None:
    result = xmas("enroll", "lead-nurture", "--email", "ana@example.com", "--first-name", "Ana\x1b[2J", code=2)
    assert result.stderr.splitlines()[1] == "  first_name: contains a control character (U+001B): remove it"
    result = xmas(
        "enroll", "lead-nurture", "--email", "ana@example.com", "--first-name", "Ana\nBcc: x@example.com", code=2
    )
    assert result.stderr.splitlines()[1] == "  first_name: contains a control character (U+000A): remove it"
    bad_key = {"email": "ana@example.com", "first_name": "Ana", "x\x1b[2J": 1}
    result = xmas("enroll", "lead-nurture", "--payload", "-", input=json.dumps(bad_key), code=2)
    assert "\x1b" not in result.stderr
    assert result.stderr.splitlines()[1] == (
        "  x\\x1b[2J: is not a usable field name: use at most 64 letters, digits and _, not starting with a digit"
    )
    assert rows_in_db(project) == [] and contacts_in_db(project) == []


def test_rich_markup_in_names_prints_as_text(xmas: Cli, project: Path) -> None:
    payload = {**ASSESSMENT, "first_name": "[/bold]", "business_name": "[red]x[/red]"}
    enrolled = xmas("enroll", "assessment", "--payload", "-", "--now", NOW, input=json.dumps(payload))
    assert "sarah@sarahssalon.com enrolled: assessment:sarah@sarahssalon.com" in enrolled.stdout
    shown = xmas("show", "sarah@sarahssalon.com")
    assert "sarah@sarahssalon.com [/bold] · segment CRITICAL" in shown.stdout
    assert "christmas_email_2" in shown.stdout
    xmas("status", "--now", NOW)
    preview = xmas("preview", "christmas_email_2", "--contact", "sarah@sarahssalon.com", "--now", NOW)
    assert preview.stdout.splitlines()[0] == "Subject: Fix your GPS first, [/bold]"


@pytest.mark.sqlite_only
def test_stored_data_is_never_trusted_by_the_terminal(xmas: Cli, project: Path) -> None:
    """The store may hold anything (a person edits Notion): markup and control characters print as text."""
    xmas("enroll", "assessment", "--payload", "-", "--now", NOW, input=json.dumps(ASSESSMENT))
    db = sqlite3.connect(project / ".xmas" / "xmas.db")
    with db:
        db.execute(
            "UPDATE contacts SET fields = ?, suppressed = 1, suppressed_reason = ?",
            (json.dumps({"first_name": "[/bold]\x1b[2J", "business_name": "[red]x"}), "[/red] by \x07hand"),
        )
        db.execute("UPDATE emails SET state = 'Failed', last_error = ? WHERE step = 2", ("[/red] boom\x1b]0;pwn\x07",))
        db.execute("UPDATE emails SET template = ? WHERE step = 3", ("[/bold]x\x9b",))
    db.close()
    shown = xmas("show", "sarah@sarahssalon.com")
    assert "sarah@sarahssalon.com [/bold]\\x1b[2J · segment CRITICAL · suppressed: [/red] by \\x07hand" in shown.stdout
    assert "[/red] boom\\x1b]0;pwn\\x07" in shown.stdout and "[/bold]x\\x9b" in shown.stdout
    status = xmas("status", "--now", NOW, code=1)  # a failed row is a problem: exit 1, printed as text
    assert "[/red] boom\\x1b]0;pwn\\x07" in status.stdout
    for result in (shown, status):
        assert "\x1b" not in result.stdout and "\x07" not in result.stdout and "\x9b" not in result.stdout
    db = sqlite3.connect(project / ".xmas" / "xmas.db")
    with db:
        db.execute("UPDATE contacts SET suppressed = 0")
        db.execute("UPDATE emails SET state = 'Scheduled', due = ? WHERE step = 3", (NOW,))
    db.close()
    dry = xmas("tick", "--dry-run", "--now", "2026-12-01T10:31:00Z", code=None)
    assert dry.exit_code in (0, 1), dry.stderr
    assert "[/bold]x\\x9b" in dry.stdout and "\x9b" not in dry.stdout
