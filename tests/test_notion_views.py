# ruff: noqa: F811  (pytest fixtures imported from test_notion_e2e are named again as the tests' parameters)
"""The views `xmas notion setup` makes, `xmas notion upgrade` from databases made by the release before this one, and
the emulator refusing what Notion's Views API refuses, all through the real notion-client."""

from __future__ import annotations

import logging
import tomllib
from collections import Counter
from pathlib import Path
from typing import Any, cast

import pytest
from conftest import Cli
from notion_client import APIResponseError, Client
from notion_emulator import NotionEmulator
from test_cli_tick import T0, at
from test_notion_e2e import TOKEN, Notion, emu, enroll, notion, on_notion  # noqa: F401  (fixtures)

from xmas_cli.config import load_campaign
from xmas_cli.stores.notion_admin import write_database_ids
from xmas_cli.stores.notion_schema import database_properties

SEQUENCES = ("signup", "lead-nurture", "assessment", "noshow", "postcall", "onboarding")
TRACKER_VIEWS = [
    "Default view",
    "Due in the next 24 hours",
    "Needs attention",
    "Paused",
    "Board by state",
    "Calendar by due",
    *(f"Sequence: {s}" for s in SEQUENCES),
    "Dashboard",
]
CONTACT_VIEWS = ["Default view", "In a sequence", "Unsubscribed", "Booked"]
NEW_CONTACT_PROPERTIES = (
    "Red Systems",
    "Orange Systems",
    "Yellow Systems",
    "Green Systems",
    "Weakest Systems",
    "Revenue Leak",
    "Call Time",
    "Payment Status",
    "Package",
    "Action",
    "Action Result",
    "Paused",
    "Paused Since",
    "Pause Reason",
)


def views_of(emu: NotionEmulator, database: str) -> dict[str, dict[str, Any]]:
    return {v["name"]: v for v in emu.views.values() if v["parent"]["database_id"] == database}


def tabs(emu: NotionEmulator, database: str) -> list[str]:
    return [
        v["name"] for v in emu.views.values() if v["parent"]["database_id"] == database and "dashboard_view_id" not in v
    ]


def test_setup_makes_the_views_the_owner_opens(xmas: Cli, notion: Notion) -> None:
    emu = notion.emu
    assert tabs(emu, notion.databases["tracker"]) == TRACKER_VIEWS
    assert tabs(emu, notion.databases["contacts"]) == CONTACT_VIEWS
    assert tabs(emu, notion.databases["templates"]) == ["Default view"]
    tracker = views_of(emu, notion.databases["tracker"])
    schema = {p.name: p.id for p in emu._data_sources[notion.sources["tracker"]].properties.values()}
    assert tracker["Board by state"]["configuration"]["group_by"]["property_id"] == schema["State"]
    assert tracker["Calendar by due"]["configuration"]["date_property_id"] == schema["Due"]
    assert tracker["Sequence: postcall"]["filter"] == {"property": "Sequence", "select": {"equals": "postcall"}}
    assert tracker["Needs attention"]["filter"]["or"][0] == {"property": "State", "select": {"equals": "Failed"}}
    due = tracker["Due in the next 24 hours"]["filter"]["and"]
    assert due == [
        {"property": "State", "select": {"equals": "Scheduled"}},
        {"property": "Due", "date": {"on_or_before": "tomorrow"}},
    ]
    # the dashboard: three charts, the last two side by side
    client = Client(auth=TOKEN, base_url=emu.base_url, logger=logging.getLogger("tests.person"))
    board = cast(dict[str, Any], client.views.retrieve(view_id=tracker["Dashboard"]["id"]))
    rows = board["configuration"]["rows"]
    assert [len(r["widgets"]) for r in rows] == [1, 2] and board["data_source_id"] is None
    charts = [cast(dict[str, Any], client.views.retrieve(view_id=w["view_id"])) for r in rows for w in r["widgets"]]
    assert [(c["name"], c["configuration"]["chart_type"]) for c in charts] == [
        ("Sent per day", "column"),
        ("Rows by state", "donut"),
        ("Funnel: rows by sequence and state", "bar"),
    ]
    client.close()
    contacts = views_of(emu, notion.databases["contacts"])
    assert contacts["Booked"]["filter"] == {"property": "Booking Status", "select": {"equals": ["booked"]}}


def test_setup_costs_these_requests(xmas: Cli, emu: NotionEmulator, project: Path, on_notion: None) -> None:
    parent = emu.add_page()
    emu.reset_requests()
    doc = xmas.json("notion", "setup", "--parent", parent)
    assert len(doc["views"]) == 15  # and the dashboard's 3 charts
    methods = Counter((r["method"], r["path"].split("/")[2]) for r in emu.requests)
    # 3 databases, 2 schema updates (the tracker's relation to Contacts, then Contacts' rollups), the control row,
    # 2 schema reads (property ids for the views), 15 views + 3 dashboard widgets: 26
    assert methods == {
        ("POST", "databases"): 3,
        ("PATCH", "data_sources"): 2,
        ("POST", "pages"): 1,
        ("GET", "data_sources"): 2,
        ("POST", "views"): 18,
    }


def old_release(emu: NotionEmulator, project: Path) -> dict[str, str]:
    """Databases as the release before this one made them: no Action, Paused..., no control row, no views but
    Notion's default one; and a property and a view a person added since."""
    campaign = load_campaign(project / "campaign.toml", {})
    parent = emu.add_page()
    ids = {}
    for kind, title in (("contacts", "Contacts"), ("templates", "Email Templates"), ("tracker", "Sequence Tracker")):
        props = database_properties(campaign, kind)
        if kind == "contacts":
            props = {k: v for k, v in props.items() if k not in NEW_CONTACT_PROPERTIES}
            props["Booking Status"] = {"select": {"options": []}}
            props["My notes"] = {"rich_text": {}}
        ids[kind], _ = emu.create_database(parent, title, props)
    path = project / "campaign.toml"
    write_database_ids(path, ids)
    assert tomllib.loads(path.read_text())["notion"]["tracker"] == ids["tracker"]
    return ids


def test_upgrade_adds_what_is_missing_never_what_a_person_made_and_then_nothing(
    xmas: Cli,
    emu: NotionEmulator,
    project: Path,
    on_notion: None,
) -> None:
    ids = old_release(emu, project)
    refused = xmas("tick", "--now", at(T0), code=3)
    assert "property 'Action' is missing" in refused.stderr and "run `xmas notion upgrade`" in refused.stderr

    emu.reset_requests()
    plan = xmas("notion", "upgrade", "--dry-run")
    not_reads = [r for r in emu.requests if r["method"] != "GET" and not r["path"].endswith("/query")]
    assert not_reads == []  # a dry run only reads (schemas, views, the query for the control row)
    lines = plan.stdout.splitlines()
    assert lines[:15] == [
        "Contacts: add the option(s) booked, call-canceled to 'Booking Status'",
        "Contacts: add the Number property 'Red Systems'",
        "Contacts: add the Number property 'Orange Systems'",
        "Contacts: add the Number property 'Yellow Systems'",
        "Contacts: add the Number property 'Green Systems'",
        "Contacts: add the Text property 'Weakest Systems'",
        "Contacts: add the Number property 'Revenue Leak'",
        "Contacts: add the Date property 'Call Time'",
        "Contacts: add the Select property 'Payment Status'",
        "Contacts: add the Text property 'Package'",
        "Contacts: add the Select property 'Action'",
        "Contacts: add the Text property 'Action Result'",
        "Contacts: add the Checkbox property 'Paused'",
        "Contacts: add the Date property 'Paused Since'",
        "Contacts: add the Text property 'Pause Reason'",
    ]
    assert "Contacts: add the control row 'Campaign' (tick Paused to pause)" in lines
    assert "Sequence Tracker: add the relation 'Contact' to Contacts" in lines
    assert "Contacts: add the rollup 'Emails Sent'" in lines
    assert "Sequence Tracker: Needs attention: add the view" in lines
    assert lines[-1] == f"would make {len(lines) - 1} change(s)"

    emu.reset_requests()
    done = xmas("notion", "upgrade")
    assert (
        done.stdout.splitlines()[:-1] == lines[:-1]
        and done.stdout.splitlines()[-1] == f"made {len(lines) - 1} change(s)"
    )
    writes = Counter(
        (r["method"], r["path"].split("/")[2])
        for r in emu.requests
        if r["method"] != "GET" and not r["path"].endswith("/query")
    )
    # 3 schema updates (Contacts' properties, the tracker's relation, Contacts' rollups), the control row, 15 views
    # and 3 dashboard widgets
    assert writes == {("PATCH", "data_sources"): 3, ("POST", "pages"): 1, ("POST", "views"): 18}
    assert tabs(emu, ids["tracker"]) == TRACKER_VIEWS
    contacts = emu._data_sources[emu.data_source_id(ids["contacts"])].properties.values()
    assert "My notes" in {p.name for p in contacts}  # what a person made stays

    emu.reset_requests()
    again = xmas("notion", "upgrade")
    assert again.stdout == "the databases are up to date\n"
    assert {r["method"] for r in emu.requests} == {"GET", "POST"} and all(
        r["path"].endswith("/query") for r in emu.requests if r["method"] == "POST"
    )
    assert "0 due" in xmas("tick", "--now", at(T0)).stdout


def test_upgrade_reports_a_mistyped_property_and_changes_no_type(
    xmas: Cli,
    emu: NotionEmulator,
    project: Path,
    on_notion: None,
) -> None:
    ids = old_release(emu, project)
    source = emu.data_source_id(ids["contacts"])
    client = Client(auth=TOKEN, base_url=emu.base_url, logger=logging.getLogger("tests.person"))
    client.data_sources.update(data_source_id=source, properties={"Paused": {"rich_text": {}}})
    client.close()
    out = xmas("notion", "upgrade", code=3)
    assert "Contacts: 'Paused' is a rich_text property, expected checkbox: upgrade changes no type" in out.stderr
    assert {p.name: p.type for p in emu._data_sources[source].properties.values()}["Paused"] == "rich_text"
    assert not views_of(emu, ids["tracker"]).keys() - {"Default view"}  # no views on a schema that is not right


# ------------------------------------------------------------------------------ the emulator refuses as Notion does


@pytest.fixture
def views_api(emu: NotionEmulator) -> Any:
    client = Client(auth=TOKEN, base_url=emu.base_url, logger=logging.getLogger("tests.views"))
    db, ds = emu.create_database(
        emu.add_page(),
        "T",
        {"Name": {"title": {}}, "Stage": {"select": {"options": [{"name": "A"}]}}, "When": {"date": {}}},
    )
    yield client, db, ds
    client.close()


def refused(call: Any) -> str:
    with pytest.raises(APIResponseError) as caught:
        call()
    assert caught.value.status == 400 and caught.value.code == "validation_error"
    return str(caught.value)


def test_the_emulator_refuses_what_the_views_api_refuses(emu: NotionEmulator, views_api: Any) -> None:
    client, db, ds = views_api
    base = {"data_source_id": ds, "name": "V", "type": "table"}
    assert "exactly one of" in refused(lambda: client.request(path="views", method="POST", body=base))
    both = {**base, "database_id": db, "view_id": db}
    assert "exactly one of" in refused(lambda: client.request(path="views", method="POST", body=both))
    assert "body.colour should be not present" in refused(
        lambda: client.request(path="views", method="POST", body={**base, "database_id": db, "colour": "red"})
    )
    bad_option = {**base, "database_id": db, "filter": {"property": "Stage", "select": {"equals": "Z"}}}
    assert "Allowed values: A" in refused(lambda: client.request(path="views", method="POST", body=bad_option))
    board = {**base, "database_id": db, "type": "board", "configuration": {"type": "board"}}
    assert "group_by should be defined" in refused(lambda: client.request(path="views", method="POST", body=board))
    mismatch = {**base, "database_id": db, "configuration": {"type": "board"}}
    assert "should be `table`" in refused(lambda: client.request(path="views", method="POST", body=mismatch))
    # the last view of a database cannot be deleted
    [default] = client.views.list(database_id=db)["results"]
    assert "at least one view" in refused(lambda: client.views.delete(view_id=default["id"]))
    # a dashboard row holds 4 widgets at most
    dash = client.request(path="views", method="POST", body={**base, "database_id": db, "type": "dashboard"})
    chart = {"data_source_id": ds, "type": "chart", "view_id": dash["id"]}
    count = {"type": "chart", "chart_type": "number", "value": {"aggregator": "count"}}
    client.request(path="views", method="POST", body={**chart, "name": "w0", "configuration": count})
    for n in range(1, 4):
        placed = {
            **chart,
            "name": f"w{n}",
            "configuration": count,
            "placement": {"type": "existing_row", "row_index": 0},
        }
        client.request(path="views", method="POST", body=placed)
    fifth = {**chart, "name": "w4", "configuration": count, "placement": {"type": "existing_row", "row_index": 0}}
    assert "at most 4 widgets" in refused(lambda: client.request(path="views", method="POST", body=fifth))
    assert [len(r["widgets"]) for r in client.views.retrieve(view_id=dash["id"])["configuration"]["rows"]] == [4]
    # a deleted view is gone: 404
    with pytest.raises(APIResponseError) as gone:
        client.views.delete(view_id=dash["id"])
        client.views.retrieve(view_id=dash["id"])
    assert gone.value.status == 404


def test_the_assessment_is_in_columns_and_a_tracker_row_names_the_person(xmas: Cli, notion: Notion) -> None:
    enroll(xmas, "assessment")  # Sarah: 2 red, 1 orange, 2 yellow, 3 green; weakest GPS, Money; leak 14,700
    sarah = notion.contact("sarah@sarahssalon.com")
    columns = ("Red Systems", "Orange Systems", "Yellow Systems", "Green Systems", "Weakest Systems", "Revenue Leak")
    assert [sarah[c] for c in columns] == [2, 1, 2, 3, "GPS, Money", 14700]
    assert [r["Name"] for r in notion.rows()][:2] == [
        "Sarah <sarah@sarahssalon.com> · assessment #1",
        "Sarah <sarah@sarahssalon.com> · assessment #2",
    ]
    notion.edit(sarah["page_id"], **{"Revenue Leak": {"number": 9000}})  # the owner corrects it: the column wins
    assert xmas.json("show", "sarah@sarahssalon.com")["contact"]["fields"]["revenue_leak_total"] == 9000


def test_check_names_a_missing_view_and_upgrade_makes_it_again(xmas: Cli, notion: Notion) -> None:
    client = Client(auth=TOKEN, base_url=notion.emu.base_url, logger=logging.getLogger("tests.person"))
    paused = views_of(notion.emu, notion.databases["tracker"])["Paused"]
    client.views.delete(view_id=paused["id"])  # the owner deleted it
    client.close()
    checked = xmas("notion", "check")
    assert "Sequence Tracker: Paused: this view is missing (renamed or deleted in Notion?)" in checked.stderr
    assert checked.stdout.endswith("the Notion databases match campaign.toml\n")
    assert xmas.json("notion", "check")["missing_views"] == ["Sequence Tracker: Paused"]
    assert xmas("notion", "upgrade").stdout == "Sequence Tracker: Paused: add the view\nmade 1 change(s)\n"
    assert xmas.json("notion", "check")["missing_views"] == []


def test_every_row_links_to_its_contact_whose_page_rolls_up_its_emails(xmas: Cli, notion: Notion) -> None:
    enroll(xmas, "lead-nurture")  # lena@example.com: 5 emails, the first due at once
    lena = notion.contact("lena@example.com")
    rows = notion.rows()
    assert {r["page_id"] for r in rows} == {link["id"] for link in lena["Emails"]}
    assert all(r["Contact"] == [{"id": lena["page_id"]}] for r in rows)
    assert (lena["Emails Sent"]["number"], lena["Last Sent"]["date"]) == (0, None)
    xmas("tick", "--now", at(T0))
    lena = notion.contact("lena@example.com")
    assert lena["Emails Sent"] == {"type": "number", "number": 1, "function": "count_values"}
    assert lena["Last Sent"]["date"]["start"].startswith("2026-12-01T10:30:00")
    assert lena["Next Due"]["date"]["start"].startswith("2026-12-01T10:30:00")  # the earliest Due of its rows
    assert [s["select"]["name"] for s in lena["Sequences"]["array"]] == ["lead-nurture"]


def test_the_emulator_refuses_a_relation_to_a_page_elsewhere_and_a_write_to_a_rollup(xmas: Cli, notion: Notion) -> None:
    enroll(xmas, "lead-nurture")
    lena, row = notion.contact("lena@example.com"), notion.rows()[0]
    client = Client(auth=TOKEN, base_url=notion.emu.base_url, logger=logging.getLogger("tests.person"))
    elsewhere = {"Contact": {"relation": [{"id": row["page_id"]}]}}  # a tracker row is not a contact
    assert "is not a page of the related data source" in refused(
        lambda: client.pages.update(page_id=row["page_id"], properties=elsewhere)
    )
    assert "is a rollup" in refused(
        lambda: client.pages.update(page_id=lena["page_id"], properties={"Emails Sent": {"rollup": {"number": 3}}})
    )
    client.pages.update(page_id=row["page_id"], properties={"Contact": {"relation": []}})  # unlinked on both pages
    assert row["page_id"] not in {link["id"] for link in notion.contact("lena@example.com")["Emails"]}
    client.close()
