"""Files that hold people's data are readable by their owner only, or by a group when [store] file_mode says so."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import Cli, replace_once

NOW = "2026-12-01T10:30:00Z"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def open_umask() -> Iterator[None]:
    """The usual umask of a shell (022): without care, files come out world-readable."""
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def set_mode(project: Path, value: str) -> None:
    config = project / "campaign.toml"
    line = 'path = ".xmas/xmas.db"'
    config.write_text(replace_once(config.read_text(), line, f'{line}\nfile_mode = "{value}"'))


def run_campaign(xmas: Cli) -> None:
    xmas("enroll", "lead-nurture", "--email", "lena@example.com", "--first-name", "Lena", "--now", NOW)
    xmas("tick", "--now", NOW)


def test_store_outbox_and_locks_are_the_owners_only(xmas: Cli, project: Path, open_umask: None) -> None:
    run_campaign(xmas)
    state = project / ".xmas"
    files = [state / "xmas.db", state / "tick.lock", state / "enroll.lock", *(state / "outbox").glob("*.eml")]
    assert len(files) == 4 and {p.name: mode(p) for p in files} == {p.name: 0o600 for p in files}
    assert mode(state) == 0o700 and mode(state / "outbox") == 0o700
    wal = state / "xmas.db-wal"
    assert not wal.exists() or mode(wal) == 0o600  # SQLite gives its journal the database's mode


def test_a_group_mode_for_the_cgi_and_cron_split(xmas: Cli, project: Path, open_umask: None) -> None:
    set_mode(project, "0660")
    run_campaign(xmas)
    state = project / ".xmas"
    assert mode(state / "xmas.db") == 0o660 and mode(state / "enroll.lock") == 0o660  # despite the umask
    assert mode(state) == 0o770 and all(mode(p) == 0o660 for p in (state / "outbox").glob("*.eml"))


def test_an_existing_world_readable_store_is_tightened(xmas: Cli, project: Path, open_umask: None) -> None:
    run_campaign(xmas)
    db = project / ".xmas" / "xmas.db"
    db.chmod(0o644)
    xmas("status", "--now", NOW)
    assert mode(db) == 0o600


def test_a_mode_that_is_not_offered_is_a_config_error(xmas: Cli, project: Path) -> None:
    set_mode(project, "0666")
    result = xmas("status", code=3)
    assert "store.file_mode" in result.stderr
