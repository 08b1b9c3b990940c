"""The production server docs/website.md documents: gunicorn with several worker processes on
xmas_cli.web:application, enrolling from many clients at once. The same contact enrolled from every client at once
gets one set of rows; different contacts each get theirs."""

from __future__ import annotations

import http.client
import json
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import clean_environ, store_env
from test_cli_enroll import ASSESSMENT

from xmas_cli.backends import engine_from_config

pytestmark = pytest.mark.every_store  # SQLite (the lock file orders the workers) and PostgreSQL (advisory locks)

API_TOKEN = "token-0123456789"
T0 = "2026-12-01T10:30:00Z"
WORKERS = 4
CLIENTS = 8


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def gunicorn(project: Path) -> Iterator[int]:
    """`gunicorn --workers 4 --bind 127.0.0.1:PORT xmas_cli.web:application`, as docs/website.md runs it; its port."""
    binary = shutil.which("gunicorn", path=str(Path(sys.executable).parent))
    assert binary, "gunicorn is in the dev extra"
    port = free_port()
    env = clean_environ(
        {"XMAS_CONFIG": str(project / "campaign.toml"), "XMAS_API_TOKEN": API_TOKEN, "XMAS_NOW": T0, **store_env()}
    )
    server = subprocess.Popen(
        [binary, "--workers", str(WORKERS), "--bind", f"127.0.0.1:{port}", "xmas_cli.web:application"],
        cwd=project,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            assert server.poll() is None, server.stderr.read().decode() if server.stderr else "gunicorn exited"
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "gunicorn did not listen within 30 s"
                time.sleep(0.1)
        yield port
    finally:
        server.terminate()
        server.wait(timeout=30)


def enroll_at_once(port: int, payloads: list[dict[str, Any]]) -> list[tuple[int, dict[str, Any]]]:
    """Every payload POSTed to /enroll/assessment by its own client, all released together."""
    start = threading.Barrier(len(payloads))
    answers: list[tuple[int, dict[str, Any]] | None] = [None] * len(payloads)

    def post(index: int) -> None:
        body = json.dumps(payloads[index]).encode()
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {API_TOKEN}"}
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        start.wait()
        connection.request("POST", "/enroll/assessment", body, headers)
        reply = connection.getresponse()
        answers[index] = (reply.status, json.loads(reply.read()))
        connection.close()

    clients = [threading.Thread(target=post, args=(i,)) for i in range(len(payloads))]
    for client in clients:
        client.start()
    for client in clients:
        client.join(timeout=180)
    assert all(a is not None for a in answers), "a client got no answer"
    return [a for a in answers if a is not None]


def rows_of(project: Path, email: str) -> list[str]:
    engine = engine_from_config(str(project / "campaign.toml"), now=T0)
    try:
        return sorted(row.id for row in engine.store.emails_for_contact(email))
    finally:
        engine.close()


def test_the_same_contact_from_every_client_at_once_gets_one_set_of_rows(project: Path, gunicorn: int) -> None:
    answers = enroll_at_once(gunicorn, [ASSESSMENT] * CLIENTS)

    assert [status for status, _ in answers] == [200] * CLIENTS
    assert sorted(doc["created"] for _, doc in answers) == [False] * (CLIENTS - 1) + [True]  # one wrote them
    rows = rows_of(project, str(ASSESSMENT["email"]))
    assert len(rows) == 5 and all(sorted(r["id"] for r in doc["scheduled"]) == rows for _, doc in answers)


def test_different_contacts_at_once_each_get_their_rows(project: Path, gunicorn: int) -> None:
    payloads = [{**ASSESSMENT, "email": f"owner{n}@salon{n}.example.com"} for n in range(CLIENTS)]
    answers = enroll_at_once(gunicorn, payloads)

    assert [status for status, _ in answers] == [200] * CLIENTS
    assert all(doc["created"] for _, doc in answers)
    for payload in payloads:
        assert len(rows_of(project, str(payload["email"]))) == 5
