"""Pydantic models of the website's webhook payloads, one per kind, following the seeds' tables.

Keys are the seeds' snake_case names. Fields a payload does not name are kept as enrollment data
(JSON scalars only), so the website can send what it already builds.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from functools import cached_property
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    EmailStr,
    Field,
    HttpUrl,
    StrictInt,
    TypeAdapter,
    ValidationError,
    model_validator,
)
from pydantic_core import PydanticCustomError

from ..errors import InvalidInput
from .display import visible
from .windows import zone_of

# ------------------------------------------------------------------------------------------------ strings

# Never in any string: C0 controls but \t and \n, DEL, C1 controls, lone surrogates (not text; they cannot be
# written as UTF-8). Single-line fields (names, ids, the address, what reaches a subject) also refuse \t, \n and
# the Unicode line separators, and the bidirectional overrides and isolates that reorder what follows them.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_SURROGATE = re.compile("[\ud800-\udfff]")
_LINE_BREAK = re.compile("[\t\n\u2028\u2029]")
_BIDI = re.compile("[\u202a-\u202e\u2066-\u2069]")
_EDGES = " \t\r\n"  # what the model strips from both ends anyway: harmless there


def _code(char: str) -> str:
    return f"U+{ord(char):04X}"


def _string_problem(value: str, single_line: bool, stripped: bool = True) -> PydanticCustomError | None:
    """The first character `value` must not hold, as the error to raise. `stripped`: the model strips whitespace
    from both ends of its own fields, so a newline there is harmless and not reported."""
    core = value.strip(_EDGES) if stripped else value
    if found := _CONTROL.search(core) or (_LINE_BREAK.search(core) if single_line else None):
        return PydanticCustomError(
            "control_character", "contains a control character ({code}): remove it", {"code": _code(found.group())}
        )
    if found := _SURROGATE.search(core):
        return PydanticCustomError(
            "control_character", "contains an unpaired surrogate ({code}): remove it", {"code": _code(found.group())}
        )
    if single_line and (found := _BIDI.search(core)):
        return PydanticCustomError(
            "control_character",
            "contains a bidirectional control character ({code}): remove it",
            {"code": _code(found.group())},
        )
    return None


def _single_line(value: Any) -> Any:
    if isinstance(value, str) and (problem := _string_problem(value, single_line=True)):
        raise problem
    return value


def _free_text(value: Any) -> Any:
    if isinstance(value, str):
        value = value.replace("\r\n", "\n").replace("\r", "\n")  # a browser's textarea sends CRLF: one newline
        if problem := _string_problem(value, single_line=False):
            raise problem
    return value


Count = Annotated[StrictInt, Field(ge=0, le=8)]
Line = Annotated[str, Field(min_length=1, max_length=200), BeforeValidator(_single_line)]
Name = Line
Label = Annotated[str, Field(max_length=500), BeforeValidator(_single_line)]  # free text that reaches a subject
Text = Annotated[str, Field(max_length=500), BeforeValidator(_free_text)]  # may span lines: \n and \t only
SYSTEM_COUNTS = ("red_systems", "orange_systems", "yellow_systems", "green_systems")

# ------------------------------------------------------------------------------------------------ times

EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)  # excluded
_RANGE = "from 2000-01-01T00:00:00Z up to (not including) 2100-01-01T00:00:00Z"
_ISO_START = re.compile(r"\d{4}-\d{2}-\d{2}")
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def _instant_input(value: Any) -> Any:
    """Only ISO 8601 text: an epoch number (or a string of one) is refused, never guessed at."""
    if isinstance(value, bool | int | float) or (isinstance(value, str) and _NUMBER.fullmatch(value.strip())):
        raise PydanticCustomError("epoch_time", "is a number")
    if isinstance(value, str):
        if not _ISO_START.match(value.strip()):
            raise PydanticCustomError("datetime_parsing", "is not an ISO 8601 time")
        return value.strip()
    return value


def _in_range(value: datetime) -> datetime:
    try:
        utc = value.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00:00+01:00 is before the first representable instant
        utc = None
    if utc is None or not EARLIEST <= utc < LATEST:
        raise PydanticCustomError("instant_range", "is out of range: send a time " + _RANGE)
    return utc


Instant = Annotated[AwareDatetime, BeforeValidator(_instant_input), AfterValidator(_in_range)]

# ------------------------------------------------------------------------------------------------ the rest


def _lower(value: str) -> str:
    return value.strip().lower()


def _ascii_local_part(value: str) -> str:
    """An international domain is fine (it is sent in its ASCII form, core.outgoing.ascii_address); a non-ASCII
    name before the @ needs SMTPUTF8 all the way, which the mail providers xmas sends through do not offer."""
    local = value.rpartition("@")[0]
    if not local.isascii():
        raise PydanticCustomError(
            "email_local_part",
            "the part before @ ({local}) is not ASCII, and mail to it cannot be delivered: use the contact's ASCII "
            "address",
            {"local": local},
        )
    return value


Email = Annotated[EmailStr, AfterValidator(_lower), AfterValidator(_ascii_local_part), BeforeValidator(_single_line)]
Url = Annotated[HttpUrl, BeforeValidator(_single_line)]

MAX_EXTRAS = 50
MAX_EXTRA_TEXT = 2000
_EXTRA_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")


def _shown_key(key: object) -> str:
    text = visible(key)
    return text if len(text) <= 64 else text[:64] + "…"


def extra_problems(extras: dict[Any, Any]) -> list[tuple[str, str]]:
    """One line per bad extra field: the rules for the data a payload carries beyond its own fields."""
    if len(extras) > MAX_EXTRAS:
        return [
            (
                "(payload)",
                f"{len(extras)} fields the payload does not define; at most {MAX_EXTRAS} are kept: "
                "send only the fields the campaign uses",
            )
        ]
    problems: list[tuple[str, str]] = []
    for key, value in extras.items():
        if not isinstance(key, str) or not _EXTRA_KEY.fullmatch(key):
            problems.append(
                (
                    _shown_key(key),
                    "is not a usable field name: use at most 64 letters, digits and _, not starting with a digit",
                )
            )
        elif not isinstance(value, str | int | float | bool) and value is not None:
            problems.append((key, "extra fields must be a string, number, boolean or null"))
        elif isinstance(value, float) and not math.isfinite(value):
            problems.append((key, "is not a finite number"))
        elif isinstance(value, str) and len(value) > MAX_EXTRA_TEXT:
            problems.append((key, f"longer than {MAX_EXTRA_TEXT} characters"))
        elif isinstance(value, str) and (error := _string_problem(value, single_line=False, stripped=False)):
            problems.append((key, error.message()))
    return problems


def _known_zone(value: str) -> str:
    if zone_of(value) is None:
        raise PydanticCustomError(
            "time_zone", "is not a time zone: give an IANA name like America/Toronto or Europe/Berlin"
        )
    return value


TimeZone = Annotated[str, Field(max_length=64), BeforeValidator(_single_line), AfterValidator(_known_zone)]


class Payload(BaseModel):
    model_config = ConfigDict(extra="allow", str_strip_whitespace=True, frozen=True)

    email: Email = Field(description="The contact's email address.")
    first_name: Name = Field(description="The contact's first name, as the emails greet them.")
    # the contact's own clock: its send window and the dates in its emails
    timezone: TimeZone | None = Field(None, description="The contact's IANA time zone, e.g. Europe/Berlin.")
    consent: Literal["express", "implied"] | None = Field(  # CASL; absent: the sequence's default (campaign.toml)
        None, description="CASL consent this enrollment gives: express or implied [default: the sequence's]."
    )

    @model_validator(mode="after")
    def _extras_are_scalars(self) -> Payload:
        for key, problem in extra_problems(self.model_extra or {})[:1]:
            raise ValueError(f"{key}: {problem}")
        return self

    @cached_property
    def dumped(self) -> dict[str, Any]:
        """model_dump once per payload: an enrollment reads its data several times (key, plan, contact)."""
        return {key: value for key, value in self.model_dump(mode="json").items() if value is not None}

    def data(self) -> dict[str, Any]:
        """The payload as JSON-ready data: times as ISO 8601 UTC, URLs as strings, no None (a copy: callers may
        change it)."""
        return dict(self.dumped)


BUSINESS = "The contact's business name."


class SignupPayload(Payload):
    business_name: Name = Field(description=BUSINESS)


class LeadPayload(Payload):
    business_name: Name | None = Field(None, description=BUSINESS)


class AssessmentPayload(Payload):
    business_name: Name = Field(description=BUSINESS)
    red_systems: Count = Field(description="Systems rated broken (red), 0-8.")
    orange_systems: Count = Field(description="Systems rated struggling (orange), 0-8.")
    yellow_systems: Count = Field(description="Systems rated functional (yellow), 0-8.")
    green_systems: Count = Field(description="Systems rated optimized (green), 0-8.")
    # reaches subjects (WeakestSystem1): one line
    weakest_system_1: Label | None = Field(None, description="The weakest system's name (it reaches subjects).")
    weakest_system_2: Label | None = Field(None, description="The second-weakest system's name.")
    strongest_system: Text | None = Field(None, description="The strongest system's name.")
    revenue_leak_total: Annotated[StrictInt, Field(ge=0, le=100_000_000)] | None = Field(
        None, description="Estimated yearly revenue leak, whole dollars."
    )
    overall_score: Annotated[StrictInt, Field(ge=0, le=100)] | None = Field(
        None, description="The assessment's score, 0-100."
    )
    email_1_sent_at: Instant | None = Field(None, description="When the website sent email 1 (ISO 8601 time).")
    email_1_status: Text | None = Field(None, description="The website's email 1 outcome: 'failed' makes xmas send it.")

    @model_validator(mode="after")
    def _eight_systems(self) -> AssessmentPayload:
        total = sum(getattr(self, name) for name in SYSTEM_COUNTS)
        if total > 8:
            raise ValueError(f"red/orange/yellow/green_systems add up to {total}; the assessment rates 8 systems")
        return self


class NoShowPayload(Payload):
    calendly_event_id: Line = Field(description="The missed call's Calendly event id.")
    scheduled_time: Instant = Field(description="When the missed call was scheduled (ISO 8601 time).")
    business_name: Name | None = Field(None, description=BUSINESS)


class PostCallPayload(Payload):
    call_date: Instant = Field(description="When the sales call took place (ISO 8601 time).")
    business_name: Name | None = Field(None, description=BUSINESS)
    objection: Text | None = Field(None, description="What held the contact back, in their words.")
    interest_level: Text | None = Field(None, description="How interested they seemed, e.g. warm.")


class OnboardingPayload(Payload):
    business_name: Name | None = Field(None, description=BUSINESS)
    payment_date: Instant | None = Field(None, description="When the client paid (ISO 8601 time).")
    payment_status: Label | None = Field(None, description="The payment's status: only 'paid' is onboarded.")
    portal_url: Url | None = Field(None, description="The client portal's address (https://...).")
    diagnostic_call_date: Instant | None = Field(None, description="The kickoff call's time (ISO 8601 time).")
    package_type: Text | None = Field(None, description="The package bought, e.g. Done-with-you.")

    @model_validator(mode="after")
    def _paid(self) -> OnboardingPayload:
        """Onboarding says "we received your payment" and takes a spot: only for a payment that went through."""
        if self.payment_status is not None and self.payment_status.strip().lower() != "paid":
            raise ValueError(
                f"payment_status: is {self.payment_status!r}: only a paid client is onboarded "
                '(send the payment\'s status once it is "paid")'
            )
        return self


MODELS: dict[str, type[Payload]] = {
    "signup": SignupPayload,
    "lead": LeadPayload,
    "assessment": AssessmentPayload,
    "noshow": NoShowPayload,
    "postcall": PostCallPayload,
    "onboarding": OnboardingPayload,
}

# A field one kind defines is checked by that definition when another kind carries it as extra data: contact
# fields (red_systems, first_name...) are kept from any payload, and times are read wherever they are.
_KNOWN: dict[str, TypeAdapter[Any]] = {}
for _model in MODELS.values():
    for _name, _info in _model.model_fields.items():
        _type: Any = Annotated[(_info.annotation, *_info.metadata)] if _info.metadata else _info.annotation
        _KNOWN.setdefault(_name, TypeAdapter(_type, config=ConfigDict(str_strip_whitespace=True)))


def _int_problem(got: Any) -> str:
    if isinstance(got, bool):
        return f"must be a whole number like 2, not a boolean (got {str(got).lower()})"
    if isinstance(got, float):
        return f"must be a whole number like 2, not a decimal (got {got!r})"
    if isinstance(got, str):
        return f"must be a JSON number like 2, not text (got {got[:40]!r})"
    return f"must be a whole number like 2 (got {type(got).__name__})"


def _describe(err: Any) -> tuple[str, str]:
    loc = ".".join(str(p) for p in err["loc"]) or "(payload)"
    kind = err["type"]
    msg = str(err["msg"]).removeprefix("Value error, ")
    got = err.get("input")
    if kind == "missing":
        return loc, "is required"
    if kind == "timezone_aware":
        return loc, "needs a UTC offset (ISO 8601 like 2025-12-01T10:30:00Z)"
    if kind in ("datetime_from_date_parsing", "datetime_parsing", "datetime_type"):
        return loc, "is not an ISO 8601 time with offset (like 2025-12-01T10:30:00Z)"
    if kind == "epoch_time":
        return loc, (
            f"is a number, not a time (got {repr(got)[:40]}): send ISO 8601 with an offset, like 2025-12-01T10:30:00Z"
        )
    if kind == "instant_range":
        return loc, f"{msg} (got {repr(got)[:60]})"
    if kind == "control_character":
        return loc, msg  # the value itself is not echoed: it is what must not reach a terminal or a header
    if kind == "int_type":
        return loc, _int_problem(got)
    if kind == "value_error" and loc == "(payload)" and ": " in msg:
        field, _, rest = msg.partition(": ")
        if " " not in field:
            return field, rest
    shown = "" if isinstance(got, dict) else f" (got {repr(got)[:60]})"
    return loc, msg + shown


def _check_extras(model: type[Payload], raw: dict[Any, Any]) -> tuple[dict[Any, Any], list[tuple[str, str]]]:
    """The payload with its extra fields checked: bad ones left out (with a problem line each), and ones another
    kind defines validated by that definition and normalised (times in UTC)."""
    cleaned = {k: v for k, v in raw.items() if k in model.model_fields}
    extras = {k: v for k, v in raw.items() if k not in model.model_fields}
    problems = extra_problems(extras)
    if len(extras) > MAX_EXTRAS:
        return cleaned, problems
    bad = {field for field, _ in problems}
    for key, value in extras.items():
        adapter = _KNOWN.get(key)
        if _shown_key(key) in bad:
            continue
        if adapter is None or value is None:
            cleaned[key] = value
            continue
        try:
            cleaned[key] = adapter.dump_python(adapter.validate_python(value), mode="json")
        except ValidationError as exc:
            problems += [_describe({**err, "loc": (key, *err["loc"])}) for err in exc.errors()]
    return cleaned, problems


def validate_payload(kind: str, raw: Any) -> Payload:
    """Validate a payload; on failure raise InvalidInput with one problem per bad field."""
    if not isinstance(raw, dict):
        raise InvalidInput(
            "the payload must be a JSON object",
            'send {"email": ..., "first_name": ..., ...}',
            [("(payload)", f"got {type(raw).__name__}")],
        )
    model = MODELS[kind]
    cleaned, problems = _check_extras(model, raw)
    try:
        payload = model.model_validate(cleaned)
    except ValidationError as exc:
        problems = [_describe(err) for err in exc.errors()] + problems
    if problems:
        raise InvalidInput(
            f"invalid {kind} payload: {len(problems)} problem{'s' if len(problems) != 1 else ''}",
            "fix the fields listed; nothing was written",
            problems,
        )
    return payload
