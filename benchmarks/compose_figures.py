"""In-process figures of one email's cost: composing it (render + its plain-text part, core/compose.py) and the
outbox's MIME message (mailers/outbox.py), for every step of every sequence of the shipped campaign.

    python benchmarks/compose_figures.py     # the figures alone, printed
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from support import PAYLOADS, Context, Result, Row, Spread, after

COMPOSE_GOAL_MS, MIME_GOAL_MS = 0.2, 0.5
LATER = after(days=400)  # every step of every sequence is due by then


def campaign_rows(ctx: Context) -> tuple[Any, list[tuple[Any, Any, Any]]]:
    """The engine of a campaign with one contact enrolled in each sequence, and (row, contact, template) for each of
    their scheduled emails."""
    from sqlite_figures import seed_campaign

    from xmas_cli.backends import engine_from_config

    folder = seed_campaign(ctx, list(PAYLOADS))
    engine = engine_from_config(str(folder / "campaign.toml"), now=LATER, env=ctx.shell(folder).env)
    found = []
    for row in engine.store.due_emails(datetime.fromisoformat(LATER)):
        template = engine.store.get_template(row.template)
        if template is not None and template.active:
            found.append((row, engine.store.get_contact(row.email), template))
    if not found:
        raise RuntimeError("no scheduled email to compose: the set-up is wrong")
    return engine, found


def per_email(work: Callable[[], int], rounds: int) -> Spread:
    """CPU seconds per email of `work` (which returns how many it did), one figure per round, after a warm-up. CPU
    time, not wall time: the cost of an email, which other work on a shared machine does not stretch."""
    work()
    figures = []
    for _ in range(rounds):
        started = time.process_time()
        done = work()
        figures.append((time.process_time() - started) / done)
    return Spread.of(figures)


def compose_figure(ctx: Context) -> Result:
    from xmas_cli.core.compose import compose
    from xmas_cli.core.render import html_to_text
    from xmas_cli.core.variables import Counts
    from xmas_cli.mailers.outbox import message_bytes

    engine, found = campaign_rows(ctx)
    secret = "bench-secret-0123456789abcdef"
    templates: dict[str, Any] = {}

    def template(name: str) -> Any:  # read once per tick, as the tick does (tick/state.py)
        if name not in templates:
            templates[name] = engine.store.get_template(name)
        return templates[name]

    repeat, rounds = (20, 5) if ctx.quick else (100, 10)
    try:
        emails = [
            compose(row, contact, body, engine.campaign, secret, Counts(), template) for row, contact, body in found
        ]

        def composing() -> int:
            for _ in range(repeat):
                for row, contact, body in found:
                    compose(row, contact, body, engine.campaign, secret, Counts(), template)
            return repeat * len(found)

        def texts() -> int:
            for _ in range(repeat):
                for email in emails:
                    html_to_text(email.html)
            return repeat * len(emails)

        def mime() -> int:
            for _ in range(repeat):
                for email in emails:
                    message_bytes(email)
            return repeat * len(emails)

        whole, text, message = per_email(composing, rounds), per_email(texts, rounds), per_email(mime, rounds)
    finally:
        engine.close()
    size = sum(len(e.html) for e in emails) // len(emails)
    rows = [
        Row(
            "compose one email (render + plain-text part), in-process",
            whole.show("ms", 3, 1000) + f"; ratio to the goal {whole.median * 1000 / COMPOSE_GOAL_MS:.2f}",
            f"≤ {COMPOSE_GOAL_MS} ms",
            whole.median * 1000 <= COMPOSE_GOAL_MS,
        ),
        Row("  of which the plain-text part (html_to_text)", text.show("ms", 3, 1000)),
        Row(
            "outbox MIME message of one email (its .eml bytes), in-process",
            message.show("ms", 3, 1000) + f"; ratio to the goal {message.median * 1000 / MIME_GOAL_MS:.2f}",
            f"≤ {MIME_GOAL_MS} ms",
            message.median * 1000 <= MIME_GOAL_MS,
        ),
    ]
    method = (
        f"The {len(found)} scheduled emails of a campaign with one contact enrolled through the CLI in each sequence "
        f"(every step, HTML of {size:,} characters on average), composed in this process with core/compose.py as the "
        f"tick does, {repeat} times each per round, {rounds} rounds after a warm-up round, timed in this process's "
        "CPU time (the cost, not the wait for a core on a shared machine); the plain-text part and "
        "the outbox's MIME message (mailers/outbox.message_bytes: the .eml file's bytes) of the same emails "
        "measured the same way."
    )
    return Result(rows, method)


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory(prefix="xmas-bench-") as tmp:
        ctx = Context(quick="--quick" in sys.argv, runs=3, status_rows=0, work=Path(tmp), cache=Path(tmp))
        for row in compose_figure(ctx).rows:
            print(f"{row.measure}: {row.value}")
