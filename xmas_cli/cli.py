"""The Typer layer: parse, call one engine function, render its result (Rich, or JSON with --json)."""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from . import engine as core
from . import jsonin
from .backends import config_path, engine_from_config
from .clock import iso
from .consent import on_file
from .display import safe, visible
from .errors import ExitCode, InvalidInput, XmasError, error_json
from .model import ScheduledEmail, State

app = typer.Typer(
    help="Run the Christmas email campaign: enroll contacts, send due emails from cron, preview templates.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
templates_app = typer.Typer(help="Check and list the email templates.", no_args_is_help=True)
app.add_typer(templates_app, name="templates")

# A terminal gets its own width; a pipe or log file gets wide lines rather than truncated cells. Stored data can
# hold anything: every string of it goes through safe() (markup, cells) or visible() (markup=False), and no
# :emoji: code in a name is ever replaced.
out = Console(highlight=False, soft_wrap=True, emoji=False, width=None if sys.stdout.isatty() else 200)
err = Console(stderr=True, highlight=False, soft_wrap=True, emoji=False, width=None if sys.stderr.isatty() else 200)

P = ParamSpec("P")
R = TypeVar("R")

Config = Annotated[
    str | None,
    typer.Option("--config", "-c", help="campaign.toml to use [env: XMAS_CONFIG].", show_default="./campaign.toml"),
]
Now = Annotated[str | None, typer.Option("--now", help="Pretend it is this ISO 8601 time [env: XMAS_NOW].")]
AsJson = Annotated[bool, typer.Option("--json", help="Print a JSON document for programs instead of tables.")]


def handled(fn: Callable[P, R]) -> Callable[P, R]:
    """Render the project's errors once: `xmas: error: <what> — <fix>` and the documented exit code."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except XmasError as exc:
            if os.environ.get("XMAS_DEBUG"):
                raise
            if kwargs.get("as_json"):
                typer.echo(json.dumps(error_json(exc), indent=2))
            err.print(f"xmas: error: {visible(exc, multiline=True)}", markup=False)
            if isinstance(exc, InvalidInput):
                for field, problem in exc.problems:
                    err.print(f"  {visible(field)}: {visible(problem)}", markup=False)
            raise typer.Exit(int(exc.exit_code)) from None

    return wrapper


def with_engine(config: str | None, now: str | None, action: Callable[[core.Engine], R]) -> R:
    """Open the engine campaign.toml describes, run one engine call on it, and close it."""
    engine = engine_from_config(config, now)
    try:
        return action(engine)
    finally:
        engine.close()


def emit(data: dict[str, Any]) -> None:
    typer.echo(json.dumps(data, indent=2, ensure_ascii=False))


def _when(value: datetime | None) -> str:
    return iso(value) or "—"


def _rows_table(rows: list[ScheduledEmail], title: str, with_email: bool = False) -> Table:
    table = Table(title=safe(title), title_justify="left")
    if with_email:
        table.add_column("contact")
    for name in ("sequence", "#", "template", "by", "due (UTC)", "state", "sent at", "note"):
        table.add_column(name)
    for r in rows:
        note = r.defect or r.last_error or r.note or ""
        cells = [
            r.sequence,
            str(r.step),
            r.template,
            r.sender.value,
            _when(r.due),
            r.state.value,
            _when(r.sent_at),
            note,
        ]
        table.add_row(*(safe(c) for c in [*([r.email] if with_email else []), *cells]))
    return table


# ------------------------------------------------------------------------------------------- enroll


def _read_payload(source: str, option: str = "--payload") -> Any:
    """A JSON file, or stdin for '-', through the same bounded reader as the web's request bodies."""
    return jsonin.loads(jsonin.read_source(source, option), field=option, what=option)


@app.command()
@handled
def enroll(
    sequence: Annotated[str, typer.Argument(help="signup, lead-nurture, assessment, noshow, postcall or onboarding.")],
    payload: Annotated[str | None, typer.Option("--payload", help="JSON payload file, or - for stdin.")] = None,
    email: Annotated[str | None, typer.Option(help="Contact's email address.")] = None,
    first_name: Annotated[str | None, typer.Option()] = None,
    business_name: Annotated[str | None, typer.Option()] = None,
    red_systems: Annotated[int | None, typer.Option(help="Broken systems, 0-8.")] = None,
    orange_systems: Annotated[int | None, typer.Option(help="Struggling systems, 0-8.")] = None,
    yellow_systems: Annotated[int | None, typer.Option(help="Functional systems, 0-8.")] = None,
    green_systems: Annotated[int | None, typer.Option(help="Optimized systems, 0-8.")] = None,
    weakest_system_1: Annotated[str | None, typer.Option("--weakest-system-1")] = None,
    weakest_system_2: Annotated[str | None, typer.Option("--weakest-system-2")] = None,
    strongest_system: Annotated[str | None, typer.Option()] = None,
    revenue_leak_total: Annotated[int | None, typer.Option(help="Estimated revenue leak, dollars.")] = None,
    overall_score: Annotated[int | None, typer.Option(help="Assessment score, 0-100.")] = None,
    email_1_sent_at: Annotated[
        str | None, typer.Option("--email-1-sent-at", help="When the website sent E1 (ISO 8601).")
    ] = None,
    email_1_status: Annotated[str | None, typer.Option("--email-1-status")] = None,
    calendly_event_id: Annotated[str | None, typer.Option()] = None,
    scheduled_time: Annotated[str | None, typer.Option(help="The missed call's time (ISO 8601).")] = None,
    call_date: Annotated[str | None, typer.Option(help="The sales call's time (ISO 8601).")] = None,
    objection: Annotated[str | None, typer.Option()] = None,
    interest_level: Annotated[str | None, typer.Option()] = None,
    payment_date: Annotated[str | None, typer.Option(help="When the client paid (ISO 8601).")] = None,
    payment_status: Annotated[str | None, typer.Option()] = None,
    portal_url: Annotated[str | None, typer.Option()] = None,
    diagnostic_call_date: Annotated[str | None, typer.Option(help="Kickoff call time (ISO 8601).")] = None,
    package_type: Annotated[str | None, typer.Option()] = None,
    timezone: Annotated[str | None, typer.Option(help="The contact's IANA time zone, e.g. Europe/Berlin.")] = None,
    config: Config = None,
    now: Now = None,
    as_json: AsJson = False,
) -> None:
    """Enroll a contact in a sequence: one row per email, with its due time. Idempotent."""
    fields = {
        k: v
        for k, v in locals().items()
        if k not in ("sequence", "payload", "config", "now", "as_json") and v is not None
    }
    raw: Any = _read_payload(payload) if payload else {}
    if isinstance(raw, dict):
        raw = {**raw, **fields}
    result = with_engine(config, now, lambda e: core.enroll(e, sequence, raw))
    if as_json:
        emit(result.to_json())
        return
    for one in (result, *result.also):
        _print_enrollment(one)


def _print_enrollment(result: core.EnrollResult) -> None:
    for warning in result.warnings:
        err.print(f"xmas: warning: {visible(warning)}", markup=False)
    verb = "enrolled" if result.created else "already enrolled (data refreshed, nothing rescheduled)"
    out.print(
        visible(
            f"{result.contact.email} {verb}: {result.key}"
            + (f" · segment {result.contact.segment}" if result.contact.segment else "")
        ),
        markup=False,
    )
    if result.rows:
        out.print(_rows_table(result.rows, f"{result.sequence}: anchor {iso(result.anchor)} ({result.anchor_source})"))
    _print_cancelled(result.cancelled)


def _print_cancelled(rows: list[ScheduledEmail]) -> None:
    """One line per reason the rows were cancelled: an exit rule, an event ("booked at …"), a newer enrollment."""
    by_reason: dict[str, list[ScheduledEmail]] = {}
    for row in rows:
        by_reason.setdefault("exit rule" if (row.note or "").startswith("exit rule") else str(row.note), []).append(row)
    for reason, group in by_reason.items():
        out.print(
            visible(
                f"{reason}: cancelled {len(group)} pending email(s) in {', '.join(sorted({r.sequence for r in group}))}"
            ),
            markup=False,
        )


# -------------------------------------------------------------------------------------------- event


@app.command()
@handled
def event(
    name: Annotated[str, typer.Argument(help="An event of campaign.toml: booked, call-canceled, replied.")],
    email: Annotated[str, typer.Option("--email", help="The contact's email address.")],
    at: Annotated[str | None, typer.Option("--at", help="When it happened (ISO 8601 with offset).")] = None,
    data: Annotated[
        str | None, typer.Option("--data", help='Details as a JSON object, e.g. \'{"calendly_event_id": "..."}\'.')
    ] = None,
    key: Annotated[
        str | None, typer.Option("--key", help="Its identity: the same key again changes nothing [default: NAME@TIME].")
    ] = None,
    config: Config = None,
    now: Now = None,
    as_json: AsJson = False,
) -> None:
    """Record what a contact did (booked a call, canceled it, replied) and apply it: exit rules, booking count."""
    from .events import record_from_request

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
        out.print(
            visible(f"{e.email}: {e.name} at {iso(e.at)} was recorded before ({e.key}): nothing changed"), markup=False
        )
        return
    out.print(visible(f"{e.email}: {e.name} at {iso(e.at)} recorded ({e.key})"), markup=False)
    _print_cancelled(result.cancelled)


# --------------------------------------------------------------------------------------------- tick


@app.command()
@handled
def tick(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what would go and why; send nothing.")] = False,
    limit: Annotated[int | None, typer.Option(min=1, help="Handle at most N due emails.")] = None,
    config: Config = None,
    now: Now = None,
    as_json: AsJson = False,
) -> None:
    """Send every due email once and record each outcome. Run it from cron every minute."""
    from rich.progress import Progress

    from .signals import Abandoned, StopRequest, stop_on_signals
    from .tick import tick as run_tick

    bar: Progress | None = None
    task: Any = None

    def progress(done: int, total: int) -> None:
        nonlocal bar, task
        if as_json or total < 50 or not out.is_terminal:
            return
        if bar is None:
            bar = Progress(console=err, transient=True)
            bar.start()
            task = bar.add_task("sending", total=total)
        bar.update(task, completed=done)

    stop = StopRequest()  # a SIGTERM while the store opens is kept for the tick, which then stops before sending
    try:
        with stop_on_signals(stop):
            report = with_engine(
                config, now, lambda e: run_tick(e, dry_run=dry_run, limit=limit, progress=progress, stop=stop)
            )
    except Abandoned as signal_name:  # two signals before the tick began
        err.print(f"xmas: stopped by {signal_name} before the tick began: nothing was sent", markup=False)
        raise typer.Exit(int(ExitCode.STOPPED)) from None
    finally:
        if bar is not None:
            bar.stop()
    if as_json:
        emit(report.to_json())
    else:
        if dry_run or any(o.action not in ("sent",) for o in report.outcomes):
            table = Table(title_justify="left")
            for name in ("action", "contact", "sequence", "#", "template", "why"):
                table.add_column(name)
            for o in report.outcomes:
                if dry_run or o.action != "sent":
                    table.add_row(
                        *(
                            safe(c)
                            for c in (o.action, o.row.email, o.row.sequence, o.row.step, o.row.template, o.detail)
                        )
                    )
            out.print(table)
        out.print(visible(report.summary()), markup=False)
    if report.stopped:
        raise typer.Exit(int(ExitCode.STOPPED))
    if not report.ok:
        raise typer.Exit(int(ExitCode.FAILURES))


# ------------------------------------------------------------------------------------------ preview


@app.command()
@handled
def preview(
    template: Annotated[str, typer.Argument(help="Template id, e.g. christmas_email_2.")],
    contact: Annotated[str | None, typer.Option("--contact", help="Render with this contact's stored data.")] = None,
    data: Annotated[Path | None, typer.Option("--data", help="Render with variables from this JSON file.")] = None,
    html: Annotated[Path | None, typer.Option("--html", help="Write the HTML body to this file.")] = None,
    config: Config = None,
    now: Now = None,
) -> None:
    """Render a template locally: subject and text here, HTML to a file."""
    from .preview import preview as run_preview

    if contact and data:
        raise InvalidInput("--contact and --data both given", "use one of them")
    variables = _read_payload(str(data), "--data") if data else None
    if variables is not None and not isinstance(variables, dict):
        raise InvalidInput("--data: the file must hold one JSON object", 'write {"first_name": ..., ...}')
    result = with_engine(config, now, lambda e: run_preview(e, template, contact, variables))
    out.print(f"[bold]Subject:[/bold] {safe(result.rendered.subject)}")
    out.print(f"[dim]{safe(result.origin)} · {safe(result.data_source)}[/dim]")
    out.print(visible(result.rendered.text, multiline=True), markup=False)
    if html:
        html.write_text(result.rendered.html, encoding="utf-8")
        out.print(visible(f"HTML written to {html}"), markup=False)


@templates_app.command("check")
@handled
def templates_check(config: Config = None, now: Now = None, as_json: AsJson = False) -> None:
    """Render every template with sample data; fail on a missing template or any error."""
    from .preview import check_templates

    report = with_engine(config, now, check_templates)
    if as_json:
        emit(report.to_json())
    else:
        table = Table(title_justify="left")
        for name in ("template", "used by", "result"):
            table.add_column(name)
        for r in report.results:
            result = f"[green]ok[/green] {safe(r.subject)}" if r.ok else f"[red]{safe(r.problem)}[/red]"
            table.add_row(safe(r.template_id), safe(", ".join(r.used_by) or "(unused)"), result)
        out.print(table)
        bad = sum(1 for r in report.results if not r.ok)
        out.print(f"{len(report.results)} templates, {bad} with problems", markup=False)
    if not report.ok:
        raise typer.Exit(int(ExitCode.FAILURES))


# ---------------------------------------------------------------------------------------- operators


@app.command()
@handled
def status(config: Config = None, now: Now = None, as_json: AsJson = False) -> None:
    """Counts by sequence and state, the next email due, and every failure. Exit 1 when there are problems."""
    report = with_engine(config, now, core.status)
    if as_json:
        emit(report.to_json())
    else:
        states = [s.value for s in State]
        table = Table(title=safe(f"{report.store} at {iso(report.now)}"), title_justify="left")
        table.add_column("sequence")
        for s in states:
            table.add_column(s, justify="right")
        for seq, counts in report.counts.items():
            table.add_row(safe(seq), *(str(counts.get(s, 0) or "·") for s in states))
        out.print(table)
        nxt = report.next_due
        line = f"next due: {_when(nxt.due)} {nxt.email} {nxt.sequence} #{nxt.step}" if nxt else "next due: nothing"
        out.print(visible(line), markup=False)
        if report.overdue:
            out.print(f"overdue now: {report.overdue} (run xmas tick)", markup=False)
        if report.problems:
            out.print(_rows_table(report.problems, "problems", with_email=True))
    if not report.healthy:
        raise typer.Exit(int(ExitCode.FAILURES))


@app.command()
@handled
def show(email: str, config: Config = None, as_json: AsJson = False) -> None:
    """One contact's data and timeline."""
    timeline = with_engine(config, None, lambda e: core.show(e, email))
    if as_json:
        emit(timeline.to_json())
        return
    c = timeline.contact
    out.print(
        f"[bold]{safe(c.email)}[/bold] {safe(c.first_name)} · segment {safe(c.segment or '—')}"
        + (f" · [red]suppressed: {safe(c.suppressed_reason)}[/red]" if c.suppressed else "")
    )
    consent = on_file(c)
    out.print(visible(f"consent: {consent.describe() if consent else 'none on record'}"), markup=False)
    if timeline.events:
        table = Table(title="events", title_justify="left")
        for name in ("at (UTC)", "event", "key", "data"):
            table.add_column(name)
        for e in timeline.events:
            details = ", ".join(f"{k}={v}" for k, v in sorted(e.data.items()))
            table.add_row(*(safe(c) for c in (_when(e.at), e.name, e.key, details)))
        out.print(table)
    out.print(_rows_table(timeline.rows, "timeline"))


@app.command()
@handled
def cancel(
    email: str,
    sequence: Annotated[str | None, typer.Option(help="Only this sequence's pending emails.")] = None,
    config: Config = None,
    as_json: AsJson = False,
) -> None:
    """Cancel a contact's pending emails (all, or one sequence's)."""
    result = with_engine(config, None, lambda e: core.cancel(e, email, sequence))
    if as_json:
        emit(result.to_json())
    else:
        out.print(visible(f"{result.email}: cancelled {len(result.rows)} pending email(s)"), markup=False)


@app.command()
@handled
def retry(
    email: str,
    sequence: Annotated[str | None, typer.Option(help="Only this sequence's failed emails.")] = None,
    config: Config = None,
    now: Now = None,
    as_json: AsJson = False,
) -> None:
    """Send a contact's Failed emails again on the next tick (after fixing the template or the data)."""
    result = with_engine(config, now, lambda e: core.retry(e, email, sequence))
    if as_json:
        emit(result.to_json())
    else:
        out.print(visible(f"{result.email}: {len(result.rows)} failed email(s) scheduled again"), markup=False)


@app.command()
@handled
def unsubscribe(
    email: str,
    channel: Annotated[
        str, typer.Option(help="How the contact asked: operator, or reply (they answered an email asking to stop).")
    ] = "operator",
    config: Config = None,
    now: Now = None,
    as_json: AsJson = False,
) -> None:
    """Stop all email to a contact, now and for any later enrollment."""
    if channel not in ("operator", "reply"):
        raise InvalidInput(f"--channel: {channel!r} is not a channel", "use operator or reply")
    result = with_engine(config, now, lambda e: core.unsubscribe(e, email, f"unsubscribed ({channel})"))
    if as_json:
        emit(result.to_json())
    else:
        out.print(visible(f"{result.email}: unsubscribed; cancelled {len(result.rows)} pending email(s)"), markup=False)


@app.command()
@handled
def demo(
    folder: Annotated[Path, typer.Option("--dir", help="Fresh folder for the demo's database and outbox.")] = Path(
        "xmas-demo"
    ),
    config: Config = None,
    now: Now = None,
) -> None:
    """Enroll sample contacts in every sequence and run the whole campaign on a simulated clock."""
    from .clock import clock_from
    from .demo import run_demo

    report = run_demo(config_path(config, os.environ), folder, clock_from(now, os.environ.get("XMAS_NOW")).now())
    out.print(
        _rows_table(
            report.rows,
            f"demo timeline: {iso(report.started)} → {iso(report.finished)}, {report.ticks} ticks",
            with_email=True,
        )
    )
    for note in report.notes:
        out.print(visible(f"note: {note}"), markup=False)
    sent = sum(1 for r in report.rows if r.state is State.SENT)
    out.print(f"{sent} emails sent; {report.eml_files} .eml files in {report.outbox}", markup=False)
    out.print(
        f"explore: xmas status --config {report.folder / 'campaign.toml'} --now {iso(report.finished)}", markup=False
    )


@app.command()
@handled
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port to listen on.")] = 8080,
    config: Config = None,
) -> None:
    """Serve the website's routes (Kestra-compatible webhooks, /enroll, /unsubscribe) over HTTP."""
    from .server import serve as run_server

    run_server(host, port, config)


def main() -> None:
    app()


from .cli_notion import register as _register_notion  # noqa: E402  (the commands need app and templates_app)

_register_notion(app, templates_app)
