"""What happened to every email: Resend's delivery events recorded on their rows (queued, deduplicated, in any
order), the report built from them, and subject-line variants that stay put."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import Cli, replace_once
from resend_emulator import new_webhook_secret, sign_webhook

from xmas_cli.backends import engine_from_config
from xmas_cli.core.deliveries import DeliveryEvent, apply
from xmas_cli.core.model import Delivery, ScheduledEmail, State
from xmas_cli.engine import Engine
from xmas_cli.inbound.resend_events import handle_resend_webhook

pytestmark = pytest.mark.every_store  # the rules hold on SQLite and on PostgreSQL

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def at(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def webhook(kind: str, email_id: str, when: datetime, **data: Any) -> str:
    body = {"type": kind, "created_at": at(when), "data": {"email_id": email_id, "to": ["x@example.com"], **data}}
    return json.dumps(body)


@pytest.fixture
def sent(xmas: Cli, project: Path) -> list[ScheduledEmail]:
    """Three leads, each sent lead nurture's first email (the outbox gives each a message id)."""
    for n in range(3):
        payload = {"email": f"lead{n}@example.com", "first_name": f"Lead{n}", "business_name": "Shop"}
        xmas("enroll", "lead-nurture", "--payload", "-", "--now", at(T0), input=json.dumps(payload))
    xmas("tick", "--now", at(T0))
    with opened(project) as engine:
        rows = [r for r in engine.store.all_emails() if r.state is State.SENT]
    assert len(rows) == 3 and all(r.message_id for r in rows)
    return rows


class opened:
    def __init__(self, project: Path) -> None:
        self.engine = engine_from_config(str(project / "campaign.toml"), at(T0 + timedelta(hours=1)))

    def __enter__(self) -> Engine:
        return self.engine

    def __exit__(self, *exc: object) -> None:
        self.engine.close()


def post(project: Path, secret: str, body: str, msg_id: str) -> str:
    with opened(project) as engine:
        return handle_resend_webhook(engine, body, sign_webhook(secret, body, msg_id=msg_id), secret).action


def test_events_are_recorded_once_in_any_order_and_an_unknown_id_is_acknowledged(
    sent: list[ScheduledEmail], project: Path
) -> None:
    secret = new_webhook_secret()
    mid = str(sent[0].message_id)
    events = [
        ("msg_open_2", webhook("email.opened", mid, T0 + timedelta(minutes=50))),
        (
            "msg_click",
            webhook(
                "email.clicked",
                mid,
                T0 + timedelta(minutes=40),
                click={"link": "https://calendly.com/x", "timestamp": at(T0 + timedelta(minutes=40))},
            ),
        ),
        ("msg_delivered", webhook("email.delivered", mid, T0 + timedelta(minutes=1))),
        ("msg_open_1", webhook("email.opened", mid, T0 + timedelta(minutes=30))),
    ]
    for msg_id, body in events:
        assert post(project, secret, body, msg_id) == "recorded"
    for msg_id, body in events:  # Resend delivers every webhook again: nothing changes
        post(project, secret, body, msg_id)
    assert post(project, secret, webhook("email.opened", "not-ours", T0), "msg_other") == "recorded"
    with opened(project) as engine:
        row = engine.store.emails_by_id([sent[0].id])[sent[0].id]
        others = engine.store.emails_by_id([sent[1].id])[sent[1].id]
    d = row.delivery
    assert d.delivered_at == T0 + timedelta(minutes=1)
    assert d.opened_at == T0 + timedelta(minutes=30) and d.opens == 2  # the earliest open, two distinct webhooks
    assert d.clicks == 1 and d.links == ("https://calendly.com/x",)
    assert others.delivery == Delivery()


def test_apply_gives_the_same_delivery_in_every_order() -> None:
    import itertools

    t = datetime(2026, 12, 1, 10, tzinfo=UTC)
    events = [
        DeliveryEvent("1", "email.delivered", "m", t),
        DeliveryEvent("2", "email.opened", "m", t + timedelta(minutes=5)),
        DeliveryEvent("3", "email.clicked", "m", t + timedelta(minutes=3), link="https://a"),
        DeliveryEvent("4", "email.bounced", "m", t, bounce="Transient/General"),
        DeliveryEvent("5", "email.bounced", "m", t, bounce="Permanent/General"),
    ]
    results = set()
    for order in itertools.permutations(events):
        d = Delivery()
        for e in order:
            d = apply(d, e)
        results.add(d)
    assert len(results) == 1
    [d] = results
    assert d.opened_at == t + timedelta(minutes=3) and d.opens == 1 and d.bounce == "Permanent/General"


def test_on_a_rate_limited_store_events_wait_in_the_queue_for_the_tick(
    sent: list[ScheduledEmail], project: Path
) -> None:
    """The webhook only queues (Notion's pace is the tick's business); here the queue is drained by the tick."""
    from xmas_cli.inbound.delivery_queue import DeliveryQueue, drain

    queue_file = project / ".xmas" / "deliveries.db"
    queue = DeliveryQueue(queue_file)
    queue.add(DeliveryEvent("w1", "email.delivered", str(sent[1].message_id), T0 + timedelta(minutes=2)), T0)
    queue.close()
    with opened(project) as engine:
        from xmas_cli.tick.run import tick

        report = tick(engine)
        assert report.deliveries == 1
        assert engine.store.emails_by_id([sent[1].id])[sent[1].id].delivery.delivered_at == T0 + timedelta(minutes=2)
        again = DeliveryQueue(queue_file)
        assert drain(engine, again).applied == 0  # done entries stay done
        again.close()


def test_report_counts_per_step_and_the_funnel(xmas: Cli, sent: list[ScheduledEmail], project: Path) -> None:
    secret = new_webhook_secret()
    for n, row in enumerate(sent):
        post(project, secret, webhook("email.delivered", str(row.message_id), T0), f"d{n}")
    post(project, secret, webhook("email.opened", str(sent[0].message_id), T0), "o0")
    post(
        project,
        secret,
        webhook("email.bounced", str(sent[2].message_id), T0, bounce={"type": "Transient", "subType": "General"}),
        "b2",
    )
    xmas("unsubscribe", "lead0@example.com")
    doc = xmas.json("report", "--now", at(T0 + timedelta(days=1)))
    assert doc["version"] == 1 and set(doc) >= {"sequences", "funnel", "per_day", "campaign", "since"}
    [nurture] = [s for s in doc["sequences"] if s["sequence"] == "lead-nurture"]
    first = nurture["steps"][0]
    assert {
        k: first[k]
        for k in ("step", "template", "sent", "delivered", "opened", "clicked", "bounced", "complained", "unsubscribed")
    } == {
        "step": 1,
        "template": "lead_nurture_email_1",
        "sent": 3,
        "delivered": 3,
        "opened": 1,
        "clicked": 0,
        "bounced": 1,
        "complained": 0,
        "unsubscribed": 1,
    }
    assert doc["funnel"][0] == {
        "stage": "entered",
        "label": "Entered (lead nurture or a later stage)",
        "contacts": 3,
        "conversion": None,
        "median_hours": None,
    }
    assert doc["per_day"] == [{"day": "2026-12-01", "sent": 3, "opened": 1, "clicked": 0}]
    later = xmas.json("report", "--since", "2026-12-02", "--now", at(T0 + timedelta(days=1)))
    assert later["sequences"][1]["steps"][0]["sent"] == 0
    html = project / "report.html"
    xmas("report", "--html", str(html), "--now", at(T0 + timedelta(days=1)))
    assert "lead_nurture_email_1" in html.read_text()
    assert "unknown sequence" in xmas("report", "--sequence", "nope", code=2).stderr
    assert "--since" in xmas("report", "--since", "someday", code=2).stderr


def test_a_subject_variant_is_chosen_by_the_row_and_recorded(xmas: Cli, project: Path) -> None:
    path = project / "campaign.toml"
    path.write_text(
        replace_once(
            path.read_text(),
            '{ template = "lead_nurture_email_1", offset = "0h",   testing_offset = "0m" },',
            '{ template = "lead_nurture_email_1", offset = "0h",   testing_offset = "0m", '
            'subjects = ["B: {{ first_name }}, a question", "C: one idea for {{ first_name }}"] },',
        )
    )
    for n in range(12):
        payload = {"email": f"v{n}@example.com", "first_name": f"V{n}", "business_name": "Shop"}
        xmas("enroll", "lead-nurture", "--payload", "-", "--now", at(T0), input=json.dumps(payload))
    previews = {}
    for n in range(12):
        row_id = f"lead-nurture:v{n}@example.com#1"
        previews[row_id] = xmas.json("preview", "--row", row_id)["subject"]
    xmas("tick", "--now", at(T0))
    with opened(project) as engine:
        rows = {r.id: r for r in engine.store.all_emails() if r.step == 1}
    variants = {r.variant or 0 for r in rows.values()}
    assert variants == {0, 1, 2}  # twelve rows spread over the three subjects
    for row_id, row in rows.items():
        subject = previews[row_id]
        expected = {0: "", 1: "B: ", 2: "C: "}[row.variant or 0]
        assert subject.startswith(expected) if expected else not subject.startswith(("B: ", "C: "))
    doc = xmas.json("report", "--now", at(T0 + timedelta(days=1)))
    first = doc["sequences"][1]["steps"][0]
    assert [v["variant"] for v in first["variants"]] == [0, 1, 2] and sum(v["sent"] for v in first["variants"]) == 12
    assert first["variants"][1]["subject"].startswith("B: ")


@pytest.mark.sqlite_only
def test_the_demo_shows_a_funnel_and_what_happened_to_its_emails(xmas: Cli, project: Path) -> None:
    xmas("demo", "--dir", "demo", "--now", at(T0))
    doc = xmas.json("report", "--config", str(project / "demo" / "campaign.toml"), "--now", at(T0 + timedelta(days=30)))
    steps = [s for seq in doc["sequences"] for s in seq["steps"]]
    assert sum(s["sent"] for s in steps) == 20
    assert sum(s["delivered"] for s in steps) > 15 and 0 < sum(s["opened"] for s in steps) < 20
    assert sum(s["unsubscribed"] for s in steps) == 1  # Omar
    stages = {f["stage"]: f for f in doc["funnel"]}
    assert all(stages[s]["conversion"] > 0 for s in ("assessment", "booked", "paid"))  # Lena went all the way
    assert stages["assessment"]["median_hours"] == 49.0  # two days and an hour after her first email


def test_an_event_for_an_id_no_row_has_waits_a_day_then_status_says_so(
    xmas: Cli, sent: list[ScheduledEmail], project: Path
) -> None:
    secret = new_webhook_secret()
    ours = {"tags": {"campaign": "christmas-2026"}}
    assert post(project, secret, webhook("email.delivered", "not-yet", T0, **ours), "w_ours") == "recorded"
    theirs = {"tags": {"campaign": "website"}}  # the website's own email: never this campaign's
    assert post(project, secret, webhook("email.delivered", "website-1", T0, **theirs), "w_theirs") == "recorded"

    for hours in (1, 12, 23):  # each tick looks again (at growing intervals): still waiting
        xmas("tick", "--now", at(T0 + timedelta(hours=hours)))
        doc = xmas.json("status", "--now", at(T0 + timedelta(hours=hours)), code=None)
        assert doc["deliveries"]["waiting"] == 1 and doc["deliveries"]["unmatched_last_7_days"] == 0, doc
    text = xmas("status", "--now", at(T0 + timedelta(hours=23)), code=None).stdout
    assert "delivery events waiting for their email's id: 1 (the oldest received 2026-12-01T10:00:00Z;" in text

    xmas("tick", "--now", at(T0 + timedelta(hours=25)))
    doc = xmas.json("status", "--now", at(T0 + timedelta(hours=25)), code=None)
    assert doc["deliveries"] == {"waiting": 0, "oldest": None, "unmatched_last_7_days": 1}
    text = xmas("status", "--now", at(T0 + timedelta(hours=25)), code=None).stdout
    assert "delivery events given up in the last 7 days: 1 (no row had their email's id after a day" in text
