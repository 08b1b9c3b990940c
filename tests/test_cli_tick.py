"""`xmas tick` through the CLI on the embedded default: whole timelines, exactly once, dry run, lock, failures."""

from __future__ import annotations

import email
import email.policy
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import SECRET, Cli, body_text
from test_cli_enroll import ASSESSMENT, rows_in_db

from xmas_cli.config import load_campaign
from xmas_cli.core.tokens import read_token
from xmas_cli.lock import file_lock

pytestmark = pytest.mark.every_store  # the rules hold on SQLite and on PostgreSQL

T0 = datetime(2026, 12, 1, 10, 30, tzinfo=UTC)
PEOPLE: dict[str, dict[str, Any]] = {
    "lead-nurture": {"email": "lena@example.com", "first_name": "Lena", "business_name": "Lena Nails"},
    "assessment": ASSESSMENT,
    "noshow": {
        "email": "nina@example.com",
        "first_name": "Nina",
        "calendly_event_id": "evt_1",
        "scheduled_time": "2026-12-01T10:30:00Z",
    },
    "postcall": {
        "email": "paul@example.com",
        "first_name": "Paul",
        "business_name": "Paul's Physio",
        "call_date": "2026-12-01T10:30:00Z",
        "objection": "price",
    },
    "onboarding": {
        "email": "olivia@example.com",
        "first_name": "Olivia",
        "business_name": "Olivia Hair",
        "payment_date": "2026-12-01T10:30:00Z",
        "portal_url": "https://portal.example.org/olivia",
    },
}


def at(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def outbox(project: Path) -> list[email.message.EmailMessage]:
    folder = project / ".xmas" / "outbox"
    files = sorted(folder.glob("*.eml")) if folder.exists() else []
    return [email.message_from_bytes(f.read_bytes(), policy=email.policy.default) for f in files]


def enroll(xmas: Cli, sequence: str, now: datetime = T0, **changes: Any) -> Any:
    return xmas.json(
        "enroll", sequence, "--payload", "-", "--now", at(now), input=json.dumps({**PEOPLE[sequence], **changes})
    )


@pytest.mark.parametrize("testing", [False, True], ids=["production", "testing"])
@pytest.mark.parametrize("sequence", list(PEOPLE))
def test_a_whole_sequence_goes_out_once_each_at_its_time(
    xmas: Cli, project: Path, sequence: str, testing: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if testing:
        monkeypatch.setenv("XMAS_TESTING", "1")
    doc = enroll(xmas, sequence)
    ours = [r for r in doc["scheduled"] if r["sender"] == "xmas"]
    for n, row in enumerate(ours, 1):
        due = datetime.fromisoformat(row["due"])
        if due > T0:  # one second early: nothing new goes out
            xmas("tick", "--now", at(due - timedelta(seconds=1)))
            assert len(outbox(project)) == n - 1
        result = xmas("tick", "--now", at(due))
        assert "1 sent" in result.stdout
        xmas("tick", "--now", at(due))  # the same minute again: still exactly once
        assert len(outbox(project)) == n
    final = {r["step"]: r for r in rows_in_db(project)}
    for row in ours:
        stored = final[row["step"]]
        assert (stored["state"], stored["sent_at"], stored["attempts"]) == ("Sent", row["due"], 1)
        assert stored["message_id"].startswith("<xmas-christmas-2026-")
    subjects = [m["Subject"] for m in outbox(project)]
    assert all("{{" not in s and "None" not in s for s in subjects)
    recipients = {m["To"] for m in outbox(project)}
    assert recipients == {PEOPLE[sequence]["email"]}


def test_the_website_email_is_never_sent_by_xmas(xmas: Cli, project: Path) -> None:
    enroll(xmas, "assessment")
    xmas("tick", "--now", at(T0 + timedelta(days=30)))
    xmas("tick", "--now", at(T0 + timedelta(days=60)))  # catch-up deferrals go out on later ticks
    for day in range(61, 66):
        xmas("tick", "--now", at(T0 + timedelta(days=day)))
    templates = sorted(m["X-Xmas-Tags"] for m in outbox(project))
    assert len(templates) == 4 and not any("step=1" in t for t in templates)
    assert rows_in_db(project)[0]["state"] == "Sent by website"


def test_the_eml_carries_unsubscribe_headers_reply_to_tags_and_both_parts(xmas: Cli, project: Path) -> None:
    enroll(xmas, "lead-nurture")
    enroll(xmas, "onboarding")
    xmas("tick", "--now", at(T0 + timedelta(hours=1)))
    by_to = {m["To"]: m for m in outbox(project)}
    lena, olivia = by_to["lena@example.com"], by_to["olivia@example.com"]
    assert lena["Reply-To"] == "sang@example.org"
    assert lena["From"] == "BusinessX Canada <hello@example.org>"
    assert lena["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    link = lena["List-Unsubscribe"].split(",")[0].strip("<> ")
    assert link.startswith("https://example.org/xmas/unsubscribe?t=")
    assert "<mailto:unsubscribe@example.org?subject=unsubscribe>" in lena["List-Unsubscribe"]
    assert read_token(SECRET, link.split("t=")[1]) == "lena@example.com"
    assert lena["X-Xmas-Tags"] == "campaign=christmas-2026, sequence=lead-nurture, step=1"
    assert olivia["List-Unsubscribe-Post"] is None and olivia["List-Unsubscribe"]  # transactional: link kept
    text = body_text(lena, "plain")
    html = body_text(lena, "html")
    assert "Lena" in text and "{{" not in text and "Unsubscribe" in text
    assert link.replace("&", "&amp;") in html or link in html
    assert "123 Example Street" in html


def test_dry_run_shows_what_would_go_and_changes_nothing(xmas: Cli, project: Path) -> None:
    enroll(xmas, "postcall")
    before = rows_in_db(project)
    result = xmas("tick", "--dry-run", "--now", at(T0 + timedelta(hours=2)))
    assert "would-send" in result.stdout and "paul@example.com" in result.stdout
    assert "1 would-send" in result.stdout
    assert rows_in_db(project) == before and outbox(project) == []


@pytest.mark.sqlite_only  # PostgreSQL's runners run at once by design: test_postgres.py
def test_a_second_tick_while_one_runs_exits_at_once_without_sending(xmas: Cli, project: Path) -> None:
    enroll(xmas, "postcall")
    campaign = load_campaign(project / "campaign.toml", {})
    with file_lock(campaign.path(campaign.tick.lock)):
        result = xmas("tick", "--now", at(T0 + timedelta(hours=2)), code=5)
    assert "another tick is running" in result.stderr
    assert outbox(project) == [] and {r["state"] for r in rows_in_db(project)} == {"Scheduled"}
    assert "1 sent" in xmas("tick", "--now", at(T0 + timedelta(hours=2))).stdout  # the lock is gone with its holder


def test_a_missing_template_makes_its_emails_wait_visibly(xmas: Cli, project: Path) -> None:
    enroll(xmas, "noshow")
    enroll(xmas, "postcall")
    moved = project / "noshow_recovery_email_1.html"
    (project / "templates" / "noshow_recovery_email_1.html").rename(moved)
    result = xmas("tick", "--now", at(T0 + timedelta(hours=1)), code=1)
    assert "1 sent" in result.stdout and "1 waiting" in result.stdout
    assert "template noshow_recovery_email_1 is missing" in result.stdout
    status = xmas("status", "--now", at(T0 + timedelta(hours=1)), code=1)
    assert "noshow_recovery_email_1 is missing" in status.stdout
    moved.rename(project / "templates" / "noshow_recovery_email_1.html")
    assert "1 sent" in xmas("tick", "--now", at(T0 + timedelta(hours=1, minutes=1))).stdout
    assert len(outbox(project)) == 2
    xmas("status", "--now", at(T0 + timedelta(hours=1, minutes=1)))  # healthy again: exit 0


def test_a_render_failure_marks_its_row_and_the_others_still_go(xmas: Cli, project: Path) -> None:
    enroll(xmas, "noshow")
    enroll(xmas, "postcall")
    path = project / "templates" / "postcall_maybe_email_1.html"
    path.write_text(path.read_text().replace("{{ first_name }}", "{{ GenerateScore }}", 1))
    result = xmas("tick", "--now", at(T0 + timedelta(hours=1)), code=1)
    assert "1 sent" in result.stdout and "1 failed" in result.stdout
    failed = [r for r in rows_in_db(project) if r["state"] == "Failed"]
    assert len(failed) == 1 and "'GenerateScore' is undefined" in failed[0]["last_error"]
    assert [m["To"] for m in outbox(project)] == ["nina@example.com"]
    assert "GenerateScore" in xmas("status", code=1).stdout


def test_catch_up_at_tick_time_sends_one_email_per_enrollment(xmas: Cli, project: Path) -> None:
    enroll(xmas, "lead-nurture")
    late = T0 + timedelta(days=5)  # cron was down: E1 (day 0), E2 (day 2) and E3 (day 4) are all due
    result = xmas("tick", "--now", at(late))
    assert "1 sent" in result.stdout and "2 deferred" in result.stdout
    dues = {r["step"]: r["due"] for r in rows_in_db(project)}
    assert dues[2] == at(late + timedelta(days=1)) and dues[3] == at(late + timedelta(days=2))
    assert "1 sent" in xmas("tick", "--now", at(late + timedelta(days=1))).stdout


@pytest.mark.sqlite_only
def test_a_contact_suppressed_after_enrollment_is_skipped(xmas: Cli, project: Path) -> None:
    import sqlite3

    enroll(xmas, "postcall")
    con = sqlite3.connect(project / ".xmas" / "xmas.db")
    con.execute("UPDATE contacts SET suppressed = 1, suppressed_reason = 'bounced' WHERE email = 'paul@example.com'")
    con.commit()
    result = xmas("tick", "--now", at(T0 + timedelta(hours=2)))
    assert "1 skipped" in result.stdout and outbox(project) == []
    assert rows_in_db(project)[0]["state"] == "Skipped"


def test_limit_and_xmas_now_and_json_report(xmas: Cli, project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    enroll(xmas, "noshow")
    enroll(xmas, "postcall")
    monkeypatch.setenv("XMAS_NOW", at(T0 + timedelta(hours=2)))
    doc = xmas.json("tick", "--limit", "1")
    assert doc["due"] == 1 and [o["action"] for o in doc["outcomes"]] == ["sent"]
    doc = xmas.json("tick")
    assert doc["now"] == at(T0 + timedelta(hours=2)) and [o["action"] for o in doc["outcomes"]] == ["sent"]
    assert "2026" in xmas("tick").stdout and len(outbox(project)) == 2


def test_tick_without_a_secret_refuses_to_send(xmas: Cli, project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    enroll(xmas, "postcall")
    monkeypatch.delenv("XMAS_SECRET")
    result = xmas("tick", "--now", at(T0 + timedelta(hours=2)), code=3)
    assert "XMAS_SECRET is not set" in result.stderr and outbox(project) == []
    monkeypatch.setenv("XMAS_SECRET", "x")
    assert xmas("tick", "--now", at(T0 + timedelta(hours=2)), code=3).stderr.count("shorter than 16") == 1


def test_an_idle_tick_is_quiet_and_succeeds(xmas: Cli) -> None:
    assert xmas("tick", "--now", at(T0)).stdout.strip() == "tick 2026-12-01T10:30:00Z: 0 due"
