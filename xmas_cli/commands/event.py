"""`xmas event NAME`: record what a contact did (booked a call, canceled it, replied) and apply it."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from .common import AsJson, Config, Now, emit, handled, print_cancelled, say, with_engine


@handled
def event(
    name: Annotated[str, typer.Argument(help="An event of campaign.toml: booked, call-canceled, replied.")],
    email: Annotated[str, typer.Option("--email", help="The contact's email address.", metavar="ADDRESS")],
    at: Annotated[
        str | None, typer.Option("--at", help="When it happened (ISO 8601 with offset) [default: now].", metavar="TIME")
    ] = None,
    data: Annotated[
        str | None,
        typer.Option("--data", help='Details as a JSON object, e.g. \'{"calendly_event_id": "..."}\'.', metavar="JSON"),
    ] = None,
    key: Annotated[
        str | None,
        typer.Option(
            "--key", help="Its identity: the same key again changes nothing [default: NAME@TIME].", metavar="KEY"
        ),
    ] = None,
    config: Config = None,
    now: Now = None,
    as_json: AsJson = False,
) -> None:
    """Record what a contact did (booked a call, canceled it, replied) and apply it: exit rules, booking count."""
    from ..clock import iso
    from ..core import jsonin
    from ..inbound.events import record_from_request

    raw: dict[str, Any] = {"email": email, "at": at, "key": key}
    if data is not None:
        raw["data"] = jsonin.loads(data.encode("utf-8", "surrogateescape"), field="--data", what="--data")
    given = {k: v for k, v in raw.items() if v is not None}
    result = with_engine(config, now, lambda e: record_from_request(e, name, given))
    if as_json:
        emit(result.to_json())
        return
    e = result.event
    if not result.recorded:
        say(f"{e.email}: {e.name} at {iso(e.at)} was recorded before ({e.key}): nothing changed")
        return
    say(f"{e.email}: {e.name} at {iso(e.at)} recorded ({e.key})")
    print_cancelled(result.cancelled)


def register(app: typer.Typer) -> None:
    app.command("event")(event)
