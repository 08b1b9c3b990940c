"""A small durable queue of verified delivery events, next to the store (`.xmas/deliveries.db`).

The webhook route writes the event here and answers: nothing is lost if the process dies after answering, a
webhook delivered twice is one entry (keyed by Svix's message id), and a burst of webhooks costs the store
nothing at the time. The entries are applied to their rows by `drain`: at once where the store is a local file
(SQLite), by each tick, within its budget and at the pacer's rate, where it is Notion.

A process that dies between writing a row and marking its entry done applies that entry again on the next drain:
a count (opens, clicks) may then be one too high; the dates and links cannot change.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from pathlib import Path

from ..clock import iso, parse_instant
from ..core.deliveries import DeliveryEvent, apply
from ..engine import Engine
from ..errors import StoreUnavailable
from ..perms import DEFAULT_MODE, disk_full, full_disk_fix, private_file, sqlite_siblings

SCHEMA = """
CREATE TABLE IF NOT EXISTS deliveries (
    id TEXT PRIMARY KEY,
    type TEXT NOT NULL,
    email_id TEXT NOT NULL,
    at TEXT NOT NULL,
    link TEXT,
    bounce TEXT,
    received_at TEXT NOT NULL,
    applied_at TEXT,
    note TEXT
);
CREATE INDEX IF NOT EXISTS deliveries_pending ON deliveries (applied_at, received_at);
"""

log = logging.getLogger("xmas.deliveries")


class DeliveryQueue:
    def __init__(self, path: Path, file_mode: int = DEFAULT_MODE) -> None:
        try:
            private_file(path, file_mode)
            self.db = sqlite3.connect(path, timeout=10, isolation_level=None, check_same_thread=False)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.executescript(SCHEMA)
            sqlite_siblings(path, file_mode)
        except (sqlite3.Error, OSError) as exc:
            if disk_full(path, exc):
                what = f"delivery queue {path}: the disk is full ({exc})"
                raise StoreUnavailable(what, full_disk_fix(path)) from None
            raise StoreUnavailable(f"delivery queue {path}: {exc}", "check the folder's permissions") from None

    def add(self, event: DeliveryEvent, received: datetime) -> bool:
        """Queue a verified event; False when it was queued before (the provider delivered the webhook again)."""
        cursor = self.db.execute(
            "INSERT OR IGNORE INTO deliveries (id, type, email_id, at, link, bounce, received_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (event.id, event.type, event.email_id, iso(event.at), event.link, event.bounce, iso(received)),
        )
        return cursor.rowcount == 1

    def pending(self, limit: int) -> list[DeliveryEvent]:
        rows = self.db.execute(
            "SELECT id, type, email_id, at, link, bounce FROM deliveries WHERE applied_at IS NULL "
            "ORDER BY received_at, id LIMIT ?",
            (limit,),
        ).fetchall()
        return [DeliveryEvent(r[0], r[1], r[2], parse_instant(r[3], "at"), r[4], r[5]) for r in rows]

    def count_pending(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM deliveries WHERE applied_at IS NULL").fetchone()[0])

    def finish(self, event_id: str, note: str, at: datetime) -> None:
        self.db.execute("UPDATE deliveries SET applied_at = ?, note = ? WHERE id = ?", (iso(at), note, event_id))

    def close(self) -> None:
        self.db.close()


def queue_path(engine: Engine) -> Path:
    return engine.lock_path("deliveries.db")


def open_queue(engine: Engine) -> DeliveryQueue:
    return DeliveryQueue(queue_path(engine), engine.campaign.store.mode)


@dataclass
class Drained:
    applied: int = 0
    unknown: int = 0  # events for an email id no row has (another tool's email, a row deleted): acknowledged
    left: int = 0


def drain(
    engine: Engine, queue: DeliveryQueue, limit: int = 1000, must_stop: Callable[[], bool] = lambda: False
) -> Drained:
    """Apply up to `limit` queued events to their rows, oldest first, until `must_stop` says so."""
    done = Drained()
    for event in queue.pending(limit):
        if must_stop():
            break
        row = engine.store.update_delivery(event.email_id, partial(apply, event=event))
        if row is None:
            log.warning("delivery event %s (%s) names email %s, which no row has", event.id, event.type, event.email_id)
            queue.finish(event.id, "unknown email id", engine.clock.now())
            done.unknown += 1
            continue
        queue.finish(event.id, f"applied to {row.id}", engine.clock.now())
        done.applied += 1
    done.left = queue.count_pending()
    return done
