"""`xmas tick`: send every due email once, record each outcome on its row.

lock → query due rows (the store filters and sorts) → skip the suppressed → catch-up → render →
send in batches → record. A failed render or send marks its row and the tick moves on.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from .clock import iso
from .engine import Engine, campaign_counts
from .errors import JSON_VERSION, RenderError
from .lock import file_lock
from .mailers.base import OutgoingEmail, SendResult, batch_key, idempotency_key
from .model import Contact, ScheduledEmail, State, Template
from .render import render, variables_used
from .stores.base import Changes
from .tokens import check_secret, unsubscribe_url
from .variables import Counts, build_variables

Progress = Callable[[int, int], None]
COUNTED = frozenset({"spots_remaining", "bookings_count"})
DRY_RUN = {
    "sent": "would-send",
    "skipped": "would-skip",
    "failed": "would-fail",
    "waiting": "would-wait",
    "deferred": "would-defer",
    "retry": "would-retry",
}


@dataclass(frozen=True)
class Outcome:
    row: ScheduledEmail
    action: str  # sent | skipped | failed | waiting | retry | deferred | would-send | would-...
    detail: str = ""


@dataclass
class TickReport:
    now: datetime
    dry_run: bool
    due: int = 0
    outcomes: list[Outcome] = field(default_factory=list)
    left_over: int = 0  # due rows not reached because the time budget ran out

    def count(self, action: str) -> int:
        return sum(1 for o in self.outcomes if o.action == action)

    @property
    def ok(self) -> bool:
        return not any(o.action in ("failed", "waiting", "retry", "would-fail", "would-wait") for o in self.outcomes)

    def summary(self) -> str:
        order = (
            "sent",
            "would-send",
            "skipped",
            "would-skip",
            "deferred",
            "would-defer",
            "retry",
            "waiting",
            "would-wait",
            "failed",
            "would-fail",
        )
        parts = [f"{self.count(a)} {a}" for a in order if self.count(a)]
        if self.left_over:
            parts.append(f"{self.left_over} left for the next tick (time budget)")
        head = f"tick {iso(self.now)}{' (dry run)' if self.dry_run else ''}: {self.due} due"
        return head + (": " + ", ".join(parts) if parts else "")

    def to_json(self) -> dict[str, Any]:
        return {
            "version": JSON_VERSION,
            "ok": self.ok,
            "now": iso(self.now),
            "dry_run": self.dry_run,
            "due": self.due,
            "left_over": self.left_over,
            "outcomes": [
                {
                    "id": o.row.id,
                    "email": o.row.email,
                    "sequence": o.row.sequence,
                    "step": o.row.step,
                    "template": o.row.template,
                    "action": o.action,
                    "detail": o.detail,
                }
                for o in self.outcomes
            ],
        }


def _tag(value: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "_", value)[:256]


def backoff(attempts: int) -> timedelta:
    """Wait before the next attempt after a transient failure: 1, 2, 4 … minutes, at most an hour."""
    return timedelta(minutes=min(60, 2 ** max(0, attempts - 1)))


class _Tick:
    def __init__(self, engine: Engine, now: datetime, dry_run: bool) -> None:
        self.engine = engine
        self.campaign = engine.campaign
        self.store = engine.store
        self.now = now
        self.dry_run = dry_run
        self.templates: dict[str, Template | None] = {}
        self.report = TickReport(now=now, dry_run=dry_run)
        self._counts: Counts | None = None

    def counts(self, template: Template) -> Counts:
        """Campaign counts from the store, read once per tick and only for a template that shows them."""
        if not variables_used(template) & COUNTED:
            return Counts()
        if self._counts is None:
            self._counts = campaign_counts(self.engine)
        return self._counts

    def record(self, row: ScheduledEmail, action: str, detail: str, changes: Changes) -> None:
        if self.dry_run:
            action = DRY_RUN[action]
        else:
            self.store.update_email(row, changes)
        self.report.outcomes.append(Outcome(row, action, detail))

    def template(self, template_id: str) -> Template | None:
        if template_id not in self.templates:
            self.templates[template_id] = self.store.get_template(template_id)
        return self.templates[template_id]

    def prepare(self, row: ScheduledEmail, contact: Contact | None, secret: str) -> OutgoingEmail | None:
        sequence = self.campaign.sequences.get(row.sequence)
        if sequence is None:  # a row a person edited in the store: it waits, visibly, until someone decides
            why = f"sequence {row.sequence!r} is not in campaign.toml"
            self.record(row, "waiting", why, {"last_error": f"{why}: the email waits"})
            return None
        template = self.template(row.template)
        if template is None or not template.active:
            why = "missing" if template is None else "not Active"
            self.record(
                row,
                "waiting",
                f"template {row.template} is {why} in {self.store.description}",
                {"last_error": f"template {row.template} is {why}: the email waits until it exists"},
            )
            return None
        data = {**row.data, **(contact.fields if contact else {})}
        if contact and contact.segment:
            data["segment"] = contact.segment
        url = unsubscribe_url(str(self.campaign.campaign.public_url), secret, row.email)
        try:
            # rendered as of the row's due time, not the tick's: a retry renders the same bytes under the same key
            rendered = render(template, build_variables(data, self.campaign, row.due, url, self.counts(template)))
        except RenderError as exc:
            self.record(row, "failed", str(exc), {"state": State.FAILED, "last_error": str(exc)})
            return None
        sender = self.campaign.sender
        headers = {"List-Unsubscribe": f"<{url}>"}
        if sender.unsubscribe_mailto:
            headers["List-Unsubscribe"] += f", <mailto:{sender.unsubscribe_mailto}?subject=unsubscribe>"
        if not sequence.transactional:
            headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        return OutgoingEmail(
            row_id=row.id,
            idempotency_key=idempotency_key(self.campaign.campaign.name, row.id),
            to=row.email,
            sender=sender.from_,
            reply_to=str(sender.reply_to),
            subject=rendered.subject,
            html=rendered.html,
            text=rendered.text,
            date=row.due,
            headers=headers,
            tags={"campaign": _tag(self.campaign.campaign.name), "sequence": _tag(row.sequence), "step": str(row.step)},
        )

    def outcome(self, row: ScheduledEmail, result: SendResult) -> None:
        if not result.attempted:
            self.record(row, "retry", str(result.error), {"last_error": result.error})
            return
        attempts = row.attempts + 1
        if result.ok:
            self.record(
                row,
                "sent",
                result.note or str(result.message_id),
                {
                    "state": State.SENT,
                    "sent_at": self.now,
                    "message_id": result.message_id,
                    "attempts": attempts,
                    "last_error": None,
                    "note": result.note,
                },
            )
        elif result.permanent or attempts >= self.campaign.mailer.max_attempts:
            why = result.error or "unknown error"
            if not result.permanent:
                why = f"{why} (gave up after {attempts} attempts)"
            self.record(row, "failed", why, {"state": State.FAILED, "attempts": attempts, "last_error": why})
        else:
            retry_at = self.now + backoff(attempts)
            self.record(
                row,
                "retry",
                f"{result.error}; next attempt at {iso(retry_at)}",
                {"attempts": attempts, "last_error": result.error, "due": retry_at},
            )


def tick(
    engine: Engine,
    *,
    dry_run: bool = False,
    limit: int | None = None,
    progress: Progress | None = None,
    monotonic: Callable[[], float] = time.monotonic,
) -> TickReport:
    now = engine.clock.now()
    with file_lock(engine.campaign.path(engine.campaign.tick.lock), what="tick"):
        return _run(_Tick(engine, now, dry_run), limit, progress, monotonic)


def _run(t: _Tick, limit: int | None, progress: Progress | None, monotonic: Callable[[], float]) -> TickReport:
    started = monotonic()
    due = list(t.store.due_emails(t.now, limit))
    t.report.due = len(due)
    if not due:
        return t.report
    secret = check_secret(t.engine.secret)
    campaign = t.campaign
    contacts = t.store.get_contacts({r.email for r in due})
    ready: list[tuple[ScheduledEmail, OutgoingEmail]] = []
    deferred_in: dict[str, int] = {}
    for row in due:
        contact = contacts.get(row.email)
        if contact is not None and contact.suppressed:
            why = f"contact is suppressed ({contact.suppressed_reason or 'unsubscribed'})"
            t.record(row, "skipped", why, {"state": State.SKIPPED, "note": why})
            continue
        if row.enrollment_key in deferred_in:  # catch-up: one email per enrollment per tick
            deferred_in[row.enrollment_key] += 1
            new_due = t.now + campaign.catch_up_gap * deferred_in[row.enrollment_key]
            t.record(
                row,
                "deferred",
                f"catch-up: moved to {iso(new_due)}",
                {"due": new_due, "note": f"catch-up: was due {iso(row.due)}"},
            )
            continue
        deferred_in[row.enrollment_key] = 0
        email = t.prepare(row, contact, secret)
        if email is not None:
            ready.append((row, email))
    if t.dry_run:
        for row, email in ready:
            t.report.outcomes.append(Outcome(row, "would-send", f"to {email.to}: {email.subject}"))
        return t.report
    done = 0
    for chunk, key in _batches(t, ready):
        if monotonic() - started > campaign.tick.budget_seconds:
            t.report.left_over = len(ready) - done
            break
        results = t.engine.mailer.send([email for _, email in chunk], batch_key=key)
        for (row, _), result in zip(chunk, results, strict=True):
            t.outcome(row, result)
        done += len(chunk)
        if progress:
            progress(done, len(ready))
    return t.report


Ready = list[tuple[ScheduledEmail, OutgoingEmail]]


def _batches(t: _Tick, ready: Ready) -> Iterator[tuple[Ready, str | None]]:
    """Group ready emails into the requests the mailer will make.

    Without batching (Notion, or a one-at-a-time mailer) each email goes under its own row key.
    With batching, a batch's membership is recorded in the store before it is sent and its key is
    derived from that membership, so a retry after a crash re-sends exactly the same members under
    the same key: rows already recorded in a batch are regrouped as they were; new rows are grouped,
    recorded, then sent.
    """
    size = t.engine.mailer.max_batch
    if size == 1 or not t.store.supports_batches:
        for start in range(0, len(ready), size):
            yield ready[start : start + size], None
        return
    name = t.campaign.campaign.name
    earlier: dict[str, Ready] = {}
    fresh: Ready = []
    for item in ready:
        if item[0].batch:
            earlier.setdefault(item[0].batch, []).append(item)
        else:
            fresh.append(item)
    for group in earlier.values():  # sorted by id, as when first sent: same members, same order, same key
        yield sorted(group, key=lambda item: item[0].id), batch_key(name, [row.id for row, _ in group])
    fresh.sort(key=lambda item: item[0].id)
    for start in range(0, len(fresh), size):
        chunk = fresh[start : start + size]
        key = batch_key(name, [row.id for row, _ in chunk])
        t.store.assign_batch(key, [row for row, _ in chunk])
        yield chunk, key
