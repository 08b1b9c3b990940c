"""`xmas send-test`: one email, rendered as `xmas preview` renders it, through the configured mailer (outbox or
Resend), subject prefixed [TEST]; recorded nowhere, a contact's address refused unless --contact names them."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from conftest import SECRET, Cli, body_text
from resend_emulator import ResendEmulator
from test_cli_enroll import contacts_in_db, rows_in_db
from test_cli_tick import T0, at, enroll, outbox

from xmas_cli.core.tokens import read_token
from xmas_cli.engine.preview import PREVIEW_SECRET

NOW = ["--now", at(T0)]
TESTER = "tester@example.net"


def dump(project: Path) -> list[str]:
    """Every table of the SQLite store, as SQL: equal dumps, nothing written or changed."""
    con = sqlite3.connect(project / ".xmas" / "xmas.db")
    try:
        return list(con.iterdump())
    finally:
        con.close()


def link_in(headers_value: str) -> str:
    return headers_value.split(",")[0].strip("<> ")


# ------------------------------------------------------------------------------------------------ outbox


def test_outbox_one_eml_rendered_as_preview_and_nothing_recorded(xmas: Cli, project: Path) -> None:
    enroll(xmas, "lead-nurture")
    before, status = dump(project), xmas.json("status", *NOW)
    shown = xmas.json("preview", "christmas_email_2", *NOW)

    result = xmas("send-test", "christmas_email_2", "--to", TESTER, *NOW)

    [sent] = outbox(project)
    line = result.stdout.strip()
    assert line == f"sent test of christmas_email_2 to {TESTER} (message id {sent['Message-ID'].strip()})"
    assert sent["Subject"] == "[TEST] " + shown["subject"] and sent["To"] == TESTER
    assert sent["From"] == "BusinessX Canada <hello@example.org>" and sent["Reply-To"] == "sang@example.org"
    assert sent["X-Xmas-Tags"] == "campaign=christmas-2026, test=true"
    plain = body_text(sent, "plain").replace("\r\n", "\n")
    assert plain.rstrip("\n") == shown["text"].replace("\r\n", "\n").rstrip("\n")  # the preview's very text
    assert "Sarah" in body_text(sent, "html")  # the sample data, as preview renders it
    link = link_in(sent["List-Unsubscribe"])  # the preview's own link, the one in the body
    assert link in body_text(sent, "plain") and read_token(SECRET, link.split("t=")[1]) == "sarah@example.com"
    assert "<mailto:unsubscribe@example.org?subject=unsubscribe>" in sent["List-Unsubscribe"]
    assert sent["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"  # a marketing template
    assert result.stderr == ""  # XMAS_SECRET is set: no note

    assert dump(project) == before  # no row written or changed, no contact created
    assert xmas.json("status", *NOW) == status

    doc = xmas.json("send-test", "christmas_email_2", "--to", TESTER, *NOW)  # again: a second email
    assert set(doc) == {"version", "ok", "template", "to", "subject", "message_id"}
    assert (doc["version"], doc["ok"], doc["template"], doc["to"]) == (1, True, "christmas_email_2", TESTER)
    assert doc["subject"] == "[TEST] " + shown["subject"]
    assert len(outbox(project)) == 2 and doc["message_id"] in {m["Message-ID"].strip() for m in outbox(project)}
    assert dump(project) == before


def test_a_transactional_template_has_no_one_click_header_and_data_file_is_rendered(xmas: Cli, project: Path) -> None:
    (project / "d.json").write_text(json.dumps({"email": "dora@example.com", "first_name": "Dora"}))
    xmas("send-test", "onboarding_phase1_email_1", "--to", TESTER, "--data", "d.json", *NOW)
    [sent] = outbox(project)
    assert "Dora" in body_text(sent, "plain") and "Sarah" not in body_text(sent, "plain")
    assert sent["List-Unsubscribe-Post"] is None and sent["List-Unsubscribe"]  # as compose does for onboarding
    link = link_in(sent["List-Unsubscribe"])
    assert link in body_text(sent, "plain") and read_token(SECRET, link.split("t=")[1]) == "dora@example.com"
    assert rows_in_db(project) == [] and contacts_in_db(project) == []  # Dora is not a contact now
    assert xmas.json("status", *NOW)["counts"]["onboarding"] == {}


def test_without_xmas_secret_it_signs_with_the_preview_secret_and_says_so(
    xmas: Cli, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("XMAS_SECRET")
    result = xmas("send-test", "christmas_email_2", "--to", TESTER, *NOW)
    assert result.stdout.startswith(f"sent test of christmas_email_2 to {TESTER} (message id <")
    assert "preview-only secret" in result.stderr and "XMAS_SECRET is unset" in result.stderr
    [sent] = outbox(project)
    link = link_in(sent["List-Unsubscribe"])
    assert read_token(PREVIEW_SECRET, link.split("t=")[1]) == "sarah@example.com"


# ------------------------------------------------------------------------------------------------ Resend


def test_resend_gets_one_tagged_email_per_run(xmas: Cli, resend_api: ResendEmulator, project: Path) -> None:
    enroll(xmas, "lead-nurture")
    before = dump(project)
    doc = xmas.json("send-test", "lead_nurture_email_2", "--to", TESTER, *NOW)
    [sent] = resend_api.sent
    assert sent["to"] == [TESTER] and sent["subject"].startswith("[TEST] ") and sent["subject"] == doc["subject"]
    assert {t["name"]: t["value"] for t in sent["tags"]} == {"campaign": "christmas-2026", "test": "true"}
    assert doc["message_id"] == sent["id"] and sent["reply_to"] == ["sang@example.org"]
    assert sent["headers"]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"

    xmas("send-test", "lead_nurture_email_2", "--to", TESTER, *NOW)  # the same test again goes again
    assert len(resend_api.sent) == 2
    keys = {m["idempotency_key"] for m in resend_api.sent}
    assert len(keys) == 2 and all(k.startswith("xmas-christmas-2026-") for k in keys)
    assert dump(project) == before and not outbox(project)


def test_a_send_resend_refuses_is_exit_1_with_its_error(xmas: Cli, resend_api: ResendEmulator) -> None:
    resend_api.inject_fault(422, "validation_error", message="Invalid `to` field.")
    result = xmas("send-test", "christmas_email_2", "--to", TESTER, *NOW, code=1)
    assert "not sent" in result.stderr and "Invalid `to` field." in result.stderr
    assert resend_api.sent == [] and "sent test" not in result.stdout


# ------------------------------------------------------------------------------------------------ contacts


def test_a_contacts_address_is_refused_unless_contact_names_them(xmas: Cli, project: Path) -> None:
    enroll(xmas, "lead-nurture")  # lena@example.com
    enroll(xmas, "postcall")  # paul@example.com
    before = dump(project)
    for to, extra in (
        ("lena@example.com", []),
        ("LENA@example.com", []),
        ("lena@example.com", ["--contact", "paul@example.com"]),
        ("lena@example.com", ["--data", "d.json"]),
    ):
        (project / "d.json").write_text(json.dumps({"first_name": "X"}))
        result = xmas("send-test", "christmas_email_2", "--to", to, *extra, *NOW, code=2)
        assert "--to" in result.stderr and "lena@example.com is a contact" in result.stderr
        assert "--contact lena@example.com" in result.stderr  # the fix
    doc = xmas.json("send-test", "christmas_email_2", "--to", "lena@example.com", *NOW, code=2)
    assert doc["ok"] is False and doc["error"]["code"] == 2 and doc["error"]["fields"][0]["field"] == "--to"
    assert not outbox(project) and dump(project) == before

    # named: sent to them, with their data (their own row's email for a template they have a row of)
    for template in ("christmas_email_2", "lead_nurture_email_1"):
        xmas("send-test", template, "--to", "lena@example.com", "--contact", "Lena@Example.com", *NOW)
    sent = outbox(project)
    assert len(sent) == 2 and {m["To"] for m in sent} == {"lena@example.com"}
    for message in sent:
        assert message["Subject"].startswith("[TEST] ") and message["X-Xmas-Tags"].endswith("test=true")
        text = body_text(message, "plain")
        assert "Lena" in text and "Sarah" not in text
        link = link_in(message["List-Unsubscribe"])
        assert link in text and read_token(SECRET, link.split("t=")[1]) == "lena@example.com"
    assert dump(project) == before

    # a contact's data, sent to the operator's own address
    xmas("send-test", "christmas_email_2", "--to", TESTER, "--contact", "paul@example.com", *NOW)
    paul = [m for m in outbox(project) if m["To"] == TESTER]
    assert len(paul) == 1 and "Paul" in body_text(paul[0], "plain")
    assert dump(project) == before


def test_a_suppressed_contact_gets_no_test_even_when_named(xmas: Cli, project: Path) -> None:
    enroll(xmas, "lead-nurture")
    xmas("unsubscribe", "lena@example.com", *NOW)
    before = dump(project)
    result = xmas("send-test", "christmas_email_2", "--to", "lena@example.com", "--contact", "lena@example.com", code=2)
    assert "--to" in result.stderr and "suppressed" in result.stderr
    assert not outbox(project) and dump(project) == before


# ------------------------------------------------------------------------------------------------ bad input


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["christmas_email_2", "--to", "not an address"], "--to"),
        (["christmas_email_2", "--to", "tester@example.net\nBcc: x@example.com"], "--to"),
        (["christmas_email_2"], "--to"),  # missing: Typer's usage error
        (["no_such_template", "--to", TESTER], "no_such_template"),
        (["christmas_email_2", "--to", TESTER, "--contact", "lena@example.com", "--data", "d.json"], "--data"),
        (["christmas_email_2", "--to", TESTER, "--contact", "nobody@example.com"], "nobody@example.com"),
        (["christmas_email_2", "--to", TESTER, "--data", "list.json"], "one JSON object"),
    ],
    ids=["bad-to", "header-injection", "no-to", "unknown-template", "contact-and-data", "unknown-contact", "list"],
)
def test_bad_input_is_exit_2_and_nothing_is_sent(xmas: Cli, project: Path, args: list[str], says: str) -> None:
    enroll(xmas, "lead-nurture")
    (project / "d.json").write_text(json.dumps({"first_name": "X"}))
    (project / "list.json").write_text("[1, 2]")
    before = dump(project)
    result = xmas("send-test", *args, *NOW, code=2)
    assert says in result.stderr
    assert not outbox(project) and dump(project) == before
