"""The views `xmas notion setup` makes (Notion's Views API, Notion-Version 2025-09-03), so the owner finds the
campaign's questions answered when Notion opens: what goes out soon, what needs attention, what is paused, a board by
State, a calendar by Due, one view per sequence; on Contacts who is in a sequence, booked, unsubscribed; and a
dashboard of charts (sent per day, rows by state, the funnel by sequence and state).

`plan_views` is pure: the request bodies for a schema (property ids, as a view's configuration wants them; filters and
sorts name properties as queries do). `ensure_views` lists what a database has and creates only the views whose name
is not there yet, so it is idempotent, and a view a person made, renamed or changed is never touched.

Names come from `[notion.views]`; property names from `[notion.properties.*]`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..core.campaign import Campaign
from ..core.model import State
from .notion_api import NotionApi
from .notion_records import JSON

DUE_SOON = "tomorrow"  # Notion's relative date: a view's filter follows the clock (no "now + 24 h" exists)


@dataclass(frozen=True)
class ViewPlan:
    """One view to make: its name, the database (kind) it is a tab of, and its body (without the placement)."""

    kind: str  # tracker | contacts
    name: str
    body: JSON
    widgets: list[tuple[str, JSON, JSON | None]] = field(default_factory=list)  # dashboard: (name, body, placement)


def _ids(schema: Mapping[str, Any]) -> dict[str, str]:
    """Property name → id, from a data source's `properties`."""
    return {name: str(p["id"]) for name, p in schema.items() if isinstance(p, dict) and "id" in p}


def _state(value: State) -> JSON:
    return {"select": {"equals": value.value}}


def plan_views(campaign: Campaign, tracker: Mapping[str, Any], contacts: Mapping[str, Any]) -> list[ViewPlan]:
    """Every view xmas makes, for these live schemas (`properties` of the two data sources)."""
    t, c, v = campaign.notion.properties.tracker, campaign.notion.properties.contacts, campaign.notion.views
    tid = _ids(tracker)
    by_due = [{"property": t.due, "direction": "ascending"}]
    scheduled = {"property": t.state, **_state(State.SCHEDULED)}
    plans = [
        ViewPlan(
            "tracker",
            v.due,
            {
                "type": "table",
                "filter": {"and": [scheduled, {"property": t.due, "date": {"on_or_before": DUE_SOON}}]},
                "sorts": by_due,
            },
        ),
        ViewPlan(
            "tracker",
            v.attention,
            {
                "type": "table",
                "filter": {
                    "or": [
                        {"property": t.state, **_state(State.FAILED)},
                        {"and": [scheduled, {"property": t.last_error, "rich_text": {"is_not_empty": True}}]},
                        {"and": [scheduled, {"property": t.note, "rich_text": {"is_not_empty": True}}]},
                    ]
                },
                "sorts": by_due,
            },
        ),
        ViewPlan("tracker", v.paused, {"type": "table", "filter": {"property": t.state, **_state(State.PAUSED)}}),
        ViewPlan(
            "tracker",
            v.board,
            {
                "type": "board",
                "configuration": {
                    "type": "board",
                    "group_by": {"type": "select", "property_id": tid[t.state], "sort": {"type": "manual"}},
                },
            },
        ),
        ViewPlan(
            "tracker",
            v.calendar,
            {
                "type": "calendar",
                "configuration": {"type": "calendar", "date_property_id": tid[t.due], "view_range": "week"},
            },
        ),
    ]
    for name in campaign.sequences:
        plans.append(
            ViewPlan(
                "tracker",
                v.sequence.format(sequence=name),
                {"type": "table", "filter": {"property": t.sequence, "select": {"equals": name}}, "sorts": by_due},
            )
        )
    booked = [n for n, e in campaign.events.items() if e.counts_as_booking]
    live = {"property": c.email, "email": {"is_not_empty": True}}
    plans += [
        ViewPlan(
            "contacts",
            v.in_sequence,
            {"type": "table", "filter": {"and": [live, {"property": c.unsubscribed, "checkbox": {"equals": False}}]}},
        ),
        ViewPlan(
            "contacts",
            v.unsubscribed,
            {"type": "table", "filter": {"property": c.unsubscribed, "checkbox": {"equals": True}}},
        ),
    ]
    if booked:
        plans.append(
            ViewPlan(
                "contacts", v.booked, {"type": "table", "filter": {"property": c.booking, "select": {"equals": booked}}}
            )
        )
    count = {"aggregator": "count"}
    state_axis = {"type": "select", "property_id": tid[t.state], "sort": {"type": "manual"}}
    plans.append(
        ViewPlan(
            "tracker",
            v.dashboard,
            {"type": "dashboard"},
            widgets=[
                (
                    v.sent_per_day,
                    {
                        "type": "chart",
                        "filter": {"property": t.state, **_state(State.SENT)},
                        "configuration": {
                            "type": "chart",
                            "chart_type": "column",
                            "x_axis": {
                                "type": "date",
                                "property_id": tid[t.sent_at],
                                "group_by": "day",
                                "sort": {"type": "ascending"},
                            },
                            "y_axis": count,
                        },
                    },
                    None,
                ),
                (
                    v.by_state,
                    {
                        "type": "chart",
                        "configuration": {
                            "type": "chart",
                            "chart_type": "donut",
                            "x_axis": state_axis,
                            "y_axis": count,
                        },
                    },
                    None,
                ),
                (
                    v.funnel,
                    {
                        "type": "chart",
                        "configuration": {
                            "type": "chart",
                            "chart_type": "bar",
                            "x_axis": {"type": "select", "property_id": tid[t.sequence], "sort": {"type": "manual"}},
                            "stack_by": state_axis,
                            "y_axis": count,
                        },
                    },
                    {"type": "existing_row", "row_index": 1},
                ),
            ],
        )
    )
    return plans


@dataclass(frozen=True)
class ViewsResult:
    created: list[str]  # "Sequence Tracker: Needs attention", ...
    kept: list[str]  # there already (by name): left as a person may have changed them


def view_names(api: NotionApi, database: str) -> set[str]:
    """The names of a database's views: 1 request per 100 to list them, then 1 per view (a listing gives ids only)."""
    names: set[str] = set()
    cursor: str | None = None
    while True:
        query = {"database_id": database, "page_size": 100, **({"start_cursor": cursor} if cursor else {})}
        listing = api.call("GET", "views", query=query, what="list the views")
        for ref in listing.get("results") or []:
            view = api.call("GET", f"views/{ref['id']}", what="read a view")
            names.add(str(view.get("name") or ""))
        cursor = listing.get("next_cursor")
        if not listing.get("has_more") or not cursor:
            return names


def ensure_views(
    api: NotionApi,
    plans: list[ViewPlan],
    databases: Mapping[str, tuple[str, str]],
    *,
    existing: Mapping[str, set[str]] | None = None,
    dry_run: bool = False,
) -> ViewsResult:
    """Create each planned view whose name its database does not have (`existing`: the names, when known, else
    listed). `databases`: kind → (database id, data source id)."""
    from .notion_schema import TITLES

    known = {kind: set(existing[kind]) if existing and kind in existing else None for kind in databases}
    created: list[str] = []
    kept: list[str] = []
    for plan in plans:
        database, source = databases[plan.kind]
        names = known[plan.kind]
        if names is None:
            names = known[plan.kind] = view_names(api, database)
        label = f"{TITLES[plan.kind]}: {plan.name}"
        if plan.name in names:
            kept.append(label)
            continue
        created.append(label)
        names.add(plan.name)
        if dry_run:
            continue
        body = {"database_id": database, "data_source_id": source, "name": plan.name, **plan.body}
        made = api.call("POST", "views", body, what=f"create the view {label}", write=True)
        for name, widget, placement in plan.widgets:
            part = {"view_id": made["id"], "data_source_id": source, "name": name, **widget}
            if placement is not None:
                part["placement"] = placement
            api.call("POST", "views", part, what=f"add {name} to {label}", write=True)
    return ViewsResult(created, kept)
