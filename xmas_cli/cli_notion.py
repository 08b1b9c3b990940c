"""Notion commands: `xmas notion setup|check` and `xmas templates push|pull`. Parse, call, print.

No `from __future__ import annotations` here: Typer reads the commands' annotations at runtime, and `Config` and
`AsJson` are imported inside `register` (cli.py imports this module at its end).
"""

import os
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

notion_app = typer.Typer(
    help="Create and check the three Notion databases (Contacts, Email Templates, Sequence Tracker).",
    no_args_is_help=True,
)


def register(app: typer.Typer, templates_app: typer.Typer) -> None:
    """Add `notion setup`, `notion check`, `templates push` and `templates pull` to the CLI (once)."""
    if any(group.name == "notion" for group in app.registered_groups):
        return
    from .backends import config_path
    from .campaign import load_campaign
    from .cli import AsJson, Config, emit, err, handled, out
    from .stores import notion_admin as admin
    from .stores.notion import NotionStore, notion_settings
    from .stores.notion_schema import TITLES

    def open_store(config: str | None) -> tuple[Any, NotionStore]:
        campaign = load_campaign(config_path(config, os.environ), dict(os.environ))
        return campaign, NotionStore(campaign, notion_settings(campaign, os.environ))

    @notion_app.command("setup")
    @handled
    def setup(
        parent: Annotated[
            str, typer.Option("--parent", help="The Notion page to create the databases in: its link or its id.")
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
        result = admin.setup(config_path(config, os.environ), parent, os.environ, force=force)
        if as_json:
            emit(result.to_json())
            return
        for warning in result.warnings:
            err.print(f"xmas: warning: {warning}", markup=False)
        for kind, database in result.databases.items():
            out.print(f"created {TITLES[kind]}: {database}", markup=False)
        out.print(f"wrote the ids into [notion] of {result.config}; next: xmas templates push", markup=False)

    @notion_app.command("check")
    @handled
    def check(config: Config = None, as_json: AsJson = False) -> None:
        """Compare the live Notion schemas with campaign.toml; name every missing or mistyped property (exit 3)."""
        _, store = open_store(config)
        try:
            report = admin.check(store)
        finally:
            store.close()
        if as_json:
            emit(report.to_json())
            return
        for db in report.databases:
            out.print(f"{TITLES[db.kind]} ({db.database_id}): ok", markup=False)
        out.print("the Notion databases match campaign.toml", markup=False)

    def sync(config: str | None, as_json: bool, action: Callable[[NotionStore, Path], admin.SyncReport]) -> None:
        campaign, store = open_store(config)
        try:
            report = action(store, campaign.path(campaign.campaign.templates_dir))
        finally:
            store.close()
        if as_json:
            emit(report.to_json())
            return
        table = Table(title_justify="left")
        for name in ("template", "action", "detail"):
            table.add_column(name)
        for t in report.templates:
            if t.action != "unchanged":
                table.add_row(t.template, t.action, t.detail)
        if table.row_count:
            out.print(table)
        out.print(report.summary(), markup=False)

    @templates_app.command("push")
    @handled
    def templates_push(config: Config = None, as_json: AsJson = False) -> None:
        """Copy the templates folder into the Email Templates database (new ones Active; Status otherwise kept)."""
        sync(config, as_json, admin.push_templates)

    @templates_app.command("pull")
    @handled
    def templates_pull(config: Config = None, as_json: AsJson = False) -> None:
        """Write every Active template of the Email Templates database into the templates folder."""
        sync(config, as_json, admin.pull_templates)

    app.add_typer(notion_app, name="notion")
