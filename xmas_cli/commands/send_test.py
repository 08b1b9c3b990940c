"""`xmas send-test TEMPLATE --to ADDRESS`: send one test email through the configured mailer, recorded nowhere."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..errors import InvalidInput
from .common import AsJson, Config, Now, emit, handled, read_json_source, say, warn, with_engine


@handled
def send_test(
    template: Annotated[
        str, typer.Argument(help="Template id, e.g. christmas_email_2 (xmas templates list).", metavar="TEMPLATE")
    ],
    to: Annotated[
        str,
        typer.Option(
            "--to",
            help="The one address the test goes to; a contact's address only with --contact naming them.",
            metavar="ADDRESS",
        ),
    ],
    contact: Annotated[
        str | None,
        typer.Option(
            "--contact", help="Render with this stored contact's data, as xmas preview does.", metavar="EMAIL"
        ),
    ] = None,
    data: Annotated[
        Path | None,
        typer.Option("--data", help="Render with variables from this JSON file ('-': stdin).", metavar="FILE"),
    ] = None,
    config: Config = None,
    now: Now = None,
    as_json: AsJson = False,
) -> None:
    """Send one email of a template to ADDRESS through the campaign's mailer, rendered as xmas preview renders it
    (sample data, --contact or --data), subject prefixed [TEST]. Recorded nowhere: no row, no contact, no report."""
    from ..engine.send_test import check_options
    from ..engine.send_test import send_test as run_send_test

    check_options(to, contact, data is not None)  # before the file is read
    variables = read_json_source(str(data), "--data") if data else None
    if variables is not None and not isinstance(variables, dict):
        raise InvalidInput("--data: the file must hold one JSON object", 'write {"first_name": ..., ...}')
    result = with_engine(config, now, lambda e: run_send_test(e, template, to, contact, variables))
    for note in result.notes:
        warn(note)
    if as_json:
        emit(result.to_json())
        return
    say(f"sent test of {result.template_id} to {result.to} (message id {result.message_id or 'unknown'})")


def register(app: typer.Typer) -> None:
    app.command("send-test")(send_test)
