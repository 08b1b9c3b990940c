"""Operator commands: status, show, preview, templates check, demo, config errors, help texts."""

from __future__ import annotations

import json
import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest
from conftest import Cli, replace_once
from test_cli_tick import T0, at, enroll, outbox

pytestmark = pytest.mark.every_store  # the rules hold on SQLite and on PostgreSQL


def test_status_counts_next_due_and_exit_code(xmas: Cli, project: Path) -> None:
    enroll(xmas, "postcall")
    enroll(xmas, "assessment")
    doc = xmas.json("status", "--now", at(T0))
    assert doc["counts"]["postcall"] == {"Scheduled": 3}
    assert doc["counts"]["assessment"] == {"Sent by website": 1, "Scheduled": 4}
    assert doc["next_due"]["template"] == "postcall_maybe_email_1" and doc["overdue"] == 0
    doc = xmas.json("status", "--now", at(T0.replace(hour=12)))
    assert doc["overdue"] == 1 and doc["problems"] == []
    table = xmas("status", "--now", at(T0)).stdout
    assert "postcall" in table and "next due: 2026-12-01T11:30:00Z paul@example.com postcall #1" in table


def test_show_prints_one_contacts_timeline(xmas: Cli) -> None:
    enroll(xmas, "assessment")
    xmas("tick", "--now", "2026-12-02T10:30:00Z")
    doc = xmas.json("show", "SARAH@sarahssalon.com")
    assert doc["contact"]["segment"] == "CRITICAL" and doc["contact"]["fields"]["weakest_system_2"] == "Money"
    assert [(e["step"], e["state"]) for e in doc["emails"]] == [
        (1, "Sent by website"),
        (2, "Sent"),
        (3, "Scheduled"),
        (4, "Scheduled"),
        (5, "Scheduled"),
    ]
    text = xmas("show", "sarah@sarahssalon.com").stdout
    assert "christmas_email_2" in text and "segment CRITICAL" in text
    assert "no contact" in xmas("show", "who@example.com", code=2).stderr


def test_preview_with_sample_data_a_contact_and_a_data_file(xmas: Cli, project: Path) -> None:
    out = xmas("preview", "christmas_email_2", "--html", "e2.html").stdout
    assert "Subject:" in out and "Sarah" in out and "sample data" in out
    html = (project / "e2.html").read_text()
    assert "<html" in html.lower() and "unsubscribe?t=" in html
    enroll(xmas, "postcall")
    out = xmas("preview", "postcall_maybe_email_1", "--contact", "paul@example.com").stdout
    assert "Paul" in out and "contact paul@example.com" in out
    (project / "data.json").write_text(json.dumps({"email": "z@example.com", "first_name": "<Zed>"}))
    xmas("preview", "lead_nurture_email_1", "--data", "data.json", "--html", "z.html")
    assert "&lt;Zed&gt;" in (project / "z.html").read_text()
    assert "not found" in xmas("preview", "nope_email", code=2).stderr
    assert "'GenerateScore' is undefined" not in xmas("preview", "christmas_email_1").stdout


def test_preview_reports_a_render_error_clearly(xmas: Cli, project: Path) -> None:
    (project / "templates" / "broken.html").write_text("Subject: Hi\n\n<p>{{ GenerateScore }}</p>")
    result = xmas("preview", "broken", code=1)
    assert "xmas: error: template broken body line 1: 'GenerateScore' is undefined" in result.stderr


def test_templates_check_passes_on_the_shipped_templates(xmas: Cli) -> None:
    doc = xmas.json("templates", "check")
    assert doc["ok"] is True and len(doc["templates"]) == 20  # 19 emails and their layout
    used = {t["template"]: t["used_by"] for t in doc["templates"]}
    assert used["christmas_email_1"] == ["assessment #1 (website)"]


def test_templates_check_fails_on_missing_broken_or_unlinked_templates(xmas: Cli, project: Path) -> None:
    (project / "templates" / "christmas_email_3.html").unlink()
    (project / "templates" / "christmas_email_4.html").write_text("Subject: x\n\n{{ weakest_system_1 }}")
    (project / "templates" / "christmas_email_5.html").write_text("Subject: x\n\n<p>no link</p>")
    doc = xmas.json("templates", "check", code=1)
    problems = {t["template"]: t["problem"] for t in doc["templates"] if not t["ok"]}
    assert set(problems) == {"christmas_email_3", "christmas_email_4", "christmas_email_5"}
    assert problems["christmas_email_3"].startswith(("missing from SQLite", "missing from PostgreSQL"))
    assert "would be printed" in problems["christmas_email_4"]  # None with sparse data
    assert "no unsubscribe link" in problems["christmas_email_5"]
    assert "3 with problems" in xmas("templates", "check", code=1).stdout


def test_demo_runs_the_whole_funnel_in_a_fresh_folder(xmas: Cli, project: Path) -> None:
    result = xmas("demo", "--dir", "demo-here", "--now", "2026-12-01T09:00:00Z")
    assert "20 emails sent; 20 .eml files in" in result.stdout
    assert "omar@example.com unsubscribed" in result.stdout
    assert len(list((project / "demo-here" / ".xmas" / "outbox").glob("*.eml"))) == 20
    again = xmas("demo", "--dir", "demo-here", "--now", "2026-12-01T09:00:00Z")  # re-runnable
    assert "20 emails sent" in again.stdout
    (project / "mine").mkdir()
    (project / "mine" / "keep.txt").write_text("x")
    assert "not a demo folder" in xmas("demo", "--dir", "mine", code=2).stderr
    assert (project / "mine" / "keep.txt").exists()
    assert outbox(project) == []  # the project's own outbox is untouched


def test_config_errors_exit_3_and_name_the_file(xmas: Cli, project: Path) -> None:
    result = xmas("status", "--config", "nope.toml", code=3)
    assert "nope.toml: no such file" in result.stderr and "--config" in result.stderr
    text = replace_once((project / "campaign.toml").read_text(), "spots_total = 20", "spots_total = -1")
    (project / "campaign.toml").write_text(text)
    result = xmas("status", code=3)
    assert "campaign.toml: values.spots_total: Input should be greater than or equal to 0" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_bad_now_is_refused(xmas: Cli) -> None:
    assert "has no UTC offset" in xmas("tick", "--now", "2026-12-01T10:00:00", code=2).stderr
    assert "not an ISO 8601 time" in xmas("tick", "--now", "tomorrow", code=2).stderr


@pytest.mark.sqlite_only
def test_store_errors_exit_4(xmas: Cli, project: Path) -> None:
    (project / ".xmas").mkdir()
    (project / ".xmas" / "xmas.db").write_text("this is not a database")
    result = xmas("status", code=4)
    assert "xmas: error:" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.sqlite_only
def test_the_due_query_uses_the_state_due_index(xmas: Cli, project: Path) -> None:
    enroll(xmas, "postcall")
    con = sqlite3.connect(project / ".xmas" / "xmas.db")
    plan = con.execute(
        "EXPLAIN QUERY PLAN SELECT * FROM emails WHERE state = ? AND due <= ? ORDER BY due, id", ("Scheduled", at(T0))
    ).fetchall()
    assert "USING INDEX emails_state_due" in " ".join(str(p) for p in plan)


@pytest.mark.parametrize(
    "command",
    ["enroll noshow", "tick", "preview", "status", "show", "cancel", "unsubscribe", "demo", "templates check"],
)
def test_every_command_has_help_and_takes_config(xmas: Cli, command: str) -> None:
    out = xmas(*command.split(), "--help").stdout
    assert "--config" in out and len(out.splitlines()) > 5


def test_retry_puts_failed_emails_back_after_a_fix(xmas: Cli, project: Path) -> None:
    enroll(xmas, "postcall")
    path = project / "templates" / "postcall_maybe_email_1.html"
    good = path.read_text()
    path.write_text(good.replace("{{ first_name }}", "{{ GenerateScore }}", 1))
    xmas("tick", "--now", at(T0 + timedelta(hours=1)), code=1)
    path.write_text(good)
    assert "no contact" in xmas("retry", "nobody@example.com", code=2).stderr
    result = xmas("retry", "paul@example.com", "--now", at(T0 + timedelta(hours=2)))
    assert "1 failed email(s) scheduled again" in result.stdout
    assert "1 sent" in xmas("tick", "--now", at(T0 + timedelta(hours=2))).stdout
    assert [m["To"] for m in outbox(project)] == ["paul@example.com"]
    doc = xmas.json("show", "paul@example.com")
    assert (doc["emails"][0]["state"], doc["emails"][0]["attempts"]) == ("Sent", 1)
    xmas("unsubscribe", "paul@example.com")
    assert "is suppressed" in xmas("retry", "paul@example.com", code=2).stderr
