"""The command line: one module per command group, registered here in the order `xmas --help` lists them.

Each command imports the engine, the stores, Rich and Jinja when it runs, so `xmas --help` and an idle tick load
only what they use.

May import: everything below it (the command line is the top): core, stores, mailers, engine, tick, inbound,
report, starter, backends, web, config, errors, clock, lock, perms, defaults.
"""

from __future__ import annotations

from typing import Annotated

import typer

from . import (
    broadcast,
    control,
    db,
    enroll,
    event,
    imports,
    notion,
    operators,
    plan,
    preview,
    report,
    send_test,
    setup,
    store,
    templates,
    tick,
)

HELP_OPTIONS = {"help_option_names": ["-h", "--help"]}  # every command inherits it from the app's context

app = typer.Typer(
    help="Run the Christmas email campaign: enroll contacts, send due emails from cron, preview templates.",
    no_args_is_help=True,
    context_settings=HELP_OPTIONS,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,  # help text as written: [env: XMAS_CONFIG] stays visible, flags show no metavar
)


def version() -> str:
    """The installed distribution's version (package metadata), so it cannot drift from pyproject.toml."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    try:
        return installed("xmas-cli")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "(not installed: no version)"


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"xmas {version()}")
        raise typer.Exit(0)


@app.callback()
def _app(
    _version: Annotated[
        bool,
        typer.Option("--version", help="Print xmas's version and exit.", callback=_print_version, is_eager=True),
    ] = False,
) -> None:
    """xmas's own options (the app's help is the Typer's, above)."""


for module in (
    enroll,
    event,
    imports,
    tick,
    preview,
    send_test,
    templates,
    operators,
    plan,
    broadcast,
    control,
    report,
    setup,
    notion,
    db,
    store,
):
    module.register(app)


def main() -> None:
    app()
