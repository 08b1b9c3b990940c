"""Random faults at the emulators: every email still goes out exactly once.

Resend answers 429s, 5xx (some after it accepted the emails) and drops connections after accepting; Notion answers
30% 429s and 10% 5xx/529 (half of those after applying the write). `xmas tick` runs as a subprocess, a minute later
each time (a transient failure backs off 1, 2, 4 ... minutes), until `xmas status` shows nothing due, nothing
waiting, and nothing more due that day. Then every email was delivered once at the Resend emulator, no row is
Failed, and `xmas status` exits 0.
"""

from __future__ import annotations

import subprocess
import tomllib
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

import pytest

from chaos.harness import T0, TICK_SLICE, ChaosProject, describe

pytestmark = pytest.mark.chaos

MAX_TICKS = 40
RESEND_CHAOS: dict[str, Any] = {"rate_429": 0.25, "rate_5xx": 0.15, "after_processing_share": 0.5, "rate_drop": 0.15}
NOTION_CHAOS: dict[str, Any] = {"rate_429": 0.3, "rate_5xx": 0.1, "after_processing_share": 0.5}


def done(code: int, status: dict[str, Any] | None) -> bool:
    """Healthy (nothing Failed or waiting), nothing overdue, and nothing more due on the first day."""
    if code != 0 or status is None or status["overdue"]:
        return False
    upcoming = status["next_due"]
    return upcoming is None or datetime.fromisoformat(upcoming["due"]) >= T0 + timedelta(days=1)


def tick_until_done(p: ChaosProject, now: datetime) -> tuple[datetime, list[subprocess.CompletedProcess[str]]]:
    """Tick (a subprocess) a minute apart until `done`; at most MAX_TICKS."""
    results: list[subprocess.CompletedProcess[str]] = []
    for _ in range(MAX_TICKS):
        result = p.tick(now)
        results.append(result)
        # 0 all sent, 1 some wait for a later tick, 4 the store or the mailer gave up for now; never a crash
        assert result.returncode in (0, 1, 4) and "Traceback" not in result.stderr, describe(result)
        if done(*p.status_in_process(now)):
            return now, results
        now += timedelta(minutes=1)
    raise AssertionError(f"not done after {MAX_TICKS} ticks; the last one:\n{describe(results[-1])}")


def assert_faults_happened(applied: Counter[str], *kinds: str) -> None:
    labels = {label.split()[0] for label in applied}
    assert "429" in labels and any(label.startswith("5") for label in labels), applied
    assert any(label.endswith(" after") for label in applied), applied
    for kind in kinds:
        assert kind in labels, applied


def test_sqlite_and_resend_deliver_every_email_once_through_random_faults(sqlite_resend: ChaosProject) -> None:
    p = sqlite_resend
    p.set("campaign", testing=True)  # lead-nurture's five steps a minute apart
    if TICK_SLICE is not None:
        p.set("tick", slice=5)  # more, smaller batches
    leads = p.enroll_leads(30)
    # Certain, besides the random ones: the first batch is refused four times (every try of the first tick), and
    # the next one is accepted but its answer lost four times: both wait for a later tick.
    p.resend.inject_fault(503, "service_unavailable", times=4)
    p.resend.drop_connection_after_accept(times=4)
    chaos = p.resend.chaos(2026, **RESEND_CHAOS)
    assert chaos is not None

    now, results = tick_until_done(p, T0 + timedelta(minutes=1))

    p.resend.chaos(None)
    assert p.delivered() == Counter({(lead, "lead-nurture", str(step)): 1 for lead in leads for step in range(1, 6)})
    code, status = p.status(now)
    assert code == 0 and status["problems"] == [], status
    assert status["counts"]["lead-nurture"] == {"Sent": 150}, status
    assert_faults_happened(chaos.applied, "drop")
    assert results[0].returncode == 1 and "retry" in results[0].stdout, describe(results[0])


def tracker_rows(p: ChaosProject) -> list[dict[str, Any]]:
    assert p.notion is not None
    database = tomllib.loads((p.path / "campaign.toml").read_text())["notion"]["tracker"]
    return p.notion.pages(p.notion.data_source_id(database))


def text_of(page: dict[str, Any], name: str) -> str:
    prop = page["properties"][name]
    return "".join(item["plain_text"] for item in prop[prop["type"]])


def test_notion_and_resend_deliver_every_email_once_through_random_faults(notion_resend: ChaosProject) -> None:
    p = notion_resend
    assert p.notion is not None
    leads = p.enroll_leads(27, prefix="calm")
    notion_chaos = p.notion.chaos(2027, **NOTION_CHAOS)
    assert notion_chaos is not None
    leads += p.enroll_leads(3, prefix="rough", tries=6)  # enrolled through the faults; an exit 4 is retried
    resend_chaos = p.resend.chaos(2028, **RESEND_CHAOS)
    assert resend_chaos is not None

    now, _ = tick_until_done(p, T0 + timedelta(minutes=1))

    p.notion.chaos(None)
    p.resend.chaos(None)
    assert p.delivered() == Counter({(lead, "lead-nurture", "1"): 1 for lead in leads})
    code, status = p.status(now)
    assert code == 0 and status["problems"] == [], status
    assert status["counts"]["lead-nurture"] == {"Sent": 30, "Scheduled": 120}, status
    ids = Counter(text_of(page, "Row ID") for page in tracker_rows(p))  # no retried write made a second row
    assert len(ids) == 150 and set(ids.values()) == {1}, [i for i, n in ids.items() if n > 1]
    assert_faults_happened(notion_chaos.applied, "529")
    assert_faults_happened(resend_chaos.applied, "drop")
