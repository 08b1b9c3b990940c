"""The SQLite store's connection: the file opened (private to its owner, or shared by a group), its schema
created and upgraded in place, and the two ways every query runs: one statement, or one IMMEDIATE transaction.
A full disk or an unreadable file is a StoreUnavailable that says which and how to fix it."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Collection, Iterator
from contextlib import contextmanager, suppress
from datetime import datetime
from pathlib import Path
from typing import Any

from ..clock import iso
from ..core.deliveries import to_json
from ..core.model import ScheduledEmail, State
from ..errors import StoreUnavailable
from ..perms import DEFAULT_MODE, disk_full, full_disk_fix, private_file, shared, sqlite_siblings
from .base import Changes
from .files import FileTemplates
from .sqlite_batches import SCHEMA as BATCHES

SCHEMA = """
CREATE TABLE IF NOT EXISTS contacts (
    email TEXT PRIMARY KEY,
    fields TEXT NOT NULL DEFAULT '{}',
    segment TEXT,
    suppressed INTEGER NOT NULL DEFAULT 0,
    suppressed_reason TEXT,
    updated_at TEXT,
    consent TEXT
);
CREATE TABLE IF NOT EXISTS emails (
    id TEXT PRIMARY KEY,
    enrollment_key TEXT NOT NULL,
    email TEXT NOT NULL,
    sequence TEXT NOT NULL,
    step INTEGER NOT NULL,
    template TEXT NOT NULL,
    sender TEXT NOT NULL,
    due TEXT NOT NULL,
    state TEXT NOT NULL,
    sent_at TEXT,
    message_id TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    note TEXT,
    data TEXT NOT NULL DEFAULT '{}',
    batch TEXT,
    delivery TEXT,
    variant INTEGER
);
CREATE INDEX IF NOT EXISTS emails_state_due ON emails (state, due);
CREATE INDEX IF NOT EXISTS emails_enrollment ON emails (enrollment_key);
CREATE INDEX IF NOT EXISTS emails_email ON emails (email, sequence);
CREATE INDEX IF NOT EXISTS emails_message ON emails (message_id);
CREATE TABLE IF NOT EXISTS events (
    key TEXT NOT NULL,
    email TEXT NOT NULL,
    name TEXT NOT NULL,
    at TEXT NOT NULL,
    data TEXT NOT NULL DEFAULT '{}',
    recorded_at TEXT,
    PRIMARY KEY (email, key)
);
CREATE INDEX IF NOT EXISTS events_name ON events (name, email);
"""


def db_value(key: str, value: Any) -> Any:
    if isinstance(value, datetime):
        return iso(value)
    if key == "data":
        return json.dumps(value, sort_keys=True)
    if key == "delivery":
        return None if value.empty else json.dumps(to_json(value), sort_keys=True)
    if isinstance(value, State):
        return value.value
    return value


def update_sql(row: ScheduledEmail, changes: Changes) -> tuple[str, list[Any]]:
    """The UPDATE statement and its parameters that write `changes` on `row`."""
    sets = ", ".join(f"{key} = ?" for key in changes)
    return f"UPDATE emails SET {sets} WHERE id = ?", [*(db_value(k, v) for k, v in changes.items()), row.id]


def wal_mode(db: sqlite3.Connection, wait: float = 10.0) -> None:
    """Switch the file to WAL. On a new file that takes an exclusive lock, and when other connections are opening
    the same new file (the website's first requests at once; a tick and `status` on a new sending journal) SQLite
    answers "database is locked" at once, without its busy handler (to avoid a deadlock): try again for as long
    as any other lock wait (`wait` seconds)."""
    deadline = time.monotonic() + wait
    while True:
        try:
            db.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def connect(path: Path, file_mode: int) -> sqlite3.Connection:
    """`path` opened (made private to its owner, or its group's where `file_mode` shares it) in WAL mode, its rows
    read by column name, every statement its own transaction unless one is begun: how the store and the tick's
    local journal both open their file. The caller sets its pragmas and schema, then sqlite_siblings()."""
    private_file(path, file_mode)
    db = sqlite3.connect(path, timeout=10, isolation_level=None, check_same_thread=False)
    db.row_factory = sqlite3.Row
    wal_mode(db)
    return db


class SqliteBase:
    """The open file, and how every query of the store runs."""

    def __init__(self, path: Path, templates_dir: Path, file_mode: int = DEFAULT_MODE) -> None:
        self.path = path
        self.description = f"SQLite {path}"
        self.templates = FileTemplates(templates_dir)
        try:
            self.db = connect(path, file_mode)  # names, emails and business data: not for every user of the machine
            self.db.execute("PRAGMA busy_timeout=10000")
            self.db.executescript(SCHEMA + BATCHES)  # and the journal's table (sqlite_batches.py)
            columns = {r[1] for r in self.db.execute("PRAGMA table_info(contacts)")}
            if "consent" not in columns:  # a file from before consent was recorded
                self.db.execute("ALTER TABLE contacts ADD COLUMN consent TEXT")
            columns = {r[1] for r in self.db.execute("PRAGMA table_info(emails)")}
            for column, kind in (("delivery", "TEXT"), ("variant", "INTEGER")):  # files from before delivery events
                if column not in columns:
                    self.db.execute(f"ALTER TABLE emails ADD COLUMN {column} {kind}")
            self.db.execute("CREATE INDEX IF NOT EXISTS emails_message ON emails (message_id)")
            # The -wal and -shm files exist now, and stay while this connection is open: the ones this process
            # created get the folder's group, so the other user of a shared store can write them too.
            sqlite_siblings(path, file_mode)
        except (sqlite3.Error, OSError) as exc:
            if disk_full(path, exc):
                raise StoreUnavailable(f"cannot open {path}: the disk is full ({exc})", full_disk_fix(path)) from None
            fix = "check the [store] path and its permissions"
            if shared(file_mode):
                fix += (
                    f"; a store shared by two users needs its folder group-owned, group-writable and setgid "
                    f"(chgrp GROUP {path.parent} && chmod 2770 {path.parent}) and its files in that group "
                    f"(chgrp GROUP {path}* && chmod 0660 {path}*)"
                )
            raise StoreUnavailable(f"cannot open {path}: {exc}", fix) from None

    def _unavailable(self, exc: sqlite3.OperationalError) -> StoreUnavailable:
        """A statement that failed, said as xmas says it: a full disk and its fix, or the file's trouble."""
        if disk_full(self.path, exc):
            return StoreUnavailable(f"{self.description}: the disk is full ({exc})", full_disk_fix(self.path))
        return StoreUnavailable(f"{self.description}: {exc}", "check the file, its folder and free disk")

    def _q(self, sql: str, params: Collection[Any] = ()) -> sqlite3.Cursor:
        try:
            return self.db.execute(sql, tuple(params))
        except sqlite3.OperationalError as exc:
            raise self._unavailable(exc) from None

    def _where_in(
        self, select: str, column: str, values: Collection[str], where: str = "", params: Collection[Any] = ()
    ) -> Iterator[sqlite3.Row]:
        """`select ... WHERE [where AND] column IN (values)`, 500 values a query."""
        wanted = list(values)
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            condition = f"{where} AND " if where else ""
            yield from self._q(
                f"{select} WHERE {condition}{column} IN ({','.join('?' * len(chunk))})", [*params, *chunk]
            )

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """stores/base.Transactional: the block's statements in one IMMEDIATE transaction (an enrollment's contact
        and rows): all of them are written, or, when one fails (a full disk, a killed process), none."""
        if self.db.in_transaction:  # inside another block: part of it
            yield
            return
        self._unless_failed(lambda: self.db.execute("BEGIN IMMEDIATE"))
        try:
            yield
        except BaseException:
            with suppress(sqlite3.Error):
                self.db.execute("ROLLBACK")
            raise
        self._unless_failed(lambda: self.db.execute("COMMIT"))

    def _unless_failed(self, statement: Any) -> None:
        try:
            statement()
        except sqlite3.OperationalError as exc:
            with suppress(sqlite3.Error):
                if self.db.in_transaction:
                    self.db.execute("ROLLBACK")
            raise self._unavailable(exc) from None

    def _write(self, work: Any) -> Any:
        """Run `work()` in one IMMEDIATE transaction: all of it is written, or none of it."""
        if self.db.in_transaction:  # inside transaction(): its part
            return work()
        try:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                result = work()
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
            self.db.execute("COMMIT")
            return result
        except sqlite3.OperationalError as exc:
            raise self._unavailable(exc) from None
