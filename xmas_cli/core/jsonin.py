"""The one JSON reader for everything that comes in: `--payload FILE|-`, `preview --data`, HTTP request bodies.

Bounded in every direction, so bad input is an InvalidInput (exit 2, HTTP 400) and never a traceback:
at most MAX_BODY bytes, UTF-8 only, one JSON value, no NaN or Infinity, no key twice in one object, nesting at
most MAX_DEPTH levels (checked by a scan, before the recursive parser runs), numbers at most MAX_NUMBER_CHARS
characters.
"""

from __future__ import annotations

import json
import math
from typing import Any

from ..errors import InvalidInput

MAX_BODY = 64 * 1024
MAX_DEPTH = 32
MAX_NUMBER_CHARS = 40

_SYNTAX_FIX = "send one JSON object with the seeds' snake_case keys"


class _Refused(ValueError):
    """Raised from the parser's hooks: a problem line and its fix."""

    def __init__(self, problem: str, fix: str) -> None:
        super().__init__(problem)
        self.problem = problem
        self.fix = fix


def _depth_over(text: str, limit: int) -> bool:
    """Whether arrays and objects nest deeper than `limit`; one pass, no recursion, strings skipped."""
    if text.count("[") + text.count("{") <= limit:
        return False
    depth, in_string, escaped = 0, False, False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            if depth > limit:
                return True
        elif ch in "]}":
            depth -= 1
    return False


_NUMBER_FIX = "send plain JSON numbers of at most 40 characters; NaN and Infinity are not JSON"


def _number_text(text: str) -> str:
    if len(text) > MAX_NUMBER_CHARS:
        raise _Refused(
            f"not valid JSON: a number longer than {MAX_NUMBER_CHARS} characters ({text[:20]}…)", _NUMBER_FIX
        )
    return text


def _int(text: str) -> int:
    return int(_number_text(text))


def _float(text: str) -> float:
    value = float(_number_text(text))
    if not math.isfinite(value):
        raise _Refused(f"not valid JSON: {text} is out of range for a number", _NUMBER_FIX)
    return value


def _constant(name: str) -> Any:
    raise _Refused(f"not valid JSON: {name} is not a JSON number", _NUMBER_FIX)


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _Refused(f"not valid JSON: the key {key[:64]!r} appears twice in one object", "send each key once")
        out[key] = value
    return out


def loads(data: bytes, field: str, what: str) -> Any:
    """Parse one JSON value from `data`. `field` names the input in the problem line (`--payload`, `(body)`),
    `what` in the message (`--payload`, `the request body`)."""

    def refuse(summary: str, problem: str, fix: str) -> InvalidInput:
        return InvalidInput(f"{what} is {summary}", fix, [(field, problem)])

    if len(data) > MAX_BODY:
        raise refuse(
            f"larger than the limit of {MAX_BODY} bytes",
            f"larger than {MAX_BODY} bytes",
            "send one enrollment, at most 64 KiB of JSON",
        )
    try:
        text = data.decode("utf-8")  # JSON is UTF-8 (RFC 8259)
    except UnicodeDecodeError as exc:
        raise refuse(
            "not UTF-8 text",
            f"not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start})",
            "encode the JSON as UTF-8",
        ) from None
    if _depth_over(text, MAX_DEPTH):
        raise refuse(
            "not valid JSON",
            f"not valid JSON: nested deeper than {MAX_DEPTH} levels",
            "send one flat JSON object with the seeds' snake_case keys",
        )
    try:
        return json.loads(text, parse_int=_int, parse_float=_float, parse_constant=_constant, object_pairs_hook=_object)
    except json.JSONDecodeError as exc:
        raise refuse(
            "not valid JSON", f"not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}", _SYNTAX_FIX
        ) from None
    except _Refused as exc:
        raise refuse("not valid JSON", exc.problem, exc.fix) from None
    except RecursionError:  # the scan above should make this unreachable; a traceback must stay impossible
        raise refuse("not valid JSON", "not valid JSON: nested too deeply", _SYNTAX_FIX) from None
    except ValueError as exc:  # any other conversion the parser refuses
        raise refuse("not valid JSON", f"not valid JSON: {exc}", _SYNTAX_FIX) from None
