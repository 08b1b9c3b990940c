"""The --where language of `xmas broadcast` (core/audience.py): parsed, never eval'd; errors name the position."""

from __future__ import annotations

import pytest

from xmas_cli.core.audience import Facts, check_names, describe, matches, parse
from xmas_cli.errors import InvalidInput

ADA = Facts(
    fields={
        "email": "ada@example.com",
        "segment": "CRITICAL",
        "first_name": "Ada",
        "red_systems": 3,
        "consent": "implied",
    },
    booked=False,
    suppressed=False,
    consent_valid=True,
    events=frozenset({"replied"}),
    sequences=frozenset({"lead-nurture"}),
)


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("segment = CRITICAL", True),
        ("segment = 'CRITICAL' and not booked", True),
        ("SEGMENT = critical", False),  # keywords and names fold, values do not
        ("booked or suppressed", False),
        ("not (booked or suppressed) and consent", True),
        ("event replied", True),
        ("event booked", False),
        ("in lead-nurture and not in assessment", True),
        ("red_systems >= 2 and red_systems < 10", True),
        ("red_systems > 10", False),
        ("first_name ~ ad", True),
        ("business_name = x", False),  # absent field: only != holds
        ("business_name != x", True),
        ("consent = implied", True),
        ("segment = URGENT or segment = CRITICAL and event replied", True),
        ('email = "ada@example.com"', True),
    ],
)
def test_matches(expr: str, expected: bool) -> None:
    assert matches(parse(expr), ADA) is expected


def test_and_binds_tighter_than_or() -> None:
    assert describe(parse("a = 1 or b = 2 and not c = 3")) == "(a = '1' or (b = '2' and not c = '3'))"


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("", "--where is empty"),
        ("segment =", "--where ends where a value after '=' was expected"),
        ("and booked", "--where: a test expected at position 1, found 'and'"),
        ("(booked", "--where ends where ')' was expected"),
        ("booked booked", "--where: unexpected 'booked' at position 8"),
        ("segment ! x", "--where: cannot read '! x' (position 9)"),
        ("__import__('os')", "--where: '__import__' (position 1) is not a test"),
        ("x" * 1001, "--where is longer than 1000 characters"),
        ("not " * 60 + "booked", "--where nests too deeply"),
    ],
)
def test_bad_expressions_say_where(expr: str, message: str) -> None:
    with pytest.raises(InvalidInput) as err:
        parse(expr)
    assert err.value.message == message


def test_unknown_names_are_refused() -> None:
    with pytest.raises(InvalidInput, match="--where: unknown field 'segmnt'"):
        check_names(parse("segmnt = CRITICAL"), {"segment"}, set(), set())
    with pytest.raises(InvalidInput, match="--where: unknown sequence 'leads'"):
        check_names(parse("in leads"), set(), set(), {"lead-nurture"})
    with pytest.raises(InvalidInput, match="--where: unknown event 'replyed'"):
        check_names(parse("event replyed"), set(), {"replied"}, set())
