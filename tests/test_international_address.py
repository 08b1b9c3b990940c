"""An address at an international domain (`user@bücher.example`): kept and shown in Unicode, sent in its ASCII
(IDNA) form, which is the only form a mail provider routes. A non-ASCII name before the @ is refused at once."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from conftest import Cli
from resend_emulator import ResendEmulator
from test_cli_tick import T0, at, enroll, outbox

UNICODE = "user@bücher.example"
ASCII = "user@xn--bcher-kva.example"


def test_resend_gets_the_ascii_domain_and_show_keeps_the_unicode_one(xmas: Cli, resend_api: ResendEmulator) -> None:
    enroll(xmas, "lead-nurture", email="User@Bücher.example")
    enroll(xmas, "lead-nurture", email="user@XN--BCHER-KVA.example", first_name="Twice")  # the same contact

    ticked = xmas.json("tick", "--now", at(T0 + timedelta(minutes=5)))

    assert [(o["email"], o["action"]) for o in ticked["outcomes"]] == [(UNICODE, "sent")]
    assert [m["to"] for m in resend_api.sent] == [[ASCII]]
    shown = xmas.json("show", UNICODE)
    assert shown["contact"]["email"] == UNICODE
    assert [(r["step"], r["state"]) for r in shown["emails"]][:2] == [(1, "Sent"), (2, "Scheduled")]
    assert xmas.json("show", ASCII)["contact"]["email"] == UNICODE


def test_the_outbox_writes_the_ascii_domain_in_the_to_header(xmas: Cli, project: Path) -> None:
    enroll(xmas, "lead-nurture", email=UNICODE)
    xmas.json("tick", "--now", at(T0 + timedelta(minutes=5)))
    [message] = outbox(project)
    assert message["To"] == ASCII


@pytest.mark.parametrize("address", ["jösé@example.com", "jösé@bücher.example"])
def test_a_non_ascii_name_before_the_at_is_refused_with_the_fix(xmas: Cli, address: str) -> None:
    result = xmas("enroll", "lead-nurture", "--email", address, "--first-name", "José", "--now", at(T0), code=2)
    local = address.split("@")[0]
    assert f"the part before @ ({local}) is not ASCII, and mail to it cannot be delivered" in result.stderr
    assert xmas("show", address, code=2).exit_code == 2
