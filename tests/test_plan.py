"""`xmas plan [--apply]` after edits of campaign.toml, through the CLI, on SQLite and PostgreSQL (Notion: its own
test below): only pending rows change, paused rows stay paused, Sent rows are never touched, the catch-up rule
holds, and applying twice changes nothing. `tick` warns once after an edit."""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import Cli, replace_once
from test_cli_tick import T0, at

from xmas_cli.backends import engine_from_config
from xmas_cli.core.model import State

pytestmark = pytest.mark.every_store

ADA, BOB = "ada@example.com", "bob@example.com"


def edit(project: Path, old: str, new: str) -> None:
    path = project / "campaign.toml"
    path.write_text(replace_once(path.read_text(), old, new))


def enroll_two(xmas: Cli) -> None:
    for email, name in ((ADA, "Ada"), (BOB, "Bob")):
        xmas("enroll", "lead-nurture", "--email", email, "--first-name", name, "--now", at(T0))
    xmas("tick", "--now", at(T0))  # step 1 goes to both


def stored(project: Path) -> list[tuple[str, int, str, str, str, str | None]]:
    engine = engine_from_config(str(project / "campaign.toml"), at(T0))
    try:
        rows = sorted(engine.store.all_emails(), key=lambda r: r.id)
        return [(r.email, r.step, r.template, r.state.value, at(r.due), r.note) for r in rows]
    finally:
        engine.close()


def pause(project: Path, email: str, step: int) -> None:
    engine = engine_from_config(str(project / "campaign.toml"), at(T0))
    try:
        [row] = [r for r in engine.store.emails_for_contact(email) if r.step == step]
        engine.store.update_email(row, {"state": State.PAUSED})
    finally:
        engine.close()


def changes(doc: dict[str, Any]) -> list[tuple[Any, ...]]:
    return [(c["kind"], c["email"], c["step"], c["template"], c["old_due"], c["new_due"]) for c in doc["changes"]]


def day(n: float) -> str:
    return at(T0 + timedelta(days=n))


def test_a_timing_edit_retimes_pending_rows_only_and_keeps_paused_ones(xmas: Cli, project: Path) -> None:
    enroll_two(xmas)
    pause(project, BOB, 3)
    edit(
        project, 'template = "lead_nurture_email_3", offset = "4d"', 'template = "lead_nurture_email_3", offset = "5d"'
    )
    before = stored(project)
    later = at(T0 + timedelta(hours=1))

    doc = xmas.json("plan", "--now", later)
    assert doc["applied"] is False and doc["counts"] == {"retime": 1, "paused": 1}
    assert changes(doc) == [
        ("retime", ADA, 3, "lead_nurture_email_3", day(4), day(5)),
        ("paused", BOB, 3, "lead_nurture_email_3", day(4), day(5)),
    ]
    assert stored(project) == before  # the plan alone writes nothing
    text = xmas("plan", "--now", later).stdout
    assert text == (
        "lead-nurture #3 lead_nurture_email_3\n"
        f"  re-timed: {ADA} {day(4)} → {day(5)}\n"
        f"  paused, kept: {BOB} (paused by a person: left as it is)\n"
        "1 change(s) to make: run `xmas plan --apply` to make them\n"
    )

    applied = xmas("plan", "--apply", "--now", later).stdout
    assert applied.endswith(f"applied at {later}: 1 change(s) written, each noted on its row\n")
    after = stored(project)
    note = f"plan: re-timed from {day(4)}; planned {day(5)}"
    expected = [
        (e, s, t, st, day(5) if (e, s) == (ADA, 3) else due, note if (e, s) == (ADA, 3) else n)
        for e, s, t, st, due, n in before
    ]
    assert after == expected
    assert {(e, s): st for e, s, _, st, _, _ in after}[(BOB, 3)] == "Paused"
    assert [r for r in after if r[3] == "Sent"] == [r for r in before if r[3] == "Sent"]

    again = xmas.json("plan", "--apply", "--now", at(T0 + timedelta(hours=2)))
    assert again["counts"] == {"paused": 1} and stored(project) == after  # twice: nothing more


def test_catch_up_holds_when_a_step_moves_into_the_past(xmas: Cli, project: Path) -> None:
    enroll_two(xmas)
    edit(
        project, 'template = "lead_nurture_email_2", offset = "2d"', 'template = "lead_nurture_email_2", offset = "1h"'
    )
    now = T0 + timedelta(hours=3)
    doc = xmas.json("plan", "--apply", "--now", at(now))
    # step 2 is now overdue: it goes at once; step 3 (4d) stays, more than a catch-up gap (24h) later
    assert changes(doc) == [
        ("retime", ADA, 2, "lead_nurture_email_2", day(2), at(now)),
        ("retime", BOB, 2, "lead_nurture_email_2", day(2), at(now)),
    ]
    assert xmas.json("plan", "--now", at(now + timedelta(minutes=5)))["changes"] == []


def test_removed_renamed_and_missing_steps(xmas: Cli, project: Path) -> None:
    enroll_two(xmas)
    templates = project / "templates"
    shutil.copy(templates / "lead_nurture_email_4.html", templates / "lead_nurture_email_4b.html")
    edit(project, '"lead_nurture_email_4", offset', '"lead_nurture_email_4b", offset')  # renamed
    edit(project, '"lead_nurture_email_3", offset', '"lead_nurture_email_3x", offset')  # renamed, with no file
    edit(project, '  { template = "lead_nurture_email_5", offset = "8d",   testing_offset = "4m" },\n', "")  # removed
    now = at(T0 + timedelta(hours=1))
    doc = xmas.json("plan", "--now", now)
    assert doc["counts"] == {"rename": 4, "cancel": 2, "missing": 1}
    kinds = [(c["kind"], c["email"], c["step"], c["template"], c["old_template"]) for c in doc["changes"]]
    assert kinds == [
        ("rename", ADA, 3, "lead_nurture_email_3x", "lead_nurture_email_3"),
        ("rename", BOB, 3, "lead_nurture_email_3x", "lead_nurture_email_3"),
        ("missing", None, 3, "lead_nurture_email_3x", None),
        ("rename", ADA, 4, "lead_nurture_email_4b", "lead_nurture_email_4"),
        ("rename", BOB, 4, "lead_nurture_email_4b", "lead_nurture_email_4"),
        ("cancel", ADA, 5, "lead_nurture_email_5", None),
        ("cancel", BOB, 5, "lead_nurture_email_5", None),
    ]
    assert "  template missing: the store has no template 'lead_nurture_email_3x'" in xmas("plan", "--now", now).stdout
    xmas("plan", "--apply", "--now", now)
    ada = [r for r in stored(project) if r[0] == ADA]
    assert [(s, t, st, due) for _, s, t, st, due, _ in ada] == [
        (1, "lead_nurture_email_1", "Sent", at(T0)),
        (2, "lead_nurture_email_2", "Scheduled", day(2)),
        (3, "lead_nurture_email_3", "Cancelled", day(4)),
        (3, "lead_nurture_email_3x", "Scheduled", day(4)),
        (4, "lead_nurture_email_4", "Cancelled", day(6)),
        (4, "lead_nurture_email_4b", "Scheduled", day(6)),
        (5, "lead_nurture_email_5", "Cancelled", day(8)),
    ]
    assert ada[6][5] == "plan: step removed from [sequences.lead-nurture] in campaign.toml"
    replacement = f"lead-nurture:{ADA}#4.lead_nurture_email_4b"
    assert ada[4][5] == f"plan: template lead_nurture_email_4 renamed lead_nurture_email_4b: replaced by {replacement}"
    again = xmas.json("plan", "--apply", "--now", now)
    assert again["counts"] == {"missing": 1} and [r for r in stored(project) if r[0] == ADA] == ada


def test_a_new_step_reaches_only_running_enrollments(xmas: Cli, project: Path) -> None:
    enroll_two(xmas)
    xmas("cancel", BOB)  # Bob's enrollment is over
    templates = project / "templates"
    shutil.copy(templates / "lead_nurture_email_5.html", templates / "lead_nurture_email_6.html")
    edit(
        project,
        '{ template = "lead_nurture_email_5", offset = "8d",   testing_offset = "4m" },',
        '{ template = "lead_nurture_email_5", offset = "8d",   testing_offset = "4m" },\n'
        '  { template = "lead_nurture_email_6", offset = "10d", testing_offset = "5m" },',
    )
    doc = xmas.json("plan", "--apply", "--now", at(T0 + timedelta(hours=1)))
    assert changes(doc) == [("add", ADA, 6, "lead_nurture_email_6", None, day(10))]


def test_tick_warns_once_after_an_edit(xmas: Cli, project: Path) -> None:
    enroll_two(xmas)
    assert "warning" not in xmas("tick", "--now", at(T0 + timedelta(minutes=1))).stderr
    edit(
        project, 'template = "lead_nurture_email_3", offset = "4d"', 'template = "lead_nurture_email_3", offset = "5d"'
    )
    first = xmas("tick", "--now", at(T0 + timedelta(minutes=2))).stderr
    assert first == (
        "xmas: warning: campaign.toml changed and 2 scheduled email(s) do not follow it yet (re-timed, added, "
        "removed or renamed steps): see `xmas plan`, then `xmas plan --apply`\n"
    )
    assert xmas("tick", "--now", at(T0 + timedelta(minutes=3))).stderr == ""  # once


def test_an_anchored_sequence_counts_from_its_payload_time(xmas: Cli, project: Path) -> None:
    """The assessment counts from email_1_sent_at: enrolled late (a day after), its rows were planned from the
    payload's time, and a re-timed step is too (not from the enrollment)."""
    import json

    from test_cli_enroll import ASSESSMENT

    (project / "payload.json").write_text(json.dumps(ASSESSMENT))
    xmas("enroll", "assessment", "--payload", "payload.json", "--now", at(T0 + timedelta(hours=2)))
    edit(project, '"christmas_email_3", offset = "72h"', '"christmas_email_3", offset = "80h"')
    doc = xmas.json("plan", "--apply", "--now", at(T0 + timedelta(hours=3)))
    sarah = ASSESSMENT["email"]
    assert changes(doc) == [
        ("retime", sarah, 3, "christmas_email_3", at(T0 + timedelta(hours=72)), at(T0 + timedelta(hours=80)))
    ]
    assert xmas.json("plan", "--now", at(T0 + timedelta(hours=4)))["changes"] == []


def test_a_row_due_already_stays_due(xmas: Cli, project: Path) -> None:
    """Overdue (the tick did not run) and moved earlier: it is due either way, so nothing changes."""
    for email, name in ((ADA, "Ada"),):
        xmas("enroll", "lead-nurture", "--email", email, "--first-name", name, "--now", at(T0))
    edit(
        project, 'template = "lead_nurture_email_2", offset = "2d"', 'template = "lead_nurture_email_2", offset = "1d"'
    )
    assert xmas.json("plan", "--now", at(T0 + timedelta(days=3)))["changes"] == []
