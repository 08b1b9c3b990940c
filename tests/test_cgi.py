"""The CGI script reads the whole request body, even of a request it refuses: Apache's mod_cgid resets the
connection when a script exits with body unread, and the website never sees the answer."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from conftest import cgi_request, clean_environ
from test_cli_enroll import rows_in_db


def _cgi(project: Path, path: str, body: bytes) -> tuple[bytes, int]:
    """Run `xmas-cgi` with the body on a file as stdin; return its answer and how far it read the file."""
    env = clean_environ({**cgi_request(project, "POST", path, body), "XMAS_API_TOKEN": "token-0123456789"})
    with tempfile.TemporaryFile() as stdin:
        stdin.write(body)
        stdin.seek(0)
        done = subprocess.run(
            [sys.executable, "-m", "xmas_cli.cgi_main"], stdin=stdin, env=env, capture_output=True, timeout=60
        )
        read = os.lseek(stdin.fileno(), 0, os.SEEK_CUR)  # the child shared this file offset
    return done.stdout, read


def test_a_refused_request_has_its_body_read_all_the_same(project: Path) -> None:
    body = b'{"email": "a@example.com", "first_name": "A"}' + b" " * 200_000
    for path in ("/nowhere", "/enroll/lead-nurture"):  # 404; 401 (no Authorization header)
        answer, read = _cgi(project, path, body)
        assert answer.startswith(b"Status: 40"), answer[:80]
        assert read == len(body), f"{path}: read {read} of {len(body)} bytes"


def test_a_body_that_stops_short_is_answered_408_at_the_deadline(project: Path) -> None:
    """A client (or a proxy) that sends part of the body and then nothing, keeping the connection open: the script
    answers 408 when its read deadline passes (1 s here, 30 s by default) instead of waiting for ever."""
    body = b'{"email": "a@example.com", "first_name": "A"}'
    env = clean_environ(
        {**cgi_request(project, "POST", "/enroll/lead-nurture", body), "HTTP_AUTHORIZATION": "Bearer token-0123456789"}
    )
    env["XMAS_API_TOKEN"] = "token-0123456789"
    script = "from xmas_cli.web.cgi import main; main(deadline=1.0)"
    started = time.monotonic()
    with subprocess.Popen(
        [sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
    ) as proc:
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(body[:10])
        proc.stdin.flush()  # and the rest never comes: stdin stays open
        try:
            proc.wait(timeout=20)
        finally:
            proc.kill()
        elapsed = time.monotonic() - started
        answer = proc.stdout.read()
    assert answer.startswith(b"Status: 408 Request Timeout\r\n"), answer
    document = json.loads(answer.split(b"\r\n\r\n", 1)[1])
    assert document["error"]["message"] == (
        f"the request body stopped after 10 of {len(body)} bytes and no more arrived in time"
    )
    assert document["error"]["fix"] == "send the whole body that Content-Length announces, without pausing"
    assert elapsed < 15, f"answered after {elapsed:.1f} s"
    assert rows_in_db(project) == []
