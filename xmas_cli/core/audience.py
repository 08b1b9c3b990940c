"""`xmas broadcast --where EXPR`: a small expression language that selects contacts (parsed here, never eval'd).

    EXPR     := TERM ("or" TERM)*
    TERM     := FACTOR ("and" FACTOR)*
    FACTOR   := "not" FACTOR | "(" EXPR ")" | TEST
    TEST     := "booked" | "suppressed" | "consent"          the contact booked a call (its latest booking event
                                                            says so, or a live row in a sequence that counts as a
                                                            booking) · is unsubscribed · has valid consent now
              | "event" NAME                                 the contact has an event NAME (replied, booked ...)
              | "in" SEQUENCE                                a live row (not cancelled or skipped) in SEQUENCE
              | FIELD OP VALUE                               a contact field, `segment` or `consent` (its kind)
    OP       := "=" | "!=" | "<" | "<=" | ">" | ">=" | "~"   (~: contains, ignoring case)
    VALUE    := a word, a number, or 'quoted text' / "quoted text"

Words are case-sensitive values but keywords are not; numbers compare as numbers when both sides are numbers.
Example: `segment = CRITICAL and not booked and not event replied`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Union

from ..errors import InvalidInput

FIX = (
    "write e.g. --where 'segment = CRITICAL and not booked', with tests booked, suppressed, consent, event NAME, "
    "in SEQUENCE, FIELD = VALUE (=, !=, <, <=, >, >=, ~), joined by and, or, not and parentheses"
)
_TOKEN = re.compile(r"\s*(?:(\()|(\))|(!=|<=|>=|=|<|>|~)|'([^']*)'|\"([^\"]*)\"|([^\s()=!<>~'\"]+))")
_OPS = ("=", "!=", "<", "<=", ">", ">=", "~")
_KEYWORDS = ("and", "or", "not", "booked", "suppressed", "consent", "event", "in")
MAX_LENGTH = 1000


@dataclass(frozen=True)
class Facts:
    """What a selection may look at for one contact."""

    fields: dict[str, Any]  # the contact's fields, with `segment`, `email` and `consent` (its kind, or "none")
    booked: bool
    suppressed: bool
    consent_valid: bool
    events: frozenset[str]
    sequences: frozenset[str]  # sequences with a live row


@dataclass(frozen=True)
class Test:
    kind: str  # booked | suppressed | consent | event | in | compare
    name: str = ""
    op: str = ""
    value: str = ""


@dataclass(frozen=True)
class Not:
    inner: Node


@dataclass(frozen=True)
class Both:
    kind: str  # and | or
    left: Node
    right: Node


Node = Union[Test, Not, Both]  # noqa: UP007 (a runtime alias: the dataclasses above name it)


def _tokens(text: str) -> list[tuple[str, str, int]]:
    """(kind, text, position): kind is ( ) op word or text (quoted)."""
    out: list[tuple[str, str, int]] = []
    at = 0
    while at < len(text):
        if text[at:].strip() == "":
            break
        found = _TOKEN.match(text, at)
        if not found:
            where = at + len(text[at:]) - len(text[at:].lstrip()) + 1
            raise InvalidInput(f"--where: cannot read {text[at:].strip()[:20]!r} (position {where})", FIX)
        kinds = ("(", ")", "op", "text", "text", "word")
        for index, (kind, group) in enumerate(zip(kinds, found.groups(), strict=True), 1):
            if group is not None:
                start = found.start(index) - (1 if kind == "text" else 0)  # a quoted text starts at its quote
                out.append((kind, group, start + 1))
                break
        at = found.end()
    return out


class _Parser:
    def __init__(self, text: str) -> None:
        if not text.strip():
            raise InvalidInput("--where is empty", FIX)
        if len(text) > MAX_LENGTH:
            raise InvalidInput(f"--where is longer than {MAX_LENGTH} characters", "write a shorter expression")
        self.items = _tokens(text)
        self.at = 0
        self.depth = 0

    def peek(self) -> tuple[str, str, int] | None:
        return self.items[self.at] if self.at < len(self.items) else None

    def keyword(self, word: str) -> bool:
        item = self.peek()
        if item and item[0] == "word" and item[1].lower() == word:
            self.at += 1
            return True
        return False

    def take(self, what: str) -> tuple[str, str, int]:
        item = self.peek()
        if item is None:
            raise InvalidInput(f"--where ends where {what} was expected", FIX)
        self.at += 1
        return item

    def expr(self) -> Node:
        node = self.term()
        while self.keyword("or"):
            node = Both("or", node, self.term())
        return node

    def term(self) -> Node:
        node = self.factor()
        while self.keyword("and"):
            node = Both("and", node, self.factor())
        return node

    def factor(self) -> Node:
        self.depth += 1
        if self.depth > 50:
            raise InvalidInput("--where nests too deeply", "use fewer parentheses or nots")
        try:
            if self.keyword("not"):
                return Not(self.factor())
            item = self.peek()
            if item and item[0] == "(":
                self.at += 1
                node = self.expr()
                kind, text, pos = self.take("')'")
                if kind != ")":
                    raise InvalidInput(f"--where: ')' expected at position {pos}, found {text!r}", FIX)
                return node
            return self.test()
        finally:
            self.depth -= 1

    def test(self) -> Node:
        kind, text, pos = self.take("a test")
        word = text.lower()
        if kind != "word" or word in ("and", "or"):
            raise InvalidInput(f"--where: a test expected at position {pos}, found {text!r}", FIX)
        if word in ("event", "in"):
            k, name, p = self.take(f"a name after {word!r}")
            if k not in ("word", "text"):
                raise InvalidInput(f"--where: a name expected after {word!r} at position {p}", FIX)
            return Test(word, name=name)
        item = self.peek()
        if item and item[0] == "op":
            self.at += 1
            k, value, p = self.take(f"a value after {item[1]!r}")
            if k not in ("word", "text"):
                raise InvalidInput(f"--where: a value expected after {item[1]!r} at position {p}", FIX)
            return Test("compare", name=word, op=item[1], value=value)
        if word in ("booked", "suppressed", "consent"):
            return Test(word)
        raise InvalidInput(f"--where: {text!r} (position {pos}) is not a test", FIX)


def parse(text: str) -> Node:
    """The expression as a tree; InvalidInput naming the position and the grammar otherwise."""
    parser = _Parser(text)
    node = parser.expr()
    rest = parser.peek()
    if rest is not None:
        raise InvalidInput(f"--where: unexpected {rest[1]!r} at position {rest[2]}", FIX)
    return node


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str) and re.fullmatch(r"-?\d+(\.\d+)?", value.strip()):
        return float(value)
    return None


def _compare(have: Any, op: str, want: str) -> bool:
    if have is None:
        return op == "!="
    if op == "~":
        return want.lower() in str(have).lower()
    a, b = _number(have), _number(want)
    left: Any = a if a is not None and b is not None else str(have)
    right: Any = b if a is not None and b is not None else want
    return bool(
        {
            "=": left == right,
            "!=": left != right,
            "<": left < right,
            "<=": left <= right,
            ">": left > right,
            ">=": left >= right,
        }[op]
    )


def matches(node: Node, facts: Facts) -> bool:
    if isinstance(node, Not):
        return not matches(node.inner, facts)
    if isinstance(node, Both):
        if node.kind == "and":
            return matches(node.left, facts) and matches(node.right, facts)
        return matches(node.left, facts) or matches(node.right, facts)
    if node.kind == "booked":
        return facts.booked
    if node.kind == "suppressed":
        return facts.suppressed
    if node.kind == "consent":
        return facts.consent_valid
    if node.kind == "event":
        return node.name in facts.events
    if node.kind == "in":
        return node.name in facts.sequences
    return _compare(facts.fields.get(node.name), node.op, node.value)


def tests(node: Node) -> list[Test]:
    """Every test in the expression, left to right (to check the names it uses)."""
    if isinstance(node, Not):
        return tests(node.inner)
    if isinstance(node, Both):
        return tests(node.left) + tests(node.right)
    return [node]


def check_names(node: Node, fields: set[str], events: set[str], sequences: set[str]) -> None:
    """A name the campaign does not know would select nobody without a word: refuse it instead."""
    for test in tests(node):
        known, what = {"compare": (fields, "field"), "event": (events, "event"), "in": (sequences, "sequence")}.get(
            test.kind, (None, "")
        )
        if known is not None and test.name not in known:
            raise InvalidInput(f"--where: unknown {what} {test.name!r}", f"use one of: {', '.join(sorted(known))}")


def describe(node: Node) -> str:
    """The expression as read back (for messages and the dry run)."""
    if isinstance(node, Not):
        return f"not {describe(node.inner)}"
    if isinstance(node, Both):
        return f"({describe(node.left)} {node.kind} {describe(node.right)})"
    if node.kind in ("event", "in"):
        return f"{node.kind} {node.name}"
    if node.kind == "compare":
        return f"{node.name} {node.op} {node.value!r}"
    return node.kind
