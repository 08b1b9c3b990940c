"""The embedded store: one SQLite file (standard library), templates from the templates folder.

Rows are indexed on (state, due), so an idle tick is one index probe however many rows there are.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Collection, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..clock import iso
from ..errors import StoreUnavailable
from ..model import Contact, ScheduledEmail, Sender, State, Template
from .base import Changes
from .files import FileTemplates

SCHEMA = """
CREATE TABLE IF NOT EXISTS contacts (
    email TEXT PRIMARY KEY,
    fields TEXT NOT NULL DEFAULT '{}',
    segment TEXT,
    suppressed INTEGER NOT NULL DEFAULT 0,
    suppressed_reason TEXT,
    updated_at TEXT
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
    batch TEXT
);
CREATE INDEX IF NOT EXISTS emails_state_due ON emails (state, due);
CREATE INDEX IF NOT EXISTS emails_enrollment ON emails (enrollment_key);
CREATE INDEX IF NOT EXISTS emails_email ON emails (email, sequence);
"""
_COLUMNS = (
    "id, enrollment_key, email, sequence, step, template, sender, due, state, sent_at, message_id, "
    "attempts, last_error, note, data, batch"
)


def _time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value).astimezone(UTC) if value else None


def _row(r: sqlite3.Row) -> ScheduledEmail:
    due = _time(r["due"])
    assert due is not None
    return ScheduledEmail(
        id=r["id"],
        enrollment_key=r["enrollment_key"],
        email=r["email"],
        sequence=r["sequence"],
        step=r["step"],
        template=r["template"],
        sender=Sender(r["sender"]),
        due=due,
        state=State(r["state"]),
        sent_at=_time(r["sent_at"]),
        message_id=r["message_id"],
        attempts=r["attempts"],
        last_error=r["last_error"],
        note=r["note"],
        data=json.loads(r["data"]),
        batch=r["batch"],
        ref=r["id"],
    )


def _contact(r: sqlite3.Row) -> Contact:
    return Contact(
        email=r["email"],
        fields=json.loads(r["fields"]),
        segment=r["segment"],
        suppressed=bool(r["suppressed"]),
        suppressed_reason=r["suppressed_reason"],
        updated_at=_time(r["updated_at"]),
        ref=r["email"],
    )


def _db_value(key: str, value: Any) -> Any:
    if isinstance(value, datetime):
        return iso(value)
    if key == "data":
        return json.dumps(value, sort_keys=True)
    if isinstance(value, State):
        return value.value
    return value


class SqliteStore:
    supports_batches = True

    def __init__(self, path: Path, templates_dir: Path) -> None:
        self.path = path
        self.description = f"SQLite {path}"
        self.templates = FileTemplates(templates_dir)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(path, timeout=10, isolation_level=None, check_same_thread=False)
            self.db.row_factory = sqlite3.Row
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA busy_timeout=10000")
            self.db.executescript(SCHEMA)
        except (sqlite3.Error, OSError) as exc:
            raise StoreUnavailable(f"cannot open {path}: {exc}", "check the [store] path and its permissions") from None

    def _q(self, sql: str, params: Collection[Any] = ()) -> sqlite3.Cursor:
        try:
            return self.db.execute(sql, tuple(params))
        except sqlite3.OperationalError as exc:
            raise StoreUnavailable(f"{self.description}: {exc}", "check the file, its folder and free disk") from None

    # contacts
    def get_contact(self, email: str) -> Contact | None:
        r = self._q("SELECT * FROM contacts WHERE email = ?", (email.lower(),)).fetchone()
        return _contact(r) if r else None

    def get_contacts(self, emails: Collection[str]) -> dict[str, Contact]:
        wanted = sorted({e.lower() for e in emails})
        out: dict[str, Contact] = {}
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for r in self._q(f"SELECT * FROM contacts WHERE email IN ({marks})", chunk):
                out[r["email"]] = _contact(r)
        return out

    def save_contact(self, contact: Contact) -> Contact:
        self._q(
            "INSERT INTO contacts (email, fields, segment, suppressed, suppressed_reason, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(email) DO UPDATE SET fields = excluded.fields, "
            "segment = excluded.segment, suppressed = excluded.suppressed, "
            "suppressed_reason = excluded.suppressed_reason, updated_at = excluded.updated_at",
            (
                contact.email.lower(),
                json.dumps(contact.fields, sort_keys=True),
                contact.segment,
                int(contact.suppressed),
                contact.suppressed_reason,
                iso(contact.updated_at),
            ),
        )
        found = self.get_contact(contact.email)
        assert found is not None
        return found

    # scheduled emails
    def emails_for_enrollment(self, key: str) -> list[ScheduledEmail]:
        rows = self._q(f"SELECT {_COLUMNS} FROM emails WHERE enrollment_key = ? ORDER BY step", (key,))
        return [_row(r) for r in rows]

    def emails_for_contact(self, email: str) -> list[ScheduledEmail]:
        rows = self._q(f"SELECT {_COLUMNS} FROM emails WHERE email = ? ORDER BY due, step", (email.lower(),))
        return [_row(r) for r in rows]

    def add_email(self, row: ScheduledEmail) -> ScheduledEmail:
        values = [
            row.id,
            row.enrollment_key,
            row.email,
            row.sequence,
            row.step,
            row.template,
            row.sender.value,
            iso(row.due),
            row.state.value,
            iso(row.sent_at),
            row.message_id,
            row.attempts,
            row.last_error,
            row.note,
            json.dumps(row.data, sort_keys=True),
            row.batch,
        ]
        self._q(f"INSERT OR IGNORE INTO emails ({_COLUMNS}) VALUES ({','.join('?' * len(values))})", values)
        stored = self._q(f"SELECT {_COLUMNS} FROM emails WHERE id = ?", (row.id,)).fetchone()
        return _row(stored)

    def update_email(self, row: ScheduledEmail, changes: Changes) -> ScheduledEmail:
        if changes:
            sets = ", ".join(f"{key} = ?" for key in changes)
            params = [_db_value(k, v) for k, v in changes.items()]
            self._q(f"UPDATE emails SET {sets} WHERE id = ?", [*params, row.id])
        stored = self._q(f"SELECT {_COLUMNS} FROM emails WHERE id = ?", (row.id,)).fetchone()
        return _row(stored)

    def due_emails(self, now: datetime, limit: int | None = None) -> Iterator[ScheduledEmail]:
        sql = f"SELECT {_COLUMNS} FROM emails WHERE state = ? AND due <= ? ORDER BY due, id"
        params: list[Any] = [State.SCHEDULED.value, iso(now)]
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        yield from (_row(r) for r in self._q(sql, params).fetchall())

    def assign_batch(self, batch: str, rows: Collection[ScheduledEmail]) -> None:
        ids = [r.id for r in rows]
        try:
            with self.db:  # one transaction: the whole membership is recorded, or none of it
                self.db.execute("BEGIN IMMEDIATE")
                self.db.executemany("UPDATE emails SET batch = ? WHERE id = ?", [(batch, i) for i in ids])
        except sqlite3.OperationalError as exc:
            raise StoreUnavailable(f"{self.description}: {exc}", "check the file, its folder and free disk") from None

    def all_emails(self) -> Iterator[ScheduledEmail]:
        yield from (_row(r) for r in self._q(f"SELECT {_COLUMNS} FROM emails ORDER BY due, id"))

    def count_contacts(self, sequences: Collection[str]) -> int:
        names = list(sequences)
        if not names:
            return 0
        marks = ",".join("?" * len(names))
        r = self._q(f"SELECT COUNT(DISTINCT email) FROM emails WHERE sequence IN ({marks})", names).fetchone()
        return int(r[0])

    # templates
    def get_template(self, template_id: str) -> Template | None:
        return self.templates.get(template_id)

    def list_templates(self) -> list[Template]:
        return self.templates.list()

    def close(self) -> None:
        self.db.close()
