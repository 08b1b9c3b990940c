"""The bounded JSON reader (jsonin.py), the payload rules for bad input (payloads.py), and terminal-safe text
(display.py), tested directly."""

from __future__ import annotations

import json
from typing import Any

import pytest

from xmas_cli.commands.markup import safe
from xmas_cli.core.display import visible
from xmas_cli.core.jsonin import MAX_BODY, MAX_DEPTH, loads
from xmas_cli.core.payloads import validate_payload
from xmas_cli.errors import InvalidInput

# ------------------------------------------------------------------------------------------------- jsonin


def refused(data: bytes) -> InvalidInput:
    with pytest.raises(InvalidInput) as caught:
        loads(data, field="--payload", what="--payload")
    assert len(caught.value.problems) == 1 and caught.value.problems[0][0] == "--payload"
    return caught.value


def test_loads_reads_one_json_value() -> None:
    assert loads(b'{"a": [1, 2.5, "x", null, true]}', "(body)", "the request body") == {"a": [1, 2.5, "x", None, True]}
    assert loads('{"name": "Zoë"}'.encode(), "(body)", "the request body") == {"name": "Zoë"}


@pytest.mark.parametrize(
    ("data", "message", "problem"),
    [
        (
            b"{nope",
            "--payload is not valid JSON",
            "not valid JSON: Expecting property name enclosed in double quotes at line 1, column 2",
        ),
        (b"", "--payload is not valid JSON", "not valid JSON: Expecting value at line 1, column 1"),
        (b"{} {}", "--payload is not valid JSON", "not valid JSON: Extra data at line 1, column 4"),
        (b'{"a": NaN}', "--payload is not valid JSON", "not valid JSON: NaN is not a JSON number"),
        (b'{"a": Infinity}', "--payload is not valid JSON", "not valid JSON: Infinity is not a JSON number"),
        (b'{"a": -Infinity}', "--payload is not valid JSON", "not valid JSON: -Infinity is not a JSON number"),
        (b'{"a": 1e999}', "--payload is not valid JSON", "not valid JSON: 1e999 is out of range for a number"),
        (
            b'{"a": ' + b"9" * 41 + b"}",
            "--payload is not valid JSON",
            "not valid JSON: a number longer than 40 characters (99999999999999999999…)",
        ),
        (b'{"a": 1, "a": 2}', "--payload is not valid JSON", "not valid JSON: the key 'a' appears twice in one object"),
        (b"\xff\xfe{}", "--payload is not UTF-8 text", "not UTF-8 text (byte 0xff at offset 0)"),
        (b'{"a": "\xe9"}', "--payload is not UTF-8 text", "not UTF-8 text (byte 0xe9 at offset 7)"),
        (
            b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1),
            "--payload is not valid JSON",
            f"not valid JSON: nested deeper than {MAX_DEPTH} levels",
        ),
        (
            b'{"a":' * 20000 + b"1" + b"}" * 20000,
            "--payload is larger than the limit of 65536 bytes",
            "larger than 65536 bytes",
        ),
    ],
)
def test_loads_refuses_with_one_problem_line(data: bytes, message: str, problem: str) -> None:
    error = refused(data)
    assert error.message == message
    assert error.problems == [("--payload", problem)]
    assert error.fix


def test_depth_is_checked_without_recursion_and_brackets_in_strings_do_not_count() -> None:
    deep = b"[" * 30000 + b"]" * 30000  # would be a RecursionError in json.loads
    assert len(deep) < MAX_BODY
    assert refused(deep).problems == [("--payload", f"not valid JSON: nested deeper than {MAX_DEPTH} levels")]
    assert loads(b"[" * MAX_DEPTH + b"]" * MAX_DEPTH, "x", "x") is not None
    text = json.dumps({"note": "[[[[" * 100 + '\\"{{{{' * 100})
    assert loads(text.encode(), "x", "x")["note"].startswith("[[[[")


def test_the_size_limit_is_exact() -> None:
    body = b'{"a": 1}'
    assert loads(body + b" " * (MAX_BODY - len(body)), "x", "x") == {"a": 1}
    assert refused(body + b" " * (MAX_BODY - len(body) + 1)).problems == [("--payload", "larger than 65536 bytes")]


# ----------------------------------------------------------------------------------------------- payloads

NOSHOW = {
    "email": "ann@example.com",
    "first_name": "Ann",
    "calendly_event_id": "evt_1",
    "scheduled_time": "2026-12-10T14:00:00Z",
}
RANGE = "is out of range: send a time from 2000-01-01T00:00:00Z up to (not including) 2100-01-01T00:00:00Z"


def problems(kind: str, payload: dict[str, Any]) -> list[tuple[str, str]]:
    with pytest.raises(InvalidInput) as caught:
        validate_payload(kind, payload)
    assert caught.value.message.startswith(f"invalid {kind} payload: ")
    return caught.value.problems


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("0001-01-01T00:00:00Z", f"{RANGE} (got '0001-01-01T00:00:00Z')"),
        ("0001-01-01T00:00:00+01:00", f"{RANGE} (got '0001-01-01T00:00:00+01:00')"),
        ("9999-12-31T23:59:00Z", f"{RANGE} (got '9999-12-31T23:59:00Z')"),
        ("1999-12-31T23:59:59Z", f"{RANGE} (got '1999-12-31T23:59:59Z')"),
        ("2100-01-01T00:00:00Z", f"{RANGE} (got '2100-01-01T00:00:00Z')"),
        (
            1765375200,
            "is a number, not a time (got 1765375200): send ISO 8601 with an offset, like 2025-12-01T10:30:00Z",
        ),
        (
            1765375200.5,
            "is a number, not a time (got 1765375200.5): send ISO 8601 with an offset, like 2025-12-01T10:30:00Z",
        ),
        (
            "1765375200",
            "is a number, not a time (got '1765375200'): send ISO 8601 with an offset, like 2025-12-01T10:30:00Z",
        ),
        (True, "is a number, not a time (got True): send ISO 8601 with an offset, like 2025-12-01T10:30:00Z"),
        ("2026-12-10T14:00:00", "needs a UTC offset (ISO 8601 like 2025-12-01T10:30:00Z)"),
        ("next tuesday", "is not an ISO 8601 time with offset (like 2025-12-01T10:30:00Z)"),
    ],
)
def test_times_are_iso_8601_with_an_offset_and_in_range(value: Any, problem: str) -> None:
    assert problems("noshow", {**NOSHOW, "scheduled_time": value}) == [("scheduled_time", problem)]


def test_the_range_includes_its_start_and_normalises_to_utc() -> None:
    p = validate_payload("noshow", {**NOSHOW, "scheduled_time": "2000-01-01T01:00:00+01:00"})
    assert p.data()["scheduled_time"] == "2000-01-01T00:00:00Z"
    p = validate_payload("noshow", {**NOSHOW, "scheduled_time": "2099-12-31T23:59:59Z"})
    assert p.data()["scheduled_time"] == "2099-12-31T23:59:59Z"


@pytest.mark.parametrize(
    ("field", "value", "code"),
    [
        ("first_name", "Ann\x00", "U+0000"),
        ("first_name", "Ann\x07", "U+0007"),
        ("first_name", "\x1b[31mAnn", "U+001B"),
        ("first_name", "A\x7fnn", "U+007F"),
        ("first_name", "Ann\x9b", "U+009B"),
        ("first_name", "Ann\nBcc: all@example.com", "U+000A"),
        ("first_name", "Ann\r\nX-Header: 1", "U+000D"),
        ("first_name", "A\tnn", "U+0009"),
        ("business_name", "Ann\u2028Salon", "U+2028"),
        ("calendly_event_id", "evt\n1", "U+000A"),
        ("email", "ann\x00@example.com", "U+0000"),
        ("utm_source", "fb\x1b", "U+001B"),
        ("utm_source", "fb\r", "U+000D"),
    ],
)
def test_control_characters_are_refused(field: str, value: str, code: str) -> None:
    expected = [(field, f"contains a control character ({code}): remove it")]
    assert problems("noshow", {**NOSHOW, field: value}) == expected


@pytest.mark.parametrize(
    "char", ["\u202a", "\u202b", "\u202c", "\u202d", "\u202e", "\u2066", "\u2067", "\u2068", "\u2069"]
)
def test_bidi_overrides_are_refused_in_names(char: str) -> None:
    code = f"U+{ord(char):04X}"
    for field in ("first_name", "business_name"):
        assert problems("noshow", {**NOSHOW, field: f"Ann{char}moc.exe"}) == [
            (field, f"contains a bidirectional control character ({code}): remove it")
        ]


def test_free_text_keeps_newlines_and_tabs_but_nothing_else() -> None:
    call = {"email": "ann@example.com", "first_name": "Ann", "call_date": "2026-12-08T15:00:00Z"}
    p = validate_payload("postcall", {**call, "objection": "price\n\tand timing", "note": "line 1\nline 2"})
    assert p.data()["objection"] == "price\n\tand timing" and p.data()["note"] == "line 1\nline 2"
    assert problems("postcall", {**call, "objection": "price\x08"}) == [
        ("objection", "contains a control character (U+0008): remove it")
    ]
    assert problems("postcall", {**call, "interest_level": "high\ud800"}) == [
        ("interest_level", "contains an unpaired surrogate (U+D800): remove it")
    ]
    # what reaches a subject is one line
    assess = {
        "email": "ann@example.com",
        "first_name": "Ann",
        "business_name": "B",
        "red_systems": 1,
        "orange_systems": 1,
        "yellow_systems": 1,
        "green_systems": 1,
    }
    assert problems("assessment", {**assess, "weakest_system_1": "GPS\nBcc: x"}) == [
        ("weakest_system_1", "contains a control character (U+000A): remove it")
    ]


def test_whitespace_at_the_ends_is_stripped_not_refused() -> None:
    p = validate_payload("noshow", {**NOSHOW, "first_name": " Ann\n", "scheduled_time": " 2026-12-10T14:00:00Z\n"})
    assert p.data()["first_name"] == "Ann" and p.data()["scheduled_time"] == "2026-12-10T14:00:00Z"


def test_integers_are_strict() -> None:
    assess = {
        "email": "ann@example.com",
        "first_name": "Ann",
        "business_name": "B",
        "red_systems": True,
        "orange_systems": 2.0,
        "yellow_systems": "2",
        "green_systems": 0,
        "revenue_leak_total": False,
        "overall_score": 50.5,
    }
    assert problems("assessment", assess) == [
        ("red_systems", "must be a whole number like 2, not a boolean (got true)"),
        ("orange_systems", "must be a whole number like 2, not a decimal (got 2.0)"),
        ("yellow_systems", "must be a JSON number like 2, not text (got '2')"),
        ("revenue_leak_total", "must be a whole number like 2, not a boolean (got false)"),
        ("overall_score", "must be a whole number like 2, not a decimal (got 50.5)"),
    ]


def test_extra_fields_are_bounded() -> None:
    lead = {"email": "ann@example.com", "first_name": "Ann"}
    many = {f"k{i}": i for i in range(51)}
    assert problems("lead", {**lead, **many}) == [
        (
            "(payload)",
            "51 fields the payload does not define; at most 50 are kept: send only the fields the campaign uses",
        )
    ]
    assert len(validate_payload("lead", {**lead, **dict(list(many.items())[:50])}).data()) == 52
    bad_name = "is not a usable field name: use at most 64 letters, digits and _, not starting with a digit"
    assert problems("lead", {**lead, "utm source": "a", "1st": 1, "k" * 65: 1, "ok_key": [1], "x\x1by": 1}) == [
        ("utm source", bad_name),
        ("1st", bad_name),
        ("k" * 64 + "…", bad_name),
        ("ok_key", "extra fields must be a string, number, boolean or null"),
        ("x\\x1by", bad_name),
    ]
    assert problems("lead", {**lead, "note": "x" * 2001}) == [("note", "longer than 2000 characters")]
    assert validate_payload("lead", {**lead, "k" * 64: 1, "_utm": None}).data()["k" * 64] == 1


def test_a_field_another_kind_defines_is_checked_by_its_definition() -> None:
    lead = {"email": "ann@example.com", "first_name": "Ann"}
    assert problems("lead", {**lead, "red_systems": "lots", "call_date": "9999-01-01T00:00:00Z"}) == [
        ("red_systems", "must be a JSON number like 2, not text (got 'lots')"),
        ("call_date", f"{RANGE} (got '9999-01-01T00:00:00Z')"),
    ]
    p = validate_payload("lead", {**lead, "red_systems": 2, "call_date": "2026-12-08T10:00:00-05:00"})
    assert p.data()["red_systems"] == 2 and p.data()["call_date"] == "2026-12-08T15:00:00Z"


# ------------------------------------------------------------------------------------------------ display


def test_safe_escapes_markup_and_shows_control_characters() -> None:
    assert safe("[/bold]") == "\\[/bold]"
    assert safe("[red]x[/red]") == "\\[red]x\\[/red]"
    assert safe("\x1b[31mred") == "\\x1b[31mred"  # ESC shown; [31m is no tag
    assert visible("a\x00b\x07c\x7fd\x9be\u202ef\ud800") == "a\\x00b\\x07c\\x7fd\\x9be\\u202ef\\ud800"
    assert visible("line 1\nline 2\tx\r") == "line 1\\x0aline 2\\x09x\\x0d"
    assert visible("line 1\nline 2\tx\r", multiline=True) == "line 1\nline 2\tx\\x0d"
    assert safe(3) == "3"


def test_a_textarea_s_crlf_in_free_text_is_one_newline_not_an_error() -> None:
    payload = validate_payload(
        "postcall",
        {
            "email": "a@example.com",
            "first_name": "A",
            "call_date": "2026-12-01T10:00:00Z",
            "objection": "price\r\ntiming\r",
        },
    )
    assert payload.data()["objection"] == "price\ntiming"
