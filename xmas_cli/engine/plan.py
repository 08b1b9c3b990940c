"""`xmas plan [--apply]`: campaign.toml compared with the rows in the store (core/plan.py), and the changes made.

Applying writes one row at a time under the contact's lock, after reading the contact's rows again: a row that is
no longer what the plan saw (sent by a tick meanwhile, paused by a person) is left alone and reported as skipped.
Every write carries its reason in the row's note; a second run finds nothing to do.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ..clock import iso
from ..core.model import State
from ..core.plan import ADD, CANCEL, RENAME, RETIME, Change, plan_changes
from ..errors import JSON_VERSION
from .base import Engine
from .enroll import contact_lock

WRITES = (RETIME, ADD, CANCEL, RENAME)


@dataclass(frozen=True)
class PlanResult:
    store: str
    now: datetime
    changes: list[Change]
    applied: bool = False
    skipped: list[str] = field(default_factory=list)  # applying: rows that changed since the plan was made

    @property
    def to_write(self) -> list[Change]:
        return [c for c in self.changes if c.kind in WRITES]

    def to_json(self) -> dict[str, Any]:
        counts: dict[str, int] = {}
        for change in self.changes:
            counts[change.kind] = counts.get(change.kind, 0) + 1
        return {
            "version": JSON_VERSION,
            "ok": True,
            "store": self.store,
            "now": iso(self.now),
            "applied": self.applied,
            "counts": counts,
            "changes": [c.to_json() for c in self.changes],
            "skipped": self.skipped,
        }


def plan(engine: Engine) -> PlanResult:
    """What campaign.toml means for the rows still Scheduled; nothing is written."""
    store, now = engine.store, engine.clock.now()
    templates = {t.id for t in store.list_templates()}
    suppressed = {c.email for c in store.all_contacts() if c.suppressed}
    changes = plan_changes(engine.campaign, store.all_emails(), templates, suppressed, now)
    return PlanResult(store.description, now, changes)


def apply_plan(engine: Engine, progress: Callable[[int], None] | None = None) -> PlanResult:
    """Make the plan's changes, each noted on its row; `progress(n)` after each one."""
    made = plan(engine)
    store = engine.store
    skipped: list[str] = []
    done: list[Change] = []
    for change in made.changes:
        if change.kind not in WRITES or change.row is None:
            done.append(change)
            continue
        with contact_lock(engine, change.email):
            now_rows = {r.id: r for r in store.emails_for_contact(change.email)}
            current = now_rows.get(change.row_id)
            if change.kind == ADD:
                store.add_email(change.row)  # a row with this id already there is left as it is
            elif current is None or current.state is not State.SCHEDULED or current.due != change.old_due:
                skipped.append(f"{change.row_id}: {current.state.value if current else 'gone'} since the plan")
                continue
            elif change.kind == CANCEL:
                store.update_email(current, {"state": State.CANCELLED, "note": change.detail})
            elif change.kind == RETIME:
                store.update_email(current, {"due": change.row.due, "note": change.detail})
            else:  # RENAME: the old row is cancelled first, so a crash in between can never leave both to send
                note = f"plan: template {current.template} renamed {change.template}: replaced by {change.row.id}"
                store.update_email(current, {"state": State.CANCELLED, "note": note})
                store.add_email(change.row)  # the next plan adds the same row (same id) should this not happen
        done.append(change)
        if progress is not None:
            progress(1)
    return PlanResult(made.store, made.now, done, applied=True, skipped=skipped)


CHECKED_FILE = "plan-checked"


def drift_warning(engine: Engine) -> str | None:
    """For `tick`: once after each edit of the sequences in campaign.toml, whether the rows still disagree with it.

    The first tick only records what the campaign is (`.xmas/plan-checked`, beside the tick's lock); a tick after
    the steps changed compares them with the rows (a full read, once) and returns a warning when a plan has
    something to do. None otherwise: the same campaign is never compared twice."""
    import hashlib
    import os

    from ..core.plan import fingerprint

    path = engine.lock_path(CHECKED_FILE)
    stamp = hashlib.sha256(fingerprint(engine.campaign).encode()).hexdigest()
    before = path.read_text(encoding="utf-8").strip() if path.exists() else None
    if before == stamp:
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, engine.campaign.store.mode)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(stamp + "\n")
    if before is None:
        return None
    writes = plan(engine).to_write
    if not writes:
        return None
    return (
        f"campaign.toml changed and {len(writes)} scheduled email(s) do not follow it yet "
        "(re-timed, added, removed or renamed steps): see `xmas plan`, then `xmas plan --apply`"
    )
