"""`xmas preview` and `xmas templates check`: render templates locally, with real or sample data."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .engine import Engine, campaign_counts
from .errors import JSON_VERSION, NotFound, RenderError
from .render import Rendered, render
from .tokens import unsubscribe_url
from .variables import SAMPLE, build_variables

PREVIEW_SECRET = "preview-only-secret-links-will-not-verify"


@dataclass(frozen=True)
class Preview:
    template_id: str
    origin: str
    data_source: str
    rendered: Rendered


def _render_with(engine: Engine, template_id: str, data: dict[str, Any]) -> tuple[str, Rendered]:
    template = engine.store.get_template(template_id)
    if template is None:
        raise NotFound(
            f"template {template_id!r} not found in {engine.store.description}",
            "check the name (xmas templates check lists them all)",
        )
    email = str(data.get("email") or SAMPLE["email"])
    url = unsubscribe_url(str(engine.campaign.campaign.public_url), engine.secret or PREVIEW_SECRET, email)
    variables = build_variables(data, engine.campaign, engine.clock.now(), url, campaign_counts(engine))
    return template.origin, render(template, variables)


def preview(
    engine: Engine, template_id: str, contact: str | None = None, data: dict[str, Any] | None = None
) -> Preview:
    if contact is not None:
        found = engine.store.get_contact(contact.strip().lower())
        if found is None:
            raise NotFound(f"no contact with email {contact!r} in {engine.store.description}", "check the address")
        merged: dict[str, Any] = {}
        for row in engine.store.emails_for_contact(found.email):
            merged.update(row.data)
        merged.update(found.fields)
        merged.update(email=found.email, segment=found.segment)
        source = f"contact {found.email}"
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
    return [
        Listed(t, used.get(t, []), known[t].active, known[t].subject, known[t].origin)
        if t in known
        else Listed(t, used[t], False, "", "missing")
        for t in sorted(set(used) | set(known))
    ]


def check_templates(engine: Engine) -> CheckReport:
    """Every template a step sends must exist, be Active and render with full and with sparse data."""
    used = used_by(engine)
    try:
        known = {t.id: t for t in engine.store.list_templates()}
    except RenderError as exc:
        return CheckReport([CheckResult("(templates)", [], str(exc))])
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
            _, full = _render_with(engine, template_id, dict(SAMPLE))
            _render_with(engine, template_id, dict(SPARSE))
        except RenderError as exc:
            results.append(CheckResult(template_id, used.get(template_id, []), str(exc)))
            continue
        unsub = "unsubscribe?t=" in full.html
        problem = None if unsub else "no unsubscribe link ({{ unsubscribe_url }}) in the body"
        results.append(CheckResult(template_id, used.get(template_id, []), problem, full.subject))
    return CheckReport(results)
