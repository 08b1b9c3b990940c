"""`xmas serve` as an operator starts it: a real process on 127.0.0.1 answering HTTP."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from pathlib import Path

from conftest import SECRET, clean_environ


def test_xmas_serve_answers_healthz_and_enrolls(project: Path) -> None:
    env = clean_environ({"XMAS_WEBHOOK_KEY": "k" * 24, "XMAS_NOW": "2026-12-01T10:30:00Z", "XMAS_SECRET": SECRET})
    command = [sys.executable, "-c", "from xmas_cli.commands import main; main()", "serve", "--port", "0"]
    server = subprocess.Popen(command, cwd=project, env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        line = server.stdout.readline()
        assert line.startswith("xmas: serving on http://127.0.0.1:"), line
        base = line.split(" on ")[1].split("/ ")[0]
        with urllib.request.urlopen(f"{base}/healthz", timeout=10) as answer:
            assert answer.status == 200 and json.load(answer) == {"ok": True}
        body = json.dumps({"email": "sam@example.com", "first_name": "Sam", "business_name": "Sam's"}).encode()
        request = urllib.request.Request(
            f"{base}/api/v1/executions/webhook/christmas/handlers/signup-handler/{'k' * 24}",
            data=body,
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as answer:
            assert json.load(answer)["enrollment_key"] == "signup:sam@example.com"
    finally:
        server.terminate()
        server.wait(timeout=10)
