"""Website enrollments a second on the SQL stores, with 1 and with 8 clients at once, through `xmas serve` (one
process, a thread per request) and gunicorn with 4 workers on xmas_cli.web:application (docs/website.md).

On PostgreSQL each contact has its own advisory lock, so enrollments of different contacts run at once; SQLite has
one writer and one lock file, so more clients only queue. Every answer must be 200, or the figure fails.
"""

from __future__ import annotations

import shutil
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

from notion_figures import free_port, post_enrollment, wait_healthy
from postgres_figures import pg_project
from support import Context, Result, Row, Shell, new_campaign, xmas_command

CLIENTS = (1, 8)
ENROLLMENTS, QUICK_ENROLLMENTS = 200, 40
TOKEN = "bench-api-token"
T0_NOW = "2026-12-01T10:30:00Z"


def servers() -> list[tuple[str, list[str]]]:
    """The documented servers, each as (name, command with {port}); gunicorn where the dev extra installed it."""
    found = [("`xmas serve`", [*xmas_command(), "serve", "--host", "127.0.0.1", "--port", "{port}"])]
    gunicorn = shutil.which("gunicorn", path=str(Path(sys.executable).parent))
    if gunicorn:
        command = [gunicorn, "--workers", "4", "--bind", "127.0.0.1:{port}", "xmas_cli.web:application"]
        found.append(("gunicorn, 4 workers", command))
    return found


@contextmanager
def project(ctx: Context, store: str) -> Iterator[Shell]:
    """A campaign on `store`; the shell its servers run in."""
    if store == "postgres":
        with pg_project(ctx, "web-sql") as pg:
            yield pg.shell
        return
    folder = ctx.folder("web-sql")
    new_campaign(folder)
    yield ctx.shell(folder)


def rate(port: int, clients: int, numbers: range) -> float:
    """Enrollments a second: every number of `numbers` enrolled once, `clients` at a time."""
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=clients) as pool:
        answers = list(pool.map(lambda n: post_enrollment(port, TOKEN, n), numbers))
    took = time.perf_counter() - started
    refused = [f"{a.status} {a.body[:200]}" for a in answers if a.status != 200]
    if refused:
        raise RuntimeError(f"{len(refused)} of {len(answers)} enrollments refused, e.g. {refused[0]}")
    return len(answers) / took


def web_sql_figure(ctx: Context) -> Result:
    count = QUICK_ENROLLMENTS if ctx.quick else ENROLLMENTS
    rows = []
    for store in ("sqlite", "postgres"):
        for name, command in servers():
            with project(ctx, store) as shell:
                port = free_port()
                env = {**shell.env, "XMAS_API_TOKEN": TOKEN, "XMAS_NOW": T0_NOW}
                if "gunicorn" in name:
                    env["XMAS_CONFIG"] = str(shell.cwd / "campaign.toml")
                server = Shell(shell.cwd, env, shell.logs).start([part.format(port=port) for part in command])
                try:
                    wait_healthy(port, server)
                    rate(port, 4, range(1_000_000, 1_000_008))  # warm-up: every worker imports and connects
                    found = {}
                    for clients in CLIENTS:
                        found[clients] = rate(port, clients, range(clients * 10_000, clients * 10_000 + count))
                finally:
                    server.terminate()
                    server.wait(timeout=60)
            one, many = found[CLIENTS[0]], found[CLIENTS[-1]]
            rows.append(
                Row(
                    f"website enrollments/s, {store}, {name}: 1 client; 8 clients at once",
                    f"{one:.0f}/s; {many:.0f}/s (×{many / one:.2f})",
                    "8 clients faster than 1" if store == "postgres" else "—",
                    many > one if store == "postgres" else None,
                )
            )
    method = (
        f"For each SQL store and server, a fresh campaign, a warm-up of 8 enrollments, then {count} assessment "
        "enrollments of new contacts POSTed to /enroll/assessment with the bearer token by 1 http.client client, "
        f"and {count} more by 8 concurrent clients; enrollments/s = enrollments ÷ the wall time of each batch. The "
        "servers: `xmas serve` (one process, a thread per request) and `gunicorn --workers 4 --bind … "
        "xmas_cli.web:application`. Every answer must be 200."
    )
    return Result(rows, method)
