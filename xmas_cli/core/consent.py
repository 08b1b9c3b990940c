"""Pure: the consent an enrollment gives, and whether a marketing email may go (CASL).

Express consent (the person opted in to marketing email) does not expire. Implied consent does: 6 months after
an inquiry, 2 years after a purchase (an enrollment in a sequence that takes a spot). A contact keeps the consent
that lasts: express over implied, and of two implied the one that expires later. With `[consent] require`, the
tick sends no marketing email without valid consent; transactional email is not affected.

A contact written before consent was recorded has none on file; its last enrollment was an inquiry, so it is
read as implied consent from that time (`updated_at`), as CASL reads an inquiry.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from .campaign import Campaign
from .model import Consent, Contact

INQUIRY = timedelta(days=183)  # CASL: implied consent lasts 6 months after an inquiry
PURCHASE = timedelta(days=730)  # and 2 years after a purchase


def given_by(campaign: Campaign, sequence: str, said: str | None, at: datetime) -> Consent:
    """The consent an enrollment in `sequence` gives at `at`: the payload's `consent`, else the sequence's."""
    seq = campaign.sequences[sequence]
    kind = said or seq.consent
    source = f"{sequence} (payload)" if said else sequence
    if kind == "express":
        return Consent("express", source, at)
    return Consent("implied", source, at, at + (PURCHASE if seq.takes_spot else INQUIRY))


def on_file(contact: Contact) -> Consent | None:
    """The contact's consent; for a contact from before consent was recorded, implied from its last enrollment."""
    if contact.consent is not None or contact.updated_at is None:
        return contact.consent
    at = contact.updated_at
    return Consent("implied", "enrollment before consent was recorded", at, at + INQUIRY)


def refusal(campaign: Campaign, sequence: str, contact: Contact | None, now: datetime) -> str | None:
    """Why a marketing email of `sequence` may not go to this contact now, or None."""
    seq = campaign.sequences.get(sequence)
    if not campaign.consent.require or seq is None or seq.transactional:
        return None
    consent = on_file(contact) if contact is not None else None
    if consent is None:
        return "no consent: none on record"
    if not consent.valid_at(now):
        return f"no consent: implied consent expired on {consent.expires:%Y-%m-%d}"
    return None
