"""`xmas status` counts in SQL on SQLite: the same answer as reading every row, damaged ones included."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from conftest import Cli

from xmas_cli.backends import engine_from_config
from xmas_cli.stores.base import summarize

NOW = datetime(2026, 12, 3, 10, 0, tzinfo=UTC)


def test_the_sql_summary_equals_the_row_by_row_one(xmas: Cli, project: Path) -> None:
    for n in range(6):
        payload = {"email": f"p{n}@example.com", "first_name": "P", "business_name": "B"}
        xmas("enroll", "lead-nurture", "--payload", "-", "--now", "2026-12-01T10:00:00Z", input=json.dumps(payload))
    xmas("tick", "--now", "2026-12-01T10:00:00Z")
    xmas("cancel", "p1@example.com")
    with sqlite3.connect(project / ".xmas" / "xmas.db") as con:  # every kind of trouble status must show
        con.execute(
            "UPDATE emails SET state = 'Failed', last_error = 'boom' WHERE email = 'p2@example.com' AND step = 2"
        )
        con.execute("UPDATE emails SET last_error = 'template missing' WHERE email = 'p3@example.com' AND step = 3")
        con.execute("UPDATE emails SET state = 'Bogus' WHERE email = 'p4@example.com' AND step = 4")
        con.execute("UPDATE emails SET data = '{{{' WHERE email = 'p5@example.com' AND step = 5")
        con.execute("UPDATE emails SET step = 'two' WHERE email = 'p0@example.com' AND step = 2")
    engine = engine_from_config(str(project / "campaign.toml"), "2026-12-03T10:00:00Z")
    try:
        fast = engine.store.summary(NOW)
        slow = summarize(engine.store.all_emails(), NOW)
    finally:
        engine.close()
    assert sum(sum(v.values()) for v in fast.counts.values()) == 30
    assert fast.overdue == slow.overdue and fast.overdue > 0
    assert fast.next_due is not None and slow.next_due is not None and fast.next_due.id == slow.next_due.id
    assert sorted(r.id for r in fast.problems) == sorted(r.id for r in slow.problems)
    assert len(fast.problems) == 5, [(r.id, r.state, r.last_error, r.defect) for r in fast.problems]
    # the counts agree where the row decodes; a state xmas does not know is counted under its stored name
    assert fast.counts["lead-nurture"]["Bogus"] == 1 and slow.counts["lead-nurture"].get("Bogus") is None
    assert fast.counts["lead-nurture"]["Sent"] == slow.counts["lead-nurture"]["Sent"] == 6
