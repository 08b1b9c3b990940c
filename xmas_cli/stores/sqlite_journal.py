"""The SQLite store's batch journal (stores/base.py): the `batches` table. An entry is written with its rows'
membership in one transaction, and removed with their outcomes in another."""

from __future__ import annotations

from collections.abc import Collection

from ..core.model import ScheduledEmail, State
from . import sqlite_batches as batches
from .base import Batch, Changes
from .sqlite_base import SqliteBase, update_sql


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
            self.db.execute(*batches.insert(batch))
            self.db.executemany("UPDATE emails SET batch = ? WHERE id = ?", [(batch.key, i) for i in batch.row_ids])
            return []

        result: list[str] = self._write(work)
        return result

    def open_batches(self) -> list[Batch]:
        return [batches.read(r) for r in self._q(batches.SELECT)]

    def _apply(self, outcomes: Collection[tuple[ScheduledEmail, Changes]]) -> None:
        """Inside a transaction (`_write`): every row's changes."""
        for row, changes in outcomes:
            if changes:
                self.db.execute(*update_sql(row, changes))

    def close_batch(self, key: str, outcomes: Collection[tuple[ScheduledEmail, Changes]]) -> None:
        def work() -> None:
            self._apply(outcomes)
            self.db.execute(batches.DELETE, (key,))

        self._write(work)

    def defer_batch(self, batch: Batch, outcomes: Collection[tuple[ScheduledEmail, Changes]]) -> None:
        def work() -> None:
            self._apply(outcomes)
            self.db.execute(*batches.defer(batch))

        self._write(work)
