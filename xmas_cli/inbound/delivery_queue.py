"""A small durable queue of verified delivery events, next to the store (`.xmas/deliveries.db`).

The webhook route writes the event here and answers: nothing is lost if the process dies after answering, a
webhook delivered twice is one entry (keyed by Svix's message id), and a burst of webhooks costs the store
nothing at the time. The entries are applied to their rows by `drain`: at once where the store is a local file
(SQLite), by each tick, within its budget and at the pacer's rate, where it is Notion.

A process that dies between writing a row and marking its entry done applies that entry again on the next drain:
a count (opens, clicks) may then be one too high; the dates and links cannot change.

An event can come before its email's id is on its row: Resend reports a delivery within seconds, and the tick
records the id only after Resend answered (a tick killed in between records it on the next tick; on PostgreSQL a
runner's whole lease can pass). Such an event waits in the queue, tried again at growing intervals (2 min, 4 min,
… every 2 h), and is applied once the id is recorded; only after WAIT_FOR_ID is it given up, and `xmas status`
says how many were. An event about an email that is plainly not this campaign's (tagged for another campaign, or
not tagged by xmas: the website's own emails) is acknowledged at once, as before.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
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
ADDED = (
    ("campaign", "TEXT"),
    ("tries", "INTEGER NOT NULL DEFAULT 0"),
    ("next_at", "TEXT"),
)  # since a queue file's first

WAIT_FOR_ID = timedelta(hours=24)  # how long an event waits for its email's id to be recorded
LONGEST_WAIT = timedelta(hours=2)  # between two tries
UNMATCHED = "unknown email id"  # the note of an event acknowledged without a row
GIVEN_UP = f"{UNMATCHED}: no row had it after 24 h"
RECENT = timedelta(days=7)  # `status` counts the events given up this recently


def retry_in(tries: int) -> timedelta:
    """After `tries` tries: 2, 4, 8 … minutes, at most LONGEST_WAIT (about 18 tries in WAIT_FOR_ID)."""
    return min(timedelta(minutes=2 ** min(tries + 1, 10)), LONGEST_WAIT)


@dataclass(frozen=True)
class Waiting:
    """A queued event, when it came and how often its email was looked for."""

    event: DeliveryEvent
    received: datetime
    tries: int


@dataclass(frozen=True)
class Backlog:
    """What `xmas status` says about the queue: events waiting for their email's id, and those given up lately."""

    waiting: int
    oldest: datetime | None
    unmatched: int  # given up (no row had the id after WAIT_FOR_ID) in the last RECENT

    def to_json(self) -> dict[str, object]:
        return {"waiting": self.waiting, "oldest": iso(self.oldest), "unmatched_last_7_days": self.unmatched}


log = logging.getLogger("xmas.deliveries")


class DeliveryQueue:
    def __init__(self, path: Path, file_mode: int = DEFAULT_MODE) -> None:
        try:
            private_file(path, file_mode)
            self.db = sqlite3.connect(path, timeout=10, isolation_level=None, check_same_thread=False)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.executescript(SCHEMA)
            columns = {r[1] for r in self.db.execute("PRAGMA table_info(deliveries)")}
            for column, kind in ADDED:
                if column not in columns:
                    self.db.execute(f"ALTER TABLE deliveries ADD COLUMN {column} {kind}")
            sqlite_siblings(path, file_mode)
        except (sqlite3.Error, OSError) as exc:
            if disk_full(path, exc):
                what = f"delivery queue {path}: the disk is full ({exc})"
                raise StoreUnavailable(what, full_disk_fix(path)) from None
            raise StoreUnavailable(f"delivery queue {path}: {exc}", "check the folder's permissions") from None

    def add(self, event: DeliveryEvent, received: datetime) -> bool:
        """Queue a verified event; False when it was queued before (the provider delivered the webhook again)."""
        cursor = self.db.execute(
            "INSERT OR IGNORE INTO deliveries (id, type, email_id, at, link, bounce, received_at, campaign) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                event.id,
                event.type,
                event.email_id,
                iso(event.at),
                event.link,
                event.bounce,
                iso(received),
                event.campaign,
            ),
        )
        return cursor.rowcount == 1

    def pending(self, limit: int, now: datetime | None = None) -> list[Waiting]:
        """Up to `limit` events not applied yet, oldest first; with `now`, only those due for a try."""
        due = "AND (next_at IS NULL OR next_at <= ?)" if now is not None else ""
        rows = self.db.execute(
            "SELECT id, type, email_id, at, link, bounce, campaign, received_at, tries FROM deliveries "
            f"WHERE applied_at IS NULL {due} ORDER BY received_at, id LIMIT ?",
            (iso(now), limit) if now is not None else (limit,),
        ).fetchall()
        return [
            Waiting(
                DeliveryEvent(r[0], r[1], r[2], parse_instant(r[3], "at"), r[4], r[5], r[6]),
                parse_instant(r[7], "received_at"),
                r[8],
            )
            for r in rows
        ]

    def count_pending(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM deliveries WHERE applied_at IS NULL").fetchone()[0])

    def finish(self, event_id: str, note: str, at: datetime) -> None:
        self.db.execute("UPDATE deliveries SET applied_at = ?, note = ? WHERE id = ?", (iso(at), note, event_id))

    def later(self, event_id: str, tries: int, at: datetime) -> None:
        """Its email was not found: look again at `at`."""
        self.db.execute("UPDATE deliveries SET tries = ?, next_at = ? WHERE id = ?", (tries, iso(at), event_id))

    def backlog(self, now: datetime) -> Backlog:
        waiting, oldest = self.db.execute(
            "SELECT COUNT(*), MIN(received_at) FROM deliveries WHERE applied_at IS NULL"
        ).fetchone()
        unmatched = self.db.execute(
            "SELECT COUNT(*) FROM deliveries WHERE note = ? AND applied_at >= ?", (GIVEN_UP, iso(now - RECENT))
        ).fetchone()[0]
        return Backlog(int(waiting), parse_instant(oldest, "received_at") if oldest else None, int(unmatched))

    def close(self) -> None:
        self.db.close()


def queue_path(engine: Engine) -> Path:
    return engine.lock_path("deliveries.db")


def open_queue(engine: Engine) -> DeliveryQueue:
    return DeliveryQueue(queue_path(engine), engine.campaign.store.mode)


def backlog(engine: Engine) -> Backlog:
    """The queue's backlog for `xmas status` (nothing waiting where no webhook has queued anything yet)."""
    if not queue_path(engine).exists():
        return Backlog(0, None, 0)
    queue = open_queue(engine)
    try:
        return queue.backlog(engine.clock.now())
    finally:
        queue.close()


@dataclass
class Drained:
    applied: int = 0
    unknown: int = 0  # acknowledged without a row: another tool's or campaign's email, or given up after a day
    waiting: int = 0  # this campaign's events whose email id no row has yet: tried again later
    left: int = 0


def drain(
    engine: Engine, queue: DeliveryQueue, limit: int = 1000, must_stop: Callable[[], bool] = lambda: False
) -> Drained:
    """Apply up to `limit` queued events (those due for a try) to their rows, oldest first, until `must_stop`."""
    done = Drained()
    now = engine.clock.now()
    from ..core.compose import tag  # here, not at the top: compose loads Jinja, which an idle tick never needs

    ours = tag(engine.campaign.campaign.name)
    for item in queue.pending(limit, now):
        if must_stop():
            break
        event = item.event
        row = engine.store.update_delivery(event.email_id, partial(apply, event=event))
        if row is not None:
            queue.finish(event.id, f"applied to {row.id}", now)
            done.applied += 1
        elif event.campaign not in (None, ours):  # plainly not an email this campaign sent
            queue.finish(event.id, f"{UNMATCHED}: not an email of this campaign", now)
            done.unknown += 1
        elif now - item.received >= WAIT_FOR_ID:
            log.warning(
                "delivery event %s (%s): no row has email %s after %s",
                event.id,
                event.type,
                event.email_id,
                WAIT_FOR_ID,
            )
            queue.finish(event.id, GIVEN_UP, now)
            done.unknown += 1
        else:  # the tick that sent it may not have recorded its id yet
            queue.later(event.id, item.tries + 1, now + retry_in(item.tries))
            done.waiting += 1
    done.left = queue.count_pending()
    return done
