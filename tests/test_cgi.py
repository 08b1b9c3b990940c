"""The CGI script reads the whole request body, even of a request it refuses: Apache's mod_cgid resets the
connection when a script exits with body unread, and the website never sees the answer."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from conftest import cgi_request, clean_environ


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
