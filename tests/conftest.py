"""Shared fixtures: every test gets its own copy of the shipped campaign in a temp folder."""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from xmas_cli.defaults import CAMPAIGN as CAMPAIGN_TOML
from xmas_cli.defaults import TEMPLATES as TEMPLATES_DIR

sys.path.insert(0, str(Path(__file__).parent))  # the emulators import as plain modules

SECRET = "test-secret-0123456789abcdef"


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test sees the developer's environment or real state."""
    for name in (
        "XMAS_CONFIG",
        "XMAS_NOW",
        "XMAS_TESTING",
        "XMAS_DEBUG",
        "NOTION_TOKEN",
        "NOTION_BASE_URL",
        "RESEND_API_KEY",
        "RESEND_API_URL",
        "XMAS_NOTION_CONTACTS",
        "XMAS_NOTION_TEMPLATES",
        "XMAS_NOTION_TRACKER",
        "RESEND_WEBHOOK_SECRET",
        "CALENDLY_WEBHOOK_SIGNING_KEY",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XMAS_SECRET", SECRET)


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the shipped campaign.toml and templates/ in a temp folder, made the working directory."""
    shutil.copy(CAMPAIGN_TOML, tmp_path / "campaign.toml")
    shutil.copytree(TEMPLATES_DIR, tmp_path / "templates")
    monkeypatch.chdir(tmp_path)
    return tmp_path


RESEND_KEY = "re_test_key_for_xmas"


@pytest.fixture
def resend_api(project: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The project's mailer switched to Resend, pointed at a local emulator (unpaced, no backoff waits)."""
    from resend_emulator import ResendEmulator

    path = project / "campaign.toml"
    text = path.read_text().replace('backend = "outbox"', 'backend = "resend"')
    path.write_text(text.replace("requests_per_second = 5 ", "requests_per_second = 100\nretry_backoff_seconds = 0 "))
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
