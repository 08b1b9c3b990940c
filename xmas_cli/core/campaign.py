"""campaign.toml → a validated Campaign. Every error names the file, the key and the fix."""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import date, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    HttpUrl,
    field_validator,
    model_validator,
)

from .campaign_fields import Cap, Duration, SendDays, SendWindow, parse_cap
from .controls import ActionsConfig, PauseConfig
from .durations import parse_duration
from .model import Event, Sender
from .notion_config import NotionConfig
from .tick_config import LAST_SEND, TickConfig
from .windows import DAYS, Window, parse_window, zone_of

PAYLOAD_KINDS = ("signup", "lead", "assessment", "noshow", "postcall", "onboarding")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Step(_Strict):
    template: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    offset: Duration
    testing_offset: Duration
    sent_by: Sender = Sender.XMAS
    # Subject-line experiment: other subjects for this step (Jinja, like the template's own `Subject:`, which is
    # variant 0). Each row gets one by a stable hash of its id, so a retry never switches.
    subjects: list[Annotated[str, Field(min_length=1, max_length=300)]] = Field(default_factory=list, max_length=9)

    def delay(self, testing: bool) -> timedelta:
        return parse_duration(self.testing_offset if testing else self.offset)


class Sequence(_Strict):
    description: str = ""
    payload: Literal["signup", "lead", "assessment", "noshow", "postcall", "onboarding"]
    key: list[str] = Field(min_length=1)
    anchor: str | None = None
    anchor_required: bool = False  # missing anchor: warn and use now (the seeds' fallback)
    cancels: list[str] = Field(default_factory=list)
    transactional: bool = False
    counts_as_booking: bool = False
    takes_spot: bool = False
    final: bool = False  # once in it, enrolling in a sequence it cancels writes those rows as Cancelled
    # A contact's new enrollment in this sequence under another key (a second no-show, a later call): "replace"
    # cancels the pending emails of the earlier one ("superseded by <key>"); "keep" lets both run.
    concurrent: Literal["replace", "keep"] = "replace"
    enrolls: list[str] = Field(default_factory=list)  # also enroll the contact in these sequences (same payload)
    # The campaign's send window and days, for this sequence; a transactional sequence has none unless it says so
    send_window: SendWindow = None
    send_days: SendDays = None
    # The consent an enrollment gives when its payload says nothing (CASL): "express" (the person opted in to
    # marketing email), or "implied" (an inquiry: 6 months; a purchase, a sequence that takes_spot: 2 years)
    consent: Literal["express", "implied"] = "implied"
    steps: list[Step] = Field(default_factory=list)

    @model_validator(mode="after")
    def _steps_in_order(self) -> Sequence:
        """Steps are listed in the order they go out: a later step with an earlier offset would go first (and a
        frequency cap would hold the earlier one behind it), which no one means."""
        for key in ("offset", "testing_offset"):
            for n in range(1, len(self.steps)):
                before, step = self.steps[n - 1], self.steps[n]
                if step.delay(key == "testing_offset") < before.delay(key == "testing_offset"):
                    raise ValueError(
                        f"step {n + 1} ({step.template}) has {key} = {getattr(step, key)!r}, earlier than step {n}'s "
                        f"{getattr(before, key)!r}: list the steps in the order they go out, each {key} at least the "
                        "one before it"
                    )
        return self


BROADCAST = "broadcast"  # the sequence of `xmas broadcast`'s one-off emails (engine/broadcast.py)


class Sequences(dict[str, "Sequence"]):
    """campaign.toml's sequences, and `broadcast` unless campaign.toml declares it: a marketing sequence of one
    step, found by name (so windows, the cap and consent apply to broadcasts) but never listed."""

    def __missing__(self, key: str) -> Sequence:
        if key == BROADCAST:
            return Sequence(description="One-off emails (xmas broadcast)", payload="lead", key=["email"],
                            steps=[Step(template=BROADCAST, offset="0h", testing_offset="0m")])  # fmt: skip
        raise KeyError(key)

    def __contains__(self, key: object) -> bool:
        return key == BROADCAST or dict.__contains__(self, key)

    def get(self, key: str, default: Any = None) -> Any:
        return self[key] if key in self else default  # noqa: SIM401 (self.get is this method)


MARKETING = "marketing"  # in an event's cancels: every sequence that is not transactional


class EventConfig(_Strict):
    description: str = ""
    cancels: list[str] = Field(default_factory=list)  # sequences whose pending emails it cancels, or "marketing"
    # true: from now on the contact counts as having booked a call (bookings_count, latest_booking); false: no
    # longer (a canceled call); absent: it says nothing about bookings
    counts_as_booking: bool | None = None
    auto_reply_hold: Duration | None = None  # [events.replied]: how long an auto-reply holds the next emails


class SenderConfig(_Strict):
    from_: str = Field(alias="from", min_length=3)
    reply_to: EmailStr
    name: str = Field(min_length=1)
    company_name: str = Field(min_length=1)
    postal_address: str = Field(min_length=5)
    unsubscribe_mailto: EmailStr | None = None


class Values(_Strict):
    calendly_link: HttpUrl
    pdf_download_link: HttpUrl
    portal_base_url: HttpUrl
    assessment_link: HttpUrl
    deadline: date
    spots_total: int = Field(ge=0)


class StoreConfig(_Strict):
    backend: Literal["sqlite", "notion", "postgres"] = "sqlite"
    path: str = ".xmas/xmas.db"
    # PostgreSQL: how long a tick runner's claim on its rows and batches lasts (on the tick's clock) before another
    # runner may take them over. Longer than a tick runs (core/tick_config.py), so a live runner keeps its work.
    lease: Duration = "2m"
    # Who may read the files xmas writes (the SQLite file, the outbox, the locks): the owner only, or also the
    # group, for a CGI script and a cron job that run as two users of one group.
    file_mode: Literal["0600", "0640", "0660"] = "0600"

    @property
    def mode(self) -> int:
        return int(self.file_mode, 8)


class MailerConfig(_Strict):
    backend: Literal["outbox", "resend"] = "outbox"
    outbox: str = ".xmas/outbox"
    max_attempts: int = Field(default=8, ge=1, le=100)
    requests_per_second: float = Field(default=5, gt=0, le=100)  # Resend's default team limit
    max_retries: int = Field(default=3, ge=0, le=10)  # within one tick, for 429 / 5xx / connection errors
    retry_backoff_seconds: float = Field(default=1.0, ge=0, le=60)  # doubles on each retry


class CampaignSection(_Strict):
    name: str = Field(min_length=1, pattern=r"^[a-z0-9][a-z0-9-]*$")
    timezone: str
    testing: bool = False
    public_url: HttpUrl
    templates_dir: str = "templates"
    # Marketing email goes out only inside this window of the recipient's local time (their `timezone`, else the
    # campaign's), on these days; a row due outside it waits for the next opening. None: any time.
    send_window: SendWindow = None
    send_days: SendDays = None
    # At most N marketing emails to one contact in any span ("1/24h"); the excess waits. Transactional email
    # neither waits for it nor counts. None: no cap.
    frequency_cap: Cap = None

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}; use an IANA name such as America/Toronto") from None
        return value


class ConsentConfig(_Strict):
    require: bool = True  # no marketing email without valid consent; transactional email is not affected


class Campaign(_Strict):
    campaign: CampaignSection
    sender: SenderConfig
    values: Values
    store: StoreConfig = StoreConfig()
    notion: NotionConfig = NotionConfig()
    mailer: MailerConfig = MailerConfig()
    tick: TickConfig = TickConfig()
    sequences: dict[str, Sequence]
    events: dict[str, EventConfig] = Field(default_factory=dict)
    consent: ConsentConfig = ConsentConfig()
    pause: PauseConfig = PauseConfig()
    actions: ActionsConfig = ActionsConfig()
    base_dir: Path = Field(default=Path("."), exclude=True)
    home_dir: Path | None = Field(default=None, exclude=True)  # what `~` means in a path (config.py knows it)

    @model_validator(mode="after")
    def _references(self) -> Campaign:
        lease = parse_duration(self.store.lease).total_seconds()
        # Only PostgreSQL has leases (many runners share the due rows); SQLite and Notion runners hold a file lock.
        runs = self.tick.longest + LAST_SEND
        if self.store.backend == "postgres" and lease < runs:
            raise ValueError(
                f"store.lease {self.store.lease!r} is shorter than a tick runs (it sends {self.tick.describe()}: "
                f"{self.tick.longest:g} s, plus {LAST_SEND:g} s for the last send): another runner would take over "
                f'the batches of a live one; set lease to at least {math.ceil(runs)}s, e.g. "2m"'
            )
        for name, seq in self.sequences.items():
            for other in seq.cancels:
                if other not in self.sequences:
                    raise ValueError(f"sequences.{name}.cancels names {other!r}, which is not a sequence")
            for other in seq.enrolls:
                if other not in self.sequences or other == name:
                    raise ValueError(f"sequences.{name}.enrolls names {other!r}, which is not another sequence")
                if self.sequences[other].enrolls:
                    raise ValueError(
                        f"sequences.{name}.enrolls names {other!r}, which enrolls in others itself: "
                        "one level only, so an enrollment can never loop"
                    )
        for name, event in self.events.items():
            for other in event.cancels:
                if other != MARKETING and other not in self.sequences:
                    raise ValueError(f"events.{name}.cancels names {other!r}: use a sequence's name or {MARKETING!r}")
        object.__setattr__(self, "sequences", Sequences(self.sequences))  # frozen: set once, here
        return self

    def event(self, name: str) -> EventConfig:
        from ..errors import InvalidInput

        if name not in self.events:
            known = ", ".join(self.events) or "none are configured"
            raise InvalidInput(f"unknown event {name!r}", f"use one of: {known} ([events.NAME] in campaign.toml)")
        return self.events[name]

    def booking_news(self, events: Iterable[Event], booked_only: bool = False) -> Event | None:
        """The latest event that says whether the contact booked a call (counts_as_booking true or false), or with
        `booked_only` the latest that says it did."""

        def says(event: Event) -> bool:
            config = self.events.get(event.name)
            if config is None or config.counts_as_booking is None:
                return False
            return config.counts_as_booking or not booked_only

        return max((e for e in events if says(e)), key=lambda e: e.order, default=None)

    def cancelled_by(self, event: str) -> set[str]:
        """The sequences an event cancels, with "marketing" spelled out."""
        out: set[str] = set()
        for name in self.events[event].cancels:
            if name == MARKETING:
                out |= set(self.marketing)
            else:
                out.add(name)
        return out

    @property
    def testing(self) -> bool:
        return self.campaign.testing

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.campaign.timezone)

    @property
    def lease(self) -> timedelta:
        return parse_duration(self.store.lease)

    @property
    def catch_up_gap(self) -> timedelta:
        return parse_duration(self.tick.testing_catch_up_gap if self.testing else self.tick.catch_up_gap)

    def window(self, sequence: str, timezone: str | None) -> Window | None:
        """The send window of a row of `sequence` for a contact in `timezone` (None: send at any time)."""
        seq = self.sequences.get(sequence)
        if self.testing or seq is None:
            return None
        text = seq.send_window or (None if seq.transactional else self.campaign.send_window)
        if text is None:
            return None
        start, end = parse_window(text)
        days = seq.send_days or self.campaign.send_days or list(DAYS)
        return Window(start, end, frozenset(DAYS.index(d) for d in days), zone_of(timezone) or self.zone)

    @property
    def cap(self) -> tuple[int, timedelta] | None:
        return parse_cap(self.campaign.frequency_cap) if self.campaign.frequency_cap and not self.testing else None

    @property
    def marketing(self) -> list[str]:
        names = [name for name, seq in self.sequences.items() if not seq.transactional]
        return names if dict.__contains__(self.sequences, BROADCAST) else [*names, BROADCAST]

    def sequence(self, name: str) -> Sequence:
        from ..errors import unknown_sequence

        if name not in self.sequences:
            raise unknown_sequence(name, list(self.sequences))
        return self.sequences[name]

    def path(self, value: str) -> Path:
        """A path from campaign.toml, relative to the file's own folder; `~/…` in the home folder config.py read."""
        if self.home_dir is not None and (value == "~" or value.startswith("~/")):
            value = str(self.home_dir) + value[1:]
        candidate = Path(value)
        return candidate if candidate.is_absolute() else self.base_dir / candidate

    def template_ids(self) -> list[str]:
        seen: dict[str, None] = {}
        for seq in self.sequences.values():
            for step in seq.steps:
                seen.setdefault(step.template)
        return list(seen)
