"""Nothing of the developer's shell reaches a test, or a process a test starts (tests/conftest.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator

import pytest
from chaos.harness import clean_env
from conftest import SCRUBBED_PREFIXES, SECRET, clean_environ

SHELL = {
    "XMAS_WEBHOOK_KEY_SIGNUP": "from-the-shell",
    "XMAS_NOW": "2030-01-01T00:00:00Z",
    "XMAS_CONFIG": "/nonexistent",
    "XMAS_SECRET": "the-developer-s-own-secret",
    "NOTION_TOKEN": "secret_from_the_shell",
    "RESEND_API_KEY": "re_from_the_shell",
    "CALENDLY_WEBHOOK_SIGNING_KEY": "from-the-shell",
}
PRINT_THEM = "import json, os; print(json.dumps(sorted(n for n in os.environ if n.startswith({prefixes!r}))))"


@pytest.fixture(scope="module")
def shell() -> Iterator[None]:
    """A polluted shell. Module-scoped, so it is set up before any function-scoped fixture: before conftest's
    autouse `_isolated_env`, which must then remove all of it."""
    with pytest.MonkeyPatch.context() as mp:
        for name, value in SHELL.items():
            mp.setenv(name, value)
        yield


def scrubbed_names(environ: dict[str, str] | os._Environ[str]) -> list[str]:
    return sorted(name for name in environ if name.startswith(SCRUBBED_PREFIXES))


def test_no_variable_of_the_shell_reaches_a_test(shell: None) -> None:
    assert scrubbed_names(os.environ) == ["XMAS_SECRET"]
    assert os.environ["XMAS_SECRET"] == SECRET


def test_no_variable_reaches_a_process_a_test_starts(shell: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XMAS_WEBHOOK_KEY_SIGNUP", "set-by-the-test")  # not passed on either unless given
    env = clean_environ({"XMAS_NOW": "2026-12-01T10:30:00Z"})
    assert scrubbed_names(env) == ["XMAS_NOW"] and env["PATH"] == os.environ["PATH"]
    code = PRINT_THEM.format(prefixes=SCRUBBED_PREFIXES)
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert json.loads(done.stdout) == ["XMAS_NOW"]
    assert scrubbed_names(clean_env({"XMAS_SECRET": SECRET})) == ["XMAS_SECRET"]  # the chaos tests' processes
