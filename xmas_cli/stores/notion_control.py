"""What the owner asks of xmas in Notion, read by the tick in one query of Contacts:

* the **Action** column of a contact (Pause, Resume, Stop, Enroll in post-call maybe, Mark booked): the tick applies
  it (inbound/actions.py), clears it and writes the outcome, or the error and its fix, in **Action Result**;
* a contact whose **Unsubscribed** a person ticked and whose **Suppression Reason** is still empty: the tick cancels
  its pending emails and fills the reason;
* the campaign's **control rows**: Contacts rows with no Email named `[notion] control` ("Campaign": the whole
  campaign) or "Campaign: SEQUENCE" (one sequence). Ticking **Paused** there pauses, unticking resumes; **Pause
  Reason** says why, **Paused Since** is written by xmas (the tick, `xmas pause`, `POST /pause`) as is Action Result.

So an idle tick makes two requests: this query and the due query (one, when the whole campaign is paused: nothing is
read to be sent). This is also where `xmas pause` / `xmas resume` keep a pause on Notion (engine/control.py's
PauseBoard).
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from ..clock import iso
from ..core.controls import Pause, Queued
from ..core.model import Contact
from .notion_records import JSON, checkbox_value, date_value, prop, select_value, text_value, title_value

if TYPE_CHECKING:
    from .notion import NotionStore

_BY = re.compile(r"^paused by (\w+)")


@dataclass
class NotionControlRead:
    """One read of Contacts before a tick sends (inbound/actions.py's Control)."""

    board: NotionControl
    actions: list[Queued] = field(default_factory=list)
    unsubscribed: list[Contact] = field(default_factory=list)
    pauses: list[Pause] = field(default_factory=list)

    def settle(self, queued: Queued, outcome: str) -> None:
        self.board.settle(queued.contact, outcome)

    def suppressed(self, contact: Contact, reason: str) -> None:
        self.board.write(contact, {self.board.c.suppressed_reason: text_value(reason, "suppression reason")})


class NotionControl:
    def __init__(self, store: NotionStore) -> None:
        self.store = store
        self.c = store.props.contacts
        self.prefix = store.campaign.notion.control.strip()

    # ------------------------------------------------------------------------------------------ reading

    def _pages(self) -> list[JSON]:
        c = self.c
        fresh_unsubscribe = [
            {"property": c.unsubscribed, "checkbox": {"equals": True}},
            {"property": c.suppressed_reason, "rich_text": {"is_empty": True}},
        ]
        control = [
            {"property": c.email, "email": {"is_empty": True}},
            {"property": c.title, "title": {"starts_with": self.prefix}},
        ]
        body = {
            "filter": {
                "or": [
                    {"property": c.action, "select": {"is_not_empty": True}},
                    {"and": fresh_unsubscribe},
                    {"and": control},
                ]
            },
            "sorts": [{"timestamp": "created_time", "direction": "ascending"}],
        }
        return list(self.store._query("contacts", body, "read the actions and the pause in Contacts"))

    def scope(self, page: JSON) -> tuple[bool, str | None]:
        """(is it a control row, the sequence it pauses: None for the whole campaign)."""
        if str(prop(page, self.c.email) or "").strip():
            return False, None
        title = str(prop(page, self.c.title) or "").strip()
        if title == self.prefix:
            return True, None
        head, colon, rest = title.partition(":")
        if colon and head.strip() == self.prefix and rest.strip():
            return True, rest.strip()
        return False, None

    def _pause_of(self, page: JSON, sequence: str | None, now: datetime) -> Pause:
        since = prop(page, self.c.paused_since)
        found = _BY.match(str(prop(page, self.c.action_result) or ""))
        reason = " ".join(str(prop(page, self.c.pause_reason) or "").split())
        return Pause(sequence, since if isinstance(since, datetime) else now, reason, found[1] if found else "notion")

    def _control_rows(self, pages: list[JSON]) -> list[tuple[JSON, str | None]]:
        out: list[tuple[JSON, str | None]] = []
        for page in pages:
            is_control, sequence = self.scope(page)
            if not is_control:
                continue
            if sequence is not None and sequence not in self.store.campaign.sequences:
                self.store.logger.warning(
                    "the Contacts row '%s: %s' pauses no sequence: %s is not in campaign.toml",
                    self.prefix,
                    sequence,
                    sequence,
                )
                continue
            out.append((page, sequence))
        return out

    def pauses(self, now: datetime) -> list[Pause]:
        """The pauses the control rows hold (read only: Paused Since is written by the tick, `now` if not yet)."""
        found = [self._pause_of(p, seq, now) for p, seq in self._control_rows(self._pages()) if prop(p, self.c.paused)]
        return sorted(found, key=lambda p: p.since)

    def read(self, now: datetime) -> NotionControlRead:
        """The tick's one read: actions, fresh unsubscribes, and the pauses; a pause or resume a person made by
        (un)ticking Paused is recorded (its Paused Since, its Action Result) on the way."""
        out = NotionControlRead(self)
        pages = self._pages()
        for page, sequence in self._control_rows(pages):
            since = prop(page, self.c.paused_since)
            if prop(page, self.c.paused):
                pause = self._pause_of(page, sequence, now)
                if not isinstance(since, datetime):
                    self.write_page(
                        page,
                        {
                            self.c.paused_since: date_value(now),
                            self.c.action_result: text_value(f"paused in Notion at {iso(now)}", "action result"),
                        },
                    )
                out.pauses.append(pause)
            elif isinstance(since, datetime):  # a person unticked Paused: resumed
                said = f"resumed in Notion at {iso(now)} (paused since {iso(since)})"
                self.write_page(
                    page,
                    {self.c.paused_since: date_value(None), self.c.action_result: text_value(said, "action result")},
                )
        for page in pages:
            is_control, _ = self.scope(page)
            label = prop(page, self.c.action)
            if is_control:
                if label:
                    why = "error: actions apply to a contact — tick or untick Paused on this row to pause or resume"
                    self.write_page(
                        page,
                        {self.c.action: select_value(None), self.c.action_result: text_value(why, "action result")},
                    )
                continue
            contact = self.store._contact(page)
            if not contact.email:
                continue
            if label:
                out.actions.append(Queued(contact, str(label)))
            if contact.suppressed and not contact.suppressed_reason:
                out.unsubscribed.append(contact)
        out.pauses.sort(key=lambda p: p.since)
        return out

    # ------------------------------------------------------------------------------------------ writing

    def write_page(self, page: JSON, properties: JSON) -> None:
        self.store.api.update_page(str(page["id"]), properties, what="write the campaign's control", kind="contacts")

    def write(self, contact: Contact, properties: JSON) -> None:
        assert contact.ref is not None
        self.store.api.update_page(contact.ref, properties, what=f"write contact {contact.email}", kind="contacts")

    def settle(self, contact: Contact, outcome: str) -> None:
        """Clear the contact's Action and write what it did (or why not) beside it."""
        self.write(
            contact,
            {self.c.action: select_value(None), self.c.action_result: text_value(outcome, "action result")},
        )

    def record_pause(self, pause: Pause) -> None:
        title = self.prefix if pause.sequence is None else f"{self.prefix}: {pause.sequence}"
        properties = {
            self.c.paused: checkbox_value(True),
            self.c.paused_since: date_value(pause.since),
            self.c.pause_reason: text_value(pause.reason, "pause reason"),
            self.c.action_result: text_value(f"paused by {pause.by} at {iso(pause.since)}", "action result"),
        }
        row = next((p for p, seq in self._control_rows(self._pages()) if seq == pause.sequence), None)
        if row is not None:
            self.write_page(row, properties)
            return
        self.store.api.create_page(
            self.store.schemas.data_source("contacts"),
            {self.c.title: title_value(title, "control row"), **properties},
            find=lambda: next((p for p, seq in self._control_rows(self._pages()) if seq == pause.sequence), None),
            what=f"create the control row {title}",
            kind="contacts",
        )

    def record_resume(self, lifted: Collection[Pause], at: datetime, by: str) -> None:
        scopes = {p.sequence: p for p in lifted}
        for page, sequence in self._control_rows(self._pages()):
            if sequence in scopes and prop(page, self.c.paused):
                said = f"resumed by {by} at {iso(at)} (paused since {iso(scopes[sequence].since)})"
                self.write_page(
                    page,
                    {
                        self.c.paused: checkbox_value(False),
                        self.c.paused_since: date_value(None),
                        self.c.action_result: text_value(said, "action result"),
                    },
                )
