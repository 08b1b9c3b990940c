"""`xmas store copy` from two campaign files: open the store each one configures, refuse what must not be copied
(the same store twice, a batch in flight), hold both campaigns' tick locks, then plan and copy (stores/copy.py)."""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping
from contextlib import ExitStack
from pathlib import Path
from typing import Protocol

from ..core.campaign import Campaign
from ..core.model import Contact, Event, ScheduledEmail, Template
from ..errors import Busy, ConfigError
from ..stores.base import Changes, journal_of
from ..stores.copy import CopyReport, Progress, Target, copy_store, plan_copy
from ..stores.files import FileTemplates


class _OpenTarget(Target, Protocol):
    def close(self) -> None: ...


class _Absent:
    """A SQLite target whose file does not exist yet, for a dry run: empty, and nothing is created to find out."""

    def __init__(self, description: str, templates: FileTemplates) -> None:
        self.description = description
        self.templates = templates  # the folder the store would read: its templates are copied there

    def get_contacts(self, emails: Collection[str]) -> dict[str, Contact]:
        return {}

    def save_contact(self, contact: Contact) -> Contact:
        raise AssertionError("a dry run writes nothing")

    def all_emails(self) -> Iterator[ScheduledEmail]:
        return iter(())

    def add_email(self, row: ScheduledEmail) -> ScheduledEmail:
        raise AssertionError("a dry run writes nothing")

    def update_email(self, row: ScheduledEmail, changes: Changes) -> ScheduledEmail:
        raise AssertionError("a dry run writes nothing")

    def events_for_contact(self, email: str) -> list[Event]:
        return []

    def add_event(self, event: Event) -> bool:
        raise AssertionError("a dry run writes nothing")

    def list_templates(self) -> list[Template]:
        return []

    def close(self) -> None:
        pass


def _identity(campaign: Campaign, env: Mapping[str, str]) -> set[str] | None:
    """What names the store a campaign uses, independent of how its path or ids are written; None: not known here
    (the stores' descriptions are compared instead)."""
    if campaign.store.backend == "sqlite":
        return {f"sqlite:{campaign.path(campaign.store.path).resolve()}"}
    if campaign.store.backend == "notion":
        from ..stores.notion import notion_settings

        settings = notion_settings(campaign, env)
        return {f"notion:{settings.base_url}/{database}" for database in settings.databases.values()}
    return None


def copy_between(
    config: Path, to_config: Path, env: Mapping[str, str], *, dry_run: bool = False, progress: Progress | None = None
) -> CopyReport:
    """`xmas store copy`: from the store `config` uses to the one `to_config` uses, holding both campaigns' tick
    locks (no tick sends while rows are copied). A dry run takes no lock and writes nothing anywhere."""
    from ..config import load_campaign
    from ..lock import file_lock
    from . import open_store

    if not to_config.is_file():
        raise ConfigError(
            f"--to-config {to_config}: no such file",
            "pass the campaign.toml of the store to copy into: its [store] says which store that is",
        )
    source_campaign = load_campaign(config, dict(env))
    target_campaign = load_campaign(to_config, dict(env))
    ours, theirs = _identity(source_campaign, env), _identity(target_campaign, env)
    if ours is not None and theirs is not None and ours & theirs:
        raise ConfigError(
            f"{config} and {to_config} use the same store: there is nothing to copy",
            "point --to-config at a campaign.toml whose [store] (path, or Notion database ids) is another store",
        )
    source = open_store(source_campaign, env)
    with ExitStack() as stack:
        stack.callback(source.close)
        db = target_campaign.path(target_campaign.store.path)
        target: _OpenTarget
        if dry_run and target_campaign.store.backend == "sqlite" and not db.exists():
            folder = FileTemplates(target_campaign.path(target_campaign.campaign.templates_dir))
            target = _Absent(f"SQLite {db} (not created yet)", folder)
        else:
            target = open_store(target_campaign, env)
        stack.callback(target.close)
        if (ours is None or theirs is None) and source.description == target.description:
            raise ConfigError(
                f"{config} and {to_config} both use {source.description}: there is nothing to copy",
                "point --to-config at a campaign.toml whose [store] is another store",
            )
        if not dry_run:
            locks = {c.path(c.tick.lock).resolve(): c.store.mode for c in (source_campaign, target_campaign)}
            for path, mode in locks.items():
                stack.enter_context(file_lock(path, what="tick", mode=mode))
        if (journal := journal_of(source)) is not None and journal.open_batches():
            raise Busy(
                f"{source.description} has a batch of emails in flight (sent, outcome not yet recorded): "
                "nothing was copied",
                "run `xmas tick` first so no batch is in flight, then copy again",
            )
        plan = plan_copy(source, target)
        unknown = sorted({r.sequence for r in plan.emails} - set(target_campaign.sequences))
        if unknown:
            plan.warnings.append(
                f"{to_config} has no sequence {', '.join(unknown)}: its tick will not send those rows "
                "until its campaign.toml has them"
            )
        if dry_run:
            return CopyReport(plan, dry_run=True)
        return copy_store(source, target, plan, progress=progress)
    raise AssertionError("unreachable")  # ExitStack does not swallow exceptions; mypy cannot know
