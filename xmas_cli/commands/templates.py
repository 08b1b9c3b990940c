"""`xmas templates list|check|push|pull`: the email templates, wherever the store keeps them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from ..errors import ExitCode
from .common import AsJson, Config, Now, add_row, emit, handled, say, table, with_engine
from .env import current
from .tables import fitted, keep_whole

if TYPE_CHECKING:
    from rich.table import Table

    from ..stores.notion import NotionStore
    from ..stores.notion_admin import SyncReport

templates_app = typer.Typer(
    help="List, check, push and pull the email templates.", no_args_is_help=True, rich_markup_mode=None
)


@templates_app.command("list")
@handled
def templates_list(config: Config = None, as_json: AsJson = False) -> None:
    """Every template: which steps send it, whether it is Active, its subject as written and where it lives."""
    from ..engine.preview import list_templates
    from ..errors import JSON_VERSION

    listed = with_engine(config, None, list_templates)
    if as_json:
        rows = [
            {
                "template": t.template_id,
                "used_by": t.used_by,
                "active": t.active,
                "subject": t.subject,
                "origin": t.origin,
            }
            for t in listed
        ]
        emit({"version": JSON_VERSION, "templates": rows})
        return

    def build(columns: tuple[str, ...]) -> Table:
        """The templates; narrow, without where each lives (a path as long as the console) and ids kept whole."""
        shown = table(*columns)
        for t in listed:
            cells = [t.template_id, ", ".join(t.used_by) or "(unused)", "yes" if t.active else "no", t.subject]
            add_row(shown, *cells, *([t.origin] if "origin" in columns else []))
        keep_whole(shown, "template")
        return shown

    columns = ("template", "used by", "active", "subject")
    current().out.print(fitted(build((*columns, "origin")), lambda: build(columns)))


@templates_app.command("check")
@handled
def templates_check(config: Config = None, now: Now = None, as_json: AsJson = False) -> None:
    """Render every template with sample data; fail on a missing template, a lost unsubscribe link or any error."""
    from ..engine.preview import check_templates
    from .markup import safe

    report = with_engine(config, now, check_templates)
    if as_json:
        emit(report.to_json())
    else:
        shown = table("template", "used by", "result")
        for r in report.results:
            result = f"[green]ok[/green] {safe(r.subject)}" if r.ok else f"[red]{safe(r.problem)}[/red]"
            shown.add_row(safe(r.template_id), safe(", ".join(r.used_by) or "(unused)"), result)
        current().out.print(shown)
        bad = sum(1 for r in report.results if not r.ok)
        say(f"{len(report.results)} templates, {bad} with problems")
    if not report.ok:
        raise typer.Exit(int(ExitCode.FAILURES))


def _sync(config: str | None, as_json: bool, action: Callable[[NotionStore, Path], SyncReport]) -> None:
    from .notion import open_notion

    campaign, store = open_notion(config)
    try:
        report = action(store, campaign.path(campaign.campaign.templates_dir))
    finally:
        store.close()
    if as_json:
        emit(report.to_json())
        return
    shown = table("template", "action", "detail")
    for t in report.templates:
        if t.action != "unchanged":
            add_row(shown, t.template, t.action, t.detail)
    if shown.row_count:
        current().out.print(shown)
    say(report.summary())


@templates_app.command("push")
@handled
def templates_push(config: Config = None, as_json: AsJson = False) -> None:
    """Copy the templates folder into Notion's Email Templates database (new ones Active; Status otherwise kept)."""
    from ..stores.notion_admin import push_templates

    _sync(config, as_json, push_templates)


@templates_app.command("pull")
@handled
def templates_pull(config: Config = None, as_json: AsJson = False) -> None:
    """Write every Active template of Notion's Email Templates database into the templates folder."""
    from ..stores.notion_admin import pull_templates

    _sync(config, as_json, pull_templates)


def register(app: typer.Typer) -> None:
    app.add_typer(templates_app, name="templates")
