"""`xmas plan [--apply]`: what an edit of campaign.toml means for the emails already scheduled, and doing it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from .common import AsJson, Config, Now, emit, handled, say, with_engine

if TYPE_CHECKING:
    from ..core.plan import Change

LABELS = {
    "retime": "re-timed",
    "add": "step added",
    "cancel": "cancelled",
    "rename": "template renamed",
    "paused": "paused, kept",
    "missing": "template missing",
}


def describe(change: Change) -> str:
    from ..clock import iso

    label = LABELS[change.kind]
    if change.kind == "retime":
        return f"  {label}: {change.email} {iso(change.old_due)} → {iso(change.new_due)}"
    if change.kind == "add":
        return f"  {label}: {change.email} due {iso(change.new_due)}"
    if change.kind == "cancel":
        return f"  {label}: {change.email} (was due {iso(change.old_due)}): the step is no longer in the sequence"
    if change.kind == "rename":
        return f"  {label}: {change.email} {change.old_template} → {change.template}, due {iso(change.new_due)}"
    if change.kind == "paused":
        return f"  {label}: {change.email} ({change.detail})"
    return f"  {label}: {change.detail}"


@handled
def plan(
    apply: Annotated[
        bool, typer.Option("--apply", help="Make the changes (each noted on its row) instead of only listing them.")
    ] = False,
    config: Config = None,
    now: Now = None,
    as_json: AsJson = False,
) -> None:
    """Compare campaign.toml (and the templates) with the rows the store holds: per sequence and step, what an edit
    means for the emails still Scheduled (re-timed, a step added, a step removed, a template renamed or missing).
    Sent emails are never touched; rows a person paused stay paused. Applying twice changes nothing."""
    from ..clock import iso
    from ..engine.plan import apply_plan
    from ..engine.plan import plan as make_plan

    result = with_engine(config, now, apply_plan if apply else make_plan)
    if as_json:
        emit(result.to_json())
        return
    if not result.changes:
        say(f"campaign.toml and the rows in {result.store} agree: nothing to do")
        return
    heading = None
    for change in result.changes:
        here = f"{change.sequence} #{change.step} {change.template}"
        if here != heading:
            say(here)
            heading = here
        say(describe(change))
    writes = len([c for c in result.changes if c.kind in ("retime", "add", "cancel", "rename")])
    if result.applied:
        say(f"applied at {iso(result.now)}: {writes} change(s) written, each noted on its row")
        for line in result.skipped:
            say(f"  skipped {line}")
    else:
        say(f"{writes} change(s) to make: run `xmas plan --apply` to make them")


def register(app: typer.Typer) -> None:
    app.command("plan")(plan)
