"""`xmas preview` and `xmas templates check`: render templates locally, with real or sample data."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import jinja2
from jinja2 import nodes

from ..clock import iso
from ..core.compose import compose
from ..core.model import TEMPLATE_NAME_FIX, ScheduledEmail, Template, template_file_name
from ..core.outgoing import OutgoingEmail, stored_address
from ..core.render import Rendered, render
from ..core.tokens import unsubscribe_url
from ..core.variables import SAMPLE, build_variables
from ..errors import JSON_VERSION, InvalidInput, NotFound, RenderError
from . import Engine, campaign_counts

PREVIEW_SECRET = "preview-only-secret-links-will-not-verify"


@dataclass(frozen=True)
class Preview:
    template_id: str
    origin: str
    data_source: str
    rendered: Rendered
    email: OutgoingEmail | None = None  # for a stored row: the very email the tick sends for it

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "version": JSON_VERSION,
            "ok": True,
            "template": self.template_id,
            "origin": self.origin,
            "data_source": self.data_source,
            "subject": self.rendered.subject,
            "html": self.rendered.html,
            "text": self.rendered.text,
        }
        if self.email is not None:
            e = self.email
            doc["email"] = {
                "row_id": e.row_id,
                "to": e.to,
                "from": e.sender,
                "reply_to": e.reply_to,
                "date": iso(e.date),
                "headers": e.headers,
                "tags": e.tags,
                "idempotency_key": e.idempotency_key,
            }
        return doc


def _template(engine: Engine, template_id: str) -> Template:
    template = engine.store.get_template(template_id)
    if template is None and template_file_name(template_id) is None and engine.campaign.store.backend != "notion":
        raise InvalidInput(f"{template_id!r} is not a template name in templates/", TEMPLATE_NAME_FIX)
    if template is None:
        raise NotFound(
            f"template {template_id!r} not found in {engine.store.description}",
            "check the name (xmas templates list shows them all)",
        )
    return template


def _others(engine: Engine) -> Callable[[str], Template | None]:
    """The store's templates by id, each read once: what `{% extends "layout" %}` finds."""
    seen: dict[str, Template | None] = {}

    def find(template_id: str) -> Template | None:
        if template_id not in seen:
            seen[template_id] = engine.store.get_template(template_id)
        return seen[template_id]

    return find


def _render_with(engine: Engine, template_id: str, data: dict[str, Any]) -> tuple[str, Rendered]:
    template = _template(engine, template_id)
    email = str(data.get("email") or SAMPLE["email"])
    url = unsubscribe_url(str(engine.campaign.campaign.public_url), engine.secret or PREVIEW_SECRET, email)
    variables = build_variables(data, engine.campaign, engine.clock.now(), url, campaign_counts(engine))
    return template.origin, render(template, variables, _others(engine))


def preview_row(engine: Engine, row: ScheduledEmail) -> Preview:
    """What the tick sends for `row`: the same compose step, data, due time, secret and counts."""
    template = _template(engine, row.template)
    contact = engine.store.get_contact(row.email)
    secret = engine.secret or PREVIEW_SECRET
    email = compose(row, contact, template, engine.campaign, secret, campaign_counts(engine), _others(engine))
    source = f"row {row.id} ({row.state.value}, due {iso(row.due)})"
    if not engine.secret:
        source += "; links signed with a preview-only secret (XMAS_SECRET is unset)"
    return Preview(template.id, template.origin, source, Rendered(email.subject, email.html, email.text), email)


def preview(
    engine: Engine,
    template_id: str | None,
    contact: str | None = None,
    data: dict[str, Any] | None = None,
    row_id: str | None = None,
) -> Preview:
    if row_id is not None:
        row = engine.store.emails_by_id([row_id]).get(row_id)
        if row is None:
            raise NotFound(
                f"no scheduled email with id {row_id!r} in {engine.store.description}",
                "xmas show EMAIL lists a contact's rows with their ids",
            )
        if template_id is not None and template_id != row.template:
            raise InvalidInput(
                f"row {row_id} sends {row.template}, not {template_id}", "leave out the template, or name the row's own"
            )
        return preview_row(engine, row)
    if template_id is None:
        raise InvalidInput("no template given", "name a template (xmas templates list), or give --row ID")
    if contact is not None:
        found = engine.store.get_contact(stored_address(contact))
        if found is None:
            raise NotFound(f"no contact with email {contact!r} in {engine.store.description}", "check the address")
        rows = [r for r in engine.store.emails_for_contact(found.email) if r.template == template_id]
        if rows:  # the contact's own email of this template: exactly what the tick sends (or sent)
            shown = preview_row(engine, max(rows, key=lambda r: r.due))
            return replace(shown, data_source=f"contact {found.email}: {shown.data_source}")
        merged: dict[str, Any] = {}
        for row in engine.store.emails_for_contact(found.email):
            merged.update(row.data)
        merged.update(found.fields)
        merged.update(email=found.email, segment=found.segment)
        source = f"contact {found.email} (no {template_id} row: their data as of now)"
    elif data is not None:
        merged, source = data, "data file"
    else:
        merged, source = dict(SAMPLE), "sample data"
    origin, rendered = _render_with(engine, template_id, merged)
    return Preview(template_id, origin, source, rendered)


@dataclass(frozen=True)
class CheckResult:
    template_id: str
    used_by: list[str]
    problem: str | None
    subject: str | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None


@dataclass(frozen=True)
class CheckReport:
    results: list[CheckResult]

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.results)

    def to_json(self) -> dict[str, Any]:
        return {
            "version": JSON_VERSION,
            "ok": self.ok,
            "templates": [
                {
                    "template": r.template_id,
                    "used_by": r.used_by,
                    "ok": r.ok,
                    "problem": r.problem,
                    "subject": r.subject,
                }
                for r in self.results
            ],
        }


# Sparse data: only what every enrollment has. Templates must guard everything else.
SPARSE = {"email": SAMPLE["email"], "first_name": SAMPLE["first_name"]}


def used_by(engine: Engine) -> dict[str, list[str]]:
    """Template id → the steps that send it ("assessment #2", "assessment #1 (website)")."""
    used: dict[str, list[str]] = {}
    for name, seq in engine.campaign.sequences.items():
        for number, step in enumerate(seq.steps, 1):
            used.setdefault(step.template, []).append(
                f"{name} #{number}" + (" (website)" if step.sent_by == "website" else "")
            )
    return used


@dataclass(frozen=True)
class Listed:
    template_id: str
    used_by: list[str]
    active: bool
    subject: str
    origin: str


def list_templates(engine: Engine) -> list[Listed]:
    """Every template in the store, and every one a step names that the store lacks (origin "missing")."""
    used = used_by(engine)
    known = {t.id: t for t in engine.store.list_templates()}
    for template_id, label in _layouts(known).items():
        used[template_id] = used.get(template_id, []) + label
    return [
        Listed(t, used.get(t, []), known[t].active, known[t].subject, known[t].origin)
        if t in known
        else Listed(t, used[t], False, "", "missing")
        for t in sorted(set(used) | set(known))
    ]


def _extended(template: Template) -> str | None:
    """The id of the template `template` extends (`{% extends "layout" %}`), if it names one plainly."""
    try:
        parsed = jinja2.Environment().parse(template.html)
    except jinja2.TemplateSyntaxError:
        return None  # rendering reports it, with its line
    for node in parsed.find_all(nodes.Extends):
        if isinstance(node.template, nodes.Const) and isinstance(node.template.value, str):
            return node.template.value
    return None


def _layouts(known: dict[str, Template]) -> dict[str, list[str]]:
    """Template id → "layout of N templates", for each template the others extend: no step sends a layout."""
    children: dict[str, int] = {}
    for template in known.values():
        parent = _extended(template)
        if parent is not None and parent != template.id:
            children[parent] = children.get(parent, 0) + 1
    return {t: [f"layout of {n} template{'s' if n != 1 else ''}"] for t, n in children.items()}


def check_templates(engine: Engine) -> CheckReport:
    """Every template a step sends must exist, be Active and render with full and with sparse data; each renders
    with the layout it extends, so a layout that lost the unsubscribe link fails every email that extends it."""
    used = used_by(engine)
    try:
        known = {t.id: t for t in engine.store.list_templates()}
    except RenderError as exc:
        return CheckReport([CheckResult("(templates)", [], str(exc))])
    for template_id, label in _layouts(known).items():
        used[template_id] = used.get(template_id, []) + label
    results: list[CheckResult] = []
    for template_id in sorted(set(used) | set(known)):
        template = known.get(template_id)
        if template is None:
            results.append(CheckResult(template_id, used[template_id], f"missing from {engine.store.description}"))
            continue
        if not template.active:
            results.append(CheckResult(template_id, used.get(template_id, []), "not Active"))
            continue
        try:
            _, full = _render_with(engine, template_id, dict(SAMPLE))  # with the layout it extends, if any
            _render_with(engine, template_id, dict(SPARSE))
        except RenderError as exc:
            results.append(CheckResult(template_id, used.get(template_id, []), str(exc)))
            continue
        unsub = "unsubscribe?t=" in full.html
        layout = _extended(template)
        where = f"the body or its layout {layout!r}" if layout is not None else "the body"
        problem = None if unsub else f"no unsubscribe link ({{{{ unsubscribe_url }}}}) in {where}"
        results.append(CheckResult(template_id, used.get(template_id, []), problem, full.subject))
    return CheckReport(results)
