"""`xmas store copy`: every contact, template, scheduled email and event of one store copied into another (SQLite,
Notion on the local emulator, PostgreSQL where a server is configured), every field kept, nothing overwritten,
nothing copied twice; a dry run writes nothing; the refusals name their fix.

The command is not registered in the main app yet: it runs here through a Typer app of its own."""

from __future__ import annotations

import json
import logging
import shutil
import sqlite3
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import typer
from conftest import Cli, replace_once
from notion_client import Client
from notion_emulator import NotionEmulator
from typer.testing import CliRunner, Result

from xmas_cli.backends import sqlite_store
from xmas_cli.commands import store as store_command
from xmas_cli.config import load_campaign
from xmas_cli.core.model import Consent, Contact, Delivery, Event, ScheduledEmail, Sender, State, row_id
from xmas_cli.defaults import CAMPAIGN as CAMPAIGN_TOML
from xmas_cli.defaults import TEMPLATES as TEMPLATES_DIR
from xmas_cli.errors import StoreUnavailable
from xmas_cli.stores.base import Batch
from xmas_cli.stores.copy import copy_store, plan_copy
from xmas_cli.stores.sqlite import SqliteStore

T0 = datetime(2026, 12, 1, 10, 30, tzinfo=UTC)
HOUR = timedelta(hours=1)
TOKEN = "secret_copy_token"
LONG_BODY = ("<p>Ho ho ho 🎄 — déjà vu, 雪, {{ first_name }}.</p>\n" * 200)[:6_000]
KINDS = ("contacts", "templates", "emails", "events")


# ------------------------------------------------------------------------------------------- helpers


def make_campaign(folder: Path, templates: bool = False) -> Path:
    """A campaign folder: the shipped campaign.toml (SQLite at .xmas/xmas.db), with or without its templates."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(CAMPAIGN_TOML, folder / "campaign.toml")
    if templates:
        shutil.copytree(TEMPLATES_DIR, folder / "templates")
    return folder / "campaign.toml"


def open_sqlite(config: Path) -> SqliteStore:
    return sqlite_store(load_campaign(config, {}))


def run_copy(*args: str, code: int = 0) -> Result:
    """`xmas store copy ARGS` through a Typer app that registers only the store commands."""
    app = typer.Typer(rich_markup_mode=None, pretty_exceptions_enable=False)
    store_command.register(app)
    result = CliRunner().invoke(app, ["store", "copy", *args])
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    assert result.exit_code == code, (
        f"store copy {' '.join(args)} exited {result.exit_code}, expected {code}\n"
        f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    )
    return result


def copy_json(*args: str, code: int = 0) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(run_copy(*args, "--json", code=code).stdout)
    return doc


def counts(doc: dict[str, Any], field: str) -> dict[str, int]:
    return {kind: doc["kinds"][kind][field] for kind in KINDS}


def a_row(email: str, sequence: str, step: int, due: datetime, **changes: Any) -> ScheduledEmail:
    key = f"{sequence}:{email}"
    template = {"lead-nurture": "lead_nurture_email", "postcall": "postcall_maybe_email"}[sequence]
    row = ScheduledEmail(
        id=row_id(key, step),
        enrollment_key=key,
        email=email,
        sequence=sequence,
        step=step,
        template=f"{template}_{step}",
        sender=Sender.XMAS,
        due=due,
        data={"first_name": email.split("@")[0].title(), "email": email, "weakest_system_1": "Zoë's café ☕"},
    )
    return replace(row, **changes)


ADA, BOB, EVE = "ada@example.com", "bob@example.com", "eve@example.com"
CY, DAN = "cy@example.com", "dan@example.com"  # cy has only an event; dan only a suppression


def fill(store: SqliteStore, *, extras: bool = True) -> None:
    """Rows in every state and with every field set, contacts with consent and a suppression, events with data.
    `extras`: also a contact known by an event only (cy) and one unsubscribed before enrolling (dan)."""
    store.save_contact(
        Contact(
            ADA,
            {"first_name": "Ada", "business_name": "Ada's Bakery", "overall_score": 42, "timezone": "Europe/Paris"},
            segment="orange",
            updated_at=T0,
            consent=Consent("express", "signup", T0 - HOUR),
        )
    )
    store.save_contact(
        Contact(
            BOB,
            {"first_name": "Bob"},
            suppressed=True,
            suppressed_reason="unsubscribed 2026-12-01T09:00:00Z",
            updated_at=T0,
            consent=Consent("implied", "assessment", T0 - 2 * HOUR, T0 + timedelta(days=700)),
        )
    )
    store.save_contact(Contact(EVE, {"first_name": "Eve", "business_name": "Eve & Co"}, segment="red", updated_at=T0))
    delivery = Delivery(
        delivered_at=T0 + timedelta(minutes=1),
        opened_at=T0 + timedelta(minutes=9),
        opens=3,
        clicks=2,
        links=("https://example.org/a", "https://example.org/b?x=1"),
    )
    rows = [
        a_row(ADA, "lead-nurture", 1, T0, state=State.SENT, sent_at=T0 + timedelta(seconds=4),
              message_id="re_msg_1", attempts=1, delivery=delivery, variant=1, batch="journal-key-1"),
        a_row(ADA, "lead-nurture", 2, T0 + 24 * HOUR, state=State.FAILED, attempts=8,
              last_error="Resend: 422 invalid_to_address (permanent)"),
        a_row(ADA, "lead-nurture", 3, T0 + 48 * HOUR, state=State.CANCELLED, note="booked at 2026-12-01T11:00:00Z"),
        a_row(ADA, "lead-nurture", 4, T0 + 72 * HOUR),
        a_row(ADA, "lead-nurture", 5, T0 + 96 * HOUR, state=State.PAUSED, note="paused by Maria"),
        a_row(BOB, "lead-nurture", 1, T0, state=State.SKIPPED, note="suppressed"),
        a_row(EVE, "postcall", 1, T0, state=State.SENT_BY_WEBSITE, sender=Sender.WEBSITE, sent_at=T0),
        a_row(EVE, "postcall", 2, T0 + 2 * HOUR, state=State.SENT, sent_at=T0 + 2 * HOUR, message_id="re_msg_2",
              delivery=Delivery(bounce="Permanent/General", delayed=True, complained_at=T0 + 3 * HOUR), variant=0),
        a_row(EVE, "postcall", 3, T0 + 26 * HOUR, attempts=2, last_error="Resend: 429 (will retry)"),
    ]  # fmt: skip
    for row in rows:
        store.add_email(row)
    store.add_event(
        Event(
            "booked@2026-12-01T11:00:00Z",
            ADA,
            "booked",
            T0 + HOUR,
            {"calendly_event_id": "evt_1", "start_time": "2026-12-08T15:00:00Z"},
            T0 + HOUR,
        )
    )
    store.add_event(Event("calendly:evt_1:canceled", ADA, "call-canceled", T0 + 2 * HOUR, {}, T0 + 3 * HOUR))
    store.add_event(Event("replied@2026-12-02T08:00:00Z", EVE, "replied", T0 + 20 * HOUR, {"subject": "Re: hi"}))
    if extras:
        store.save_contact(Contact(CY, {"first_name": "Cy"}, updated_at=T0))
        store.add_event(Event("replied@2026-12-03T08:00:00Z", CY, "replied", T0 + 44 * HOUR, {}, T0 + 44 * HOUR))
        store.save_contact(Contact(DAN, suppressed=True, suppressed_reason="unsubscribed 2026-11-30", updated_at=T0))


@dataclass(frozen=True)
class Snapshot:
    contacts: dict[str, Contact]
    rows: dict[str, ScheduledEmail]
    events: dict[str, list[Event]]


def snapshot(store: Any, addresses: list[str]) -> Snapshot:
    """Everything the store holds for these contacts, every field, without the stores' own handles (ref) or the
    journal key (batch, which a copy does not carry)."""
    contacts = {a: replace(c, ref=None) for a, c in store.get_contacts(addresses).items()}
    rows = {r.id: replace(r, ref=None, batch=None) for r in store.all_emails()}
    events = {a: store.events_for_contact(a) for a in addresses}
    return Snapshot(contacts, rows, events)


def files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.glob("*.html"))} if folder.is_dir() else {}


def tree(folder: Path) -> dict[str, bytes]:
    """Every file under a folder (SQLite's -wal/-shm aside, which come and go with connections)."""
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and not p.name.endswith(("-wal", "-shm"))
    }


def row_count(db: Path) -> dict[str, int]:
    with sqlite3.connect(db) as conn:
        return {t: conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in ("contacts", "emails", "events")}


class FlakyStore(SqliteStore):
    """A SQLite target that goes away after `budget` rows were written."""

    budget = 3

    def add_email(self, row: ScheduledEmail) -> ScheduledEmail:
        if self.budget == 0:
            raise StoreUnavailable(f"{self.description}: disk I/O error", "check the file, its folder and free disk")
        self.budget -= 1
        return super().add_email(row)


@pytest.fixture
def source(project: Path) -> Path:
    """The project's campaign (SQLite) filled, with three extra template files: one with CRLF line ends, one with no
    empty line after the subject, one with no subject line (none of them may change on the way)."""
    store = open_sqlite(project / "campaign.toml")
    fill(store)
    store.close()
    (project / "templates" / "crlf_one.html").write_bytes(b"Subject: Windows \xe2\x9c\x93\r\n\r\n<p>CRLF</p>\r\n")
    (project / "templates" / "tight_one.html").write_bytes(b"Subject: Tight\n<p>no empty line</p>")
    (project / "templates" / "broken_one.html").write_bytes(b"<p>no subject line</p>\n")
    return project / "campaign.toml"


# ------------------------------------------------------------------------------------- SQLite → SQLite


def test_sqlite_to_sqlite_keeps_every_field_and_a_second_copy_copies_nothing(source: Path, tmp_path: Path) -> None:
    target = make_campaign(tmp_path / "other")
    before = open_sqlite(source)
    everyone = [ADA, BOB, EVE, CY, DAN]
    original = snapshot(before, everyone)
    before.close()
    found = 5  # dan too: unsubscribed before ever enrolling, with neither rows nor events

    doc = copy_json("--to-config", str(target))
    assert doc["version"] == 1 and doc["ok"] is True and doc["dry_run"] is False
    assert doc["source"] == f"SQLite {source.parent / '.xmas' / 'xmas.db'}"
    in_source = {"contacts": found, "templates": 23, "emails": 9, "events": 4}
    assert counts(doc, "in_source") == in_source
    assert counts(doc, "would_copy") == in_source
    assert counts(doc, "copied") == in_source
    assert counts(doc, "at_target") == in_source
    assert counts(doc, "already_there") == dict.fromkeys(KINDS, 0)
    assert doc["items"] == []

    after = open_sqlite(target)
    copied = snapshot(after, everyone)
    assert all(r.batch is None for r in after.all_emails())  # the source's journal key is not carried over
    after.close()
    assert copied.rows == original.rows  # every field of every row: state, times, message id, delivery, variant...
    assert copied.events == original.events
    assert copied.contacts == original.contacts
    assert any(w.startswith("2 scheduled email(s) will be in both stores") for w in doc["warnings"])
    # the templates folder byte for byte, odd files included
    assert files(target.parent / "templates") == files(source.parent / "templates")
    assert len(files(target.parent / "templates")) == 23

    again = copy_json("--to-config", str(target))
    assert again["ok"] is True
    assert counts(again, "would_copy") == dict.fromkeys(KINDS, 0)
    assert counts(again, "copied") == dict.fromkeys(KINDS, 0)
    assert counts(again, "already_there") == in_source
    assert not any("scheduled email(s)" in w for w in again["warnings"])
    assert row_count(target.parent / ".xmas" / "xmas.db") == {"contacts": found, "emails": 9, "events": 4}

    table = run_copy("--to-config", str(target)).stdout
    assert "already there" in table and "every record found at the source is at the target" in table


def test_every_contact_is_planned_also_one_with_no_rows_or_events(project: Path, tmp_path: Path) -> None:
    source = open_sqlite(project / "campaign.toml")
    fill(source)
    target = open_sqlite(make_campaign(tmp_path / "other"))
    plan = plan_copy(source, target)
    assert [c.email for c in plan.contacts] == sorted([ADA, BOB, EVE, CY, DAN])
    assert plan.warnings == [  # no word of contacts that could not be found: there are none
        "2 scheduled email(s) will be in both stores: tick only one of them (move the cron job), or each goes out twice"
    ]
    assert (plan.tallies["contacts"].would_copy, plan.tallies["events"].would_copy) == (5, 4)
    report = copy_store(source, target, plan)
    assert report.ok
    assert report.copied["contacts"] == 5 and report.at_target is not None and report.at_target["contacts"] == 5
    dan = target.get_contact(DAN)
    assert dan is not None and dan.suppressed and dan.suppressed_reason == "unsubscribed 2026-11-30"
    everyone = [ADA, BOB, EVE, CY, DAN]
    assert snapshot(target, everyone) == snapshot(source, everyone)
    source.close()
    target.close()


def test_a_copy_cut_short_is_finished_by_running_it_again(project: Path, tmp_path: Path) -> None:
    source = open_sqlite(project / "campaign.toml")
    fill(source, extras=False)
    config = make_campaign(tmp_path / "other")
    campaign = load_campaign(config, {})
    flaky = FlakyStore(campaign.path(campaign.store.path), campaign.path(campaign.campaign.templates_dir))
    with pytest.raises(StoreUnavailable) as failed:
        copy_store(source, flaky)
    assert "run the copy again to copy the rest (nothing is copied twice)" in failed.value.fix
    flaky.close()
    target = open_sqlite(config)
    assert len(list(target.all_emails())) == 3
    report = copy_store(source, target)
    assert report.ok and report.copied["emails"] == 6 and report.plan.tallies["emails"].already_there == 3
    assert snapshot(target, [ADA, BOB, EVE]) == snapshot(source, [ADA, BOB, EVE])
    source.close()
    target.close()


def test_what_differs_at_the_target_is_left_alone_and_listed(source: Path, tmp_path: Path) -> None:
    target = make_campaign(tmp_path / "other")
    copy_json("--to-config", str(target))
    there = open_sqlite(target)
    failed = row_id(f"lead-nurture:{ADA}", 2)
    there.update_email(there.emails_by_id([failed])[failed], {"state": State.SCHEDULED, "attempts": 0})
    sent = row_id(f"lead-nurture:{ADA}", 1)  # as if a copy stopped between writing a row and its delivery
    there.update_email(there.emails_by_id([sent])[sent], {"delivery": Delivery(), "variant": None})
    bob = there.get_contact(BOB)
    assert bob is not None
    there.save_contact(replace(bob, suppressed=False, suppressed_reason=None))  # a suppression lost at the target
    there.close()
    edited = target.parent / "templates" / "lead_nurture_email_1.html"
    edited.write_bytes(b"Subject: Edited at the target\n\n<p>theirs</p>\n")

    doc = copy_json("--to-config", str(target), code=1)
    assert doc["ok"] is False
    conflicts = {(i["kind"], i["key"], i["action"]) for i in doc["items"]}
    assert conflicts == {
        ("emails", failed, "conflict"),
        ("contacts", BOB, "conflict"),
        ("templates", "lead_nurture_email_1", "conflict"),
    }
    assert counts(doc, "conflicts") == {"contacts": 1, "templates": 1, "emails": 1, "events": 0}
    assert counts(doc, "copied") == {"contacts": 0, "templates": 0, "emails": 1, "events": 0}
    [about_bob] = [i for i in doc["items"] if i["key"] == BOB]
    assert "suppressed" in about_bob["detail"] and "but suppressed as at the source" in about_bob["detail"]

    after = open_sqlite(target)
    assert after.emails_by_id([failed])[failed].state is State.SCHEDULED  # theirs, kept
    complete = after.emails_by_id([sent])[sent]
    assert complete.delivery.opens == 3 and complete.variant == 1  # finished
    bob_after = after.get_contact(BOB)
    assert bob_after is not None and bob_after.suppressed  # nobody who unsubscribed is emailed again
    assert bob_after.suppressed_reason == "unsubscribed 2026-12-01T09:00:00Z"
    after.close()
    assert edited.read_bytes() == b"Subject: Edited at the target\n\n<p>theirs</p>\n"
    result = run_copy("--to-config", str(target), code=1)
    assert "conflict" in result.stdout and "the copy is not complete" in result.stdout


# ------------------------------------------------------------------------------------------- dry run


def test_a_dry_run_counts_and_writes_nothing(source: Path, tmp_path: Path) -> None:
    target = make_campaign(tmp_path / "other")
    doc = copy_json("--to-config", str(target), "--dry-run")
    assert doc["dry_run"] is True and doc["ok"] is True
    assert counts(doc, "would_copy") == counts(doc, "in_source")
    assert counts(doc, "would_copy")["emails"] == 9 and counts(doc, "would_copy")["templates"] == 23
    assert counts(doc, "copied") == dict.fromkeys(KINDS, 0)
    assert {kind: doc["kinds"][kind]["at_target"] for kind in KINDS} == dict.fromkeys(KINDS, None)
    assert tree(target.parent) == {"campaign.toml": CAMPAIGN_TOML.read_bytes()}  # no database, no folder, no lock
    assert "dry run: " in run_copy("--to-config", str(target), "--dry-run").stdout

    # against a target that holds part of it: counts what is there, still writes nothing
    copy_json("--to-config", str(target))
    there = open_sqlite(target)
    gone = row_id(f"postcall:{EVE}", 3)
    there.db.execute("DELETE FROM emails WHERE id = ?", (gone,))
    there.close()
    (target.parent / "templates" / "layout.html").unlink()
    held, rows = tree(target.parent), row_count(target.parent / ".xmas" / "xmas.db")
    doc = copy_json("--to-config", str(target), "--dry-run")
    assert counts(doc, "would_copy") == {"contacts": 0, "templates": 1, "emails": 1, "events": 0}
    assert doc["kinds"]["emails"]["already_there"] == 8
    assert tree(target.parent) == held and row_count(target.parent / ".xmas" / "xmas.db") == rows


# ---------------------------------------------------------------------------------------- refusals


def test_a_batch_in_flight_at_the_source_refuses_the_copy(source: Path, tmp_path: Path) -> None:
    store = open_sqlite(source)
    pending = row_id(f"lead-nurture:{ADA}", 4)
    assert store.open_batch(Batch("batch-key-1", [pending], "[]", T0)) == []
    store.close()
    target = make_campaign(tmp_path / "other")
    result = run_copy("--to-config", str(target), code=5)
    assert "has a batch of emails in flight" in result.stderr
    assert "run `xmas tick` first so no batch is in flight" in result.stderr
    assert row_count(target.parent / ".xmas" / "xmas.db") == {"contacts": 0, "emails": 0, "events": 0}
    assert not (target.parent / "templates").exists()
    doc = copy_json("--to-config", str(target), "--dry-run", code=5)
    assert doc["ok"] is False and doc["error"]["code"] == 5 and "xmas tick" in doc["error"]["fix"]


def test_the_same_store_twice_is_refused(source: Path, tmp_path: Path) -> None:
    result = run_copy("--to-config", str(source), code=3)
    assert "use the same store: there is nothing to copy" in result.stderr
    # another campaign.toml, the same database file under another spelling of its path
    twin = make_campaign(tmp_path / "twin")
    twin.write_text(replace_once(twin.read_text(), 'path = ".xmas/xmas.db"', 'path = "../.xmas/xmas.db"'))
    assert load_campaign(twin, {}).path("../.xmas/xmas.db") != source.parent / ".xmas" / "xmas.db"
    result = run_copy("--to-config", str(twin), code=3)
    assert "use the same store" in result.stderr and "another store" in result.stderr


def test_a_missing_or_invalid_target_config_is_named(source: Path, tmp_path: Path) -> None:
    result = run_copy("--to-config", str(tmp_path / "nowhere" / "campaign.toml"), code=3)
    assert "nowhere/campaign.toml: no such file" in result.stderr and "--to-config" in result.stderr
    bad = make_campaign(tmp_path / "bad")
    bad.write_text(bad.read_text().replace('backend = "sqlite"', 'backend = "mongodb"', 1))
    result = run_copy("--to-config", str(bad), code=3)
    assert f"{bad}: store.backend" in result.stderr
    assert tree(bad.parent) == {"campaign.toml": bad.read_bytes()}  # nothing created
    assert run_copy("--to-config", str(bad), "--dry-run", code=3).stderr == result.stderr
    assert "Missing option '--to-config'" in run_copy(code=2).stderr


# --------------------------------------------------------------------------------------------- Notion


@pytest.fixture
def emu() -> Iterator[NotionEmulator]:
    with NotionEmulator(token=TOKEN) as emulator:
        yield emulator


def notion_campaign(folder: Path, emu: NotionEmulator, xmas: Cli) -> Path:
    """A campaign on Notion: three fresh databases made by `xmas notion setup`, no template in them yet."""
    config = make_campaign(folder)
    text = replace_once(config.read_text(), 'backend = "sqlite"', 'backend = "notion"')
    config.write_text(replace_once(text, "requests_per_second = 3 ", "requests_per_second = 10 "))
    xmas("notion", "setup", "--config", str(config), "--parent", emu.add_page(title="Xmas"))
    return config


def pages(emu: NotionEmulator, config: Path, kind: str) -> list[dict[str, Any]]:
    """The rows of a database; of Contacts, the contacts (not the campaign's control row `notion setup` makes)."""
    database = tomllib.loads(config.read_text())["notion"][kind]
    found = emu.pages(emu.data_source_id(database))
    return [p for p in found if kind != "contacts" or p["properties"]["Email"]["email"]]


def plain(page: dict[str, Any], name: str) -> Any:
    prop = page["properties"][name]
    value = prop[prop["type"]]
    if prop["type"] in ("title", "rich_text"):
        return "".join(item["plain_text"] for item in value)
    if prop["type"] == "select":
        return value["name"] if value else None
    return value


def filled_for_notion(project: Path, emu: NotionEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
    """The Notion emulator's token and address in the environment, the project's SQLite store filled."""
    monkeypatch.setenv("NOTION_TOKEN", TOKEN)
    monkeypatch.setenv("NOTION_BASE_URL", emu.base_url)
    store = open_sqlite(project / "campaign.toml")
    fill(store, extras=False)
    store.close()


def test_sqlite_to_notion_and_back_to_sqlite_loses_nothing(
    project: Path, tmp_path: Path, emu: NotionEmulator, xmas: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    filled_for_notion(project, emu, monkeypatch)
    folder = project / "templates"  # a few templates keep it quick: one long, with emoji, split into pieces
    for path in folder.glob("*.html"):
        if path.stem not in ("lead_nurture_email_1", "layout"):
            path.unlink()
    (folder / "long_one.html").write_text(f"Subject: Long one 🎄 {{{{ first_name }}}}\n\n{LONG_BODY}", "utf-8")
    (folder / "old_offer.html").write_text("Subject: Old offer\n\n<p>retired</p>\n", "utf-8")
    notion = notion_campaign(tmp_path / "notion", emu, xmas)

    doc = copy_json("--to-config", str(notion))
    in_source = {"contacts": 3, "templates": 4, "emails": 9, "events": 3}
    assert doc["target"] == "Notion" and doc["ok"] is True, doc["items"]
    assert counts(doc, "copied") == in_source and counts(doc, "at_target") == in_source
    assert len(pages(emu, notion, "tracker")) == 9 and len(pages(emu, notion, "contacts")) == 3
    [sent] = [p for p in pages(emu, notion, "tracker") if plain(p, "Row ID") == row_id(f"lead-nurture:{ADA}", 1)]
    assert (plain(sent, "State"), plain(sent, "Message ID"), plain(sent, "Opens")) == ("Sent", "re_msg_1", 3)
    [ada] = [p for p in pages(emu, notion, "contacts") if plain(p, "Email") == ADA]
    assert plain(ada, "Booking Status") == "call-canceled"  # her latest booking event, as recording it sets

    again = copy_json("--to-config", str(notion))
    assert counts(again, "would_copy") == dict.fromkeys(KINDS, 0) and counts(again, "already_there") == in_source

    # a person retires a template in Notion: it does not come back as a file
    [old] = [p for p in pages(emu, notion, "templates") if plain(p, "Template Name") == "old_offer"]
    person = Client(auth=TOKEN, base_url=emu.base_url, logger=logging.getLogger("tests.person"))
    person.pages.update(page_id=old["id"], properties={"Status": {"select": {"name": "Inactive"}}})
    person.close()
    back = make_campaign(tmp_path / "back")
    doc = copy_json("--config", str(notion), "--to-config", str(back))
    assert doc["source"] == "Notion" and doc["ok"] is True, doc["items"]
    assert doc["items"] == [
        {"kind": "templates", "key": "old_offer", "action": "skipped", "detail": "not Active at the source"}
    ]
    assert counts(doc, "copied") == {**in_source, "templates": 3}

    original, returned = open_sqlite(project / "campaign.toml"), open_sqlite(back)
    assert snapshot(returned, [ADA, BOB, EVE]) == snapshot(original, [ADA, BOB, EVE])
    original.close()
    returned.close()
    expected = {name: data for name, data in files(folder).items() if name != "old_offer.html"}
    assert files(back.parent / "templates") == expected  # byte for byte, through Notion and back


def test_a_dry_run_into_notion_writes_nothing_there(
    project: Path, tmp_path: Path, emu: NotionEmulator, xmas: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    filled_for_notion(project, emu, monkeypatch)
    notion = notion_campaign(tmp_path / "notion", emu, xmas)
    emu.reset_requests()
    doc = copy_json("--to-config", str(notion), "--dry-run")
    assert counts(doc, "would_copy") == {"contacts": 3, "templates": 20, "emails": 9, "events": 3}
    assert {r["method"] for r in emu.requests} <= {"GET", "POST"}
    assert all(r["path"].endswith("/query") for r in emu.requests if r["method"] == "POST")
    assert all(pages(emu, notion, kind) == [] for kind in ("contacts", "templates", "tracker"))


# ----------------------------------------------------------------------------------------- PostgreSQL


def test_sqlite_to_postgres_and_back_loses_nothing(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pg

    pg.require()  # skips, with the reason, where XMAS_TEST_DATABASE_URL names no server
    store = open_sqlite(project / "campaign.toml")
    fill(store, extras=False)
    store.close()
    with pg.fresh_schema() as dsn:
        monkeypatch.setenv("XMAS_DATABASE_URL", dsn)
        postgres = make_campaign(tmp_path / "pg")
        postgres.write_text(replace_once(postgres.read_text(), 'backend = "sqlite"', 'backend = "postgres"'))
        doc = copy_json("--to-config", str(postgres))
        in_source = {"contacts": 3, "templates": 20, "emails": 9, "events": 3}
        assert doc["ok"] is True and counts(doc, "copied") == in_source, doc["items"]
        assert counts(copy_json("--to-config", str(postgres)), "already_there") == in_source
        back = make_campaign(tmp_path / "back")
        doc = copy_json("--config", str(postgres), "--to-config", str(back))
        assert doc["ok"] is True and counts(doc, "copied") == in_source, doc["items"]
    original, returned = open_sqlite(project / "campaign.toml"), open_sqlite(back)
    assert snapshot(returned, [ADA, BOB, EVE]) == snapshot(original, [ADA, BOB, EVE])
    original.close()
    returned.close()
    assert files(back.parent / "templates") == files(project / "templates")


def test_a_big_copy_reports_its_progress_in_tenths_not_per_record(project: Path, tmp_path: Path) -> None:
    """In a log (stderr not a terminal) a kind of 1,000 records or more gets a line at each tenth: 9 lines for 1,200
    contacts, none for the templates (fewer than 1,000)."""
    store = open_sqlite(project / "campaign.toml")
    for n in range(1200):
        store.save_contact(Contact(email=f"c{n:04d}@example.com", fields={"first_name": f"C{n}"}))
    store.close()
    target = make_campaign(tmp_path / "other")
    result = run_copy("--config", str(project / "campaign.toml"), "--to-config", str(target))
    lines = [line for line in result.stderr.splitlines() if line.startswith("xmas: copied")]
    assert lines == [f"xmas: copied {n} of 1200 contacts…" for n in range(120, 1200, 120)], result.stderr
