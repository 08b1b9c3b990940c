"""The report's numbers on every store: counted in SQL on SQLite and PostgreSQL (stores/report_sql.py), row by row
on Notion (core/report_facts.py), equal on the same rows; an unsubscribe is put down to the contact's last sent
email alone; the funnel never widens, and its "Booked a call" is the emails' `bookings_count`."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from test_cli_enroll import ASSESSMENT
from test_counts import engines_on

from xmas_cli.clock import FixedClock
from xmas_cli.core.model import Delivery, ScheduledEmail, Sender, State, row_id
from xmas_cli.core.report_facts import facts_from_rows
from xmas_cli.engine import Engine, campaign_counts, enroll, unsubscribe
from xmas_cli.engine.broadcast import broadcast
from xmas_cli.inbound.events import record_event
from xmas_cli.report.build import build_report, funnel_of
from xmas_cli.stores.sqlite import SqliteStore

T0 = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
LOGGER = logging.getLogger("tests.report_stores")
OpenEngine = Callable[[datetime], Engine]


@pytest.fixture(params=["sqlite", "postgres", "notion"])
def open_engine(request: pytest.FixtureRequest, project: Path) -> Iterator[OpenEngine]:
    """An engine on the store named by the parameter, its clock at the time given."""
    with engines_on(request.param, project) as make:
        yield make


def lead(engine: Engine, email: str) -> None:
    enroll(engine, "lead-nurture", {"email": email, "first_name": "A"})


def assessment(engine: Engine, email: str) -> None:
    taken = iso(engine.clock.now())
    payload = {**ASSESSMENT, "email": email, "first_name": "A", "business_name": "B", "email_1_sent_at": taken}
    enroll(engine, "assessment", payload)


def iso(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


def send(engine: Engine, email: str, sequence: str, step: int, at: datetime, **delivery: Any) -> None:
    """Record the step as sent by xmas at `at` (what a tick would), with what the provider reported."""
    [row] = [r for r in engine.store.emails_for_contact(email) if r.sequence == sequence and r.step == step]
    engine.store.update_email(row, {"state": State.SENT, "sent_at": at, "delivery": Delivery(**delivery)})


def test_an_unsubscribe_counts_against_the_last_email_sent_before_it_only(open_engine: OpenEngine) -> None:
    """Three emails, then the unsubscribe: only the third has it. Two emails sent in the same second, then the
    unsubscribe: only one of the two has it (the greater id, on every store alike)."""
    engine = open_engine(T0)
    for email in ("many@example.com", "tie@example.com", "stays@example.com"):
        lead(engine, email)
    for step in (1, 2, 3):
        send(engine, "many@example.com", "lead-nurture", step, T0 + timedelta(days=2 * step), opened_at=T0)
    send(engine, "stays@example.com", "lead-nurture", 1, T0 + timedelta(days=1))
    send(engine, "tie@example.com", "lead-nurture", 1, T0 + timedelta(days=1))
    send(engine, "tie@example.com", "lead-nurture", 2, T0 + timedelta(days=1))  # the same second
    later = open_engine(T0 + timedelta(days=7))
    unsubscribe(later, "many@example.com", "unsubscribed (one-click)")
    unsubscribe(later, "tie@example.com", "unsubscribed (web page)")

    doc = build_report(open_engine(T0 + timedelta(days=8)))
    [nurture] = [s for s in doc["sequences"] if s["sequence"] == "lead-nurture"]
    assert [(s["step"], s["sent"], s["unsubscribed"]) for s in nurture["steps"]] == [
        (1, 3, 0),  # many's first, stays's, tie's first: none is the last before an unsubscribe
        (2, 2, 1),  # many's second (no), tie's second (yes: of the two sent in one second, the greater id)
        (3, 1, 1),  # many's third and last
        (4, 0, 0),
        (5, 0, 0),
    ]
    # an email sent before the start of the report is not counted, and the unsubscribe goes with it
    since = build_report(open_engine(T0 + timedelta(days=8)), since=T0 + timedelta(days=5))
    [nurture] = [s for s in since["sequences"] if s["sequence"] == "lead-nurture"]
    assert [(s["sent"], s["unsubscribed"]) for s in nurture["steps"]] == [(0, 0), (0, 0), (1, 1), (0, 0), (0, 0)]


def send_broadcast(engine: Engine, email: str, name: str, at: datetime, variant: int = 0, **delivery: Any) -> None:
    """Record the contact's row of the broadcast `name` as sent at `at`, as send() does a step's."""
    [row] = [r for r in engine.store.emails_for_contact(email) if r.id == f"broadcast:{email}|{name}#1"]
    engine.store.update_email(
        row, {"state": State.SENT, "sent_at": at, "delivery": Delivery(**delivery), "variant": variant}
    )


def populate(open_engine: OpenEngine) -> Engine:
    """A campaign with every kind of number: deliveries, variants, unsubscribes, each funnel stage, a booking by
        event and one canceled, a contact who went straight to the assessment, one straight to paying; and two
        broadcasts of different names (one sent with a subject variant, one the last email before an unsubscribe), and
        a `broadcast` row whose key names no broadcast (written by hand: it counts as the sequence's step), and one of a
    contact whose address holds a `|` (the name is read after the address, not after the first `|`)."""
    engine = open_engine(T0)
    for n in range(6):
        lead(engine, f"lead{n}@example.com")
    for n in range(6):
        email = f"lead{n}@example.com"
        send(
            engine, email, "lead-nurture", 1, T0 + timedelta(hours=n), delivered_at=T0, opened_at=T0 if n % 2 else None
        )
    send(engine, "lead0@example.com", "lead-nurture", 2, T0 + timedelta(days=2), bounce="Permanent/General")
    send(engine, "lead1@example.com", "lead-nurture", 2, T0 + timedelta(days=2), delivered_at=T0, clicks=2)
    [row] = [r for r in engine.store.emails_for_contact("lead2@example.com") if r.step == 2]
    engine.store.update_email(row, {"state": State.SENT, "sent_at": T0 + timedelta(days=2), "variant": 1})
    day3 = open_engine(T0 + timedelta(days=3))
    for email in ("lead1@example.com", "lead2@example.com", "lead3@example.com", "direct@example.com"):
        assessment(day3, email)  # cancels the rest of lead nurture
    send(day3, "lead1@example.com", "assessment", 2, T0 + timedelta(days=4), delivered_at=T0, complained_at=T0)
    day5 = open_engine(T0 + timedelta(days=5))
    record_event(day5, "booked", "lead1@example.com", key="b1")
    record_event(day5, "booked", "lead2@example.com", key="b2")
    record_event(open_engine(T0 + timedelta(days=6)), "call-canceled", "lead2@example.com", key="c2")
    record_event(day5, "booked", "outsider@example.com", key="b3")  # booked without any sequence
    payment = {"email": "lead1@example.com", "first_name": "A", "payment_date": iso(T0 + timedelta(days=6))}
    enroll(open_engine(T0 + timedelta(days=6)), "onboarding", payment)
    enroll(day5, "onboarding", {**payment, "email": "payer@example.com"})  # straight to paying
    day6 = open_engine(T0 + timedelta(days=6, hours=1))
    broadcast(day6, "christmas_email_5", everyone=True, name="spots_left")
    broadcast(day6, "lead_nurture_email_5", where="email ~ lead", name="last_call")
    at = T0 + timedelta(days=6, hours=2)
    send_broadcast(day6, "lead1@example.com", "spots_left", at, delivered_at=at, opened_at=at, clicks=1)
    send_broadcast(day6, "lead2@example.com", "spots_left", at, variant=1, delivered_at=at)
    send_broadcast(day6, "lead5@example.com", "spots_left", at, bounce="Permanent/General")
    send_broadcast(day6, "lead1@example.com", "last_call", at + timedelta(hours=1), delivered_at=at, complained_at=at)
    send_broadcast(day6, "lead5@example.com", "last_call", at + timedelta(hours=1))  # lead5's last, then unsubscribed
    for email, key in (
        ("lead3@example.com", "broadcast:lead3@example.com"),  # no `|name`: counted as the sequence's step 1
        ("odd|one@example.com", "broadcast:odd|one@example.com|last_call"),  # a `|` in the address: last_call's
    ):
        day6.store.add_email(ScheduledEmail(row_id(key, 1), key, email, "broadcast", 1, "lead_nurture_email_5",
                                            Sender.XMAS, at, State.SENT, sent_at=at))  # fmt: skip
    unsubscribe(open_engine(T0 + timedelta(days=7)), "lead5@example.com")
    unsubscribe(open_engine(T0 + timedelta(days=7)), "lead0@example.com")
    unsubscribe(open_engine(T0 + timedelta(days=7)), "lead4@example.com", "suppressed by hand")  # not an unsubscribe
    return open_engine(T0 + timedelta(days=8))


@pytest.mark.parametrize("open_engine", ["sqlite", "postgres"], indirect=True)
def test_the_sql_counts_equal_the_row_by_row_definition(open_engine: OpenEngine) -> None:
    engine = populate(open_engine)
    store, funnel = engine.store, funnel_of(engine)
    # a delivery that cannot be read (a hand edit): the email counts as sent, with nothing reported, both ways
    [damaged] = [
        r for r in store.emails_for_contact("lead5@example.com") if (r.sequence, r.step) == ("lead-nurture", 1)
    ]
    if isinstance(store, SqliteStore):
        store.db.execute("UPDATE emails SET delivery = '{{{' WHERE id = ?", (damaged.id,))
    else:
        with store._tx() as conn:  # type: ignore[attr-defined]
            conn.execute("UPDATE emails SET delivery = '[1]'::jsonb WHERE id = %s", (damaged.id,))
    for since in (None, T0 + timedelta(hours=3), T0 + timedelta(days=2), T0 + timedelta(days=30)):
        slow = facts_from_rows(store.all_emails(), store.get_contacts, since, funnel)
        assert store.report_facts(since, funnel) == slow, since
    whole = store.report_facts(None, funnel)
    assert whole.steps[("lead-nurture", 1, 0)] == {
        "sent": 6,
        "delivered": 5,  # lead5's cannot be read
        "opened": 2,
        "clicked": 0,
        "bounced": 0,
        "complained": 0,
        "unsubscribed": 0,
    }
    assert whole.steps[("lead-nurture", 2, 0)]["bounced"] == 1 and whole.steps[("lead-nurture", 2, 0)]["clicked"] == 1
    assert whole.steps[("lead-nurture", 2, 0)]["unsubscribed"] == 1  # lead0's last email
    assert whole.steps[("lead-nurture", 2, 1)]["sent"] == 1  # the subject variant
    assert whole.steps[("assessment", 2, 0)]["complained"] == 1
    assert whole.days[("2026-12-03", "lead-nurture")] == {"sent": 3, "opened": 0, "clicked": 1}
    assert [s.contacts for s in whole.funnel] == [9, 6, 3, 2]
    none = dict.fromkeys(("sent", "delivered", "opened", "clicked", "bounced", "complained", "unsubscribed"), 0)
    assert whole.broadcasts == {
        ("spots_left", "christmas_email_5"): {
            **none,
            "sent": 3,
            "delivered": 2,
            "opened": 1,
            "clicked": 1,
            "bounced": 1,
        },
        ("last_call", "lead_nurture_email_5"): {**none, "sent": 3, "delivered": 1, "complained": 1, "unsubscribed": 1},
    }
    assert whole.steps[("broadcast", 1, 0)] == {**none, "sent": 1}  # the row that names no broadcast
    assert not [key for key in whole.steps if key[0] == "broadcast" and key != ("broadcast", 1, 0)]
    assert whole.days[("2026-12-07", "broadcast")] == {"sent": 7, "opened": 1, "clicked": 1}


@pytest.mark.parametrize("open_engine", ["sqlite", "postgres"], indirect=True)
def test_the_funnel_never_widens_and_books_as_the_emails_count(open_engine: OpenEngine) -> None:
    engine = populate(open_engine)
    doc = build_report(engine)
    funnel = doc["funnel"]
    assert [f["stage"] for f in funnel] == ["entered", "assessment", "booked", "paid"]
    # entered: the six leads, direct (assessment), payer (onboarding), outsider (booked by an event only);
    # the assessment or further: lead1..3, direct, and outsider and payer who went further without it
    assert [f["contacts"] for f in funnel] == [9, 6, 3, 2]
    assert all(a["contacts"] >= b["contacts"] for a, b in itertools.pairwise(funnel))
    assert [f["conversion"] for f in funnel] == [None, round(6 / 9, 4), 0.5, round(2 / 3, 4)]
    # booked: lead1 (event, then onboarding), outsider (event), payer (onboarding); lead2 canceled; and who paid
    assert funnel[2]["contacts"] == campaign_counts(engine).bookings == 3
    # the median time from the stage before, for who was there first: lead1..3 took the assessment 3 days in
    assert funnel[1]["median_hours"] == 72.0
    # the cohort of a period: who entered since day 2 (direct, payer, outsider), and where they got to
    since = build_report(engine, since=T0 + timedelta(days=2))
    assert [f["contacts"] for f in since["funnel"]] == [3, 3, 2, 1]


def test_rates_are_unknown_not_zero_when_nothing_reports_deliveries(open_engine: OpenEngine) -> None:
    engine = open_engine(T0)
    lead(engine, "a@example.com")
    send(engine, "a@example.com", "lead-nurture", 1, T0)  # the outbox mailer: nothing ever reports on it
    doc = build_report(open_engine(T0 + timedelta(days=1)))
    assert doc["rates_note"] == (
        "no rates: the outbox mailer writes .eml files, and nothing reports their deliveries, opens or clicks"
    )
    resend = engine.campaign.model_copy(
        update={"mailer": engine.campaign.mailer.model_copy(update={"backend": "resend"})}
    )
    other = Engine(resend, engine.store, FixedClock(T0), secret="s" * 20)
    assert build_report(other)["rates_note"].startswith("no rates yet: no delivery event has come from Resend")
    send(engine, "a@example.com", "lead-nurture", 1, T0, delivered_at=T0)  # one report is enough to show rates
    assert build_report(open_engine(T0 + timedelta(days=1)))["rates_note"] is None
