"""One compose step: the email a scheduled row becomes. Pure: the row, its contact, its template, the campaign, the
secret and the counts in; the outgoing email out. `xmas tick` sends what this builds and `xmas preview --row ID`
shows it, so the preview is byte for byte what the tick will send for that row.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace

from .campaign import Campaign
from .model import Contact, ScheduledEmail, Template
from .outgoing import OutgoingEmail, idempotency_key
from .render import render
from .tokens import unsubscribe_url
from .variables import Counts, build_variables
from .variants import variant_of


def tag(value: str) -> str:
    """A value Resend accepts as a tag: letters, digits, _ and -."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", value)[:256]


def unsubscribe_headers(campaign: Campaign, url: str, one_click: bool) -> dict[str, str]:
    """List-Unsubscribe (the signed link, and the mailto when [sender] has one); List-Unsubscribe-Post for one-click
    (RFC 8058), which transactional email leaves out."""
    headers = {"List-Unsubscribe": f"<{url}>"}
    if campaign.sender.unsubscribe_mailto:
        headers["List-Unsubscribe"] += f", <mailto:{campaign.sender.unsubscribe_mailto}?subject=unsubscribe>"
    if one_click:
        headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    return headers


def row_data(row: ScheduledEmail, contact: Contact | None) -> dict[str, object]:
    """What the templates read for a row: its enrollment's data, then the contact's latest fields and segment."""
    data = {**row.data, **(contact.fields if contact else {})}
    if contact and contact.segment:
        data["segment"] = contact.segment
    return data


def with_variant(template: Template, row: ScheduledEmail, campaign: Campaign) -> tuple[Template, int]:
    """The template with the row's subject variant in place of its own subject."""
    variant = variant_of(row, campaign)
    if variant == 0:
        return template, 0
    subject = campaign.sequences[row.sequence].steps[row.step - 1].subjects[variant - 1]
    return replace(template, subject=subject), variant


def compose(
    row: ScheduledEmail,
    contact: Contact | None,
    template: Template,
    campaign: Campaign,
    secret: str,
    counts: Counts,
    others: Callable[[str], Template | None] | None = None,
) -> OutgoingEmail:
    """The outgoing email for `row`, rendered as of its due time (not the tick's), so a retry renders the same
    bytes under the same idempotency key. `others` finds the templates this one extends (the layout)."""
    url = unsubscribe_url(str(campaign.campaign.public_url), secret, row.email)
    variables = build_variables(row_data(row, contact), campaign, row.due, url, counts)
    template, variant = with_variant(template, row, campaign)
    rendered = render(template, variables, others)
    sender = campaign.sender
    sequence = campaign.sequences.get(row.sequence)
    headers = unsubscribe_headers(campaign, url, sequence is None or not sequence.transactional)
    return OutgoingEmail(
        row_id=row.id,
        idempotency_key=idempotency_key(campaign.campaign.name, row.id),
        to=row.email,
        sender=sender.from_,
        reply_to=str(sender.reply_to),
        subject=rendered.subject,
        html=rendered.html,
        text=rendered.text,
        date=row.due,
        headers=headers,
        tags={
            "campaign": tag(campaign.campaign.name),
            "sequence": tag(row.sequence),
            "step": str(row.step),
            **({"variant": str(variant)} if variant else {}),
        },
    )
