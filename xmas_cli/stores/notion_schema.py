"""The three Notion databases' schema: what campaign.toml expects, the live check, its cache, and setup.

`Schemas.data_source(kind)` is what every store call goes through. It resolves the database id to its data source
and checks the live schema against `[notion.properties.*]`, then trusts the result for `schema_check_minutes`
through `notion-cache.json` (next to the tick lock), so an idle tick makes one request: the due query.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..core.campaign import Campaign
from ..core.controls import ACTIONS
from ..core.model import Sender, State
from ..errors import ConfigError
from .notion_api import NotionApi
from .notion_records import JSON

KINDS = ("contacts", "templates", "tracker")
TITLES = {"contacts": "Contacts", "templates": "Email Templates", "tracker": "Sequence Tracker"}
ENV = {kind: f"XMAS_NOTION_{kind.upper()}" for kind in KINDS}
LABELS = {
    "title": "Title",
    "rich_text": "Text",
    "email": "Email",
    "select": "Select",
    "number": "Number",
    "checkbox": "Checkbox",
    "date": "Date",
    "relation": "Relation",
    "rollup": "Rollup",
}
LINKS = ("relation", "rollup")  # made after the three databases exist (notion_links.py), not at their creation
SETUP_FIX = "run `xmas notion setup --parent PAGE_ID` to create the three databases"
SCHEMA_FIX = (
    "run `xmas notion upgrade` to add what is missing, or fix those properties in Notion or in campaign.toml, "
    "then run `xmas notion check`"
)
STATE_COLORS = {
    State.SCHEDULED: "blue",
    State.SENT: "green",
    State.SENT_BY_WEBSITE: "green",
    State.FAILED: "red",
    State.CANCELLED: "gray",
    State.SKIPPED: "yellow",
    State.PAUSED: "orange",
}
ACTION_OPTIONS = tuple((label, color) for label, (_, color) in ACTIONS.items())  # the Action column's options
_HEX_ID = re.compile(r"([0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12})")


@dataclass(frozen=True)
class Spec:
    """One property campaign.toml expects: its key under [notion.properties.<kind>], name and Notion type."""

    key: str
    name: str
    type: str
    options: tuple[tuple[str, str], ...] = ()  # select options (name, color) that setup creates


def specs(campaign: Campaign, kind: str) -> list[Spec]:
    props = campaign.notion.properties
    if kind == "contacts":
        c = props.contacts
        return [
            Spec("title", c.title, "title"),
            Spec("email", c.email, "email"),
            Spec("business_name", c.business_name, "rich_text"),
            Spec("segment", c.segment, "select", (("CRITICAL", "red"), ("URGENT", "orange"), ("OPTIMIZE", "green"))),
            Spec("score", c.score, "number"),
            Spec("unsubscribed", c.unsubscribed, "checkbox"),
            Spec("suppressed_reason", c.suppressed_reason, "rich_text"),
            Spec("data", c.data, "rich_text"),
            Spec("updated", c.updated, "date"),
            Spec("events", c.events, "rich_text"),
            Spec("booking", c.booking, "select", booking_options(campaign)),
            Spec("consent", c.consent, "rich_text"),
            Spec("red_systems", c.red_systems, "number"),
            Spec("orange_systems", c.orange_systems, "number"),
            Spec("yellow_systems", c.yellow_systems, "number"),
            Spec("green_systems", c.green_systems, "number"),
            Spec("weakest_systems", c.weakest_systems, "rich_text"),
            Spec("revenue_leak", c.revenue_leak, "number"),
            Spec("call_time", c.call_time, "date"),
            Spec("payment_status", c.payment_status, "select", (("paid", "green"),)),
            Spec("package", c.package, "rich_text"),
            Spec("emails", c.emails, "relation"),
            Spec("emails_sent", c.emails_sent, "rollup"),
            Spec("last_sent", c.last_sent, "rollup"),
            Spec("next_due", c.next_due, "rollup"),
            Spec("opened", c.opened, "rollup"),
            Spec("sequences", c.sequences, "rollup"),
            Spec("action", c.action, "select", ACTION_OPTIONS),
            Spec("action_result", c.action_result, "rich_text"),
            Spec("paused", c.paused, "checkbox"),
            Spec("paused_since", c.paused_since, "date"),
            Spec("pause_reason", c.pause_reason, "rich_text"),
        ]
    if kind == "templates":
        t = props.templates
        return [
            Spec("name", t.name, "title"),
            Spec("subject", t.subject, "rich_text"),
            Spec("body", t.body, "rich_text"),
            Spec("status", t.status, "select", (("Active", "green"), ("Inactive", "gray"))),
        ]
    r = props.tracker
    colors = ("blue", "purple", "pink", "orange", "green", "yellow", "brown", "red", "gray")
    sequences = tuple((name, colors[i % len(colors)]) for i, name in enumerate(campaign.sequences))
    return [
        Spec("title", r.title, "title"),
        Spec("row_id", r.row_id, "rich_text"),
        Spec("enrollment_key", r.enrollment_key, "rich_text"),
        Spec("email", r.email, "email"),
        Spec("sequence", r.sequence, "select", sequences),
        Spec("step", r.step, "number"),
        Spec("template", r.template, "rich_text"),
        Spec("sender", r.sender, "select", ((Sender.XMAS.value, "blue"), (Sender.WEBSITE.value, "purple"))),
        Spec("due", r.due, "date"),
        Spec("state", r.state, "select", tuple((s.value, STATE_COLORS[s]) for s in State)),
        Spec("sent_at", r.sent_at, "date"),
        Spec("message_id", r.message_id, "rich_text"),
        Spec("attempts", r.attempts, "number"),
        Spec("last_error", r.last_error, "rich_text"),
        Spec("note", r.note, "rich_text"),
        Spec("data", r.data, "rich_text"),
        Spec("delivered_at", r.delivered_at, "date"),
        Spec("opened_at", r.opened_at, "date"),
        Spec("opens", r.opens, "number"),
        Spec("clicks", r.clicks, "number"),
        Spec("links", r.links, "rich_text"),
        Spec("bounce", r.bounce, "select"),
        Spec("complained_at", r.complained_at, "date"),
        Spec("delayed", r.delayed, "checkbox"),
        Spec("variant", r.variant, "number"),
        Spec("contact", r.contact, "relation"),
    ]


def booking_options(campaign: Campaign) -> tuple[tuple[str, str], ...]:
    """Booking Status's options: the events that say whether a contact booked (the Booked view filters on them)."""
    said = [(n, e.counts_as_booking) for n, e in campaign.events.items() if e.counts_as_booking is not None]
    return tuple((name, "green" if booked else "gray") for name, booked in said)


def signature(kind: str, expected: list[Spec]) -> str:
    """Changes when campaign.toml expects other names or types: a cached check is then not trusted."""
    raw = json.dumps([kind, [(s.key, s.name, s.type) for s in expected]])
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


def schema_problems(kind: str, live: Mapping[str, Any], expected: list[Spec]) -> list[str]:
    """One line per missing or mistyped property, each with its fix. Missing select options are fine:
    Notion creates them on write."""
    title = TITLES[kind]
    section = f"[notion.properties.{kind}]"
    problems: list[str] = []
    seen: dict[str, str] = {}
    for spec in expected:
        if spec.name in seen:
            problems.append(
                f"{title}: {section} {seen[spec.name]} and {spec.key} both name the property '{spec.name}': "
                "give each its own property in campaign.toml"
            )
            continue
        seen[spec.name] = spec.key
        label = LABELS[spec.type]
        found = live.get(spec.name)
        if not isinstance(found, dict):
            if spec.type == "title":
                actual = next((n for n, p in live.items() if isinstance(p, dict) and p.get("type") == "title"), None)
                if actual is not None:
                    problems.append(
                        f"{title}: property '{spec.name}' is missing: the title property is called '{actual}': "
                        f"rename it to '{spec.name}' in Notion, or set {section} {spec.key} = \"{actual}\" "
                        "in campaign.toml"
                    )
                    continue
            problems.append(
                f"{title}: property '{spec.name}' is missing: add a {label} property named '{spec.name}', "
                f'or set {section} {spec.key} = "..." in campaign.toml'
            )
        elif found.get("type") != spec.type:
            problems.append(
                f"{title}: property '{spec.name}' is a {found.get('type')} property, expected {spec.type}: "
                f'change its type to {label} in Notion, or set {section} {spec.key} = "..." to the name of '
                f"a {label} property in campaign.toml"
            )
    return problems


def schema_error(problems: list[str]) -> ConfigError:
    return ConfigError("the Notion databases do not match campaign.toml:\n  " + "\n  ".join(problems), SCHEMA_FIX)


def database_properties(campaign: Campaign, kind: str) -> JSON:
    """The `initial_data_source.properties` that create a database with the expected schema."""
    out: JSON = {}
    for spec in specs(campaign, kind):
        if spec.type in LINKS:
            continue
        config: JSON = {}
        if spec.type == "select":
            config = {"options": [{"name": name, "color": color} for name, color in spec.options]}
        elif spec.type == "number":
            config = {"format": "number"}
        out[spec.name] = {spec.type: config}
    return out


def notion_id(text: str) -> str | None:
    """A Notion id in canonical dashed form, from an id (with or without dashes) or a copied Notion URL."""
    path = text.strip().split("?", 1)[0].split("#", 1)[0]
    found = _HEX_ID.findall(path)
    if not found:
        return None
    compact = found[-1].replace("-", "").lower()
    if len(compact) != 32:
        return None
    return f"{compact[:8]}-{compact[8:12]}-{compact[12:16]}-{compact[16:20]}-{compact[20:]}"


# --------------------------------------------------------------------------------------------- cache


class SchemaCache:
    """`notion-cache.json`: per database id, its data source id, when its schema last passed the check (wall
    clock, not the campaign clock: --now simulates the campaign, not the age of a check) and for which
    expected schema. Only passed checks are stored. A broken or unwritable file only costs a re-check."""

    VERSION = 1

    def __init__(self, path: Path | None, trust_minutes: float, wall: Callable[[], float] = time.time) -> None:
        self.path = path
        self.trust_seconds = trust_minutes * 60
        self.wall = wall

    def _load(self) -> dict[str, Any]:
        if self.path is None:
            return {}
        try:
            doc = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        if not isinstance(doc, dict) or doc.get("version") != self.VERSION:
            return {}
        if not isinstance(doc.get("databases"), dict):
            return {}
        return dict(doc["databases"])

    def _save(self, databases: dict[str, Any]) -> None:
        if self.path is None:
            return
        text = json.dumps({"version": self.VERSION, "databases": databases}, indent=2, sort_keys=True) + "\n"
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".notion-cache-")
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
            os.replace(tmp, self.path)
        except OSError:
            return

    def get(self, database_id: str, sig: str) -> str | None:
        """The data source id if a check of this schema passed less than `trust_minutes` ago."""
        entry = self._load().get(database_id)
        if not isinstance(entry, dict) or entry.get("schema") != sig or not entry.get("data_source"):
            return None
        try:
            checked = datetime.fromisoformat(str(entry.get("checked_at"))).timestamp()
        except ValueError:
            return None
        age = self.wall() - checked
        return str(entry["data_source"]) if -60 <= age < self.trust_seconds else None

    def put(self, database_id: str, data_source: str, sig: str) -> None:
        databases = self._load()
        checked = datetime.fromtimestamp(self.wall(), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        databases[database_id] = {"data_source": data_source, "checked_at": checked, "schema": sig}
        self._save(databases)

    def drop(self, database_id: str) -> None:
        databases = self._load()
        if databases.pop(database_id, None) is not None:
            self._save(databases)


# ------------------------------------------------------------------------------------------- schemas


@dataclass(frozen=True)
class DatabaseCheck:
    kind: str
    database_id: str
    data_source_id: str | None
    problems: list[str]

    def to_json(self) -> dict[str, Any]:
        return {
            "database": TITLES[self.kind],
            "kind": self.kind,
            "database_id": self.database_id,
            "data_source_id": self.data_source_id,
            "ok": not self.problems,
            "problems": self.problems,
        }


class Schemas:
    """Data source ids and schema checks of the three databases, cached in memory and in `SchemaCache`."""

    def __init__(self, campaign: Campaign, api: NotionApi, databases: Mapping[str, str], cache: SchemaCache) -> None:
        self.campaign = campaign
        self.api = api
        self.databases = dict(databases)
        self.cache = cache
        self.resolved: dict[str, str] = {}
        self._rechecking = False

    def database_id(self, kind: str) -> str:
        found = self.databases.get(kind)
        if not found:
            raise ConfigError(
                f"no Notion database id for {TITLES[kind]}: set [notion] {kind} in campaign.toml or {ENV[kind]}",
                SETUP_FIX,
            )
        return found

    def data_source(self, kind: str) -> str:
        """The data source to read and write `kind`'s rows; raises the schema's problems as a ConfigError."""
        if kind in self.resolved:
            return self.resolved[kind]
        database = self.database_id(kind)
        expected = specs(self.campaign, kind)
        sig = signature(kind, expected)
        data_source = self.cache.get(database, sig)
        if data_source is None:
            data_source, problems = self.inspect(kind)
            if problems:
                raise schema_error(problems)
            self.cache.put(database, data_source, sig)
        self.resolved[kind] = data_source
        return data_source

    def inspect(self, kind: str) -> tuple[str, list[str]]:
        """Live: resolve the database's data source and compare its properties with campaign.toml."""
        database = self.database_id(kind)
        title = TITLES[kind]
        db = self.api.call("GET", f"databases/{database}", what=f"read the {title} database", kind=kind)
        sources = db.get("data_sources") or []
        if not sources:
            raise ConfigError(f"the {title} database {database} has no data source", "add one in Notion")
        data_source = str(sources[0]["id"])
        live = self.api.call("GET", f"data_sources/{data_source}", what=f"read the {title} schema", kind=kind)
        return data_source, schema_problems(kind, live.get("properties") or {}, specs(self.campaign, kind))

    def recheck(self, kind: str, message: str) -> None:
        """A request was refused as invalid: forget the cached check and check again. Raise the schema's
        problems if there are any; otherwise return, and the caller raises Notion's own message."""
        if self._rechecking:
            return
        self._rechecking = True
        try:
            database = self.database_id(kind)
            self.resolved.pop(kind, None)
            self.cache.drop(database)
            data_source, problems = self.inspect(kind)
            if problems:
                raise schema_error(problems)
            self.cache.put(database, data_source, signature(kind, specs(self.campaign, kind)))
            self.resolved[kind] = data_source
        finally:
            self._rechecking = False

    def check_all(self) -> list[DatabaseCheck]:
        """`xmas notion check`: every database, live, every problem named. Passed checks refresh the cache."""
        results: list[DatabaseCheck] = []
        for kind in KINDS:
            database = self.databases.get(kind, "")
            try:
                data_source, problems = self.inspect(kind)
            except ConfigError as exc:
                results.append(DatabaseCheck(kind, database, None, [f"{TITLES[kind]}: {exc}"]))
                continue
            if not problems:
                self.cache.put(database, data_source, signature(kind, specs(self.campaign, kind)))
                self.resolved[kind] = data_source
            results.append(DatabaseCheck(kind, database, data_source, problems))
        return results
