"""Files that hold people's data are created readable by their owner only (or a group, when configured).

The mode comes from `[store] file_mode` ("0600" by default, "0660" for a CGI script and a cron job that run
as two users of one group). It is set explicitly, whatever the umask, and an existing file or folder that is
more open than that is tightened when xmas opens it (a file owned by someone else is left as it is).

With a group mode the files must also be in the shared group, whichever of the two users made them, and so
must the files SQLite makes beside the database (`-wal`, `-shm`, `-journal`), which this module never
creates. So, with a group mode:

- a folder or file xmas creates takes the group of the folder it is made in (as the setgid bit would), when
  this process may give it that group (it is a member, or root);
- a folder xmas creates or owns, in a group other than the process's own (a shared group), gets the setgid
  bit, so that whatever is created in it later, by either user, by xmas or by SQLite, gets the folder's group
  (a folder made in a setgid folder keeps the bit it inherits);
- a folder or file xmas owns gets exactly the mode (so a store made under "0600" can then be shared), and a
  file it owns in another group than its folder's is given the folder's group.

A folder owned by someone else (e.g. the campaign's state folder made by an administrator) is not changed:
it needs to be group-owned, group-writable and setgid (`chgrp xmas-data DIR && chmod 2770 DIR`).
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from pathlib import Path

DEFAULT_MODE = 0o600
_KEEP_ON_DIRS = stat.S_ISGID | stat.S_ISVTX  # never taken away from a folder by tightening it
SIBLINGS = ("-wal", "-shm", "-journal")  # the files SQLite keeps beside a database
LOW_SPACE = 64 * 1024  # bytes free below which a failed write is put down to a full disk


def shared(file_mode: int) -> bool:
    """True when `file_mode` gives the group access: the store is shared by two users of one group."""
    return bool(file_mode & 0o070)


def dir_mode(file_mode: int) -> int:
    """A folder's mode for files of `file_mode`: the same reads and writes, plus the matching search bits."""
    mode = file_mode
    if mode & 0o600:
        mode |= 0o100
    if mode & 0o060:
        mode |= 0o010
    return mode


def _conform(path: Path, mode: int, keep: int, share: bool) -> None:
    """Take away the permission bits of `path` beyond `mode` (but not those in `keep`); when sharing, a path of
    ours gets exactly `mode` (a folder in a shared group also the setgid bit) and a file of ours its folder's
    group."""
    with contextlib.suppress(OSError):
        st = path.stat()
        current = stat.S_IMODE(st.st_mode)
        wanted = current & (mode | keep)
        if share and st.st_uid == os.geteuid():  # ours: exactly the mode, so a store made under 0600 can be shared
            wanted = (current & keep) | mode
            if stat.S_ISDIR(st.st_mode):
                wanted |= _setgid_for(st.st_gid)
            else:
                _take_folder_group(path, st.st_gid)
        if wanted != current:
            os.chmod(path, wanted)


def _setgid_for(gid: int) -> int:
    """The setgid bit for a folder in a group other than this process's own (a shared group), else nothing."""
    return stat.S_ISGID if gid != os.getegid() else 0


def _take_folder_group(path: Path, gid: int, fd: int | None = None) -> None:
    """Give `path` the group of its folder, when this process may (a member of that group, or root)."""
    with contextlib.suppress(OSError):
        folder_gid = path.parent.stat().st_gid
        if gid != folder_gid:
            if fd is None:
                os.chown(path, -1, folder_gid)
            else:
                os.fchown(fd, -1, folder_gid)


def private_dir(path: Path, file_mode: int = DEFAULT_MODE) -> None:
    """Create `path` (and missing parents) for files of `file_mode`; tighten the folder itself if it is more open.

    With a group mode, the folder is in its parent's group, and setgid when that is a shared group (see the
    module's note)."""
    mode = dir_mode(file_mode)
    share = shared(file_mode)
    if not path.exists():
        path.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(OSError):
            if share:
                _take_folder_group(path, path.stat().st_gid)
                st = path.stat()
                mode |= (st.st_mode & stat.S_ISGID) | _setgid_for(st.st_gid)  # kept from a setgid parent
            os.chmod(path, mode)
        return
    _conform(path, mode, _KEEP_ON_DIRS, share)


def private_file(path: Path, file_mode: int = DEFAULT_MODE) -> None:
    """Create `path` empty with exactly `file_mode` if it does not exist; tighten it if it is more open.

    With a group mode, the file is in its folder's group (see the module's note)."""
    private_dir(path.parent, file_mode)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, file_mode)
    except FileExistsError:
        _conform(path, file_mode, 0, shared(file_mode))
        return
    try:
        if shared(file_mode):
            _take_folder_group(path, os.fstat(fd).st_gid, fd)
        os.fchmod(fd, file_mode)  # the umask may have taken group bits away
    finally:
        os.close(fd)


def write_private(path: Path, data: bytes, file_mode: int = DEFAULT_MODE) -> None:
    """Write `data` to `path`, replacing what it held, created with `file_mode` whatever the umask, and an existing
    file of ours brought to that mode before the data goes in (a preview or report names and addresses people)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, file_mode)
    try:
        if os.fstat(fd).st_uid == os.geteuid():
            os.fchmod(fd, file_mode)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)


def sqlite_siblings(db: Path, file_mode: int = DEFAULT_MODE) -> None:
    """Bring the files SQLite created beside `db` (its -wal, -shm, -journal) to `file_mode` and the folder's group.

    SQLite gives them the database's mode but the creating process's group (unless the folder is setgid), so
    without this the other user of a shared store meets "unable to open database file" (or, where the group may
    read them, "attempt to write a readonly database"). Only files this process owns can be changed: the setgid
    folder is what covers the other user's."""
    for suffix in SIBLINGS:
        sibling = db.with_name(db.name + suffix)
        if sibling.exists():
            _conform(sibling, file_mode, 0, shared(file_mode))


def disk_full(path: Path, exc: BaseException | None = None) -> bool:
    """True when `exc` says no space is left (ENOSPC, EDQUOT, SQLite's "disk is full") or the filesystem holding
    `path` has (almost) none: SQLite reports a failed write on a full disk as a mere "disk I/O error"."""
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    if exc is not None and "disk is full" in str(exc):
        return True
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    try:
        st = os.statvfs(probe)
    except OSError:
        return False
    return st.f_bavail * st.f_frsize < LOW_SPACE


def full_disk_fix(path: Path) -> str:
    """How to fix a write that failed for want of space on the disk that holds `path`."""
    folder = path if path.is_dir() else path.parent
    return f"the disk that holds {folder} is full: free some space on it (df -h {folder}), then run this again"
