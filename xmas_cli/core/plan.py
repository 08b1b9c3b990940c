"""`xmas plan`: what campaign.toml, as it is now, means for the rows already written (pure).

Each enrollment's rows were planned with the campaign as it was then. For every enrollment the plan finds its
anchor (the payload's anchor field when the sequence has one, otherwise the time most of its rows agree on: each
row's planned due minus its step's offset now), matches each row to a step of the sequence (by template, else
by step number: a template renamed), and says what the change means for the rows still Scheduled:

- `retime`: the step's offset changed: the row's due moves (the catch-up rule holds: a due in the past becomes
  now, and the later pending emails of the enrollment come at least catch_up_gap apart);
- `add`: a step the sequence has and the enrollment lacks, for an enrollment still running (a Scheduled or Paused
  row), or finished (every email sent) when the new step is still ahead; never for one a rule or a person stopped;
- `cancel`: a row whose step the sequence no longer has;
- `rename`: the step's template is now another one;
- `paused`: a row a person paused that a change would touch: it is left as it is;
- `missing`: a template the campaign names that the store does not have (nothing can be done by the plan).

A row's planned due is read from its note where a rule moved it ("catch-up: planned T", "… was due T",
"plan: … planned T"), else it is its due; so rows the tick moved for a send window, the frequency cap or a hold
are not re-timed unless their step's offset changed, and a plan applied once finds nothing the second time.
Sent, failed, cancelled and skipped rows are never changed.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Collection, Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from .campaign import BROADCAST, Campaign, Sequence, Step
from .model import ScheduledEmail, Sender, State, row_id
from .schedule import catch_up

RETIME, ADD, CANCEL, RENAME, PAUSED, MISSING = "retime", "add", "cancel", "rename", "paused", "missing"
KINDS = (RETIME, ADD, CANCEL, RENAME, PAUSED, MISSING)
_PLANNED = re.compile(r"planned (\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)")
_WAS_DUE = re.compile(r"was due (\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)")
_OPEN = (State.SCHEDULED, State.PAUSED)


@dataclass(frozen=True)
class Change:
    kind: str  # one of KINDS
    sequence: str
    step: int
    template: str
    email: str = ""
    row_id: str = ""
    old_due: datetime | None = None
    new_due: datetime | None = None
    old_template: str | None = None
    detail: str = ""
    row: ScheduledEmail | None = None  # the row to write: updated (retime, rename), new (add) or to cancel

    def to_json(self) -> dict[str, Any]:
        from .instants import iso

        return {
            "kind": self.kind,
            "sequence": self.sequence,
            "step": self.step,
            "template": self.template,
            "email": self.email or None,
            "row_id": self.row_id or None,
            "old_due": iso(self.old_due),
            "new_due": iso(self.new_due),
            "old_template": self.old_template,
            "detail": self.detail,
        }


def planned_due(row: ScheduledEmail) -> datetime:
    """When the campaign planned this row, before a rule (catch-up, window, cap, hold) moved it."""
    note = row.note or ""
    found = _PLANNED.search(note) or _WAS_DUE.search(note)
    if found:
        return datetime.fromisoformat(found.group(1).replace("Z", "+00:00"))
    return row.due


def _stamp(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def _anchor(campaign: Campaign, sequence: Sequence, rows: list[ScheduledEmail], steps: dict[str, int]) -> datetime:
    """The enrollment's anchor: the payload's field, else the time most rows agree on (earliest step wins a tie)."""
    data = rows[0].data
    if sequence.anchor and isinstance(data.get(sequence.anchor), str):
        try:
            value = datetime.fromisoformat(str(data[sequence.anchor]).replace("Z", "+00:00"))
            if value.tzinfo is not None:
                return value
        except ValueError:
            pass
    votes: Counter[datetime] = Counter()
    first: dict[datetime, int] = {}
    for row in rows:
        number = steps.get(row.template, row.step)
        if 1 <= number <= len(sequence.steps):
            candidate = planned_due(row) - sequence.steps[number - 1].delay(campaign.testing)
            votes[candidate] += 1
            first[candidate] = min(first.get(candidate, number), number)
    if not votes:
        return planned_due(min(rows, key=lambda r: r.step))
    return max(votes, key=lambda c: (votes[c], -first[c]))


def _match(sequence: Sequence, rows: list[ScheduledEmail]) -> dict[str, int]:
    """Row id → the step number (1-based) it belongs to now; rows of a removed step are left out."""
    by_template = {step.template: n for n, step in enumerate(sequence.steps, 1)}
    out: dict[str, int] = {}
    taken: set[int] = set()
    for row in rows:
        if row.template in by_template:
            out[row.id] = by_template[row.template]
            taken.add(out[row.id])
    for row in sorted(rows, key=lambda r: r.step):
        if row.id not in out and 1 <= row.step <= len(sequence.steps) and row.step not in taken:
            renamed = sequence.steps[row.step - 1].template
            if not any(r.template == renamed for r in rows):
                out[row.id] = row.step
                taken.add(row.step)
    return out


def _of_row(
    kind: str,
    name: str,
    number: int,
    template: str,
    row: ScheduledEmail,
    new_due: datetime | None,
    detail: str,
    *,
    was: str | None = None,
    new: ScheduledEmail | None = None,
) -> Change:
    """A change to a stored row (cancel, paused, rename, retime): its address, id and old due are the row's; `was`
    its template where the change names it, `new` the row to write."""
    return Change(kind, name, number, template, row.email, row.id, row.due, new_due, was, detail, new)


def _enrollment(
    campaign: Campaign, name: str, rows: list[ScheduledEmail], suppressed: bool, now: datetime
) -> list[Change]:
    sequence = campaign.sequences[name]
    matched = _match(sequence, rows)
    anchor = _anchor(campaign, sequence, rows, {r.template: n for r in rows if (n := matched.get(r.id))})
    gap = campaign.catch_up_gap
    changes: list[Change] = []
    pending: list[tuple[int, datetime, ScheduledEmail, Step]] = []  # (step number, planned due, row, step)
    for row in rows:
        number = matched.get(row.id)
        if number is None:
            if row.state is State.SCHEDULED:
                note = f"plan: step removed from [sequences.{name}] in campaign.toml"
                changes.append(_of_row(CANCEL, name, row.step, row.template, row, None, note, new=row))
            elif row.state is State.PAUSED:
                detail = "its step was removed; paused by a person: left as it is"
                changes.append(_of_row(PAUSED, name, row.step, row.template, row, None, detail))
            continue
        step = sequence.steps[number - 1]
        if row.state is State.SCHEDULED:
            target = anchor + step.delay(campaign.testing)
            # a row that is due already (overdue, or retried by an operator) stays due: the tick sends it now
            changed = target != planned_due(row) and not (target <= now and row.due <= now)
            pending.append((number, target if changed else row.due, row, step))
        elif row.state is State.PAUSED:
            target = anchor + step.delay(campaign.testing)
            if target != planned_due(row) or row.template != step.template:
                detail = "paused by a person: left as it is"
                changes.append(_of_row(PAUSED, name, number, step.template, row, target, detail, was=row.template))
    have = set(matched.values())
    running = any(r.state in _OPEN for r in rows)
    # finished: every email went (rows the plan itself cancelled aside); a stopped enrollment gets nothing new
    finished = all(r.state in (State.SENT, State.SENT_BY_WEBSITE) or (r.note or "").startswith("plan:") for r in rows)
    key, sample = rows[0].enrollment_key, rows[0]
    ids = {r.id for r in rows}
    for number, step in enumerate(sequence.steps, 1):
        if number in have or step.sent_by is Sender.WEBSITE:
            continue
        target = anchor + step.delay(campaign.testing)
        if not (running or (finished and target > now)):
            continue
        new_id = row_id(key, number)
        if new_id in ids:  # the number belongs to another (moved) step's row: a stable id of its own
            new_id = f"{new_id}.{step.template}"
        new = ScheduledEmail(
            new_id, key, sample.email, name, number, step.template, Sender.XMAS, target, data=dict(sample.data)
        )
        if suppressed:
            skipped = replace(new, state=State.SKIPPED, note="contact is unsubscribed")
            detail = "a step added to the sequence; the contact is unsubscribed: Skipped"
            changes.append(
                Change(ADD, name, number, step.template, sample.email, new_id, None, target, None, detail, skipped)
            )
        else:
            pending.append((number, target, new, step))
    pending.sort(key=lambda p: p[0])
    dues = catch_up([target for _, target, _, _ in pending], now, gap)
    moved = False
    for (number, target, row, step), due in zip(pending, dues, strict=True):
        if row.state is State.SCHEDULED and row.id in matched:  # an existing row
            retimed = target != row.due
            pushed = moved and due > row.due  # the catch-up gap after an earlier change
            if not (retimed or pushed) and row.template == step.template:
                continue
            new_due = due if (retimed or pushed) else row.due
            moved = moved or new_due != row.due
            if row.template != step.template:  # a row keeps its template: a replacement row takes the new one
                note = f"plan: template {row.template} renamed {step.template}; planned {_stamp(target)}"
                new_row = ScheduledEmail(
                    f"{row.id}.{step.template}",
                    row.enrollment_key,
                    row.email,
                    name,
                    number,
                    step.template,
                    Sender.XMAS,
                    new_due,
                    note=note,
                    data=dict(row.data),
                )
                changes.append(
                    _of_row(RENAME, name, number, step.template, row, new_due, note, was=row.template, new=new_row)
                )
                continue
            note = f"plan: re-timed from {_stamp(row.due)}; planned {_stamp(target)}"
            updated = replace(row, due=new_due, note=note)
            changes.append(_of_row(RETIME, name, number, step.template, row, new_due, note, new=updated))
        else:  # a new row
            note = f"plan: step added; planned {_stamp(target)}"
            added = replace(row, due=due, note=note)
            moved = True
            changes.append(Change(ADD, name, number, step.template, row.email, row.id, None, due, None, note, added))
    return changes


def plan_changes(
    campaign: Campaign,
    rows: Iterable[ScheduledEmail],
    templates: Collection[str] | None,
    suppressed: Collection[str],
    now: datetime,
) -> list[Change]:
    """Every change campaign.toml means for the stored rows, by sequence, step and contact. `templates`: the ids the
    store has (None: not known, not checked); `suppressed`: the addresses that get no email."""
    by_key: dict[str, list[ScheduledEmail]] = {}
    for row in rows:
        if row.sequence in campaign.sequences and row.sequence != BROADCAST and not row.defect:  # not broadcasts
            by_key.setdefault(row.enrollment_key, []).append(row)
    changes: list[Change] = []
    for key in sorted(by_key):
        group = sorted(by_key[key], key=lambda r: (r.step, r.id))
        changes += _enrollment(campaign, group[0].sequence, group, group[0].email in suppressed, now)
    if templates is not None:
        for name, sequence in campaign.sequences.items():
            for number, step in enumerate(sequence.steps, 1):
                if step.sent_by is Sender.XMAS and step.template not in templates:
                    detail = f"the store has no template {step.template!r}: push it (xmas templates push)"
                    changes.append(Change(MISSING, name, number, step.template, detail=detail))
    order = {name: n for n, name in enumerate(campaign.sequences)}
    return sorted(changes, key=lambda c: (order[c.sequence], c.step, KINDS.index(c.kind), c.email, c.row_id))


def fingerprint(campaign: Campaign) -> str:
    """What of campaign.toml a plan depends on, as one string (a changed campaign: plan again)."""
    parts = [campaign.catch_up_gap.total_seconds().__repr__(), repr(campaign.testing)]
    for name, sequence in campaign.sequences.items():
        parts.append(
            f"{name}:{sequence.anchor}:"
            + ",".join(f"{s.template}@{s.delay(campaign.testing)}@{s.sent_by}" for s in sequence.steps)
        )
    return "|".join(parts)
