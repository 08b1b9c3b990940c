"""`xmas broadcast` on the Notion store: the rows show in the tracker under the broadcast's name, the tick sends
them, and the same broadcast again writes nothing."""

from __future__ import annotations

from pathlib import Path

from conftest import Cli
from test_broadcast import SPOTS
from test_cli_tick import T0, at
from test_notion_e2e import Notion, emu, enroll, notion, on_notion, outbox  # noqa: F401 (the fixtures)


def test_broadcast_on_notion(xmas: Cli, notion: Notion, project: Path) -> None:  # noqa: F811
    (project / "templates" / "spots_left.html").write_text(SPOTS)
    xmas("templates", "push")
    enroll(xmas, "lead-nurture", now=T0)
    doc = xmas.json("broadcast", "spots_left", "--where", "in lead-nurture and not booked", "--now", at(T0))
    assert [(t["email"], t["status"]) for t in doc["targets"]] == [("lena@example.com", "scheduled")]
    [row] = [r for r in notion.rows() if r["Sequence"] == "broadcast"]
    assert (row["Email"], row["Template"], row["State"], row["Row ID"]) == (
        "lena@example.com",
        "spots_left",
        "Scheduled",
        "broadcast:lena@example.com|spots_left#1",
    )
    xmas("tick", "--now", at(T0))
    assert [m["Subject"] for m in outbox(project)].count("Lena, 3 spots left") == 1
    notion.emu.reset_requests()
    again = xmas.json("broadcast", "spots_left", "--where", "in lead-nurture and not booked", "--now", at(T0))
    assert [t["status"] for t in again["targets"]] == ["already"]
    assert not [r for r in notion.requests() if r.startswith(("create", "update"))]
