"""Reaching PostgreSQL: the connection string (XMAS_DATABASE_URL), one psycopg pool per database per process, the
first contact's clear error and schema check, a pooled connection's errors said as xmas's (pooled), and `xmas db
migrate`'s connection. The store itself: postgres.py."""

from __future__ import annotations

import atexit
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from ..errors import Busy, ConfigError, StoreUnavailable
from .pg_schema import LATEST, Applied, check_version, current_version, migrate

if TYPE_CHECKING:
    import psycopg
    from psycopg_pool import ConnectionPool

DSN_VARIABLE = "XMAS_DATABASE_URL"
POOL_SIZE = 10  # connections per process at most (the web server's threads); a CLI command uses one
WAIT_SECONDS = 10  # for a connection, a contact's lock or the claim lock, before giving up with a clear error
UNREACHABLE_FIX = f"check {DSN_VARIABLE} (host, port, database, user) and that the server answers"

# Every wait on the server is bounded, well under a tick's budget (50 s) and its lease ([store] lease, at least
# the budget + 10 s): a server or network that goes quiet ends in an error the tick reports, not a tick that hangs
# while its claims run out. The server ends a statement that runs too long and a session that holds a transaction
# open without a word (a runner that froze holding row locks); the kernel notices a peer that stopped answering
# (keepalive probes unanswered, data unacknowledged).
STATEMENT_SECONDS = 30
IDLE_IN_TRANSACTION_SECONDS = 30
KEEPALIVE = {"keepalives": 1, "keepalives_idle": 5, "keepalives_interval": 2, "keepalives_count": 3}  # ~11 s
TCP_USER_TIMEOUT_MS = 15_000
CLOSE_SECONDS = 1.0  # for the pool's threads to end when the process exits (they are daemons: they end with it)


def bounded(dsn: str) -> str:
    """`dsn` with the bounds above added: connect timeout, TCP keepalives and user timeout, and the server-side
    statement and idle-in-transaction timeouts (in `options`, after whatever options the DSN already has, such as
    its search_path). A value the DSN sets itself is kept, except that options are merged."""
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    given = conninfo_to_dict(dsn)
    limits = (
        f"-c statement_timeout={STATEMENT_SECONDS * 1000} "
        f"-c idle_in_transaction_session_timeout={IDLE_IN_TRANSACTION_SECONDS * 1000}"
    )
    options = f"{given['options']} {limits}" if given.get("options") else limits
    params: dict[str, Any] = {
        "connect_timeout": WAIT_SECONDS,
        **KEEPALIVE,
        "tcp_user_timeout": TCP_USER_TIMEOUT_MS,
    }
    return make_conninfo(dsn, **{k: v for k, v in params.items() if k not in given}, options=options)


class _Connections:
    """One pool per database per process, opened on first use, closed at exit."""

    _pools: dict[str, ConnectionPool[Any]] = {}  # noqa: RUF012 — the process's registry, shared on purpose
    _guard = threading.Lock()

    @classmethod
    def pool(cls, dsn: str, where: str) -> ConnectionPool[Any]:
        with cls._guard:
            pool = cls._pools.get(dsn)
            if pool is None:
                pool = cls._pools[dsn] = cls._open(dsn, where)
            return pool

    @staticmethod
    def _open(dsn: str, where: str) -> ConnectionPool[Any]:
        import psycopg
        from psycopg.rows import dict_row
        from psycopg_pool import ConnectionPool

        try:  # once per process: a clear error now (and the schema checked) rather than a pool timing out later
            conninfo = bounded(dsn)
            with psycopg.connect(conninfo, autocommit=True) as conn:
                check_version(conn, where)
        except psycopg.Error as exc:
            raise StoreUnavailable(f"cannot connect to {where}: {first_line(exc)}", UNREACHABLE_FIX) from None
        pool: ConnectionPool[Any] = ConnectionPool(
            conninfo,
            min_size=0,
            max_size=POOL_SIZE,
            kwargs={"row_factory": dict_row},
            timeout=WAIT_SECONDS,
            check=ConnectionPool.check_connection,  # a connection the server dropped (a restart) is replaced, not used
            name="xmas",
            open=True,
        )
        atexit.register(pool.close, timeout=CLOSE_SECONDS)  # a worker stuck connecting to a quiet server: not for long
        return pool

    @classmethod
    def forget(cls) -> None:
        """Close every pool (tests that drop a schema)."""
        with cls._guard:
            for pool in cls._pools.values():
                pool.close()
            cls._pools.clear()


def first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def describe_dsn(dsn: str) -> str:
    """`PostgreSQL host:port/database`, never the password."""
    try:
        from psycopg.conninfo import conninfo_to_dict

        parts = conninfo_to_dict(dsn)
    except Exception:  # a DSN psycopg cannot parse: connecting will say why
        return "PostgreSQL (XMAS_DATABASE_URL)"
    host = parts.get("host") or "localhost"
    port = parts.get("port") or 5432
    schema = ""
    options = str(parts.get("options") or "")
    if "search_path=" in options:
        schema = f" schema {options.split('search_path=', 1)[1].split()[0]}"
    return f"PostgreSQL {host}:{port}/{parts.get('dbname') or parts.get('user') or ''}{schema}"


def in_schema(dsn: str, schema: str) -> str:
    """`dsn` with every connection's search_path set to `schema` (one schema per campaign in one database; what
    describe_dsn reads back), so the store's unqualified table names land there."""
    from urllib.parse import quote

    option = quote(f"-csearch_path={schema}", safe="")
    return f"{dsn}{'&' if '?' in dsn else '?'}options={option}"


def database_url(env: Mapping[str, str]) -> str:
    dsn = (env.get(DSN_VARIABLE) or "").strip()
    if not dsn:
        raise ConfigError(
            f'[store] backend = "postgres" needs {DSN_VARIABLE}',
            f"export {DSN_VARIABLE}=postgresql://USER@HOST:5432/DATABASE (the password in ~/.pgpass or the URL)",
        )
    return dsn


def require_driver() -> None:
    try:
        import psycopg  # noqa: F401
        import psycopg_pool  # noqa: F401
    except ImportError:
        raise ConfigError(
            '[store] backend = "postgres" needs psycopg 3 and its pool, which are not installed',
            "pip install 'xmas-cli[postgres]'",
        ) from None


def pool_for(dsn: str, where: str) -> ConnectionPool[Any]:
    """The process's pool for this database, opened (and the schema checked) on first use."""
    return _Connections.pool(dsn, where)


@contextmanager
def pooled(pool: ConnectionPool[Any], where: str) -> Iterator[psycopg.Connection[Any]]:
    """A connection of `pool` for one transaction (committed when the block ends, rolled back if it raises), the
    driver's errors said as xmas's: no connection in time or a lost server is unreachable, a lock not free in time
    (lock_timeout) is busy. The store's and the sending budget's every statement runs in one."""
    import psycopg
    from psycopg_pool import PoolTimeout

    try:
        with pool.connection() as conn:
            yield conn
    except PoolTimeout:
        raise StoreUnavailable(f"{where}: no connection within {WAIT_SECONDS} s", UNREACHABLE_FIX) from None
    except psycopg.errors.LockNotAvailable:
        raise Busy(f"{where}: a lock was not free within {WAIT_SECONDS} s", "retry in a minute") from None
    except (psycopg.OperationalError, psycopg.InterfaceError) as exc:  # the server went away, a lost connection
        raise StoreUnavailable(f"{where}: {first_line(exc)}", UNREACHABLE_FIX) from None


def migrate_database(dsn: str) -> tuple[int, list[Applied]]:
    """`xmas db migrate`: the version found, and the migrations applied to reach the latest."""
    require_driver()
    import psycopg

    where = describe_dsn(dsn)
    try:
        with psycopg.connect(dsn, connect_timeout=WAIT_SECONDS, autocommit=True) as conn:
            before = current_version(conn)
            if before > LATEST:
                check_version(conn, where)  # a newer xmas's schema: refused with the fix
            return before, migrate(conn)
    except psycopg.Error as exc:
        raise StoreUnavailable(f"cannot migrate {where}: {first_line(exc)}", UNREACHABLE_FIX) from None
