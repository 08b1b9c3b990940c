"""A broadcast's rows (engine/broadcast.py writes them) and the one way a broadcast's name is read back from a row.

Every row of `xmas broadcast` belongs to the built-in `broadcast` sequence, step 1, under the enrollment key
`broadcast:<email>|<name>` (row id `<key>#1`). The name is what follows the contact's own address and `|`: read
after the address, not after the last `|`, since an address may hold a `|` and a name never does (NAME). The report
groups by it row by row (core/report_facts.py, for Notion) and in SQL (stores/report_sql.py builds the same test
from these constants: the sequence is BROADCAST and the key begins with KEY_HEAD, the row's email and SEPARATOR).
"""

from __future__ import annotations

import re

from .campaign import BROADCAST
from .model import ScheduledEmail

KEY_HEAD = f"{BROADCAST}:"
SEPARATOR = "|"
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")  # a broadcast's name (--name, or its template's)


def broadcast_key(name: str, email: str) -> str:
    """The enrollment key of the contact's row of the broadcast `name`."""
    return f"{KEY_HEAD}{email}{SEPARATOR}{name}"


def broadcast_name(row: ScheduledEmail) -> str | None:
    """The name of the broadcast the row is of; None for a sequence's row (and for a key that names none)."""
    head = broadcast_key("", row.email)
    if row.sequence != BROADCAST or not row.enrollment_key.startswith(head):
        return None
    return row.enrollment_key[len(head) :] or None
