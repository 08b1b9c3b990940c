"""The `batches` table (stores/base.BatchJournal's entries) as SQLite keeps it: its schema, the statements that
write it and an entry read back. The SQLite store's journal (sqlite_journal.py) and the tick's own journal of a
Notion store (local_journal.py) both keep their entries this way."""

from __future__ import annotations

import json
import sqlite3

from ..clock import iso
from .base import Batch
from .records import EPOCH, read_time

SCHEMA = """
CREATE TABLE IF NOT EXISTS batches (
    key TEXT PRIMARY KEY,
    row_ids TEXT NOT NULL,
    emails TEXT NOT NULL,
    opened_at TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    retry_at TEXT,
    last_error TEXT
);
"""
SELECT = "SELECT * FROM batches ORDER BY opened_at, key"
DELETE = "DELETE FROM batches WHERE key = ?"


def insert(batch: Batch) -> tuple[str, tuple[object, ...]]:
    """The INSERT statement and its parameters that record `batch`."""
    return (
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


def defer(batch: Batch) -> tuple[str, tuple[object, ...]]:
    """The UPDATE statement and its parameters that record `batch`'s attempts, next try and last error."""
    return (
        "UPDATE batches SET attempts = ?, retry_at = ?, last_error = ? WHERE key = ?",
        (batch.attempts, iso(batch.retry_at), batch.last_error, batch.key),
    )


def read(r: sqlite3.Row) -> Batch:
    """An entry as stored, read back."""
    return Batch(
        key=r["key"],
        row_ids=json.loads(r["row_ids"]),
        emails=r["emails"],
        opened_at=read_time(r["opened_at"]) or EPOCH,
        attempts=r["attempts"],
        retry_at=read_time(r["retry_at"]),
        last_error=r["last_error"],
    )
