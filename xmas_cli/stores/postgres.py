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

from collections.abc import Callable, Collection, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..clock import to_utc
from ..core.deliveries import to_json
from ..core.model import Contact, Delivery, Event, ScheduledEmail, Sender, State
from ..core.report_facts import Funnel, ReportFacts
from ..errors import Busy, StoreUnavailable
from .base import Batch, Changes, Summary, is_problem
from .files import FileTemplates, TemplatesInFolder
from .pg_connections import UNREACHABLE_FIX, WAIT_SECONDS, describe_dsn, first_line, pool_for, require_driver
from .records import EPOCH, read_contact, read_event, read_row, read_time

if TYPE_CHECKING:
    import psycopg

COLUMNS = (
    "id, enrollment_key, email, sequence, step, template, sender, due, state, sent_at, message_id, "
    "attempts, last_error, note, data, batch, delivery, variant"
)
SCHEDULED = State.SCHEDULED.value
# A row nobody is working on: no live claim, and not in an open batch.
FREE = (
    "(claim_until IS NULL OR claim_until <= %(now)s) "
    "AND (batch IS NULL OR NOT EXISTS (SELECT 1 FROM batches b WHERE b.key = emails.batch))"
)


def _value(key: str, value: Any) -> Any:
    """A model value as a query parameter: times in UTC to the second (the stored form of every store), JSON as
    jsonb, enums as their text."""
    from psycopg.types.json import Jsonb

    if isinstance(value, datetime):
        return to_utc(value).replace(microsecond=0)
    if key == "data":
        return Jsonb(value)
    if key == "delivery":
        return None if value.empty else Jsonb(to_json(value))
    if isinstance(value, State | Sender):
        return value.value
    return value


def _row_values(row: ScheduledEmail) -> dict[str, Any]:
    names = [n.strip() for n in COLUMNS.split(",")]
    values = {name: _value(name, getattr(row, name)) for name in names}
    values["batch"] = row.batch
    return values


class PostgresStore(TemplatesInFolder):
    supports_batches = True
    many_runners = True  # the tick takes no file lock: runners share the due rows by claims and leases

    def __init__(self, dsn: str, templates_dir: Path) -> None:
        require_driver()
        self.dsn = dsn
        self.description = describe_dsn(dsn)
        self.templates = FileTemplates(templates_dir)
        self.pool = pool_for(dsn, self.description)

    # ------------------------------------------------------------------------------ plumbing

    @contextmanager
    def _tx(self) -> Iterator[psycopg.Connection[Any]]:
        """One connection, one transaction: committed when the block ends, rolled back if it raises."""
        import psycopg
        from psycopg_pool import PoolTimeout

        try:
            with self.pool.connection() as conn:
                yield conn
        except PoolTimeout:
            raise StoreUnavailable(
                f"{self.description}: no connection within {WAIT_SECONDS} s", UNREACHABLE_FIX
            ) from None
        except psycopg.errors.LockNotAvailable:
            raise Busy(
                f"{self.description}: a lock was not free within {WAIT_SECONDS} s", "retry in a minute"
            ) from None
        except (psycopg.OperationalError, psycopg.InterfaceError) as exc:  # the server went away, a lost connection
            raise StoreUnavailable(f"{self.description}: {first_line(exc)}", UNREACHABLE_FIX) from None

    def _all(self, sql: str, params: Mapping[str, Any] | Collection[Any] = ()) -> list[dict[str, Any]]:
        with self._tx() as conn:
            return conn.execute(sql, params).fetchall()  # type: ignore[arg-type]

    def _rows(self, sql: str, params: Mapping[str, Any] | Collection[Any] = ()) -> list[ScheduledEmail]:
        return [read_row(r) for r in self._all(sql, params)]

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
                _value("updated_at", contact.updated_at),
                contact.consent.describe() if contact.consent else None,
            ),
        )
        return read_contact(found[0])

    @contextmanager
    def contact_lock(self, email: str) -> Iterator[None]:
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
        values = _row_values(row)
        names = ", ".join(values)
        marks = ", ".join(f"%({name})s" for name in values)
        with self._tx() as conn:
            conn.execute(f"INSERT INTO emails ({names}) VALUES ({marks}) ON CONFLICT (id) DO NOTHING", values)
            stored = conn.execute(f"SELECT {COLUMNS} FROM emails WHERE id = %s", (row.id,)).fetchone()
        return read_row(stored)  # type: ignore[arg-type]

    def update_email(self, row: ScheduledEmail, changes: Changes) -> ScheduledEmail:
        with self._tx() as conn:
            if changes:
                conn.execute(*_update(row.id, changes))
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

    def claim_due(self, now: datetime, limit: int, runner: str, until: datetime) -> list[ScheduledEmail]:
        """Claim up to `limit` due rows for `runner` until `until`, plus every other due row of their contacts, in
        one transaction; earliest first. Rows another transaction holds are skipped, not waited for."""
        params = {"s": SCHEDULED, "now": now, "limit": limit, "runner": runner, "until": _value("u", until)}
        with self._tx() as conn:
            conn.execute(f"SET LOCAL lock_timeout = '{WAIT_SECONDS}s'")
            conn.execute("SELECT pg_advisory_xact_lock(hashtext(current_schema() || ' xmas claim'))")
            picked = conn.execute(
                f"SELECT id, email FROM emails WHERE state = %(s)s AND due <= %(now)s AND {FREE} "
                "ORDER BY due, id LIMIT %(limit)s FOR UPDATE SKIP LOCKED",
                params,
            ).fetchall()
            if not picked:
                return []
            ids = [r["id"] for r in picked]
            emails = sorted({r["email"] for r in picked})
            more = conn.execute(
                f"SELECT id FROM emails WHERE email = ANY(%(emails)s) AND NOT (id = ANY(%(ids)s)) AND state = %(s)s "
                f"AND due <= %(now)s AND {FREE} FOR UPDATE SKIP LOCKED",
                {**params, "emails": emails, "ids": ids},
            ).fetchall()
            claimed = conn.execute(
                f"UPDATE emails SET claimed_by = %(runner)s, claim_until = %(until)s WHERE id = ANY(%(all)s) "
                f"RETURNING {COLUMNS}",
                {**params, "all": ids + [r["id"] for r in more]},
            ).fetchall()
        rows = [read_row(r) for r in claimed]
        rows.sort(key=lambda r: (r.due, r.id))
        return rows

    def release(self, ids: Collection[str], runner: str) -> None:
        """Give back claimed rows this runner did not get to, for the next runner at once."""
        if ids:
            self._all(
                "UPDATE emails SET claimed_by = NULL, claim_until = NULL WHERE id = ANY(%s) AND claimed_by = %s "
                "RETURNING id",
                (list(ids), runner),
            )

    def finish(self, runner: str) -> None:
        """The runner's tick is over: its claims and the leases of its batches end now (one still open after a
        stop is then the next runner's to take over at once). Only a runner that dies leaves them to expire."""
        with self._tx() as conn:
            conn.execute("UPDATE emails SET claimed_by = NULL, claim_until = NULL WHERE claimed_by = %s", (runner,))
            conn.execute("UPDATE batches SET owner = NULL, lease_until = NULL WHERE owner = %s", (runner,))

    def count_due(self, now: datetime) -> int:
        found = self._all(
            f"SELECT COUNT(*) AS n FROM emails WHERE state = %(s)s AND due <= %(now)s AND {FREE}",
            {"s": SCHEDULED, "now": now},
        )
        return int(found[0]["n"])

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
                conn.execute(*_update(row.id, {"delivery": changed}))
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

    # ------------------------------------------------------------------------------ the batch journal

    def open_batch(self, batch: Batch) -> list[str]:
        """Record the entry, its owner and lease, and mark its rows, in one transaction. A row that is no longer
        Scheduled, is in another open batch, or is claimed by another runner is returned, and nothing is written."""
        from psycopg.types.json import Jsonb

        with self._tx() as conn:
            free = {
                r["id"]
                for r in conn.execute(
                    "SELECT id FROM emails WHERE id = ANY(%(ids)s) AND state = %(s)s "
                    "AND (batch IS NULL OR NOT EXISTS (SELECT 1 FROM batches b WHERE b.key = emails.batch)) "
                    "AND (claimed_by IS NULL OR claimed_by = %(owner)s OR claim_until <= %(now)s) FOR UPDATE",
                    {"ids": batch.row_ids, "s": SCHEDULED, "owner": batch.owner, "now": batch.opened_at},
                )
            }
            taken = [i for i in batch.row_ids if i not in free]
            if taken:
                return taken
            conn.execute(
                "INSERT INTO batches (key, row_ids, emails, opened_at, attempts, retry_at, last_error, owner, "
                "lease_until) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                (
                    batch.key,
                    Jsonb(batch.row_ids),
                    batch.emails,
                    _value("opened_at", batch.opened_at),
                    batch.attempts,
                    _value("retry_at", batch.retry_at),
                    batch.last_error,
                    batch.owner,
                    _value("lease_until", batch.lease_until),
                ),
            )
            conn.execute("UPDATE emails SET batch = %s WHERE id = ANY(%s)", (batch.key, batch.row_ids))
        return []

    def open_batches(self) -> list[Batch]:
        return [_batch(r) for r in self._all("SELECT * FROM batches ORDER BY opened_at, key")]

    def take_batch(self, key: str, runner: str, now: datetime, until: datetime) -> bool:
        """Take over an entry whose lease has ended (its runner died, or gave it back after a failed attempt):
        one conditional UPDATE, so of two runners trying at once exactly one wins."""
        return bool(
            self._all(
                "UPDATE batches SET owner = %s, lease_until = %s WHERE key = %s "
                "AND (lease_until IS NULL OR lease_until <= %s) RETURNING key",
                (runner, _value("u", until), key, now),
            )
        )

    def _apply(self, conn: psycopg.Connection[Any], outcomes: Collection[tuple[ScheduledEmail, Changes]]) -> None:
        """Every row's changes: one statement per kind of change, sent for all its rows at once (executemany
        pipelines them: one round trip, not one per row)."""
        by_kind: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        statements: dict[tuple[str, ...], str] = {}
        for row, changes in outcomes:
            if changes:
                sql, params = _update(row.id, changes)
                statements[tuple(changes)] = sql
                by_kind.setdefault(tuple(changes), []).append(params)
        with conn.cursor() as cursor:
            for kind, rows in by_kind.items():
                cursor.executemany(statements[kind], rows)

    def close_batch(self, key: str, outcomes: Collection[tuple[ScheduledEmail, Changes]]) -> None:
        with self._tx() as conn:
            self._apply(conn, outcomes)
            conn.execute(
                "UPDATE emails SET claimed_by = NULL, claim_until = NULL WHERE id = ANY(%s)",
                ([row.id for row, _ in outcomes],),
            )
            conn.execute("DELETE FROM batches WHERE key = %s", (key,))

    def defer_batch(self, batch: Batch, outcomes: Collection[tuple[ScheduledEmail, Changes]]) -> None:
        """Keep the entry for a later attempt, and give up its lease: any runner may send it once retry_at comes."""
        with self._tx() as conn:
            self._apply(conn, outcomes)
            conn.execute(
                "UPDATE batches SET attempts = %s, retry_at = %s, last_error = %s, owner = NULL, lease_until = NULL "
                "WHERE key = %s",
                (batch.attempts, _value("retry_at", batch.retry_at), batch.last_error, batch.key),
            )

    # ------------------------------------------------------------------------------ counting

    def summary(self, now: datetime) -> Summary:
        counts: dict[str, dict[str, int]] = {}
        for r in self._all("SELECT sequence, state, COUNT(*) AS n FROM emails GROUP BY sequence, state"):
            counts.setdefault(str(r["sequence"]), {})[str(r["state"])] = int(r["n"])
        overdue = self._all("SELECT COUNT(*) AS n FROM emails WHERE state = %s AND due <= %s", (SCHEDULED, now))
        following = self._rows(
            f"SELECT {COLUMNS} FROM emails WHERE state = %s AND due > %s ORDER BY due, id LIMIT 1", (SCHEDULED, now)
        )
        states, senders = [s.value for s in State], [s.value for s in Sender]
        suspects = self._rows(  # what is_problem() reports, plus the stored values read_row() would call damaged
            f"SELECT {COLUMNS} FROM emails WHERE state = %s OR (state = %s AND last_error IS NOT NULL) "
            "OR NOT (state = ANY(%s)) OR NOT (sender = ANY(%s)) OR jsonb_typeof(data) <> 'object' "
            "OR (delivery IS NOT NULL AND jsonb_typeof(delivery) <> 'object') ORDER BY due, id",
            (State.FAILED.value, SCHEDULED, states, senders),
        )
        problems = [row for row in suspects if is_problem(row)]
        return Summary(counts, following[0] if following else None, int(overdue[0]["n"]), problems)

    def report_facts(self, since: datetime | None, funnel: Funnel) -> ReportFacts:
        from . import report_sql  # counted in SQL: report_sql.py, with SQLite's queries

        return report_sql.count(self._all, report_sql.POSTGRES, since, funnel)

    def count_contacts(self, sequences: Collection[str], also: Collection[str] = ()) -> int:
        names, extra = list(sequences), {e.lower() for e in also}
        if not names:
            return len(extra)
        live = "FROM emails WHERE sequence = ANY(%s) AND NOT (state = ANY(%s))"
        dead = [State.CANCELLED.value, State.SKIPPED.value]
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
                    _value("at", event.at),
                    Jsonb(event.data),
                    _value("recorded_at", event.recorded_at),
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

    @property
    def request_rate(self) -> None:
        return None  # no request limit worth pacing for: the server's own capacity is the limit

    def close(self) -> None:
        """The pool stays open for the process's next engine (the web server's next request); closed at exit."""


def _update(row_id: str, changes: Changes) -> tuple[str, dict[str, Any]]:
    sets = ", ".join(f"{key} = %({key})s" for key in changes)
    params = {key: _value(key, value) for key, value in changes.items()}
    return f"UPDATE emails SET {sets} WHERE id = %(row_id)s", {**params, "row_id": row_id}


def _batch(r: Mapping[str, Any]) -> Batch:
    return Batch(
        key=r["key"],
        row_ids=list(r["row_ids"]),
        emails=r["emails"],
        opened_at=read_time(r["opened_at"]) or EPOCH,
        attempts=r["attempts"],
        retry_at=read_time(r["retry_at"]),
        last_error=r["last_error"],
        owner=r["owner"],
        lease_until=read_time(r["lease_until"]),
    )
