"""Measure xmas's performance figures against their goals and write benchmarks/RESULTS.md.

    python benchmarks/run.py                 # every figure, full size (about ten minutes; cached dbs are reused)
    python benchmarks/run.py --quick         # fewer runs, smaller sizes: under three minutes
    python benchmarks/run.py --only help,idle-sqlite --runs 10
    python benchmarks/run.py --rows 200000 --out /tmp/results.md

Every `xmas` runs as its own process (the venv's console script), in a campaign folder under a temp dir, with an
environment cleaned of XMAS_*, NOTION_*, RESEND_* and CALENDLY_* variables and a simulated clock (--now). The
emulators of tests/ stand in for Notion and Resend. Big SQLite files are built once and kept in
$TMPDIR/xmas-benchmarks-cache. A figure that fails to run is reported as an error in the table, the others still
run, and the exit status is 1 (`.ci/run` runs `--quick`: a figure that cannot be measured fails CI, one that misses
its goal does not).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import compose_figures
import notion_figures
import postgres_figures
import report_figures
import resend_figures
import sqlite_figures
import web_figures
from support import ROOT, Context, Result, Row, cpu_model, git_revision, load_average


@dataclass(frozen=True)
class Figure:
    name: str
    title: str
    measure: Callable[[Context], Result]


FIGURES = [
    Figure("help", "`xmas --help`", sqlite_figures.help_figure),
    Figure("idle-sqlite", "Idle tick, SQLite", sqlite_figures.idle_sqlite_figure),
    Figure("idle-notion", "Idle tick, Notion", notion_figures.idle_notion_figure),
    Figure("cpu-outbox", "CPU per email, SQLite + outbox", sqlite_figures.cpu_outbox_figure),
    Figure("cpu-resend", "CPU per email, SQLite + Resend batches", sqlite_figures.cpu_resend_figure),
    Figure("notion-drain", "Notion drain, ticks from cron", notion_figures.notion_drain_figure),
    Figure("web-enroll", "Website enrollments on Notion, 6 at once", notion_figures.web_enroll_figure),
    Figure("status", "`xmas status`, SQLite, many rows", sqlite_figures.status_figure),
    Figure("enroll", "`xmas enroll` from the CLI", sqlite_figures.enroll_figure),
    Figure("due-query", "Due query and idle tick in-process (was bench/idle_tick.py)", sqlite_figures.due_query_figure),
    Figure("backlog", "Backlog drain, SQLite + outbox (was bench/backlog.py)", sqlite_figures.backlog_figure),
    Figure("idle-postgres", "Idle tick and `xmas status`, PostgreSQL, big db", postgres_figures.idle_postgres_figure),
    Figure("drain-postgres", "Drain by 1, 2, 4 runners at once, PostgreSQL", postgres_figures.drain_postgres_figure),
    Figure("resend-ceiling", "Resend at its limit, 1, 2, 4 runners", resend_figures.resend_ceiling_figure),
    Figure("compose", "Composing an email and its MIME message, in-process", compose_figures.compose_figure),
    Figure("report-scale", "`xmas report` at scale, SQLite and PostgreSQL", report_figures.report_scale_figure),
    Figure("web-sql", "Website enrollments/s, 1 and 8 clients, SQL stores", web_figures.web_sql_figure),
]
CACHE = Path(tempfile.gettempdir()) / "xmas-benchmarks-cache"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few runs, small sizes (under three minutes)")
    parser.add_argument("--only", help="comma-separated figure names: " + ", ".join(f.name for f in FIGURES))
    parser.add_argument("--runs", type=int, help="runs of each timed command (default 5, --quick 3)")
    parser.add_argument("--rows", type=int, help="rows for `xmas status` (default 1,000,000, --quick 20,000)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "RESULTS.md", help="where to write")
    args = parser.parse_args(argv)
    if args.runs is not None and args.runs < 1:
        parser.error("--runs must be at least 1")
    if args.rows is not None and args.rows < 100:
        parser.error("--rows must be at least 100")
    return args


def selected(only: str | None) -> list[Figure]:
    if not only:
        return FIGURES
    names = [name.strip() for name in only.split(",") if name.strip()]
    unknown = [name for name in names if name not in {f.name for f in FIGURES}]
    if unknown:
        raise SystemExit(f"unknown figure(s): {', '.join(unknown)}; known: {', '.join(f.name for f in FIGURES)}")
    return [f for f in FIGURES if f.name in names]


def measure(figure: Figure, ctx: Context) -> tuple[Result, bool]:
    """The figure's result, and False when it failed to run (an error row in its place)."""
    try:
        return figure.measure(ctx), True
    except Exception as exc:
        message = f"{type(exc).__name__}: {exc}".replace("\n", " ")[:300]
        failed = Result(
            [Row(figure.title, f"error: {message}", met=False)], "Failed.", ["```", traceback.format_exc(), "```"]
        )
        return failed, False


# ------------------------------------------------------------------------------------------------ report


def machine() -> list[str]:
    return [
        f"- CPU: {cpu_model()}, {os.cpu_count()} cores; {platform.system()} {platform.release()} {platform.machine()}",
        f"- Python {platform.python_version()} ({sys.executable})",
        f"- xmas at commit {git_revision()}",
    ]


def met_mark(met: bool | None) -> str:
    return {True: "yes", False: "**no**", None: ""}[met]


def table(results: list[tuple[int, Figure, Result]]) -> list[str]:
    lines = ["| # | figure | measured: median (min–max, runs) | goal | met? |", "|---|---|---|---|---|"]
    for number, _figure, result in results:
        for row in result.rows:
            cell = row.value.replace("|", "\\|")
            lines.append(f"| {number} | {row.measure} | {cell} | {row.goal} | {met_mark(row.met)} |")
    return lines


ANALYSIS = ROOT / "benchmarks" / "ANALYSIS.md"


def analysis() -> list[str]:
    """The hand-written part: for each goal that is missed, where the time goes (profiled) and what remains.
    Kept in ANALYSIS.md so a new run keeps it; it says which run it was written against."""
    if not ANALYSIS.exists():
        return []
    return [*ANALYSIS.read_text(encoding="utf-8").rstrip().splitlines(), ""]


def report(
    results: list[tuple[int, Figure, Result]], ctx: Context, command: str, started: datetime, took: float
) -> str:
    lines = [
        "# xmas benchmarks",
        "",
        f"Written by `{command}` on {started:%Y-%m-%d %H:%M} UTC; the run took {took / 60:.1f} min.",
        "",
        *machine(),
        f"- Load average (1, 5, 15 min): {ctx.load_at_start} at the start, {load_average()} at the end (other "
        "work on the machine shows as noise)",
        f"- Mode: {'--quick' if ctx.quick else 'full'}, {ctx.runs} runs of each timed command",
        "",
        "Every figure is the median of several runs with its spread (min–max); ratios are taken side by side in "
        "the same run. Each `xmas` is its own process, like cron or the website runs it.",
        "",
        *table(results),
        "",
        *analysis(),
        "## How each figure is measured",
        "",
    ]
    for number, figure, result in results:
        lines.append(f"{number}. **{figure.title}** (`--only {figure.name}`). {result.method}")
    for number, figure, result in results:
        if result.details:
            lines.extend(["", f"### {number}. {figure.title}", "", *result.details])
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    figures = selected(args.only)
    runs = args.runs or (3 if args.quick else 5)
    rows = args.rows or (20_000 if args.quick else 1_000_000)
    started, clock = datetime.now(UTC), time.perf_counter()
    command = "python benchmarks/run.py " + " ".join(sys.argv[1:] if argv is None else argv)
    results = []
    failed: list[str] = []
    with tempfile.TemporaryDirectory(prefix="xmas-bench-") as tmp:
        ctx = Context(quick=args.quick, runs=runs, status_rows=rows, work=Path(tmp), cache=CACHE)
        for figure in figures:
            number = FIGURES.index(figure) + 1
            print(f"[{number}/{len(FIGURES)}] {figure.name} …", file=sys.stderr, flush=True)
            began = time.perf_counter()
            result, ran = measure(figure, ctx)
            if not ran:
                failed.append(figure.name)
            results.append((number, figure, result))
            for row in result.rows:
                print(f"  {row.measure}: {row.value} {met_mark(row.met)}", file=sys.stderr)
            print(f"  ({time.perf_counter() - began:.0f} s)", file=sys.stderr, flush=True)
    took = time.perf_counter() - clock
    args.out.write_text(report(results, ctx, command.strip(), started, took))
    print(f"wrote {args.out} in {took / 60:.1f} min", file=sys.stderr)
    if failed:  # a figure that misses its goal is a finding; one that cannot be measured is a defect (CI fails)
        print(f"failed to run: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
