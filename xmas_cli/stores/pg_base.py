"""The PostgreSQL store's plumbing: a pool of connections (pg_connections.py), one transaction a block with the
driver's errors said as xmas's (unreachable, busy: pg_connections.pooled), and the stored form of every value."""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..clock import to_utc
from ..core.deliveries import to_json
from ..core.model import ScheduledEmail, Sender, State
from ..core.rows import DUE_STATE
from .base import Changes
from .files import FileTemplates
from .pg_connections import describe_dsn, pool_for, pooled, require_driver
from .records import read_row

if TYPE_CHECKING:
    import psycopg

COLUMNS = (
    "id, enrollment_key, email, sequence, step, template, sender, due, state, sent_at, message_id, "
    "attempts, last_error, note, data, batch, delivery, variant"
)
SCHEDULED = DUE_STATE.value  # core/rows.py: only these rows are ever due
# A row nobody is working on: no live claim, and not in an open batch.
FREE = (
    "(claim_until IS NULL OR claim_until <= %(now)s) "
    "AND (batch IS NULL OR NOT EXISTS (SELECT 1 FROM batches b WHERE b.key = emails.batch))"
)


def pg_value(key: str, value: Any) -> Any:
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


def row_values(row: ScheduledEmail) -> dict[str, Any]:
    names = [n.strip() for n in COLUMNS.split(",")]
    values = {name: pg_value(name, getattr(row, name)) for name in names}
    values["batch"] = row.batch
    return values


def update_sql(row_id: str, changes: Changes) -> tuple[str, dict[str, Any]]:
    sets = ", ".join(f"{key} = %({key})s" for key in changes)
    params = {key: pg_value(key, value) for key, value in changes.items()}
    return f"UPDATE emails SET {sets} WHERE id = %(row_id)s", {**params, "row_id": row_id}


class PostgresBase:
    """The pool, and how every query of the store runs."""

    def __init__(self, dsn: str, templates_dir: Path) -> None:
        require_driver()
        self.dsn = dsn
        self.description = describe_dsn(dsn)
        self.templates = FileTemplates(templates_dir)
        self.pool = pool_for(dsn, self.description)
        self._shared: psycopg.Connection[Any] | None = None  # the connection of an open transaction()

    # ------------------------------------------------------------------------------ plumbing

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """stores/base.Transactional: every query inside the block on one connection, in one transaction (an
        enrollment's contact and rows): committed when it ends, rolled back when it raises."""
        if self._shared is not None:
            yield
            return
        with self._tx() as conn:
            self._shared = conn
            try:
                yield
            finally:
                self._shared = None

    @contextmanager
    def _tx(self) -> Iterator[psycopg.Connection[Any]]:
        """One connection, one transaction: committed when the block ends, rolled back if it raises (inside
        transaction(): its connection and transaction)."""
        if self._shared is not None:
            yield self._shared
            return
        with pooled(self.pool, self.description) as conn:
            yield conn

    def _all(self, sql: str, params: Mapping[str, Any] | Collection[Any] = ()) -> list[dict[str, Any]]:
        with self._tx() as conn:
            return conn.execute(sql, params).fetchall()  # type: ignore[arg-type]

    def _rows(self, sql: str, params: Mapping[str, Any] | Collection[Any] = ()) -> list[ScheduledEmail]:
        return [read_row(r) for r in self._all(sql, params)]
