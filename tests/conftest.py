"""Shared fixtures: every test gets its own copy of the shipped campaign in a temp folder."""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from email.message import EmailMessage
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from typer.testing import CliRunner

from xmas_cli.defaults import CAMPAIGN as CAMPAIGN_TOML
from xmas_cli.defaults import TEMPLATES as TEMPLATES_DIR

sys.path.insert(0, str(Path(__file__).parent))  # the emulators import as plain modules

import pg  # reads XMAS_TEST_DATABASE_URL now, before the autouse fixture clears XMAS_*

if TYPE_CHECKING:
    from xmas_cli.engine import Engine

SECRET = "test-secret-0123456789abcdef"


# Variables xmas (or the SDKs it uses) reads: none of the developer's reaches a test or a process a test starts
SCRUBBED_PREFIXES = ("XMAS_", "NOTION_", "RESEND_", "CALENDLY_")


def scrubbed(name: str) -> bool:
    return name.startswith(SCRUBBED_PREFIXES)


def clean_environ(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for a process a test starts: os.environ without any XMAS_/NOTION_/RESEND_/CALENDLY_ variable
    (the autouse fixture below already removed them: this also drops any a test set itself), plus `extra`."""
    env = {name: value for name, value in os.environ.items() if not scrubbed(name)}
    env.update(extra or {})
    return env


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test sees the developer's environment or real state: every XMAS_*, NOTION_*, RESEND_* and CALENDLY_*
    variable is removed for the test (and put back after it), and XMAS_SECRET is the tests' own."""
    for name in [name for name in os.environ if scrubbed(name)]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("XMAS_SECRET", SECRET)
    # xmas honours COLUMNS (tables fit it), and pytest-xdist's workers export COLUMNS=80: a test that wants a
    # width says so itself
    monkeypatch.delenv("COLUMNS", raising=False)


def replace_once(text: str, old: str, new: str) -> str:
    """`text` with the first `old` replaced by `new`; an AssertionError naming `old` if it is not there, so that a
    test editing campaign.toml fails where the edit did not apply instead of testing the unedited file."""
    if old not in text:
        raise AssertionError(f"{old!r} is not in the text to edit (has campaign.toml changed?)")
    return text.replace(old, new, 1)


def body_text(message: EmailMessage, subtype: str) -> str:
    """The decoded text/<subtype> body ("plain" or "html") of an email parsed with policy.default."""
    part = message.get_body((subtype,))
    assert part is not None, f"the email has no text/{subtype} body"
    return str(part.get_content())


STORES = ("sqlite", "postgres")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A test marked `every_store` runs once per store that keeps state in SQL: the embedded SQLite file and a
    PostgreSQL schema of its own (skipped, with the reason, where no server is configured: tests/pg.py). One that
    also carries `sqlite_only` (it edits the SQLite file by hand, or tests the file itself) runs on SQLite alone."""
    marked = metafunc.definition.get_closest_marker
    on_notion = any("notion" in name for name in metafunc.fixturenames)  # a Notion test: its own store
    if "project" in metafunc.fixturenames and marked("every_store") and not (marked("sqlite_only") or on_notion):
        metafunc.parametrize("store_backend", STORES, indirect=True)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The order the workers take the tests in (pytest-xdist hands them out one at a time: pyproject's addopts).
    The chaos tests come first, being the longest (10 to 70 s each), with their modules interleaved (each
    module's first test, then each one's second, ...): the long tests of one module, the four crash tests, then
    start at about the same time on different workers instead of one after another on the same one. The rest keep
    their order. Deterministic, as xdist requires: every worker must collect the same order."""
    chaos = [item for item in items if item.get_closest_marker("chaos") is not None]
    rest = [item for item in items if item.get_closest_marker("chaos") is None]
    modules: dict[str, list[pytest.Item]] = {}
    for item in chaos:
        modules.setdefault(item.nodeid.split("::")[0], []).append(item)
    rounds = max((len(group) for group in modules.values()), default=0)
    interleaved = [group[n] for n in range(rounds) for group in modules.values() if n < len(group)]
    items[:] = interleaved + rest


@pytest.fixture
def store_backend(request: pytest.FixtureRequest) -> Iterator[str]:
    backend = str(getattr(request, "param", "sqlite"))
    if backend == "sqlite":
        yield backend
        return
    with pg.fresh_schema() as dsn:
        request.getfixturevalue("monkeypatch").setenv("XMAS_DATABASE_URL", dsn)
        yield backend


def cgi_request(project: Path, method: str, path: str, body: bytes) -> dict[str, str]:
    """The variables a web server sets for a CGI script to answer one request with a JSON body (RFC 3875), and the
    project's campaign and the tests' secret; the caller adds its keys and the environment it starts from."""
    return {
        "GATEWAY_INTERFACE": "CGI/1.1",
        "REQUEST_METHOD": method,
        "SCRIPT_NAME": "/xmas",
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(body)),
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "XMAS_CONFIG": str(project / "campaign.toml"),
        "XMAS_SECRET": SECRET,
    }


def store_env() -> dict[str, str]:
    """What a server or process started with an environment of its own needs to reach the test's store: the
    PostgreSQL schema of an every_store test (XMAS_DATABASE_URL, set by the fixture), nothing on SQLite."""
    dsn = os.environ.get("XMAS_DATABASE_URL")
    return {"XMAS_DATABASE_URL": dsn} if dsn else {}


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, store_backend: str) -> Path:
    """A copy of the shipped campaign.toml and templates/ in a temp folder, made the working directory; its store
    is SQLite, or PostgreSQL for a test marked `every_store` (then XMAS_DATABASE_URL names a fresh schema)."""
    shutil.copy(CAMPAIGN_TOML, tmp_path / "campaign.toml")
    shutil.copytree(TEMPLATES_DIR, tmp_path / "templates")
    if store_backend != "sqlite":
        path = tmp_path / "campaign.toml"
        path.write_text(replace_once(path.read_text(), 'backend = "sqlite"', f'backend = "{store_backend}"'))
    monkeypatch.chdir(tmp_path)
    return tmp_path


@contextmanager
def engine_at(project: Path, now: str) -> Iterator[Engine]:
    """The project's engine with its clock fixed at `now`, closed when the block ends."""
    from xmas_cli.backends import engine_from_config

    engine = engine_from_config(str(project / "campaign.toml"), now=now)
    try:
        yield engine
    finally:
        engine.close()


RESEND_KEY = "re_test_key_for_xmas"


@pytest.fixture
def secret() -> str:
    """A fresh Svix signing secret (whsec_…) for Resend's webhooks."""
    from resend_emulator import new_webhook_secret

    return new_webhook_secret()


@pytest.fixture
def resend_api(project: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The project's mailer switched to Resend, pointed at a local emulator (unpaced, no backoff waits)."""
    from resend_emulator import ResendEmulator

    path = project / "campaign.toml"
    text = replace_once(path.read_text(), 'backend = "outbox"', 'backend = "resend"')
    text = replace_once(text, "requests_per_second = 5 ", "requests_per_second = 100\nretry_backoff_seconds = 0 ")
    path.write_text(text)
    with ResendEmulator(api_key=RESEND_KEY, rate_limit=None) as emulator:
        monkeypatch.setenv("RESEND_API_KEY", RESEND_KEY)
        monkeypatch.setenv("RESEND_API_URL", emulator.base_url)
        yield emulator


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


class Cli:
    """Runs `xmas` in-process through Typer's CliRunner and parses --json output."""

    def __init__(self, runner: CliRunner, project: Path) -> None:
        self.runner = runner
        self.project = project

    def __call__(self, *args: str, input: str | None = None, code: int | None = 0) -> Any:
        from xmas_cli.commands import app

        result = self.runner.invoke(app, list(args), input=input)
        if result.exception and not isinstance(result.exception, SystemExit):
            raise result.exception
        if code is not None:
            assert result.exit_code == code, (
                f"xmas {' '.join(args)} exited {result.exit_code}, expected {code}\n"
                f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
            )
        return result

    def json(self, *args: str, input: str | None = None, code: int | None = 0) -> Any:
        result = self(*args, "--json", input=input, code=code)
        return json.loads(result.stdout)


@pytest.fixture
def xmas(runner: CliRunner, project: Path) -> Iterator[Cli]:
    yield Cli(runner, project)
