"""The route table and its handlers: the Kestra and bearer enrollments, events, unsubscribe, the Resend and
Calendly webhooks, and the health check. A handler returns an Answer or raises (Refused, or an XmasError)."""

from __future__ import annotations

import hmac
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any
from urllib.parse import parse_qs

from .. import engine as core
from ..backends import config_path, engine_from_config, received_reader
from ..config import load_campaign
from ..core.tokens import check_secret, read_token
from ..engine import Engine
from ..errors import InvalidInput, Unauthorized
from ..inbound.calendly import SIGNATURE_HEADER, handle_calendly_webhook
from ..inbound.resend_events import handle_resend_webhook
from .pages import unsubscribe_page, unsubscribed_page
from .request import Answer, Refused, Request, json_answer, parse_json, read_body

KESTRA_PREFIX = "/api/v1/executions/webhook/christmas/handlers/"
# The old Kestra handler names → (sequence, suffix of its key's environment variable XMAS_WEBHOOK_KEY_<SUFFIX>).
HANDLERS: dict[str, tuple[str, str]] = {
    "signup-handler": ("signup", "SIGNUP"),
    "assessment-handler": ("assessment", "ASSESSMENT"),
    "noshow-recovery-handler": ("noshow", "NOSHOW"),
    "postcall-maybe-handler": ("postcall", "POSTCALL"),
    "onboarding-handler": ("onboarding", "ONBOARDING"),
}


# ---------------------------------------------------------------------------------------------- engine


@contextmanager
def _engine(req: Request) -> Iterator[Engine]:
    engine = engine_from_config(req.config, None, req.env)  # a bad XMAS_NOW is a ConfigError: the server's fault
    try:
        yield engine
    finally:
        engine.close()


def _same(given: str, secret: str) -> bool:
    """Constant-time comparison of a credential from the request (a WSGI latin-1 string) with a secret."""
    return hmac.compare_digest(given.encode("latin-1", "replace"), secret.encode("utf-8", "surrogateescape"))


def _enroll(req: Request, sequence: str) -> Answer:
    raw = parse_json(read_body(req, required=True, json_only=True))
    with _engine(req) as engine:
        result = core.enroll(engine, sequence, raw)
    return json_answer(200, result.to_json())


# ---------------------------------------------------------------------------------------------- routes


def _kestra_enroll(req: Request, *, sequence: str, suffix: str, key: str, secret: str) -> Answer:
    if not _same(key, secret):
        raise Refused(
            401,
            Unauthorized(
                "wrong webhook key in the URL", f"use the key set in XMAS_WEBHOOK_KEY_{suffix} or XMAS_WEBHOOK_KEY"
            ),
        )
    return _enroll(req, sequence)


def _check_bearer(req: Request, secret: str) -> None:
    scheme, _, token = req.header("Authorization").strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip() or not _same(token.strip(), secret):
        raise Refused(
            401,
            Unauthorized("missing or wrong bearer token", "send Authorization: Bearer <the value of XMAS_API_TOKEN>"),
            [("WWW-Authenticate", 'Bearer realm="xmas"')],
        )


def _bearer_enroll(req: Request, *, sequence: str, secret: str) -> Answer:
    _check_bearer(req, secret)
    return _enroll(req, sequence)


def _bearer_event(req: Request, *, name: str, secret: str) -> Answer:
    """POST /events/NAME {"email", "at"?, "data"?, "key"?}: what `xmas event` records."""
    from ..inbound.events import record_from_request

    _check_bearer(req, secret)
    raw = parse_json(read_body(req, required=True, json_only=True))
    with _engine(req) as engine:
        result = record_from_request(engine, name, raw)
    return json_answer(200, result.to_json())


PAUSE_FIELDS = {"/pause": ("sequence", "reason"), "/resume": ("sequence", "discard_missed")}


def _bearer_pause(req: Request, *, secret: str) -> Answer:
    """POST /pause {"sequence"?, "reason"?} and POST /resume {"sequence"?, "discard_missed"?}: what `xmas pause`
    and `xmas resume` do, for the website."""
    from ..engine import control

    _check_bearer(req, secret)
    body = read_body(req, required=False, json_only=True)
    raw = parse_json(body) if body else {}
    allowed = PAUSE_FIELDS[req.path]
    if not isinstance(raw, dict):
        raise InvalidInput("the body must be a JSON object", f"send {{{', '.join(allowed)}}} or nothing")
    problems = [(str(k), "is not a field here") for k in raw if k not in allowed]
    sequence, extra = raw.get("sequence"), raw.get(allowed[1])
    if sequence is not None and not isinstance(sequence, str):
        problems.append(("sequence", "is not text"))
    if req.path == "/pause" and extra is not None and not isinstance(extra, str):
        problems.append(("reason", "is not text"))
    if req.path == "/resume" and extra is not None and not isinstance(extra, bool):
        problems.append(("discard_missed", "is not true or false"))
    if problems:
        raise InvalidInput(f"invalid {req.path.strip('/')} request", f"send only {', '.join(allowed)}", problems)
    with _engine(req) as engine:
        if req.path == "/pause":
            result = control.pause(engine, sequence, extra, by="web")
        else:
            result = control.resume(engine, sequence, bool(extra), by="web")
    return json_answer(200, result.to_json())


def _token(req: Request, form: Mapping[str, list[str]]) -> tuple[str, str]:
    """The unsubscribe token (from ?t=, else the form's t) and the address it was signed for; 400 otherwise."""
    token = (req.query().get("t") or form.get("t") or [""])[0]
    email = read_token(check_secret(req.env.get("XMAS_SECRET") or None), token) if token else None
    if email is None:
        raise Refused(400, InvalidInput("invalid unsubscribe token", "open the link from the email again"))
    return token, email


def _unsubscribe_page(req: Request) -> Answer:
    token, _ = _token(req, {})
    company = load_campaign(config_path(req.config, req.env), dict(req.env)).sender.company_name
    return unsubscribe_page(token, company)


def _unsubscribe(req: Request) -> Answer:
    body = read_body(req, required=False)  # RFC 8058: List-Unsubscribe=One-Click; the page's form sends t=
    form = parse_qs(body.decode("utf-8", "replace")) if body else {}
    _, email = _token(req, form)
    one_click = form.get("List-Unsubscribe") == ["One-Click"]
    with _engine(req) as engine:
        core.unsubscribe(engine, email, "unsubscribed (one-click)" if one_click else "unsubscribed (web page)")
        company = engine.campaign.sender.company_name
    return unsubscribed_page(company)


def _resend_webhook(req: Request) -> Answer:
    body = read_body(req, required=True)
    try:
        payload = body.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidInput("the request body is not UTF-8", "send the webhook's JSON as Resend does") from None
    headers = {
        key[5:].lower().replace("_", "-"): str(value)
        for key, value in req.environ.items()
        if key.startswith("HTTP_SVIX_")
    }
    with _engine(req) as engine:
        secret = req.env.get("RESEND_WEBHOOK_SECRET") or None
        outcome = handle_resend_webhook(engine, payload, headers, secret, received_reader(req.env))
        document: dict[str, Any] = outcome.to_json()
    return json_answer(200, document)


def _calendly_webhook(req: Request, *, key: str) -> Answer:
    body = read_body(req, required=True)  # verified as received: the signature covers the raw bytes
    with _engine(req) as engine:  # the engine's clock (XMAS_NOW) judges the signature's age
        outcome = handle_calendly_webhook(engine, body, req.header(SIGNATURE_HEADER), key)
    return json_answer(outcome.status, outcome.document)


def _health(req: Request) -> Answer:
    with _engine(req) as engine:
        engine.store.get_contact("healthz@example.invalid")  # a real read: the store answers
    return json_answer(200, {"ok": True})


Handler = Callable[[Request], Answer]


@dataclass(frozen=True)
class Route:
    methods: dict[str, Handler]
    html: bool = False


def route(req: Request) -> Route | None:
    """The route for this path, or None (404). A route whose secret is not set does not exist."""
    path, env = req.path, req.env
    if path == "/healthz":
        return Route({"GET": _health})
    if path == "/unsubscribe":
        return Route({"GET": _unsubscribe_page, "POST": _unsubscribe}, html=True)
    if path == "/webhooks/resend":
        return Route({"POST": _resend_webhook})
    if path == "/webhooks/calendly":
        signing_key = env.get("CALENDLY_WEBHOOK_SIGNING_KEY") or ""
        return Route({"POST": partial(_calendly_webhook, key=signing_key)}) if signing_key else None
    if path.startswith("/enroll/"):
        sequence, token = path.removeprefix("/enroll/"), env.get("XMAS_API_TOKEN") or ""
        if not sequence or "/" in sequence or not token:
            return None
        return Route({"POST": partial(_bearer_enroll, sequence=sequence, secret=token)})
    if path.startswith("/events/"):
        name, token = path.removeprefix("/events/"), env.get("XMAS_API_TOKEN") or ""
        if not name or "/" in name or not token:
            return None
        return Route({"POST": partial(_bearer_event, name=name, secret=token)})
    if path in PAUSE_FIELDS:
        token = env.get("XMAS_API_TOKEN") or ""
        return Route({"POST": partial(_bearer_pause, secret=token)}) if token else None
    if path.startswith(KESTRA_PREFIX):
        name, _, key = path.removeprefix(KESTRA_PREFIX).partition("/")
        if name not in HANDLERS or not key or "/" in key:
            return None
        sequence, suffix = HANDLERS[name]
        secret = env.get(f"XMAS_WEBHOOK_KEY_{suffix}") or env.get("XMAS_WEBHOOK_KEY") or ""
        if not secret:
            return None
        return Route({"POST": partial(_kestra_enroll, sequence=sequence, suffix=suffix, key=key, secret=secret)})
    return None
