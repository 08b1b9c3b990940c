"""`xmas notion setup|check`: create the three Notion databases and compare them with campaign.toml."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from .common import AsJson, Config, emit, handled, say, warn
from .env import current

if TYPE_CHECKING:
    from ..core.campaign import Campaign
    from ..stores.notion import NotionStore

notion_app = typer.Typer(
    help="Create and check the three Notion databases (Contacts, Email Templates, Sequence Tracker).",
    no_args_is_help=True,
    rich_markup_mode=None,
)


def open_notion(config: str | None) -> tuple[Campaign, NotionStore]:
    from ..backends import config_path
    from ..config import load_campaign
    from ..stores.notion import NotionStore, notion_settings

    environ = current().environ
    campaign = load_campaign(config_path(config, environ), dict(environ))
    return campaign, NotionStore(campaign, notion_settings(campaign, environ))


@notion_app.command("setup")
@handled
def setup(
    parent: Annotated[
        str,
        typer.Option(
            "--parent", help="The Notion page to create the databases in: its link or its id.", metavar="PAGE"
        ),
    ],
    force: Annotated[
        bool, typer.Option("--force", help="Create new databases even if campaign.toml already names some.")
    ] = False,
    config: Config = None,
    as_json: AsJson = False,
) -> None:
    """Create the Contacts, Email Templates and Sequence Tracker databases and write their ids into campaign.toml.

    Share the parent page with your integration first (••• → Connections); the token comes from NOTION_TOKEN.
    """
    from ..backends import config_path
    from ..stores import notion_admin as admin
    from ..stores.notion_schema import TITLES

    environ = current().environ
    result = admin.setup(config_path(config, environ), parent, environ, force=force)
    if as_json:
        emit(result.to_json())
        return
    for warning in result.warnings:
        warn(warning)
    for kind, database in result.databases.items():
        say(f"created {TITLES[kind]}: {database}")
    say(f"created {len(result.views)} views: {', '.join(result.views)}")
    say(f"wrote the ids into [notion] of {result.config}; next: xmas templates push")


@notion_app.command("check")
@handled
def check(config: Config = None, as_json: AsJson = False) -> None:
    """Compare the live Notion schemas with campaign.toml; name every missing or mistyped property (exit 3)."""
    from ..stores import notion_admin as admin
    from ..stores.notion_schema import TITLES

    _, store = open_notion(config)
    try:
        report = admin.check(store)
    finally:
        store.close()
    if as_json:
        emit(report.to_json())
        return
    for db in report.databases:
        say(f"{TITLES[db.kind]} ({db.database_id}): ok")
    say("the Notion databases match campaign.toml")
    for view in report.missing_views:
        warn(f"{view}: this view is missing (renamed or deleted in Notion?): `xmas notion upgrade` makes it again")


@notion_app.command("upgrade")
@handled
def upgrade(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print what would be added; change nothing.")] = False,
    config: Config = None,
    as_json: AsJson = False,
) -> None:
    """Add what this release expects and the databases lack: properties, options, the control row, the views.

    Never deletes, renames or retypes anything; running it again changes nothing. Exit 3 if a property has the
    wrong type (named, with the fix).
    """
    from ..errors import ExitCode
    from ..stores.notion_upgrade import upgrade as run

    _, store = open_notion(config)
    try:
        report = run(store, dry_run=dry_run)
    finally:
        store.close()
    if as_json:
        emit(report.to_json())
    else:
        for step in report.steps:
            say(step)
        for problem in report.problems:
            warn(problem)
        verb = "would make" if dry_run else "made"
        say(f"{verb} {len(report.steps)} change(s)" if report.steps else "the databases are up to date")
    if report.problems:
        raise typer.Exit(int(ExitCode.CONFIG))


def register(app: typer.Typer) -> None:
    app.add_typer(notion_app, name="notion")
