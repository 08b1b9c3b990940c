"""`xmas report`: how the campaign is doing, per step and across the funnel (terminal, --json or --html)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from ..errors import InvalidInput
from .common import AsJson, Config, Now, add_row, emit, handled, say, table, with_engine
from .env import current

BAR = 12  # characters of a full bar


def _since(text: str) -> datetime:
    """A day (2026-12-01: its start, UTC) or an ISO 8601 time with an offset."""
    from ..clock import parse_instant

    try:
        return datetime.combine(date.fromisoformat(text.strip()), datetime.min.time(), UTC)
    except ValueError:
        pass
    try:
        return parse_instant(text, "--since")
    except InvalidInput:
        raise InvalidInput(
            f"--since: {text!r} is not a day or a time", "write 2026-12-01 or 2026-12-01T10:00:00Z"
        ) from None


def _bar(fraction: float | None) -> str:
    if fraction is None:
        return "—"
    full = round(max(0.0, min(1.0, fraction)) * BAR)
    return f"{'█' * full}{'·' * (BAR - full)} {fraction:.0%}"


@handled
def report(
    since: Annotated[
        str | None,
        typer.Option("--since", help="Only emails sent (and stages reached) since this day or time.", metavar="DATE"),
    ] = None,
    sequence: Annotated[
        str | None, typer.Option("--sequence", help="Only this sequence's steps and sends.", metavar="SEQUENCE")
    ] = None,
    html: Annotated[
        Path | None,
        typer.Option(
            "--html",
            help="Write the report as one self-contained HTML page with charts (no script), readable by you only.",
            metavar="FILE",
        ),
    ] = None,
    config: Config = None,
    now: Now = None,
    as_json: AsJson = False,
) -> None:
    """Sent, delivered, opened, clicked, bounced, complained and unsubscribed per step; the funnel from lead
    nurture to paid with conversion rates; opens and clicks per subject variant."""
    from ..report.build import build_report

    start = _since(since) if since else None
    doc = with_engine(config, now, lambda e: build_report(e, start, sequence))
    if html:
        _write_html(doc, html)
    if as_json:
        emit(doc)
    elif html:
        say(f"xmas report: the HTML page is written to {html}")
    else:
        _print(doc)


def _write_html(doc: dict[str, Any], path: Path) -> None:
    """The page, in a file readable by its owner only (the folder is the user's choice, left as it is)."""
    from ..perms import write_private
    from ..report.html import render_html

    page = render_html(doc).encode("utf-8")
    try:
        write_private(path, page)
    except (FileNotFoundError, NotADirectoryError):
        raise InvalidInput(
            f"--html: folder {path.parent} does not exist", "create it, or name a file in another"
        ) from None
    except IsADirectoryError:
        raise InvalidInput(f"--html: {path} is a folder", "name a file, e.g. report.html") from None
    except PermissionError:
        raise InvalidInput(
            f"--html: {path} cannot be written (permission denied)", "name a file you may write"
        ) from None


def _print(doc: dict[str, Any]) -> None:
    from ..report.build import click_rate, open_rate

    out = current().out
    for seq in doc["sequences"]:
        if not seq["steps"]:
            continue  # a sequence xmas sends nothing in (e.g. signup): no empty table
        steps = table(
            "#",
            "template",
            "sent",
            "delivered",
            "opened",
            "clicked",
            "bounced",
            "compl.",
            "unsub.",
            title=f"{seq['sequence']}",
        )
        for s in seq["steps"]:
            add_row(
                steps,
                str(s["step"]),
                s["template"],
                str(s["sent"]),
                str(s["delivered"]),
                _bar(open_rate(doc, s)),
                _bar(click_rate(doc, s)),
                str(s["bounced"]),
                str(s["complained"]),
                str(s["unsubscribed"]),
            )
        out.print(steps)
        if doc.get("rates_note") and seq["steps"]:
            say(f"  opened, clicked: {doc['rates_note']}")
        for s in seq["steps"]:
            if len(s["variants"]) > 1:
                variants = table(
                    "variant",
                    "subject",
                    "sent",
                    "opened",
                    "clicked",
                    title=f"{seq['sequence']} #{s['step']}: subject variants",
                )
                for v in s["variants"]:
                    add_row(variants, v["variant"], v["subject"], v["sent"], v["opened"], v["clicked"])
                out.print(variants)
    funnel = table("stage", "contacts", "from the stage before", "median time", title="funnel")
    for stage in doc["funnel"]:
        hours = stage["median_hours"]
        add_row(
            funnel,
            stage["label"],
            str(stage["contacts"]),
            _bar(stage["conversion"]) if stage["conversion"] is not None else "",
            f"{hours:.1f} h" if hours is not None else "",
        )
    out.print(funnel)
    period = f"since {doc['since']}" if doc["since"] else "all time"
    say(f"report of {doc['campaign']} at {doc['generated_at']}, {period}")


def register(app: typer.Typer) -> None:
    app.command("report")(report)
