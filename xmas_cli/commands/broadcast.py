"""`xmas broadcast TEMPLATE (--where EXPR | --all)`: one email to a selection of contacts, sent by the tick."""

from __future__ import annotations

from typing import Annotated

import typer

from .common import AsJson, Bars, Config, Now, emit, handled, say, with_engine
from .env import current


@handled
def broadcast(
    template: Annotated[str, typer.Argument(help="The template to send (as in the store).", metavar="TEMPLATE")],
    where: Annotated[
        str | None,
        typer.Option(
            "--where",
            help="Whom: e.g. 'segment = CRITICAL and not booked' (docs/changing-a-campaign.md lists the tests).",
            metavar="EXPR",
        ),
    ] = None,
    everyone: Annotated[
        bool, typer.Option("--all", help="Every contact (consent and unsubscribes still apply).")
    ] = False,
    at: Annotated[
        str | None, typer.Option("--at", help="When it is due (ISO 8601 with offset) [default: now].", metavar="TIME")
    ] = None,
    name: Annotated[
        str | None,
        typer.Option(
            "--name", help="Its name in the tracker (the same name: nobody twice) [default: TEMPLATE].", metavar="NAME"
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="List who would get it and why not; write nothing.")
    ] = False,
    config: Config = None,
    now: Now = None,
    as_json: AsJson = False,
) -> None:
    """Send one email to the contacts --where selects (or --all), as tracker rows the tick sends under the rules
    of every sequence: consent, send windows, the frequency cap, unsubscribes. Running it again reaches nobody twice."""
    from ..clock import parse_instant
    from ..engine.broadcast import broadcast as run_broadcast

    when = parse_instant(at, "--at") if at is not None else None
    env = current()
    bars = Bars()

    def progress(done: int, total: int) -> None:
        if not as_json and total >= 50 and env.err.is_terminal:
            bars.update("writing", done, total)

    try:
        result = with_engine(
            config,
            now,
            lambda e: run_broadcast(
                e, template, where=where, everyone=everyone, at=when, name=name, dry_run=dry_run, progress=progress
            ),
        )
    finally:
        bars.stop()
    if as_json:
        emit(result.to_json())
        return
    for target in result.targets:
        if target.status == "not selected" and not dry_run:
            continue
        label = {"scheduled": "would get it" if dry_run else "scheduled", "already": "not again", "skipped": "skipped"}
        reason = f" ({target.reason})" if target.reason else ""
        say(f"{label.get(target.status, target.status)}: {target.email}{reason}")
    say(result.summary())


def register(app: typer.Typer) -> None:
    app.command("broadcast")(broadcast)
