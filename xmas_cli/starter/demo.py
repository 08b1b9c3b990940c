"""`xmas demo`: the whole funnel on the embedded default, on a simulated clock, in a fresh folder."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from ..backends import outbox_mailer, sqlite_store
from ..clock import FixedClock, iso
from ..config import load_campaign
from ..core.campaign import Campaign, MailerConfig, StoreConfig
from ..core.model import ScheduledEmail, State
from ..core.payloads import AssessmentPayload
from ..core.variables import SAMPLE
from ..engine import Engine, enroll, unsubscribe
from ..errors import InvalidInput
from ..inbound.delivery_queue import drain, open_queue
from ..inbound.events import record_from_request
from ..tick.run import tick
from .simulate import simulate

MARKER = ".xmas-demo"
DEMO_SECRET = "demo-secret-not-for-production-use"
MAX_TICKS = 10_000


@dataclass(frozen=True)
class DemoReport:
    folder: Path
    outbox: Path
    started: datetime
    finished: datetime
    ticks: int
    rows: list[ScheduledEmail]
    eml_files: int
    notes: list[str]


def _people(start: datetime) -> list[tuple[str, dict[str, Any]]]:
    at = iso(start)
    return [
        ("signup", {"email": "sam@example.com", "first_name": "Sam", "business_name": "Sam's Barbers"}),
        ("lead-nurture", {"email": "lena@example.com", "first_name": "Lena", "business_name": "Lena Nails"}),
        ("lead-nurture", {"email": "omar@example.com", "first_name": "Omar", "business_name": "Omar Spa"}),
        (
            "assessment",
            {  # the preview's sample contact, who has just completed the assessment
                **{k: v for k, v in SAMPLE.items() if k in AssessmentPayload.model_fields},
                "weakest_system_2": "Money",
                "email_1_sent_at": at,
                "email_1_status": "sent",
            },
        ),
        (
            "noshow",
            {
                "email": "nina@example.com",
                "first_name": "Nina",
                "calendly_event_id": "evt_demo_1",
                "scheduled_time": at,
            },
        ),
        (
            "postcall",
            {
                "email": "paul@example.com",
                "first_name": "Paul",
                "business_name": "Paul's Physio",
                "call_date": at,
                "objection": "price",
            },
        ),
        (
            "onboarding",
            {
                "email": "olivia@example.com",
                "first_name": "Olivia",
                "business_name": "Olivia Hair",
                "payment_date": at,
                "payment_status": "paid",
                "package_type": "foundation",
                "portal_url": "https://portal.example.org/olivia",
                "diagnostic_call_date": iso(start + timedelta(days=3)),
            },
        ),
    ]


Step = tuple[datetime, str, Callable[[Engine], object]]


def _journey(start: datetime) -> list[Step]:
    """Lena's way down the funnel, so the report has a funnel to show: lead nurture, then the assessment two days
    later, a booked call the day after, and payment the day after that."""
    lena = {"email": "lena@example.com", "first_name": "Lena", "business_name": "Lena Nails"}
    took = start + timedelta(days=2, hours=1)
    booked = start + timedelta(days=3, hours=2)
    paid = start + timedelta(days=4, hours=3)
    assessment = {
        **lena,
        **{k: SAMPLE[k] for k in ("red_systems", "orange_systems", "yellow_systems", "green_systems")},
        "weakest_system_1": "GPS",
        "email_1_sent_at": iso(took),
        "email_1_status": "sent",
    }
    onboarding = {**lena, "payment_date": iso(paid), "payment_status": "paid", "package_type": "foundation"}
    return [
        (
            took,
            "lena@example.com took the assessment after two lead-nurture emails",
            lambda e: enroll(e, "assessment", assessment),
        ),
        (
            booked,
            "lena@example.com booked a call: her assessment emails stopped",
            lambda e: record_from_request(e, "booked", {"email": lena["email"], "at": iso(booked)}),
        ),
        (paid, "lena@example.com paid: onboarding began", lambda e: enroll(e, "onboarding", onboarding)),
    ]


def _fresh(folder: Path) -> None:
    if folder.exists() and any(folder.iterdir()):
        if not (folder / MARKER).exists():
            raise InvalidInput(f"{folder} exists and is not a demo folder", "pass --dir with a new or empty folder")
        shutil.rmtree(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / MARKER).write_text("made by xmas demo; safe to delete\n")


def run_demo(config: Path, folder: Path, start: datetime) -> DemoReport:
    source = load_campaign(config, {})
    _fresh(folder)
    shutil.copy(config, folder / "campaign.toml")
    shutil.copytree(source.path(source.campaign.templates_dir), folder / "templates")
    loaded = load_campaign(folder / "campaign.toml", {})
    notes = []
    if loaded.store.backend != "sqlite" or loaded.mailer.backend != "outbox":
        notes.append("the demo always uses the embedded SQLite store and outbox, whatever campaign.toml says")
    campaign: Campaign = loaded.model_copy(
        update={
            "store": StoreConfig(backend="sqlite", path=loaded.store.path, file_mode=loaded.store.file_mode),
            "mailer": MailerConfig(
                backend="outbox", outbox=loaded.mailer.outbox, max_attempts=loaded.mailer.max_attempts
            ),
        }
    )
    clock = FixedClock(start.replace(second=0, microsecond=0))
    outbox = campaign.path(campaign.mailer.outbox)
    engine = Engine(
        campaign=campaign,
        store=sqlite_store(campaign),
        clock=clock,
        secret=DEMO_SECRET,
        mailer_factory=lambda: outbox_mailer(campaign, clock),
    )
    try:
        for sequence, payload in _people(clock.now()):
            enroll(engine, sequence, payload)
        ticks = 0
        unsubscribed = False
        journey = _journey(clock.now())
        while ticks < MAX_TICKS:
            pending = [r for r in engine.store.all_emails() if r.state is State.SCHEDULED]
            next_due = min((r.due for r in pending), default=None)
            if journey and (next_due is None or journey[0][0] <= next_due):
                when, note, step = journey.pop(0)
                clock.set(max(clock.now(), when))
                step(engine)
                notes.append(note)
                continue
            if next_due is None:
                break
            clock.set(max(clock.now(), next_due))
            tick(engine)
            ticks += 1
            if not unsubscribed and any(
                r.state is State.SENT for r in engine.store.emails_for_contact("omar@example.com")
            ):
                unsubscribe(engine, "omar@example.com", "unsubscribed (web page)")  # Omar clicks the link
                notes.append("omar@example.com unsubscribed after his first email: the rest were cancelled")
                unsubscribed = True
        queue = open_queue(engine)  # what Resend's webhooks would report, simulated, so `xmas report` has data
        try:
            simulated = simulate(list(engine.store.all_emails()), queue)
            drain(engine, queue, limit=10_000)
        finally:
            queue.close()
        notes.append(f"{simulated} delivery events simulated (delivered, opened, clicked, bounced): see xmas report")
        rows = list(engine.store.all_emails())
        return DemoReport(folder, outbox, start, clock.now(), ticks, rows, len(list(outbox.glob("*.eml"))), notes)
    finally:
        engine.close()
