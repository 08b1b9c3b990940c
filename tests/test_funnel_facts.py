"""core/funnel_facts.py: which payload field is which fact, and how facts from enrollments and events combine."""

from __future__ import annotations

from datetime import UTC, datetime

from xmas_cli.core.funnel_facts import FunnelFacts, booking_facts, enrollment_facts
from xmas_cli.core.model import Contact

DEC_1 = datetime(2026, 12, 1, 10, 30, tzinfo=UTC)
DEC_9 = datetime(2026, 12, 9, 16, 0, tzinfo=UTC)


def test_each_payload_kind_gives_only_its_own_facts() -> None:
    carried = {
        "call_date": "2026-12-01T10:30:00Z",
        "scheduled_time": "2026-12-09T17:00:00+01:00",
        "payment_status": " Paid ",
        "package_type": "Done-with-you,\n12 weeks",
    }
    assert enrollment_facts("postcall", carried) == FunnelFacts(call_time=DEC_1)
    assert enrollment_facts("noshow", carried) == FunnelFacts(call_time=DEC_9)
    assert enrollment_facts("onboarding", carried) == FunnelFacts(None, "paid", "Done-with-you, 12 weeks")
    assert enrollment_facts("assessment", carried) == FunnelFacts()  # extras of another kind are not its facts
    assert enrollment_facts("postcall", {"call_date": "2026-12-01T10:30:00"}) == FunnelFacts()  # no offset: no fact


def test_a_booking_gives_its_start_time_and_a_broken_one_nothing() -> None:
    assert booking_facts({"start_time": "2026-12-09T16:00:00Z"}) == FunnelFacts(call_time=DEC_9)
    assert booking_facts({"start_time": "soon", "call_date": "2026-12-01T10:30:00Z"}) == FunnelFacts(call_time=DEC_1)
    assert booking_facts({"start_time": 5}) == FunnelFacts()


def test_facts_combine_the_same_in_any_order_and_a_contact_carries_them_beside_its_fields() -> None:
    early, late = FunnelFacts(call_time=DEC_1, package="A"), FunnelFacts(call_time=DEC_9, payment_status="paid")
    assert early.merged(late) == FunnelFacts(DEC_9, "paid", "A")
    assert late.merged(early).call_time == DEC_9  # an earlier call arriving later moves nothing
    assert FunnelFacts(package="A").merged(FunnelFacts(package="B")).package == "B"  # the newer package
    contact = Contact("p@example.com").merged({"first_name": "Paul", "call_date": "x"}, None, DEC_1, early)
    assert contact.fields == {"first_name": "Paul"} and contact.funnel == early
    assert contact == Contact("p@example.com", {"first_name": "Paul"}, updated_at=DEC_1)  # not part of equality
