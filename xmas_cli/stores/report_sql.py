"""The numbers of `xmas report` counted in SQL, for both SQL stores: SQLite and PostgreSQL run the same three
queries, which differ only where their dialects do (`Dialect`: placeholders, reading the delivery JSON, the day of
a time, a byte-wise order). What the numbers mean is core/report_facts.py's: the same filter of counted emails,
the same last email for an unsubscribe, and each contact's earliest time at each stage fed to its FunnelCounter.

Three scans whatever the number of rows: the sent emails grouped by day, step and variant (and broadcast: its name
read from the row as core/broadcasts.py does, by an expression built from its constants); the last sent email of
each contact who unsubscribed; each contact's earliest live row per funnel stage, streamed (never held whole).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..clock import iso
from ..core.broadcasts import KEY_HEAD, SEPARATOR
from ..core.campaign import BROADCAST
from ..core.model import Sender, State
from ..core.report_facts import DEAD, UNSUBSCRIBED, Funnel, FunnelCounter, ReportFacts, counts_of
from .records import EPOCH, read_time

# Runs one query with named parameters and yields its rows (mappings by column name), streaming when it can.
Run = Callable[[str, Mapping[str, Any]], Iterable[Mapping[str, Any]]]


@dataclass(frozen=True)
class Dialect:
    param: Callable[[str], str]  # a named parameter
    json_text: Callable[[str, str], str]  # a key of a JSON object column, as text (NULL when absent)
    json_int: Callable[[str, str], str]  # the same, as an integer
    valid_json: Callable[[str], str]  # the column when it holds JSON, else NULL (a damaged row: read as no delivery)
    scan: str  # the emails table for a scan of its sent rows (SQLite: the whole table, read in order, is faster)
    day: Callable[[str], str]  # the UTC day of a time column, as "2026-12-01"
    binary: str  # a collation that orders text byte-wise (as Python orders str)
    one_of: Callable[[str, str, Sequence[str], dict[str, Any]], str]  # column IN the list, its parameters added
    time: Callable[[Any], Any]  # a datetime as the column holds it


def _sqlite_in(column: str, name: str, values: Sequence[str], params: dict[str, Any]) -> str:
    if not values:
        return "0"
    params.update({f"{name}_{i}": v for i, v in enumerate(values)})
    return f"{column} IN ({', '.join(f':{name}_{i}' for i in range(len(values)))})"


def _postgres_in(column: str, name: str, values: Sequence[str], params: dict[str, Any]) -> str:
    params[name] = list(values)
    return f"{column} = ANY(%({name})s)"


SQLITE = Dialect(
    param=lambda name: f":{name}",
    json_text=lambda column, key: f"json_extract({column}, '$.{key}')",
    json_int=lambda column, key: f"json_extract({column}, '$.{key}')",
    valid_json=lambda column: f"CASE WHEN json_valid({column}) THEN {column} END",  # not an object: keys are NULL
    scan="emails NOT INDEXED",
    day=lambda column: f"date({column})",
    binary="BINARY",
    one_of=_sqlite_in,
    time=iso,  # stored as ISO 8601 text in UTC with Z, which sorts as the times do
)
POSTGRES = Dialect(
    param=lambda name: f"%({name})s",
    json_text=lambda column, key: f"({column}->>'{key}')",
    json_int=lambda column, key: f"({column}->>'{key}')::int",
    valid_json=lambda column: f"CASE WHEN jsonb_typeof({column}) = 'object' THEN {column} END",
    scan="emails",
    day=lambda column: f"to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD')",
    binary='"C"',
    one_of=_postgres_in,
    time=lambda value: value,
)


def streamed(transaction: Callable[[], AbstractContextManager[Any]]) -> Run:
    """PostgreSQL's runner: each query's rows through a server-side cursor, a batch at a time, so the per-contact
    query of a million rows is never held whole (as SQLite's cursor already streams)."""

    def run(sql: str, params: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
        with transaction() as conn, conn.cursor(name="xmas_report") as cursor:
            conn.execute("SET LOCAL cursor_tuple_fraction = 1.0")  # plan for every row, as a plain query would
            cursor.itersize = 5000
            cursor.execute(sql, params)
            yield from cursor

    return run


def _sent(d: Dialect, since: datetime | None, params: dict[str, Any], table: str = "") -> str:
    """report_facts.counted, as a WHERE clause."""
    params.update(sent=State.SENT.value, xmas=Sender.XMAS.value)
    where = f"{table}state = {d.param('sent')} AND {table}sender = {d.param('xmas')} AND {table}sent_at IS NOT NULL"
    if since is not None:
        params["since"] = d.time(since)
        where += f" AND {table}sent_at >= {d.param('since')}"
    return where


def _broadcast(d: Dialect, params: dict[str, Any], table: str = "") -> str:
    """core/broadcasts.broadcast_name, as an expression: the broadcast's name, NULL for a sequence's row."""
    params.update(b_sequence=BROADCAST, b_head=KEY_HEAD, b_separator=SEPARATOR)
    head = f"{d.param('b_head')} || {table}email || {d.param('b_separator')}"  # broadcast_key("", email)
    key = f"{table}enrollment_key"
    return (
        f"CASE WHEN {table}sequence = {d.param('b_sequence')} AND substr({key}, 1, length({head})) = {head} "
        f"THEN NULLIF(substr({key}, length({head}) + 1), '') END"
    )


def _when(value: Any) -> datetime:
    """A stored time as read_row reads it: an unreadable one is the epoch (and the row damaged)."""
    try:
        return read_time(value) or EPOCH
    except (TypeError, ValueError):
        return EPOCH


def count(run: Run, d: Dialect, since: datetime | None, funnel: Funnel) -> ReportFacts:
    facts = ReportFacts()
    params: dict[str, Any] = {}
    delivery = d.valid_json("delivery")
    per_group = (
        f"SELECT {d.day('sent_at')} AS day, sequence, step, COALESCE(variant, 0) AS variant, broadcast, "
        "CASE WHEN broadcast IS NOT NULL THEN template END AS template, COUNT(*) AS sent, "
        f"COUNT({d.json_text('d', 'delivered_at')}) AS delivered, COUNT({d.json_text('d', 'opened_at')}) AS opened, "
        f"COUNT(*) FILTER (WHERE {d.json_int('d', 'clicks')} > 0) AS clicked, "
        f"COUNT(*) FILTER (WHERE COALESCE({d.json_text('d', 'bounce')}, '') <> '') AS bounced, "
        f"COUNT({d.json_text('d', 'complained_at')}) AS complained "
        f"FROM (SELECT sent_at, sequence, step, variant, template, {_broadcast(d, params)} AS broadcast, "
        f"{delivery} AS d FROM {d.scan} WHERE {_sent(d, since, params)}) s "
        "GROUP BY 1, 2, 3, 4, 5, 6"
    )
    for r in run(per_group, params):
        step = counts_of(facts, r["sequence"], r["step"], r["variant"], r["broadcast"], r["template"])
        day = facts.days.setdefault((r["day"], r["sequence"]), {"sent": 0, "opened": 0, "clicked": 0})
        for name in step:
            step[name] += int(r[name]) if name != "unsubscribed" else 0
        for name in day:
            day[name] += int(r[name])
    params = {"unsubscribed": UNSUBSCRIBED, "length": len(UNSUBSCRIBED)}
    last = (  # report_facts.last_sent of each contact who unsubscribed, among the counted emails
        "SELECT sequence, step, COALESCE(variant, 0) AS variant, broadcast, "
        "CASE WHEN broadcast IS NOT NULL THEN template END AS template, COUNT(*) AS n FROM (SELECT e.sequence, "
        f"e.step, e.variant, e.template, {_broadcast(d, params, 'e.')} AS broadcast, ROW_NUMBER() OVER (PARTITION "
        f"BY e.email ORDER BY e.sent_at DESC, e.id COLLATE {d.binary} DESC) AS latest FROM emails e "
        f"JOIN contacts c ON c.email = e.email WHERE {_sent(d, since, params, 'e.')} AND c.suppressed "
        f"AND substr(c.suppressed_reason, 1, {d.param('length')}) = {d.param('unsubscribed')}) l "
        "WHERE latest = 1 GROUP BY 1, 2, 3, 4, 5"
    )
    for r in run(last, params):
        unsubscribed = counts_of(facts, r["sequence"], r["step"], r["variant"], r["broadcast"], r["template"])
        unsubscribed["unsubscribed"] += int(r["n"])
    params = {}
    stages = ", ".join(
        f"MIN(CASE WHEN {d.one_of('sequence', f's{k}', names, params)} THEN due END) AS t{k}"
        if names
        else f"NULL AS t{k}"
        for k, names in enumerate(funnel.sequences)
    )
    dead = d.one_of("state", "dead", [state.value for state in DEAD], params)
    counter = FunnelCounter(funnel, since)
    names = [f"t{k}" for k in range(len(funnel.sequences))]
    if names:
        for r in run(f"SELECT email, {stages} FROM emails WHERE NOT ({dead}) GROUP BY email", params):
            times = [None if r[name] is None else _when(r[name]) for name in names]
            if any(times):
                counter.add(r["email"], times)
    facts.funnel = counter.result()
    return facts
