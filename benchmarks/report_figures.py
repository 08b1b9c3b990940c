"""`xmas report` at scale: benchmarks/report_scale.py (which builds the rows and times each report as a process of its
own) run as a child, its JSON summary read back. Goal (issue 23): a few seconds and under 100 MB at 1,000,000 rows."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

from support import ROOT, Context, Result, Row, clean_env

SCRIPT = ROOT / "benchmarks" / "report_scale.py"
ROWS, QUICK_ROWS = 1_000_000, 100_000
SECONDS_GOAL, MB_GOAL = 5.0, 100
TIMEOUT = 3600


def summary(stdout: str) -> dict[str, Any]:
    """The JSON document report_scale.py prints last (indented: from its last line that is a lone `{`)."""
    lines = stdout.splitlines()
    start = max(i for i, line in enumerate(lines) if line == "{")
    found = json.loads("\n".join(lines[start:]))
    assert isinstance(found, dict)
    return found


def report_scale_figure(ctx: Context) -> Result:
    rows = QUICK_ROWS if ctx.quick else ROWS
    runs = 1 if ctx.quick else 3
    env = clean_env()
    for name in ("XMAS_BENCH_DATABASE_URL", "XMAS_TEST_DATABASE_URL"):  # the server, as the PostgreSQL figures use
        if os.environ.get(name):
            env["XMAS_TEST_DATABASE_URL"] = os.environ[name]
            break
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--rows", str(rows), "--runs", str(runs)],
        capture_output=True,
        text=True,
        env=env,
        timeout=TIMEOUT,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"report_scale.py exited {done.returncode}: {done.stderr[-1500:]}")
    found = summary(done.stdout)
    table = []
    for result in found["results"]:
        seconds, mb = float(result["seconds_median"]), float(result["peak_rss_mb_max"])
        table.append(
            Row(
                f"`xmas report`, {result['store']}, {rows:,} rows: wall time, peak RSS",
                f"{seconds:.2f} s (runs {', '.join(f'{s:.2f}' for s in result['seconds'])}; "
                f"{result['cpu_seconds_median']:.2f} s CPU), {mb:.0f} MB; ratio to the goal "
                f"{seconds / SECONDS_GOAL:.2f} and {mb / MB_GOAL:.2f}",
                f"≤ {SECONDS_GOAL:g} s, < {MB_GOAL} MB",
                seconds <= SECONDS_GOAL and mb < MB_GOAL,
            )
        )
    method = (
        f"`python benchmarks/report_scale.py --rows {rows} --runs {runs}` (see its docstring: a season's rows built "
        "in a fresh campaign, then `xmas report --json` timed as a process of its own, peak RSS from wait4), on "
        "SQLite and on PostgreSQL where a server is configured; the median of its runs."
    )
    return Result(table, method, ["```", *done.stdout.splitlines()[:20], "```"])
