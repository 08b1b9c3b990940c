"""An enrollment is written all or nothing. On SQLite and PostgreSQL the contact and its rows go in one transaction:
a store that fails mid-way (here: on the third row; in the field, a full disk) leaves nothing, and a retry is safe.
On Notion, which has no transactions, the enrollment is noted before it is written: the next tick completes an
interrupted one, with the due times it would have had, and `xmas status` flags it (exit 1) until then."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import Cli
from notion_emulator import NotionEmulator
from test_notion_e2e import Notion, emu, notion, on_notion  # noqa: F401  (emu and notion are fixtures)

from xmas_cli.backends import engine_from_config
from xmas_cli.core.model import ScheduledEmail
from xmas_cli.engine import enroll
from xmas_cli.errors import StoreUnavailable

T0 = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
LENA = {"email": "lena@example.com", "first_name": "Lena", "business_name": "Lena Nails"}
DUES = [T0 + timedelta(days=d) for d in (0, 2, 4, 6, 8)]  # lead nurture's five steps


@pytest.mark.every_store
def test_a_store_failing_mid_enrollment_leaves_nothing_and_a_retry_writes_it_whole(project: Path) -> None:
    engine = engine_from_config(str(project / "campaign.toml"), T0.isoformat())
    store = engine.store
    real = type(store)
    written: list[str] = []

    class FailsOnTheThirdRow(real):  # type: ignore[valid-type,misc]
        def add_email(self, row: ScheduledEmail) -> ScheduledEmail:
            if len(written) == 2:
                raise StoreUnavailable(f"{self.description}: no space left on device", "free space")
            written.append(row.id)
            return super().add_email(row)  # type: ignore[no-any-return]

    store.__class__ = FailsOnTheThirdRow
    with pytest.raises(StoreUnavailable):
        enroll(engine, "lead-nurture", LENA)
    store.__class__ = real
    assert len(written) == 2  # two rows were written before the failure...
    assert list(store.all_emails()) == [] and store.get_contact(LENA["email"]) is None  # ...and rolled back

    result = enroll(engine, "lead-nurture", LENA)  # the retry
    assert [r.due for r in result.rows] == DUES
    assert [r.step for r in store.all_emails()] == [1, 2, 3, 4, 5]
    engine.close()


def test_on_notion_the_next_tick_completes_an_interrupted_enrollment(
    xmas: Cli,
    notion: Notion,  # noqa: F811
    emu: NotionEmulator,  # noqa: F811
) -> None:
    creates = [0]

    def third_row_fails(event: str, index: int, method: str, path: str) -> None:
        if event == "answered" and method == "POST" and path.rstrip("/").endswith("/pages"):
            creates[0] += 1
            if creates[0] == 3:  # the contact and two rows are in: Notion fails from now on, for a while
                emu.inject_fault(503, "service_unavailable", times=20, method="POST", path_contains="/pages")

    emu.on_request = third_row_fails
    payload = json.dumps(LENA)
    failed = xmas("enroll", "lead-nurture", "--payload", "-", "--now", T0.isoformat(), input=payload, code=4)
    assert "a retry is safe" in failed.stderr or "xmas: error:" in failed.stderr
    emu.on_request = None
    emu.clear_faults()
    rows = [r for r in notion.rows() if r.get("Email") == LENA["email"]]
    assert 0 < len(rows) < 5, rows  # half-written

    status = xmas("status", "--now", (T0 + timedelta(minutes=1)).isoformat(), code=1)
    assert (
        "enrollment interrupted: lena@example.com in lead-nurture at 2026-12-01T10:00:00Z, not all of it written"
        in status.stdout
    ), status.stdout
    assert "the next tick completes it; run `xmas tick` to complete it now" in status.stdout
    doc: dict[str, Any] = xmas.json("status", "--now", (T0 + timedelta(minutes=1)).isoformat(), code=1)
    [entry] = doc["unfinished_enrollments"]
    assert (entry["sequence"], entry["email"], entry["at"]) == ("lead-nurture", LENA["email"], "2026-12-01T10:00:00Z")

    xmas("tick", "--now", (T0 + timedelta(days=1)).isoformat())  # a day later: completed as of the enrollment
    rows = sorted((r for r in notion.rows() if r.get("Email") == LENA["email"]), key=lambda r: r["Row ID"])
    assert [r["Row ID"] for r in rows] == [f"lead-nurture:lena@example.com#{n}" for n in range(1, 6)]
    assert [r["Due"] for r in rows][1:] == [d.strftime("%Y-%m-%dT%H:%M:%SZ") for d in DUES[1:]]
    assert xmas.json("status", "--now", (T0 + timedelta(days=1)).isoformat())["unfinished_enrollments"] == []
