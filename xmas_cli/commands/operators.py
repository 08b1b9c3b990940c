"""The operator's commands: `status`, `show`, `cancel`, `retry`, `unsubscribe`."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ..core.model import CONTACT_FIELDS
from ..errors import ExitCode, InvalidInput
from .common import AsJson, Config, Now, emit, handled, say, when, with_engine
from .env import current
from .tables import counts_table, events_table, rows_table

if TYPE_CHECKING:
    from ..stores.base import Batch

Email = Annotated[str, typer.Argument(help="The contact's email address.", metavar="EMAIL")]


@handled
def status(config: Config = None, now: Now = None, as_json: AsJson = False) -> None:
    """Counts by sequence and state, the next email due, and every failure. Exit 1 when there are problems."""
    from .. import engine as core
    from ..clock import iso
    from ..core.model import State
    from ..inbound.delivery_queue import WAIT_FOR_ID, backlog

    report, deliveries = with_engine(config, now, lambda e: (core.status(e), backlog(e)))
    if as_json:
        emit({**report.to_json(), "deliveries": deliveries.to_json()})
    else:
        states = [s.value for s in State]
        current().out.print(counts_table(report.counts, states, title=f"{report.store} at {iso(report.now)}"))
        for pause in report.pauses:
            say(f"PAUSED: {pause.describe()} (xmas resume)")
        nxt = report.next_due
        say(f"next due: {when(nxt.due)} {nxt.email} {nxt.sequence} #{nxt.step}" if nxt else "next due: nothing")
        if report.overdue:
            say(f"overdue now: {report.overdue} (run xmas tick)")
        for batch in report.in_flight:
            say(in_flight_line(batch, report.now))
        if deliveries.waiting:
            say(
                f"delivery events waiting for their email's id: {deliveries.waiting} (the oldest received "
                f"{iso(deliveries.oldest)}; each is applied once its row records the id, or given up after "
                f"{int(WAIT_FOR_ID.total_seconds() // 3600)} h)"
            )
        if deliveries.unmatched:
            say(
                f"delivery events given up in the last 7 days: {deliveries.unmatched} (no row had their email's id "
                "after a day: check the provider's log for those emails)"
            )
        for entry in report.unfinished:
            error = f" (last try: {entry.last_error})" if entry.last_error else ""
            say(
                f"enrollment interrupted: {entry.email} in {entry.sequence} at {iso(entry.at)}, not all of it "
                f"written{error}: {entry.to_json()['fix']}"
            )
        if report.problems:
            current().out.print(rows_table(report.problems, "problems", with_email=True))
    if not report.healthy:
        raise typer.Exit(int(ExitCode.FAILURES))


def in_flight_line(batch: Batch, now: datetime) -> str:
    """One open batch of the journal, in words: who is sending it, or when the next tick sends it again."""
    from ..clock import iso

    line = f"in flight: {len(batch.row_ids)} email(s) recorded at {iso(batch.opened_at)}"
    if batch.owner and batch.lease_until and batch.lease_until > now:
        return f"{line}, being sent by {batch.owner} (lease until {iso(batch.lease_until)})"
    if batch.retry_at and batch.retry_at > now:
        return f"{line}, sent again at {iso(batch.retry_at)} after {batch.attempts} attempt(s): {batch.last_error}"
    return f"{line}, outcome unknown: the next tick sends it again under its key"


@handled
def show(email: Email, config: Config = None, as_json: AsJson = False) -> None:
    """One contact's data, consent, events and timeline."""
    from .. import engine as core
    from ..core.consent import on_file
    from .markup import safe

    timeline = with_engine(config, None, lambda e: core.show(e, email))
    if as_json:
        emit(timeline.to_json())
        return
    c = timeline.contact
    out = current().out
    out.print(
        f"[bold]{safe(c.email)}[/bold] {safe(c.first_name)} · segment {safe(c.segment or '—')}"
        + (f" · [red]suppressed: {safe(c.suppressed_reason)}[/red]" if c.suppressed else "")
    )
    consent = on_file(c)
    say(f"consent: {consent.describe() if consent else 'none on record'}")
    data = contact_data(c.fields)
    say("data:" if data else "data: none on record")
    for name, value in data:
        say(f"  {name:<{DATA_WIDTH}} {value}")
    if timeline.events:
        lines = [
            (e.at, e.name, e.key, ", ".join(f"{k}={v}" for k, v in sorted(e.data.items()))) for e in timeline.events
        ]
        out.print(events_table(lines, title="events"))
    out.print(rows_table(timeline.rows, "timeline"))


DATA_WIDTH = max(len(name) for name in CONTACT_FIELDS)


def contact_data(fields: dict[str, Any]) -> list[tuple[str, str]]:
    """The contact's stored data as (field, value) lines: the business and assessment fields in the payloads'
    order, then any other field by name; the first name is already in the heading."""
    order = {name: i for i, name in enumerate(CONTACT_FIELDS)}
    names = sorted((n for n in fields if n != "first_name"), key=lambda n: (order.get(n, len(order)), n))
    return [(name, "—" if fields[name] is None else str(fields[name])) for name in names]


@handled
def cancel(
    email: Email,
    sequence: Annotated[
        str | None, typer.Option(help="Only this sequence's pending emails.", metavar="SEQUENCE")
    ] = None,
    config: Config = None,
    as_json: AsJson = False,
) -> None:
    """Cancel a contact's pending emails (all, or one sequence's)."""
    from .. import engine as core

    result = with_engine(config, None, lambda e: core.cancel(e, email, sequence))
    if as_json:
        emit(result.to_json())
    else:
        say(f"{result.email}: cancelled {len(result.rows)} pending email(s)")


@handled
def retry(
    email: Email,
    sequence: Annotated[
        str | None, typer.Option(help="Only this sequence's failed emails.", metavar="SEQUENCE")
    ] = None,
    config: Config = None,
    now: Now = None,
    as_json: AsJson = False,
) -> None:
    """Send a contact's Failed emails again on the next tick (after fixing the template or the data)."""
    from .. import engine as core

    result = with_engine(config, now, lambda e: core.retry(e, email, sequence))
    if as_json:
        emit(result.to_json())
    else:
        say(f"{result.email}: {len(result.rows)} failed email(s) scheduled again")


@handled
def unsubscribe(
    email: Email,
    channel: Annotated[
        str,
        typer.Option(
            help="How the contact asked: operator, or reply (they answered an email asking to stop).",
            metavar="CHANNEL",
        ),
    ] = "operator",
    config: Config = None,
    now: Now = None,
    as_json: AsJson = False,
) -> None:
    """Stop all email to a contact, now and for any later enrollment."""
    from .. import engine as core

    if channel not in ("operator", "reply"):
        raise InvalidInput(f"--channel: {channel!r} is not a channel", "use operator or reply")
    result = with_engine(config, now, lambda e: core.unsubscribe(e, email, f"unsubscribed ({channel})"))
    if as_json:
        emit(result.to_json())
    else:
        say(f"{result.email}: unsubscribed; cancelled {len(result.rows)} pending email(s)")


def register(app: typer.Typer) -> None:
    for command in (status, show, cancel, retry, unsubscribe):
        app.command(command.__name__)(command)
