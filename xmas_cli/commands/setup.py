"""Getting started: `xmas init` (a campaign folder to start from), `xmas demo` (the whole funnel on a simulated
clock), `xmas serve` (the website's routes over HTTP)."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Annotated

import typer

from .common import Config, Now, handled, require_secret, say
from .env import current
from .tables import rows_table

CRONTAB = "* * * * * cd {folder} && set -a && . ./.env && set +a && {xmas} tick >> tick.log 2>&1"


def running_xmas(argv0: str | None = None, executable: str | None = None) -> str:
    """The absolute path of the `xmas` running now, for lines that run without the shell's PATH (cron has only
    /usr/bin:/bin, so a bare `xmas` there exits 127): the script this process was started as (made absolute,
    symlinks kept, so a pipx link survives an upgrade), else the `xmas` beside this interpreter (the venv's
    bin), else the one on PATH."""
    import os
    import shutil
    import sys

    argv0 = sys.argv[0] if argv0 is None else argv0
    python = Path(sys.executable if executable is None else executable)
    started_as = Path(argv0)
    candidates = [started_as] if started_as.name in ("xmas", "xmas.exe") else []
    candidates += [python.parent / "xmas", python.parent / "xmas.exe"]
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return os.path.abspath(candidate)
    return shutil.which("xmas") or "xmas"


@handled
def init(
    folder: Annotated[Path, typer.Argument(help="The folder to write the campaign into.", metavar="[DIR]")] = Path(),
    force: Annotated[
        bool, typer.Option("--force", help="Replace the shipped files where they exist (other files are kept).")
    ] = False,
) -> None:
    """Write campaign.toml, templates/ and .env.example to start a campaign from, and say what to run next."""
    from ..starter.init import init_folder

    report = init_folder(folder, force)
    where = report.folder.resolve()
    say(
        f"wrote {len(report.written)} file(s) into {where}"
        + (f", replaced {len(report.replaced)}" if report.replaced else "")
    )
    say("next:")
    say(f"  cd {where} && cp .env.example .env && chmod 600 .env   # then set XMAS_SECRET in .env")
    say("  xmas templates check                     # every template renders")
    say("  xmas demo                                 # the whole funnel on a simulated clock, nothing sent")
    say("then send due emails every minute from cron (crontab -e):")
    say("  " + CRONTAB.format(folder=shlex.quote(str(where)), xmas=shlex.quote(running_xmas())))


@handled
def demo(
    folder: Annotated[
        Path, typer.Option("--dir", help="A new or empty folder for the demo's database and outbox.", metavar="DIR")
    ] = Path("xmas-demo"),
    config: Config = None,
    now: Now = None,
) -> None:
    """Enroll sample contacts in every sequence and run the whole campaign on a simulated clock. It uses
    ./campaign.toml when there is one (or --config), the campaign that ships with xmas otherwise."""
    from .. import defaults
    from ..backends import DEFAULT_CONFIG, config_path
    from ..clock import iso
    from ..core.model import State
    from ..starter.demo import run_demo

    env = current()
    source = config_path(config, env.environ)
    if config is None and not env.environ.get("XMAS_CONFIG") and not Path(DEFAULT_CONFIG).exists():
        source = defaults.CAMPAIGN
    report = run_demo(source, folder, env.clock(now).now())
    title = f"demo timeline: {iso(report.started)} → {iso(report.finished)}, {report.ticks} ticks"
    env.out.print(rows_table(report.rows, title, with_email=True))
    say(f"campaign: {source.resolve()}")
    for note in report.notes:
        say(f"note: {note}")
    sent = sum(1 for r in report.rows if r.state is State.SENT)
    say(f"{sent} emails sent; {report.eml_files} .eml files in {report.outbox.resolve()}")
    say(f"explore: xmas status --config {report.folder / 'campaign.toml'} --now {iso(report.finished)}")


@handled
def serve(
    host: Annotated[str, typer.Option(help="The address to listen on.", metavar="ADDRESS")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="The port to listen on (0: any free one).")] = 8080,
    config: Config = None,
) -> None:
    """Serve the website's routes (Kestra-compatible webhooks, /enroll, /events, /unsubscribe) over HTTP."""
    from ..web.server import serve as run_server

    require_secret()  # the unsubscribe page checks every link against it
    run_server(host, port, config)


def register(app: typer.Typer) -> None:
    for command in (init, demo, serve):
        app.command(command.__name__)(command)
