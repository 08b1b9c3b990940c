"""Tables that stay readable at 80 columns: each table has its wide form (every column, ISO 8601 times) and, when
that does not fit the console, a narrow one (fewer columns, `2026-12-01 10:30` times that wrap between the day and
the hour, addresses never cut). No cell is ever shortened to "…": what does not fit a line wraps.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

from .common import add_row, table, when
from .env import current

if TYPE_CHECKING:
    from rich.table import Table

    from ..core.model import ScheduledEmail
    from ..tick.report import Outcome


def fits(wide: Table) -> bool:
    """Whether `wide` fits the console with no word broken: cells may wrap between words, but every address, id
    and time stays whole."""
    from rich.measure import Measurement

    console = current().out
    unbounded = console.options.update_width(10_000)  # the table's own width, not clamped to the console's
    return Measurement.get(console, unbounded, wide).minimum <= console.width


def fitted(wide: Table, narrow: Callable[[], Table]) -> Table:
    return wide if fits(wide) else narrow()


def short_time(value: datetime | None) -> str:
    """A time for a narrow table: UTC to the minute, day and hour apart so a narrow column wraps between them."""
    from ..clock import to_utc

    return to_utc(value).strftime("%Y-%m-%d %H:%M") if value is not None else "—"


def keep_whole(into: Table, *names: str, at_most: int = 40) -> None:
    """Give the named columns (addresses, names) room for their longest cell when it is at most `at_most` long: the
    other columns wrap first, and on a console too narrow even for these the line grows rather than a cell being
    cut. Call it once the rows are in."""
    from rich.cells import cell_len
    from rich.text import Text

    for column in into.columns:
        if column.header in names:
            cells = [Text.from_markup(c).plain if isinstance(c, str) else "" for c in column.cells]
            longest = max((cell_len(c) for c in [str(column.header), *cells]), default=0)
            if longest <= at_most:  # unwrapped, Rich shrinks the others first; min_width keeps it from cropping
                column.no_wrap, column.min_width = True, longest


def _note(row: ScheduledEmail) -> str:
    return row.defect or row.last_error or row.note or ""


def rows_table(rows: list[ScheduledEmail], title: str, with_email: bool = False) -> Table:
    """Scheduled emails: wide, every field; narrow, the email as `sequence #step`, its state, one time (when it
    was sent, else when it is due) and the note."""

    def wide() -> Table:
        result = table(
            *(["contact"] if with_email else []),
            *("sequence", "#", "template", "by", "due (UTC)", "state", "sent at", "note"),
            title=title,
        )
        for r in rows:
            cells = [r.sequence, r.step, r.template, r.sender.value, when(r.due), r.state.value, when(r.sent_at)]
            add_row(result, *([r.email] if with_email else []), *cells, _note(r))
        return result

    def narrow() -> Table:
        result = table(*(["contact"] if with_email else []), "email", "state", "sent / due (UTC)", "note", title=title)
        for r in rows:
            cells = [f"{r.sequence} #{r.step}", r.state.value, short_time(r.sent_at or r.due), _note(r)]
            add_row(result, *([r.email] if with_email else []), *cells)
        keep_whole(result, "contact", "email")
        return result

    return fitted(wide(), narrow)


def counts_table(counts: dict[str, dict[str, int]], states: list[str], title: str) -> Table:
    """Emails by sequence and state; narrow, only the states some sequence has."""

    def build(shown: list[str]) -> Table:
        result = table("sequence", *shown, title=title)
        if hidden := [s for s in states if s not in shown]:
            result.caption, result.caption_justify = f"no email is {', '.join(hidden)}", "left"
        for column in result.columns[1:]:
            column.justify = "right"
        for seq, by_state in counts.items():
            add_row(result, seq, *(str(by_state.get(s, 0) or "·") for s in shown))
        keep_whole(result, "sequence")
        return result

    used = [s for s in states if any(by_state.get(s) for by_state in counts.values())]
    return fitted(build(states), lambda: build(used))


def events_table(events: list[tuple[datetime, str, str, str]], title: str) -> Table:
    """(at, event, key, data) rows; narrow, times to the minute."""

    def build(show: Callable[[datetime | None], str]) -> Table:
        result = table("at (UTC)", "event", "key", "data", title=title)
        for at, name, key, data in events:
            add_row(result, show(at), name, key, data)
        return result

    return fitted(build(when), lambda: build(short_time))


def outcomes_table(outcomes: list[Outcome]) -> Table:
    """What a tick did with each email it did not simply send; narrow, without the template."""

    def wide() -> Table:
        result = table("action", "contact", "sequence", "#", "template", "why")
        for o in outcomes:
            add_row(result, o.action, o.row.email, o.row.sequence, o.row.step, o.row.template, o.detail)
        return result

    def narrow() -> Table:
        result = table("action", "contact", "email", "why")
        for o in outcomes:
            add_row(result, o.action, o.row.email, f"{o.row.sequence} #{o.row.step}", o.detail)
        keep_whole(result, "contact", "email")
        return result

    return fitted(wide(), narrow)
