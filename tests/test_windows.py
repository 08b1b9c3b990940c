"""Send windows in the recipient's time zone: pure, through the CLI, over HTTP and on Notion."""

from __future__ import annotations

import email
import email.policy
import json
from datetime import UTC, datetime, time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from conftest import Cli, replace_once
from test_notion_e2e import Notion, emu, notion, on_notion  # noqa: F401  (emu and notion are fixtures)
from test_web import Web, web  # noqa: F401  (a fixture)

from xmas_cli.core.windows import DAYS, Window, next_opening, parse_window

pytestmark = pytest.mark.every_store  # the rules hold on SQLite and on PostgreSQL

TORONTO, BERLIN = ZoneInfo("America/Toronto"), ZoneInfo("Europe/Berlin")
EVERY_DAY = frozenset(range(7))


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def window(zone: ZoneInfo, days: frozenset[int] = EVERY_DAY) -> Window:
    start, end = parse_window("08:00-20:00")
    return Window(start, end, days, zone)


@pytest.mark.parametrize(
    ("zone", "at", "opening"),
    [
        # Toronto, spring forward (2026-03-08 02:00 EST → 03:00 EDT): 08:00 is 13:00Z the day before, 12:00Z after
        (TORONTO, "2026-03-07T06:00:00Z", "2026-03-07T13:00:00Z"),
        (TORONTO, "2026-03-08T06:00:00Z", "2026-03-08T12:00:00Z"),  # 01:00 EST, the night the clocks jump
        (TORONTO, "2026-03-08T01:30:00Z", "2026-03-08T12:00:00Z"),  # 20:30 EST the evening before: tomorrow
        # Toronto, fall back (2026-11-01 02:00 EDT → 01:00 EST)
        (TORONTO, "2026-10-31T06:00:00Z", "2026-10-31T12:00:00Z"),
        (TORONTO, "2026-11-01T05:30:00Z", "2026-11-01T13:00:00Z"),  # 01:30 EDT, the first of the two 01:30s
        (TORONTO, "2026-11-01T06:30:00Z", "2026-11-01T13:00:00Z"),  # 01:30 EST, the second
        # Berlin (CET → CEST 2026-03-29, back 2026-10-25): 08:00 is 07:00Z in winter, 06:00Z in summer
        (BERLIN, "2026-03-29T00:30:00Z", "2026-03-29T06:00:00Z"),
        (BERLIN, "2026-03-28T22:00:00Z", "2026-03-29T06:00:00Z"),  # 23:00 CET: the next morning, already CEST
        (BERLIN, "2026-10-25T00:30:00Z", "2026-10-25T07:00:00Z"),
        # inside the window: now; 20:00 is closed
        (TORONTO, "2026-12-01T15:00:00Z", "2026-12-01T15:00:00Z"),
        (TORONTO, "2026-12-02T01:00:00Z", "2026-12-02T13:00:00Z"),
        (BERLIN, "2026-12-01T19:00:00Z", "2026-12-02T07:00:00Z"),
    ],
)
def test_next_opening_in_the_recipients_zone_across_dst(zone: ZoneInfo, at: str, opening: str) -> None:
    assert next_opening(utc(at), window(zone)) == utc(opening)


def test_days_off_are_skipped() -> None:
    weekdays = frozenset(DAYS.index(d) for d in ("mon", "tue", "wed", "thu", "fri"))
    saturday_noon = utc("2026-12-05T17:00:00Z")  # Saturday 12:00 in Toronto
    assert next_opening(saturday_noon, window(TORONTO, weekdays)) == utc("2026-12-07T13:00:00Z")  # Monday 08:00


def test_window_syntax() -> None:
    assert parse_window("08:00-20:00") == (time(8), time(20))
    assert parse_window("00:00-24:00")[1] == time.max
    for bad in ("8-20", "20:00-08:00", "08:00-08:00", "25:00-26:00", "08:00-24:30"):
        with pytest.raises(ValueError, match="window"):
            parse_window(bad)


# ----------------------------------------------------------------------------------------------- the CLI


NIGHT = "2026-12-01T08:00:00Z"  # 03:00 in Toronto, 09:00 in Berlin


def windowed(project: Path, extra: str = "") -> None:
    config = project / "campaign.toml"
    line = 'templates_dir = "templates"\n'
    config.write_text(replace_once(config.read_text(), line, f'{line}send_window = "08:00-20:00"\n{extra}'))


def outbox(project: Path) -> list[Any]:
    found = sorted((project / ".xmas" / "outbox").glob("*.eml"))
    return [email.message_from_bytes(p.read_bytes(), policy=email.policy.default) for p in found]


def test_a_3am_lead_waits_for_8am_in_toronto_while_berlin_goes_now(xmas: Cli, project: Path) -> None:
    windowed(project)
    xmas("enroll", "lead-nurture", "--email", "tom@example.com", "--first-name", "Tom", "--now", NIGHT)
    xmas(
        "enroll",
        "lead-nurture",
        "--email",
        "bea@example.com",
        "--first-name",
        "Bea",
        "--timezone",
        "Europe/Berlin",
        "--now",
        NIGHT,
    )
    dry = xmas("tick", "--dry-run", "--now", NIGHT)
    assert "window opens 08:00 America/Toronto" in dry.stdout and "would-hold" in dry.stdout
    report = xmas.json("tick", "--now", NIGHT)
    actions = {o["email"]: (o["action"], o["detail"]) for o in report["outcomes"]}
    assert actions["bea@example.com"][0] == "sent"
    assert actions["tom@example.com"] == ("held", "window opens 08:00 America/Toronto (2026-12-01T13:00:00Z)")
    assert report["ok"] is True  # waiting for a window is not a problem
    row = xmas.json("show", "tom@example.com")["emails"][0]
    assert (row["state"], row["due"]) == ("Scheduled", "2026-12-01T13:00:00Z")
    assert row["note"] == f"window opens 08:00 America/Toronto: was due {NIGHT}"
    assert "0 due" in xmas("tick", "--now", "2026-12-01T12:59:00Z").stdout
    assert "1 sent" in xmas("tick", "--now", "2026-12-01T13:00:00Z").stdout
    assert [m["To"] for m in outbox(project)] == ["bea@example.com", "tom@example.com"]


def test_transactional_sequences_are_exempt_unless_they_say_so(xmas: Cli, project: Path) -> None:
    windowed(project)

    def onboard(who: str) -> None:
        xmas(
            "enroll",
            "onboarding",
            "--email",
            who,
            "--first-name",
            "O",
            "--payment-date",
            "2026-12-01T07:00:00Z",
            "--now",
            NIGHT,
        )

    onboard("olivia@example.com")
    assert "1 sent" in xmas("tick", "--now", NIGHT).stdout  # onboarding at 03:00: it is what they paid for
    config = project / "campaign.toml"
    text = replace_once(config.read_text(), "transactional = true", 'transactional = true\nsend_window = "09:00-17:00"')
    config.write_text(text)
    onboard("omar@example.com")
    assert "1 held" in xmas("tick", "--now", NIGHT).stdout


def test_testing_mode_ignores_windows(xmas: Cli, project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    windowed(project)
    monkeypatch.setenv("XMAS_TESTING", "1")
    xmas("enroll", "lead-nurture", "--email", "tom@example.com", "--first-name", "Tom", "--now", NIGHT)
    assert "1 sent" in xmas("tick", "--now", NIGHT).stdout


def test_days_and_sequence_overrides_and_bad_config(xmas: Cli, project: Path) -> None:
    windowed(project, 'send_days = ["mon", "tue", "wed", "thu", "fri"]\n')
    saturday = "2026-12-05T17:00:00Z"
    xmas("enroll", "lead-nurture", "--email", "tom@example.com", "--first-name", "Tom", "--now", saturday)
    assert "1 held" in xmas("tick", "--now", saturday).stdout
    assert xmas.json("show", "tom@example.com")["emails"][0]["due"] == "2026-12-07T13:00:00Z"
    config = project / "campaign.toml"
    config.write_text(replace_once(config.read_text(), 'send_window = "08:00-20:00"', 'send_window = "20:00-08:00"'))
    result = xmas("status", code=3)
    assert "campaign.send_window: '20:00-08:00': the window must end after it starts" in result.stderr


def test_dates_in_emails_are_in_the_contacts_zone(xmas: Cli, project: Path) -> None:
    bea = [
        "--email",
        "bea@example.com",
        "--first-name",
        "Bea",
        "--calendly-event-id",
        "evt_1",
        "--scheduled-time",
        "2026-12-01T15:00:00Z",
    ]
    xmas("enroll", "noshow", *bea, "--timezone", "Europe/Berlin", "--now", "2026-12-01T15:10:00Z")
    xmas("tick", "--now", "2026-12-01T15:10:00Z")
    [message] = outbox(project)
    text = message.get_body(("plain",)).get_content()
    assert "4:00 PM CET" in text and "10:00 AM EST" not in text


def test_a_bad_time_zone_is_refused_everywhere(xmas: Cli, web: Web) -> None:  # noqa: F811
    result = xmas(
        "enroll",
        "lead-nurture",
        "--email",
        "tom@example.com",
        "--first-name",
        "Tom",
        "--timezone",
        "Mars/Olympus",
        code=2,
    )
    assert "timezone: is not a time zone: give an IANA name like America/Toronto" in result.stderr
    answer = web.enroll("lead-nurture", {"email": "tom@example.com", "first_name": "Tom", "timezone": "EST5EDT-X"})
    assert answer.status == 400 and answer.json()["error"]["fields"][0]["field"] == "timezone"
    assert web.rows("tom@example.com") == [] and xmas("show", "tom@example.com", code=2)  # nothing written


def test_windows_on_notion_move_the_due_time_there(xmas: Cli, notion: Notion, project: Path) -> None:  # noqa: F811
    windowed(project)
    xmas("enroll", "lead-nurture", "--email", "tom@example.com", "--first-name", "Tom", "--now", NIGHT)
    assert "1 held" in xmas("tick", "--now", NIGHT).stdout
    row = notion.row("lead-nurture:tom@example.com#1")
    assert (row["State"], row["Due"]) == ("Scheduled", "2026-12-01T13:00:00Z")
    assert row["Note"].startswith("window opens 08:00 America/Toronto")
    assert "1 sent" in xmas("tick", "--now", "2026-12-01T13:00:00Z").stdout


def test_steps_keep_their_order_after_a_hold(xmas: Cli, project: Path) -> None:
    windowed(project)
    body = {
        "email": "sarah@example.com",
        "first_name": "Sarah",
        "business_name": "S",
        "red_systems": 1,
        "orange_systems": 1,
        "yellow_systems": 1,
        "green_systems": 1,
        "email_1_status": "sent",
        "email_1_sent_at": "2026-11-20T08:00:00Z",
    }  # every step overdue at 03:00 Toronto
    xmas("enroll", "assessment", "--payload", "-", "--now", NIGHT, input=json.dumps(body))
    xmas("tick", "--now", NIGHT)
    sent: list[int] = []
    now = utc("2026-12-01T13:00:00Z")
    for _ in range(6):
        xmas("tick", "--now", now.strftime("%Y-%m-%dT%H:%M:%SZ"))
        sent = [r["step"] for r in xmas.json("show", "sarah@example.com")["emails"] if r["state"] == "Sent"]
        now = now.replace(day=now.day + 1)
    assert sent == [2, 3, 4, 5]
    dues = [r["sent_at"] for r in xmas.json("show", "sarah@example.com")["emails"] if r["state"] == "Sent"]
    assert dues == sorted(dues) and len(set(dues)) == 4  # one a day, in order, each inside the window
