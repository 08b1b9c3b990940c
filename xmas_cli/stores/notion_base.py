"""How a Notion store is opened: the token, API address and database ids (from the environment and campaign.toml),
the process's one client and pacer per integration, warnings on stderr, and the state every Notion store holds
(NotionBase: its client, schemas, record reader and what one command has already read)."""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from ..core.campaign import Campaign
from ..core.model import Event, Template
from ..errors import ConfigError
from .notion_api import NOTION_API, NotionApi
from .notion_records import (
    JSON,
    Props,
    Records,
)
from .notion_schema import ENV, KINDS, SETUP_FIX, SchemaCache, Schemas, notion_id

TOKEN_FIX = (
    "create an internal integration (https://www.notion.so/my-integrations), share the three databases with it, "
    "and export NOTION_TOKEN=<its secret>"
)
BY_CREATION = [{"timestamp": "created_time", "direction": "ascending"}]


class _StderrHandler(logging.Handler):
    """Warnings as `xmas: warning: ...` on whatever sys.stderr is at the time (the CLI runner swaps it)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(self.format(record) + "\n")
        except Exception:  # a closed stream must not break a command
            self.handleError(record)


def default_logger() -> logging.Logger:
    logger = logging.getLogger("xmas.notion")
    if not any(isinstance(h, _StderrHandler) for h in logger.handlers):
        handler = _StderrHandler(logging.WARNING)
        handler.setFormatter(logging.Formatter("xmas: warning: %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
    return logger


@dataclass(frozen=True)
class NotionSettings:
    token: str
    base_url: str
    databases: dict[str, str]  # kind → database id (canonical); a kind without an id is absent
    cache_path: Path | None


def notion_settings(campaign: Campaign, env: Mapping[str, str], *, need_databases: bool = True) -> NotionSettings:
    """Token, API address and database ids from the environment and campaign.toml; ConfigError names what is missing."""
    token = (env.get("NOTION_TOKEN") or "").strip()
    if not token:
        raise ConfigError("NOTION_TOKEN is not set (the store is Notion)", TOKEN_FIX)
    base_url = (env.get("NOTION_BASE_URL") or "").strip().rstrip("/") or NOTION_API
    base_url = base_url.removesuffix("/v1")
    databases: dict[str, str] = {}
    missing: list[str] = []
    for kind in KINDS:
        from_env = (env.get(ENV[kind]) or "").strip()
        raw = from_env or str(getattr(campaign.notion, kind)).strip()
        if not raw:
            missing.append(f"[notion] {kind} (or {ENV[kind]})")
            continue
        canonical = notion_id(raw)
        if canonical is None:
            where = ENV[kind] if from_env else f"campaign.toml: notion.{kind}"
            raise ConfigError(
                f"{where}: {raw!r} is not a Notion database id",
                "copy the database's link in Notion and use the 32-character id in it",
            )
        databases[kind] = canonical
    if missing and need_databases:
        raise ConfigError(f"no Notion database id for: {', '.join(missing)}", SETUP_FIX)
    return NotionSettings(token, base_url, databases, cache_path(campaign))


def cache_path(campaign: Campaign) -> Path:
    return campaign.path(campaign.tick.lock).with_name("notion-cache.json")


_SHARED: dict[tuple[object, ...], NotionApi] = {}
_SHARED_LOCK = threading.Lock()


def open_api(
    campaign: Campaign,
    settings: NotionSettings,
    *,
    logger: logging.Logger | None = None,
    monotonic: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> NotionApi:
    """The process's one client and pacer for this integration and API: every store a process opens (the web app
    opens one per request) shares them, so their requests together keep to Notion's average. A caller with its
    own logger or clock (a test) gets a client of its own."""
    cfg = campaign.notion

    def build() -> NotionApi:
        return NotionApi(
            settings.token,
            settings.base_url,
            timeout_seconds=cfg.timeout_seconds,
            requests_per_second=cfg.requests_per_second,
            max_retries=cfg.max_retries,
            logger=logger or default_logger(),
            monotonic=monotonic,
            sleep=sleep,
        )

    if logger is not None or monotonic is not time.monotonic or sleep is not time.sleep:
        return build()
    key = (settings.token, settings.base_url, cfg.timeout_seconds, cfg.requests_per_second, cfg.max_retries)
    with _SHARED_LOCK:
        if key not in _SHARED:
            _SHARED[key] = build()
            _SHARED[key].shared = True
        return _SHARED[key]


class NotionBase:
    """An open Notion store's client, schemas and caches, and how it queries."""

    def __init__(
        self,
        campaign: Campaign,
        settings: NotionSettings,
        *,
        logger: logging.Logger | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.campaign = campaign
        self.props = campaign.notion.properties
        self.logger = logger or default_logger()
        self.description = "Notion"
        self.api = open_api(campaign, settings, logger=logger, monotonic=monotonic, sleep=sleep)
        cache = SchemaCache(settings.cache_path, campaign.notion.schema_check_minutes, wall)
        self.schemas = Schemas(campaign, self.api, settings.databases, cache)
        self.api.on_validation_error = self.schemas.recheck
        self.records = Records(self.props, self.logger)
        self._templates: dict[str, Template | None] = {}
        self._counted: dict[frozenset[str], set[tuple[str, str]]] = {}
        self._contact_values: dict[str, Props] = {}  # page id → the contact properties as last read or written
        # What this instance (one command, under the enrollment lock) has just seen to be absent, so a following
        # create need not look again: addresses with no contact row, and the Row IDs each contact has.
        self._absent_contacts: set[str] = set()
        self._events: dict[str, list[Event]] = {}  # address → the events on its page as last read or written
        self._rows_of: dict[str, set[str]] = {}
        self._contact_page: dict[str, str] = {}  # address → its Contacts page, as last read or saved

    def requests_within(self, seconds: float) -> int:
        return max(0, int(seconds * self.api.pacer.rate))

    def close(self) -> None:
        self.api.close()

    def _query(self, kind: str, body: JSON, what: str, limit: int | None = None) -> Iterator[JSON]:
        yield from self.api.query(self.schemas.data_source(kind), body, what=what, kind=kind, limit=limit)

    def _first(self, pages: list[JSON], what: str) -> JSON | None:
        if len(pages) > 1:
            links = ", ".join(str(p.get("url") or p.get("id")) for p in pages)
            self.logger.warning("%s has %d rows in Notion (%s): using the first", what, len(pages), links)
        return pages[0] if pages else None
