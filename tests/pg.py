"""A real PostgreSQL server for the tests that need one: each test gets a schema of its own, dropped after it.

The server comes from XMAS_TEST_DATABASE_URL (read once, when the tests start: the autouse fixture then removes
every XMAS_* variable); where it is unset, or the server does not answer, those tests skip with one line saying so.
`.ci/run` sets it to the machine's server (127.0.0.1:5432, database `test`) and checks that it answers first.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

TEST_DATABASE_URL = os.environ.get("XMAS_TEST_DATABASE_URL", "").strip()
_reachable: str | None = None  # "" when the server answered, else why not (checked once)


def unavailable() -> str:
    """Why PostgreSQL tests cannot run here, or "" when they can."""
    global _reachable
    if _reachable is None:
        if not TEST_DATABASE_URL:
            _reachable = "XMAS_TEST_DATABASE_URL is not set (e.g. postgresql://postgres@127.0.0.1:5432/test)"
        else:
            try:
                import psycopg

                with psycopg.connect(TEST_DATABASE_URL, connect_timeout=5) as conn:
                    conn.execute("SELECT 1")
                _reachable = ""
            except Exception as exc:  # the reason goes into the skip line
                _reachable = f"PostgreSQL at XMAS_TEST_DATABASE_URL does not answer: {str(exc).splitlines()[0]}"
    return _reachable


def require() -> str:
    """The server's DSN, or skip the calling test with the reason."""
    reason = unavailable()
    if reason:
        pytest.skip(reason)
    return TEST_DATABASE_URL


@contextmanager
def fresh_schema(migrated: bool = True) -> Iterator[str]:
    """A new empty schema (migrated to the latest version unless told not to); yields a DSN that uses it."""
    import psycopg

    from xmas_cli.stores.pg_connections import _Connections, in_schema
    from xmas_cli.stores.pg_schema import migrate

    base = require()
    schema = f"xmas_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    dsn = in_schema(base, schema)
    try:
        if migrated:
            with psycopg.connect(dsn, autocommit=True) as conn:
                migrate(conn)
        yield dsn
    finally:
        _Connections.forget()  # this process's pools: their connections would otherwise outlive the schema
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")
