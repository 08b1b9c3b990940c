# ruff: noqa: F811  (pytest fixtures imported from test_notion_e2e are named again as the tests' parameters)
"""The funnel's facts as Contacts columns on Notion (Call Time, Payment Status, Package): written with the page update
an enrollment or a booking makes anyway, the later call time kept, never cleared; added by setup and upgrade, named by
check, renamable under [notion.properties.contacts]. Through the CLI, the real notion-client and the emulator."""

from __future__ import annotations

import json
import logging
import tomllib
from datetime import timedelta
from pathlib import Path

import pytest
from conftest import Cli
from notion_client import Client
from notion_emulator import NotionEmulator
from test_cli_tick import PEOPLE, T0, at
from test_notion_e2e import TOKEN, Notion, emu, enroll, notion, on_notion, use_notion  # noqa: F401  (fixtures)

FUNNEL = ("Call Time", "Payment Status", "Package")
PAUL = "paul@example.com"  # PEOPLE["postcall"]: his call was at 2026-12-01T10:30:00Z


def funnel_of(notion: Notion, address: str, names: tuple[str, ...] = FUNNEL) -> list[object]:
    contact = notion.contact(address)
    return [contact[name] for name in names]


def test_a_postcall_enrollment_and_bookings_fill_call_time_in_the_updates_they_make_anyway(
    xmas: Cli, notion: Notion
) -> None:
    enroll(xmas, "postcall")
    assert notion.requests() == ["query contacts", "query tracker", "create page"] + ["create page"] * 3
    assert funnel_of(notion, PAUL) == ["2026-12-01T10:30:00Z", None, ""]
    data = json.loads(notion.contact(PAUL)["Data"])
    assert "call_date" not in data and "objection" not in data  # enrollment data, not the contact's fields

    # a booking of a later call: its time, in the update that records the event (as before: 2 lookups, 1 update,
    # the rows it cancels)
    notion.emu.reset_requests()
    later = {"start_time": "2026-12-09T16:00:00Z", "calendly_event_id": "evt_9"}
    xmas("event", "booked", "--email", PAUL, "--at", at(T0), "--data", json.dumps(later), "--now", at(T0))
    assert notion.requests() == ["query contacts", "query contacts", "update page", "query tracker"]
    assert funnel_of(notion, PAUL) == ["2026-12-09T16:00:00Z", None, ""]

    # an earlier time arriving later moves nothing: a booking of an earlier call, a post-call enrollment again
    earlier = {"start_time": "2026-12-03T09:00:00Z"}
    step = T0 + timedelta(hours=1)
    xmas("event", "booked", "--email", PAUL, "--at", at(step), "--data", json.dumps(earlier), "--now", at(step))
    enroll(xmas, "postcall", now=step, call_date="2026-12-02T11:00:00Z")
    assert funnel_of(notion, PAUL) == ["2026-12-09T16:00:00Z", None, ""]
    # an event that is no booking, and a booking without a time, leave it as it is
    xmas("event", "replied", "--email", PAUL, "--now", at(step))
    xmas("event", "booked", "--email", PAUL, "--key", "no-time", "--now", at(step))
    assert funnel_of(notion, PAUL) == ["2026-12-09T16:00:00Z", None, ""]
    # a later post-call enrollment (the second call) moves it on, in its one contact update
    notion.emu.reset_requests()
    enroll(xmas, "postcall", now=step, call_date="2026-12-10T12:00:00Z")
    assert notion.requests() == ["query contacts", "query tracker", "update page"] + ["create page"] * 3
    assert funnel_of(notion, PAUL) == ["2026-12-10T12:00:00Z", None, ""]


def test_noshow_and_onboarding_fill_their_columns_and_nothing_xmas_writes_later_clears_them(
    xmas: Cli, notion: Notion
) -> None:
    enroll(xmas, "noshow")  # Nina's missed call: 2026-12-01T10:30:00Z
    assert funnel_of(notion, "nina@example.com") == ["2026-12-01T10:30:00Z", None, ""]

    notion.emu.reset_requests()
    enroll(xmas, "onboarding", payment_status="Paid", package_type="Done-with-you  (12 weeks)")
    rows = len([r for r in notion.rows() if r["Email"] == "olivia@example.com"])
    assert notion.requests() == ["query contacts", "query tracker", "create page"] + ["create page"] * rows
    assert funnel_of(notion, "olivia@example.com") == [None, "paid", "Done-with-you (12 weeks)"]
    assert not {"payment_status", "package_type"} & json.loads(notion.contact("olivia@example.com")["Data"]).keys()

    # an onboarding that says neither keeps them; unsubscribing (a save of the contact) keeps them too
    enroll(xmas, "onboarding", now=T0 + timedelta(hours=1), email="olivia@example.com")
    xmas("unsubscribe", "olivia@example.com", "--now", at(T0 + timedelta(hours=2)))
    olivia = notion.contact("olivia@example.com")
    assert olivia["Unsubscribed"] is True
    assert [olivia[n] for n in FUNNEL] == [None, "paid", "Done-with-you (12 weeks)"]
    # the owner corrects the package in Notion: the next enrollment of another kind leaves the correction
    notion.edit(olivia["page_id"], Package={"rich_text": [{"text": {"content": "Foundation"}}]})
    enroll(xmas, "lead-nurture", now=T0 + timedelta(hours=3), email="olivia@example.com", first_name="Olivia")
    assert funnel_of(notion, "olivia@example.com") == [None, "paid", "Foundation"]


def previous_release(xmas: Cli, emu: NotionEmulator, project: Path) -> str:
    """The databases as the release before this one made them (setup, without the funnel's columns): Contacts' data
    source."""
    use_notion(project)
    xmas("notion", "setup", "--parent", emu.add_page(title="Xmas"))
    source = emu.data_source_id(tomllib.loads((project / "campaign.toml").read_text())["notion"]["contacts"])
    person = Client(auth=TOKEN, base_url=emu.base_url, logger=logging.getLogger("tests.person"))
    person.data_sources.update(data_source_id=source, properties=dict.fromkeys(FUNNEL))
    person.close()
    return source


def test_check_names_the_missing_columns_and_upgrade_adds_them_once(
    xmas: Cli, emu: NotionEmulator, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NOTION_TOKEN", TOKEN)
    monkeypatch.setenv("NOTION_BASE_URL", emu.base_url)
    source = previous_release(xmas, emu, project)
    assert not set(FUNNEL) & {p.name for p in emu._data_sources[source].properties.values()}

    check = xmas("notion", "check", code=3)
    for name, label, key in (
        ("Call Time", "Date", "call_time"),
        ("Payment Status", "Select", "payment_status"),
        ("Package", "Text", "package"),
    ):
        assert (
            f"Contacts: property '{name}' is missing: add a {label} property named '{name}', "
            f'or set [notion.properties.contacts] {key} = "..." in campaign.toml'
        ) in check.stderr
    # an enrollment Notion refuses (no Call Time to write the call's time in) is named, and writes nothing
    body = json.dumps(PEOPLE["postcall"])
    refused = xmas("enroll", "postcall", "--payload", "-", "--now", at(T0), input=body, code=3)
    assert "property 'Call Time' is missing" in refused.stderr and "run `xmas notion upgrade`" in refused.stderr
    assert not [p for p in emu.pages(source) if p["properties"]["Email"]["email"]]

    emu.reset_requests()
    plan = xmas("notion", "upgrade", "--dry-run")
    not_reads = [r for r in emu.requests if r["method"] != "GET" and not r["path"].endswith("/query")]
    assert not_reads == []  # a dry run only reads (schemas, views, the query for the control row)
    assert plan.stdout.splitlines() == [
        "Contacts: add the Date property 'Call Time'",
        "Contacts: add the Select property 'Payment Status'",
        "Contacts: add the Text property 'Package'",
        "would make 3 change(s)",
    ]
    emu.reset_requests()
    assert xmas("notion", "upgrade").stdout.splitlines()[-1] == "made 3 change(s)"
    writes = [(r["method"], r["path"].split("/")[2]) for r in emu.requests if r["method"] != "GET"]
    assert [w for w in writes if w != ("POST", "data_sources")] == [("PATCH", "data_sources")]  # one schema update
    props = {p.name: p for p in emu._data_sources[source].properties.values()}
    assert [props[n].type for n in FUNNEL] == ["date", "select", "rich_text"]
    assert xmas("notion", "upgrade").stdout == "the databases are up to date\n"
    assert "the Notion databases match campaign.toml" in xmas("notion", "check").stdout

    enroll(xmas, "postcall")
    contact = next(p for p in emu.pages(source) if (p["properties"]["Email"]["email"] or "") == PAUL)
    assert contact["properties"]["Call Time"]["date"]["start"].startswith("2026-12-01T10:30:00")


def test_renamed_columns_under_notion_properties_contacts_are_the_ones_written(
    xmas: Cli, emu: NotionEmulator, project: Path, on_notion: None
) -> None:
    path = project / "campaign.toml"
    renamed = '\n[notion.properties.contacts]\ncall_time = "Booked Call"\npayment_status = "Paid?"\npackage = "Plan"\n'
    path.write_text(path.read_text() + renamed)
    xmas("notion", "setup", "--parent", emu.add_page(title="Xmas"))
    xmas("templates", "push")
    ids = tomllib.loads(path.read_text())["notion"]
    source = emu.data_source_id(ids["contacts"])
    names = {p.name for p in emu._data_sources[source].properties.values()}
    assert {"Booked Call", "Paid?", "Plan"} <= names and not set(FUNNEL) & names

    enroll(xmas, "postcall")
    enroll(xmas, "onboarding", payment_status="paid", package_type="Foundation")
    notion = Notion(emu, project, {k: ids[k] for k in ("contacts", "templates", "tracker")}, {"contacts": source})
    assert funnel_of(notion, PAUL, ("Booked Call", "Paid?", "Plan")) == ["2026-12-01T10:30:00Z", None, ""]
    olivia = funnel_of(notion, "olivia@example.com", ("Booked Call", "Paid?", "Plan"))
    assert olivia == [None, "paid", "Foundation"]
