"""A full disk: the error says so (not "check the path and its permissions"), and the outbox leaves no temporary
files behind. On a real small filesystem (a 256 KB tmpfs), which only root may mount."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import Cli, replace_once

NOW = "2026-12-01T10:30:00Z"
LENA = ("--email", "lena@example.com", "--first-name", "Lena")


def tmpfs(tmp_path: Path, size: str) -> Iterator[Path]:
    """A tmpfs of `size` mounted for the test and unmounted after it (root only: skipped with the reason)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    folder = tmp_path / "small"
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    yield from tmpfs(tmp_path, "256k")


@pytest.fixture
def one_mb_disk(tmp_path: Path) -> Iterator[Path]:
    yield from tmpfs(tmp_path, "1m")


def fill(folder: Path) -> Path:
    """Write zeros into `folder` until no byte more fits; the filler file, to delete to make room again."""
    filler = folder / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        for size in (65536, 4096, 512, 1):
            with contextlib.suppress(OSError):
                while os.write(fd, b"\0" * size):
                    pass
    finally:
        os.close(fd)
    st = os.statvfs(folder)
    assert st.f_bavail == 0, f"{st.f_bavail} blocks still free"
    return filler


def set_in_campaign(project: Path, old: str, new: str) -> None:
    path = project / "campaign.toml"
    path.write_text(replace_once(path.read_text(), old, new))


def test_a_store_on_a_full_disk_says_the_disk_is_full(project: Path, small_disk: Path, xmas: Cli) -> None:
    set_in_campaign(project, 'path = ".xmas/xmas.db"', f'path = "{small_disk}/xmas.db"')
    xmas("enroll", "lead-nurture", *LENA, "--now", NOW)
    fill(small_disk)

    result = xmas("enroll", "lead-nurture", "--email", "max@example.com", "--first-name", "Max", "--now", NOW, code=4)

    assert "the disk is full" in result.stderr
    assert f"the disk that holds {small_disk} is full: free some space on it (df -h {small_disk})" in result.stderr
    assert "permissions" not in result.stderr

    set_in_campaign(project, f'path = "{small_disk}/xmas.db"', f'path = "{small_disk}/new.db"')  # opening one
    result = xmas("enroll", "lead-nurture", "--email", "max@example.com", "--first-name", "Max", "--now", NOW, code=4)
    assert f"cannot open {small_disk}/new.db: the disk is full" in result.stderr
    assert f"the disk that holds {small_disk} is full: free some space on it (df -h {small_disk})" in result.stderr


def test_the_outbox_on_a_full_disk_leaves_no_temporary_file_and_sends_once_there_is_room(
    project: Path, small_disk: Path, xmas: Cli
) -> None:
    outbox = small_disk / "outbox"
    set_in_campaign(project, 'outbox = ".xmas/outbox"', f'outbox = "{outbox}"')
    outbox.mkdir()
    xmas("enroll", "lead-nurture", *LENA, "--now", NOW)
    filler = fill(small_disk)

    failed = xmas.json("tick", "--now", NOW, code=1)

    assert sorted(p.name for p in outbox.iterdir()) == []  # no .eml, and no .sending-* left behind
    [outcome] = failed["outcomes"]
    assert outcome["action"] == "retry", outcome
    assert f"cannot write {outbox}/" in outcome["detail"], outcome
    assert f"the disk that holds {outbox} is full: free some space on it (df -h {outbox})" in outcome["detail"]
    [row] = [r for r in xmas.json("show", "lena@example.com")["emails"] if r["step"] == 1]
    assert (row["state"], row["attempts"]) == ("Scheduled", 1), row

    filler.unlink()
    sent = xmas.json("tick", "--now", "2026-12-01T10:40:00Z")
    assert [o["action"] for o in sent["outcomes"]] == ["sent"]
    assert [p.suffix for p in outbox.iterdir()] == [".eml"]


def test_an_enrollment_on_a_filling_disk_is_written_whole_or_not_at_all(
    project: Path, one_mb_disk: Path, xmas: Cli
) -> None:
    """The disk fills up at every point of an enrollment in turn (N KB left, N from 8 to 200): it is written whole
    (exit 0, the contact and its 5 rows) or not at all (exit 4, "the disk is full", a retry is safe), never the
    contact with 2 of its 5 rows, as when each row was its own transaction."""
    small_disk = one_mb_disk
    db = small_disk / "xmas.db"
    set_in_campaign(project, 'path = ".xmas/xmas.db"', f'path = "{db}"')
    codes = set()
    for free_kb in range(8, 200, 16):
        for leftover in small_disk.iterdir():
            leftover.unlink()
        xmas("enroll", "lead-nurture", *LENA, "--now", NOW)
        filler = fill(small_disk)
        os.truncate(filler, max(0, filler.stat().st_size - free_kb * 1024))
        max_ = xmas(
            "enroll", "lead-nurture", "--email", "max@example.com", "--first-name", "Max", "--now", NOW, code=None
        )
        filler.unlink()
        with contextlib.closing(sqlite3.connect(db)) as conn:
            contact = conn.execute("SELECT COUNT(*) FROM contacts WHERE email = 'max@example.com'").fetchone()[0]
            rows = conn.execute("SELECT COUNT(*) FROM emails WHERE email = 'max@example.com'").fetchone()[0]
        if max_.exit_code == 0:
            assert (contact, rows) == (1, 5), free_kb
        else:
            assert max_.exit_code == 4 and (contact, rows) == (0, 0), (free_kb, max_.exit_code, contact, rows)
            assert "the disk is full" in max_.stderr, max_.stderr
        codes.add(max_.exit_code)
    assert codes == {0, 4}  # the sweep crossed the point where it fits
