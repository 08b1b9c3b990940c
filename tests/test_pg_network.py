"""A PostgreSQL store whose network fails mid-tick: every wait on the server is bounded, the first SIGTERM stops a
tick blocked on a connection that went quiet within seconds (exit 6), a reset connection is a clear exit 4, and
what was sent is never sent twice. Through tests/tcp_proxy.py, in front of the test server (tests/pg.py)."""

from __future__ import annotations

import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pg
import pytest
from chaos.harness import clean_env, xmas_command
from conftest import RESEND_KEY, SECRET, Cli, replace_once
from resend_emulator import ResendEmulator
from tcp_proxy import TcpProxy
from test_cli_tick import T0, at, enroll

from xmas_cli.stores.pg_connections import (
    IDLE_IN_TRANSACTION_SECONDS,
    KEEPALIVE,
    STATEMENT_SECONDS,
    TCP_USER_TIMEOUT_MS,
    bounded,
)
from xmas_cli.tick.signals import STOP_GRACE

PEOPLE = 3


@pytest.fixture
def direct_dsn(project: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The project on a PostgreSQL schema of its own (the in-process `xmas` reaches it directly)."""
    with pg.fresh_schema() as dsn:
        config = project / "campaign.toml"
        config.write_text(replace_once(config.read_text(), 'backend = "sqlite"', 'backend = "postgres"'))
        monkeypatch.setenv("XMAS_DATABASE_URL", dsn)
        yield dsn


@pytest.fixture
def proxy() -> Iterator[TcpProxy]:
    with TcpProxy("127.0.0.1", 5432) as running:
        yield running


def through(dsn: str, proxy: TcpProxy) -> str:
    assert "127.0.0.1:5432" in dsn, dsn
    return dsn.replace("127.0.0.1:5432", f"127.0.0.1:{proxy.port}")


def start_tick(project: Path, dsn: str, emu: ResendEmulator, minutes: int = 65) -> subprocess.Popen[str]:
    env = clean_env(
        {
            "XMAS_CONFIG": str(project / "campaign.toml"),
            "XMAS_SECRET": SECRET,
            "XMAS_DATABASE_URL": dsn,
            "RESEND_API_KEY": RESEND_KEY,
            "RESEND_API_URL": emu.base_url,
        }
    )
    return subprocess.Popen(
        [*xmas_command(), "tick", "--now", at(T0 + timedelta(minutes=minutes))],
        cwd=project,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for(condition: Any, what: str, tick: subprocess.Popen[str], seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert tick.poll() is None, ("the tick ended", tick.returncode, tick.communicate())
        assert time.monotonic() < deadline, f"still waiting for {what}"
        time.sleep(0.02)


def enroll_people(xmas: Cli) -> None:
    for n in range(PEOPLE):
        enroll(xmas, "postcall", email=f"p{n}@example.com", call_date=at(T0))


def assert_first_emails_sent(xmas: Cli) -> None:
    firsts = [xmas.json("show", f"p{n}@example.com")["emails"][0] for n in range(PEOPLE)]
    assert [(r["step"], r["state"]) for r in firsts] == [(1, "Sent")] * PEOPLE


def a_tick_with_its_batch_at_resend(
    xmas: Cli, project: Path, dsn: str, proxy: TcpProxy, emu: ResendEmulator
) -> tuple[subprocess.Popen[str], threading.Event]:
    """PEOPLE enrolled and a tick started through the proxy, its batch in flight at Resend and held there until
    the returned event is set."""
    enroll_people(xmas)
    hold = emu.hold_processing()
    tick = start_tick(project, through(dsn, proxy), emu)
    try:
        wait_for(lambda: emu.in_flight >= 1, "the tick's batch at Resend", tick)
    except BaseException:
        tick.kill()
        raise
    return tick, hold


def assert_the_next_tick_sends_nothing_twice(
    xmas: Cli, project: Path, dsn: str, proxy: TcpProxy, emu: ResendEmulator
) -> None:
    """The network is back: after the lease, the next tick sends the batch again under its key, and the replay is
    answered from the key: every first email Sent, no second copy."""
    proxy.passing()
    later = start_tick(project, through(dsn, proxy), emu, minutes=70)
    out, err = later.communicate(timeout=60)
    assert later.returncode == 0, (out, err)
    assert len(emu.sent) == PEOPLE
    assert_first_emails_sent(xmas)


def test_every_connection_carries_its_bounds(direct_dsn: str) -> None:
    """The server ends a long statement and an idle transaction; the kernel probes a quiet peer and gives up on
    unacknowledged data: all well under a tick's lease (2 min) and budget (50 s)."""
    import psycopg

    with psycopg.connect(bounded(direct_dsn)) as conn:
        shown = {
            name: conn.execute(f"SHOW {name}").fetchone()[0]  # type: ignore[index]
            for name in ("statement_timeout", "idle_in_transaction_session_timeout", "search_path")
        }
        sock = socket.socket(fileno=conn.pgconn.socket)
        try:
            options = (
                sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE),
                sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE),
                sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL),
                sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT),
                sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT),
            )
        finally:
            sock.detach()  # the descriptor stays psycopg's
    assert shown["statement_timeout"] == f"{STATEMENT_SECONDS}s"
    assert shown["idle_in_transaction_session_timeout"] == f"{IDLE_IN_TRANSACTION_SECONDS}s"
    assert shown["search_path"].startswith("xmas_test_")  # the DSN's own options kept
    assert options[0] != 0 and options[1:] == (
        KEEPALIVE["keepalives_idle"],
        KEEPALIVE["keepalives_interval"],
        KEEPALIVE["keepalives_count"],
        TCP_USER_TIMEOUT_MS,
    )
    dead_peer_noticed = KEEPALIVE["keepalives_idle"] + KEEPALIVE["keepalives_interval"] * KEEPALIVE["keepalives_count"]
    assert max(STATEMENT_SECONDS, IDLE_IN_TRANSACTION_SECONDS, dead_peer_noticed, TCP_USER_TIMEOUT_MS / 1000) < 50


def test_one_sigterm_stops_a_tick_blocked_on_a_silent_database_within_seconds(
    xmas: Cli, project: Path, direct_dsn: str, proxy: TcpProxy, resend_api: ResendEmulator
) -> None:
    tick, hold = a_tick_with_its_batch_at_resend(xmas, project, direct_dsn, proxy, resend_api)
    try:
        proxy.silent()  # the database goes quiet while the batch is in flight
        hold.set()  # Resend answers; the tick now records the outcome: blocked
        time.sleep(1)
        assert tick.poll() is None, tick.communicate()
        stopped_at = time.monotonic()
        tick.send_signal(signal.SIGTERM)
        out, err = tick.communicate(timeout=60)
        took = time.monotonic() - stopped_at
    finally:
        tick.kill()
    assert tick.returncode == 6, (out, err)
    assert took < STOP_GRACE + 5, f"stopped {took:.1f} s after SIGTERM\n{err}"
    assert "Traceback" not in err, err
    assert len(resend_api.sent) == PEOPLE

    assert_the_next_tick_sends_nothing_twice(xmas, project, direct_dsn, proxy, resend_api)


def test_a_reset_connection_is_a_clear_exit_4_and_nothing_goes_twice(
    xmas: Cli, project: Path, direct_dsn: str, proxy: TcpProxy, resend_api: ResendEmulator
) -> None:
    tick, hold = a_tick_with_its_batch_at_resend(xmas, project, direct_dsn, proxy, resend_api)
    try:
        proxy.reset()
        hold.set()
        out, err = tick.communicate(timeout=60)
    finally:
        tick.kill()
    assert tick.returncode == 4, (out, err)
    assert "xmas: error: PostgreSQL 127.0.0.1:" in err and "check XMAS_DATABASE_URL" in err, err
    assert "Traceback" not in err, err

    assert_the_next_tick_sends_nothing_twice(xmas, project, direct_dsn, proxy, resend_api)
