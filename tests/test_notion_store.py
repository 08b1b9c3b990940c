"""The Notion store through the real notion-client against the local emulator: the Store protocol, paging,
request counts, pacing, retries and re-reads after lost responses, the schema check and its cache."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import replace_once
from notion_client import Client
from notion_emulator import NotionEmulator

from xmas_cli.clock import FixedClock
from xmas_cli.config import load_campaign
from xmas_cli.core.campaign import Campaign
from xmas_cli.core.model import Consent, Contact, ScheduledEmail, Sender, State, Template, row_id
from xmas_cli.engine import Engine
from xmas_cli.errors import ConfigError, InvalidInput, StoreUnavailable
from xmas_cli.mailers.outbox import OutboxMailer
from xmas_cli.stores.files import FileTemplates
from xmas_cli.stores.notion import NotionStore, cache_path, notion_settings, open_api, open_notion_store
from xmas_cli.stores.notion_admin import create_databases, with_database_ids
from xmas_cli.stores.notion_api import HEADROOM
from xmas_cli.stores.notion_records import read_value, split_text, utf16_len
from xmas_cli.stores.notion_schema import SchemaCache, schema_problems, signature, specs
from xmas_cli.tick.run import tick

TOKEN = "secret_store_token_do_not_log"
T0 = datetime(2026, 12, 1, 10, 30, tzinfo=UTC)
LOGGER = "tests.notion.store"
LONG_BODY = ("<p>Ho ho ho 🎄 — déjà vu, 雪. " * 700)[:20_000]  # multi-byte, emoji (2 UTF-16 units), 20,000 chars


class FakeTime:
    """monotonic + sleep: sleeping moves the clock, nobody waits."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@dataclass
class World:
    emu: NotionEmulator
    campaign: Campaign
    env: dict[str, str]
    databases: dict[str, str]
    sources: dict[str, str]
    time: FakeTime = field(default_factory=FakeTime)

    def store(self, **notion: Any) -> NotionStore:
        campaign = self.campaign
        if notion:
            campaign = campaign.model_copy(update={"notion": campaign.notion.model_copy(update=notion)})
        return NotionStore(
            campaign,
            notion_settings(campaign, self.env),
            logger=logging.getLogger(LOGGER),
            monotonic=self.time.monotonic,
            sleep=self.time.sleep,
        )

    def person(self) -> Client:
        """Someone editing in Notion: a plain SDK client."""
        return Client(auth=TOKEN, base_url=self.emu.base_url, logger=logging.getLogger("tests.person"), retry=False)

    def rows(self) -> list[dict[str, Any]]:
        return self.emu.pages(self.sources["tracker"])


@pytest.fixture
def emu() -> Iterator[NotionEmulator]:
    with NotionEmulator(token=TOKEN) as emulator:
        yield emulator


@pytest.fixture
def world(emu: NotionEmulator, project: Path) -> World:
    campaign = load_campaign(project / "campaign.toml", {})
    campaign = campaign.model_copy(update={"notion": campaign.notion.model_copy(update={"requests_per_second": 10})})
    env = {"NOTION_TOKEN": TOKEN, "NOTION_BASE_URL": emu.base_url}
    api = open_api(campaign, notion_settings(campaign, env, need_databases=False), logger=logging.getLogger(LOGGER))
    created = create_databases(campaign, api, emu.add_page())
    api.close()
    cache = SchemaCache(cache_path(campaign), 60)  # warmed as `xmas notion setup` does
    for kind, (database, data_source) in created.items():
        env[f"XMAS_NOTION_{kind.upper()}"] = database
        cache.put(database, data_source, signature(kind, specs(campaign, kind)))
    emu.reset_requests()
    return World(emu, campaign, env, {k: v[0] for k, v in created.items()}, {k: v[1] for k, v in created.items()})


def a_row(step: int = 1, due: datetime = T0, email: str = "ada@example.com", **changes: Any) -> ScheduledEmail:
    key = f"lead-nurture:{email}"
    row = ScheduledEmail(
        id=row_id(key, step),
        enrollment_key=key,
        email=email,
        sequence="lead-nurture",
        step=step,
        template=f"lead_nurture_email_{step}",
        sender=Sender.XMAS,
        due=due,
        data={"first_name": "Ada", "email": email},
    )
    return replace(row, **changes)


def plain(page: dict[str, Any], name: str) -> Any:
    return read_value(page["properties"][name])


# ------------------------------------------------------------------------------------------ text


def test_split_text_counts_utf16_units_and_never_cuts_a_surrogate_pair() -> None:
    assert split_text("") == []
    assert [len(p) for p in split_text("a" * 4001)] == [2000, 2000, 1]
    emoji = "🎄" * 1001  # 2002 UTF-16 units: 1000 emoji fit in the first piece
    pieces = split_text("x" + emoji)
    assert "".join(pieces) == "x" + emoji
    assert all(utf16_len(p) <= 2000 for p in pieces)
    assert pieces[0] == "x" + "🎄" * 999 and utf16_len(pieces[0]) == 1999  # the next emoji would make 2001
    pieces = split_text(LONG_BODY)
    assert "".join(pieces) == LONG_BODY and all(utf16_len(p) <= 2000 for p in pieces)


def test_schema_problems_name_the_property_and_the_fix(world: World) -> None:
    live = {"Name": {"type": "title"}, "State": {"type": "status"}}
    problems = schema_problems("tracker", live, specs(world.campaign, "tracker"))
    assert (
        "Sequence Tracker: property 'Due' is missing: add a Date property named 'Due', "
        'or set [notion.properties.tracker] due = "..." in campaign.toml'
    ) in problems
    assert any(
        p.startswith("Sequence Tracker: property 'State' is a status property, expected select: ") for p in problems
    )
    titled = schema_problems("templates", {"Title": {"type": "title"}}, specs(world.campaign, "templates"))
    assert titled[0].startswith("Email Templates: property 'Template Name' is missing: the title property is called")


def test_database_ids_are_written_into_campaign_toml_in_place() -> None:
    text = '# top\n[store]\nbackend = "notion"\n\n[notion]\n# ids\ncontacts = ""   # keep me\ntracker = \'\'\n'
    text += 'requests_per_second = 2.5\n\n[notion.properties.tracker]\nstate = "Status"\n'
    ids = {"contacts": "c-1", "templates": "t-2", "tracker": "r-3"}
    new = with_database_ids(text, ids)
    expected = replace_once(text, 'contacts = ""', 'contacts = "c-1"')
    expected = replace_once(expected, "tracker = ''", 'tracker = "r-3"')
    assert new == replace_once(expected, "[notion]\n", '[notion]\ntemplates = "t-2"\n')
    bare = with_database_ids('[store]\nbackend = "notion"', ids)
    assert bare == '[store]\nbackend = "notion"\n\n[notion]\ncontacts = "c-1"\ntemplates = "t-2"\ntracker = "r-3"\n'


# ------------------------------------------------------------------------------------- wiring


def test_missing_token_or_ids_name_the_variable_and_the_fix(world: World) -> None:
    with pytest.raises(ConfigError, match="NOTION_TOKEN is not set") as info:
        open_notion_store(world.campaign, {})
    assert "my-integrations" in info.value.fix
    env = {"NOTION_TOKEN": TOKEN, "XMAS_NOTION_CONTACTS": world.databases["contacts"]}
    with pytest.raises(ConfigError) as info:
        open_notion_store(world.campaign, env)
    assert "[notion] templates (or XMAS_NOTION_TEMPLATES), [notion] tracker (or XMAS_NOTION_TRACKER)" in str(info.value)
    assert "xmas notion setup --parent PAGE_ID" in info.value.fix
    with pytest.raises(ConfigError, match="XMAS_NOTION_TRACKER: 'nope' is not a Notion database id"):
        open_notion_store(world.campaign, {**world.env, "XMAS_NOTION_TRACKER": "nope"})
    # a copied link works, and a base URL given with /v1 too
    link = "https://www.notion.so/acme/Tracker-" + world.databases["tracker"].replace("-", "") + "?v=" + "f" * 32
    env = {**world.env, "XMAS_NOTION_TRACKER": link, "NOTION_BASE_URL": world.emu.base_url + "/v1/"}
    store = open_notion_store(world.campaign, env)
    assert list(store.due_emails(T0)) == []
    store.close()


# ---------------------------------------------------------------------------------------- rows


def test_a_row_round_trips_with_data_longer_than_one_text_piece(world: World) -> None:
    store = world.store()
    data = {"first_name": "Ada", "notes": "🎄 " + "x" * 4500 + " é", "n": 3, "nested": {"ok": True}}
    added = store.add_email(a_row(data=data, note="hello"))
    [page] = world.rows()
    assert len(page["properties"]["Data"]["rich_text"]) == 3  # 4,500+ characters of JSON in 2000-unit pieces
    assert plain(page, "Name") == "Ada <ada@example.com> · lead-nurture #1"  # the person and the address
    assert plain(page, "Due") == T0 and plain(page, "State") == "Scheduled" and plain(page, "Sent By") == "xmas"
    [read] = store.emails_for_enrollment("lead-nurture:ada@example.com")
    assert read == added == replace(a_row(data=data, note="hello"), ref=page["id"])
    store.close()


def test_rows_are_read_by_id_one_query_each_so_preview_row_works_on_notion(world: World) -> None:
    """emails_by_id is part of every store's port (preview --row reads a row by id): Notion answers it by Row ID,
    where it used to raise NotImplementedError."""
    store = world.store()
    first, second = store.add_email(a_row(1)), store.add_email(a_row(2))
    world.emu.reset_requests()
    found = store.emails_by_id([second.id, "lead-nurture:nobody@example.com#1", first.id, second.id])
    assert found == {second.id: second, first.id: first}
    assert world.emu.count() == 3  # one query per distinct id
    store.close()


def test_add_email_is_idempotent_and_uses_the_first_of_duplicates(world: World, caplog: Any) -> None:
    store = world.store()
    first = store.add_email(a_row())
    world.emu.reset_requests()
    assert store.add_email(a_row(note="a retry")) == first  # found by Row ID: nothing written
    assert world.emu.count("POST", "/pages") == 0 and world.emu.count() == 1
    # a person duplicated the row in Notion: the first one is used, and the warning says so
    props = {k: v for k, v in world.rows()[0]["properties"].items() if v["type"] in ("title", "rich_text", "date")}
    world.person().pages.create(
        parent={"data_source_id": world.sources["tracker"]},
        properties={k: {v["type"]: v[v["type"]]} for k, v in props.items()},
    )
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        assert store.add_email(a_row()).ref == first.ref
    assert "Row ID lead-nurture:ada@example.com#1 has 2 rows in Notion" in caplog.text
    store.close()


def test_update_email_patches_only_the_changed_properties(world: World) -> None:
    store = world.store()
    row = store.add_email(a_row())
    world.emu.reset_requests()
    sent_at = T0 + timedelta(minutes=1)
    changed = store.update_email(row, {"state": State.SENT, "sent_at": sent_at, "message_id": "<m1>", "attempts": 1})
    [patch] = world.emu.requests
    assert patch["method"] == "PATCH" and set(patch["body"]["properties"]) == {
        "State",
        "Sent At",
        "Message ID",
        "Attempts",
    }
    assert (changed.state, changed.sent_at, changed.message_id, changed.attempts) == (State.SENT, sent_at, "<m1>", 1)
    assert changed.data == row.data and changed.due == row.due
    store.close()


def test_due_emails_one_query_per_100_rows_sorted_and_fetched_lazily(world: World) -> None:
    store = world.store()
    for n in range(205):
        store.add_email(a_row(email=f"p{n:03d}@example.com", due=T0 - timedelta(minutes=n % 7, seconds=n)))
    store.add_email(a_row(email="later@example.com", due=T0 + timedelta(seconds=1)))
    store.add_email(a_row(email="paused@example.com", state=State.PAUSED))
    world.emu.reset_requests()
    due = list(store.due_emails(T0))
    assert len(due) == 205 and [r.due for r in due] == sorted(r.due for r in due)
    queries = [r["body"] for r in world.emu.requests]
    assert [q["page_size"] for q in queries] == [100, 100, 100]  # ceil(205 / 100) pages, nothing else
    assert queries[0]["filter"] == {
        "and": [
            {"property": "State", "select": {"equals": "Scheduled"}},
            {"property": "Due", "date": {"on_or_before": "2026-12-01T10:30:00.000+00:00"}},
        ]
    }
    world.emu.reset_requests()
    assert len(list(store.due_emails(T0, limit=150))) == 150
    assert [r["body"]["page_size"] for r in world.emu.requests] == [100, 50]
    world.emu.reset_requests()
    first = next(store.due_emails(T0, limit=5))
    assert first == due[0] and [r["body"]["page_size"] for r in world.emu.requests] == [5]
    store.close()


def test_a_due_row_xmas_cannot_send_is_read_as_due_and_a_damaged_one_says_why(world: World) -> None:
    """As on every store (core/rows.py, tests/test_row_rules.py): the due query drops nothing with only a log line;
    the tick makes a row with an unknown sequence wait, and fails a damaged one, visibly. What Notion lets a person
    leave empty or unknown is named in the row's defect instead of being replaced silently."""
    store = world.store()
    store.add_email(a_row())
    odd = store.add_email(a_row(email="odd@example.com"))
    assert odd.ref is not None
    world.person().pages.update(page_id=odd.ref, properties={"Sequence": {"select": {"name": "Black Friday"}}})
    assert [(r.email, r.sequence) for r in store.due_emails(T0)] == [
        ("ada@example.com", "lead-nurture"),
        ("odd@example.com", "Black Friday"),
    ]
    world.person().pages.update(
        page_id=odd.ref,
        properties={"State": {"select": {"name": "Someday"}}, "Sent By": {"select": {"name": "a robot"}}},
    )
    [damaged] = store.emails_by_id([odd.id]).values()
    assert damaged.state is State.PAUSED
    assert damaged.defect == (
        "stored row is damaged: State 'Someday' is not one xmas knows (read as Paused); "
        "Sent By 'a robot' is not one xmas knows"
    )
    store.close()


# ------------------------------------------------------------------------------------ contacts


def test_contacts_round_trip_and_a_person_can_edit_the_columns(world: World) -> None:
    store = world.store()
    fields = {"first_name": "Ada", "business_name": "Ada's Analytics", "overall_score": 72, "red_systems": 2}
    saved = store.save_contact(Contact("Ada@Example.com", fields, "CRITICAL", updated_at=T0))
    assert saved.email == "ada@example.com" and saved.fields == fields and saved.segment == "CRITICAL"
    [page] = world.emu.pages(world.sources["contacts"])
    assert plain(page, "Name") == "Ada" and plain(page, "Assessment Score") == 72
    assert plain(page, "Unsubscribed") is False and json.loads(plain(page, "Data")) == fields
    world.person().pages.update(
        page_id=page["id"],
        properties={"Unsubscribed": {"checkbox": True}, "Business Name": {"rich_text": [{"text": {"content": "AA"}}]}},
    )
    again = world.store().get_contact("ADA@example.com")
    assert again is not None and again.suppressed and again.fields["business_name"] == "AA"
    # saving again with ref=None updates the same page (found by Email) and writes only what changed
    world.emu.reset_requests()
    store2 = world.store()
    store2.save_contact(Contact("ada@example.com", {**fields, "business_name": "AA"}, "URGENT", True, None, T0))
    [_, patch] = world.emu.requests
    assert set(patch["body"]["properties"]) == {"Segment", "Data"}  # Data catches up with the edited column
    assert len(world.emu.pages(world.sources["contacts"])) == 1
    store.close()
    store2.close()


def test_get_contacts_uses_or_filters_of_at_most_100_addresses(world: World) -> None:
    store = world.store()
    for n in range(130):
        store.save_contact(Contact(f"c{n:03d}@example.com", {"first_name": f"C{n}"}))
    world.emu.reset_requests()
    found = store.get_contacts([f"C{n:03d}@example.com" for n in range(130)] + ["nobody@example.com"])
    assert len(found) == 130 and found["c007@example.com"].first_name == "C7"
    assert [len(r["body"]["filter"]["or"]) for r in world.emu.requests] == [100, 31]
    store.close()


def test_count_contacts_counts_distinct_people_with_a_live_row_and_reuses_its_answer(world: World) -> None:
    store = world.store()
    rows = [("a@x.com", "noshow", 3), ("a@x.com", "postcall", 2), ("b@x.com", "onboarding", 1)]
    rows += [("c@x.com", "onboarding", 3), ("d@x.com", "onboarding", 2)]
    dead = {"c@x.com": State.CANCELLED, "d@x.com": State.SKIPPED}
    for email, sequence, steps in rows:
        key = f"{sequence}:{email}"
        for step in range(1, steps + 1):
            row = replace(a_row(step, email=email), id=row_id(key, step), enrollment_key=key, sequence=sequence)
            store.add_email(replace(row, state=dead.get(email, row.state)))
    world.emu.reset_requests()
    assert store.count_contacts(["noshow", "postcall", "onboarding"]) == 2
    assert store.count_contacts(["onboarding"]) == 1  # a subset: answered from the first query
    assert store.count_contacts([]) == 0
    [query] = world.emu.requests
    live = [{"property": "State", "select": {"does_not_equal": s}} for s in ("Cancelled", "Skipped")]
    assert query["body"]["filter"]["and"][1:] == live  # Notion leaves out the dead rows
    store.close()


# ------------------------------------------------------------------------------------ templates


def test_templates_are_read_once_per_store_and_long_bodies_joined(world: World) -> None:
    store = world.store()
    assert store.save_template(Template("welcome", "Hi {{ first_name }}", LONG_BODY), None) == "created"
    assert store.save_template(Template("old", "Old", "<p>old</p>"), None) == "created"
    [_, old] = world.emu.pages(world.sources["templates"])
    world.person().pages.update(page_id=old["id"], properties={"Status": {"select": {"name": "Inactive"}}})
    reader = world.store()
    world.emu.reset_requests()
    welcome = reader.get_template("welcome")
    assert (
        welcome is not None
        and welcome.html == LONG_BODY
        and welcome.active
        and welcome.subject == "Hi {{ first_name }}"
    )
    assert reader.get_template("welcome") is welcome and reader.get_template("missing") is None
    assert world.emu.count() == 2  # one query per template, once per store
    inactive = reader.get_template("old")
    assert inactive is not None and not inactive.active
    assert [t.id for t in reader.list_templates()] == ["old", "welcome"]
    store.close()
    reader.close()


# ------------------------------------------------------------------------------ pacing, retries


def test_requests_are_paced_to_the_configured_rate(world: World) -> None:
    store = world.store(requests_per_second=2)
    for _ in range(10):
        list(store.due_emails(T0))
    # a burst of 1 second's worth (2 requests) goes at once; the other 8 wait their turn, 5 % under the rate
    assert world.time.sleeps == pytest.approx([1 / (2 * HEADROOM)] * 8)
    store.close()


def test_rate_limited_and_overloaded_requests_are_retried_honouring_retry_after(world: World) -> None:
    store = world.store()
    world.emu.inject_fault(429, "rate_limited", retry_after=2, path_contains="/query")
    world.emu.inject_fault(529, "service_overload", retry_after=3, path_contains="/query")
    assert list(store.due_emails(T0)) == []
    assert [r["status"] for r in world.emu.requests] == [429, 529, 200]
    assert world.time.sleeps[:2] == [2.0, 3.0]
    store.close()


def test_a_529_on_an_update_is_retried_after_re_reading_the_row(world: World) -> None:
    store = world.store()
    row = store.add_email(a_row())
    world.emu.reset_requests()
    world.emu.inject_fault(529, "service_overload", method="PATCH")
    changed = store.update_email(row, {"state": State.SENT, "attempts": 1})
    assert [(r["method"], r["status"]) for r in world.emu.requests] == [("PATCH", 529), ("GET", 200), ("PATCH", 200)]
    assert changed.state is State.SENT and plain(world.rows()[0], "State") == "Sent"
    store.close()


def test_an_update_whose_answer_was_lost_is_not_written_twice(world: World) -> None:
    store = world.store()
    row = store.add_email(a_row())
    world.emu.reset_requests()
    world.emu.inject_fault(500, "internal_server_error", method="PATCH", after_processing=True)
    changed = store.update_email(row, {"state": State.SENT, "note": "done"})
    assert [(r["method"], r["status"]) for r in world.emu.requests] == [("PATCH", 500), ("GET", 200)]
    assert changed.state is State.SENT and changed.note == "done"
    store.close()


@pytest.mark.parametrize("after_processing", [False, True], ids=["500-before", "500-after-processing"])
def test_a_failed_create_is_looked_up_before_it_is_sent_again(world: World, after_processing: bool) -> None:
    store = world.store()
    world.emu.inject_fault(
        500, "internal_server_error", method="POST", path_contains="/pages", after_processing=after_processing
    )
    added = store.add_email(a_row())
    calls = [(r["method"], r["path"].rsplit("/", 1)[-1], r["status"]) for r in world.emu.requests]
    lookup, create = ("POST", "query", 200), ("POST", "pages", 200)
    # look up (absent), create (500), look up again: absent → create; present (it did land) → done
    assert calls == [lookup, ("POST", "pages", 500), lookup, *([] if after_processing else [create])]
    assert len(world.rows()) == 1 and added.ref == world.rows()[0]["id"]
    store.close()


def test_a_create_that_timed_out_is_looked_up_not_duplicated(world: World) -> None:
    store = world.store(timeout_seconds=0.3)
    world.emu.inject_delay(0.8, method="POST", path_contains="/pages")  # applied, then answered too late
    added = store.add_email(a_row())
    assert world.emu.count("POST", "/pages") == 1 and len(world.rows()) == 1
    assert added.ref == world.rows()[0]["id"]
    store.close()


def test_errors_that_persist_become_store_unavailable_without_the_token(world: World, caplog: Any) -> None:
    store = world.store(max_retries=2)
    world.emu.inject_fault(503, "service_unavailable", times=3, path_contains="/query")
    with caplog.at_level(logging.DEBUG), pytest.raises(StoreUnavailable) as info:
        list(store.due_emails(T0))
    assert "could not query the due rows after 3 attempts (503 service_unavailable)" in str(info.value)
    assert "run the command again" in info.value.fix
    world.emu.stop()  # nobody answers at all
    with caplog.at_level(logging.DEBUG), pytest.raises(StoreUnavailable, match="connection failed: ConnectError"):
        store.get_contact("ada@example.com")
    assert TOKEN not in caplog.text and TOKEN not in str(info.value)
    store.close()


def test_an_unknown_token_is_a_configuration_error(world: World) -> None:
    store = NotionStore(world.campaign, notion_settings(world.campaign, {**world.env, "NOTION_TOKEN": "wrong"}))
    with pytest.raises(ConfigError, match="did not accept NOTION_TOKEN") as info:
        list(store.due_emails(T0))
    assert "wrong" not in str(info.value)
    store.close()


def test_a_value_too_long_for_notion_is_refused_before_writing(world: World) -> None:
    store = world.store()
    with pytest.raises(InvalidInput, match=r"row lead-nurture:ada@example\.com#1: data is too long for Notion"):
        store.add_email(a_row(data={"x": "y" * 200_001}))
    assert world.emu.count("POST", "/pages") == 0
    store.close()


# ------------------------------------------------------------------------------ schema and cache


def test_an_idle_due_query_is_one_request_once_the_schema_check_is_cached(world: World) -> None:
    cache = cache_path(world.campaign)
    cache.unlink()
    store = world.store()
    list(store.due_emails(T0))
    assert [r["method"] for r in world.emu.requests] == ["GET", "GET", "POST"]  # database, schema, query
    assert set(json.loads(cache.read_text())["databases"]) == {world.databases["tracker"]}
    store.close()
    world.emu.reset_requests()
    store = world.store()
    list(store.due_emails(T0))
    assert world.emu.count() == 1  # the cached check is trusted for schema_check_minutes
    store.close()
    world.emu.reset_requests()
    store = world.store(schema_check_minutes=0)  # never trusted: checked every time
    list(store.due_emails(T0))
    assert world.emu.count() == 3
    store.close()


def test_a_property_changed_in_notion_drops_the_cache_and_names_the_problem(world: World) -> None:
    store = world.store()
    list(store.due_emails(T0))  # checked and cached
    world.person().data_sources.update(world.sources["tracker"], properties={"Due": {"name": "Due date"}})
    world.emu.reset_requests()
    fresh = world.store()
    with pytest.raises(ConfigError) as info:
        list(fresh.due_emails(T0))
    assert "Sequence Tracker: property 'Due' is missing: add a Date property named 'Due'" in str(info.value)
    assert [r["status"] for r in world.emu.requests] == [400, 200, 200]  # refused query, then the check
    cache = json.loads(world.campaign.path(".xmas/notion-cache.json").read_text())
    assert world.databases["tracker"] not in cache["databases"]  # the next run checks again
    store.close()
    fresh.close()


# ---------------------------------------------------------------------------------------- tick


def test_a_tick_sending_120_emails_costs_one_update_each_plus_a_few_queries(world: World, project: Path) -> None:
    store = world.store()
    template = FileTemplates(project / "templates").get("lead_nurture_email_5")  # shows spots_remaining
    layout = FileTemplates(project / "templates").get("layout")  # which it extends
    assert template is not None and layout is not None
    store.save_template(template, None)
    store.save_template(layout, None)
    for n in range(120):
        email = f"p{n:03d}@example.com"
        store.save_contact(Contact(email, {"first_name": f"P{n}"}, consent=Consent("express", "signup", T0)))
        store.add_email(replace(a_row(email=email), data={}, template="lead_nurture_email_5"))
    store.close()
    world.emu.reset_requests()
    tick_store = world.store()
    engine = Engine(
        world.campaign,
        tick_store,
        FixedClock(T0),
        secret="s" * 20,
        mailer_factory=lambda: OutboxMailer(project / "outbox"),
    )
    report = tick(engine)
    engine.close()
    assert report.count("sent") == 120 and len(list((project / "outbox").glob("*.eml"))) == 120
    # 2 due-query pages (ceil(120/100)) + 2 contact queries (≤ 100 addresses each) + 1 count query (the template
    # shows spots_remaining; bookings and spots share one answer) + 1 query of the contacts with a Booking Status
    # (bookings by event) + 2 template reads (the template and its layout) + 120 row updates
    # + 1 query of what a person asked in Contacts (actions, unsubscribes, the pause)
    assert world.emu.count("POST", "/query") == 2 + 2 + 1 + 1 + 2 + 1
    assert world.emu.count("PATCH") == 120 and world.emu.count() == 129
    assert {plain(p, "State") for p in world.rows()} == {"Sent"}
