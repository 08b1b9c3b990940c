"""One sending runner, as its own process, for tests/test_pacer.py: a ResendMailer configured at RATE requests a
second sends COUNT emails, one request each, against the emulator at URL, pacing in the PostgreSQL budget at DSN (or
alone, with "local"), with Resend's window shortened to WINDOW seconds. It prints "ready", waits until the file GO
exists (so runners start together), sends, and prints one JSON line: the row ids it sent and the ones that failed.

    python tests/pacing_runner.py URL KEY DSN|local WINDOW RATE COUNT NAME GO
"""

from __future__ import annotations

import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from xmas_cli.core.outgoing import OutgoingEmail, idempotency_key
from xmas_cli.mailers.resend import ResendMailer


def email(name: str, n: int) -> OutgoingEmail:
    row_id = f"pacing/{name}-{n}@example.com#1"
    return OutgoingEmail(
        row_id=row_id,
        idempotency_key=idempotency_key("pacing", row_id),
        to=f"{name}-{n}@example.com",
        sender="Pacing <hello@example.org>",
        reply_to="",
        subject=f"Hello {n}",
        html=f"<p>Hi {n}</p>",
        text=f"Hi {n}",
        date=datetime(2026, 12, 1, 9, tzinfo=UTC),
        headers={},
        tags={"runner": name},
    )


def main(url: str, key: str, dsn: str, window: str, rate: str, count: str, name: str, go: str) -> None:
    budget = None
    if dsn != "local":
        from xmas_cli.stores.pg_budget import PgSendBudget

        budget = PgSendBudget(dsn)
    mailer = ResendMailer(key, api_url=url, rate_limit=float(rate), max_retries=5, budget=budget, window=float(window))
    print("ready", flush=True)
    deadline = time.monotonic() + 30
    while not Path(go).exists():
        if time.monotonic() > deadline:
            raise SystemExit("never told to go")
        time.sleep(0.005)
    sent: list[str] = []
    failed: list[str] = []
    for n in range(int(count)):
        [result] = mailer.send([email(name, n)])
        (sent if result.ok else failed).append(result.row_id)
    mailer.close()
    print(json.dumps({"sent": sent, "failed": failed}), flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:])
