"""Subject-line experiments: which subject variant a row gets. Pure, and light enough for an idle tick to import."""

from __future__ import annotations

import hashlib

from .campaign import Campaign
from .model import ScheduledEmail


def variant_of(row: ScheduledEmail, campaign: Campaign) -> int:
    """The subject variant of a row: 0 (the template's own subject) unless its step gives `subjects`; then a stable
    hash of the row's id picks one of 1 + len(subjects), the same on every retry and in every process."""
    sequence = campaign.sequences.get(row.sequence)
    if sequence is None or not 1 <= row.step <= len(sequence.steps):
        return 0
    count = 1 + len(sequence.steps[row.step - 1].subjects)
    return int(hashlib.sha256(row.id.encode()).hexdigest()[:8], 16) % count if count > 1 else 0
