"""The PostgreSQL schema: numbered migrations (migrations/NNNN_name.sql), recorded in the database.

`xmas db migrate` applies the ones a database lacks, each in its own transaction together with its record in
`xmas_migrations`, under an advisory lock: running it twice, or from two machines at once, applies each migration
exactly once (the second run waits for the first, then finds nothing to do). Every other command checks the
recorded version first and refuses a schema that is behind (or ahead of) this xmas, naming the command.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError

if TYPE_CHECKING:
    import psycopg

TABLE = "xmas_migrations"
_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


@dataclass(frozen=True)
class Applied:
    version: int
    name: str
    applied_at: datetime | None


def migrations() -> list[Migration]:
    """Every migration shipped with this xmas, in order (numbered 1, 2, 3 … with no gap)."""
    found: list[Migration] = []
    for entry in resources.files("xmas_cli.stores").joinpath("migrations").iterdir():
        match = _NAME.match(entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    assert [m.version for m in found] == list(range(1, len(found) + 1)), "migrations must be numbered 1, 2, 3 …"
    return found


LATEST = 5  # the schema this xmas reads and writes (a test checks it equals the last migration's number)


def current_version(conn: psycopg.Connection[Any]) -> int:
    """The version recorded in this database's schema (search_path), 0 for one xmas never migrated."""
    exists = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (TABLE,)).fetchone()
    if not exists or not exists[0]:
        return 0
    found = conn.execute(f"SELECT COALESCE(MAX(version), 0) FROM {TABLE}").fetchone()
    return int(found[0]) if found else 0


def check_version(conn: psycopg.Connection[Any], where: str) -> None:
    """Refuse a schema this xmas cannot use: behind (run the migrations) or ahead (a newer xmas wrote it)."""
    version = current_version(conn)
    if version < LATEST:
        what = "has no xmas schema yet" if version == 0 else f"has schema version {version}, this xmas needs {LATEST}"
        raise ConfigError(f"{where} {what}", "run `xmas db migrate` (safe to run twice, and from two machines)")
    if version > LATEST:
        raise ConfigError(
            f"{where} has schema version {version}, newer than this xmas knows ({LATEST})",
            "upgrade xmas on this machine to the version the other machines run",
        )


def _lock_key(conn: psycopg.Connection[Any]) -> int:
    found = conn.execute("SELECT hashtext(current_schema() || ' xmas migrate')").fetchone()
    assert found is not None
    return int(found[0])


def migrate(conn: psycopg.Connection[Any], upto: int | None = None) -> list[Applied]:
    """Apply the migrations this database lacks (up to `upto`, for tests of upgrades); returns what was applied.
    `conn` must be in autocommit mode: each migration is its own transaction."""
    key = _lock_key(conn)
    conn.execute("SELECT pg_advisory_lock(%s)", (key,))
    try:
        conn.execute(
            f"CREATE TABLE IF NOT EXISTS {TABLE} (version integer PRIMARY KEY, name text NOT NULL, "
            "applied_at timestamptz NOT NULL DEFAULT now())"
        )
        have = current_version(conn)
        applied: list[Applied] = []
        for migration in migrations():
            if migration.version <= have or (upto is not None and migration.version > upto):
                continue
            with conn.transaction():
                conn.execute(migration.sql.encode())
                row = conn.execute(
                    f"INSERT INTO {TABLE} (version, name) VALUES (%s, %s) RETURNING applied_at",
                    (migration.version, migration.name),
                ).fetchone()
            applied.append(Applied(migration.version, migration.name, row[0] if row else None))
        return applied
    finally:
        conn.execute("SELECT pg_advisory_unlock(%s)", (key,))


def history(conn: psycopg.Connection[Any]) -> list[Applied]:
    if current_version(conn) == 0:
        return []
    rows = conn.execute(f"SELECT version, name, applied_at FROM {TABLE} ORDER BY version").fetchall()
    return [Applied(int(r[0]), str(r[1]), r[2]) for r in rows]
