"""Poison in the store: damaged rows and broken templates fail their own emails, and nobody else's.

Each victim gets one damage, written straight into the SQLite file or the templates folder (as a hand edit, a bug
or a person in Notion would). Then `tick --dry-run`, `tick`, `status` and `show` run through the CLI: none of them
dies, every victim's row says what is wrong with it, and every healthy contact's email goes out.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from conftest import Cli

pytestmark = pytest.mark.chaos

T0 = datetime(2026, 12, 1, 10, 30, tzinfo=UTC)
NOW = "2026-12-01T10:31:00Z"
HEALTHY = [f"ok{n}@example.com" for n in range(3)]


def at(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def db(project: Path) -> sqlite3.Connection:
    return sqlite3.connect(project / ".xmas" / "xmas.db", isolation_level=None)


def set_row(project: Path, who: str, **values: object) -> None:
    """Overwrite columns of `who`'s step-1 row (raw SQL: the store's own checks are bypassed)."""
    sets = ", ".join(f"{k} = ?" for k in values)
    with db(project) as conn:
        changed = conn.execute(
            f"UPDATE emails SET {sets} WHERE email = ? AND step = 1", [*values.values(), who]
        ).rowcount
    assert changed == 1


def break_template(project: Path, name: str, body: str) -> None:
    path = project / "templates" / f"{name}.html"
    subject = path.read_text().partition("\n")[0]
    path.write_text(f"{subject}\n\n{body}\n")


Damage = Callable[[Path, str], None]
LEAD = {"first_name": "Vic", "business_name": "Victim Co"}
# (victim's sequence, extra payload, the damage, words the victim's Last Error must contain)
CASES: dict[str, tuple[str, dict[str, object], Damage, str]] = {
    "data-not-json": ("lead-nurture", {}, lambda p, w: set_row(p, w, data="{not json"), "data"),
    "data-a-list": ("lead-nurture", {}, lambda p, w: set_row(p, w, data="[1, 2]"), "data"),
    "due-not-a-time": ("lead-nurture", {}, lambda p, w: set_row(p, w, due="0000-13-45 nonsense"), "due"),
    "step-not-a-number": ("lead-nurture", {}, lambda p, w: set_row(p, w, step="two"), "step"),
    "sender-unknown": ("lead-nurture", {}, lambda p, w: set_row(p, w, sender="robot"), "sender"),
    "zero-time-in-data": (
        "lead-nurture",
        {},
        lambda p, w: set_row(
            p, w, data=json.dumps({**LEAD, "email": w, "diagnostic_call_date": "0001-01-01T00:00:00Z"})
        ),
        "OverflowError",
    ),
    "due-year-one": ("lead-nurture", {}, lambda p, w: set_row(p, w, due="0001-01-01T00:00:00Z"), "Overflow"),
    "recipient-not-an-address": (
        "lead-nurture",
        {},
        lambda p, w: set_row(p, w, email="[/red]\x1b[2J@@example"),
        "not an email address",
    ),
    "weakest-system-a-number": (
        "lead-nurture",
        {},
        lambda p, w: set_row(p, w, data=json.dumps({**LEAD, "email": w, "weakest_system_1": 7})),
        "AttributeError",
    ),
    "template-recursive-macro": (
        "noshow",
        {"calendly_event_id": "evt_x", "scheduled_time": "2026-12-01T10:20:00Z"},
        lambda p, w: break_template(p, "noshow_recovery_email_1", "{% macro f(n) %}{{ f(n) }}{% endmacro %}{{ f(1) }}"),
        "recursion too deep",
    ),
    "template-syntax-error": (
        "postcall",
        {"call_date": "2026-12-01T09:30:00Z"},
        lambda p, w: break_template(p, "postcall_maybe_email_1", "{% if %}"),
        "syntax error",
    ),
    "template-divides-by-zero": (
        "onboarding",
        {"payment_date": "2026-12-01T09:30:00Z"},
        lambda p, w: break_template(p, "onboarding_phase1_email_1", "{{ 1 / 0 }}"),
        "ZeroDivisionError",
    ),
    "template-builds-gigabytes": (
        "assessment",
        {
            "red_systems": 1,
            "orange_systems": 1,
            "yellow_systems": 1,
            "green_systems": 1,
            "email_1_sent_at": "2026-11-30T10:30:00Z",
        },
        lambda p, w: break_template(p, "christmas_email_2", "{{ 'x' * 1000000000 }}"),
        "repetition longer than",
    ),
}


def test_damaged_rows_and_templates_fail_alone_and_everyone_else_is_sent(xmas: Cli, project: Path) -> None:
    for who in HEALTHY:
        xmas("enroll", "lead-nurture", "--email", who, "--first-name", "Ok", "--now", at(T0))
    victims: dict[str, str] = {}
    for n, (name, (sequence, extra, _, _)) in enumerate(CASES.items()):
        who = f"victim{n}@example.com"
        victims[name] = who
        payload = {"email": who, **LEAD, **extra}
        xmas("enroll", sequence, "--payload", "-", "--now", at(T0), input=json.dumps(payload))
    for name, (_, _, damage, _) in CASES.items():
        damage(project, victims[name])
    with db(project) as conn:  # a contact whose stored fields are damaged, and one row in a state xmas doesn't know
        conn.execute("UPDATE contacts SET fields = '{{{' WHERE email = ?", (HEALTHY[2],))
        conn.execute("UPDATE emails SET state = 'Bogus' WHERE email = ? AND step = 2", (HEALTHY[1],))

    dry = xmas("tick", "--dry-run", "--now", NOW, code=1)
    assert dry.stdout.rstrip().endswith(f"{len(HEALTHY)} would-send, {len(CASES)} would-fail")
    result = xmas("tick", "--now", NOW, "--json", code=1)
    report = json.loads(result.stdout)
    actions = {o["email"]: o["action"] for o in report["outcomes"]}
    assert all(actions[w] == "sent" for w in HEALTHY), actions
    sent = sorted((project / ".xmas" / "outbox").glob("*.eml"))
    assert len(sent) == len(HEALTHY)
    with db(project) as conn:
        conn.row_factory = sqlite3.Row
        rows = {r["id"]: r for r in conn.execute("SELECT * FROM emails WHERE state = 'Failed'")}
    failed = {r["email"]: r["last_error"] for r in rows.values()}
    for name, (_, _, _, words) in CASES.items():
        who = "[/red]\x1b[2J@@example" if name == "recipient-not-an-address" else victims[name]
        assert who in failed, f"{name}: not Failed ({failed})"
        assert words in failed[who], f"{name}: {failed[who]!r} does not say {words!r}"
    # the CLI's views of the damage: none dies, markup and escape sequences are shown as text
    status = xmas("status", "--now", NOW, code=1)
    assert "Traceback" not in status.output and "\x1b" not in status.stdout
    assert "stored row is damaged" in status.stdout
    for who in [*victims.values(), HEALTHY[2]]:
        xmas("show", who)
    again = xmas("tick", "--now", at(T0 + timedelta(minutes=2)))  # the failures stay put; nothing is re-sent
    assert len(list((project / ".xmas" / "outbox").glob("*.eml"))) == len(HEALTHY) and "Traceback" not in again.output
