"""File locks: one tick at a time, and enrollments one after another (no duplicate rows)."""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import Busy, StoreUnavailable
from .perms import DEFAULT_MODE, private_file


def _open(path: Path) -> tuple[int, bool]:
    """The lock file's descriptor, and whether it is writable. flock needs only a read: a lock file that the
    other user of a shared store made without group write (an older xmas, a mode of 0640) still locks."""
    try:
        return os.open(path, os.O_RDWR), True
    except PermissionError:
        pass
    try:
        return os.open(path, os.O_RDONLY), False
    except PermissionError as exc:
        raise StoreUnavailable(
            f"cannot open the lock {path}: {exc.strerror}",
            'a store shared by two users needs [store] file_mode = "0660" and its folder group-owned with the '
            f"setgid bit (chgrp GROUP {path.parent} && chmod 2770 {path.parent}); fix this file with chgrp GROUP "
            f"{path} && chmod 0660 {path}",
        ) from None


@contextmanager
def file_lock(path: Path, *, wait: float = 0.0, what: str = "tick", mode: int = DEFAULT_MODE) -> Iterator[None]:
    """Hold an exclusive lock on `path`. With wait=0 give up at once; otherwise retry for `wait` seconds.

    The kernel releases the lock when the process dies, so a crashed tick never leaves it stuck.
    """
    private_file(path, mode)  # the tick and the web app may run as two users of one group: [store] file_mode
    fd, writable = _open(path)
    try:
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
                    raise Busy(
                        f"another {what} is running (lock {path} held by pid {holder})",
                        "nothing was done; the next run will pick up the work"
                        if what == "tick"
                        else "retry in a moment",
                    ) from None
                time.sleep(0.05)
        if writable:  # the holder's pid, for the message above; the lock itself is the flock
            os.ftruncate(fd, 0)
            os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock
