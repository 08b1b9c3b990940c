"""Pure scheduling: (campaign, sequence, payload, now) → the rows of one enrollment, with due times.

The catch-up rule (README, "Catch-up"): a step whose time has already passed when it is planned is due
now, and each later step of the same enrollment comes at least `catch_up_gap` after the one before it,
until a step's own time is later than that. So an enrollment made late, or from an old
`email_1_sent_at`, sends its overdue emails one gap apart instead of all at once. `tick` applies the
same rule when several emails of one enrollment are due together (after the tick was not run).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from ..errors import InvalidInput
from .campaign import Campaign, Sequence
from .model import ScheduledEmail, Sender, State, row_id

if TYPE_CHECKING:  # the payload models load pydantic's validators: only enrolling needs them
    from .payloads import Payload


@dataclass(frozen=True)
class Plan:
    key: str
    anchor: datetime
    anchor_source: str  # the payload field it came from, or "now"
    rows: list[ScheduledEmail]
    warnings: list[str] = field(default_factory=list)


def enrollment_key(sequence_name: str, sequence: Sequence, payload: Payload) -> str:
    """`assessment:sarah@example.com`, `noshow:nina@example.com|evt_123abc`,
    `postcall:sarah@example.com|2025-12-08T15:00:00Z`.

    The contact's address always comes first, so two contacts can never share an enrollment (and its rows): the
    same Calendly event id sent for another address is that contact's own enrollment.
    """
    data = payload.data()
    names = ["email", *(name for name in sequence.key if name != "email")]
    parts = [str(data.get(name, "")).strip() for name in names]
    return f"{sequence_name}:{'|'.join(parts)}"


def legacy_enrollment_key(sequence_name: str, sequence: Sequence, payload: Payload) -> str | None:
    """The key versions before 0.2 gave an enrollment whose key did not name the email (`noshow:evt_123abc`),
    so rows written then are found again instead of being written twice; None where it is the same key."""
    if "email" in sequence.key:
        return None
    data = payload.data()
    return f"{sequence_name}:{'|'.join(str(data.get(name, '')).strip() for name in sequence.key)}"


def anchor_time(payload: Payload, field: str | None) -> datetime | None:
    if field is None:
        return None
    value = getattr(payload, field, None)
    return value if isinstance(value, datetime) else None


def catch_up(planned: list[datetime], now: datetime, gap: timedelta) -> list[datetime]:
    """Apply the catch-up rule to planned due times (in step order)."""
    out: list[datetime] = []
    pushing = False
    for due in planned:
        floor = out[-1] + gap if out else now
        if due < now or (pushing and due < floor):
            due = max(now, floor) if out else now
            pushing = True
        else:
            pushing = False
        out.append(due)
    return out


def _website_failed(data: dict[str, object], step: int) -> bool:
    """The payload says the website's email of this step did not go (email_1_status present and not "sent")."""
    status = data.get(f"email_{step}_status")
    return status is not None and str(status).strip().lower() != "sent"


def plan_enrollment(
    campaign: Campaign,
    sequence_name: str,
    payload: Payload,
    now: datetime,
    suppressed: bool = False,
    key: str | None = None,
) -> Plan:
    """The enrollment's rows; `key` overrides the computed key (an enrollment found under its legacy key)."""
    sequence = campaign.sequence(sequence_name)
    key = key or enrollment_key(sequence_name, sequence, payload)
    warnings: list[str] = []
    anchor = anchor_time(payload, sequence.anchor)
    source = sequence.anchor or "now"
    if anchor is None:
        if sequence.anchor:
            warnings.append(f"{sequence.anchor} is missing: timing counts from now ({now:%Y-%m-%dT%H:%M:%SZ})")
        anchor, source = now, "now"
    data = payload.data()
    # A step the website sends is ours after all when the website reports it did not go (email_1_status "failed")
    failed = {n for n, s in enumerate(sequence.steps, 1) if s.sent_by is Sender.WEBSITE and _website_failed(data, n)}
    for n in sorted(failed):
        status = data[f"email_{n}_status"]
        warnings.append(f"email_{n}_status is {status!r}: the website's email #{n} did not go, so xmas sends it now")
    ours = [(n, s) for n, s in enumerate(sequence.steps, 1) if s.sent_by is Sender.XMAS or n in failed]
    last = max((s.delay(campaign.testing) for _, s in ours), default=None)
    if source != "now" and last is not None and anchor + last < now:
        warnings.append(
            f"{source} {anchor:%Y-%m-%dT%H:%M:%SZ} is {(now - anchor).days} days ago, before the sequence's last "
            "step: every email is overdue and goes out as catch-up, one gap apart (a replayed or late webhook?)"
        )
    try:
        dues = iter(catch_up([anchor + s.delay(campaign.testing) for _, s in ours], now, campaign.catch_up_gap))
    except OverflowError:  # payload validation keeps times in range; this guards the arithmetic all the same
        raise InvalidInput(
            f"{source}: {anchor:%Y-%m-%dT%H:%M:%SZ} is too far from today to schedule {sequence_name}",
            "give a time within the campaign's years; nothing was written",
            [(source, "out of range")],
        ) from None
    rows: list[ScheduledEmail] = []
    for number, step in enumerate(sequence.steps, 1):
        base = ScheduledEmail(
            id=row_id(key, number),
            enrollment_key=key,
            email=payload.email,
            sequence=sequence_name,
            step=number,
            template=step.template,
            sender=step.sent_by,
            due=anchor + step.delay(campaign.testing),
            data=data,
        )
        if number in failed:
            base = replace(base, sender=Sender.XMAS)
        elif step.sent_by is Sender.WEBSITE:
            sent_at = anchor if source != "now" else None
            rows.append(replace(base, state=State.SENT_BY_WEBSITE, sent_at=sent_at, note="sent by the website"))
            continue
        due = next(dues)
        note = None if due == base.due else f"catch-up: planned {base.due:%Y-%m-%dT%H:%M:%SZ}"
        if number in failed:
            note = f"the website reported email_{number}_status {data[f'email_{number}_status']!r}: sent by xmas"
        if suppressed:
            rows.append(replace(base, due=due, state=State.SKIPPED, note="contact is unsubscribed"))
        else:
            rows.append(replace(base, due=due, note=note))
    return Plan(key=key, anchor=anchor, anchor_source=source, rows=rows, warnings=warnings)
