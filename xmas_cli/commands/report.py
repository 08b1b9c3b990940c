"""`xmas report`: how the campaign is doing, per step, per broadcast and across the funnel (terminal, --json or
--html)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ..errors import InvalidInput
from .common import AsJson, Config, Now, add_row, emit, handled, say, table, with_engine
from .env import current
from .tables import fitted

if TYPE_CHECKING:
    from rich.table import Table

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


def _pct(fraction: float | None) -> str:
    return "—" if fraction is None else f"{fraction:.0%}"


def _counts_table(doc: dict[str, Any], title: str, first: str, lines: list[tuple[str, dict[str, Any]]]) -> Table:
    """A sequence's steps or the broadcasts, a line each (its label, and its counts and template): wide, with the
    template and bars; narrow (80 columns), the label and plain %."""
    from ..report.build import click_rate, open_rate

    def build(narrow: bool) -> Table:
        names = ("sent", "deliv.", "opened", "clicked", "bounced", "compl.", "unsub.")
        result = table(first, *([] if narrow else ["template"]), *names, title=title)
        rate = _pct if narrow else _bar
        for label, s in lines:
            counts = [str(s[k]) for k in ("sent", "delivered")]
            rates = [rate(open_rate(doc, s)), rate(click_rate(doc, s))]
            rest = [str(s[k]) for k in ("bounced", "complained", "unsubscribed")]
            add_row(result, label, *([] if narrow else [s["template"]]), *counts, *rates, *rest)
        return result

    return fitted(build(False), lambda: build(True))


def _funnel_table(doc: dict[str, Any]) -> Table:
    def build(narrow: bool) -> Table:
        result = table(
            "stage", "contacts", "of before" if narrow else "from the stage before", "median", title="funnel"
        )
        for stage in doc["funnel"]:
            hours, conversion = stage["median_hours"], stage["conversion"]
            shown = "" if conversion is None else (_pct(conversion) if narrow else _bar(conversion))
            add_row(
                result, stage["label"], str(stage["contacts"]), shown, f"{hours:.1f} h" if hours is not None else ""
            )
        return result

    return fitted(build(False), lambda: build(True))


def _print(doc: dict[str, Any]) -> None:
    out = current().out
    for seq in doc["sequences"]:
        if not seq["steps"]:
            continue  # a sequence xmas sends nothing in (e.g. signup): no empty table
        out.print(_counts_table(doc, seq["sequence"], "#", [(str(s["step"]), s) for s in seq["steps"]]))
        if doc.get("rates_note"):
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
    broadcasts = doc.get("broadcasts") or []
    if broadcasts:
        out.print(_counts_table(doc, "broadcasts", "broadcast", [(b["broadcast"], b) for b in broadcasts]))
        if doc.get("rates_note"):
            say(f"  opened, clicked: {doc['rates_note']}")
    out.print(_funnel_table(doc))
    period = f"since {doc['since']}" if doc["since"] else "all time"
    say(f"report of {doc['campaign']} at {doc['generated_at']}, {period}")


def register(app: typer.Typer) -> None:
    app.command("report")(report)
