"""How a tick sends what is ready and records each outcome: through the batch journal where the store keeps
one (record the batch, send it under its key, close or defer it; replay what an earlier tick left open), or row by
row under each row's own key."""

from __future__ import annotations

from ..clock import iso
from ..core import journal
from ..core.model import ScheduledEmail, State
from ..core.outgoing import OutgoingEmail, SendResult, batch_key
from ..core.variants import variant_of
from ..stores.base import Batch, BatchJournal, Changes
from .report import Outcome
from .state import KEY_MARGIN, TickState, backoff

Ready = list[tuple[ScheduledEmail, OutgoingEmail]]  # due rows and their emails, rendered


def row_changes(
    t: TickState, row: ScheduledEmail, result: SendResult, attempts: int, final: bool
) -> tuple[str, str, Changes]:
    """(action, detail, changes) for one row's result. `final`: a transient error is not retried any more."""
    if result.ok:
        note = result.note
        if row.state is not State.SCHEDULED:  # a person changed it after its batch was recorded
            note = f"{note + '; ' if note else ''}sent with its batch, recorded before it was set {row.state.value}"
        changes: Changes = {
            "state": State.SENT,
            "sent_at": t.now,
            "message_id": result.message_id,
            "attempts": attempts,
            "last_error": None,
            "note": note,
        }
        if variant := variant_of(row, t.campaign):  # the subject experiment's variant it went with
            changes["variant"] = variant
        return "sent", note or str(result.message_id), changes
    why = result.error or "unknown error"
    if result.permanent or final:
        if not result.permanent:
            why = f"{why} (gave up after {attempts} attempts)"
        return "failed", why, {"state": State.FAILED, "attempts": attempts, "last_error": why}
    retry_at = t.now + backoff(attempts)
    return (
        "retry",
        f"{why}; next attempt at {iso(retry_at)}",
        {
            "attempts": attempts,
            "last_error": why,
            "due": retry_at,
        },
    )


def outcome(t: TickState, row: ScheduledEmail, result: SendResult) -> None:
    """One row sent under its own key (no journal): record its outcome on its row."""
    if not result.attempted:
        t.record(row, "retry", str(result.error), {"last_error": result.error})
        return
    attempts = row.attempts + 1
    action, detail, changes = row_changes(t, row, result, attempts, attempts >= t.campaign.mailer.max_attempts)
    t.record(row, action, detail, changes)


# ------------------------------------------------------------------------------ the journal


def send_journaled(
    t: TickState, batches: BatchJournal, batch: Batch, emails: list[OutgoingEmail], rows: dict[str, ScheduledEmail]
) -> None:
    """Send a recorded batch under its key and record the outcome: all members at once (close), or, when the
    request failed as a whole, keep it open for a later tick with its attempts counted (defer)."""
    key = batch.key if len(emails) > 1 else None
    results = t.engine.mailer.send(emails, batch_key=key)
    t.sends += 1
    attempts = batch.attempts + 1
    unknown = [r for r in results if not r.ok and not r.permanent]
    out_of_attempts = attempts >= t.campaign.mailer.max_attempts
    members = [(rows.get(e.row_id), result) for e, result in zip(emails, results, strict=True)]
    if unknown and not out_of_attempts:  # no verdict: the same request goes again later, as it is
        retry_at = t.now + backoff(attempts)
        why = unknown[0].error or "unknown error"
        deferred = Batch(batch.key, batch.row_ids, batch.emails, batch.opened_at, attempts, retry_at, why)
        updates: list[tuple[ScheduledEmail, Changes]] = [
            (row, {"attempts": attempts, "last_error": why, "due": retry_at}) for row, _ in members if row
        ]
        batches.defer_batch(deferred, updates)
        for row, _ in members:
            if row:
                t.report.outcomes.append(Outcome(row, "retry", f"{why}; batch sent again at {iso(retry_at)}"))
        return
    outcomes: list[tuple[ScheduledEmail, Changes]] = []
    for row, result in members:
        if row is None:
            continue
        action, detail, changes = row_changes(t, row, result, attempts, final=True)
        outcomes.append((row, changes))
        t.report.outcomes.append(Outcome(row, action, detail))
    batches.close_batch(batch.key, outcomes)


def replay(t: TickState, batches: BatchJournal, batch: Batch) -> None:
    """A batch an earlier tick recorded but did not finish: send exactly it again under its key."""
    if batch.retry_at is not None and batch.retry_at > t.now:
        return
    if t.engine.claims is not None:  # another runner's: only once its lease has ended, and only if we win it
        if batch.lease_until is not None and batch.lease_until > t.now:
            return
        if t.claims is not None and not t.claims.take_batch(batch.key, t.runner, t.now, t.lease_until):
            return
    rows = t.store.emails_by_id(batch.row_ids)
    members = [rows[i] for i in batch.row_ids if i in rows]
    t.report.due += len(members)
    ttl = t.engine.mailer.key_ttl if not t.dry_run else None
    expired = ttl is not None and t.now - batch.opened_at >= ttl - KEY_MARGIN
    try:
        emails = journal.decode(batch.emails)
    except ValueError as exc:
        give_up(t, batches, batch, members, f"its batch cannot be sent again: {exc}")
        return
    if expired:
        give_up(
            t,
            batches,
            batch,
            members,
            f"delivery unknown: its batch was recorded at {iso(batch.opened_at)}, the tick sending it stopped "
            "before the outcome was recorded, and the provider's idempotency key has expired since, so it is "
            "not sent again blind; check the provider's log and run `xmas retry` if it never arrived",
        )
    elif t.dry_run:
        detail = f"batch recorded at {iso(batch.opened_at)}, outcome unknown: sent again under its key"
        t.report.outcomes.extend(Outcome(row, "would-replay", detail) for row in members)
    else:
        send_journaled(t, batches, batch, emails, rows)


def give_up(t: TickState, batches: BatchJournal, batch: Batch, members: list[ScheduledEmail], why: str) -> None:
    if t.dry_run:
        t.report.outcomes.extend(Outcome(row, "would-fail", why) for row in members)
        return
    batches.close_batch(batch.key, [(row, {"state": State.FAILED, "last_error": why}) for row in members])
    t.report.outcomes.extend(Outcome(row, "failed", why) for row in members)


def send_group(t: TickState, group: Ready) -> None:
    """Send up to max_batch ready emails: through the journal where the store keeps one, else row by row."""
    if (batches := t.journal) is not None:
        while group:
            ids = [row.id for row, _ in group]
            emails = [email for _, email in group]
            key = batch_key(t.campaign.campaign.name, ids)
            batch = Batch(key, ids, journal.encode(emails), t.now, owner=t.runner, lease_until=t.lease_until)
            taken = set(batches.open_batch(batch))
            if not taken:
                send_journaled(t, batches, batch, emails, {row.id: row for row, _ in group})
                return
            group = [item for item in group if item[0].id not in taken]  # changed meanwhile: left alone
        return
    results = t.engine.mailer.send([email for _, email in group])
    t.sends += 1
    for (row, _), result in zip(group, results, strict=True):
        outcome(t, row, result)
