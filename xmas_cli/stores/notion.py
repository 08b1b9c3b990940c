"""The production store: contacts, templates and scheduled emails in three Notion databases.

Notion holds all the state, and the business reads and edits it there: a person who sets a row's State to Paused
or Cancelled stops it, a person who ticks a contact's Unsubscribed suppresses it, and the visible columns win over
the Data JSON. Every write touches one page; there are no transactions, so it keeps no batch journal (it does not
implement stores/base.py's BatchJournal) and the tick sends each email under its own idempotency key.

Request costs (what `xmas tick` and `xmas enroll` pay, with the schema check cached, see notion_schema.py):
due query 1 per 100 due rows; `get_contacts` 1 per 100 addresses; `count_contacts` 1 per 100 live (not Cancelled,
not Skipped) rows of the sequences counted (its answer is kept for smaller sets of sequences); a template 1 read per
store instance; every update 1; an add_email 1 (create) when this instance has just read the contact's rows (enroll
does, under its lock), else 2 (look up its Row ID, create); saving a contact found absent moments before, 1 (create).
A store instance lives for one command (the web app opens one per request).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Mapping
from contextlib import AbstractContextManager
from dataclasses import replace
from datetime import UTC, datetime

from ..core import rows as rules
from ..core.campaign import Campaign
from ..core.funnel_facts import booking_facts
from ..core.model import Contact, Delivery, Event, ScheduledEmail, State
from ..core.report_facts import Funnel, ReportFacts, facts_from_rows
from ..errors import NotFound
from .base import Changes, Summary, summarize
from .notion_base import (
    BY_CREATION,
    TOKEN_FIX,
    NotionSettings,
    cache_path,
    default_logger,
    notion_settings,
    open_api,
)
from .notion_control import NotionControl, NotionControlRead
from .notion_records import (
    JSON,
    date_value,
    format_events,
    parse_events,
    prop,
    read_value,
    select_value,
    text_value,
)
from .notion_templates import NotionTemplates


def open_notion_store(campaign: Campaign, env: Mapping[str, str]) -> NotionStore:
    return NotionStore(campaign, notion_settings(campaign, env))


class NotionStore(NotionTemplates):
    """The Store protocol (stores/base.py) on three Notion databases."""

    # ------------------------------------------------------------------------------------- contacts

    def _contact(self, page: JSON) -> Contact:
        """The contact on this page; what the page holds is kept, so a later save writes only what changed."""
        self._contact_values[str(page["id"])] = {k: read_value(v) for k, v in (page.get("properties") or {}).items()}
        contact = self.records.contact(page)
        self._events[contact.email] = self._events_of(page)  # so the enrollment that read it reads no more
        if contact.email:
            self._contact_page[contact.email] = str(page["id"])  # a row written next links to it
        return contact

    def _contact_pages(self, email: str) -> list[JSON]:
        body = {"filter": {"property": self.props.contacts.email, "email": {"equals": email}}, "sorts": BY_CREATION}
        return list(self._query("contacts", body, f"look up contact {email}", limit=10))

    def contact_lock(self, email: str, local: AbstractContextManager[None]) -> AbstractContextManager[None]:
        return local  # one machine writes (the tick behind its file lock): the engine's lock file orders them

    def get_contact(self, email: str) -> Contact | None:
        address = email.strip().lower()
        page = self._first(self._contact_pages(address), f"contact {address}")
        if page is None:
            self._absent_contacts.add(address)
        return self._contact(page) if page else None

    def all_contacts(self) -> Iterator[Contact]:
        """Every contact, the first row of each address (`xmas store copy`); not the campaign's control rows."""
        seen: set[str] = set()
        for page in self._query("contacts", {"sorts": BY_CREATION}, "read every contact"):
            contact = self._contact(page)
            if not contact.email and self.pause_board().scope(page)[0]:
                continue
            if contact.email not in seen:
                seen.add(contact.email)
                yield contact

    def get_contacts(self, emails: Collection[str]) -> dict[str, Contact]:
        wanted = sorted({e.strip().lower() for e in emails})
        out: dict[str, Contact] = {}
        field = self.props.contacts.email
        for start in range(0, len(wanted), 100):  # at most 100 conditions in one compound filter
            chunk = wanted[start : start + 100]
            which = [{"property": field, "email": {"equals": e}} for e in chunk]
            body = {"filter": {"or": which}, "sorts": BY_CREATION}
            for page in self._query("contacts", body, f"read {len(chunk)} contacts"):
                contact = self._contact(page)
                if contact.email in out:
                    self.logger.warning("contact %s has more than one row in Notion: using the first", contact.email)
                    continue
                out[contact.email] = contact
        return out

    def save_contact(self, contact: Contact) -> Contact:
        address = contact.email.strip().lower()
        properties = self.records.contact_properties(replace(contact, email=address))
        page_id = contact.ref
        if page_id is None and address not in self._absent_contacts:
            found = self._first(self._contact_pages(address), f"contact {address}")
            if found is not None:
                self._contact(found)
                page_id = str(found["id"])
        what = f"save contact {address}"
        if page_id is None:
            page = self.api.create_page(
                self.schemas.data_source("contacts"),
                properties,
                find=lambda: self._first(self._contact_pages(address), f"contact {address}"),
                what=what,
                kind="contacts",
            )
            self._absent_contacts.discard(address)
            return self._contact(page)
        known = self._contact_values.get(page_id)
        if known is not None:  # write only what changed, so a person's edit of another column stays
            properties = {k: v for k, v in properties.items() if k not in known or known[k] != read_value(v)}
            if not properties:  # Notion already holds exactly this
                return replace(contact, email=address, ref=page_id)
        return self._contact(self.api.update_page(page_id, properties, what=what, kind="contacts"))

    def pause_board(self) -> NotionControl:
        """Where `xmas pause` keeps a pause on Notion, and what the tick reads first (notion_control.py)."""
        return NotionControl(self)

    def read_control(self, now: datetime) -> NotionControlRead:
        return self.pause_board().read(now)

    # ---------------------------------------------------------------------------- scheduled emails

    def _by_due(self) -> list[JSON]:
        t = self.props.tracker
        return [{"property": t.due, "direction": "ascending"}, {"property": t.step, "direction": "ascending"}]

    def _row_pages(self, row_id: str) -> list[JSON]:
        which = {"property": self.props.tracker.row_id, "rich_text": {"equals": row_id}}
        body = {"filter": which, "sorts": BY_CREATION}
        return list(self._query("tracker", body, f"look up row {row_id}", limit=10))

    def _find_row(self, row_id: str) -> JSON | None:
        return self._first(self._row_pages(row_id), f"Row ID {row_id}")

    def emails_for_enrollment(self, key: str) -> list[ScheduledEmail]:
        t = self.props.tracker
        body = {
            "filter": {"property": t.enrollment_key, "rich_text": {"equals": key}},
            "sorts": [{"property": t.step, "direction": "ascending"}],
        }
        return [self.records.row(p) for p in self._query("tracker", body, f"read the rows of {key}")]

    def emails_for_contact(self, email: str) -> list[ScheduledEmail]:
        address = email.strip().lower()
        body = {"filter": {"property": self.props.tracker.email, "email": {"equals": address}}, "sorts": self._by_due()}
        rows = [self.records.row(p) for p in self._query("tracker", body, f"read the rows of {address}")]
        self._rows_of[address] = {r.id for r in rows}
        return rows

    def add_email(self, row: ScheduledEmail) -> ScheduledEmail:
        seen = self._rows_of.get(row.email)
        if seen is None or row.id in seen:  # no unique constraint in Notion: look before writing
            existing = self._find_row(row.id)
            if existing is not None:
                return self.records.row(existing)
        properties = self.records.row_properties(row)
        if (contact_page := self._contact_page.get(row.email)) is not None:  # the contact was just read or saved
            properties[self.props.tracker.contact] = {"relation": [{"id": contact_page}]}
        page = self.api.create_page(
            self.schemas.data_source("tracker"),
            properties,
            find=lambda: self._find_row(row.id),
            what=f"create row {row.id}",
            kind="tracker",
        )
        if seen is not None:
            seen.add(row.id)
        return self.records.row(page)

    def update_email(self, row: ScheduledEmail, changes: Changes) -> ScheduledEmail:
        properties = self.records.change_properties(row.id, changes)
        if not properties:
            return replace(row, batch=changes.get("batch", row.batch))
        page_id = row.ref
        if page_id is None:
            found = self._find_row(row.id)
            if found is None:
                raise NotFound(f"no row {row.id} in the Notion Sequence Tracker", "was it deleted in Notion?")
            page_id = str(found["id"])
        page = self.api.update_page(page_id, properties, what=f"update row {row.id}", kind="tracker")
        return self.records.row(page)

    def due_emails(self, now: datetime, limit: int | None = None) -> Iterator[ScheduledEmail]:
        t = self.props.tracker
        until = now.astimezone(UTC).isoformat(timespec="milliseconds")
        body = {
            "filter": {
                "and": [
                    {"property": t.state, "select": {"equals": rules.DUE_STATE.value}},
                    {"property": t.due, "date": {"on_or_before": until}},
                ]
            },
            "sorts": self._by_due(),
        }
        # Every due row, as on every store: one xmas cannot send (a sequence campaign.toml lacks, a damaged value)
        # is the tick's to make visible (core/rows.py), never skipped here with only a log line.
        for page in self._query("tracker", body, "query the due rows", limit=limit):
            yield self.records.row(page)

    def email_by_message_id(self, message_id: str) -> ScheduledEmail | None:
        t = self.props.tracker
        body = {"filter": {"property": t.message_id, "rich_text": {"equals": message_id}}, "sorts": BY_CREATION}
        pages = list(self._query("tracker", body, f"look up the email Resend calls {message_id}", limit=10))
        page = self._first(pages, f"Sequence Tracker rows with {t.message_id} {message_id}")
        return self.records.row(page) if page else None

    def update_delivery(self, message_id: str, change: Callable[[Delivery], Delivery]) -> ScheduledEmail | None:
        """Read, then write: Notion has no transaction; the tick drains the queue alone, under its lock."""
        row = self.email_by_message_id(message_id)
        if row is not None and (changed := change(row.delivery)) != row.delivery:
            self.update_email(row, {"delivery": changed})
        return row

    def sent_since(
        self, emails: Collection[str], sequences: Collection[str], since: datetime
    ) -> dict[str, list[datetime]]:
        """1 query per 100 contacts: their Sent rows of these sequences with Sent At after `since`."""
        t = self.props.tracker
        names, wanted = sorted(set(sequences)), sorted({e.strip().lower() for e in emails})
        out: dict[str, list[datetime]] = {}
        if not names:
            return out
        after = since.astimezone(UTC).isoformat(timespec="milliseconds")
        which: JSON = {"or": [{"property": t.sequence, "select": {"equals": n}} for n in names]}
        for start in range(0, len(wanted), 100):
            who: JSON = {"or": [{"property": t.email, "email": {"equals": e}} for e in wanted[start : start + 100]]}
            sent = {"property": t.state, "select": {"equals": State.SENT.value}}
            body = {"filter": {"and": [sent, {"property": t.sent_at, "date": {"after": after}}, which, who]}}
            for page in self._query("tracker", body, "read recent sends (frequency cap)"):
                row = self.records.row(page)
                if row.sent_at is not None:
                    out.setdefault(row.email, []).append(row.sent_at)
        return out

    def stopped_emails(self, since: datetime, now: datetime) -> list[ScheduledEmail]:
        t = self.props.tracker
        start, end = (moment.astimezone(UTC).isoformat(timespec="milliseconds") for moment in (since, now))
        body = {
            "filter": {
                "and": [
                    {"property": t.state, "select": {"equals": State.CANCELLED.value}},
                    {"property": t.due, "date": {"after": start}},
                    {"property": t.due, "date": {"on_or_before": end}},
                ]
            },
            "sorts": self._by_due(),
        }
        return [self.records.row(p) for p in self._query("tracker", body, "query the rows stopped lately")]

    def emails_by_id(self, ids: Collection[str]) -> dict[str, ScheduledEmail]:
        """One query per id (its Row ID): for a few rows at a time (`preview --row`)."""
        found = {row_id: self._find_row(row_id) for row_id in dict.fromkeys(ids)}
        return {row_id: self.records.row(page) for row_id, page in found.items() if page is not None}

    def summary(self, now: datetime) -> Summary:
        """Notion cannot count: every tracker row is read (paged, at the pacer's rate) and counted here."""
        return summarize(self.all_emails(), now)

    def all_emails(self) -> Iterator[ScheduledEmail]:
        yield from (self.records.row(p) for p in self._query("tracker", {"sorts": self._by_due()}, "read every row"))

    def report_facts(self, since: datetime | None, funnel: Funnel) -> ReportFacts:
        return facts_from_rows(self.all_emails(), self.get_contacts, since, funnel)

    def count_contacts(self, sequences: Collection[str], also: Collection[str] = ()) -> int:
        """Distinct emails with a live row (not Cancelled, not Skipped) in any of these sequences: one query of
        those rows, filtered by Notion (a row with an empty or unknown State is read as Paused, so it counts)."""
        names = frozenset(sequences)
        extra = {e.strip().lower() for e in also}
        if not names:
            return len(extra)
        pairs = next((p for counted, p in self._counted.items() if names <= counted), None)
        if pairs is None:
            t = self.props.tracker
            which: JSON = {"or": [{"property": t.sequence, "select": {"equals": n}} for n in sorted(names)]}
            live = [{"property": t.state, "select": {"does_not_equal": s}} for s in rules.values(rules.DEAD)]
            body = {"filter": {"and": [which, *live]}}
            pages = self._query("tracker", body, f"count the contacts in {', '.join(sorted(names))}")
            pairs = {(str(prop(p, t.email) or "").lower(), str(prop(p, t.sequence))) for p in pages}
            self._counted[names] = pairs
        return len({email for email, seq in pairs if seq in names} | extra)

    # --------------------------------------------------------------------------------------- events

    def _events_of(self, page: JSON) -> list[Event]:
        c = self.props.contacts
        email = str(prop(page, c.email) or "").strip().lower()
        return parse_events(email, str(prop(page, c.events) or ""), self.logger)

    def add_event(self, event: Event) -> bool:
        """One line more in the contact's Events (its Booking Status, and a booking's call time in Call Time, the
        later one kept): 1 query and 1 update, none if the key is there already."""
        c = self.props.contacts
        address = event.email.strip().lower()
        page = self._first(self._contact_pages(address), f"contact {address}")
        if page is None:
            raise NotFound(f"no contact {address} in the Notion Contacts database", "enroll or save the contact first")
        events = self._events_of(page)
        if any(e.key == event.key for e in events):
            return False
        events.append(event)
        latest = self.campaign.booking_news(events)
        properties = {c.events: text_value(format_events(events), f"contact {address}: events")}
        if latest is not None:
            properties[c.booking] = select_value(latest.name)
        if self.campaign.booking_news([event], booked_only=True) is not None:  # a booking: its call's time
            known = self.records.funnel(page)
            if (call := known.merged(booking_facts(event.data)).call_time) != known.call_time:
                properties[c.call_time] = date_value(call)
        self._contact(self.api.update_page(str(page["id"]), properties, what=f"record {event.name}", kind="contacts"))
        return True

    def events_for_contact(self, email: str) -> list[Event]:
        """The events on the contact's page: as this instance last read or wrote it, else 1 query."""
        address = email.strip().lower()
        if address not in self._events:
            page = self._first(self._contact_pages(address), f"contact {address}")
            return self._events_of(page) if page else []
        return list(self._events[address])

    def events_named(self, names: Collection[str]) -> list[Event]:
        """The events of contacts whose Booking Status is set (1 query per 100 of them), with these names."""
        wanted = set(names)
        body = {"filter": {"property": self.props.contacts.booking, "select": {"is_not_empty": True}}}
        pages = self._query("contacts", body, "read the contacts with a booking status")
        return [e for page in pages for e in self._events_of(page) if e.name in wanted]


__all__ = [
    "TOKEN_FIX",
    "NotionSettings",
    "NotionStore",
    "cache_path",
    "default_logger",
    "notion_settings",
    "open_api",
    "open_notion_store",
]
