"""`xmas import` on the Notion store: the lines become Contacts and tracker rows; the file again writes nothing."""

from __future__ import annotations

from pathlib import Path

from conftest import Cli
from test_cli_tick import T0, at
from test_import import GOOD
from test_notion_e2e import Notion, emu, notion, on_notion  # noqa: F401 (the fixtures)


def test_import_on_notion(xmas: Cli, notion: Notion, project: Path) -> None:  # noqa: F811
    (project / "leads.csv").write_text(GOOD, encoding="utf-8")
    doc = xmas.json("import", "leads.csv", "--sequence", "lead-nurture", "--now", at(T0))
    assert [(x["line"], x["status"]) for x in doc["lines"]] == [(2, "enrolled"), (3, "enrolled"), (4, "duplicate")]
    people = sorted(r["Email"] for r in notion.rows("contacts") if r["Email"])  # not the Campaign control row
    assert people == ["ada@example.com", "bob@example.com"]
    assert len(notion.rows()) == 10
    notion.emu.reset_requests()
    again = xmas.json("import", "leads.csv", "--sequence", "lead-nurture", "--now", at(T0))
    assert [x["status"] for x in again["lines"]] == ["already enrolled", "already enrolled", "duplicate"]
    assert not [r for r in notion.requests() if r.startswith("create")]
    assert len(notion.rows()) == 10
