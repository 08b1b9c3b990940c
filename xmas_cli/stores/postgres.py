"""The PostgreSQL store: for campaigns that outgrow Notion, with any number of tick runners on any number of machines.

Everything the SQLite store keeps, in the same shape (records.py reads both), plus what many runners need:

- **Claims.** A runner takes the next due rows with `SELECT … FOR UPDATE SKIP LOCKED` and marks them claimed by it
  until its lease ends (`[store] lease`, judged on the tick's clock). Claims are taken one runner at a time (an
  advisory lock held for the few milliseconds of the claim), and a claim takes every due row of the contacts it
  picked, so one contact's emails are never split between two runners: catch-up and the frequency cap hold.
- **The batch journal with leases.** A batch's membership and its rendered emails are recorded, with its owner
  and lease, in one transaction before it is sent; its outcome and the entry's removal in another. A runner that
  dies leaves the entry behind; once its lease has ended another runner takes it over (a conditional UPDATE: one
  winner) and sends exactly that membership again under the same key, which the provider answers once.
- **Constraints, not lock files.** Row ids are the enrollment key + step (primary key, `ON CONFLICT DO NOTHING`);
  a contact's enrollments and unsubscribes queue on an advisory lock keyed by the address.

The schema comes from numbered migrations (pg_schema.py, `xmas db migrate`). Connections come from one psycopg
pool per database per process (pg_connections.py): the web server's threads share it, a CLI command uses one
connection of it.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime
from typing import Any

from ..core import rows as rules
from ..core.model import Contact, Delivery, Event, ScheduledEmail, Sender, State
from ..core.report_facts import Funnel, ReportFacts
from .base import UNPACED, Changes, Summary
from .files import TemplatesInFolder
from .pg_base import COLUMNS, FREE, SCHEDULED, pg_value, row_values, update_sql
from .pg_connections import WAIT_SECONDS
from .pg_runners import PostgresRunners
from .records import read_contact, read_event, read_row, read_time


class PostgresStore(PostgresRunners, TemplatesInFolder):
    """The Store, the BatchJournal and RunnerClaims (stores/base.py): the tick takes no file lock, its runners
    share the due rows by claims and leases."""

    # ------------------------------------------------------------------------------ contacts

    def get_contact(self, email: str) -> Contact | None:
        found = self._all("SELECT * FROM contacts WHERE email = %s", (email.lower(),))
        return read_contact(found[0]) if found else None

    def all_contacts(self) -> Iterator[Contact]:
        yield from (read_contact(r) for r in self._all("SELECT * FROM contacts ORDER BY email"))

    def get_contacts(self, emails: Collection[str]) -> dict[str, Contact]:
        wanted = sorted({e.lower() for e in emails})
        if not wanted:
            return {}
        return {
            r["email"]: read_contact(r) for r in self._all("SELECT * FROM contacts WHERE email = ANY(%s)", (wanted,))
        }

    def save_contact(self, contact: Contact) -> Contact:
        from psycopg.types.json import Jsonb

        found = self._all(
            "INSERT INTO contacts (email, fields, segment, suppressed, suppressed_reason, updated_at, consent) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (email) DO UPDATE SET fields = excluded.fields, "
            "segment = excluded.segment, suppressed = excluded.suppressed, "
            "suppressed_reason = excluded.suppressed_reason, updated_at = excluded.updated_at, "
            "consent = excluded.consent RETURNING *",
            (
                contact.email.lower(),
                Jsonb(contact.fields),
                contact.segment,
                contact.suppressed,
                contact.suppressed_reason,
                pg_value("updated_at", contact.updated_at),
                contact.consent.describe() if contact.consent else None,
            ),
        )
        return read_contact(found[0])

    def contact_lock(self, email: str, local: AbstractContextManager[None]) -> AbstractContextManager[None]:
        return self._advisory_lock(email)  # many machines: the lock file of one would not order the others

    @contextmanager
    def _advisory_lock(self, email: str) -> Iterator[None]:
        """A contact's enrollments and unsubscribes one after another, across processes and machines: a session
        advisory lock keyed by the address, waited for at most WAIT_SECONDS."""
        key = ("SELECT hashtext(current_schema() || ' xmas contact'), hashtext(%s)", (email.lower(),))
        with self._tx() as conn:
            conn.autocommit = True  # a session lock: held across the transactions of the enrollment
            try:
                conn.execute(f"SET lock_timeout = '{WAIT_SECONDS}s'")
                conn.execute(f"SELECT pg_advisory_lock(k1, k2) FROM ({key[0]}) AS k(k1, k2)", key[1])
                try:
                    yield
                finally:
                    conn.execute(f"SELECT pg_advisory_unlock(k1, k2) FROM ({key[0]}) AS k(k1, k2)", key[1])
            finally:
                conn.execute("RESET lock_timeout")
                conn.autocommit = False

    # ------------------------------------------------------------------------------ scheduled emails

    def emails_for_enrollment(self, key: str) -> list[ScheduledEmail]:
        return self._rows(f"SELECT {COLUMNS} FROM emails WHERE enrollment_key = %s ORDER BY step", (key,))

    def emails_for_contact(self, email: str) -> list[ScheduledEmail]:
        return self._rows(f"SELECT {COLUMNS} FROM emails WHERE email = %s ORDER BY due, step", (email.lower(),))

    def add_email(self, row: ScheduledEmail) -> ScheduledEmail:
        values = row_values(row)
        names = ", ".join(values)
        marks = ", ".join(f"%({name})s" for name in values)
        with self._tx() as conn:
            conn.execute(f"INSERT INTO emails ({names}) VALUES ({marks}) ON CONFLICT (id) DO NOTHING", values)
            stored = conn.execute(f"SELECT {COLUMNS} FROM emails WHERE id = %s", (row.id,)).fetchone()
        return read_row(stored)  # type: ignore[arg-type]

    def update_email(self, row: ScheduledEmail, changes: Changes) -> ScheduledEmail:
        with self._tx() as conn:
            if changes:
                conn.execute(*update_sql(row.id, changes))
            stored = conn.execute(f"SELECT {COLUMNS} FROM emails WHERE id = %s", (row.id,)).fetchone()
        return read_row(stored)  # type: ignore[arg-type]

    def due_emails(self, now: datetime, limit: int | None = None) -> Iterator[ScheduledEmail]:
        """Due rows nobody is working on, earliest first, read without claiming them (`tick --dry-run`)."""
        sql = f"SELECT {COLUMNS} FROM emails WHERE state = %(s)s AND due <= %(now)s AND {FREE} ORDER BY due, id"
        params: dict[str, Any] = {"s": SCHEDULED, "now": now}
        if limit is not None:
            sql += " LIMIT %(limit)s"
            params["limit"] = limit
        yield from self._rows(sql, params)

    def sent_since(
        self, emails: Collection[str], sequences: Collection[str], since: datetime
    ) -> dict[str, list[datetime]]:
        names, wanted = sorted(set(sequences)), sorted({e.lower() for e in emails})
        out: dict[str, list[datetime]] = {}
        if not names or not wanted:
            return out
        for r in self._all(
            "SELECT email, sent_at FROM emails WHERE state = %s AND sent_at > %s AND sequence = ANY(%s) "
            "AND email = ANY(%s)",
            (State.SENT.value, since, names, wanted),
        ):
            out.setdefault(r["email"], []).append(read_time(r["sent_at"]) or since)
        return out

    def email_by_message_id(self, message_id: str) -> ScheduledEmail | None:
        found = self._rows(f"SELECT {COLUMNS} FROM emails WHERE message_id = %s ORDER BY id LIMIT 1", (message_id,))
        return found[0] if found else None

    def update_delivery(self, message_id: str, change: Callable[[Delivery], Delivery]) -> ScheduledEmail | None:
        """The row locked (FOR UPDATE) while its delivery is read and written: webhooks for one email that reach two
        web workers at once are applied one after the other."""
        with self._tx() as conn:
            found = conn.execute(
                f"SELECT {COLUMNS} FROM emails WHERE message_id = %s ORDER BY id LIMIT 1 FOR UPDATE", (message_id,)
            ).fetchone()
            if found is None:
                return None
            row = read_row(found)
            if (changed := change(row.delivery)) != row.delivery:
                conn.execute(*update_sql(row.id, {"delivery": changed}))
        return row

    def stopped_emails(self, since: datetime, now: datetime) -> list[ScheduledEmail]:
        return self._rows(
            f"SELECT {COLUMNS} FROM emails WHERE state = %s AND due > %s AND due <= %s ORDER BY due, id",
            (State.CANCELLED.value, since, now),
        )

    def emails_by_id(self, ids: Collection[str]) -> dict[str, ScheduledEmail]:
        rows = self._rows(f"SELECT {COLUMNS} FROM emails WHERE id = ANY(%s)", (list(ids),))
        return {row.id: row for row in rows}

    def all_emails(self) -> Iterator[ScheduledEmail]:
        """Every row, earliest first, streamed through a server-side cursor (a million rows: not all in memory)."""
        with self._tx() as conn, conn.cursor(name="xmas_all_emails") as cursor:
            cursor.itersize = 2000
            cursor.execute(f"SELECT {COLUMNS} FROM emails ORDER BY due, id")
            yield from (read_row(r) for r in cursor)

    # ------------------------------------------------------------------------------ counting

    def summary(self, now: datetime) -> Summary:
        counts: dict[str, dict[str, int]] = {}
        for r in self._all("SELECT sequence, state, COUNT(*) AS n FROM emails GROUP BY sequence, state"):
            counts.setdefault(str(r["sequence"]), {})[str(r["state"])] = int(r["n"])
        overdue = self._all("SELECT COUNT(*) AS n FROM emails WHERE state = %s AND due <= %s", (SCHEDULED, now))
        following = self._rows(
            f"SELECT {COLUMNS} FROM emails WHERE state = %s AND due > %s ORDER BY due, id LIMIT 1", (SCHEDULED, now)
        )
        states, senders = rules.values(list(State)), [s.value for s in Sender]
        suspects = self._rows(  # what rules.is_problem reports, plus the stored values read_row() would call damaged
            f"SELECT {COLUMNS} FROM emails WHERE state = ANY(%s) OR (state = %s AND last_error IS NOT NULL) "
            "OR NOT (state = ANY(%s)) OR NOT (sender = ANY(%s)) OR jsonb_typeof(data) <> 'object' "
            "OR (delivery IS NOT NULL AND jsonb_typeof(delivery) <> 'object') ORDER BY due, id",
            (rules.values(rules.FAILED), rules.WAITING.value, states, senders),
        )
        problems = [row for row in suspects if rules.is_problem(row)]
        return Summary(counts, following[0] if following else None, int(overdue[0]["n"]), problems)

    def report_facts(self, since: datetime | None, funnel: Funnel) -> ReportFacts:
        from . import report_sql  # counted in SQL: report_sql.py, with SQLite's queries

        return report_sql.count(report_sql.streamed(self._tx), report_sql.POSTGRES, since, funnel)

    def count_contacts(self, sequences: Collection[str], also: Collection[str] = ()) -> int:
        names, extra = list(sequences), {e.lower() for e in also}
        if not names:
            return len(extra)
        live = "FROM emails WHERE sequence = ANY(%s) AND NOT (state = ANY(%s))"
        dead = rules.values(rules.DEAD)
        if not extra:
            return int(self._all(f"SELECT COUNT(DISTINCT email) AS n {live}", (names, dead))[0]["n"])
        return len({r["email"] for r in self._all(f"SELECT DISTINCT email {live}", (names, dead))} | extra)

    # ------------------------------------------------------------------------------ events

    def add_event(self, event: Event) -> bool:
        from psycopg.types.json import Jsonb

        return bool(
            self._all(
                "INSERT INTO events (key, email, name, at, data, recorded_at) VALUES (%s, %s, %s, %s, %s, %s) "
                "ON CONFLICT (email, key) DO NOTHING RETURNING key",
                (
                    event.key,
                    event.email.lower(),
                    event.name,
                    pg_value("at", event.at),
                    Jsonb(event.data),
                    pg_value("recorded_at", event.recorded_at),
                ),
            )
        )

    def events_for_contact(self, email: str) -> list[Event]:
        rows = self._all("SELECT * FROM events WHERE email = %s ORDER BY at, recorded_at, key", (email.lower(),))
        return [read_event(r) for r in rows]

    def events_named(self, names: Collection[str]) -> list[Event]:
        rows = self._all("SELECT * FROM events WHERE name = ANY(%s) ORDER BY at, key", (sorted(set(names)),))
        return [read_event(r) for r in rows]

    # ------------------------------------------------------------------------------ the rest (templates: files)

    def requests_within(self, seconds: float) -> int:
        return UNPACED  # no request limit worth pacing for: the server's own capacity is the limit

    def close(self) -> None:
        """The pool stays open for the process's next engine (the web server's next request); closed at exit."""
