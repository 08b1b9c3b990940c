"""Operator tasks on the Notion databases: `notion setup` (and writing the ids into campaign.toml), `notion check`,
`templates push` and `templates pull`.

Each returns a result object; cli_notion.py only prints it.
"""

from __future__ import annotations

import os
import re
import tempfile
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import load_campaign
from ..core.campaign import Campaign
from ..errors import JSON_VERSION, ConfigError, InvalidInput, StoreUnavailable
from .files import FileTemplates, template_source
from .notion import NotionStore, notion_settings, open_api
from .notion_api import NotionApi
from .notion_links import link_patches
from .notion_records import checkbox_value, text_value, title_value
from .notion_schema import (
    ENV,
    KINDS,
    TITLES,
    DatabaseCheck,
    SchemaCache,
    database_properties,
    notion_id,
    schema_error,
    signature,
    specs,
)
from .notion_views import ViewsResult, ensure_views, plan_views

_TEMPLATE_ID = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")  # what campaign.toml accepts as a step's template


def create_databases(campaign: Campaign, api: NotionApi, parent_page: str) -> dict[str, tuple[str, str]]:
    """Create the three databases under a page, linked (notion_links.py): {kind: (database id, data source id)}."""
    created: dict[str, tuple[str, str]] = {}
    for kind in KINDS:
        body = {
            "parent": {"type": "page_id", "page_id": parent_page},
            "title": [{"type": "text", "text": {"content": TITLES[kind]}}],
            "initial_data_source": {"properties": database_properties(campaign, kind)},
        }
        try:
            db = api.call("POST", "databases", body, what=f"create the {TITLES[kind]} database", write=True)
        except (StoreUnavailable, ConfigError) as exc:
            if created:
                made = ", ".join(f"{TITLES[k]} {ids[0]}" for k, ids in created.items())
                exc.message += f" (already created: {made}; move them to the trash before running setup again)"
            raise
        created[kind] = (str(db["id"]), str(db["data_sources"][0]["id"]))
    make_links(campaign, api, created, {}, {})  # then the relation and the rollups, which name them
    return created


def make_links(
    campaign: Campaign,
    api: NotionApi,
    databases: Mapping[str, tuple[str, str]],
    tracker: Mapping[str, Any],
    contacts: Mapping[str, Any],
    *,
    dry_run: bool = False,
) -> list[str]:
    """The relation from the tracker to Contacts, then the rollups on Contacts, where the schemas lack them."""
    tracker_patch, contacts_patch = link_patches(campaign, tracker, contacts, databases["contacts"][1])
    steps = [f"Sequence Tracker: add the relation '{name}' to Contacts" for name in tracker_patch]
    steps += [f"Contacts: add the rollup '{name}'" for name in contacts_patch]
    for kind, patch in (("tracker", tracker_patch), ("contacts", contacts_patch)):
        if patch and not dry_run:
            api.call(
                "PATCH",
                f"data_sources/{databases[kind][1]}",
                {"properties": patch},
                what=f"link the {TITLES[kind]} database",
                write=True,
            )
    return steps


def make_views(
    campaign: Campaign, api: NotionApi, databases: Mapping[str, tuple[str, str]], *, fresh: bool, dry_run: bool = False
) -> ViewsResult:
    """The views of Sequence Tracker and Contacts (notion_views.py): read both schemas for their property ids (2
    requests), then create what is missing; `fresh` databases hold only Notion's "Default view", so none is listed."""
    schemas = {
        kind: api.call("GET", f"data_sources/{databases[kind][1]}", what=f"read the {TITLES[kind]} schema")
        for kind in ("tracker", "contacts")
    }
    plans = plan_views(campaign, schemas["tracker"]["properties"], schemas["contacts"]["properties"])
    where = {kind: databases[kind] for kind in ("tracker", "contacts")}
    existing = {kind: {"Default view"} for kind in where} if fresh else None
    return ensure_views(api, plans, where, existing=existing, dry_run=dry_run)


def create_control_row(campaign: Campaign, api: NotionApi, contacts: str) -> None:
    """The Contacts row that pauses the whole campaign (Paused unticked): what the owner flips (notion_control.py)."""
    c = campaign.notion.properties.contacts
    properties = {
        c.title: title_value(campaign.notion.control, "control row"),
        c.paused: checkbox_value(False),
        c.action_result: text_value("tick Paused to pause the whole campaign; untick it to resume", "action result"),
    }
    body = {"parent": {"type": "data_source_id", "data_source_id": contacts}, "properties": properties}
    api.call("POST", "pages", body, what="create the campaign's control row", write=True)


_HEADER = re.compile(r"^\s*\[\s*([^\[\]]+?)\s*\]\s*(?:#.*)?$")
_ARRAY_HEADER = re.compile(r"^\s*\[\[")
_KEY = re.compile(r"""^(\s*)(contacts|templates|tracker)(\s*=\s*)("(?:[^"\\]|\\.)*"|'[^']*')(.*)$""")


def with_database_ids(text: str, ids: Mapping[str, str]) -> str:
    """campaign.toml's text with [notion] contacts/templates/tracker set to `ids`, everything else byte-identical.
    Keys missing from [notion] are added under its header; a missing [notion] table is added at the end."""
    lines = text.splitlines(keepends=True)
    newline = "\r\n" if "\r\n" in text else "\n"
    section: str | None = None
    header: int | None = None
    done: set[str] = set()
    for i, line in enumerate(lines):
        body = line.rstrip("\r\n")
        if _ARRAY_HEADER.match(body):
            section = None
            continue
        found = _HEADER.match(body)
        if found:
            section = found.group(1).replace(" ", "").replace('"', "")
            if section == "notion":
                header = i
            continue
        if section != "notion":
            continue
        key = _KEY.match(body)
        if key and key.group(2) in ids:
            indent, name, equals, _, rest = key.groups()
            lines[i] = f'{indent}{name}{equals}"{ids[name]}"{rest}{line[len(body) :]}'
            done.add(key.group(2))
    block = "".join(f'{k} = "{v}"{newline}' for k, v in ids.items() if k not in done)
    if block and header is not None:
        lines.insert(header + 1, block)
    elif block:
        if lines and not lines[-1].endswith(("\n", "\r")):
            lines.append(newline)
        lines.append(f"{newline}[notion]{newline}{block}")
    return "".join(lines)


def write_database_ids(path: Path, ids: Mapping[str, str]) -> None:
    """Write the ids into campaign.toml in place (comments and everything else kept), checked before writing."""
    old = path.read_bytes().decode("utf-8")
    new = with_database_ids(old, ids)
    manual = "add them under [notion] by hand: " + ", ".join(f'{k} = "{v}"' for k, v in ids.items())
    try:
        written = tomllib.loads(new).get("notion", {})
    except tomllib.TOMLDecodeError:
        written = {}
    if not isinstance(written, dict) or any(written.get(k) != v for k, v in ids.items()):
        raise ConfigError(f"{path}: could not write the Notion database ids into [notion]", manual)
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".campaign-")
        with os.fdopen(fd, "wb") as fh:
            fh.write(new.encode("utf-8"))
        os.chmod(tmp, path.stat().st_mode & 0o7777)
        os.replace(tmp, path)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot write it ({exc.strerror})", manual) from None


def parent_page_id(text: str) -> str:
    found = notion_id(text)
    if found is None:
        raise InvalidInput(
            f"--parent: {text!r} is not a Notion page id",
            "copy the page's link in Notion (Share → Copy link) and pass it, or the 32-character id at its end",
        )
    return found


@dataclass(frozen=True)
class SetupResult:
    config: Path
    databases: dict[str, str]  # kind → database id
    warnings: list[str] = field(default_factory=list)
    views: list[str] = field(default_factory=list)  # "Sequence Tracker: Needs attention", ...

    def to_json(self) -> dict[str, Any]:
        return {
            "version": JSON_VERSION,
            "ok": True,
            "config": str(self.config),
            "databases": {kind: {"title": TITLES[kind], "id": db} for kind, db in self.databases.items()},
            "warnings": self.warnings,
            "views": self.views,
        }


def setup(config: Path, parent: str, env: Mapping[str, str], *, force: bool = False) -> SetupResult:
    """Create the three databases under a page and write their ids into campaign.toml's [notion] table."""
    campaign = load_campaign(config, dict(env))
    page = parent_page_id(parent)
    configured = [
        f"{kind} ({ENV[kind]})" if env.get(ENV[kind]) else kind
        for kind in KINDS
        if (env.get(ENV[kind]) or getattr(campaign.notion, kind)).strip()
    ]
    if configured and not force:
        raise InvalidInput(
            f"Notion database ids are already configured for {', '.join(configured)}: nothing was created",
            "run `xmas notion check` to check them, or pass --force to create three new databases "
            "and point campaign.toml at them (the old ones are left as they are)",
        )
    settings = notion_settings(campaign, env, need_databases=False)
    api = open_api(campaign, settings)
    try:
        created = create_databases(campaign, api, page)
        create_control_row(campaign, api, created["contacts"][1])
        views = make_views(campaign, api, created, fresh=True)
    finally:
        api.close()
    write_database_ids(config, {kind: ids[0] for kind, ids in created.items()})
    # Warm the schema cache: these schemas are the ones just created, so the first tick needs no check.
    cache = SchemaCache(settings.cache_path, campaign.notion.schema_check_minutes)
    for kind, (database, data_source) in created.items():
        cache.put(database, data_source, signature(kind, specs(campaign, kind)))
    overridden = [ENV[k] for k in KINDS if env.get(ENV[k])]
    warnings = [f"{name} is set and overrides the new id in campaign.toml: unset it" for name in overridden]
    return SetupResult(config, {kind: ids[0] for kind, ids in created.items()}, warnings, views.created)


@dataclass(frozen=True)
class CheckReport:
    databases: list[DatabaseCheck]
    missing_views: list[str] = field(default_factory=list)  # "Sequence Tracker: Needs attention": not an error

    @property
    def problems(self) -> list[str]:
        return [p for d in self.databases for p in d.problems]

    def to_json(self) -> dict[str, Any]:
        return {
            "version": JSON_VERSION,
            "ok": not self.problems,
            "databases": [d.to_json() for d in self.databases],
            "missing_views": self.missing_views,
        }


def check(store: NotionStore) -> CheckReport:
    """Compare the three live schemas with campaign.toml; raise every problem, with its fix, as one ConfigError."""
    report = CheckReport(store.schemas.check_all())
    if report.problems:
        raise schema_error(report.problems)
    ids = {d.kind: (d.database_id, str(d.data_source_id)) for d in report.databases}
    views = make_views(store.campaign, store.api, ids, fresh=False, dry_run=True)  # lists; creates nothing
    return CheckReport(report.databases, views.created)


@dataclass(frozen=True)
class Synced:
    template: str
    action: str  # created | updated | unchanged | written | skipped
    detail: str = ""


@dataclass(frozen=True)
class SyncReport:
    direction: str  # push | pull
    folder: Path
    templates: list[Synced]

    def count(self, action: str) -> int:
        return sum(1 for t in self.templates if t.action == action)

    def summary(self) -> str:
        actions = ("created", "updated", "written", "unchanged", "skipped")
        parts = [f"{self.count(a)} {a}" for a in actions if self.count(a)]
        where = f"{self.folder} → Notion" if self.direction == "push" else f"Notion → {self.folder}"
        return f"templates {self.direction} ({where}): " + (", ".join(parts) or "nothing to do")

    def to_json(self) -> dict[str, Any]:
        return {
            "version": JSON_VERSION,
            "ok": True,
            "direction": self.direction,
            "folder": str(self.folder),
            "templates": [{"template": t.template, "action": t.action, "detail": t.detail} for t in self.templates],
        }


def push_templates(store: NotionStore, folder: Path) -> SyncReport:
    """Every `<id>.html` of the folder into Email Templates: created (Active) or updated by Template Name."""
    local = FileTemplates(folder).list()
    if not local:
        raise InvalidInput(f"no templates in {folder}", "put <template_id>.html files there, or set templates_dir")
    remote = store.template_pages()
    return SyncReport("push", folder, [Synced(t.id, store.save_template(t, remote.get(t.id))) for t in local])


def pull_templates(store: NotionStore, folder: Path) -> SyncReport:
    """Every Active template of Email Templates into `<id>.html` files of the folder."""
    files = FileTemplates(folder)
    out: list[Synced] = []
    for template in store.list_templates():
        if not _TEMPLATE_ID.match(template.id):
            out.append(Synced(template.id, "skipped", "not a usable file name (letters, digits, _ . - only)"))
        elif not template.active:
            out.append(Synced(template.id, "skipped", "not Active in Notion"))
        elif not template.subject:
            out.append(Synced(template.id, "skipped", "no subject line in Notion"))
        else:
            path = files.path(template.id)
            same = path.is_file() and path.read_text(encoding="utf-8") == template_source(template)
            if not same:
                files.write(template)
            out.append(Synced(template.id, "unchanged" if same else "written", str(path)))
    return SyncReport("pull", folder, out)
