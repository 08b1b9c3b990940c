"""The embedded store: one SQLite file (standard library), templates from the templates folder.

Rows are indexed on (state, due), so an idle tick is one index probe however many rows there are. The batch
journal (stores/base.py) is the `batches` table: an entry is written with its rows' membership in one
transaction, and removed with their outcomes in another. A stored value that cannot be read (a hand edit, a
bug) never stops a command: the row is read as well as it can be, with the reason in `defect`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Iterator
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any

from ..clock import iso
from ..core import rows as rules
from ..core.model import Contact, Delivery, Event, ScheduledEmail, Sender, State
from ..core.report_facts import Funnel, ReportFacts
from .base import UNPACED, Changes, Summary
from .files import TemplatesInFolder
from .records import read_contact, read_event, read_row, read_time
from .sqlite_base import db_value, update_sql
from .sqlite_journal import SqliteJournal

# Due (core/rows.py), and not in an open batch: `state = DUE_STATE AND due <= now AND ...`
DUE = "state = ? AND due <= ? AND (batch IS NULL OR NOT EXISTS (SELECT 1 FROM batches b WHERE b.key = emails.batch))"


def _marks(values: list[str]) -> str:
    return ",".join("?" * len(values))


_COLUMNS = (
    "id, enrollment_key, email, sequence, step, template, sender, due, state, sent_at, message_id, "
    "attempts, last_error, note, data, batch, delivery, variant"
)


class SqliteStore(SqliteJournal, TemplatesInFolder):
    """The Store and the BatchJournal (stores/base.py), not RunnerClaims: one tick at a time, behind its file lock.
    Contacts, scheduled emails and events here; the journal (SqliteJournal) and the connection (SqliteBase)
    beneath."""

    # contacts
    def contact_lock(self, email: str, local: AbstractContextManager[None]) -> AbstractContextManager[None]:
        return local  # a file on this machine: the engine's lock file orders its writers

    def get_contact(self, email: str) -> Contact | None:
        r = self._q("SELECT * FROM contacts WHERE email = ?", (email.lower(),)).fetchone()
        return read_contact(r) if r else None

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
            db_value("delivery", row.delivery),
            row.variant,
        ]
        self._q(f"INSERT OR IGNORE INTO emails ({_COLUMNS}) VALUES ({','.join('?' * len(values))})", values)
        stored = self._q(f"SELECT {_COLUMNS} FROM emails WHERE id = ?", (row.id,)).fetchone()
        return read_row(stored)

    def update_email(self, row: ScheduledEmail, changes: Changes) -> ScheduledEmail:
        if changes:
            self._q(*update_sql(row, changes))
        stored = self._q(f"SELECT {_COLUMNS} FROM emails WHERE id = ?", (row.id,)).fetchone()
        return read_row(stored)

    def due_emails(self, now: datetime, limit: int | None = None) -> Iterator[ScheduledEmail]:
        sql = f"SELECT {_COLUMNS} FROM emails WHERE {DUE} ORDER BY due, id"
        params: list[Any] = [rules.DUE_STATE.value, iso(now)]
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
                self.db.execute(*update_sql(row, {"delivery": changed}))
            return row

        found: ScheduledEmail | None = self._write(work)
        return found

    def stopped_emails(self, since: datetime, now: datetime) -> list[ScheduledEmail]:
        sql = f"SELECT {_COLUMNS} FROM emails WHERE state = ? AND due > ? AND due <= ? ORDER BY due, id"
        return [read_row(r) for r in self._q(sql, (State.CANCELLED.value, iso(since), iso(now)))]

    def emails_by_id(self, ids: Collection[str]) -> dict[str, ScheduledEmail]:
        return {r["id"]: read_row(r) for r in self._where_in(f"SELECT {_COLUMNS} FROM emails", "id", ids)}

    def all_emails(self) -> Iterator[ScheduledEmail]:
        yield from (read_row(r) for r in self._q(f"SELECT {_COLUMNS} FROM emails ORDER BY due, id"))

    def summary(self, now: datetime) -> Summary:
        """Counted in SQL: GROUP BY for the counts, the (state, due) index for what is due, one filtered scan for
        the problems, of which only those rows are decoded (1,000,000 rows: no Python loop over them)."""
        counts: dict[str, dict[str, int]] = {}
        for sequence, state, n in self._q("SELECT sequence, state, COUNT(*) FROM emails GROUP BY sequence, state"):
            per = counts.setdefault(str(sequence), {})
            per[str(state)] = per.get(str(state), 0) + int(n)
        scheduled, at = rules.DUE_STATE.value, iso(now)
        overdue_sql = "SELECT COUNT(*) FROM emails WHERE state = ? AND due <= ?"
        overdue = int(self._q(overdue_sql, [scheduled, at]).fetchone()[0])
        found = self._q(
            f"SELECT {_COLUMNS} FROM emails WHERE state = ? AND due > ? ORDER BY due, id LIMIT 1", [scheduled, at]
        ).fetchone()
        known, failed = rules.values(list(State)), rules.values(rules.FAILED)
        senders = sorted(s.value for s in Sender)
        suspects = (  # what rules.is_problem reports, plus the stored values read_row() would call damaged
            f"state IN ({_marks(failed)}) OR (state = ? AND last_error IS NOT NULL) OR state NOT IN ({_marks(known)}) "
            "OR typeof(step) != 'integer' OR typeof(attempts) != 'integer' OR typeof(due) != 'text' "
            "OR typeof(email) != 'text' OR typeof(sequence) != 'text' OR typeof(template) != 'text' "
            f"OR sender NOT IN ({_marks(senders)}) "
            "OR CASE WHEN json_valid(data) THEN json_type(data) != 'object' ELSE 1 END "
            "OR (delivery IS NOT NULL "
            "AND CASE WHEN json_valid(delivery) THEN json_type(delivery) != 'object' ELSE 1 END)"
        )
        found_rows = self._q(
            f"SELECT {_COLUMNS} FROM emails WHERE {suspects} ORDER BY due, id",
            [*failed, rules.WAITING.value, *known, *senders],
        )
        problems = [row for row in map(read_row, found_rows) if rules.is_problem(row)]
        return Summary(counts, read_row(found) if found else None, overdue, problems)

    def report_facts(self, since: datetime | None, funnel: Funnel) -> ReportFacts:
        from . import report_sql  # counted in SQL: report_sql.py, with PostgreSQL's queries

        return report_sql.count(self.db.execute, report_sql.SQLITE, since, funnel)

    def count_contacts(self, sequences: Collection[str], also: Collection[str] = ()) -> int:
        names = list(sequences)
        extra = {e.lower() for e in also}
        if not names:
            return len(extra)
        dead = rules.values(rules.DEAD)
        live = f"FROM emails WHERE sequence IN ({_marks(names)}) AND state NOT IN ({_marks(dead)})"
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
    def requests_within(self, seconds: float) -> int:
        return UNPACED  # a local file: no request limit

    def close(self) -> None:
        self.db.close()
