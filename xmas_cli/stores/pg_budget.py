"""The sending budget of one provider account in the campaign's PostgreSQL database, shared by every tick runner.

It is mailers/pacer.py's Budget (the mailer never imports a store: backends.py hands it this one). One statement per
request hands out the next slot on the server's clock, under the row's lock, so N runners on any number of machines
together keep the provider's pace: no slot begins sooner than the interval after the one before, nor before a
retry-after that any runner was told. Table `send_budget` (migration 0005).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .pg_connections import describe_dsn, pool_for, pooled, require_driver

RESERVE = """
INSERT INTO send_budget AS b (name, last_at) VALUES (%(name)s, clock_timestamp())
ON CONFLICT (name) DO UPDATE SET
    last_at = GREATEST(clock_timestamp(), b.last_at + make_interval(secs => %(interval)s), b.held_until)
RETURNING EXTRACT(EPOCH FROM b.last_at - clock_timestamp())::float8 AS wait, b.stated_limit
"""
HOLD = """
INSERT INTO send_budget AS b (name, held_until) VALUES (%(name)s, clock_timestamp() + make_interval(secs => %(s)s))
ON CONFLICT (name) DO UPDATE SET
    held_until = GREATEST(b.held_until, clock_timestamp() + make_interval(secs => %(s)s))
"""
LEARN = """
INSERT INTO send_budget AS b (name, stated_limit) VALUES (%(name)s, %(limit)s)
ON CONFLICT (name) DO UPDATE SET stated_limit = %(limit)s
"""


class PgSendBudget:
    """Slots for `name` (one provider account: "resend") in the database at `dsn`, through the process's pool."""

    def __init__(self, dsn: str, name: str = "resend") -> None:
        require_driver()
        self.name = name
        self.description = describe_dsn(dsn)
        self.pool = pool_for(dsn, self.description)

    def _run(self, sql: str, params: Mapping[str, Any]) -> dict[str, Any] | None:
        with pooled(self.pool, self.description) as conn:
            cursor = conn.execute(sql, params)
            return cursor.fetchone() if cursor.description else None

    def reserve(self, interval: float) -> tuple[float, float | None]:
        """The next slot (see mailers/pacer.Budget): seconds to wait for it, and the limit learned so far."""
        row = self._run(RESERVE, {"name": self.name, "interval": interval})
        assert row is not None
        limit = row["stated_limit"]
        return max(0.0, float(row["wait"])), None if limit is None else float(limit)

    def hold(self, seconds: float) -> None:
        self._run(HOLD, {"name": self.name, "s": seconds})

    def learn(self, limit: float) -> None:
        self._run(LEARN, {"name": self.name, "limit": limit})

    def close(self) -> None:
        """The pool stays open for the process's store; closed at exit."""
