"""Text for the operator's terminal. Stored data can hold anything (a person edits it in Notion), so every
string that reaches Rich goes through `safe` (markup cells: commands/markup.py, where Rich is) or `visible` (lines
printed with markup=False)."""

from __future__ import annotations

import re

# C0 controls, DEL, C1 controls, the bidirectional overrides and isolates, and lone surrogates: none of them
# is text an operator should receive raw (ESC sequences rewrite the screen; RLO reorders what follows).
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
_UNSAFE_KEEP_LINES = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def _escaped(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def visible(value: object, *, multiline: bool = False) -> str:
    """`value` as text with every control character written out (`\\x1b`, `\\u202e`). With `multiline`,
    newlines and tabs are kept (error messages and email text span lines)."""
    return (_UNSAFE_KEEP_LINES if multiline else _UNSAFE).sub(_escaped, str(value))
