"""What every command shares: the --config/--now/--json options, error rendering, the engine's lifetime, tables.

Imports stay light at module level (Typer and the standard library): each command imports the engine, Rich and
whatever else it needs when it runs.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Annotated, Any, ParamSpec, TypeVar

import typer

from ..errors import InvalidInput, XmasError, error_json
from .env import current, silence_stdout

if TYPE_CHECKING:
    from rich.table import Table

    from ..core.model import ScheduledEmail
    from ..engine import Engine

P = ParamSpec("P")
R = TypeVar("R")

Config = Annotated[
    str | None,
    typer.Option(
        "--config",
        "-c",
        help="The campaign.toml to use [env: XMAS_CONFIG; default: ./campaign.toml].",
        show_default=False,
        metavar="FILE",
    ),
]
Now = Annotated[
    str | None,
    typer.Option("--now", help="Pretend it is this ISO 8601 time [env: XMAS_NOW].", metavar="TIME"),
]
AsJson = Annotated[bool, typer.Option("--json", help="Print a JSON document for programs instead of tables.")]


def handled(fn: Callable[P, R]) -> Callable[P, R]:
    """Render the project's errors once: `xmas: error: <what> — <fix>` and the documented exit code. A closed
    pipe ends the command quietly, exit 0: the reader has what it wanted."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        env = current()
        try:
            return fn(*args, **kwargs)
        except XmasError as exc:
            if env.environ.get("XMAS_DEBUG"):
                raise
            from ..core.display import visible

            if kwargs.get("as_json"):
                typer.echo(json.dumps(error_json(exc), indent=2))
            env.err.print(f"xmas: error: {visible(exc, multiline=True)}", markup=False)
            if isinstance(exc, InvalidInput):
                for name, problem in exc.problems:
                    env.err.print(f"  {visible(name)}: {visible(problem)}", markup=False)
            raise typer.Exit(int(exc.exit_code)) from None
        except BrokenPipeError:  # typer.echo into a closed pipe (`xmas status --json | head -1`)
            silence_stdout()
            raise typer.Exit(0) from None

    return wrapper


def require_secret() -> None:
    """Refuse to start a command whose work signs unsubscribe links (tick's emails, the rows enroll schedules for
    it, serve's unsubscribe page) when XMAS_SECRET is missing or too short: said at once, exit 3, not first when an
    email falls due."""
    from ..core.tokens import check_secret

    check_secret(current().environ.get("XMAS_SECRET") or None)


def with_engine(config: str | None, now: str | None, action: Callable[[Engine], R], needs_secret: bool = False) -> R:
    """Open the engine campaign.toml describes, run one engine call on it, and close it. `needs_secret`: check
    XMAS_SECRET first, before anything is opened or written."""
    from ..backends import engine_from_config

    if needs_secret:
        require_secret()
    engine = engine_from_config(config, now, current().environ)
    try:
        return action(engine)
    finally:
        engine.close()


def emit(data: dict[str, Any]) -> None:
    typer.echo(json.dumps(data, indent=2, ensure_ascii=False))


def say(line: object) -> None:
    """One plain line to stdout, control characters made visible, never read as markup (and no Rich to load)."""
    from ..core.display import visible

    env = current()
    if env.stdout is not None:
        print(visible(line), file=env.stdout)
    else:
        typer.echo(visible(line))


def warn(line: object) -> None:
    from ..core.display import visible

    env = current()
    if env.stderr is not None:
        print(f"xmas: warning: {visible(line)}", file=env.stderr)
    else:
        typer.echo(f"xmas: warning: {visible(line)}", err=True)


def when(value: datetime | None) -> str:
    from ..clock import iso

    return iso(value) or "—"


def table(*columns: str, title: str = "") -> Table:
    from rich.table import Table

    from .markup import safe

    result = Table(title=safe(title) if title else None, title_justify="left")
    for name in columns:
        result.add_column(name, overflow="fold")  # a cell too long for its column wraps: never cut to "…"
    return result


def add_row(into: Table, *cells: object) -> None:
    """A row of stored data: every cell escaped (markup) and made visible (control characters)."""
    from .markup import safe

    into.add_row(*(safe(c) for c in cells))


def print_cancelled(rows: list[ScheduledEmail]) -> None:
    """One line per reason the rows were cancelled: an exit rule, an event ("booked at …"), a newer enrollment."""
    by_reason: dict[str, list[ScheduledEmail]] = {}
    for row in rows:
        by_reason.setdefault("exit rule" if (row.note or "").startswith("exit rule") else str(row.note), []).append(row)
    for reason, group in by_reason.items():
        sequences = ", ".join(sorted({r.sequence for r in group}))
        say(f"{reason}: cancelled {len(group)} pending email(s) in {sequences}")


def read_json_source(source: str, option: str) -> Any:
    """A JSON file, or stdin for '-', through the same bounded reader as the web's request bodies."""
    from ..core import jsonin

    return jsonin.loads(read_source(source, option, current().stdin), field=option, what=option)


class Bars:
    """Transient progress bars on stderr (gone when they stop), one per task, started on the first update: for a
    long command on a terminal (Rich is loaded only then)."""

    def __init__(self) -> None:
        self._progress: Any = None
        self._tasks: dict[str, Any] = {}

    def update(self, task: str, done: int, total: int) -> None:
        if self._progress is None:
            from rich.progress import Progress

            self._progress = Progress(console=current().err, transient=True)
            self._progress.start()
        if task not in self._tasks:
            self._tasks[task] = self._progress.add_task(task, total=total)
        self._progress.update(self._tasks[task], completed=done)

    def stop(self) -> None:
        if self._progress is not None:
            self._progress.stop()


def read_source(source: str, field: str, stdin: IO[bytes] | IO[str] | None = None) -> bytes:
    """The bytes of a file, or of `stdin` (default sys.stdin) for '-': at most jsonin.MAX_BODY + 1, so `loads` sees when
    there is more."""
    from ..core import jsonin

    try:
        if source == "-":
            stdin = stdin if stdin is not None else sys.stdin
            if stdin is None:
                raise InvalidInput(f"{field}: there is no standard input to read", "give a JSON file instead of -")
            binary = getattr(stdin, "buffer", None)
            data = binary.read(jsonin.MAX_BODY + 1) if binary is not None else stdin.read(jsonin.MAX_BODY + 1)
            return bytes(data) if not isinstance(data, str) else data.encode("utf-8", "surrogateescape")
        with Path(source).open("rb") as stream:
            return stream.read(jsonin.MAX_BODY + 1)
    except OSError as exc:
        raise InvalidInput(
            f"{field}: cannot read {source}: {exc.strerror or exc}", "give a readable JSON file or -"
        ) from None
