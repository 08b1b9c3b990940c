"""The command line: one module per command group, registered here in the order `xmas --help` lists them.

Each command imports the engine, the stores, Rich and Jinja when it runs, so `xmas --help` and an idle tick load
only what they use.

May import: everything below it (the command line is the top): core, stores, mailers, engine, tick, inbound,
report, starter, backends, web, config, errors, clock, lock, perms, defaults.
"""

from __future__ import annotations

import typer

from . import db, enroll, event, notion, operators, preview, report, send_test, setup, store, templates, tick

app = typer.Typer(
    help="Run the Christmas email campaign: enroll contacts, send due emails from cron, preview templates.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,  # help text as written: [env: XMAS_CONFIG] stays visible, flags show no metavar
)

for module in (enroll, event, tick, preview, send_test, templates, operators, report, setup, notion, db, store):
    module.register(app)


def main() -> None:
    app()
