"""The link between a Sequence Tracker row and its contact: a two-way relation (the tracker's Contact, seen from
Contacts as Emails) and the rollups a contact's page shows (emails sent, last sent, next due, opened, sequences).

A relation names its target data source and a rollup names a relation, so they are made once the databases exist:
1 schema update of the Sequence Tracker (the relation; Notion adds its twin to Contacts), then 1 of Contacts (the
rollups). `link_patches` says what is missing from the live schemas, so setup and upgrade make only that.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..core.campaign import Campaign
from .notion_records import JSON


def rollups(campaign: Campaign) -> dict[str, JSON]:
    """Contacts' rollups over its Emails relation, by property name."""
    c, t = campaign.notion.properties.contacts, campaign.notion.properties.tracker

    def over(target: str, function: str) -> JSON:
        return {
            "rollup": {
                "relation_property_name": c.emails,
                "rollup_property_name": target,
                "function": function,
            }
        }

    return {
        c.emails_sent: over(t.sent_at, "count_values"),
        c.last_sent: over(t.sent_at, "latest_date"),
        c.next_due: over(t.due, "earliest_date"),
        c.opened: over(t.opened_at, "count_values"),
        c.sequences: over(t.sequence, "show_unique"),
    }


def link_patches(
    campaign: Campaign, tracker: Mapping[str, Any], contacts: Mapping[str, Any], contacts_source: str
) -> tuple[JSON, JSON]:
    """(the Sequence Tracker's patch, Contacts' patch): what the live schemas lack; empty when nothing."""
    c, t = campaign.notion.properties.contacts, campaign.notion.properties.tracker
    tracker_patch: JSON = {}
    if t.contact not in tracker:
        tracker_patch[t.contact] = {
            "relation": {
                "data_source_id": contacts_source,
                "type": "dual_property",
                "dual_property": {"synced_property_name": c.emails},
            }
        }
    contacts_patch = {name: body for name, body in rollups(campaign).items() if name not in contacts}
    return tracker_patch, contacts_patch
