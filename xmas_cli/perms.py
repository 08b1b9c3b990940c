"""Files that hold people's data are created readable by their owner only (or a group, when configured).

The mode comes from `[store] file_mode` ("0600" by default, "0660" for a CGI script and a cron job that run
as two users of one group). It is set explicitly, whatever the umask, and an existing file or folder that is
more open than that is tightened when xmas opens it (a file owned by someone else is left as it is).
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

DEFAULT_MODE = 0o600


def dir_mode(file_mode: int) -> int:
    """A folder's mode for files of `file_mode`: the same reads and writes, plus the matching search bits."""
    mode = file_mode
    if mode & 0o600:
        mode |= 0o100
    if mode & 0o060:
        mode |= 0o010
    return mode


def _tighten(path: Path, mode: int) -> None:
    with contextlib.suppress(OSError):
        current = stat.S_IMODE(path.stat().st_mode)
        if current & ~mode:
            os.chmod(path, current & mode)


def private_dir(path: Path, file_mode: int = DEFAULT_MODE) -> None:
    """Create `path` (and missing parents) for files of `file_mode`; tighten the folder itself if it is more open."""
    mode = dir_mode(file_mode)
    if not path.exists():
        path.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(OSError):
            os.chmod(path, mode)
        return
    _tighten(path, mode)


def private_file(path: Path, file_mode: int = DEFAULT_MODE) -> None:
    """Create `path` empty with exactly `file_mode` if it does not exist; tighten it if it is more open."""
    private_dir(path.parent, file_mode)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, file_mode)
    except FileExistsError:
        _tighten(path, file_mode)
        return
    try:
        os.fchmod(fd, file_mode)  # the umask may have taken group bits away
    finally:
        os.close(fd)
