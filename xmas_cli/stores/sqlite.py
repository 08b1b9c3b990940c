"""The embedded store: one SQLite file (standard library), templates from the templates folder.

Rows are indexed on (state, due), so an idle tick is one index probe however many rows there are. The batch
journal (stores/base.py) is the `batches` table: an entry is written with its rows' membership in one
transaction, and removed with their outcomes in another. A stored value that cannot be read (a hand edit, a
bug) never stops a command: the row is read as well as it can be, with the reason in `defect`.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Collection, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from ..clock import iso
from ..core.deliveries import to_json
from ..core.model import Contact, Delivery, Event, ScheduledEmail, State
from ..core.report_facts import Funnel, ReportFacts
from ..errors import StoreUnavailable
from ..perms import DEFAULT_MODE, disk_full, full_disk_fix, private_file, shared, sqlite_siblings
from .base import Batch, Changes, Summary, is_problem
from .files import FileTemplates, TemplatesInFolder
from .records import EPOCH, read_contact, read_event, read_row, read_time

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
DUE = "state = ? AND due <= ? AND (batch IS NULL OR NOT EXISTS (SELECT 1 FROM batches b WHERE b.key = emails.batch))"
_COLUMNS = (
    "id, enrollment_key, email, sequence, step, template, sender, due, state, sent_at, message_id, "
    "attempts, last_error, note, data, batch, delivery, variant"
)


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


def _db_value(key: str, value: Any) -> Any:
    if isinstance(value, datetime):
        return iso(value)
    if key == "data":
        return json.dumps(value, sort_keys=True)
    if key == "delivery":
        return None if value.empty else json.dumps(to_json(value), sort_keys=True)
    if isinstance(value, State):
        return value.value
    return value


def _update(row: ScheduledEmail, changes: Changes) -> tuple[str, list[Any]]:
    """The UPDATE statement and its parameters that write `changes` on `row`."""
    sets = ", ".join(f"{key} = ?" for key in changes)
    return f"UPDATE emails SET {sets} WHERE id = ?", [*(_db_value(k, v) for k, v in changes.items()), row.id]


class SqliteStore(TemplatesInFolder):
    supports_batches = True
    many_runners = False  # one tick at a time, behind the tick's file lock

    def __init__(self, path: Path, templates_dir: Path, file_mode: int = DEFAULT_MODE) -> None:
        self.path = path
        self.description = f"SQLite {path}"
        self.templates = FileTemplates(templates_dir)
        try:
            private_file(path, file_mode)  # names, emails and business data: not for every user of the machine
            self.db = sqlite3.connect(path, timeout=10, isolation_level=None, check_same_thread=False)
            self.db.row_factory = sqlite3.Row
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA busy_timeout=10000")
            self.db.executescript(SCHEMA)
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

    def _q(self, sql: str, params: Collection[Any] = ()) -> sqlite3.Cursor:
        try:
            return self.db.execute(sql, tuple(params))
        except sqlite3.OperationalError as exc:
            if disk_full(self.path, exc):
                raise StoreUnavailable(
                    f"{self.description}: the disk is full ({exc})", full_disk_fix(self.path)
                ) from None
            raise StoreUnavailable(f"{self.description}: {exc}", "check the file, its folder and free disk") from None

    # contacts
    def contact_lock(self, email: str) -> None:
        return None  # the engine's lock file orders enrollments

    def get_contact(self, email: str) -> Contact | None:
        r = self._q("SELECT * FROM contacts WHERE email = ?", (email.lower(),)).fetchone()
        return read_contact(r) if r else None

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

    def all_contacts(self) -> Iterator[Contact]:
        yield from (read_contact(r) for r in self._q("SELECT * FROM contacts ORDER BY email").fetchall())

    def get_contacts(self, emails: Collection[str]) -> dict[str, Contact]:
        rows = self._where_in("SELECT * FROM contacts", "email", sorted({e.lower() for e in emails}))
        return {r["email"]: read_contact(r) for r in rows}

    def save_contact(self, contact: Contact) -> Contact:
        self._q(
            "INSERT INTO contacts (email, fields, segment, suppressed, suppressed_reason, updated_at, consent) "
            "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(email) DO UPDATE SET fields = excluded.fields, "
            "segment = excluded.segment, suppressed = excluded.suppressed, "
            "suppressed_reason = excluded.suppressed_reason, updated_at = excluded.updated_at, "
            "consent = excluded.consent",
            (
                contact.email.lower(),
                json.dumps(contact.fields, sort_keys=True),
                contact.segment,
                int(contact.suppressed),
                contact.suppressed_reason,
                iso(contact.updated_at),
                contact.consent.describe() if contact.consent else None,
            ),
        )
        found = self.get_contact(contact.email)
        assert found is not None
        return found

    # scheduled emails
    def emails_for_enrollment(self, key: str) -> list[ScheduledEmail]:
        rows = self._q(f"SELECT {_COLUMNS} FROM emails WHERE enrollment_key = ? ORDER BY step", (key,))
        return [read_row(r) for r in rows]

    def emails_for_contact(self, email: str) -> list[ScheduledEmail]:
        rows = self._q(f"SELECT {_COLUMNS} FROM emails WHERE email = ? ORDER BY due, step", (email.lower(),))
        return [read_row(r) for r in rows]

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
            _db_value("delivery", row.delivery),
            row.variant,
        ]
        self._q(f"INSERT OR IGNORE INTO emails ({_COLUMNS}) VALUES ({','.join('?' * len(values))})", values)
        stored = self._q(f"SELECT {_COLUMNS} FROM emails WHERE id = ?", (row.id,)).fetchone()
        return read_row(stored)

    def update_email(self, row: ScheduledEmail, changes: Changes) -> ScheduledEmail:
        if changes:
            self._q(*_update(row, changes))
        stored = self._q(f"SELECT {_COLUMNS} FROM emails WHERE id = ?", (row.id,)).fetchone()
        return read_row(stored)

    def due_emails(self, now: datetime, limit: int | None = None) -> Iterator[ScheduledEmail]:
        sql = f"SELECT {_COLUMNS} FROM emails WHERE {DUE} ORDER BY due, id"
        params: list[Any] = [State.SCHEDULED.value, iso(now)]
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        # read whole before anything is written: the tick updates these rows while it goes
        yield from (read_row(r) for r in self._q(sql, params).fetchall())

    def sent_since(
        self, emails: Collection[str], sequences: Collection[str], since: datetime
    ) -> dict[str, list[datetime]]:
        names = sorted(set(sequences))
        out: dict[str, list[datetime]] = {}
        if not names:
            return out
        where = f"state = ? AND sent_at > ? AND sequence IN ({','.join('?' * len(names))})"
        params = [State.SENT.value, iso(since), *names]
        for r in self._where_in(
            "SELECT email, sent_at FROM emails", "email", sorted({e.lower() for e in emails}), where, params
        ):
            try:
                when = read_time(r["sent_at"])
            except ValueError:  # a damaged time counts as no send rather than stopping the tick
                continue
            if when is not None:
                out.setdefault(r["email"], []).append(when)
        return out

    def email_by_message_id(self, message_id: str) -> ScheduledEmail | None:
        found = self._q(f"SELECT {_COLUMNS} FROM emails WHERE message_id = ? ORDER BY id LIMIT 1", (message_id,))
        row = found.fetchone()
        return read_row(row) if row else None

    def update_delivery(self, message_id: str, change: Callable[[Delivery], Delivery]) -> ScheduledEmail | None:
        def work() -> ScheduledEmail | None:
            row = self.email_by_message_id(message_id)
            if row is not None and (changed := change(row.delivery)) != row.delivery:
                self.db.execute(*_update(row, {"delivery": changed}))
            return row

        found: ScheduledEmail | None = self._write(work)
        return found

    def stopped_emails(self, since: datetime, now: datetime) -> list[ScheduledEmail]:
        sql = f"SELECT {_COLUMNS} FROM emails WHERE state = ? AND due > ? AND due <= ? ORDER BY due, id"
        return [read_row(r) for r in self._q(sql, (State.CANCELLED.value, iso(since), iso(now)))]

    # the batch journal
    def _write(self, work: Any) -> Any:
        """Run `work()` in one IMMEDIATE transaction: all of it is written, or none of it."""
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
            if disk_full(self.path, exc):
                raise StoreUnavailable(
                    f"{self.description}: the disk is full ({exc})", full_disk_fix(self.path)
                ) from None
            raise StoreUnavailable(f"{self.description}: {exc}", "check the file, its folder and free disk") from None

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

    def emails_by_id(self, ids: Collection[str]) -> dict[str, ScheduledEmail]:
        return {r["id"]: read_row(r) for r in self._where_in(f"SELECT {_COLUMNS} FROM emails", "id", ids)}

    def open_batches(self) -> list[Batch]:
        return [_batch(r) for r in self._q("SELECT * FROM batches ORDER BY opened_at, key")]

    def _apply(self, outcomes: Collection[tuple[ScheduledEmail, Changes]]) -> None:
        """Inside a transaction (`_write`): every row's changes."""
        for row, changes in outcomes:
            if changes:
                self.db.execute(*_update(row, changes))

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

    def all_emails(self) -> Iterator[ScheduledEmail]:
        yield from (read_row(r) for r in self._q(f"SELECT {_COLUMNS} FROM emails ORDER BY due, id"))

    def summary(self, now: datetime) -> Summary:
        """Counted in SQL: GROUP BY for the counts, the (state, due) index for what is due, one filtered scan for
        the problems, of which only those rows are decoded (1,000,000 rows: no Python loop over them)."""
        counts: dict[str, dict[str, int]] = {}
        for sequence, state, n in self._q("SELECT sequence, state, COUNT(*) FROM emails GROUP BY sequence, state"):
            per = counts.setdefault(str(sequence), {})
            per[str(state)] = per.get(str(state), 0) + int(n)
        scheduled, at = State.SCHEDULED.value, iso(now)
        overdue_sql = "SELECT COUNT(*) FROM emails WHERE state = ? AND due <= ?"
        overdue = int(self._q(overdue_sql, [scheduled, at]).fetchone()[0])
        found = self._q(
            f"SELECT {_COLUMNS} FROM emails WHERE state = ? AND due > ? ORDER BY due, id LIMIT 1", [scheduled, at]
        ).fetchone()
        known = [s.value for s in State]
        suspects = (  # what is_problem() reports, plus the stored values read_row() would call damaged
            f"state = ? OR (state = ? AND last_error IS NOT NULL) OR state NOT IN ({','.join('?' * len(known))}) "
            "OR typeof(step) != 'integer' OR typeof(attempts) != 'integer' OR typeof(due) != 'text' "
            "OR json_valid(data) = 0 OR typeof(email) != 'text' OR typeof(sequence) != 'text' "
            "OR typeof(template) != 'text'"
        )
        rows = self._q(
            f"SELECT {_COLUMNS} FROM emails WHERE {suspects} ORDER BY due, id", [State.FAILED.value, scheduled, *known]
        )
        problems = [row for row in map(read_row, rows) if is_problem(row)]
        return Summary(counts, read_row(found) if found else None, overdue, problems)

    def report_facts(self, since: datetime | None, funnel: Funnel) -> ReportFacts:
        from . import report_sql  # counted in SQL: report_sql.py, with PostgreSQL's queries

        return report_sql.count(self.db.execute, report_sql.SQLITE, since, funnel)

    def count_contacts(self, sequences: Collection[str], also: Collection[str] = ()) -> int:
        names = list(sequences)
        extra = {e.lower() for e in also}
        if not names:
            return len(extra)
        marks = ",".join("?" * len(names))
        dead = [State.CANCELLED.value, State.SKIPPED.value]
        live = f"FROM emails WHERE sequence IN ({marks}) AND state NOT IN (?, ?)"
        if not extra:
            return int(self._q(f"SELECT COUNT(DISTINCT email) {live}", [*names, *dead]).fetchone()[0])
        return len({r[0] for r in self._q(f"SELECT DISTINCT email {live}", [*names, *dead])} | extra)

    # events
    def add_event(self, event: Event) -> bool:
        cursor = self._q(
            "INSERT OR IGNORE INTO events (key, email, name, at, data, recorded_at) VALUES (?, ?, ?, ?, ?, ?)",
            (
                event.key,
                event.email.lower(),
                event.name,
                iso(event.at),
                json.dumps(event.data, sort_keys=True),
                iso(event.recorded_at),
            ),
        )
        return cursor.rowcount == 1

    def events_for_contact(self, email: str) -> list[Event]:
        rows = self._q("SELECT * FROM events WHERE email = ? ORDER BY at, recorded_at, key", (email.lower(),))
        return [read_event(r) for r in rows]

    def events_named(self, names: Collection[str]) -> list[Event]:
        return [read_event(r) for r in self._where_in("SELECT * FROM events", "name", sorted(set(names)))]

    # the rest (templates: TemplatesInFolder)
    @property
    def request_rate(self) -> None:
        return None  # a local file: no request limit

    def close(self) -> None:
        self.db.close()
