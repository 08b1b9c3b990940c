"""`xmas tick` with `[mailer] backend = "resend"`, through the real SDK against the local Resend emulator."""

from __future__ import annotations

import sqlite3
from datetime import timedelta

import pytest
from conftest import SECRET, Cli
from resend_emulator import ResendEmulator
from test_cli_enroll import rows_in_db
from test_cli_tick import T0, at, enroll

from xmas_cli.core.tokens import read_token


@pytest.fixture
def emu(resend_api: ResendEmulator) -> ResendEmulator:
    return resend_api


def enroll_three(xmas: Cli) -> None:
    for n in range(3):
        enroll(xmas, "postcall", email=f"p{n}@example.com", call_date=at(T0))


def test_due_emails_go_in_one_batch_with_headers_tags_and_exactly_once(xmas: Cli, emu: ResendEmulator) -> None:
    enroll_three(xmas)
    enroll(xmas, "onboarding")
    assert "4 sent" in xmas("tick", "--now", at(T0 + timedelta(hours=1))).stdout
    posts = [r for r in emu.requests if r["method"] == "POST"]
    assert [r["path"] for r in posts] == ["/emails/batch"]
    assert posts[0]["headers"]["x-batch-validation"] == "permissive" and posts[0]["headers"]["idempotency-key"]
    by_to = {m["to"][0]: m for m in emu.sent}
    assert set(by_to) == {"p0@example.com", "p1@example.com", "p2@example.com", "olivia@example.com"}
    paul = by_to["p0@example.com"]
    assert paul["reply_to"] == ["sang@example.org"] and "{{" not in paul["html"] and paul["text"]
    assert paul["headers"]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    link = paul["headers"]["List-Unsubscribe"].split(",")[0].strip("<> ")
    assert read_token(SECRET, link.split("t=")[1]) == "p0@example.com"
    assert {t["name"]: t["value"] for t in paul["tags"]} == {
        "campaign": "christmas-2026",
        "sequence": "postcall",
        "step": "1",
    }
    assert "List-Unsubscribe-Post" not in by_to["olivia@example.com"]["headers"]  # transactional
    assert "List-Unsubscribe" in by_to["olivia@example.com"]["headers"]
    ids = {m["id"] for m in emu.sent}
    assert {r["message_id"] for r in rows_in_db(xmas.project) if r["state"] == "Sent"} == ids
    xmas("tick", "--now", at(T0 + timedelta(hours=1)))
    assert len(emu.sent) == 4


def test_a_connection_dropped_after_acceptance_never_delivers_a_second_copy(xmas: Cli, emu: ResendEmulator) -> None:
    enroll_three(xmas)
    emu.drop_connection_after_accept(times=4)  # the first try and all three retries lose their answer
    result = xmas("tick", "--now", at(T0 + timedelta(hours=1)), code=1)
    assert "3 retry" in result.stdout and len(emu.sent) == 3  # Resend accepted them the first time
    rows = [r for r in rows_in_db(xmas.project) if r["step"] == 1]
    assert {r["state"] for r in rows} == {"Scheduled"} and {r["attempts"] for r in rows} == {1}
    assert "4 times" in rows[0]["last_error"]
    xmas("tick", "--now", at(T0 + timedelta(hours=1, minutes=1)))  # after the backoff: replayed, not re-sent
    assert len(emu.sent) == 3
    rows = [r for r in rows_in_db(xmas.project) if r["step"] == 1]
    assert {r["state"] for r in rows} == {"Sent"} and {r["message_id"] for r in rows} == {m["id"] for m in emu.sent}


def test_one_bad_address_fails_only_its_own_row(xmas: Cli, emu: ResendEmulator) -> None:
    enroll_three(xmas)
    con = sqlite3.connect(xmas.project / ".xmas" / "xmas.db")  # as a person might mistype it in the store
    con.execute("UPDATE emails SET email = 'p1 at example' WHERE email = 'p1@example.com' AND step = 1")
    con.commit()
    result = xmas("tick", "--now", at(T0 + timedelta(hours=1)), code=1)
    assert "2 sent" in result.stdout and "1 failed" in result.stdout
    states = {r["email"]: r["state"] for r in rows_in_db(xmas.project) if r["step"] == 1}
    assert states == {"p0@example.com": "Sent", "p1 at example": "Failed", "p2@example.com": "Sent"}
    assert sorted(m["to"][0] for m in emu.sent) == ["p0@example.com", "p2@example.com"]


def test_missing_or_wrong_api_key(xmas: Cli, emu: ResendEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
    enroll_three(xmas)
    monkeypatch.delenv("RESEND_API_KEY")
    assert "RESEND_API_KEY is not set" in xmas("tick", "--now", at(T0 + timedelta(hours=1)), code=3).stderr
    monkeypatch.setenv("RESEND_API_KEY", "re_wrong")
    result = xmas("tick", "--now", at(T0 + timedelta(hours=1)), code=4)
    assert "Resend refused the API key" in result.stderr and "re_wrong" not in result.stderr
    assert emu.sent == [] and {r["state"] for r in rows_in_db(xmas.project)} == {"Scheduled"}
