"""`xmas tick`: send every due email once and record each outcome. cron runs it every minute."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from ..errors import ExitCode
from .common import AsJson, Bars, Config, Now, emit, handled, say, warn, with_engine
from .env import current
from .tables import outcomes_table

if TYPE_CHECKING:
    from ..tick.report import TickReport


@handled
def tick(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what would go and why; send nothing.")] = False,
    limit: Annotated[int | None, typer.Option(min=1, help="Handle at most N due emails.", metavar="N")] = None,
    config: Config = None,
    now: Now = None,
    as_json: AsJson = False,
) -> None:
    """Send every due email once and record each outcome. Run it from cron every minute."""
    from ..engine.plan import drift_warning
    from ..tick.run import tick as run_tick
    from ..tick.signals import Abandoned, StopRequest, stop_on_signals

    env = current()
    bars = Bars()

    def progress(done: int, total: int) -> None:
        if not as_json and total >= 50 and env.out.is_terminal:
            bars.update("sending", done, total)

    stop = StopRequest()  # a SIGTERM while the store opens is kept for the tick, which then stops before sending
    try:
        with stop_on_signals(stop):
            report, drift = with_engine(
                config,
                now,
                lambda e: (
                    run_tick(e, dry_run=dry_run, limit=limit, progress=progress, stop=stop),
                    None if dry_run else drift_warning(e),
                ),
                needs_secret=True,
            )
    except Abandoned as signal_name:  # two signals before the tick began
        env.err.print(f"xmas: stopped by {signal_name} before the tick began: nothing was sent", markup=False)
        raise typer.Exit(int(ExitCode.STOPPED)) from None
    finally:
        bars.stop()
    if drift:
        warn(drift)
    if as_json:
        emit(report.to_json())
    else:
        _print(report, dry_run)
    if report.stopped:
        raise typer.Exit(int(ExitCode.STOPPED))
    if not report.ok:
        raise typer.Exit(int(ExitCode.FAILURES))


def _print(report: TickReport, dry_run: bool) -> None:
    shown = [o for o in report.outcomes if dry_run or o.action != "sent"]
    if shown:
        current().out.print(outcomes_table(shown))
    say(report.summary())


def register(app: typer.Typer) -> None:
    app.command("tick")(tick)
