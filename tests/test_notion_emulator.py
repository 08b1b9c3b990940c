"""The Notion emulator, exercised through the real ``notion_client`` SDK (3.1.0, API 2025-09-03)."""

from __future__ import annotations

import contextlib
import json
import logging
import ssl
import threading
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from notion_client import APIResponseError, Client
from notion_client.client import RetryOptions
from notion_client.errors import RequestTimeoutError, UnknownHTTPResponseError
from notion_client.helpers import collect_paginated_api
from notion_client.typing import SyncAsync
from notion_emulator import NOTION_VERSION, NotionEmulator

TOKEN = "secret_emulator_token"
LOGGER = logging.getLogger("test-notion")

SCHEMA: dict[str, Any] = {
    "Name": {"title": {}},
    "Email": {"email": {}},
    "Notes": {"rich_text": {}},
    "Stage": {"select": {"options": [{"name": "Lead", "color": "blue"}]}},
    "Status": {"status": {}},
    "Score": {"number": {"format": "number"}},
    "Opted in": {"checkbox": {}},
    "Due": {"date": {}},
    "Site": {"url": {}},
    "Phone": {"phone_number": {}},
}


@pytest.fixture
def emu() -> Iterator[NotionEmulator]:
    with NotionEmulator(token=TOKEN) as emulator:
        yield emulator


# httpx builds (and loads CA certificates into) a new SSL context per client: ~50 ms each.  Share one.
SSL_CONTEXT = ssl.create_default_context()


def make_client(emulator: NotionEmulator, **options: Any) -> Client:
    options.setdefault("auth", emulator.token)
    return Client(client=httpx.Client(verify=SSL_CONTEXT), base_url=emulator.base_url, logger=LOGGER, **options)


@pytest.fixture
def client(emu: NotionEmulator) -> Iterator[Client]:
    sdk = make_client(emu)
    yield sdk
    sdk.close()


@pytest.fixture
def ds_id(emu: NotionEmulator) -> str:
    parent = emu.add_page()
    _, data_source_id = emu.create_database(parent, "Contacts", SCHEMA)
    return data_source_id


def text(content: str) -> list[dict[str, Any]]:
    return [{"type": "text", "text": {"content": content}}]


def answer(result: SyncAsync[Any]) -> dict[str, Any]:
    """What a call of the synchronous Client answered: its endpoints are typed for the async Client too."""
    assert isinstance(result, dict), result
    return result


def create_row(client: Client, ds_id: str, name: str, **props: Any) -> dict[str, Any]:
    properties: dict[str, Any] = {"Name": {"title": text(name)}, **props}
    return answer(
        client.pages.create(parent={"type": "data_source_id", "data_source_id": ds_id}, properties=properties)
    )


def names(results: list[dict[str, Any]]) -> list[str]:
    return ["".join(t["plain_text"] for t in r["properties"]["Name"]["title"]) for r in results]


def statuses(emu: NotionEmulator, path_contains: str) -> list[int]:
    return [r["status"] for r in emu.requests if path_contains in r["path"]]


# ------------------------------------------------------------------------------------- databases


def test_create_database_and_resolve_its_data_source(emu: NotionEmulator, client: Client) -> None:
    parent = emu.add_page(title="Xmas")
    db = answer(
        client.databases.create(
            parent={"type": "page_id", "page_id": parent},
            title=text("Contacts"),
            initial_data_source={"properties": SCHEMA},
        )
    )
    assert db["object"] == "database"
    assert db["parent"] == {"type": "page_id", "page_id": parent}
    [source] = db["data_sources"]
    assert source["name"] == "Contacts"
    assert emu.data_source_id(db["id"]) == source["id"]

    again = answer(client.databases.retrieve(database_id=db["id"].replace("-", "")))  # ids work without dashes
    assert again["data_sources"] == [source]

    ds = answer(client.data_sources.retrieve(data_source_id=source["id"]))
    assert ds["object"] == "data_source"
    assert ds["parent"] == {"type": "database_id", "database_id": db["id"]}
    assert set(ds["properties"]) == set(SCHEMA)
    assert ds["properties"]["Name"] == {"id": "title", "name": "Name", "type": "title", "title": {}}
    stage = ds["properties"]["Stage"]
    assert stage["type"] == "select"
    assert [(o["name"], o["color"]) for o in stage["select"]["options"]] == [("Lead", "blue")]
    assert set(stage["select"]["options"][0]) == {"id", "name", "color"}
    assert [o["name"] for o in ds["properties"]["Status"]["status"]["options"]] == [
        "Not started",
        "In progress",
        "Done",
    ]
    assert emu.count("POST", "/v1/databases") == 1
    assert emu.requests[0]["body"]["initial_data_source"]["properties"] == SCHEMA


def test_create_database_under_unknown_page_is_404(emu: NotionEmulator, client: Client) -> None:
    with pytest.raises(APIResponseError) as info:
        client.databases.create(
            parent={"type": "page_id", "page_id": "0" * 32},
            title=text("Nope"),
            initial_data_source={"properties": {"Name": {"title": {}}}},
        )
    assert info.value.code == "object_not_found"
    assert info.value.status == 404


@pytest.mark.parametrize(
    "properties",
    [{"Notes": {"rich_text": {}}}, {"A": {"title": {}}, "B": {"title": {}}}],
    ids=["no-title", "two-titles"],
)
def test_a_data_source_has_exactly_one_title(emu: NotionEmulator, client: Client, properties: dict[str, Any]) -> None:
    parent = emu.add_page()
    with pytest.raises(APIResponseError) as info:
        client.databases.create(
            parent={"type": "page_id", "page_id": parent},
            title=text("Bad"),
            initial_data_source={"properties": properties},
        )
    assert info.value.code == "validation_error"
    with pytest.raises(ValueError, match="title"):
        emu.create_database(parent, "Bad", properties)


def test_update_data_source_adds_renames_and_removes_properties(
    emu: NotionEmulator, client: Client, ds_id: str
) -> None:
    row = create_row(client, ds_id, "Ada", Notes={"rich_text": text("keep me")})
    ds = answer(
        client.data_sources.update(
            ds_id,
            properties={
                "Sent at": {"date": {}},
                "Notes": {"name": "Remarks"},
                "Site": None,
            },
        )
    )
    assert "Sent at" in ds["properties"] and ds["properties"]["Sent at"]["type"] == "date"
    assert "Remarks" in ds["properties"] and "Notes" not in ds["properties"]
    assert "Site" not in ds["properties"]

    page = answer(client.pages.retrieve(row["id"]))
    assert page["properties"]["Remarks"]["rich_text"][0]["plain_text"] == "keep me"
    assert page["properties"]["Sent at"] == {"id": ds["properties"]["Sent at"]["id"], "type": "date", "date": None}
    assert "Site" not in page["properties"]

    with pytest.raises(APIResponseError) as info:
        client.data_sources.update(ds_id, properties={"Name": None})
    assert info.value.code == "validation_error"


# ----------------------------------------------------------------------------------------- pages


def test_create_update_and_retrieve_a_page(emu: NotionEmulator, client: Client, ds_id: str) -> None:
    page = create_row(
        client,
        ds_id,
        "Ada Lovelace",
        Email={"email": "ada@example.com"},
        Stage={"select": {"name": "Lead"}},
        Score={"number": 3},
        Due={"date": {"start": "2024-12-24T18:30:00Z"}},
    )
    assert page["object"] == "page"
    assert page["parent"] == {
        "type": "data_source_id",
        "data_source_id": ds_id,
        "database_id": page["parent"]["database_id"],
    }
    assert page["in_trash"] is False and page["archived"] is False
    assert page["url"] == "https://www.notion.so/" + page["id"].replace("-", "")
    assert page["created_time"].endswith(":00.000Z")  # Notion rounds timestamps to the minute
    props = page["properties"]
    assert props["Name"]["title"] == [
        {
            "type": "text",
            "text": {"content": "Ada Lovelace", "link": None},
            "annotations": {
                "bold": False,
                "italic": False,
                "strikethrough": False,
                "underline": False,
                "code": False,
                "color": "default",
            },
            "plain_text": "Ada Lovelace",
            "href": None,
        }
    ]
    assert props["Email"] == {"id": props["Email"]["id"], "type": "email", "email": "ada@example.com"}
    assert props["Stage"]["select"]["name"] == "Lead" and props["Stage"]["select"]["color"] == "blue"
    assert props["Due"]["date"] == {"start": "2024-12-24T18:30:00.000+00:00", "end": None, "time_zone": None}
    # every schema property is present, empty ones with their empty value
    assert props["Notes"]["rich_text"] == []
    assert props["Opted in"]["checkbox"] is False
    assert props["Site"]["url"] is None
    assert props["Phone"]["phone_number"] is None
    assert props["Status"]["status"]["name"] == "Not started"

    updated = answer(
        client.pages.update(
            page["id"],
            properties={"Score": {"number": 4.5}, "Stage": {"select": None}, "Opted in": {"checkbox": True}},
        )
    )
    assert updated["properties"]["Score"]["number"] == 4.5
    assert updated["properties"]["Stage"]["select"] is None
    assert updated["properties"]["Opted in"]["checkbox"] is True
    assert updated["properties"]["Email"]["email"] == "ada@example.com"  # untouched

    fetched = answer(client.pages.retrieve(page_id=page["id"].replace("-", "")))
    assert fetched == updated
    assert emu.pages(ds_id) == [updated]


def test_database_parent_maps_to_its_first_data_source(emu: NotionEmulator, client: Client) -> None:
    db_id, ds_id = emu.create_database(emu.add_page(), "Contacts", {"Name": {"title": {}}})
    page = answer(
        client.pages.create(parent={"database_id": db_id}, properties={"Name": {"title": text("Via database")}})
    )
    assert page["parent"]["data_source_id"] == ds_id
    assert names(emu.pages(ds_id)) == ["Via database"]


def test_unknown_data_source_parent_is_404(client: Client) -> None:
    with pytest.raises(APIResponseError) as info:
        client.pages.create(parent={"data_source_id": "1" * 32}, properties={})
    assert info.value.code == "object_not_found"


def test_select_options_are_auto_created_but_status_options_are_not(client: Client, ds_id: str) -> None:
    create_row(client, ds_id, "Ada", Stage={"select": {"name": "Customer"}})
    options = answer(client.data_sources.retrieve(ds_id))["properties"]["Stage"]["select"]["options"]
    assert [o["name"] for o in options] == ["Lead", "Customer"]

    with pytest.raises(APIResponseError) as info:
        create_row(client, ds_id, "Bob", Status={"status": {"name": "Snoozed"}})
    assert info.value.code == "validation_error"
    done = create_row(client, ds_id, "Cy", Status={"status": {"name": "Done"}})
    assert done["properties"]["Status"]["status"]["name"] == "Done"


def test_trashed_pages_leave_queries(emu: NotionEmulator, client: Client, ds_id: str) -> None:
    keep = create_row(client, ds_id, "Keep")
    gone = create_row(client, ds_id, "Gone")
    trashed = answer(client.pages.update(gone["id"], in_trash=True))
    assert trashed["in_trash"] is True and trashed["archived"] is True
    assert [p["id"] for p in answer(client.data_sources.query(ds_id))["results"]] == [keep["id"]]
    assert answer(client.pages.retrieve(gone["id"]))["in_trash"] is True
    assert names(emu.pages(ds_id)) == ["Keep"]
    assert names(emu.pages(ds_id, include_trashed=True)) == ["Keep", "Gone"]

    with pytest.raises(APIResponseError) as info:
        client.pages.update(gone["id"], properties={"Score": {"number": 1}})
    assert info.value.code == "validation_error"

    client.pages.update(gone["id"], in_trash=False)
    assert names(answer(client.data_sources.query(ds_id))["results"]) == ["Keep", "Gone"]


def test_unknown_page_is_404_and_bad_id_is_400(client: Client) -> None:
    with pytest.raises(APIResponseError) as info:
        client.pages.retrieve("2" * 32)
    assert (info.value.status, info.value.code) == (404, "object_not_found")
    with pytest.raises(APIResponseError) as info:
        client.pages.retrieve("not-an-id")
    assert (info.value.status, info.value.code) == (400, "validation_error")


# ------------------------------------------------------------------------------------ validation


@pytest.mark.parametrize(
    ("properties", "message_part"),
    [
        ({"Nope": {"rich_text": text("x")}}, "Nope is not a property that exists."),
        ({"Notes": {"rich_text": text("x" * 2001)}}, "body.properties.Notes.rich_text[0].text.content.length"),
        ({"Notes": {"rich_text": text("🎄" * 1001)}}, "Notes"),  # 2002 UTF-16 units
        ({"Notes": {"rich_text": text("x") * 101}}, "body.properties.Notes.rich_text.length"),
        ({"Email": {"email": "a" * 190 + "@example.com"}}, "Email"),
        ({"Site": {"url": "https://x.example/" + "a" * 2000}}, "Site"),
        ({"Stage": {"select": {"name": "a,b"}}}, "Stage"),
        ({"Name": {"rich_text": text("wrong type key")}}, "Name is expected to be title."),
        ({"Score": {"number": "12"}}, "Score"),
        ({"Opted in": {"checkbox": "yes"}}, "Opted in"),
        ({"Due": {"date": {"start": "24/12/2024"}}}, "Due"),
    ],
    ids=[
        "unknown-property",
        "content-2001",
        "emoji-counts-double",
        "101-pieces",
        "email-201",
        "url-2001",
        "comma-option",
        "wrong-shape",
        "number-as-string",
        "checkbox-as-string",
        "bad-date",
    ],
)
def test_property_validation_errors(
    emu: NotionEmulator, client: Client, ds_id: str, properties: dict[str, Any], message_part: str
) -> None:
    with pytest.raises(APIResponseError) as info:
        create_row(client, ds_id, "Ada", **properties)
    assert info.value.code == "validation_error"
    assert info.value.status == 400
    assert message_part in str(info.value)
    assert emu.pages(ds_id) == []  # nothing was written
    assert emu.count("POST", "/v1/pages") == 1  # a 400 is not retried


def test_limits_are_inclusive(client: Client, ds_id: str) -> None:
    page = create_row(
        client,
        ds_id,
        "x" * 2000,
        Notes={"rich_text": text("🎄" * 1000) + text("y") * 99},
        Email={"email": "a" * 188 + "@example.com"},
    )
    assert len(page["properties"]["Notes"]["rich_text"]) == 100


def test_a_failed_write_does_not_create_select_options(client: Client, ds_id: str) -> None:
    with pytest.raises(APIResponseError):
        create_row(client, ds_id, "Ada", Stage={"select": {"name": "New"}}, Nope={"number": 1})
    options = answer(client.data_sources.retrieve(ds_id))["properties"]["Stage"]["select"]["options"]
    assert [o["name"] for o in options] == ["Lead"]


# -------------------------------------------------------------------------------- query: filters


@pytest.fixture
def people(client: Client, ds_id: str) -> str:
    create_row(
        client,
        ds_id,
        "Alice Smith",
        Email={"email": "alice@example.com"},
        Notes={"rich_text": text("Likes cocoa")},
        Stage={"select": {"name": "Lead"}},
        Score={"number": 10},
        **{"Opted in": {"checkbox": True}},
        Due={"date": {"start": "2024-12-24T12:00:00.000Z"}},
        Site={"url": "https://alice.example"},
        Phone={"phone_number": "+1 555 0100"},
    )
    create_row(
        client,
        ds_id,
        "Bob",
        Email={"email": "bob@example.org"},
        Notes={"rich_text": text("Rings ") + text("bells")},
        Stage={"select": {"name": "Customer"}},
        Status={"status": {"name": "Done"}},
        Score={"number": 25.5},
        Due={"date": {"start": "2024-12-24T12:00:00.001Z"}},
        Phone={"phone_number": "+44 20 7946 0000"},
    )
    create_row(client, ds_id, "carol")
    create_row(
        client,
        ds_id,
        "Dave Smith",
        Stage={"select": {"name": "Lead"}},
        Status={"status": {"name": "In progress"}},
        Score={"number": 40},
        **{"Opted in": {"checkbox": True}},
        Due={"date": {"start": "2024-12-25"}},
    )
    return ds_id


def prop(name: str, kind: str, op: str, value: Any) -> dict[str, Any]:
    return {"property": name, kind: {op: value}}


FILTER_CASES: list[tuple[str, dict[str, Any], list[str]]] = [
    ("title-contains-ignores-case", prop("Name", "title", "contains", "smith"), ["Alice Smith", "Dave Smith"]),
    ("title-equals", prop("Name", "title", "equals", "Bob"), ["Bob"]),
    ("title-equals-is-exact", prop("Name", "title", "equals", "bob"), []),
    ("title-does-not-equal", prop("Name", "title", "does_not_equal", "Bob"), ["Alice Smith", "carol", "Dave Smith"]),
    ("title-starts-with", prop("Name", "title", "starts_with", "car"), ["carol"]),
    ("title-ends-with", prop("Name", "title", "ends_with", "Smith"), ["Alice Smith", "Dave Smith"]),
    ("title-by-rich-text-key", prop("Name", "rich_text", "equals", "carol"), ["carol"]),
    ("rich-text-joins-pieces", prop("Notes", "rich_text", "contains", "s bel"), ["Bob"]),
    ("rich-text-equals-joined", prop("Notes", "rich_text", "equals", "Rings bells"), ["Bob"]),
    ("rich-text-is-empty", prop("Notes", "rich_text", "is_empty", True), ["carol", "Dave Smith"]),
    ("rich-text-is-not-empty", prop("Notes", "rich_text", "is_not_empty", True), ["Alice Smith", "Bob"]),
    (
        "rich-text-does-not-contain",
        prop("Notes", "rich_text", "does_not_contain", "COCOA"),
        ["Bob", "carol", "Dave Smith"],
    ),
    ("email-equals", prop("Email", "email", "equals", "bob@example.org"), ["Bob"]),
    ("email-ends-with", prop("Email", "email", "ends_with", "@example.com"), ["Alice Smith"]),
    ("email-is-empty", prop("Email", "email", "is_empty", True), ["carol", "Dave Smith"]),
    ("url-is-not-empty", prop("Site", "url", "is_not_empty", True), ["Alice Smith"]),
    ("phone-starts-with", prop("Phone", "phone_number", "starts_with", "+44"), ["Bob"]),
    ("select-equals", prop("Stage", "select", "equals", "Lead"), ["Alice Smith", "Dave Smith"]),
    ("select-does-not-equal", prop("Stage", "select", "does_not_equal", "Lead"), ["Bob", "carol"]),
    ("select-is-empty", prop("Stage", "select", "is_empty", True), ["carol"]),
    ("select-is-not-empty", prop("Stage", "select", "is_not_empty", True), ["Alice Smith", "Bob", "Dave Smith"]),
    ("status-equals", prop("Status", "status", "equals", "Done"), ["Bob"]),
    ("status-default", prop("Status", "status", "equals", "Not started"), ["Alice Smith", "carol"]),
    (
        "status-does-not-equal",
        prop("Status", "status", "does_not_equal", "Done"),
        ["Alice Smith", "carol", "Dave Smith"],
    ),
    ("number-equals", prop("Score", "number", "equals", 40), ["Dave Smith"]),
    ("number-does-not-equal", prop("Score", "number", "does_not_equal", 40), ["Alice Smith", "Bob", "carol"]),
    ("number-greater-than", prop("Score", "number", "greater_than", 10), ["Bob", "Dave Smith"]),
    ("number-less-than", prop("Score", "number", "less_than", 25.5), ["Alice Smith"]),
    ("number-gte", prop("Score", "number", "greater_than_or_equal_to", 10), ["Alice Smith", "Bob", "Dave Smith"]),
    ("number-lte", prop("Score", "number", "less_than_or_equal_to", 25.5), ["Alice Smith", "Bob"]),
    ("number-is-empty", prop("Score", "number", "is_empty", True), ["carol"]),
    ("number-is-not-empty", prop("Score", "number", "is_not_empty", True), ["Alice Smith", "Bob", "Dave Smith"]),
    ("checkbox-equals", prop("Opted in", "checkbox", "equals", True), ["Alice Smith", "Dave Smith"]),
    ("checkbox-does-not-equal", prop("Opted in", "checkbox", "does_not_equal", True), ["Bob", "carol"]),
    # dates compare at millisecond precision: Bob is 1 ms after Alice
    ("date-on-or-before-ms", prop("Due", "date", "on_or_before", "2024-12-24T12:00:00.000Z"), ["Alice Smith"]),
    ("date-on-or-before-offset", prop("Due", "date", "on_or_before", "2024-12-24T13:00:00+01:00"), ["Alice Smith"]),
    ("date-before", prop("Due", "date", "before", "2024-12-24T12:00:00.001Z"), ["Alice Smith"]),
    # sub-millisecond digits are dropped before comparing
    ("date-on-or-before-sub-ms", prop("Due", "date", "on_or_before", "2024-12-24T12:00:00.000999Z"), ["Alice Smith"]),
    ("date-after-sub-ms", prop("Due", "date", "after", "2024-12-24T12:00:00.0005Z"), ["Bob", "Dave Smith"]),
    ("date-after", prop("Due", "date", "after", "2024-12-24T12:00:00Z"), ["Bob", "Dave Smith"]),
    ("date-on-or-after-day", prop("Due", "date", "on_or_after", "2024-12-25"), ["Dave Smith"]),
    ("date-after-day", prop("Due", "date", "after", "2024-12-24"), ["Alice Smith", "Bob", "Dave Smith"]),
    ("date-equals-day", prop("Due", "date", "equals", "2024-12-25"), ["Dave Smith"]),
    ("date-no-offset-is-utc", prop("Due", "date", "equals", "2024-12-24T12:00:00"), ["Alice Smith"]),
    ("date-is-empty", prop("Due", "date", "is_empty", True), ["carol"]),
    ("date-is-not-empty", prop("Due", "date", "is_not_empty", True), ["Alice Smith", "Bob", "Dave Smith"]),
    (
        "timestamp",
        {"timestamp": "created_time", "created_time": {"on_or_before": "2999-01-01"}},
        ["Alice Smith", "Bob", "carol", "Dave Smith"],
    ),
    (
        "and",
        {
            "and": [
                prop("Stage", "select", "equals", "Lead"),
                prop("Opted in", "checkbox", "equals", True),
                prop("Score", "number", "greater_than", 20),
            ]
        },
        ["Dave Smith"],
    ),
    (
        "or-with-nested-and",
        {
            "or": [
                prop("Name", "title", "equals", "Bob"),
                {"and": [prop("Stage", "select", "equals", "Lead"), prop("Score", "number", "less_than", 20)]},
            ]
        },
        ["Alice Smith", "Bob"],
    ),
    (
        "and-of-ors",
        {
            "and": [
                {"or": [prop("Score", "number", "is_empty", True), prop("Score", "number", "greater_than", 30)]},
                {"or": [prop("Name", "title", "starts_with", "c"), prop("Name", "title", "starts_with", "D")]},
            ]
        },
        ["carol", "Dave Smith"],
    ),
]


@pytest.mark.parametrize(("filter_", "expected"), [c[1:] for c in FILTER_CASES], ids=[c[0] for c in FILTER_CASES])
def test_filters(client: Client, people: str, filter_: dict[str, Any], expected: list[str]) -> None:
    assert names(answer(client.data_sources.query(people, filter=filter_))["results"]) == expected


@pytest.mark.parametrize(
    ("filter_", "message_part"),
    [
        (prop("Nope", "rich_text", "equals", "x"), "Could not find property with name or id: Nope"),
        (
            {"and": [{"or": [{"and": [prop("Name", "title", "equals", "x")]}]}]},
            "nested",
        ),
        (prop("Score", "select", "equals", "x"), "Score"),
        (prop("Score", "number", "contains", 1), "contains"),
        (prop("Score", "number", "equals", "1"), "equals"),
        (prop("Due", "date", "before", "yesterday"), "ISO 8601"),
        (prop("Notes", "rich_text", "is_empty", False), "is_empty"),
    ],
    ids=["unknown-property", "three-levels", "type-mismatch", "unknown-op", "bad-operand", "bad-date", "not-true"],
)
def test_invalid_filters(client: Client, people: str, filter_: dict[str, Any], message_part: str) -> None:
    with pytest.raises(APIResponseError) as info:
        client.data_sources.query(people, filter=filter_)
    assert info.value.code == "validation_error"
    assert message_part in str(info.value)


# ---------------------------------------------------------------------------------- query: sorts


def test_sorts(client: Client, people: str) -> None:
    def query(*sorts: dict[str, Any]) -> list[str]:
        return names(answer(client.data_sources.query(people, sorts=list(sorts)))["results"])

    assert query() == ["Alice Smith", "Bob", "carol", "Dave Smith"]  # creation order
    # empty values go last, whatever the direction
    assert query({"property": "Score", "direction": "descending"}) == ["Dave Smith", "Bob", "Alice Smith", "carol"]
    assert query({"property": "Score", "direction": "ascending"}) == ["Alice Smith", "Bob", "Dave Smith", "carol"]
    # ties keep creation order
    assert query({"property": "Opted in", "direction": "ascending"}) == ["Bob", "carol", "Alice Smith", "Dave Smith"]
    # selects sort by option position (Lead was declared before Customer was auto-created), then by name
    assert query({"property": "Stage", "direction": "ascending"}, {"property": "Name", "direction": "descending"}) == [
        "Dave Smith",
        "Alice Smith",
        "Bob",
        "carol",
    ]
    assert query({"property": "Name", "direction": "ascending"}) == ["Alice Smith", "Bob", "carol", "Dave Smith"]
    assert query({"property": "Due", "direction": "descending"}) == ["Dave Smith", "Bob", "Alice Smith", "carol"]
    assert query({"timestamp": "created_time", "direction": "ascending"}) == [
        "Alice Smith",
        "Bob",
        "carol",
        "Dave Smith",
    ]

    with pytest.raises(APIResponseError) as info:
        query({"property": "Nope", "direction": "ascending"})
    assert info.value.code == "validation_error"


# ----------------------------------------------------------------------------- query: pagination


def test_pagination_with_collect_paginated_api(emu: NotionEmulator, client: Client, ds_id: str) -> None:
    created = [create_row(client, ds_id, f"Row {i:03d}")["id"] for i in range(250)]
    emu.reset_requests()

    first = answer(client.data_sources.query(ds_id, page_size=100))
    assert len(first["results"]) == 100
    assert first["has_more"] is True and first["next_cursor"] == created[100]
    assert first["object"] == "list" and first["type"] == "page_or_data_source"

    emu.reset_requests()
    rows = collect_paginated_api(client.data_sources.query, data_source_id=ds_id, page_size=100)
    assert [r["id"] for r in rows] == created
    assert emu.count("POST", "/query") == 3
    assert [r["body"].get("start_cursor") for r in emu.requests] == [None, created[100], created[200]]

    last = answer(client.data_sources.query(ds_id, start_cursor=created[200]))
    assert len(last["results"]) == 50 and last["has_more"] is False and last["next_cursor"] is None

    with pytest.raises(APIResponseError) as info:
        client.data_sources.query(ds_id, page_size=101)
    assert info.value.code == "validation_error"


# --------------------------------------------------------------------------- protocol and errors


def test_bad_token_is_401_and_not_retried(emu: NotionEmulator) -> None:
    sdk = make_client(emu, auth="secret_wrong")
    with pytest.raises(APIResponseError) as info:
        sdk.users.me()
    assert (info.value.status, info.value.code) == (401, "unauthorized")
    assert emu.count() == 1
    assert answer(make_client(emu).users.me())["type"] == "bot"


def test_missing_version_invalid_json_and_unknown_url(emu: NotionEmulator, client: Client) -> None:
    auth = {"Authorization": f"Bearer {TOKEN}"}
    response = httpx.get(f"{emu.base_url}/v1/users/me", headers=auth)
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["object"] == "error" and body["code"] == "missing_version" and body["status"] == 400
    assert isinstance(body["request_id"], str) and isinstance(body["message"], str)

    headers = {**auth, "Notion-Version": NOTION_VERSION, "Content-Type": "application/json"}
    response = httpx.post(f"{emu.base_url}/v1/pages", headers=headers, content=b'{"parent": ')
    assert (response.status_code, response.json()["code"]) == (400, "invalid_json")

    with pytest.raises(APIResponseError) as info:
        client.request(path="nowhere", method="GET")
    assert info.value.code == "invalid_request_url"


def test_body_over_500kb_is_rejected(emu: NotionEmulator, client: Client, ds_id: str) -> None:
    block = {"paragraph": {"rich_text": text("x" * 1900)}}
    with pytest.raises(APIResponseError) as info:
        client.pages.create(
            parent={"data_source_id": ds_id}, properties={"Name": {"title": text("big")}}, children=[block] * 300
        )
    assert info.value.code == "validation_error"
    assert emu.pages(ds_id) == []


def test_rate_limit_answers_429_with_retry_after_and_the_sdk_retries() -> None:
    with NotionEmulator(token=TOKEN, rate_limit=5, burst=2, retry_after=1) as emu:
        no_retry = make_client(emu, retry=False)
        no_retry.users.me()
        no_retry.users.me()
        with pytest.raises(APIResponseError) as info:
            no_retry.users.me()
        assert (info.value.status, info.value.code) == (429, "rate_limited")
        assert info.value.headers["retry-after"] == "1"

        started = time.monotonic()
        assert answer(make_client(emu).users.me())["object"] == "user"  # 429, sleeps Retry-After, succeeds
        assert time.monotonic() - started >= 0.9
        assert [r["status"] for r in emu.requests] == [200, 200, 429, 429, 200]


def test_injected_429_on_post_is_retried_without_duplicating(emu: NotionEmulator, client: Client, ds_id: str) -> None:
    emu.inject_fault(429, "rate_limited", method="POST", path_contains="/v1/pages", retry_after=0)
    create_row(client, ds_id, "Once")
    assert statuses(emu, "/v1/pages") == [429, 200]
    assert names(emu.pages(ds_id)) == ["Once"]


def test_injected_500_on_post_surfaces_and_is_not_retried(emu: NotionEmulator, client: Client, ds_id: str) -> None:
    emu.inject_fault(500, "internal_server_error", method="POST", path_contains="/v1/pages")
    with pytest.raises(APIResponseError) as info:
        create_row(client, ds_id, "Lost")
    assert (info.value.status, info.value.code) == (500, "internal_server_error")
    assert statuses(emu, "/v1/pages") == [500]
    assert emu.pages(ds_id) == []
    create_row(client, ds_id, "Works")  # the fault was used up
    assert names(emu.pages(ds_id)) == ["Works"]


def test_injected_5xx_on_get_is_retried(emu: NotionEmulator, client: Client, ds_id: str) -> None:
    page = create_row(client, ds_id, "Ada")
    emu.reset_requests()
    emu.inject_fault(500, "internal_server_error", method="GET", retry_after=0)
    emu.inject_fault(503, "service_unavailable", method="GET", retry_after=0)
    assert answer(client.pages.retrieve(page["id"]))["id"] == page["id"]
    assert [r["status"] for r in emu.requests] == [500, 503, 200]

    emu.reset_requests()
    emu.inject_fault(503, "service_unavailable", method="GET", times=3, retry_after=0)
    with pytest.raises(APIResponseError) as info:
        client.pages.retrieve(page["id"])
    assert info.value.code == "service_unavailable"
    assert [r["status"] for r in emu.requests] == [503, 503, 503]  # 1 try + 2 retries


def test_injected_529_is_an_unknown_http_response_error(emu: NotionEmulator, client: Client) -> None:
    emu.inject_fault(529, "service_overload", method="GET")
    with pytest.raises(UnknownHTTPResponseError) as info:
        client.users.me()
    error = info.value
    # "service_overload" is not an APIErrorCode in notion-client 3.1.0, so the JSON body is not parsed
    assert not isinstance(error, APIResponseError)
    assert error.status == 529
    assert error.code == "notionhq_client_response_error"
    assert json.loads(error.body)["code"] == "service_overload"
    assert emu.count() == 1  # not retried, even on GET


def test_non_json_error_body_is_an_unknown_http_response_error(emu: NotionEmulator, client: Client) -> None:
    emu.inject_fault(502, "bad_gateway", body_json=False)
    with pytest.raises(UnknownHTTPResponseError) as info:
        client.users.me()
    assert info.value.status == 502
    assert info.value.body == "502 bad_gateway\n"


def test_after_processing_fault_keeps_the_write(emu: NotionEmulator, client: Client, ds_id: str) -> None:
    emu.inject_fault(500, "internal_server_error", method="POST", path_contains="/v1/pages", after_processing=True)
    with pytest.raises(APIResponseError) as info:
        create_row(client, ds_id, "Written anyway")
    assert info.value.code == "internal_server_error"
    assert names(emu.pages(ds_id)) == ["Written anyway"]


def test_injected_delay_times_out_the_client_but_the_write_happens(emu: NotionEmulator, ds_id: str) -> None:
    emu.inject_delay(0.6, method="POST", path_contains="/v1/pages")
    impatient = make_client(emu, timeout_ms=150)
    with pytest.raises(RequestTimeoutError):
        create_row(impatient, ds_id, "Slow")
    assert names(emu.pages(ds_id)) == ["Slow"]
    assert emu.count("POST", "/v1/pages") == 1  # timeouts are not retried by the SDK


def test_request_log(emu: NotionEmulator, client: Client) -> None:
    client.users.me()
    assert emu.requests == [{"method": "GET", "path": "/v1/users/me", "query": {}, "body": None, "status": 200}]
    assert emu.count("get", "/users") == 1 and emu.count("POST") == 0
    emu.reset_requests()
    assert emu.requests == [] and emu.count() == 0


def test_stop_closes_keep_alive_connections() -> None:
    emu = NotionEmulator(token=TOKEN).start()
    sdk = make_client(emu, retry=False)
    sdk.users.me()
    emu.stop()
    with pytest.raises(httpx.TransportError):
        sdk.users.me()
    with pytest.raises(RuntimeError):
        _ = emu.base_url


# --------------------------------------------------------------------------- random faults


def test_seeded_random_faults_honour_their_rates_and_repeat(emu: NotionEmulator, ds_id: str) -> None:
    emu.retry_after = 0
    sdk = make_client(emu, retry=False)
    chaos = emu.chaos(7, rate_429=0.3, rate_5xx=0.1, after_processing_share=0.5)
    assert chaos is not None

    def run() -> list[int]:
        emu.reset_requests()
        for n in range(200):
            with contextlib.suppress(APIResponseError, UnknownHTTPResponseError):
                create_row(sdk, ds_id, f"row {n}")
        return [r["status"] for r in emu.requests]

    seen = run()
    counts = Counter(seen)
    assert 42 <= counts[429] <= 80  # binomial(200, 0.3): mean 60, sd 6.5
    fives = sum(n for status, n in counts.items() if status >= 500)
    assert 8 <= fives <= 35 and {500, 502, 503, 504, 529} >= {s for s in counts if s >= 500}
    assert len({s for s in counts if s >= 500}) >= 4  # the statuses are picked among all five
    applied = chaos.applied
    assert applied["429"] == counts[429] and applied.total() == counts.total() - counts[200]
    after = sum(n for label, n in applied.items() if label.endswith(" after"))
    assert 0 < after < fives
    # a 429 or a 5xx before processing wrote nothing; one after processing wrote the row
    assert len(emu.pages(ds_id)) == counts[200] + after

    emu.chaos(7, rate_429=0.3, rate_5xx=0.1, after_processing_share=0.5)
    assert run() == seen  # the same seed, the same requests: the same faults
    emu.chaos(None)
    assert set(run()) == {200} and emu.chaos_applied == Counter()


def test_the_sdk_sees_each_random_fault_as_notion_would_answer_it(emu: NotionEmulator, ds_id: str) -> None:
    sdk = make_client(emu, retry=False)
    expected = {
        500: (APIResponseError, "internal_server_error"),
        502: (UnknownHTTPResponseError, "notionhq_client_response_error"),  # a proxy's page, not JSON
        503: (APIResponseError, "service_unavailable"),
        504: (APIResponseError, "gateway_timeout"),
        529: (UnknownHTTPResponseError, "notionhq_client_response_error"),  # a code 3.1.0 does not know
    }
    emu.retry_after = 2
    for status, (kind, code) in expected.items():
        emu.chaos(status, rate_5xx=1.0, statuses=[status])
        with pytest.raises(kind) as info:
            sdk.users.me()
        error: Any = info.value
        assert (type(error), error.status, error.code) == (kind, status, code)
        assert error.headers.get("retry-after") == ("2" if status == 529 else None)
    assert json.loads(error.body)["code"] == "service_overload"

    emu.chaos(1, rate_429=1.0)
    with pytest.raises(APIResponseError) as rate:
        sdk.users.me()
    assert (rate.value.status, rate.value.code, rate.value.headers["retry-after"]) == (429, "rate_limited", "2")
    emu.retry_after = 0
    emu.chaos(1, rate_429=0.5)  # the SDK's own retries get through a 429 (it honours Retry-After)
    patient = make_client(emu, retry=RetryOptions(max_retries=30, initial_retry_delay_ms=1, max_retry_delay_ms=5))
    for n in range(10):
        create_row(patient, ds_id, f"retried {n}")
    assert len(emu.pages(ds_id)) == 10 and emu.chaos_applied["429"] > 0


def test_a_random_fault_after_processing_keeps_the_write_and_is_waived_on_a_refusal(
    emu: NotionEmulator, client: Client, ds_id: str
) -> None:
    chaos = emu.chaos(5, rate_5xx=1.0, after_processing_share=1.0, statuses=[503])
    sdk = make_client(emu, retry=False)
    with pytest.raises(APIResponseError) as info:
        create_row(sdk, ds_id, "Written anyway")
    assert info.value.code == "service_unavailable"
    assert names(emu.pages(ds_id)) == ["Written anyway"]
    with pytest.raises(APIResponseError) as refused:  # the request itself fails: its own error, not the fault
        create_row(sdk, ds_id, "Bad", Score={"number": "high"})
    assert (refused.value.status, refused.value.code) == (400, "validation_error")
    assert chaos is not None and chaos.applied == {"503 after": 1} and chaos.drawn == 2


def test_random_faults_spare_requests_refused_before_them(emu: NotionEmulator) -> None:
    chaos = emu.chaos(1, rate_429=0.5, rate_5xx=0.5)
    with pytest.raises(APIResponseError) as info:
        make_client(emu, auth="secret_wrong", retry=False).users.me()
    assert info.value.code == "unauthorized"
    response = httpx.get(f"{emu.base_url}/v1/users/me", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.json()["code"] == "missing_version"
    emu.set_rate_limit(1, burst=1)
    emu.inject_fault(409, "conflict_error")  # an injected fault comes first and takes the request
    sdk = make_client(emu, retry=False)
    with pytest.raises(APIResponseError) as conflict:
        sdk.users.me()
    assert conflict.value.code == "conflict_error"
    assert chaos is not None and chaos.drawn == 0
    statuses_seen = []
    for _ in range(3):
        try:
            sdk.users.me()
            statuses_seen.append(200)
        except (APIResponseError, UnknownHTTPResponseError) as exc:
            statuses_seen.append(exc.status)
    assert statuses_seen[1:] == [429, 429]  # the limiter's own 429s: the bucket held one token
    assert chaos.drawn == 1  # only the request that passed the limiter was drawn for
    assert emu.count() == 6


def test_set_rate_limit_at_run_time(emu: NotionEmulator) -> None:
    sdk = make_client(emu, retry=False)
    emu.set_rate_limit(1000, burst=2)
    sdk.users.me()
    sdk.users.me()
    emu.set_rate_limit(0.001, burst=1)  # starts full: one more, then refused
    sdk.users.me()
    with pytest.raises(APIResponseError) as info:
        sdk.users.me()
    assert info.value.status == 429
    emu.set_rate_limit(None)
    for _ in range(20):
        sdk.users.me()
    with pytest.raises(ValueError):
        emu.set_rate_limit(0)


# --------------------------------------------------------------------------- request hooks


def test_request_hooks_fire_received_then_answered_with_the_index(
    emu: NotionEmulator, client: Client, ds_id: str
) -> None:
    events: list[tuple[str, int, str, str, int]] = []
    emu.on_request = lambda event, index, method, path: events.append(
        (event, index, method, path, len(emu.pages(ds_id)))
    )
    create_row(client, ds_id, "One")
    emu.inject_fault(500, "internal_server_error", after_processing=True)
    with pytest.raises(APIResponseError):
        create_row(client, ds_id, "Two")
    client.users.me()
    deadline = time.monotonic() + 5  # "answered" comes once the reply is flushed: the client may be faster
    while len(events) < 6 and time.monotonic() < deadline:
        time.sleep(0.005)
    assert events == [
        ("received", 1, "POST", "/v1/pages", 0),  # before processing: not written yet
        ("answered", 1, "POST", "/v1/pages", 1),
        ("received", 2, "POST", "/v1/pages", 1),
        ("answered", 2, "POST", "/v1/pages", 2),
        ("received", 3, "GET", "/v1/users/me", 2),
        ("answered", 3, "GET", "/v1/users/me", 2),
    ]
    assert emu.received_count == 3


def test_a_hook_that_holds_a_request_and_one_that_fails(
    emu: NotionEmulator, client: Client, ds_id: str, capsys: pytest.CaptureFixture[str]
) -> None:
    arrived, release = threading.Event(), threading.Event()

    def hook(event: str, index: int, method: str, path: str) -> None:
        if (event, index) == ("received", 1):
            arrived.set()
            release.wait(5)
        if index == 3:
            raise RuntimeError("hook bug")

    emu.on_request = hook
    worker = threading.Thread(target=lambda: create_row(make_client(emu), ds_id, "Held"))
    worker.start()
    try:
        assert arrived.wait(5)
        create_row(client, ds_id, "Passes")  # served while the first one is held
        assert names(emu.pages(ds_id)) == ["Passes"]
    finally:
        release.set()
        worker.join(timeout=5)
    assert names(emu.pages(ds_id)) == ["Passes", "Held"]
    create_row(client, ds_id, "Despite the hook")
    assert len(emu.pages(ds_id)) == 3
    err = capsys.readouterr().err
    assert "on_request hook failed on received #3 POST /v1/pages" in err and "RuntimeError: hook bug" in err
