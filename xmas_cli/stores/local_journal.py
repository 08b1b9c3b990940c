"""The batch journal of a store that has no transactions (Notion), kept by the tick in a small SQLite file beside
its lock (`.xmas/sending.db`).

Before an email is sent, its entry (the rows, the rendered emails, when) is written here and synced to disk; its
rows' outcomes are written to the store after the answer, then the entry goes. A tick that dies in between (after
the provider accepted the email, before its row said so) leaves the entry, so the next tick knows the send may
have begun: it sends exactly that again under the same key first, before any send window or frequency cap is
looked at (the provider answers from its key and sends nothing new), or, once the key may have expired, marks the
rows Failed for a person to check (tick/sending.py, `replay`), as the SQLite and PostgreSQL journals do. Without
it such a row was simply due again: a window (Friday night to Monday) held it past the key's 24 hours, and it
went twice.

Notion runs one tick at a time (the tick's file lock), so this file is that tick's alone. Recording the outcomes
is not one transaction here: a tick that dies while it records leaves the entry, and the replay then skips the
rows already recorded Sent.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Collection
from pathlib import Path

from ..core.model import ScheduledEmail, State
from ..errors import StoreUnavailable
from ..perms import DEFAULT_MODE, disk_full, full_disk_fix, sqlite_siblings
from . import sqlite_batches as batches
from .base import Batch, Changes, Store
from .sqlite_base import connect


class LocalJournal:
    """stores/base.BatchJournal over a local file, for `store`'s rows. The file is opened on first use: only a
    tick (or `status`) needs it."""

    def __init__(self, path: Path, store: Store, file_mode: int = DEFAULT_MODE) -> None:
        self.path = path
        self.store = store
        self.file_mode = file_mode
        self._db: sqlite3.Connection | None = None

    @property
    def db(self) -> sqlite3.Connection:
        if self._db is None:
            try:
                db = connect(self.path, self.file_mode)  # rendered emails: names and addresses
                db.execute("PRAGMA synchronous=FULL")  # on disk before the request goes, power cut or not
                db.executescript(batches.SCHEMA)
                sqlite_siblings(self.path, self.file_mode)
            except (sqlite3.Error, OSError) as exc:
                raise self._unavailable(exc) from None
            self._db = db
        return self._db

    def _unavailable(self, exc: BaseException) -> StoreUnavailable:
        if disk_full(self.path, exc):
            return StoreUnavailable(f"the sending journal {self.path}: the disk is full", full_disk_fix(self.path))
        return StoreUnavailable(f"the sending journal {self.path}: {exc}", "check the folder and its permissions")

    def _run(self, sql: str, params: Collection[object] = ()) -> list[sqlite3.Row]:
        try:
            return self.db.execute(sql, tuple(params)).fetchall()
        except sqlite3.Error as exc:
            raise self._unavailable(exc) from None

    def open_batch(self, batch: Batch) -> list[str]:
        """Record the entry, unless one of its rows is in another open entry (those are returned: not sent)."""
        busy = {i for b in self.open_batches() for i in b.row_ids}
        taken = [i for i in batch.row_ids if i in busy]
        if taken:
            return taken
        self._run(*batches.insert(batch))
        return []

    def open_batches(self) -> list[Batch]:
        if self._db is None and not self.path.exists():  # nothing was ever journaled here: no file to make
            return []
        return [batches.read(r) for r in self._run(batches.SELECT)]

    def _apply(self, outcomes: Collection[tuple[ScheduledEmail, Changes]]) -> None:
        for row, changes in outcomes:
            if not changes:
                continue
            if row.state is State.SENT and changes.get("state") is State.SENT:
                continue  # recorded by a tick that died before it removed the entry: as it is
            self.store.update_email(row, changes)

    def close_batch(self, key: str, outcomes: Collection[tuple[ScheduledEmail, Changes]]) -> None:
        self._apply(outcomes)
        self._run(batches.DELETE, (key,))

    def defer_batch(self, batch: Batch, outcomes: Collection[tuple[ScheduledEmail, Changes]]) -> None:
        self._apply(outcomes)
        self._run(*batches.defer(batch))

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
