"""What many tick runners share on PostgreSQL: claims on the due rows (a runner takes the next ones, with every
due row of their contacts, until its lease ends) and the batch journal with leases (an entry a dead runner left is
taken over by exactly one other once the lease has ended). See postgres.py for the whole design."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ..core.model import ScheduledEmail
from .base import Batch, Changes
from .pg_base import COLUMNS, FREE, SCHEDULED, PostgresBase, pg_value, update_sql
from .pg_connections import WAIT_SECONDS
from .records import EPOCH, read_row, read_time

if TYPE_CHECKING:
    import psycopg


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


class PostgresRunners(PostgresBase):
    """Claims and the batch journal, each operation one transaction."""

    def claim_due(self, now: datetime, limit: int, runner: str, until: datetime) -> list[ScheduledEmail]:
        """Claim up to `limit` due rows for `runner` until `until`, plus every other due row of their contacts, in
        one transaction; earliest first. Rows another transaction holds are skipped, not waited for."""
        params = {"s": SCHEDULED, "now": now, "limit": limit, "runner": runner, "until": pg_value("u", until)}
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

    # the batch journal

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
                    pg_value("opened_at", batch.opened_at),
                    batch.attempts,
                    pg_value("retry_at", batch.retry_at),
                    batch.last_error,
                    batch.owner,
                    pg_value("lease_until", batch.lease_until),
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
                (runner, pg_value("u", until), key, now),
            )
        )

    def _apply(self, conn: psycopg.Connection[Any], outcomes: Collection[tuple[ScheduledEmail, Changes]]) -> None:
        """Every row's changes: one statement per kind of change, sent for all its rows at once (executemany
        pipelines them: one round trip, not one per row)."""
        by_kind: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        statements: dict[tuple[str, ...], str] = {}
        for row, changes in outcomes:
            if changes:
                sql, params = update_sql(row.id, changes)
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
                (batch.attempts, pg_value("retry_at", batch.retry_at), batch.last_error, batch.key),
            )
