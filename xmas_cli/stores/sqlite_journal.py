"""The SQLite store's batch journal (stores/base.py): the `batches` table. An entry is written with its rows'
membership in one transaction, and removed with their outcomes in another."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Collection

from ..clock import iso
from ..core.model import ScheduledEmail, State
from .base import Batch, Changes
from .records import EPOCH, read_time
from .sqlite_base import SqliteBase, update_sql


def _batch(r: sqlite3.Row) -> Batch:
    return Batch(
        key=r["key"],
        row_ids=json.loads(r["row_ids"]),
        emails=r["emails"],
        opened_at=read_time(r["opened_at"]) or EPOCH,
        attempts=r["attempts"],
        retry_at=read_time(r["retry_at"]),
        last_error=r["last_error"],
    )


class SqliteJournal(SqliteBase):
    """The batch journal: open, defer and close entries, each in one transaction."""

    def open_batch(self, batch: Batch) -> list[str]:
        def work() -> list[str]:
            marks = ",".join("?" * len(batch.row_ids))
            free = {
                r[0]
                for r in self.db.execute(
                    f"SELECT id FROM emails WHERE id IN ({marks}) AND state = ? AND (batch IS NULL OR NOT EXISTS "
                    "(SELECT 1 FROM batches b WHERE b.key = emails.batch))",
                    [*batch.row_ids, State.SCHEDULED.value],
                )
            }
            taken = [i for i in batch.row_ids if i not in free]
            if taken:
                return taken
            self.db.execute(
                "INSERT INTO batches (key, row_ids, emails, opened_at, attempts, retry_at, last_error) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    batch.key,
                    json.dumps(batch.row_ids),
                    batch.emails,
                    iso(batch.opened_at),
                    batch.attempts,
                    iso(batch.retry_at),
                    batch.last_error,
                ),
            )
            self.db.executemany("UPDATE emails SET batch = ? WHERE id = ?", [(batch.key, i) for i in batch.row_ids])
            return []

        result: list[str] = self._write(work)
        return result

    def open_batches(self) -> list[Batch]:
        return [_batch(r) for r in self._q("SELECT * FROM batches ORDER BY opened_at, key")]

    def _apply(self, outcomes: Collection[tuple[ScheduledEmail, Changes]]) -> None:
        """Inside a transaction (`_write`): every row's changes."""
        for row, changes in outcomes:
            if changes:
                self.db.execute(*update_sql(row, changes))

    def close_batch(self, key: str, outcomes: Collection[tuple[ScheduledEmail, Changes]]) -> None:
        def work() -> None:
            self._apply(outcomes)
            self.db.execute("DELETE FROM batches WHERE key = ?", (key,))

        self._write(work)

    def defer_batch(self, batch: Batch, outcomes: Collection[tuple[ScheduledEmail, Changes]]) -> None:
        def work() -> None:
            self._apply(outcomes)
            self.db.execute(
                "UPDATE batches SET attempts = ?, retry_at = ?, last_error = ? WHERE key = ?",
                (batch.attempts, iso(batch.retry_at), batch.last_error, batch.key),
            )

        self._write(work)
