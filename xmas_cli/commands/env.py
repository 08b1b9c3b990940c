"""What a command needs from its process, in one object a test can build: the consoles, stdin, the environment
and the clock.

Nothing here imports Rich until a command prints: `xmas --help` and an idle tick stay fast.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from functools import cached_property
from typing import IO, TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console

    from ..clock import Clock


def silence_stdout() -> None:
    """Point stdout at /dev/null after its reader went away, so the interpreter's last flush stays quiet."""
    with suppress(OSError, ValueError, AttributeError):  # no real file descriptor (a test's captured output)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def _console(stream: IO[str] | None, stderr: bool, environ: Mapping[str, str]) -> Console:
    from rich.console import Console

    # A terminal gets its own width, and so does any output when COLUMNS says how wide it is (`COLUMNS=80 xmas
    # status | less`); a pipe or log file otherwise gets wide lines rather than folded cells. Stored data
    # can hold anything: every string of it goes through display.safe() (markup, cells) or display.visible()
    # (markup=False), and no :emoji: code in a name is ever replaced.
    class _Console(Console):
        def on_broken_pipe(self) -> None:
            """The reader closed the pipe (`xmas preview X | head -1`): it has what it wanted. No message, exit 0
            (Rich's own answer is exit 1, which the README documents as "some emails failed")."""
            self.quiet = True
            silence_stdout()
            raise SystemExit(0)

    tty = (stream or (sys.stderr if stderr else sys.stdout)).isatty()
    width = None if tty or environ.get("COLUMNS", "").isdigit() else 200
    return _Console(
        file=stream,
        stderr=stderr,
        highlight=False,
        soft_wrap=True,
        emoji=False,
        width=width,
        _environ=dict(environ),
    )


@dataclass
class Env:
    """The process as a command sees it. `stdout`/`stderr` None: whatever sys.stdout/sys.stderr are when printing."""

    environ: Mapping[str, str] = field(default_factory=lambda: os.environ)
    stdin: IO[bytes] | None = None
    stdout: IO[str] | None = None
    stderr: IO[str] | None = None

    @cached_property
    def out(self) -> Console:
        return _console(self.stdout, stderr=False, environ=self.environ)

    @cached_property
    def err(self) -> Console:
        return _console(self.stderr, stderr=True, environ=self.environ)

    def input(self) -> IO[bytes]:
        return self.stdin if self.stdin is not None else sys.stdin.buffer

    def clock(self, now: str | None) -> Clock:
        """`--now` first, then XMAS_NOW, then the system clock."""
        from ..clock import clock_from

        return clock_from(now, self.environ.get("XMAS_NOW"))


_current: Env | None = None


def current() -> Env:
    global _current
    if _current is None:
        _current = Env()
    return _current


@contextmanager
def use(env: Env) -> Iterator[Env]:
    """Run commands against `env` (tests: a fixed environment, captured output)."""
    global _current
    before, _current = _current, env
    try:
        yield env
    finally:
        _current = before
