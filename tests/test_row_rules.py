"""The row rules of core/rows.py hold the same on every store: SQLite, PostgreSQL (skipped, with the reason, where
no server is configured) and Notion (through its emulator, with the real SDK).

Live and dead rows (what counts as an enrollment), due rows (what a tick reads), problem rows (what `status`
lists), a row whose sequence campaign.toml lacks (it waits, visibly) and a damaged row (it fails, visibly): each
test builds the same rows on each store, asks the store, and compares with the core's predicate."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pg
import pytest
from notion_client import Client
from notion_emulator import NotionEmulator
from test_counts import TOKEN, _notion_stores

from xmas_cli.backends import outbox_mailer, sqlite_store
from xmas_cli.clock import FixedClock
from xmas_cli.config import load_campaign
from xmas_cli.core import rows
from xmas_cli.core.model import ScheduledEmail, Sender, State, row_id
from xmas_cli.engine import Engine, status
from xmas_cli.stores.base import Store
from xmas_cli.tick.run import tick

T0 = datetime(2026, 12, 1, 10, 30, tzinfo=UTC)
SEQUENCE = "lead-nurture"


@dataclass
class Place:
    """One store to run the rules on, and a way to edit a stored row behind the store's back (a person in Notion,
    a hand edit of the SQL), as the stores' users can."""

    name: str
    store: Store
    engine: Engine
    outbox: Path
    edit: Callable[[ScheduledEmail, str, str], None]  # row, column ("data", "sequence"), raw stored value


def a_row(
    email: str, *, step: int = 1, due: datetime = T0, state: State = State.SCHEDULED, **more: Any
) -> ScheduledEmail:
    key = f"{SEQUENCE}:{email}"
    row = ScheduledEmail(
        id=row_id(key, 1),
        enrollment_key=key,
        email=email,
        sequence=SEQUENCE,
        step=1,
        template="lead_nurture_email_1",
        sender=Sender.XMAS,
        due=due,
        state=state,
        data={"first_name": "Ada", "email": email},
    )
    return replace(row, **more)


@pytest.fixture(params=["sqlite", "postgres", "notion"])
def place(request: pytest.FixtureRequest, project: Path) -> Iterator[Place]:
    campaign = load_campaign(project / "campaign.toml", {})
    clock = FixedClock(T0)
    outbox = campaign.path(campaign.mailer.outbox)

    def engine_on(store: Store) -> Engine:
        return Engine(campaign, store, clock, secret="s" * 20, mailer_factory=lambda: outbox_mailer(campaign, clock))

    store: Store
    if request.param == "sqlite":
        store = sqlite_store(campaign)
        path = campaign.path(campaign.store.path)

        def edit_sqlite(row: ScheduledEmail, column: str, value: str) -> None:
            with sqlite3.connect(path) as db:
                db.execute(f"UPDATE emails SET {column} = ? WHERE id = ?", (value, row.id))

        engine = engine_on(store)
        yield Place("sqlite", store, engine, outbox, edit_sqlite)
        engine.close()
    elif request.param == "postgres":
        import psycopg

        from xmas_cli.stores.postgres import PostgresStore

        with pg.fresh_schema() as dsn:
            store = PostgresStore(dsn, campaign.path(campaign.campaign.templates_dir))

            def edit_postgres(row: ScheduledEmail, column: str, value: str) -> None:
                cast = "::jsonb" if column == "data" else ""
                with psycopg.connect(dsn, autocommit=True) as conn:
                    conn.execute(f"UPDATE emails SET {column} = %s{cast} WHERE id = %s", (value, row.id))

            engine = engine_on(store)
            yield Place("postgres", store, engine, outbox, edit_postgres)
            engine.close()
    else:
        with NotionEmulator(token=TOKEN) as emu:
            store = _notion_stores(campaign, emu)()
            person = Client(auth=TOKEN, base_url=emu.base_url, logger=logging.getLogger("tests.person"), retry=False)
            names = campaign.notion.properties.tracker

            def edit_notion(row: ScheduledEmail, column: str, value: str) -> None:
                page = store.emails_by_id([row.id])[row.id].ref
                assert page is not None
                properties: dict[str, Any] = {names.data: {"rich_text": [{"text": {"content": value}}]}}
                if column == "sequence":
                    properties = {names.sequence: {"select": {"name": value}}}
                person.pages.update(page_id=page, properties=properties)

            engine = engine_on(store)
            yield Place("notion", store, engine, outbox, edit_notion)
            engine.close()


def ids(found: list[ScheduledEmail]) -> list[str]:
    return sorted(r.id for r in found)


def test_live_and_dead_rows_are_counted_by_the_one_definition(place: Place) -> None:
    """One contact per state: count_contacts counts those whose row is live (core/rows.py), on every store."""
    added = [place.store.add_email(a_row(f"{s.name.lower()}@example.com", state=s)) for s in State]
    assert rows.DEAD == (State.CANCELLED, State.SKIPPED) and len(rows.LIVE) == len(State) - 2
    live = [r for r in added if rows.is_live(r)]
    assert {r.state for r in live} == set(rows.LIVE)
    assert place.store.count_contacts([SEQUENCE]) == len(live) == 5
    assert place.store.count_contacts([SEQUENCE], also=["cancelled@example.com", "new@example.com"]) == 7


def test_due_rows_are_the_ones_the_core_calls_due(place: Place) -> None:
    now = T0 + timedelta(days=1)
    added = [
        place.store.add_email(a_row("past@example.com", due=T0)),
        place.store.add_email(a_row("now@example.com", due=now)),
        place.store.add_email(a_row("later@example.com", due=now + timedelta(minutes=1))),
        *(
            place.store.add_email(a_row(f"{s.name.lower()}@example.com", state=s))
            for s in State
            if s is not State.SCHEDULED
        ),
    ]
    due = list(place.store.due_emails(now))
    assert ids(due) == ids([r for r in added if rows.is_due(r, now)])
    assert [r.email for r in due] == ["past@example.com", "now@example.com"]  # earliest first


def test_problem_rows_are_the_ones_the_core_calls_problems(place: Place) -> None:
    added = [
        place.store.add_email(a_row("failed@example.com", state=State.FAILED, last_error="bounced")),
        place.store.add_email(a_row("waiting@example.com", last_error="template missing")),
        place.store.add_email(a_row("fine@example.com")),
        place.store.add_email(a_row("sent@example.com", state=State.SENT, last_error="an old error")),
        place.store.add_email(a_row("paused@example.com", state=State.PAUSED)),
    ]
    damaged = place.store.add_email(a_row("damaged@example.com", due=T0 + timedelta(days=3)))
    place.edit(damaged, "data", "[]")
    [damaged] = place.store.emails_by_id([damaged.id]).values()
    assert damaged.defect is not None and damaged.defect.startswith(rows.DAMAGED)
    problems = place.store.summary(T0).problems
    assert ids(problems) == ids([r for r in [*added, damaged] if rows.is_problem(r)])
    assert sorted(r.email for r in problems) == ["damaged@example.com", "failed@example.com", "waiting@example.com"]


def test_a_row_whose_sequence_campaign_toml_lacks_waits_visibly_on_every_store(place: Place) -> None:
    row = place.store.add_email(a_row("ada@example.com"))
    place.edit(row, "sequence", "black-friday")
    [due] = place.store.due_emails(T0)  # read as due, like any other: never dropped with only a log line
    assert due.sequence == "black-friday"
    report = tick(place.engine)
    why = rows.unknown_sequence(due, place.engine.campaign.sequences)
    assert why == "sequence 'black-friday' is not in campaign.toml: the email waits until it is, or is cancelled"
    assert [(o.row.id, o.action, o.detail) for o in report.outcomes] == [(row.id, "waiting", why)]
    [after] = place.store.emails_by_id([row.id]).values()
    assert (after.state, after.last_error, after.sent_at) == (State.SCHEDULED, why, None)
    assert [r.id for r in status(place.engine).problems] == [row.id]
    assert not place.outbox.exists() or list(place.outbox.iterdir()) == []  # nothing sent
    again = tick(place.engine)  # still waiting, and said again, but not written again
    assert [(o.row.id, o.action) for o in again.outcomes] == [(row.id, "waiting")]


def test_a_damaged_row_is_never_sent_and_fails_visibly_on_every_store(place: Place) -> None:
    row = place.store.add_email(a_row("ada@example.com"))
    place.edit(row, "data", "[]")
    [due] = place.store.due_emails(T0)
    assert (
        due.defect is not None
        and due.defect.startswith(rows.DAMAGED)
        and "data '[]' cannot be read" in due.defect.lower()
    )
    report = tick(place.engine)
    assert [(o.row.id, o.action) for o in report.outcomes] == [(row.id, "failed")]
    [after] = place.store.emails_by_id([row.id]).values()
    assert after.state is State.FAILED and after.last_error == due.defect
    assert [r.id for r in status(place.engine).problems] == [row.id]
    assert not place.outbox.exists() or list(place.outbox.iterdir()) == []
