"""`xmas store copy`: everything the store holds, copied into another store (SQLite, Notion, PostgreSQL).

`--json` prints one document (version 1):

    {"version": 1, "ok": true, "dry_run": false, "source": "SQLite …/xmas.db", "target": "Notion",
     "kinds": {"contacts": {"in_source": 3, "would_copy": 3, "copied": 3, "already_there": 0, "conflicts": 0,
                            "skipped": 0, "at_target": 3},
               "templates": {…}, "emails": {…}, "events": {…}},
     "items": [{"kind": "emails", "key": "lead-nurture:ada@example.com#2", "action": "conflict", "detail": "…"}],
     "warnings": ["…"]}

`would_copy` is what the copy writes (a dry run: would write); `copied` what it wrote (0 in a dry run); `at_target`
how many of the source's records were read back at the target after copying (null in a dry run). An item's action
is conflict (at the target, different: left as it is), skipped (cannot be copied: detail says why), missing or
mismatch (read back after copying). `ok` is false when there is a conflict, a missing or a mismatched record.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ..errors import ExitCode
from .common import AsJson, Bars, Config, add_row, emit, handled, say, table, warn
from .env import current

if TYPE_CHECKING:
    from ..stores.copy import CopyReport

store_app = typer.Typer(help="Copy the store into another store.", no_args_is_help=True, rich_markup_mode=None)

ToConfig = Annotated[
    Path,
    typer.Option(
        "--to-config",
        help="The campaign.toml whose [store] is the store to copy into (SQLite, Notion or PostgreSQL).",
        metavar="FILE",
        show_default=False,
    ),
]
DryRun = Annotated[bool, typer.Option("--dry-run", help="Count what would be copied; write nothing anywhere.")]


@store_app.command("copy")
@handled
def store_copy(to_config: ToConfig, dry_run: DryRun = False, config: Config = None, as_json: AsJson = False) -> None:
    """Copy contacts, templates, scheduled emails and events into the store --to-config names, keeping every id,
    state, time, message id and key. What the target holds already is left alone, so copying twice copies nothing
    new; what it holds differently is listed as a conflict (exit 1). Both campaigns' ticks are locked out while it
    runs; tick only one of the two stores afterwards, or due emails go out from both."""
    from ..backends import config_path
    from ..backends.store_copy import copy_between

    env = current()
    bars = Bars()

    def progress(kind: str, done: int, total: int) -> None:
        """A bar per kind on a terminal; in a log, a line at each tenth of a big kind."""
        if env.err.is_terminal:
            bars.update(f"copying {kind}", done, total)
        elif total >= 1000 and done < total and done % (total // 10) == 0:
            env.err.print(f"xmas: copied {done} of {total} {kind}…", markup=False)

    try:
        report = copy_between(
            config_path(config, env.environ), to_config, env.environ, dry_run=dry_run, progress=progress
        )
    finally:
        bars.stop()
    if as_json:
        emit(report.to_json())
    else:
        _print(report)
    if not report.ok:
        raise typer.Exit(int(ExitCode.FAILURES))


def _print(report: CopyReport) -> None:
    out = current().out
    counts = table(
        "kind",
        "in source",
        "would copy",
        "copied",
        "already there",
        "conflicts",
        "skipped",
        "at target",
        title=f"{report.plan.source} → {report.plan.target}",
    )
    for kind, t in report.plan.tallies.items():
        at_target = "—" if report.at_target is None else report.at_target[kind]
        copied = report.copied[kind]
        add_row(counts, kind, t.in_source, t.would_copy, copied, t.already_there, t.conflicts, t.skipped, at_target)
    out.print(counts)
    if report.items:
        items = table("kind", "key", "action", "detail")
        for item in report.items:
            add_row(items, item.kind, item.key, item.action, item.detail)
        out.print(items)
    for line in report.plan.warnings:
        warn(line)
    if report.dry_run:
        say(f"dry run: {report.plan.writes} record(s) would be copied; nothing was written")
    elif report.ok:
        say(f"copied {sum(report.copied.values())} record(s); every record found at the source is at the target")
    else:
        say("the copy is not complete: see the conflicts, missing and mismatched records above")


def register(app: typer.Typer) -> None:
    app.add_typer(store_app, name="store")
