"""`xmas send-test`: one email, rendered exactly as `xmas preview` renders it, sent through the campaign's mailer
to an address the operator chooses, its subject prefixed "[TEST] ".

Recorded nowhere: no row is written or changed, no contact is created, no batch is journaled, so no count or
report sees it. Every run goes under a key of its own (a uuid4 in it), so a test sent again is sent again.
An address that is a contact in the campaign is refused unless --contact names that same contact: a contact
gets no email the store does not know about by accident.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from ..core.campaign import Campaign
from ..core.compose import tag, unsubscribe_headers
from ..core.outgoing import OutgoingEmail, idempotency_key, stored_address
from ..core.tokens import unsubscribe_url
from ..core.variables import SAMPLE
from ..errors import JSON_VERSION, InvalidInput, XmasError
from . import Engine
from .preview import PREVIEW_SECRET, Preview, preview

PREFIX = "[TEST] "
SECRET_NOTE = (
    "links signed with a preview-only secret (XMAS_SECRET is unset): the test's unsubscribe link will not work"
)


@dataclass(frozen=True)
class SentTest:
    template_id: str
    to: str
    subject: str
    message_id: str | None
    data_source: str
    notes: list[str]

    def to_json(self) -> dict[str, Any]:
        return {
            "version": JSON_VERSION,
            "ok": True,
            "template": self.template_id,
            "to": self.to,
            "subject": self.subject,
            "message_id": self.message_id,
        }


def check_options(to: str, contact: str | None, has_data: bool) -> str:
    """The options alone, before anything is read: one source of data at most, and --to one real address (as
    tick.check_recipient checks a stored one). Returns the address, stripped."""
    if contact is not None and has_data:
        raise InvalidInput(
            "--contact and --data given together",
            "use one of them: a stored contact's data (--contact) or a JSON file's (--data)",
            [("--contact", "not with --data"), ("--data", "not with --contact")],
        )
    from email_validator import EmailNotValidError, validate_email

    address = to.strip()
    try:
        validate_email(address, check_deliverability=False)
    except EmailNotValidError as exc:
        raise InvalidInput(
            f"--to: {to!r} is not an email address",
            "give the one address the test goes to, e.g. --to you@example.com",
            [("--to", str(exc))],
        ) from None
    return address


def check_recipient(engine: Engine, address: str, contact: str | None) -> None:
    """A contact's address only with --contact naming that contact, and never a suppressed one."""
    found = engine.store.get_contact(stored_address(address))
    if found is None:
        return
    if contact is None or stored_address(contact) != found.email:
        raise InvalidInput(
            f"--to: {found.email} is a contact in this campaign; a test email to them would be recorded nowhere",
            f"send the test to your own address, or add --contact {found.email} to send them this test with "
            "their own data",
            [("--to", "a contact's address")],
        )
    if found.suppressed:
        raise InvalidInput(
            f"--to: {found.email} is suppressed ({found.suppressed_reason or 'unsubscribed'})",
            "no email of any kind goes to a suppressed contact: send the test to your own address",
            [("--to", "a suppressed contact")],
        )


def transactional(campaign: Campaign, template_id: str) -> bool:
    """Whether the template is sent only by transactional sequences (no one-click unsubscribe, as compose does)."""
    senders = [s for s in campaign.sequences.values() if any(step.template == template_id for step in s.steps)]
    return bool(senders) and all(s.transactional for s in senders)


def build_test_email(engine: Engine, shown: Preview, to: str, link_for: str) -> OutgoingEmail:
    """The email for a preview: From/Reply-To from [sender], the unsubscribe headers for the preview's own link
    (the one in its body: `link_for`'s), a key and row id of its own, tagged as a test."""
    campaign = engine.campaign
    name = campaign.campaign.name
    run = uuid.uuid4().hex
    if shown.email is not None:  # the contact's own row: compose built it, headers and all
        headers = dict(shown.email.headers)
    else:
        url = unsubscribe_url(str(campaign.campaign.public_url), engine.secret or PREVIEW_SECRET, link_for)
        headers = unsubscribe_headers(campaign, url, not transactional(campaign, shown.template_id))
    return OutgoingEmail(
        row_id=f"test:{shown.template_id}:{run}",
        idempotency_key=idempotency_key(name, f"test:{shown.template_id}:{to}:{run}"),
        to=to,
        sender=campaign.sender.from_,
        reply_to=str(campaign.sender.reply_to),
        subject=PREFIX + shown.rendered.subject,
        html=shown.rendered.html,
        text=shown.rendered.text,
        date=engine.clock.now(),
        headers=headers,
        tags={"campaign": tag(name), "test": "true"},
    )


def send_test(
    engine: Engine, template_id: str, to: str, contact: str | None = None, data: dict[str, Any] | None = None
) -> SentTest:
    """Render `template_id` as `xmas preview` does (a contact's data, a data file's, or the sample) and send it to
    `to` alone through the engine's mailer. Raises InvalidInput (nothing sent) for bad options, a contact's address
    without --contact, an unknown template or contact; XmasError (exit 1) when the mailer refused the email."""
    address = check_options(to, contact, data is not None)
    check_recipient(engine, address, contact)
    shown = preview(engine, template_id, contact, data)
    if contact is not None:
        link_for = contact.strip().lower()
    else:
        link_for = str((data if data is not None else SAMPLE).get("email") or SAMPLE["email"])
    email = build_test_email(engine, shown, address, link_for)
    [result] = engine.mailer.send([email])
    if not result.ok:
        fix = (
            "check the address and the template (xmas preview shows it); nothing was recorded"
            if result.permanent
            else "try again (each run is a new test email); nothing was recorded"
        )
        raise XmasError(f"the test email to {address} was not sent: {result.error}", fix)
    notes = [n for n in (result.note, None if engine.secret else SECRET_NOTE) if n]
    return SentTest(shown.template_id, address, email.subject, result.message_id, shown.data_source, notes)
