"""An enrollment is written all or nothing.

On SQLite and PostgreSQL the contact and every row of the enrollment go in one transaction of the store. Notion
has no transactions: there, the enrollment (its sequence, payload and time) is noted in a small file beside the
tick's lock (`.xmas/enrolling.db`) before anything is written to Notion, and the note is removed once all of it is.
An enrollment interrupted in between (Notion failing mid-way, a full disk, a killed process) leaves its note: the
next tick enrolls it again as of its own time (an enrollment is idempotent: the rows written are kept, the missing
ones added, with the due times they would have had), and `xmas status` lists it, with the command that completes
it, until then.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from ..clock import FixedClock, iso, parse_instant
from ..errors import StoreUnavailable, XmasError
from ..perms import private_file, sqlite_siblings
from ..stores.base import all_or_nothing
from .base import Engine

SCHEMA = """
CREATE TABLE IF NOT EXISTS enrollments (
    id TEXT PRIMARY KEY,
    sequence TEXT NOT NULL,
    payload TEXT NOT NULL,
    at TEXT NOT NULL,
    last_error TEXT
);
"""


@dataclass(frozen=True)
class Unfinished:
    id: str
    sequence: str
    payload: dict[str, Any]
    at: datetime
    last_error: str | None = None

    @property
    def email(self) -> str:
        return str(self.payload.get("email") or "?")

    def to_json(self) -> dict[str, Any]:
        return {
            "sequence": self.sequence,
            "email": self.email,
            "at": iso(self.at),
            "last_error": self.last_error,
            "fix": FIX,
        }


FIX = "the next tick completes it; run `xmas tick` to complete it now"


def _path(engine: Engine) -> Path:
    return engine.lock_path("enrolling.db")


def _open(engine: Engine) -> sqlite3.Connection:
    path = _path(engine)
    try:
        private_file(path, engine.campaign.store.mode)  # payloads: names and addresses
        db = sqlite3.connect(path, timeout=10, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.executescript(SCHEMA)
        sqlite_siblings(path, engine.campaign.store.mode)
    except (sqlite3.Error, OSError) as exc:
        raise StoreUnavailable(f"the enrollment journal {path}: {exc}", "check the folder and free disk") from None
    return db


@contextmanager
def written_whole(engine: Engine, sequence: str, raw: Any) -> Iterator[None]:
    """The block writes one enrollment: in the store's transaction, or (Notion) noted until it is all written."""
    transaction = all_or_nothing(engine.store)
    if transaction is not None:
        with transaction:
            yield
        return
    key = uuid.uuid4().hex
    db = _open(engine)
    try:
        db.execute(
            "INSERT INTO enrollments (id, sequence, payload, at) VALUES (?, ?, ?, ?)",
            (key, sequence, json.dumps(raw, default=str), iso(engine.clock.now())),
        )
        try:
            yield
        except XmasError as exc:
            if not isinstance(exc, StoreUnavailable):  # refused (bad input): the same payload would be again
                db.execute("DELETE FROM enrollments WHERE id = ?", (key,))
            raise  # the store failed mid-way: the note stays, and the next tick completes the enrollment
        db.execute("DELETE FROM enrollments WHERE id = ?", (key,))
    finally:
        db.close()


def unfinished(engine: Engine) -> list[Unfinished]:
    """The enrollments an interruption left half-written (Notion), oldest first."""
    if all_or_nothing(engine.store) is not None or not _path(engine).exists():
        return []
    db = _open(engine)
    try:
        rows = db.execute("SELECT id, sequence, payload, at, last_error FROM enrollments ORDER BY at, id").fetchall()
    finally:
        db.close()
    return [Unfinished(r[0], r[1], json.loads(r[2]), parse_instant(r[3], "at"), r[4]) for r in rows]


def complete(engine: Engine) -> tuple[int, int]:
    """Enroll again, as of its own time, each enrollment an interruption left half-written: (completed, still
    unfinished). One that fails keeps its note, with the error, for `xmas status`."""
    from .enroll import enroll

    done = left = 0
    for entry in unfinished(engine):
        as_then = replace(engine, clock=FixedClock(entry.at))
        try:
            enroll(as_then, entry.sequence, entry.payload, noted=False)  # its note stays until it is done
        except XmasError as exc:
            left += 1
            _note_error(engine, entry.id, str(exc))
            continue
        _forget(engine, entry.id)
        done += 1
    return done, left


def _forget(engine: Engine, key: str) -> None:
    db = _open(engine)
    try:
        db.execute("DELETE FROM enrollments WHERE id = ?", (key,))
    finally:
        db.close()


def _note_error(engine: Engine, key: str, error: str) -> None:
    db = _open(engine)
    try:
        db.execute("UPDATE enrollments SET last_error = ? WHERE id = ?", (error, key))
    finally:
        db.close()
