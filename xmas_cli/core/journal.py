"""The rendered emails of a batch, as the batch journal keeps them (stores/base.py, Batch.emails).

A batch is recorded with the exact emails it sends, so a tick that finds it still open sends the very same
request again under the very same key, whatever changed since (a template edited, a contact unsubscribed, a
count moved): the provider then answers with its first reply instead of sending anything twice.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime

from .outgoing import OutgoingEmail

VERSION = 1


def encode(emails: Sequence[OutgoingEmail]) -> str:
    rows = [{**asdict(e), "date": e.date.isoformat()} for e in emails]  # every field of OutgoingEmail
    return json.dumps({"version": VERSION, "emails": rows}, ensure_ascii=False)


def decode(text: str) -> list[OutgoingEmail]:
    """The emails back; ValueError (with what is wrong) if the entry cannot be read."""
    try:
        document = json.loads(text)
        if document.get("version") != VERSION:
            raise ValueError(f"journal entry version {document.get('version')!r}, expected {VERSION}")
        return [
            OutgoingEmail(
                row_id=str(e["row_id"]),
                idempotency_key=str(e["idempotency_key"]),
                to=str(e["to"]),
                sender=str(e["sender"]),
                reply_to=str(e["reply_to"]),
                subject=str(e["subject"]),
                html=str(e["html"]),
                text=str(e["text"]),
                date=datetime.fromisoformat(str(e["date"])),
                headers={str(k): str(v) for k, v in dict(e["headers"]).items()},
                tags={str(k): str(v) for k, v in dict(e["tags"]).items()},
            )
            for e in document["emails"]
        ]
    except (KeyError, TypeError, AttributeError, json.JSONDecodeError) as exc:
        raise ValueError(f"journal entry cannot be read: {type(exc).__name__}: {exc}") from None
