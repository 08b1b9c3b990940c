"""`xmas notion upgrade [--dry-run]`: bring databases an earlier `notion setup` made up to what this release expects.

Adds what is missing and nothing else: properties campaign.toml names that a database lacks (with their select
options), the select options xmas filters on (Action's, Booking Status's), the campaign's control row, and the views
(notion_views.py, by name). It never deletes, renames or retypes anything: a property of the wrong type is reported,
with its fix, and left as it is. Running it again finds nothing to do. `--dry-run` prints the plan and writes nothing.

Costs: per database 2 reads (database, schema); 1 update per database that misses something; the views: 1 listing per
database and 1 read per view it has, then 1 create per missing view (and per dashboard widget).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..errors import JSON_VERSION
from .notion import NotionStore
from .notion_records import JSON
from .notion_schema import KINDS, LABELS, LINKS, TITLES, Spec, specs


@dataclass
class UpgradeReport:
    dry_run: bool
    steps: list[str] = field(default_factory=list)  # what was (or would be) done, one line each
    problems: list[str] = field(default_factory=list)  # what upgrade does not change: a person decides

    def to_json(self) -> dict[str, Any]:
        return {
            "version": JSON_VERSION,
            "ok": not self.problems,
            "dry_run": self.dry_run,
            "steps": self.steps,
            "problems": self.problems,
        }


def _config(spec: Spec) -> JSON:
    if spec.type == "select":
        return {"options": [{"name": name, "color": color} for name, color in spec.options]}
    if spec.type == "number":
        return {"format": "number"}
    return {}


def _missing(kind: str, live: dict[str, Any], expected: list[Spec], report: UpgradeReport) -> JSON:
    """The schema patch that adds what is missing: new properties, and missing options of our selects."""
    patch: JSON = {}
    title = TITLES[kind]
    for spec in expected:
        found = live.get(spec.name)
        if spec.type in LINKS and not isinstance(found, dict):
            continue  # made with the relation, after every database is up to date (make_links)
        if not isinstance(found, dict):
            if spec.type == "title":  # a database has exactly one title: a renamed one is for campaign.toml
                report.problems.append(
                    f"{title}: the title property is not called '{spec.name}': set [notion.properties.{kind}] "
                    f"{spec.key} to its name in campaign.toml"
                )
                continue
            patch[spec.name] = {spec.type: _config(spec)}
            report.steps.append(f"{title}: add the {LABELS[spec.type]} property '{spec.name}'")
        elif found.get("type") != spec.type:
            report.problems.append(
                f"{title}: '{spec.name}' is a {found.get('type')} property, expected {spec.type}: upgrade changes no "
                f"type; change it in Notion, or point [notion.properties.{kind}] {spec.key} at another property"
            )
        elif spec.type == "select" and spec.options:
            have = {o.get("name") for o in (found.get("select") or {}).get("options") or []}
            missing = [(n, c) for n, c in spec.options if n not in have]
            if missing:
                kept = list((found.get("select") or {}).get("options") or [])
                patch[spec.name] = {"select": {"options": kept + [{"name": n, "color": c} for n, c in missing]}}
                names = ", ".join(n for n, _ in missing)
                report.steps.append(f"{title}: add the option(s) {names} to '{spec.name}'")
    return patch


def upgrade(store: NotionStore, *, dry_run: bool = False) -> UpgradeReport:
    from .notion_admin import create_control_row, make_links, make_views
    from .notion_control import NotionControl

    campaign, api = store.campaign, store.api
    report = UpgradeReport(dry_run)
    ids: dict[str, tuple[str, str]] = {}
    schemas: dict[str, Any] = {}
    for kind in KINDS:
        database = store.schemas.database_id(kind)
        db = api.call("GET", f"databases/{database}", what=f"read the {TITLES[kind]} database", kind=kind)
        source = str((db.get("data_sources") or [{}])[0].get("id") or "")
        live = api.call("GET", f"data_sources/{source}", what=f"read the {TITLES[kind]} schema", kind=kind)
        ids[kind] = (database, source)
        schemas[kind] = live.get("properties") or {}
        patch = _missing(kind, live.get("properties") or {}, specs(campaign, kind), report)
        if patch and not dry_run:
            api.call(
                "PATCH", f"data_sources/{source}", {"properties": patch}, what=f"upgrade {TITLES[kind]}", write=True
            )
    if report.problems:  # the views name properties by id: make none on a schema that is not right yet
        return report
    report.steps += make_links(campaign, api, ids, schemas["tracker"], schemas["contacts"], dry_run=dry_run)
    control, c = NotionControl(store), campaign.notion.properties.contacts
    if dry_run and c.email not in schemas["contacts"]:
        has_row = False  # no row can lack the Email that Contacts lacks: the row is made with it
    else:  # read without the store's schema check, which a dry run leaves failing until what is missing is added
        empty = {"property": c.email, "email": {"is_empty": True}}
        named = {"property": c.title, "title": {"starts_with": control.prefix}}
        body = {"filter": {"and": [empty, named]}}
        found = api.query(ids["contacts"][1], body, what="look for the control row", kind="contacts")
        has_row = any(control.scope(page) == (True, None) for page in found)
    if not has_row:
        report.steps.append(f"Contacts: add the control row '{campaign.notion.control}' (tick Paused to pause)")
        if not dry_run:
            create_control_row(campaign, api, ids["contacts"][1])
    views = make_views(campaign, api, ids, fresh=False, dry_run=dry_run)
    report.steps += [f"{label}: add the view" for label in views.created]
    return report
