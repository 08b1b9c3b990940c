"""`xmas` on the Notion store, through the CLI, the real notion-client and the local emulator.

The SQLite scenarios (test_cli_tick.py, test_cli_enroll.py) run here on Notion; the timelines are also run on a
SQLite twin and every email must come out the same. A person's edits are made with a plain SDK client, as Notion's
own app would. Request counts are asserted exactly.
"""

from __future__ import annotations

import email
import email.policy
import json
import logging
import shutil
import tomllib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypedDict

import pytest
from conftest import Cli, replace_once
from notion_client import Client
from notion_emulator import NotionEmulator
from resend_emulator import ResendEmulator
from test_cli_enroll import ASSESSMENT
from test_cli_tick import PEOPLE, T0, at

from xmas_cli.core.outgoing import idempotency_key
from xmas_cli.defaults import CAMPAIGN as CAMPAIGN_TOML
from xmas_cli.defaults import TEMPLATES as TEMPLATES_DIR

TOKEN = "secret_e2e_token"
LONG_BODY = ("<p>Ho ho ho 🎄 — déjà vu, 雪, {{ first_name }}.</p>\n" * 500)[:20_000]


def decode(page: dict[str, Any]) -> dict[str, Any]:
    """A page's properties as plain values, decoded here (not by the store under test)."""
    out: dict[str, Any] = {"page_id": page["id"]}
    for name, prop in page["properties"].items():
        kind = prop["type"]
        value = prop[kind]
        if kind in ("title", "rich_text"):
            value = "".join(item["plain_text"] for item in value)
        elif kind == "select":
            value = value["name"] if value else None
        elif kind == "date":
            value = (
                datetime.fromisoformat(value["start"]).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if value else None
            )
        out[name] = value
    return out


@dataclass
class Notion:
    emu: NotionEmulator
    project: Path
    databases: dict[str, str]
    sources: dict[str, str]

    def rows(self, kind: str = "tracker") -> list[dict[str, Any]]:
        """The rows of a database, by Row ID; of Contacts, the campaign's control rows (no Email) too, first."""
        found = (decode(p) for p in self.emu.pages(self.sources[kind]))
        return sorted(found, key=lambda r: (str(r.get("Row ID")), str(r.get("Email") or "")))

    def row(self, row_id: str) -> dict[str, Any]:
        [found] = [r for r in self.rows() if r["Row ID"] == row_id]
        return found

    def contacts(self) -> list[dict[str, Any]]:
        """The contacts: not the campaign's control rows (no Email) `notion setup` makes."""
        return [r for r in self.rows("contacts") if r["Email"]]

    def contact(self, address: str) -> dict[str, Any]:
        [found] = [r for r in self.rows("contacts") if r["Email"] == address]
        return found

    def edit(self, page_id: str, **properties: Any) -> None:
        """A person changes a page in Notion."""
        person = Client(auth=TOKEN, base_url=self.emu.base_url, logger=logging.getLogger("tests.person"))
        person.pages.update(page_id=page_id, properties=properties)
        person.close()

    def requests(self) -> list[str]:
        """Every request so far: `query <database>`, `create page`, `update page`, `read page`, `read database`..."""
        out = []
        for r in self.emu.requests:
            path, method = r["path"], r["method"]
            if path.endswith("/query"):
                kind = next(k for k, ds in self.sources.items() if ds in path)
                out.append(f"query {kind}")
            else:
                verb = {"POST": "create", "PATCH": "update", "GET": "read"}[method]
                out.append(f"{verb} {path.split('/')[2].removesuffix('s')}")
        return out


@pytest.fixture
def emu() -> Iterator[NotionEmulator]:
    with NotionEmulator(token=TOKEN) as emulator:
        yield emulator


def use_notion(project: Path, extra: str = "") -> None:
    path = project / "campaign.toml"
    text = replace_once(path.read_text(), 'backend = "sqlite"', 'backend = "notion"')
    text = replace_once(text, "requests_per_second = 3 ", "requests_per_second = 10 " + extra)
    path.write_text(text)


@pytest.fixture
def on_notion(emu: NotionEmulator, project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The project's store is Notion, its token and base URL the emulator's; no database made yet."""
    monkeypatch.setenv("NOTION_TOKEN", TOKEN)
    monkeypatch.setenv("NOTION_BASE_URL", emu.base_url)
    use_notion(project)


@pytest.fixture
def notion(emu: NotionEmulator, project: Path, xmas: Cli, on_notion: None) -> Notion:
    """The project on Notion: `xmas notion setup` on a fresh page, then `xmas templates push`."""
    xmas("notion", "setup", "--parent", emu.add_page(title="Xmas"))
    assert "20 created" in xmas("templates", "push").stdout  # 19 emails and their layout
    ids = tomllib.loads((project / "campaign.toml").read_text())["notion"]
    databases = {kind: ids[kind] for kind in ("contacts", "templates", "tracker")}
    emu.reset_requests()
    return Notion(emu, project, databases, {k: emu.data_source_id(v) for k, v in databases.items()})


def mails(folder: Path) -> list[dict[str, str]]:
    found = sorted(folder.glob("*.eml")) if folder.exists() else []
    out = []
    for path in found:
        msg: Any = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        heads = ("To", "From", "Reply-To", "Subject", "Message-ID", "Date", "List-Unsubscribe", "X-Xmas-Tags")
        out.append(
            {
                **{h: str(msg[h]) for h in heads},
                "text": msg.get_body(("plain",)).get_content(),
                "html": msg.get_body(("html",)).get_content(),
            }
        )
    return out


def outbox(project: Path) -> list[dict[str, str]]:
    return mails(project / ".xmas" / "outbox")


def enroll(xmas: Cli, sequence: str, *extra: str, now: datetime = T0, **changes: Any) -> Any:
    body = json.dumps({**PEOPLE[sequence], **changes})
    return xmas.json("enroll", sequence, "--payload", "-", "--now", at(now), *extra, input=body)


def run_timeline(xmas: Cli, sequence: str, outbox_of: Path, *config: str) -> list[dict[str, Any]]:
    """Enroll, then tick a second before, at, and again at each due time: each email goes out once."""
    doc = enroll(xmas, sequence, *config)
    ours = [r for r in doc["scheduled"] if r["sender"] == "xmas"]
    for n, row in enumerate(ours, 1):
        due = datetime.fromisoformat(row["due"])
        if due > T0:
            xmas("tick", "--now", at(due - timedelta(seconds=1)), *config)
            assert len(mails(outbox_of)) == n - 1
        assert "1 sent" in xmas("tick", "--now", at(due), *config).stdout
        xmas("tick", "--now", at(due), *config)
        assert len(mails(outbox_of)) == n
    return ours


# ----------------------------------------------------------------------------------- timelines


@pytest.mark.parametrize(
    ("sequence", "testing"),
    [*((s, False) for s in PEOPLE), ("lead-nurture", True)],
    ids=[*PEOPLE, "lead-nurture-testing"],
)
def test_a_whole_sequence_goes_out_once_each_at_its_time_as_on_sqlite(
    xmas: Cli, notion: Notion, project: Path, sequence: str, testing: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if testing:
        monkeypatch.setenv("XMAS_TESTING", "1")
    ours = run_timeline(xmas, sequence, project / ".xmas" / "outbox")
    final = {r["Step"]: r for r in notion.rows()}
    for row in ours:
        stored = final[row["step"]]
        assert (stored["State"], stored["Sent At"], stored["Attempts"]) == ("Sent", row["due"], 1)
        assert stored["Message ID"].startswith("<xmas-christmas-2026-") and stored["Due"] == row["due"]
        assert stored["Template"] == row["template"] and stored["Sent By"] == "xmas"
    if sequence == "assessment":
        assert final[1]["State"] == "Sent by website" and final[1]["Sent By"] == "website"
    # the same scenario on the SQLite store sends exactly the same emails
    twin = project / "sqlite-twin"
    twin.mkdir()
    shutil.copy(CAMPAIGN_TOML, twin / "campaign.toml")
    shutil.copytree(TEMPLATES_DIR, twin / "templates")
    run_timeline(xmas, sequence, twin / ".xmas" / "outbox", "--config", str(twin / "campaign.toml"))
    sent = outbox(project)
    assert sent == mails(twin / ".xmas" / "outbox")
    assert [m["X-Xmas-Tags"].rsplit("step=", 1)[1] for m in sent] == [str(r["step"]) for r in ours]
    assert {m["To"] for m in sent} == {PEOPLE[sequence]["email"]}
    assert all(PEOPLE[sequence]["first_name"] in m["text"] and "{{" not in m["html"] for m in sent)


def test_catch_up_defers_in_notion_and_sends_one_per_enrollment(xmas: Cli, notion: Notion) -> None:
    enroll(xmas, "lead-nurture")
    late = T0 + timedelta(days=5)
    result = xmas("tick", "--now", at(late))
    assert "1 sent" in result.stdout and "2 deferred" in result.stdout
    dues = {r["Step"]: r["Due"] for r in notion.rows()}
    assert dues[2] == at(late + timedelta(days=1)) and dues[3] == at(late + timedelta(days=2))
    assert "1 sent" in xmas("tick", "--now", at(late + timedelta(days=1))).stdout


# ----------------------------------------------------------------------------- a person in Notion


def test_a_person_pausing_or_cancelling_a_row_in_notion_stops_it(xmas: Cli, notion: Notion, project: Path) -> None:
    enroll(xmas, "lead-nurture")
    key = "lead-nurture:lena@example.com"
    notion.edit(notion.row(f"{key}#2")["page_id"], State={"select": {"name": "Paused"}})
    notion.edit(notion.row(f"{key}#3")["page_id"], State={"select": {"name": "Cancelled"}})
    for day in (0, 2, 4, 6, 8):
        xmas("tick", "--now", at(T0 + timedelta(days=day)))
    assert [m["X-Xmas-Tags"][-6:] for m in outbox(project)] == ["step=1", "step=4", "step=5"]
    assert [r["State"] for r in notion.rows()] == ["Sent", "Paused", "Cancelled", "Sent", "Sent"]
    notion.edit(notion.row(f"{key}#2")["page_id"], State={"select": {"name": "Scheduled"}})  # resumed
    assert "1 sent" in xmas("tick", "--now", at(T0 + timedelta(days=9))).stdout
    assert notion.row(f"{key}#2")["State"] == "Sent" and len(outbox(project)) == 4


def test_a_person_ticking_unsubscribed_cancels_every_pending_email_at_the_next_tick(
    xmas: Cli, notion: Notion, project: Path
) -> None:
    enroll(xmas, "postcall")
    notion.edit(notion.contact("paul@example.com")["page_id"], Unsubscribed={"checkbox": True})
    result = xmas("tick", "--now", at(T0 + timedelta(hours=2)))
    assert result.stdout == "tick 2026-12-01T12:30:00Z: 0 due; 1 action(s) applied\n" and outbox(project) == []
    assert [(r["State"], r["Note"]) for r in notion.rows()] == [("Cancelled", "unsubscribed (ticked in Notion)")] * 3
    reason = notion.contact("paul@example.com")["Suppression Reason"]
    assert reason == "unsubscribed in Notion 2026-12-01T12:30:00Z"
    again = xmas("tick", "--now", at(T0 + timedelta(hours=3)))  # done once: the reason marks it applied
    assert again.stdout == "tick 2026-12-01T13:30:00Z: 0 due\n"


def test_an_inactive_template_makes_its_emails_wait_visibly(xmas: Cli, notion: Notion, project: Path) -> None:
    enroll(xmas, "noshow")
    enroll(xmas, "postcall")
    [page] = [
        p
        for p in notion.emu.pages(notion.sources["templates"])
        if decode(p)["Template Name"] == "noshow_recovery_email_1"
    ]
    notion.edit(page["id"], Status={"select": {"name": "Inactive"}})
    result = xmas("tick", "--now", at(T0 + timedelta(hours=1)), code=1)
    assert "1 sent" in result.stdout and "1 waiting" in result.stdout
    assert "template noshow_recovery_email_1 is not Active in Notion" in result.stdout
    assert (
        "noshow_recovery_email_1 is not Active" in xmas("status", "--now", at(T0 + timedelta(hours=1)), code=1).stdout
    )
    notion.edit(page["id"], Status={"select": {"name": "Active"}})
    assert "1 sent" in xmas("tick", "--now", at(T0 + timedelta(hours=1, minutes=1))).stdout
    assert len(outbox(project)) == 2


# ---------------------------------------------------------------------- enrollment and operators


def test_re_enrolling_refreshes_data_and_schedules_nothing_new(xmas: Cli, notion: Notion) -> None:
    run = ("enroll", "assessment", "--payload", "-")
    first = xmas.json(*run, "--now", at(T0), input=json.dumps(ASSESSMENT))
    again = {**ASSESSMENT, "first_name": "Sara", "red_systems": 0, "orange_systems": 0}
    second = xmas.json(*run, "--now", "2026-12-01T12:00:00Z", input=json.dumps(again))
    assert second["created"] is False
    assert [(r["id"], r["due"]) for r in second["scheduled"]] == [(r["id"], r["due"]) for r in first["scheduled"]]
    rows = notion.rows()
    assert len(rows) == 5
    assert all(json.loads(r["Data"])["first_name"] == "Sara" for r in rows if r["State"] == "Scheduled")
    contact = notion.contact("sarah@sarahssalon.com")
    assert (contact["Name"], contact["Segment"], contact["Business Name"]) == ("Sara", "OPTIMIZE", "Sarah's Salon")
    assert len(notion.contacts()) == 1


def test_exit_rules_cancel_pending_emails_of_earlier_sequences(xmas: Cli, notion: Notion) -> None:
    who = ["--email", "sarah@sarahssalon.com", "--first-name", "Sarah"]
    xmas("enroll", "lead-nurture", *who, "--now", at(T0))
    doc = xmas.json(
        "enroll", "assessment", "--payload", "-", "--now", "2026-12-01T11:00:00Z", input=json.dumps(ASSESSMENT)
    )
    assert sorted(r["step"] for r in doc["cancelled"]) == [1, 2, 3, 4, 5]
    doc = xmas.json(
        "enroll", "onboarding", *who, "--payment-date", "2026-12-03T09:00:00Z", "--now", "2026-12-03T09:00:00Z"
    )
    assert sorted((r["sequence"], r["step"]) for r in doc["cancelled"]) == [("assessment", n) for n in (2, 3, 4, 5)]
    states = {(r["Sequence"], r["Step"]): (r["State"], r["Note"]) for r in notion.rows()}
    assert states[("lead-nurture", 1)] == ("Cancelled", "exit rule: enrolled in assessment")
    assert states[("assessment", 2)] == ("Cancelled", "exit rule: enrolled in onboarding")
    assert [states[("onboarding", n)][0] for n in (1, 2, 3)] == ["Scheduled"] * 3
    doc = xmas.json("enroll", "lead-nurture", *who, "--now", "2026-12-04T09:00:00Z")  # final: written as Cancelled
    assert {r["state"] for r in doc["scheduled"]} == {"Cancelled"}


def test_unsubscribe_cancels_pending_and_later_enrollments_are_skipped(
    xmas: Cli, notion: Notion, project: Path
) -> None:
    who = ["--email", "lena@example.com", "--first-name", "Lena"]
    xmas("enroll", "lead-nurture", *who, "--now", at(T0))
    result = xmas("unsubscribe", "Lena@Example.com", "--now", at(T0))
    assert "lena@example.com: unsubscribed; cancelled 5 pending email(s)" in result.stdout
    contact = notion.contact("lena@example.com")
    assert contact["Unsubscribed"] is True and contact["Suppression Reason"] == f"unsubscribed (operator) {at(T0)}"
    doc = xmas.json("enroll", "postcall", *who, "--call-date", at(T0), "--now", at(T0))
    assert {r["state"] for r in doc["scheduled"]} == {"Skipped"} and doc["contact"]["suppressed"] is True
    assert "0 due" in xmas("tick", "--now", "2026-12-20T00:00:00Z").stdout and outbox(project) == []
    xmas("unsubscribe", "ghost@example.com")  # never seen: suppressed for later
    assert notion.contact("ghost@example.com")["Unsubscribed"] is True


def test_status_show_cancel_and_preview_read_notion(xmas: Cli, notion: Notion) -> None:
    who = ["--email", "paul@example.com", "--first-name", "Paul", "--now", at(T0)]
    xmas("enroll", "postcall", *who, "--call-date", at(T0))
    xmas("enroll", "noshow", *who, "--calendly-event-id", "evt_9", "--scheduled-time", at(T0))
    xmas("tick", "--now", at(T0 + timedelta(minutes=5)))
    status = xmas.json("status", "--now", at(T0 + timedelta(minutes=5)))
    assert status["counts"]["noshow"] == {"Sent": 1, "Scheduled": 2}
    assert status["counts"]["postcall"] == {"Scheduled": 3}
    assert status["next_due"]["template"] == "postcall_maybe_email_1"
    shown = xmas.json("show", "paul@example.com")
    assert shown["contact"]["first_name"] == "Paul" and len(shown["emails"]) == 6
    preview = xmas("preview", "postcall_maybe_email_1", "--contact", "paul@example.com")
    assert "Paul" in preview.stdout and "Notion Email Templates: postcall_maybe_email_1" in preview.stdout
    assert "cancelled 2 pending" in xmas("cancel", "paul@example.com", "--sequence", "noshow").stdout
    assert {r["State"] for r in notion.rows() if r["Sequence"] == "postcall"} == {"Scheduled"}
    assert "no contact with email 'nobody@example.com'" in xmas("cancel", "nobody@example.com", code=2).stderr
    assert "20 templates, 0 with problems" in xmas("templates", "check").stdout


# ------------------------------------------------------------------------------- request counts


def test_request_counts_idle_tick_enroll_and_a_tick_with_due_emails(xmas: Cli, notion: Notion) -> None:
    # An idle tick: 2 requests, the query of what a person asked in Contacts (actions, unsubscribes, the pause) and
    # the due query, nothing else (the schema check is cached since setup).
    assert xmas("tick", "--now", at(T0)).stdout.strip() == "tick 2026-12-01T10:30:00Z: 0 due"
    assert notion.requests() == ["query contacts", "query tracker"]

    # Enrolling a new contact with R rows costs 3 + R requests: look up the contact (absent), read the contact's rows
    # (none), create the contact (once the enrollment is planned), create each row (the store saw, under the
    # enrollment lock, that none exists yet).
    notion.emu.reset_requests()
    doc = enroll(xmas, "assessment", email="a@example.com")
    assert len(doc["scheduled"]) == 5 and notion.emu.count() == 3 + 5 == 8
    assert notion.requests() == ["query contacts", "query tracker", "create page"] + ["create page"] * 5
    # Enrolling the same again (an hour later): look up the contact, read its rows, update it (Updated changed).
    notion.emu.reset_requests()
    enroll(xmas, "assessment", email="a@example.com", now=T0 + timedelta(hours=1))
    assert notion.requests() == ["query contacts", "query tracker", "update page"]

    # A tick with N = 4 due emails (3 postcall contacts, one lead): 1 query of actions and pauses, 1 due query
    # (ceil(N/100)), 1 contacts query (≤ 100 addresses per query), 1 read per distinct template (2), and N row
    # updates: N + 6. Neither template
    # shows spots_remaining or bookings_count, so nothing is counted (a template that does costs 1 count query).
    for name in ("p1", "p2", "p3"):
        enroll(xmas, "postcall", email=f"{name}@example.com", call_date=at(T0 - timedelta(hours=1)))
    enroll(xmas, "lead-nurture", now=T0)
    notion.emu.reset_requests()
    result = xmas("tick", "--now", at(T0 + timedelta(minutes=1)))
    assert "4 sent" in result.stdout
    assert Counter(notion.requests()) == {
        "query tracker": 1,
        "query contacts": 2,  # what a person asked (actions, pause), then the 4 recipients
        "query templates": 3,  # the two templates due, and the layout they extend
        "update page": 4,
    }
    assert notion.emu.count() == 6 + 4 == 10


# ----------------------------------------------------------------------- rate limits and faults


def test_under_a_rate_limit_every_email_still_goes_once(xmas: Cli, notion: Notion, project: Path) -> None:
    notion.emu.rate_limit, notion.emu.burst, notion.emu.retry_after = 3, 2, 0  # we pace at 10/s: Notion says no
    enroll(xmas, "noshow")
    assert "1 sent" in xmas("tick", "--now", at(T0 + timedelta(minutes=5))).stdout
    statuses = [r["status"] for r in notion.emu.requests]
    assert 429 in statuses and set(statuses) == {200, 429}
    assert len(notion.rows()) == 3 and len(notion.contacts()) == 1 and len(outbox(project)) == 1
    assert notion.row("noshow:nina@example.com|evt_1#1")["State"] == "Sent"


class Matching(TypedDict):
    """Which requests an injected fault or delay applies to (NotionEmulator.inject_fault's keywords)."""

    method: str
    path_contains: str


def test_faults_and_timeouts_leave_no_duplicate_and_every_email_goes_once(
    xmas: Cli, emu: NotionEmulator, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NOTION_TOKEN", TOKEN)
    monkeypatch.setenv("NOTION_BASE_URL", emu.base_url)
    use_notion(project, "\ntimeout_seconds = 0.5")
    xmas("notion", "setup", "--parent", emu.add_page())
    xmas("templates", "push")
    ids = tomllib.loads((project / "campaign.toml").read_text())["notion"]
    notion = Notion(emu, project, ids, {k: emu.data_source_id(ids[k]) for k in ("contacts", "templates", "tracker")})
    pages: Matching = {"method": "POST", "path_contains": "/v1/pages"}
    emu.inject_fault(500, "internal_server_error", **pages)  # the contact's create fails: looked up, created again
    emu.inject_fault(500, "internal_server_error", after_processing=True, **pages)  # created, but the answer is lost
    enroll(xmas, "noshow")
    emu.inject_delay(1.0, **pages)  # the first row's create lands, the client has given up after 0.5 s
    enroll(xmas, "postcall")
    emu.inject_fault(529, "service_overload", method="PATCH")  # Notion overloaded on recording a send
    emu.inject_fault(503, "service_unavailable", method="POST", path_contains="/query")
    assert "2 sent" in xmas("tick", "--now", at(T0 + timedelta(hours=1))).stdout
    assert [r["Row ID"] for r in notion.rows()] == [f"noshow:nina@example.com|evt_1#{n}" for n in (1, 2, 3)] + [
        f"postcall:paul@example.com|2026-12-01T10:30:00Z#{n}" for n in (1, 2, 3)
    ]
    assert sorted(c["Email"] for c in notion.contacts()) == ["nina@example.com", "paul@example.com"]
    assert {r["status"] for r in emu.requests} == {200, 500, 503, 529}
    assert len(outbox(project)) == 2
    assert "0 due" in xmas("tick", "--now", at(T0 + timedelta(hours=1))).stdout
    states = [notion.row(f"noshow:nina@example.com|evt_1#{n}")["State"] for n in (1, 2, 3)]
    assert states == ["Sent", "Scheduled", "Scheduled"]


# ------------------------------------------------------------------------------ schema and setup


def test_a_schema_changed_in_notion_is_named_by_check_and_refused_by_tick(xmas: Cli, notion: Notion) -> None:
    assert "the Notion databases match campaign.toml" in xmas("notion", "check").stdout
    person = Client(auth=TOKEN, base_url=notion.emu.base_url, logger=logging.getLogger("tests.person"))
    person.data_sources.update(notion.sources["tracker"], properties={"Due": {"name": "When"}, "State": {"status": {}}})
    person.close()
    missing = (
        "Sequence Tracker: property 'Due' is missing: add a Date property named 'Due', "
        'or set [notion.properties.tracker] due = "..." in campaign.toml'
    )
    mistyped = "Sequence Tracker: property 'State' is a status property, expected select: change its type to Select"
    tick = xmas("tick", "--now", at(T0), code=3)  # the cached check is dropped when Notion refuses the query
    assert missing in tick.stderr and mistyped in tick.stderr
    assert tick.stderr.startswith("xmas: error: the Notion databases do not match campaign.toml:")
    check = xmas("notion", "check", code=3)
    assert missing in check.stderr and mistyped in check.stderr
    doc = xmas.json("notion", "check", code=3)
    assert doc["error"]["code"] == 3 and missing in doc["error"]["message"]
    assert xmas("tick", "--now", at(T0), code=3).stderr == tick.stderr  # and again, until it is fixed


def test_setup_writes_the_ids_in_place_and_refuses_to_run_twice(xmas: Cli, notion: Notion, project: Path) -> None:
    written = (project / "campaign.toml").read_text()
    original = CAMPAIGN_TOML.read_text()
    changed = [(a, b) for a, b in zip(original.splitlines(), written.splitlines(), strict=True) if a != b]
    assert [b.split("=")[0].strip() for _, b in changed] == [
        "backend",
        "contacts",
        "templates",
        "tracker",
        "requests_per_second",
    ]
    assert all(b.endswith(f'"{notion.databases[b.split()[0]]}"') for _, b in changed[1:4])
    result = xmas("notion", "setup", "--parent", notion.emu.add_page(), code=2)
    assert "already configured for contacts, templates, tracker" in result.stderr and "--force" in result.stderr
    doc = xmas.json("notion", "setup", "--parent", notion.emu.add_page(), "--force")
    assert doc["databases"]["tracker"]["id"] != notion.databases["tracker"]
    assert (
        tomllib.loads((project / "campaign.toml").read_text())["notion"]["tracker"] == doc["databases"]["tracker"]["id"]
    )
    assert "0 due" in xmas("tick", "--now", at(T0)).stdout
    unshared = xmas("notion", "setup", "--parent", "0" * 32, "--force", code=3)
    assert "share the page with the integration" in unshared.stderr
    assert "is not a Notion page id" in xmas("notion", "setup", "--parent", "my-page", "--force", code=2).stderr


def test_a_missing_token_is_a_configuration_error(xmas: Cli, notion: Notion, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOTION_TOKEN")
    result = xmas("tick", code=3)
    assert result.stderr.startswith("xmas: error: NOTION_TOKEN is not set (the store is Notion) — create an internal")


# ------------------------------------------------------------------------------------- templates


def test_templates_push_and_pull_round_trip_a_20000_character_body(xmas: Cli, notion: Notion, project: Path) -> None:
    folder = project / "templates"
    source = f"Subject: Long one 🎄 {{{{ first_name }}}}\n\n{LONG_BODY}"
    (folder / "long_one.html").write_text(source, encoding="utf-8")
    assert "1 created, 20 unchanged" in xmas("templates", "push").stdout
    [page] = [p for p in notion.emu.pages(notion.sources["templates"]) if decode(p)["Template Name"] == "long_one"]
    assert len(page["properties"]["Email Body HTML"]["rich_text"]) >= 10 and decode(page)["Status"] == "Active"
    # a person deactivates it; a new push updates the body and keeps the Status the business chose
    notion.edit(page["id"], Status={"select": {"name": "Inactive"}})
    (folder / "long_one.html").write_text(source + "<p>PS</p>", encoding="utf-8")
    assert "1 updated, 20 unchanged" in xmas("templates", "push").stdout
    assert decode(notion.emu.page(page["id"]))["Status"] == "Inactive"
    notion.edit(page["id"], Status={"select": {"name": "Active"}})
    # pull into an empty folder: every file comes back byte for byte
    shutil.rmtree(folder)
    pulled = xmas.json("templates", "pull")
    assert {t["action"] for t in pulled["templates"]} == {"written"}
    assert len(pulled["templates"]) == 21  # 19 emails, their layout and the long one
    assert (folder / "long_one.html").read_text(encoding="utf-8") == source + "<p>PS</p>"
    for path in (TEMPLATES_DIR).glob("*.html"):
        assert (folder / path.name).read_bytes() == path.read_bytes()
    assert "21 unchanged" in xmas("templates", "pull").stdout


# ------------------------------------------------------------ with Resend: one request per email


@pytest.fixture
def mail(notion: Notion, resend_api: ResendEmulator) -> ResendEmulator:
    return resend_api


def test_each_email_is_its_own_request_under_its_own_key(xmas: Cli, notion: Notion, mail: ResendEmulator) -> None:
    for n in range(3):
        enroll(xmas, "postcall", email=f"p{n}@example.com", call_date=at(T0))
    assert "3 sent" in xmas("tick", "--now", at(T0 + timedelta(hours=1))).stdout
    posts = [r for r in mail.requests if r["method"] == "POST"]
    assert [r["path"] for r in posts] == ["/emails"] * 3
    row_ids = sorted(f"postcall:p{n}@example.com|{at(T0)}#1" for n in range(3))
    assert sorted(r["headers"]["idempotency-key"] for r in posts) == sorted(
        idempotency_key("christmas-2026", i) for i in row_ids
    )
    rows = {r["Row ID"]: r for r in notion.rows()}
    assert [rows[i]["State"] for i in row_ids] == ["Sent"] * 3
    assert {rows[i]["Message ID"] for i in row_ids} == {m["id"] for m in mail.sent}


def test_a_lost_answer_on_notion_is_replayed_next_tick_not_resent(
    xmas: Cli, notion: Notion, mail: ResendEmulator
) -> None:
    for n in range(2):
        enroll(xmas, "postcall", email=f"p{n}@example.com", call_date=at(T0))
    mail.drop_connection_after_accept(times=4)  # the first email's answer is lost, on every retry too
    result = xmas("tick", "--now", at(T0 + timedelta(hours=1)), code=1)
    assert "1 sent, 1 retry" in result.stdout
    assert len(mail.sent) == 2  # both went out once: the first although its answer never came back
    states = sorted((r["State"], r["Attempts"]) for r in notion.rows() if r["Step"] == 1)
    assert states == [("Scheduled", 1), ("Sent", 1)]
    xmas("tick", "--now", at(T0 + timedelta(hours=1, minutes=1)))
    assert len(mail.sent) == 2 and sorted(m["to"][0] for m in mail.sent) == ["p0@example.com", "p1@example.com"]
    assert {r["State"] for r in notion.rows() if r["Step"] == 1} == {"Sent"}
