"""A store shared by two users of one group (the CGI script as www-data, cron's tick as xmas): README,
"Deploying on a server". With [store] file_mode = "0660", whichever user creates the database, its -wal and
-shm files (made by SQLite, not by xmas) and the lock files, the other user can write them all: no
"attempt to write a readonly database".

The first tests run as any user; the last one runs two real users (forked, setuid) and needs root.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from xmas_cli.errors import Busy
from xmas_cli.lock import file_lock
from xmas_cli.stores.sqlite import SqliteStore

SHARED = 0o660
ROOT = os.geteuid() == 0


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def strict_umask() -> Iterator[None]:
    """The umask of a hardened service (077): without care, the group gets nothing."""
    old = os.umask(0o077)
    try:
        yield
    finally:
        os.umask(old)


def open_and_write(state: Path, file_mode: int = SHARED, email: str = "lena@example.com") -> SqliteStore:
    """What any command does: open the store (creating it), write a row, and keep the connection open."""
    store = SqliteStore(state / "xmas.db", state.parent / "templates", file_mode)
    store.db.execute("INSERT OR REPLACE INTO contacts (email) VALUES (?)", (email,))
    return store


def locks(state: Path, file_mode: int = SHARED) -> None:
    for name in ("tick.lock", "enroll.lock"):
        with file_lock(state / name, mode=file_mode):
            pass


def test_every_file_of_a_shared_store_is_0660_whatever_the_umask(tmp_path: Path, strict_umask: None) -> None:
    state = tmp_path / ".xmas"
    store = open_and_write(state)
    locks(state)
    files = ["xmas.db", "xmas.db-wal", "xmas.db-shm", "tick.lock", "enroll.lock"]
    assert {name: oct(mode(state / name)) for name in files} == {name: oct(SHARED) for name in files}
    assert mode(state) & 0o777 == 0o770
    store.close()


def test_the_setgid_bit_of_the_shared_folder_is_kept(tmp_path: Path, strict_umask: None) -> None:
    """`chgrp xmas-data .xmas && chmod 2770 .xmas`, then the owner's tick opened the store: the bit that gives
    the group to the files SQLite makes later must survive (it used to be "tightened" away)."""
    state = tmp_path / ".xmas"
    state.mkdir()
    state.chmod(0o2770)
    open_and_write(state).close()
    locks(state)
    assert mode(state) == 0o2770


def test_a_store_made_private_can_then_be_shared(tmp_path: Path, strict_umask: None) -> None:
    """Made under the default 0600 (cron first), then file_mode = "0660": the owner's next run opens it up."""
    state = tmp_path / ".xmas"
    open_and_write(state, 0o600).close()
    locks(state, 0o600)
    assert mode(state / "xmas.db") == 0o600 and mode(state) == 0o700
    store = open_and_write(state)
    locks(state)
    assert [mode(state / n) for n in ("xmas.db", "xmas.db-wal", "xmas.db-shm", "tick.lock")] == [SHARED] * 4
    assert mode(state) & 0o777 == 0o770
    store.close()


def other_group() -> int | None:
    """A group this process may give its files, other than its own: any group for root, else a supplementary one."""
    if ROOT:
        return 64_100
    return next((g for g in os.getgroups() if g != os.getegid()), None)


@pytest.mark.skipif(other_group() is None, reason="needs root or a supplementary group to share files with")
def test_files_take_the_group_of_their_folder(tmp_path: Path, strict_umask: None) -> None:
    """The campaign folder is in the shared group but not setgid: the state folder xmas creates in it, the
    database, SQLite's -wal/-shm and the locks all take that group, and the state folder is made setgid."""
    group = other_group()
    assert group is not None
    campaign = tmp_path / "campaign"
    campaign.mkdir()
    os.chown(campaign, -1, group)
    campaign.chmod(0o770)
    state = campaign / ".xmas"
    store = open_and_write(state)
    locks(state)
    made = [state, *(state / n for n in ("xmas.db", "xmas.db-wal", "xmas.db-shm", "tick.lock", "enroll.lock"))]
    assert {p.name: p.stat().st_gid for p in made} == {p.name: group for p in made}
    assert mode(state) == 0o2770
    store.close()


# Two real users: the web server's (CGI) and cron's, in one group, each with its own primary group.
CRON, WEB, GROUP = (64_101, 64_101), (64_102, 64_102), 64_100


def as_user(user: tuple[int, int], work: Callable[[], None]) -> None:
    """Run `work` in a child process that is `user` (uid, primary gid) with GROUP as supplementary group."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        os.close(read)
        code = 0
        try:
            os.setgroups([GROUP])
            os.setgid(user[1])
            os.setuid(user[0])
            os.umask(0o022)
            work()
        except BaseException:
            os.write(write, traceback.format_exc().encode())
            code = 1
        os._exit(code)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        report = pipe.read().decode()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, f"as uid {user[0]}:\n{report}"


def killed_mid_request(state: Path, email: str) -> Callable[[], None]:
    """A process that dies with the store open (Apache's timeout, OOM): its -wal and -shm stay behind."""

    def work() -> None:
        open_and_write(state, email=email)
        os._exit(0)

    return work


def runs_to_the_end(state: Path, email: str) -> Callable[[], None]:
    def work() -> None:
        store = open_and_write(state, email=email)
        locks(state)
        store.close()

    return work


@pytest.fixture
def base() -> Iterator[Path]:
    """A folder both users can reach (pytest's own temp folder is root's only)."""
    folder = Path(tempfile.mkdtemp(prefix="xmas-deploy-", dir="/tmp"))
    folder.chmod(0o755)
    try:
        yield folder
    finally:
        shutil.rmtree(folder)


def readme_layout(state: Path) -> None:
    """The README's: the state folder made by the administrator, owned by cron's user, group-owned and setgid."""
    state.mkdir()
    os.chown(state, CRON[0], GROUP)
    state.chmod(0o2770)


def no_setgid_layout(state: Path) -> None:
    """The setgid bit forgotten, on a folder that xmas may not change."""
    state.mkdir()
    os.chown(state, 0, GROUP)
    state.chmod(0o770)


def made_by_xmas_layout(state: Path) -> None:
    """xmas makes the state folder itself, in a campaign folder of the group."""
    os.chown(state.parent, 0, GROUP)
    state.parent.chmod(0o770)


LAYOUTS: dict[str, Callable[[Path], None]] = {
    "state folder 2770, owned by cron's user": readme_layout,
    "state folder 0770, owned by root": no_setgid_layout,
    "made by xmas": made_by_xmas_layout,
}


@pytest.mark.skipif(not ROOT, reason="two real users need root (setuid); the tests above cover one user")
@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize("first", ["cron first", "web first"])
def test_two_users_of_one_group_share_the_store(base: Path, layout: str, first: str) -> None:
    state = base / "campaign" / ".xmas"
    state.parent.mkdir()
    LAYOUTS[layout](state)
    one, two = (CRON, WEB) if first == "cron first" else (WEB, CRON)
    as_user(one, runs_to_the_end(state, "a@example.com"))  # creates the database and the locks
    as_user(two, runs_to_the_end(state, "b@example.com"))
    as_user(two, killed_mid_request(state, "c@example.com"))  # leaves its -wal/-shm
    assert (state / "xmas.db-wal").stat().st_uid == two[0]
    as_user(one, runs_to_the_end(state, "d@example.com"))  # writes through the other user's -wal/-shm
    as_user(one, killed_mid_request(state, "e@example.com"))
    as_user(two, runs_to_the_end(state, "f@example.com"))
    for path in state.iterdir():
        assert (path.stat().st_gid, mode(path) & 0o777) == (GROUP, SHARED), path.name
    store = SqliteStore(state / "xmas.db", base / "templates", SHARED)
    emails = [r[0] for r in store.db.execute("SELECT email FROM contacts ORDER BY email")]
    assert emails == [f"{c}@example.com" for c in "abcdef"]
    store.close()


@pytest.mark.skipif(not ROOT, reason="two real users need root (setuid)")
def test_a_lock_file_the_other_user_cannot_write_still_locks(base: Path) -> None:
    """A lock left by an older xmas (or file_mode 0640) is readable but not writable by the group: flock needs
    only a read, so the lock still works, and still excludes."""
    state = base / ".xmas"
    state.mkdir()
    os.chown(state, CRON[0], GROUP)
    state.chmod(0o2770)
    lock = state / "tick.lock"
    lock.touch()
    os.chown(lock, WEB[0], GROUP)
    lock.chmod(0o640)

    def hold_and_try_again() -> None:
        with file_lock(lock, mode=SHARED), pytest.raises(Busy), file_lock(lock, mode=SHARED):
            pass

    as_user(CRON, hold_and_try_again)
