"""Benchmark: a backlog of due emails drains at the mailer's pace, a bounded slice per tick.

    python bench/backlog.py [--rows 12000] [--budget 50] [--mailer outbox|resend]

Builds a throwaway campaign in a temp folder (SQLite store), writes N rows that are all due now, then runs
`tick` in-process again and again, as cron would, each with the campaign's time budget, until nothing is
due. Prints, per tick, what it sent, how long it took and what it left; then the totals and the CPU time per
email. `--mailer resend` sends through the Resend emulator of tests/ (batches of 100, unthrottled), so the
figure is xmas's own cost around a real HTTP client. Asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sqlite3
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from xmas_cli.backends import engine_from_config
from xmas_cli.tick import tick

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=12_000)
    parser.add_argument("--budget", type=float, default=50.0)
    parser.add_argument("--mailer", choices=("outbox", "resend"), default="outbox")
    args = parser.parse_args()
    now = datetime(2026, 12, 10, 12, 0, tzinfo=UTC)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        text = (ROOT / "campaign.toml").read_text().replace("budget_seconds = 50", f"budget_seconds = {args.budget}")
        env = {"XMAS_SECRET": "bench-secret-0123456789"}
        emulator = None
        if args.mailer == "resend":
            sys.path.insert(0, str(ROOT / "tests"))
            from resend_emulator import ResendEmulator

            emulator = ResendEmulator(api_key="re_bench", rate_limit=None).start()
            text = text.replace('backend = "outbox"', 'backend = "resend"')
            text = text.replace("requests_per_second = 5 ", "requests_per_second = 100 ")
            env |= {"RESEND_API_KEY": "re_bench", "RESEND_API_URL": emulator.base_url}
        (folder / "campaign.toml").write_text(text)
        shutil.copytree(ROOT / "templates", folder / "templates")
        engine = engine_from_config(str(folder / "campaign.toml"), now=now.isoformat(), env=env)
        con = sqlite3.connect(folder / ".xmas" / "xmas.db")
        stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")
        con.executemany(
            "INSERT INTO emails (id, enrollment_key, email, sequence, step, template, sender, due, state, data) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    f"lead-nurture:c{n}@example.com#1",
                    f"lead-nurture:c{n}@example.com",
                    f"c{n}@example.com",
                    "lead-nurture",
                    1,
                    "lead_nurture_email_1",
                    "xmas",
                    stamp,
                    "Scheduled",
                    json.dumps({"email": f"c{n}@example.com", "first_name": "C"}),
                )
                for n in range(args.rows)
            ],
        )
        con.commit()
        print(f"{args.rows} due rows, budget {args.budget:g} s, mailer {args.mailer}")
        total_sent, ticks, wall, cpu = 0, 0, time.perf_counter(), time.process_time()
        while True:
            t, c = time.perf_counter(), time.process_time()
            report = tick(engine)
            ticks += 1
            sent = report.count("sent")
            total_sent += sent
            print(
                f"tick {ticks}: {sent} sent in {time.perf_counter() - t:.1f} s "
                f"(cpu {time.process_time() - c:.1f} s), {report.left_over}{'+' if report.more_left else ''} left"
            )
            if not report.left_over and not report.more_left:
                break
            if sent == 0:
                print("no progress: stopping")
                break
        elapsed, used = time.perf_counter() - wall, time.process_time() - cpu
        print(
            f"drained {total_sent} of {args.rows} in {ticks} ticks, {elapsed:.1f} s wall, {used:.1f} s cpu: "
            f"{1000 * used / max(1, total_sent):.1f} ms cpu per email"
        )
        engine.close()
        if emulator is not None:
            print(f"emulator: {len(emulator.sent)} messages delivered, {len(emulator.requests)} requests")
            emulator.stop()


if __name__ == "__main__":
    main()
