"""Wiring: campaign.toml chooses the store and the mailer once; the engine never knows which."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from .campaign import Campaign, load_campaign
from .clock import clock_from
from .engine import Engine
from .errors import ConfigError
from .mailers.base import Mailer
from .mailers.outbox import OutboxMailer
from .stores.base import Store
from .stores.sqlite import SqliteStore

DEFAULT_CONFIG = "campaign.toml"


def config_path(value: str | None, env: Mapping[str, str]) -> Path:
    return Path(value or env.get("XMAS_CONFIG") or DEFAULT_CONFIG)


def open_store(campaign: Campaign, env: Mapping[str, str]) -> Store:
    if campaign.store.backend == "sqlite":
        return SqliteStore(campaign.path(campaign.store.path), campaign.path(campaign.campaign.templates_dir))
    raise ConfigError(f"store backend {campaign.store.backend!r} is not available in this build", "use sqlite")


def open_mailer(campaign: Campaign, env: Mapping[str, str]) -> Mailer:
    if campaign.mailer.backend == "outbox":
        return OutboxMailer(campaign.path(campaign.mailer.outbox))
    raise ConfigError(f"mailer backend {campaign.mailer.backend!r} is not available in this build", "use outbox")


def build_engine(campaign: Campaign, now: str | None = None, env: Mapping[str, str] | None = None) -> Engine:
    env = os.environ if env is None else env
    clock = clock_from(now or env.get("XMAS_NOW") or None)
    store = open_store(campaign, env)
    return Engine(
        campaign=campaign,
        store=store,
        clock=clock,
        secret=env.get("XMAS_SECRET") or None,
        mailer_factory=lambda: open_mailer(campaign, env),
    )


def engine_from_config(config: str | None, now: str | None = None, env: Mapping[str, str] | None = None) -> Engine:
    env = os.environ if env is None else env
    return build_engine(load_campaign(config_path(config, env), dict(env)), now, env)
