"""`xmas report` at scale: build N emails rows (default 1,000,000) in a fresh campaign, then time `xmas report --json`
as a process of its own (cron-like: a fresh `xmas`), with its peak RSS from os.wait4 of that one child.

    python benchmarks/report_scale.py --rows 1000000 [--runs 3] [--keep DIR]

On SQLite always; on PostgreSQL too when XMAS_TEST_DATABASE_URL is set (a schema of its own, dropped after). The
rows look like a season: every contact in lead nurture (5 steps, the first two sent, most of those delivered,
some opened and clicked), one in five also took the assessment, some booked (a sequence or an event), a few paid,
one in a hundred unsubscribed. Bounded: the rows are written in batches and each run has a timeout. Prints one
line per store and run, then a JSON summary; exits 1 if a run fails. benchmarks/run.py may call it.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
T0 = datetime(2026, 11, 1, 10, 0, tzinfo=UTC)
NOW = "2026-12-31T10:00:00Z"
TIMEOUT = 600  # s for one report
BATCH = 20_000
SQLITE_COLUMNS = (
    "id, enrollment_key, email, sequence, step, template, sender, due, state, sent_at, message_id, attempts, "
    "last_error, note, data, batch, delivery, variant"
)
PG_COLUMNS = "id, enrollment_key, email, sequence, step, template, sender, due, state, sent_at, data, delivery, variant"


def iso(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


def rows(total: int) -> Iterator[tuple[Any, ...]]:
    """(id, key, email, sequence, step, template, sender, due, state, sent_at, data, delivery, variant), N of them."""
    made, n = 0, 0
    while made < total:
        email = f"c{n}@example.com"
        start = T0 + timedelta(minutes=n % 80_000)
        plan = [("lead-nurture", s, start + timedelta(days=2 * (s - 1))) for s in range(1, 6)]
        if n % 5 == 0:
            plan += [("assessment", s, start + timedelta(days=3 + s)) for s in range(1, 6)]
        if n % 25 == 0:
            plan += [("postcall", s, start + timedelta(days=10 + s)) for s in range(1, 4)]
        if n % 50 == 0:
            plan += [("onboarding", s, start + timedelta(days=15 + s)) for s in range(1, 4)]
        for sequence, step, due in plan:
            if made >= total:
                return
            sent = step <= 2 or (sequence != "lead-nurture" and step <= 3)
            website = sequence == "assessment" and step == 1
            delivery = None
            if sent and not website and n % 10 != 0:
                delivery = json.dumps(
                    {
                        "delivered_at": iso(due + timedelta(seconds=5)),
                        "opened_at": iso(due + timedelta(hours=1)) if n % 2 else None,
                        "opens": n % 2,
                        "clicks": 1 if n % 7 == 0 else 0,
                        "links": [],
                        "bounce": "Permanent/General" if n % 97 == 0 else None,
                        "complained_at": None,
                        "delayed": False,
                    }
                )
            state = ("Sent by website" if website else "Sent") if sent else "Scheduled"
            yield (
                f"{sequence}:{email}#{step}",
                f"{sequence}:{email}",
                email,
                sequence,
                step,
                f"{sequence}_{step}",
                "website" if website else "xmas",
                iso(due),
                state,
                iso(due + timedelta(seconds=30)) if sent else None,
                "{}",
                delivery,
                (n % 2) if sent and step == 2 else None,
            )
            made += 1
        n += 1


def contacts(total_rows: int) -> Iterator[tuple[Any, ...]]:
    """(email, suppressed, reason) for every contact the rows name: one in a hundred unsubscribed."""
    n = 0
    for row in rows(total_rows):
        if row[4] == 1 and row[3] == "lead-nurture":
            gone = n % 100 == 3
            yield row[2], gone, f"unsubscribed (one-click) {iso(T0 + timedelta(days=20))}" if gone else None
            n += 1


def events(total_rows: int) -> Iterator[tuple[str, str, str, str]]:
    """(key, email, name, at): a booking by event for one contact in forty, canceled for one in four of those."""
    count = sum(1 for row in rows(total_rows) if row[4] == 1 and row[3] == "lead-nurture")
    for n in range(0, count, 40):
        yield f"b{n}", f"c{n}@example.com", "booked", iso(T0 + timedelta(days=9))
        if n % 160 == 0:
            yield f"x{n}", f"c{n}@example.com", "call-canceled", iso(T0 + timedelta(days=10))


def campaign(folder: Path, backend: str) -> Path:
    folder.mkdir(parents=True)
    shutil.copy(ROOT / "campaign.toml", folder / "campaign.toml")
    shutil.copytree(ROOT / "templates", folder / "templates")
    if backend != "sqlite":
        path = folder / "campaign.toml"
        path.write_text(path.read_text().replace('backend = "sqlite"', f'backend = "{backend}"', 1))
    return folder / "campaign.toml"


def batches(source: Iterator[tuple[Any, ...]]) -> Iterator[list[tuple[Any, ...]]]:
    chunk: list[tuple[Any, ...]] = []
    for item in source:
        chunk.append(item)
        if len(chunk) >= BATCH:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def fill_sqlite(config: Path, total: int) -> None:
    import sqlite3

    from xmas_cli.backends import sqlite_store
    from xmas_cli.config import load_campaign

    sqlite_store(load_campaign(config, {})).close()  # the schema, as xmas makes it
    db = sqlite3.connect(config.parent / ".xmas" / "xmas.db")
    with db:
        for chunk in batches(rows(total)):
            db.executemany(
                f"INSERT INTO emails ({SQLITE_COLUMNS}) VALUES ({', '.join('?' * 18)})",
                [(*r[:10], None, 0, None, None, r[10], None, r[11], r[12]) for r in chunk],
            )
        db.executemany(
            "INSERT INTO contacts (email, fields, suppressed, suppressed_reason) VALUES (?, '{}', ?, ?)",
            contacts(total),
        )
        db.executemany("INSERT INTO events (key, email, name, at, data) VALUES (?, ?, ?, ?, '{}')", events(total))
    db.execute("ANALYZE")
    db.close()


def fill_postgres(dsn: str, total: int) -> None:
    import psycopg

    with psycopg.connect(dsn) as conn:
        with conn.cursor().copy(f"COPY emails ({PG_COLUMNS}) FROM STDIN") as copy:
            for r in rows(total):
                copy.write_row(r)
        with conn.cursor().copy("COPY contacts (email, suppressed, suppressed_reason) FROM STDIN") as copy:
            for c in contacts(total):
                copy.write_row(c)
        with conn.cursor().copy("COPY events (key, email, name, at) FROM STDIN") as copy:
            for e in events(total):
                copy.write_row(e)
        conn.execute("ANALYZE")


def run_report(config: Path, env: dict[str, str]) -> tuple[float, float, float, dict[str, Any]]:
    """(wall seconds, CPU seconds, peak RSS in MB, the report) of one `xmas report --json` in a process of its own
    (CPU: the child's user + system time, which a busy machine does not inflate as it does the wall time)."""
    out = config.parent / "report.json"
    xmas = shutil.which("xmas", path=str(Path(sys.executable).parent)) or "xmas"
    args = [xmas, "report", "--config", str(config), "--now", NOW, "--json"]
    with out.open("wb") as sink:
        started = time.perf_counter()
        child = subprocess.Popen(args, stdout=sink, stderr=subprocess.PIPE, env=env)
        deadline = started + TIMEOUT
        while True:
            pid, status, usage = os.wait4(child.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                child.kill()
                raise SystemExit(f"xmas report took longer than {TIMEOUT} s")
            time.sleep(0.01)
        took = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        stderr = child.stderr.read().decode() if child.stderr else ""
        raise SystemExit(f"xmas report exited {child.returncode}: {stderr[-2000:]}")
    cpu = usage.ru_utime + usage.ru_stime
    return took, cpu, usage.ru_maxrss / 1024, json.loads(out.read_text())


def measure(store: str, config: Path, env: dict[str, str], runs: int) -> dict[str, Any]:
    seconds, cpus, rss = [], [], []
    doc: dict[str, Any] = {}
    for n in range(runs):
        took, cpu, peak, doc = run_report(config, env)
        seconds.append(took)
        cpus.append(cpu)
        rss.append(peak)
        print(f"{store}: run {n + 1}: {took:.2f} s ({cpu:.2f} s CPU), peak RSS {peak:.0f} MB", flush=True)
    sent = sum(s["sent"] for seq in doc["sequences"] for s in seq["steps"])
    return {
        "store": store,
        "seconds_median": round(statistics.median(seconds), 2),
        "seconds": [round(s, 2) for s in seconds],
        "cpu_seconds_median": round(statistics.median(cpus), 2),
        "load_average": os.getloadavg()[0],
        "peak_rss_mb_max": round(max(rss)),
        "sent_rows_counted": sent,
        "funnel": [f["contacts"] for f in doc["funnel"]],
    }


def clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("XMAS_", "NOTION_", "RESEND_", "CALENDLY_"))}
    return {**env, **(extra or {})}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="emails rows to build (default 1,000,000)")
    parser.add_argument("--runs", type=int, default=3, help="reports per store (default 3)")
    parser.add_argument("--stores", default="sqlite,postgres", help="which stores (default sqlite,postgres)")
    parser.add_argument("--keep", type=Path, help="build in this folder and keep it (default: a temp folder)")
    args = parser.parse_args()
    if not 1 <= args.rows <= 20_000_000 or not 1 <= args.runs <= 20:
        parser.error("--rows must be 1 to 20,000,000 and --runs 1 to 20")
    base = args.keep or Path(tempfile.mkdtemp(prefix="xmas-report-scale-"))
    results = []
    try:
        stores = set(args.stores.split(","))
        if "sqlite" in stores:
            started = time.perf_counter()
            config = campaign(base / "sqlite", "sqlite")
            fill_sqlite(config, args.rows)
            print(f"sqlite: {args.rows:,} rows built in {time.perf_counter() - started:.1f} s", flush=True)
            results.append(measure("sqlite", config, clean_env(), args.runs))
        dsn = os.environ.get("XMAS_TEST_DATABASE_URL")
        if "postgres" not in stores:
            pass
        elif dsn:
            results.append(postgres(dsn, base, args.rows, args.runs))
        else:
            print("postgres: skipped (XMAS_TEST_DATABASE_URL is not set)", flush=True)
    finally:
        if args.keep is None:
            shutil.rmtree(base, ignore_errors=True)
    print(json.dumps({"rows": args.rows, "results": results}, indent=1))
    return 0


def postgres(base_dsn: str, folder: Path, total: int, runs: int) -> dict[str, Any]:
    import psycopg

    from xmas_cli.stores.pg_connections import in_schema
    from xmas_cli.stores.pg_schema import migrate

    schema = f"xmas_report_scale_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(base_dsn, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        dsn = in_schema(base_dsn, schema)
        with psycopg.connect(dsn, autocommit=True) as conn:
            migrate(conn)
        started = time.perf_counter()
        fill_postgres(dsn, total)
        print(f"postgres: {total:,} rows built in {time.perf_counter() - started:.1f} s", flush=True)
        config = campaign(folder / "postgres", "postgres")
        return measure("postgres", config, clean_env({"XMAS_DATABASE_URL": dsn}), runs)
    finally:
        with psycopg.connect(base_dsn, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


if __name__ == "__main__":
    sys.exit(main())
