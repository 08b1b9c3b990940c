"""Pydantic models of the website's webhook payloads, one per kind, following the seeds' tables.

Keys are the seeds' snake_case names. Fields a payload does not name are kept as enrollment data
(JSON scalars only), so the website can send what it already builds.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    HttpUrl,
    StrictInt,
    ValidationError,
    model_validator,
)

from .errors import InvalidInput

Count = Annotated[StrictInt, Field(ge=0, le=8)]
Name = Annotated[str, Field(min_length=1, max_length=200)]
Text = Annotated[str, Field(max_length=500)]
Instant = Annotated[AwareDatetime, AfterValidator(lambda v: v.astimezone(UTC))]
SYSTEM_COUNTS = ("red_systems", "orange_systems", "yellow_systems", "green_systems")


def _lower(value: str) -> str:
    return value.strip().lower()


Email = Annotated[EmailStr, AfterValidator(_lower)]


class Payload(BaseModel):
    model_config = ConfigDict(extra="allow", str_strip_whitespace=True, frozen=True)

    email: Email
    first_name: Name

    @model_validator(mode="after")
    def _extras_are_scalars(self) -> Payload:
        for key, value in (self.model_extra or {}).items():
            if not isinstance(value, str | int | float | bool) and value is not None:
                raise ValueError(f"{key}: extra fields must be a string, number, boolean or null")
            if isinstance(value, str) and len(value) > 2000:
                raise ValueError(f"{key}: longer than 2000 characters")
        return self

    def data(self) -> dict[str, Any]:
        """The payload as JSON-ready data: times as ISO 8601 UTC, URLs as strings, no None."""
        out: dict[str, Any] = {}
        for key, value in self.model_dump(mode="json").items():
            if value is not None:
                out[key] = value
        return out


class SignupPayload(Payload):
    business_name: Name


class LeadPayload(Payload):
    business_name: Name | None = None


class AssessmentPayload(Payload):
    business_name: Name
    red_systems: Count
    orange_systems: Count
    yellow_systems: Count
    green_systems: Count
    weakest_system_1: Text | None = None
    weakest_system_2: Text | None = None
    strongest_system: Text | None = None
    revenue_leak_total: Annotated[StrictInt, Field(ge=0, le=100_000_000)] | None = None
    overall_score: Annotated[StrictInt, Field(ge=0, le=100)] | None = None
    email_1_sent_at: Instant | None = None
    email_1_status: Text | None = None

    @model_validator(mode="after")
    def _eight_systems(self) -> AssessmentPayload:
        total = sum(getattr(self, name) for name in SYSTEM_COUNTS)
        if total > 8:
            raise ValueError(f"red/orange/yellow/green_systems add up to {total}; the assessment rates 8 systems")
        return self


class NoShowPayload(Payload):
    calendly_event_id: Annotated[str, Field(min_length=1, max_length=200)]
    scheduled_time: Instant
    business_name: Name | None = None


class PostCallPayload(Payload):
    call_date: Instant
    business_name: Name | None = None
    objection: Text | None = None
    interest_level: Text | None = None


class OnboardingPayload(Payload):
    business_name: Name | None = None
    payment_date: Instant | None = None
    payment_status: Text | None = None
    portal_url: HttpUrl | None = None
    diagnostic_call_date: Instant | None = None
    package_type: Text | None = None


MODELS: dict[str, type[Payload]] = {
    "signup": SignupPayload,
    "lead": LeadPayload,
    "assessment": AssessmentPayload,
    "noshow": NoShowPayload,
    "postcall": PostCallPayload,
    "onboarding": OnboardingPayload,
}


def _describe(err: Any) -> tuple[str, str]:
    loc = ".".join(str(p) for p in err["loc"]) or "(payload)"
    kind = err["type"]
    msg = str(err["msg"]).removeprefix("Value error, ")
    if kind == "missing":
        return loc, "is required"
    if kind == "timezone_aware":
        return loc, "needs a UTC offset (ISO 8601 like 2025-12-01T10:30:00Z)"
    if kind in ("datetime_from_date_parsing", "datetime_parsing", "datetime_type"):
        return loc, "is not an ISO 8601 time with offset (like 2025-12-01T10:30:00Z)"
    if kind == "value_error" and loc == "(payload)" and ": " in msg:
        field, _, rest = msg.partition(": ")
        if " " not in field:
            return field, rest
    got = err.get("input")
    shown = "" if isinstance(got, dict) else f" (got {repr(got)[:60]})"
    return loc, msg + shown


def validate_payload(kind: str, raw: Any) -> Payload:
    """Validate a payload; on failure raise InvalidInput with one problem per bad field."""
    if not isinstance(raw, dict):
        raise InvalidInput(
            "the payload must be a JSON object",
            'send {"email": ..., "first_name": ..., ...}',
            [("(payload)", f"got {type(raw).__name__}")],
        )
    try:
        return MODELS[kind].model_validate(raw)
    except ValidationError as exc:
        problems = [_describe(err) for err in exc.errors()]
        raise InvalidInput(
            f"invalid {kind} payload: {len(problems)} problem{'s' if len(problems) != 1 else ''}",
            "fix the fields listed; nothing was written",
            problems,
        ) from None


def anchor_time(payload: Payload, field: str | None) -> datetime | None:
    if field is None:
        return None
    value = getattr(payload, field, None)
    return value if isinstance(value, datetime) else None
