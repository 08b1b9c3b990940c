"""Running the campaign from Notion: the control row that pauses it, the Action column on a contact, a ticked
Unsubscribed; and `xmas pause` / `xmas resume` on the Notion store. Through the CLI, the real notion-client and the
emulator; a person's edits are made with a plain SDK client. Request counts are asserted exactly."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

from conftest import Cli
from test_cli_tick import T0, at
from test_notion_e2e import Notion, emu, enroll, notion, on_notion, outbox  # noqa: F401  (emu and notion are fixtures)


def control(world: Notion, title: str = "Campaign") -> dict[str, Any]:
    [row] = [r for r in world.rows("contacts") if r["Name"] == title and not r["Email"]]
    return row


def pick(world: Notion, address: str, action: str) -> None:
    """The owner picks an action on a contact's row."""
    world.edit(world.contact(address)["page_id"], Action={"select": {"name": action}})


def test_setup_makes_the_control_row_and_ticking_paused_in_notion_pauses_everything(
    xmas: Cli,
    notion: Notion,  # noqa: F811
    project: Path,
) -> None:
    row = control(notion)
    assert (row["Paused"], row["Paused Since"]) == (False, None)
    enroll(xmas, "lead-nurture")
    notion.edit(
        row["page_id"],
        Paused={"checkbox": True},
        **{"Pause Reason": {"rich_text": [{"text": {"content": "typo in E1"}}]}},
    )
    notion.emu.reset_requests()
    first = xmas("tick", "--now", at(T0))
    assert (
        first.stdout
        == f"tick {at(T0)}: 0 due; PAUSED: the whole campaign paused since {at(T0)} (by notion): typo in E1\n"
    )
    assert outbox(project) == []
    # the tick stamped when: 1 query of Contacts, 1 update of the control row; the due rows are not even read
    assert notion.requests() == ["query contacts", "update page"]
    stamped = control(notion)
    assert (stamped["Paused Since"], stamped["Action Result"]) == (at(T0), f"paused in Notion at {at(T0)}")
    notion.emu.reset_requests()
    later = T0 + timedelta(minutes=5)
    assert "PAUSED: the whole campaign paused since" in xmas("tick", "--now", at(later)).stdout
    assert notion.requests() == ["query contacts"]  # a paused idle tick: 1 request
    status = xmas.json("status", "--now", at(later))
    assert status["paused"] == [{"sequence": None, "since": at(T0), "reason": "typo in E1", "by": "notion"}]

    notion.edit(row["page_id"], Paused={"checkbox": False})  # the owner resumes
    resumed = xmas.json("tick", "--now", at(later))
    assert [(o["step"], o["action"]) for o in resumed["outcomes"]] == [(1, "sent")] and resumed["paused"] == []
    after = control(notion)
    assert after["Paused Since"] is None
    assert after["Action Result"] == f"resumed in Notion at {at(later)} (paused since {at(T0)})"


def test_xmas_pause_and_resume_on_notion_write_the_control_rows(xmas: Cli, notion: Notion, project: Path) -> None:  # noqa: F811
    enroll(xmas, "lead-nurture")
    enroll(xmas, "postcall")
    paused = xmas("pause", "--sequence", "lead-nurture", "--reason", "new prices", "--now", at(T0))
    assert paused.stdout == f"sequence lead-nurture paused since {at(T0)} (by cli): new prices\n"
    row = control(notion, "Campaign: lead-nurture")  # a new control row, for this sequence
    assert (row["Paused"], row["Paused Since"], row["Pause Reason"]) == (True, at(T0), "new prices")
    assert row["Action Result"] == f"paused by cli at {at(T0)}"
    late = T0 + timedelta(hours=2)
    doc = xmas.json("tick", "--now", at(late))
    assert [o["sequence"] for o in doc["outcomes"]] == ["postcall"] and doc["held_by_pause"] == 1
    assert doc["paused"] == [f"sequence lead-nurture paused since {at(T0)} (by cli): new prices"]
    assert control(notion, "Campaign: lead-nurture")["Paused Since"] == at(T0)  # stamped by the CLI, kept

    out = xmas("resume", "--discard-missed", "--now", at(late))
    assert out.stdout == (
        f"sequence lead-nurture resumed (paused since {at(T0)}); 1 email(s) that came due meanwhile skipped\n"
    )
    done = control(notion, "Campaign: lead-nurture")
    assert (done["Paused"], done["Paused Since"]) == (False, None)
    assert done["Action Result"] == f"resumed by cli at {at(late)} (paused since {at(T0)})"
    [first] = [r for r in notion.rows() if r["Sequence"] == "lead-nurture" and r["Step"] == 1]
    assert first["State"] == "Skipped" and first["Note"].startswith(
        f"came due while paused (since {at(T0)}: new prices)"
    )
    assert control(notion)["Paused"] is False  # the whole campaign's row was never touched


def test_actions_picked_in_notion_are_applied_cleared_and_answered(xmas: Cli, notion: Notion, project: Path) -> None:  # noqa: F811
    enroll(xmas, "lead-nurture")  # lena@example.com
    enroll(xmas, "postcall")  # paul@example.com
    lea, paul = "lena@example.com", "paul@example.com"
    pick(notion, lea, "Pause")
    pick(notion, paul, "Enroll in post-call maybe")
    notion.emu.reset_requests()
    doc = xmas.json("tick", "--now", at(T0))
    assert doc["actions"] == [
        f"{lea}: Pause: paused 5 scheduled email(s)",
        f"{paul}: Enroll in post-call maybe: error: {paul} cannot be enrolled in postcall: no booked call with a start "
        "time on record — record the booking first (Calendly, or `xmas event booked`), or run `xmas enroll postcall` "
        "with the call's time",
    ]
    assert doc["outcomes"] == []  # paused rows are not due; postcall's first email is due in an hour
    lea_row, paul_row = notion.contact(lea), notion.contact(paul)
    assert (lea_row["Action"], lea_row["Action Result"]) == (None, f"{at(T0)} Pause: paused 5 scheduled email(s)")
    assert paul_row["Action"] is None and paul_row["Action Result"].startswith(
        f"{at(T0)} Enroll in post-call maybe: error:"
    )
    assert {r["State"] for r in notion.rows() if r["Email"] == lea} == {"Paused"}
    assert {r["Sequence"] for r in notion.rows() if r["Email"] == paul} == {"postcall"}  # nothing half-done
    # the cost: 1 query of what was asked; each action what `xmas contact` pays (Pause: look up the contact, read its
    # rows, update 5; the refused maybe: look up the contact, whose events come with it); 1 update to answer each;
    # then the due query
    assert Counter(notion.requests()) == {"query contacts": 1 + 1 + 1, "query tracker": 1 + 1, "update page": 5 + 2}
    notion.emu.reset_requests()
    assert xmas("tick", "--now", at(T0)).stdout == f"tick {at(T0)}: 0 due\n"  # cleared: applied once
    assert notion.requests() == ["query contacts", "query tracker"]

    pick(notion, lea, "Stop")
    pick(notion, paul, "Mark booked")
    doc = xmas.json("tick", "--now", at(T0 + timedelta(minutes=1)))
    assert doc["actions"] == [
        f"{lea}: Stop: cancelled 5 pending email(s)",
        f"{paul}: Mark booked: marked booked: cancelled 0 pending email(s)",
    ]
    assert {r["State"] for r in notion.rows() if r["Email"] == lea} == {"Cancelled"}
    assert notion.contact(paul)["Booking Status"] == "booked"


def test_an_action_on_the_control_row_or_an_unknown_one_is_answered_with_the_fix(xmas: Cli, notion: Notion) -> None:  # noqa: F811
    enroll(xmas, "lead-nurture")
    notion.edit(control(notion)["page_id"], Action={"select": {"name": "Stop"}})
    notion.edit(notion.contact("lena@example.com")["page_id"], Action={"select": {"name": "Shout"}})
    doc = xmas.json("tick", "--now", at(T0))
    assert doc["actions"] == [
        "lena@example.com: Shout: error: unknown action 'Shout' — pick one of Pause, Resume, Stop, Enroll in post-call "
        "maybe, Mark booked"
    ]
    assert control(notion)["Action"] is None
    assert control(notion)["Action Result"].startswith("error: actions apply to a contact")
    assert [o["action"] for o in doc["outcomes"]] == ["sent"]
