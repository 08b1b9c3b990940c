"""`xmas plan --apply` on the Notion store: the tracker rows a timing edit concerns move, noted; a row a person
paused in Notion stays paused; applying twice sends Notion no write."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from conftest import Cli, replace_once
from test_cli_tick import T0, at
from test_notion_e2e import Notion, emu, enroll, notion, on_notion  # noqa: F401 (the fixtures)


def test_plan_applies_on_notion(xmas: Cli, notion: Notion, project: Path) -> None:  # noqa: F811
    enroll(xmas, "lead-nurture", now=T0)
    xmas("tick", "--now", at(T0))
    steps = {r["Step"]: r for r in notion.rows()}
    notion.edit(steps[4]["page_id"], State={"select": {"name": "Paused"}})  # a person pauses step 4
    path = project / "campaign.toml"
    text = replace_once(
        path.read_text(), '"lead_nurture_email_3", offset = "4d"', '"lead_nurture_email_3", offset = "5d"'
    )
    text = replace_once(text, '"lead_nurture_email_4", offset = "6d"', '"lead_nurture_email_4", offset = "7d"')
    path.write_text(text)
    later = at(T0 + timedelta(hours=1))

    doc = xmas.json("plan", "--apply", "--now", later)
    assert [(c["kind"], c["step"], c["old_due"], c["new_due"]) for c in doc["changes"]] == [
        ("retime", 3, at(T0 + timedelta(days=4)), at(T0 + timedelta(days=5))),
        ("paused", 4, at(T0 + timedelta(days=6)), at(T0 + timedelta(days=7))),
    ]
    after = {r["Step"]: r for r in notion.rows()}
    assert (after[3]["State"], after[3]["Due"]) == ("Scheduled", at(T0 + timedelta(days=5)))
    assert after[3]["Note"] == f"plan: re-timed from {at(T0 + timedelta(days=4))}; planned {at(T0 + timedelta(days=5))}"
    assert (after[4]["State"], after[4]["Due"]) == ("Paused", at(T0 + timedelta(days=6)))
    assert after[1] == steps[1] and after[2] == steps[2] and after[5] == steps[5]

    notion.emu.reset_requests()
    again = xmas.json("plan", "--apply", "--now", later)
    assert [c["kind"] for c in again["changes"]] == ["paused"]
    assert not [r for r in notion.requests() if r.startswith(("update", "create"))]  # twice: no write
