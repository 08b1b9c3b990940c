"""`xmas import FILE.csv --sequence S`: enroll the lines of a spreadsheet, all valid or none."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .common import AsJson, Bars, Config, Now, emit, handled, say, with_engine
from .env import current


@handled
def import_csv(
    file: Annotated[
        Path, typer.Argument(help="A CSV file (UTF-8) whose first line names the columns.", metavar="FILE")
    ],
    sequence: Annotated[str, typer.Option("--sequence", help="The sequence to enroll every line in.", metavar="NAME")],
    maps: Annotated[
        list[str] | None,
        typer.Option(
            "--map",
            help="COLUMN=FIELD: the payload field a column gives (--map 'E-mail=email'); COLUMN= drops it. Repeatable.",
            metavar="COLUMN=FIELD",
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Check every line and say what would be enrolled; write nothing.")
    ] = False,
    config: Config = None,
    now: Now = None,
    as_json: AsJson = False,
) -> None:
    """Enroll every line of a CSV file in a sequence. Every line is checked first, as an enrollment is: one bad
    line (reported with its line number and field) and nothing is written. The same file again creates nothing new."""
    from ..engine.csv_import import import_csv as run_import

    env = current()
    bars = Bars()

    def progress(done: int, total: int) -> None:
        if not as_json and env.err.is_terminal:
            bars.update("enrolling", done, total)

    try:
        result = with_engine(
            config, now, lambda e: run_import(e, file, sequence, maps or (), dry_run=dry_run, progress=progress)
        )
    finally:
        bars.stop()
    if as_json:
        emit(result.to_json())
        return
    if result.ignored_columns:
        say(f"columns left out (no payload field): {', '.join(result.ignored_columns)}")
    for line in result.lines:
        if line.status == "duplicate":
            say(f"line {line.line}: {line.email}: the same enrollment as line {line.duplicate_of}, skipped")
    say(result.summary())


def register(app: typer.Typer) -> None:
    app.command("import")(import_csv)
