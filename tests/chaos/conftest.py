"""Projects for chaos tests: the shipped campaign in a temp folder (tests/conftest.py's `project`), sending through
the Resend emulator, on the SQLite store (batches) or on the Notion emulator. Ticks run as subprocesses
(harness.Xmas); setup that is not under test runs in-process, which is faster: through the CLI (the `xmas`
fixture), and enrollments in bulk through the engine (ChaosProject.enroll_leads).

tests/chaos is a package so that pytest imports this file as `chaos.conftest`: the test modules of tests/ import
the root conftest by the plain name `conftest`, which a second top-level conftest module would take over.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from notion_emulator import NotionEmulator
from resend_emulator import ResendEmulator

from chaos.harness import NOTION_TOKEN, RESEND_KEY, ChaosProject, Xmas, configure, set_keys


@pytest.fixture
def resend_emu() -> Iterator[ResendEmulator]:
    """Unlimited, and a 429's retry-after is 0: nothing in a test waits for seconds."""
    with ResendEmulator(api_key=RESEND_KEY, rate_limit=None, retry_after=0) as emulator:
        yield emulator


@pytest.fixture
def notion_emu() -> Iterator[NotionEmulator]:
    """No rate limit unless a test sets one (`set_rate_limit`); a 429's Retry-After is 0."""
    with NotionEmulator(token=NOTION_TOKEN, retry_after=0) as emulator:
        yield emulator


def _environment(monkeypatch: pytest.MonkeyPatch, **values: str) -> dict[str, str]:
    """The variables a subprocess gets (besides harness.KEPT), also set here for the in-process setup."""
    env = {"XMAS_SECRET": os.environ["XMAS_SECRET"], **values}  # the secret tests/conftest.py set
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


@pytest.fixture
def sqlite_resend(
    project: Path, xmas: Any, resend_emu: ResendEmulator, monkeypatch: pytest.MonkeyPatch
) -> Iterator[ChaosProject]:
    """SQLite + Resend with batches."""
    configure(project, notion=False)
    env = _environment(monkeypatch, RESEND_API_KEY=RESEND_KEY, RESEND_API_URL=resend_emu.base_url)
    runner = Xmas(project, env)
    try:
        yield ChaosProject(project, resend_emu, None, runner, xmas)
    finally:
        runner.close()


@pytest.fixture
def notion_resend(
    project: Path,
    xmas: Any,
    resend_emu: ResendEmulator,
    notion_emu: NotionEmulator,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[ChaosProject]:
    """Notion + Resend: `xmas notion setup` on a fresh page and `xmas templates push`, as an operator would."""
    configure(project, notion=True)
    env = _environment(
        monkeypatch,
        RESEND_API_KEY=RESEND_KEY,
        RESEND_API_URL=resend_emu.base_url,
        NOTION_TOKEN=NOTION_TOKEN,
        NOTION_BASE_URL=notion_emu.base_url,
    )
    xmas("notion", "setup", "--parent", notion_emu.add_page(title="Xmas"))
    assert "20 created" in xmas("templates", "push").stdout  # 19 emails and their layout
    notion_emu.reset_requests()
    runner = Xmas(project, env)
    try:
        yield ChaosProject(project, resend_emu, notion_emu, runner, xmas)
    finally:
        runner.close()


@pytest.fixture
def postgres_resend(
    project: Path, xmas: Any, resend_emu: ResendEmulator, monkeypatch: pytest.MonkeyPatch
) -> Iterator[ChaosProject]:
    """PostgreSQL (a fresh schema, migrated) + Resend with batches: ticks run without the file lock, any number
    at once. Skipped, with the reason, where XMAS_TEST_DATABASE_URL names no server (tests/pg.py)."""
    import pg

    configure(project, notion=False)
    set_keys(project / "campaign.toml", "store", {"backend": "postgres"})
    with pg.fresh_schema() as dsn:
        env = _environment(
            monkeypatch, RESEND_API_KEY=RESEND_KEY, RESEND_API_URL=resend_emu.base_url, XMAS_DATABASE_URL=dsn
        )
        runner = Xmas(project, env)
        try:
            yield ChaosProject(project, resend_emu, None, runner, xmas)
        finally:
            runner.close()
