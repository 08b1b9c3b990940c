"""Wiring: campaign.toml chooses the store and the mailer once; the engine never knows which. store_copy.py
opens the two stores `xmas store copy` copies between.

May import: everything below the command line that it wires together: core, stores, mailers, engine, config,
errors, clock, lock. Never commands, web, tick, inbound, report or starter (they are built on it).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..clock import Clock, clock_from
from ..config import load_campaign
from ..core.campaign import Campaign
from ..engine import Engine
from ..mailers.base import Mailer
from ..mailers.outbox import OutboxMailer
from ..stores.base import Store, journal_of
from ..stores.sqlite import SqliteStore

if TYPE_CHECKING:
    from ..mailers.pacer import Budget

DEFAULT_CONFIG = "campaign.toml"


def config_path(value: str | None, env: Mapping[str, str]) -> Path:
    return Path(value or env.get("XMAS_CONFIG") or DEFAULT_CONFIG)


def open_store(campaign: Campaign, env: Mapping[str, str]) -> Store:
    if campaign.store.backend == "notion":
        from ..stores.notion import open_notion_store

        return open_notion_store(campaign, env)
    if campaign.store.backend == "postgres":
        return postgres_store(campaign, env)
    return sqlite_store(campaign)


def postgres_store(campaign: Campaign, env: Mapping[str, str]) -> Store:
    from ..stores.pg_connections import database_url
    from ..stores.postgres import PostgresStore

    return PostgresStore(database_url(env), campaign.path(campaign.campaign.templates_dir))


def sqlite_store(campaign: Campaign) -> SqliteStore:
    return SqliteStore(
        campaign.path(campaign.store.path), campaign.path(campaign.campaign.templates_dir), campaign.store.mode
    )


def outbox_mailer(campaign: Campaign, clock: Clock) -> OutboxMailer:
    """The outbox, stamping each .eml's Date with `clock`'s time as it is written."""
    return OutboxMailer(campaign.path(campaign.mailer.outbox), campaign.store.mode, clock.now)


def open_mailer(campaign: Campaign, env: Mapping[str, str], store: Store, clock: Clock) -> Mailer:
    if campaign.mailer.backend == "resend":
        from ..mailers.resend import from_env

        # Batches (one key for up to 100 emails) only where the store records a batch's membership
        # atomically before it is sent (SQLite, PostgreSQL); with Notion each email is its own request and key.
        return from_env(
            env,
            batch=journal_of(store) is not None,
            rate_limit=campaign.mailer.requests_per_second,
            max_retries=campaign.mailer.max_retries,
            backoff_seconds=campaign.mailer.retry_backoff_seconds,
            budget=shared_budget(campaign, env),
        )
    return outbox_mailer(campaign, clock)


def received_reader(env: Mapping[str, str]) -> Callable[[str], Mapping[str, Any]]:
    """Reads a received email back from Resend (replies: inbound/replies.py), with the key from `env`."""
    from ..mailers.resend_inbox import received_reader as reader

    return reader(env)


def shared_budget(campaign: Campaign, env: Mapping[str, str]) -> Budget | None:
    """Where many runners send at once (PostgreSQL), they pace in one budget kept in the database, so together they
    stay under Resend's team limit; elsewhere one runner holds the tick lock and paces alone (None)."""
    if campaign.store.backend != "postgres":
        return None
    from ..stores.pg_budget import PgSendBudget
    from ..stores.pg_connections import database_url

    return PgSendBudget(database_url(env))


def build_engine(campaign: Campaign, now: str | None = None, env: Mapping[str, str] | None = None) -> Engine:
    env = os.environ if env is None else env
    clock = clock_from(now, env.get("XMAS_NOW"))
    store = open_store(campaign, env)
    engine = Engine(
        campaign=campaign,
        store=store,
        clock=clock,
        secret=env.get("XMAS_SECRET") or None,
        mailer_factory=lambda: open_mailer(campaign, env, store, clock),
    )
    if engine.journal is None:  # Notion: no transactions; the tick journals what it sends in a file of its own
        from ..stores.local_journal import LocalJournal

        engine.journal = LocalJournal(engine.lock_path("sending.db"), store, campaign.store.mode)
    return engine


def engine_from_config(config: str | None, now: str | None = None, env: Mapping[str, str] | None = None) -> Engine:
    env = os.environ if env is None else env
    return build_engine(load_campaign(config_path(config, env), dict(env)), now, env)
