"""`xmas pause`, `xmas resume` (the whole campaign or one sequence) and `xmas contact ACTION EMAIL` (one person)."""

from __future__ import annotations

from typing import Annotated

import typer

from .common import AsJson, Config, Now, emit, handled, say, with_engine

Sequence = Annotated[
    str | None, typer.Option("--sequence", help="Only this sequence (default: the whole campaign).", metavar="SEQUENCE")
]
Email = Annotated[str, typer.Argument(help="The contact's email address.", metavar="EMAIL")]

contact_app = typer.Typer(
    help="Act on one contact: pause, resume, stop, enroll in the post-call maybe follow-up, mark booked.",
    no_args_is_help=True,
    rich_markup_mode=None,
)


@handled
def pause(
    sequence: Sequence = None,
    reason: Annotated[str | None, typer.Option("--reason", help="Why, for status and Notion.", metavar="TEXT")] = None,
    config: Config = None,
    now: Now = None,
    as_json: AsJson = False,
) -> None:
    """Stop sending (the whole campaign, or one sequence) until `xmas resume`; enrollments still write their rows."""
    from ..engine import control

    result = with_engine(config, now, lambda e: control.pause(e, sequence, reason))
    if as_json:
        emit(result.to_json())
    else:
        say(result.message())


@handled
def resume(
    sequence: Sequence = None,
    discard_missed: Annotated[
        bool,
        typer.Option(
            "--discard-missed", help="Skip the emails that came due while paused instead of sending them late."
        ),
    ] = False,
    config: Config = None,
    now: Now = None,
    as_json: AsJson = False,
) -> None:
    """Send again: what came due meanwhile goes out under the catch-up rules (one per enrollment per tick)."""
    from ..engine import control

    result = with_engine(config, now, lambda e: control.resume(e, sequence, discard_missed))
    if as_json:
        emit(result.to_json())
    else:
        say(result.message())


def _contact_command(action: str, doc: str) -> None:
    @handled
    def command(email: Email, config: Config = None, now: Now = None, as_json: AsJson = False) -> None:
        from ..inbound import actions

        result = with_engine(config, now, lambda e: actions.run(e, action, email))
        if as_json:
            emit(result.to_json())
        else:
            say(f"{result.email}: {actions.outcome(result)}")

    command.__doc__ = doc
    contact_app.command(action)(command)


for _action, _doc in (
    ("pause", "Pause the contact's scheduled emails (State Paused) until `xmas contact resume`."),
    ("resume", "Schedule the contact's paused emails again; what came due meanwhile goes out under catch-up."),
    ("stop", "Cancel every pending (scheduled or paused) email of the contact, without unsubscribing them."),
    ("maybe", "Enroll the contact in the post-call maybe follow-up, from their booking on record."),
    ("booked", "Record that the contact booked a call: what a booking cancels is cancelled."),
):
    _contact_command(_action, _doc)


def register(app: typer.Typer) -> None:
    app.command("pause")(pause)
    app.command("resume")(resume)
    app.add_typer(contact_app, name="contact")
