"""Benchmark: how long an idle `tick` takes against a SQLite store holding many rows.

    python bench/idle_tick.py [--rows 100000] [--repeat 50]

Builds a throwaway campaign in a temp folder, writes N scheduled-email rows (a realistic mix: most
already Sent, the rest Scheduled in the future), then times the engine's tick when nothing is due,
and the due-rows query on its own. Prints the figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sqlite3
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from xmas_cli.backends import engine_from_config
from xmas_cli.tick import tick

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=50)
    args = parser.parse_args()
    now = datetime(2026, 12, 10, 12, 0, tzinfo=UTC)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        shutil.copy(ROOT / "campaign.toml", folder / "campaign.toml")
        shutil.copytree(ROOT / "templates", folder / "templates")
        env = {"XMAS_SECRET": "bench-secret-0123456789"}
        engine = engine_from_config(str(folder / "campaign.toml"), now=now.isoformat(), env=env)
        con = sqlite3.connect(folder / ".xmas" / "xmas.db")
        started = time.perf_counter()
        rows = []
        for n in range(args.rows):
            sent = n % 4 != 0
            due = now - timedelta(minutes=n) if sent else now + timedelta(minutes=n + 1)
            rows.append(
                (
                    f"lead-nurture:c{n}@example.com#1",
                    f"lead-nurture:c{n}@example.com",
                    f"c{n}@example.com",
                    "lead-nurture",
                    1,
                    "lead_nurture_email_1",
                    "xmas",
                    due.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "Sent" if sent else "Scheduled",
                    json.dumps({"email": f"c{n}@example.com", "first_name": "C"}),
                )
            )
        con.executemany(
            "INSERT INTO emails (id, enrollment_key, email, sequence, step, template, sender, due, state, data) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
        con.commit()
        print(f"wrote {args.rows} rows in {time.perf_counter() - started:.2f} s")
        query, idle = [], []
        for _ in range(args.repeat):
            t = time.perf_counter()
            assert not list(engine.store.due_emails(now))
            query.append(time.perf_counter() - t)
            t = time.perf_counter()
            report = tick(engine)
            idle.append(time.perf_counter() - t)
            assert report.due == 0
        engine.close()
    for name, values in (("due query", query), ("idle tick (lock + query)", idle)):
        print(
            f"{name}: median {statistics.median(values) * 1000:.3f} ms, "
            f"max {max(values) * 1000:.3f} ms over {args.repeat} runs at {args.rows} rows"
        )


if __name__ == "__main__":
    main()
