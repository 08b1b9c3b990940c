"""The records xmas keeps: contacts, templates and scheduled emails."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from .funnel_facts import FunnelFacts

# A template name that is a file name in templates/ as it is: no folder separators, no leading dot ("..", ".env")
PLAIN_TEMPLATE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,199}")
TEMPLATE_NAME_FIX = "use a template's name: letters, digits, _ . - and no leading dot (xmas templates list shows them)"


def template_file_name(template_id: str) -> str | None:
    """`<template_id>.html`, the file a template is in, or None when the name would reach outside its folder."""
    return f"{template_id}.html" if PLAIN_TEMPLATE_NAME.fullmatch(template_id) else None


class State(StrEnum):
    """A scheduled email's life. Only SCHEDULED rows are ever sent, so changing a row's state pauses it."""

    SCHEDULED = "Scheduled"
    SENT = "Sent"
    SENT_BY_WEBSITE = "Sent by website"
    FAILED = "Failed"
    CANCELLED = "Cancelled"
    SKIPPED = "Skipped"
    PAUSED = "Paused"  # set by a person (in Notion): never sent until set back to Scheduled

    @property
    def pending(self) -> bool:
        return self is State.SCHEDULED


class Sender(StrEnum):
    XMAS = "xmas"
    WEBSITE = "website"


# The contact fields that payloads carry; everything else in a payload belongs to the enrollment.
CONTACT_FIELDS = (
    "first_name",
    "business_name",
    "red_systems",
    "orange_systems",
    "yellow_systems",
    "green_systems",
    "weakest_system_1",
    "weakest_system_2",
    "strongest_system",
    "revenue_leak_total",
    "overall_score",
    "timezone",
)


@dataclass(frozen=True)
class Consent:
    """The contact's consent to marketing email (CASL): express, or implied with an expiry."""

    kind: str  # express | implied
    source: str  # what gave it: a sequence's form ("signup"), or what the payload said
    at: datetime
    expires: datetime | None = None  # implied consent only

    def valid_at(self, now: datetime) -> bool:
        return self.kind == "express" or (self.expires is not None and now < self.expires)

    def describe(self) -> str:
        text = f"{self.kind} · {self.source} · {self.at:%Y-%m-%dT%H:%M:%SZ}"
        return text + (f" · expires {self.expires:%Y-%m-%dT%H:%M:%SZ}" if self.expires else "")

    def outranks(self, other: Consent | None) -> bool:
        """Kept over `other`: express over implied; of two implied, the one that lasts longer."""
        if other is None:
            return True
        if self.kind != other.kind:
            return self.kind == "express"
        if self.kind == "express":
            return False  # the first express consent is the record
        return (self.expires or self.at) > (other.expires or other.at)


def parse_consent(text: str | None) -> Consent | None:
    """`Consent.describe()` read back; None for an empty or damaged value."""
    if not text:
        return None
    parts = [p.strip() for p in text.split("·")]
    try:
        kind, source, at = parts[0], parts[1], datetime.fromisoformat(parts[2].replace("Z", "+00:00"))
        expires = (
            datetime.fromisoformat(parts[3].removeprefix("expires").strip().replace("Z", "+00:00"))
            if len(parts) > 3
            else None
        )
    except (IndexError, ValueError):
        return None
    if kind not in ("express", "implied") or at.tzinfo is None:
        return None
    return Consent(kind, source, at, expires)


@dataclass(frozen=True)
class Contact:
    email: str
    fields: dict[str, Any] = field(default_factory=dict)
    segment: str | None = None
    suppressed: bool = False
    suppressed_reason: str | None = None
    updated_at: datetime | None = None
    ref: str | None = None  # the store's own handle (a Notion page id); None for a new contact
    consent: Consent | None = None
    # What its enrollments and events said of the funnel (call time, payment, package: funnel_facts.py): not a
    # field, not a variable, not part of what makes two contacts equal; only a store that shows it keeps it (Notion)
    funnel: FunnelFacts = field(default_factory=FunnelFacts, compare=False)

    @property
    def first_name(self) -> str:
        return str(self.fields.get("first_name") or "")

    def merged(
        self, data: dict[str, Any], segment: str | None, at: datetime, facts: FunnelFacts | None = None
    ) -> Contact:
        """Latest data wins: fields given now replace the stored ones; fields not given are kept. The
        enrollment's funnel facts join those on record (FunnelFacts.merged)."""
        fields = dict(self.fields)
        fields.update({k: v for k, v in data.items() if k in CONTACT_FIELDS and v is not None})
        funnel = self.funnel.merged(facts) if facts is not None else self.funnel
        return replace(self, fields=fields, segment=segment or self.segment, updated_at=at, funnel=funnel)


@dataclass(frozen=True)
class Template:
    id: str
    subject: str
    html: str
    active: bool = True
    origin: str = ""  # where it was read from, for messages: a file path or a Notion page


@dataclass(frozen=True)
class Delivery:
    """What the mail provider reported about a sent email (Resend's webhooks): each figure is a fact that later
    or repeated reports cannot undo, so events applied in any order, any number of times, end the same."""

    delivered_at: datetime | None = None  # the first delivery report
    opened_at: datetime | None = None  # the first open
    opens: int = 0
    clicks: int = 0
    links: tuple[str, ...] = ()  # the distinct links clicked, first clicked first
    bounce: str | None = None  # "Permanent" or "Transient", with Resend's subtype: "Permanent/General"
    complained_at: datetime | None = None
    delayed: bool = False  # a delivery_delayed report came (and no delivery yet, or after)

    @property
    def empty(self) -> bool:
        return self == Delivery()


@dataclass(frozen=True)
class ScheduledEmail:
    """One row per scheduled email. `id` is stable (enrollment key + step): it is the row's identity
    in every store and the idempotency key at the mail provider."""

    id: str
    enrollment_key: str
    email: str
    sequence: str
    step: int
    template: str
    sender: Sender
    due: datetime
    state: State = State.SCHEDULED
    sent_at: datetime | None = None
    message_id: str | None = None
    attempts: int = 0
    last_error: str | None = None
    note: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    batch: str | None = None  # the batch this row was recorded in before it was sent (batching stores)
    ref: str | None = None  # the store's own handle (a Notion page id)
    defect: str | None = None  # why the stored row could not be read as it is (it is never sent so)
    delivery: Delivery = field(default_factory=Delivery)  # what the provider reported after sending
    variant: int | None = None  # the subject variant it was sent with (0: the template's own subject)

    @property
    def title(self) -> str:
        return f"{self.email} · {self.sequence} #{self.step}"


def row_id(enrollment_key: str, step: int) -> str:
    return f"{enrollment_key}#{step}"


@dataclass(frozen=True)
class Event:
    """Something a contact did (booked a call, canceled it, replied), as campaign.toml's [events.NAME] names it.
    `key` is its identity: an event recorded again under the same key changes nothing."""

    key: str
    email: str
    name: str
    at: datetime  # when it happened
    data: dict[str, Any] = field(default_factory=dict)  # e.g. the Calendly event id and the call's start time
    recorded_at: datetime | None = None

    @property
    def order(self) -> tuple[datetime, datetime]:
        """Which of two events came later: when they happened, then when they were recorded."""
        return (self.at, self.recorded_at or self.at)
