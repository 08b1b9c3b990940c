"""`xmas preview TEMPLATE`: render one template locally, with sample, stored or file data."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..errors import InvalidInput
from ..perms import write_private
from .common import AsJson, Config, Now, emit, handled, read_json_source, say, with_engine
from .env import current


@handled
def preview(
    template: Annotated[
        str | None,
        typer.Argument(help="Template id, e.g. christmas_email_2 (xmas templates list); not needed with --row."),
    ] = None,
    contact: Annotated[
        str | None,
        typer.Option("--contact", help="Render with this contact's data (their own row, if any).", metavar="EMAIL"),
    ] = None,
    data: Annotated[
        Path | None, typer.Option("--data", help="Render with variables from this JSON file.", metavar="FILE")
    ] = None,
    row: Annotated[
        str | None,
        typer.Option(
            "--row", help="Show exactly what the tick sends for this scheduled email (id: xmas show).", metavar="ID"
        ),
    ] = None,
    html: Annotated[
        Path | None, typer.Option("--html", help="Write the HTML body to this file.", metavar="FILE")
    ] = None,
    config: Config = None,
    now: Now = None,
    as_json: AsJson = False,
) -> None:
    """Render a template locally: subject and text here, HTML to a file. Nothing is sent or recorded."""
    from ..core.display import visible
    from ..engine.preview import preview as run_preview
    from .markup import safe

    if sum(x is not None for x in (contact, data, row)) > 1:
        raise InvalidInput("more than one of --contact, --data and --row given", "use one of them")
    variables = read_json_source(str(data), "--data") if data else None
    if variables is not None and not isinstance(variables, dict):
        raise InvalidInput("--data: the file must hold one JSON object", 'write {"first_name": ..., ...}')
    result = with_engine(config, now, lambda e: run_preview(e, template, contact, variables, row))
    if html:
        try:
            write_private(html, result.rendered.html.encode("utf-8"))  # a contact's name, address and link: 0600
        except OSError as exc:
            what = f"--html: cannot write {html}: {exc.strerror}"
            raise InvalidInput(what, "name a file in a folder you can write") from None
    if as_json:
        emit(result.to_json())
        return
    out = current().out
    out.print(f"[bold]Subject:[/bold] {safe(result.rendered.subject)}")
    out.print(f"[dim]{safe(result.origin)} · {safe(result.data_source)}[/dim]")
    out.print(visible(result.rendered.text, multiline=True), markup=False)
    if html:
        say(f"HTML written to {html}")


def register(app: typer.Typer) -> None:
    app.command("preview")(preview)
