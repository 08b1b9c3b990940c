"""`spots_remaining` and `bookings_count` count live enrollments only, on both stores: an enrollment whose rows
are all Cancelled (exit rule, `xmas cancel`, unsubscribe) or Skipped (a suppressed contact) takes no spot."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pg
import pytest
from notion_emulator import NotionEmulator

from xmas_cli.backends import postgres_store, sqlite_store
from xmas_cli.clock import FixedClock
from xmas_cli.config import load_campaign
from xmas_cli.core.campaign import Campaign
from xmas_cli.core.model import State
from xmas_cli.core.variables import Counts
from xmas_cli.engine import Engine, campaign_counts, cancel, enroll, unsubscribe
from xmas_cli.stores.base import Store
from xmas_cli.stores.notion import NotionStore, cache_path, notion_settings, open_api
from xmas_cli.stores.notion_admin import create_databases
from xmas_cli.stores.notion_schema import SchemaCache, signature, specs

pytestmark = pytest.mark.every_store  # the rules hold on SQLite and on PostgreSQL

T0 = datetime(2026, 12, 1, 10, 30, tzinfo=UTC)
TOKEN = "secret_counts_token"
LOGGER = logging.getLogger("tests.counts")

OpenEngine = Callable[[], Engine]


def _notion_stores(campaign: Campaign, emu: NotionEmulator) -> Callable[[], Store]:
    campaign = campaign.model_copy(update={"notion": campaign.notion.model_copy(update={"requests_per_second": 10})})
    env = {"NOTION_TOKEN": TOKEN, "NOTION_BASE_URL": emu.base_url}
    api = open_api(campaign, notion_settings(campaign, env, need_databases=False), logger=LOGGER)
    created = create_databases(campaign, api, emu.add_page())
    api.close()
    cache = SchemaCache(cache_path(campaign), 60)
    for kind, (database, data_source) in created.items():
        env[f"XMAS_NOTION_{kind.upper()}"] = database
        cache.put(database, data_source, signature(kind, specs(campaign, kind)))
    settings = notion_settings(campaign, env)
    return lambda: NotionStore(campaign, settings, logger=LOGGER, sleep=lambda _: None)


@contextmanager
def engines_on(store: str, project: Path) -> Iterator[Callable[[datetime], Engine]]:
    """Engines on `store` ("sqlite", "postgres" in a fresh schema, or "notion" on its emulator), made by a call
    with the clock's time: each with a fresh store (the Notion store keeps its count for the life of an instance;
    PostgreSQL's one store shares the test's pool), every one closed when the block ends."""
    campaign = load_campaign(project / "campaign.toml", {})
    opened: list[Engine] = []
    with ExitStack() as stack:
        emu = stack.enter_context(NotionEmulator(token=TOKEN))
        if store == "postgres":
            only = postgres_store(campaign, {"XMAS_DATABASE_URL": stack.enter_context(pg.fresh_schema())})
            stores: Callable[[], Store] = lambda: only  # noqa: E731  (one pool for the test)
        elif store == "notion":
            stores = _notion_stores(campaign, emu)
        else:
            stores = lambda: sqlite_store(campaign)  # noqa: E731

        def make(now: datetime) -> Engine:
            engine = Engine(campaign, stores(), FixedClock(now), secret="s" * 20)
            opened.append(engine)
            return engine

        yield make
        for engine in opened:
            engine.close()


@pytest.fixture(params=["sqlite", "notion"])
def open_engine(request: pytest.FixtureRequest, project: Path) -> Iterator[OpenEngine]:
    """A fresh engine (and store) per call: the Notion store keeps its count for the life of an instance."""
    with engines_on(request.param, project) as make:
        yield lambda: make(T0)


def counts(open_engine: OpenEngine) -> Counts:
    return campaign_counts(open_engine())


def enroll_in(engine: Engine, sequence: str, email: str) -> None:
    payload: dict[str, Any] = {"email": email, "first_name": "A"}
    payload.update(
        {
            "onboarding": {"payment_date": "2026-12-01T09:30:00Z"},
            "postcall": {"call_date": "2026-12-01T09:30:00Z"},
            "noshow": {"calendly_event_id": "evt_1", "scheduled_time": "2026-12-01T09:30:00Z"},
        }[sequence]
    )
    enroll(engine, sequence, payload)


def test_only_live_enrollments_take_a_spot_or_count_as_a_booking(open_engine: OpenEngine) -> None:
    engine = open_engine()
    enroll_in(engine, "onboarding", "live@example.com")
    assert counts(open_engine) == Counts(bookings=1, spots_taken=1)

    # a suppressed contact's enrollment is written Skipped: no spot, no booking
    unsubscribe(engine, "gone@example.com")
    enroll_in(engine, "onboarding", "gone@example.com")
    assert {r.state for r in engine.store.emails_for_contact("gone@example.com")} == {State.SKIPPED}
    assert counts(open_engine) == Counts(bookings=1, spots_taken=1)

    # cancelled by the operator before anything was sent: no spot, no booking
    enroll_in(engine, "onboarding", "undo@example.com")
    assert counts(open_engine) == Counts(bookings=2, spots_taken=2)
    cancel(engine, "undo@example.com")
    assert counts(open_engine) == Counts(bookings=1, spots_taken=1)

    # bookings: a live postcall counts, a cancelled noshow does not
    enroll_in(engine, "postcall", "call@example.com")
    enroll_in(engine, "noshow", "noshow@example.com")
    cancel(engine, "noshow@example.com", "noshow")
    assert counts(open_engine) == Counts(bookings=2, spots_taken=1)


def test_one_live_row_is_enough(open_engine: OpenEngine) -> None:
    engine = open_engine()
    enroll_in(engine, "onboarding", "sent@example.com")
    enroll_in(engine, "onboarding", "edited@example.com")
    # step 1 sent, then the rest cancelled: still a client in onboarding
    [first, *_] = engine.store.emails_for_contact("sent@example.com")
    engine.store.update_email(first, {"state": State.SENT, "sent_at": T0})
    cancel(engine, "sent@example.com")
    # step 1 cancelled by hand (in Notion), the later steps still scheduled
    [first, *_] = engine.store.emails_for_contact("edited@example.com")
    engine.store.update_email(first, {"state": State.CANCELLED, "note": "by hand"})
    # a paused enrollment still holds its spot
    enroll_in(engine, "onboarding", "paused@example.com")
    for row in engine.store.emails_for_contact("paused@example.com"):
        engine.store.update_email(row, {"state": State.PAUSED})
    assert counts(open_engine) == Counts(bookings=3, spots_taken=3)
