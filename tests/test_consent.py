"""CASL consent: what each enrollment gives, how long it lasts, and that no marketing email goes without it."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from conftest import Cli, replace_once
from test_notion_e2e import Notion, emu, notion, on_notion  # noqa: F401  (emu and notion are fixtures)
from test_web import Web, web  # noqa: F401  (a fixture)

pytestmark = pytest.mark.every_store  # the rules hold on SQLite and on PostgreSQL

T0 = "2026-12-01T10:30:00Z"
LENA = ["--email", "lena@example.com", "--first-name", "Lena"]


def consent_of(xmas: Cli, who: str = "lena@example.com") -> dict[str, str | None]:
    return dict(xmas.json("show", who)["contact"]["consent"])


def test_an_inquiry_gives_implied_consent_for_six_months_and_show_says_so(xmas: Cli) -> None:
    xmas("enroll", "lead-nurture", *LENA, "--now", T0)
    assert consent_of(xmas) == {
        "kind": "implied",
        "source": "lead-nurture",
        "at": T0,
        "expires": "2027-06-02T10:30:00Z",
    }
    assert (
        "consent: implied · lead-nurture · 2026-12-01T10:30:00Z · expires 2027-06-02T10:30:00Z"
        in xmas("show", "lena@example.com").stdout
    )


def test_a_purchase_gives_two_years_and_express_consent_never_expires(xmas: Cli) -> None:
    xmas("enroll", "onboarding", *LENA, "--payment-date", T0, "--now", T0)
    assert consent_of(xmas)["expires"] == "2028-11-30T10:30:00Z"
    later = {"email": "lena@example.com", "first_name": "Lena", "consent": "express"}
    xmas("enroll", "lead-nurture", "--payload", "-", "--now", "2026-12-02T10:30:00Z", input=json.dumps(later))
    assert consent_of(xmas) == {
        "kind": "express",
        "source": "lead-nurture (payload)",
        "at": "2026-12-02T10:30:00Z",
        "expires": None,
    }
    xmas("enroll", "postcall", *LENA, "--call-date", T0, "--now", "2026-12-03T10:30:00Z")  # implied: not a step up
    assert consent_of(xmas)["kind"] == "express"


def test_expired_implied_consent_skips_marketing_email_and_names_why(xmas: Cli) -> None:
    xmas("enroll", "lead-nurture", *LENA, "--now", T0)
    late = "2027-07-01T10:30:00Z"  # the nurture was paused by hand, then resumed long after
    dry = xmas("tick", "--dry-run", "--now", late)
    assert "no consent: implied consent expired on 2027-06-02" in dry.stdout and "would-skip" in dry.stdout
    report = xmas.json("tick", "--now", late)
    assert {o["action"] for o in report["outcomes"]} == {"skipped"} and report["ok"]
    rows = xmas.json("show", "lena@example.com")["emails"]
    assert {(r["state"], r["note"]) for r in rows} == {("Skipped", "no consent: implied consent expired on 2027-06-02")}


@pytest.mark.sqlite_only
def test_transactional_email_is_not_affected(xmas: Cli, project: Path) -> None:
    xmas("enroll", "onboarding", *LENA, "--payment-date", T0, "--now", T0)
    db = sqlite3.connect(project / ".xmas" / "xmas.db", isolation_level=None)
    db.execute("UPDATE contacts SET consent = 'implied · old · 2020-01-01T00:00:00Z · expires 2020-07-01T00:00:00Z'")
    assert "1 sent" in xmas("tick", "--now", "2026-12-01T11:30:00Z").stdout


def test_without_require_nothing_is_checked(xmas: Cli, project: Path) -> None:
    config = project / "campaign.toml"
    config.write_text(replace_once(config.read_text(), "[consent]\nrequire = true", "[consent]\nrequire = false"))
    xmas("enroll", "lead-nurture", *LENA, "--now", T0)
    assert "1 sent" in xmas("tick", "--now", "2027-07-01T10:30:00Z").stdout


@pytest.mark.sqlite_only
def test_a_contact_from_before_consent_was_recorded_has_implied_consent_from_its_last_enrollment(
    xmas: Cli, project: Path
) -> None:
    xmas("enroll", "lead-nurture", *LENA, "--now", T0)
    db = sqlite3.connect(project / ".xmas" / "xmas.db", isolation_level=None)
    db.execute("UPDATE contacts SET consent = NULL")
    assert consent_of(xmas) == {
        "kind": "implied",
        "source": "enrollment before consent was recorded",
        "at": T0,
        "expires": "2027-06-02T10:30:00Z",
    }
    assert "1 sent" in xmas("tick", "--now", T0).stdout


def test_a_bad_consent_value_is_refused(xmas: Cli, web: Web) -> None:  # noqa: F811
    body = {"email": "lena@example.com", "first_name": "Lena", "consent": "maybe"}
    result = xmas("enroll", "lead-nurture", "--payload", "-", input=json.dumps(body), code=2)
    assert "consent:" in result.stderr and "'express' or 'implied'" in result.stderr
    answer = web.enroll("lead-nurture", body)
    assert answer.status == 400 and answer.json()["error"]["fields"][0]["field"] == "consent"
    assert web.rows("lena@example.com") == [] and xmas("show", "lena@example.com", code=2)  # nothing written


def test_unsubscribes_keep_their_channel_and_time(xmas: Cli) -> None:
    xmas("enroll", "lead-nurture", *LENA, "--now", T0)
    xmas("unsubscribe", "lena@example.com", "--now", "2026-12-02T09:00:00Z")
    contact = xmas.json("show", "lena@example.com")["contact"]
    assert contact["suppressed_reason"] == "unsubscribed (operator) 2026-12-02T09:00:00Z"
    xmas("enroll", "lead-nurture", "--email", "rob@example.com", "--first-name", "Rob", "--now", T0)
    xmas("unsubscribe", "rob@example.com", "--channel", "reply", "--now", "2026-12-02T09:05:00Z")
    assert consent_of_reason(xmas, "rob@example.com") == "unsubscribed (reply) 2026-12-02T09:05:00Z"
    assert (
        "--channel: 'fax' is not a channel" in xmas("unsubscribe", "rob@example.com", "--channel", "fax", code=2).stderr
    )


def consent_of_reason(xmas: Cli, who: str) -> str:
    return str(xmas.json("show", who)["contact"]["suppressed_reason"])


def test_consent_on_notion(xmas: Cli, notion: Notion) -> None:  # noqa: F811
    xmas("enroll", "lead-nurture", *LENA, "--now", T0)
    assert notion.contact("lena@example.com")["Consent"] == (
        "implied · lead-nurture · 2026-12-01T10:30:00Z · expires 2027-06-02T10:30:00Z"
    )
    assert "5 due: 5 skipped" in xmas("tick", "--now", "2027-07-01T10:30:00Z").stdout
    assert notion.row("lead-nurture:lena@example.com#1")["Note"] == "no consent: implied consent expired on 2027-06-02"
