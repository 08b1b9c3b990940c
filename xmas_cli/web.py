"""The website's way in: one WSGI application (standard library only) over the engine calls the CLI makes.

    POST /api/v1/executions/webhook/christmas/handlers/{handler}/{key}   the old Kestra webhooks: enroll
    POST /enroll/{sequence}            enroll in any sequence; Authorization: Bearer $XMAS_API_TOKEN
    POST /events/{name}                record what a contact did (events.py); the same bearer token
    GET  /unsubscribe?t=TOKEN          a confirm page that changes nothing (mail scanners prefetch links)
    POST /unsubscribe?t=TOKEN          unsubscribe (RFC 8058 one-click, or the page's button)
    POST /webhooks/resend              bounces and complaints, signed the Svix way (bounces.py)
    POST /webhooks/calendly            bookings, cancellations and no-shows, signed by Calendly (calendly.py)
    GET  /healthz                      the store answers

Every answer is built whole before `start_response`, so a failure can never follow a half-sent success, and
a retry after a 503 is safe: enrollment rows have deterministic ids. Secrets come from the environment, read
per request; none is ever echoed, and details of server-side failures go to `wsgi.errors` only.
"""

from __future__ import annotations

import hmac
import html
import json
import os
import re
import sys
import traceback
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs
from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

from . import engine as core
from . import jsonin
from .backends import config_path, engine_from_config
from .bounces import handle_resend_webhook
from .calendly import SIGNATURE_HEADER, handle_calendly_webhook
from .campaign import load_campaign
from .engine import Engine
from .errors import (
    Busy,
    ConfigError,
    InvalidInput,
    MailerUnavailable,
    NotFound,
    StoreUnavailable,
    Unauthorized,
    XmasError,
    error_json,
)
from .tokens import check_secret, read_token

MAX_BODY = jsonin.MAX_BODY  # one limit for request bodies and `--payload`
JSON_TYPE = "application/json; charset=utf-8"
RETRY_AFTER = "5"
KESTRA_PREFIX = "/api/v1/executions/webhook/christmas/handlers/"
# The old Kestra handler names → (sequence, suffix of its key's environment variable XMAS_WEBHOOK_KEY_<SUFFIX>).
HANDLERS: dict[str, tuple[str, str]] = {
    "signup-handler": ("signup", "SIGNUP"),
    "assessment-handler": ("assessment", "ASSESSMENT"),
    "noshow-recovery-handler": ("noshow", "NOSHOW"),
    "postcall-maybe-handler": ("postcall", "POSTCALL"),
    "onboarding-handler": ("onboarding", "ONBOARDING"),
}
_FROM_LOG = "the operator will find the details in the server's error log"


# ------------------------------------------------------------------------------------ requests, answers


@dataclass(frozen=True)
class _Request:
    environ: WSGIEnvironment
    env: Mapping[str, str]
    config: str | None

    @property
    def method(self) -> str:
        return str(self.environ.get("REQUEST_METHOD", "GET")).upper()

    @property
    def path(self) -> str:
        return str(self.environ.get("PATH_INFO", "")) or "/"

    def header(self, name: str) -> str:
        key = name.upper().replace("-", "_")
        return str(self.environ.get(key if key in ("CONTENT_TYPE", "CONTENT_LENGTH") else f"HTTP_{key}", ""))

    def query(self) -> dict[str, list[str]]:
        return parse_qs(str(self.environ.get("QUERY_STRING", "")))

    def log(self, text: str) -> None:
        stream = self.environ.get("wsgi.errors") or sys.stderr
        stream.write(text if text.endswith("\n") else text + "\n")
        stream.flush()


@dataclass(frozen=True)
class _Answer:
    status: int
    body: bytes
    headers: list[tuple[str, str]] = field(default_factory=list)


class _Refused(Exception):
    """An answer decided from the request alone, before the engine runs."""

    def __init__(self, status: int, error: XmasError, headers: list[tuple[str, str]] | None = None) -> None:
        super().__init__(error.message)
        self.status = status
        self.error = error
        self.headers = headers or []


def json_bytes(document: dict[str, Any]) -> bytes:
    """A JSON answer's body, as `xmas ... --json` prints it (server.py answers framing errors with it too)."""
    return (json.dumps(document, indent=2, ensure_ascii=False) + "\n").encode()


def _json(status: int, document: dict[str, Any], headers: list[tuple[str, str]] | None = None) -> _Answer:
    return _Answer(status, json_bytes(document), [("Content-Type", JSON_TYPE), *(headers or [])])


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex"><title>{title}</title>
<style>body{{font:17px/1.5 system-ui,sans-serif;max-width:34rem;margin:3rem auto;padding:0 1rem;color:#222}}
button{{font:inherit;padding:.5rem 1.4rem;cursor:pointer}}</style></head>
<body><main><h1>{title}</h1>
{content}</main></body></html>
"""
_PAGE_HEADERS = [
    (
        "Content-Security-Policy",
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    ),
    ("Referrer-Policy", "no-referrer"),
]


def _page(
    status: int,
    title: str,
    lines: list[str],
    form_token: str | None = None,
    headers: list[tuple[str, str]] | None = None,
) -> _Answer:
    """A small HTML page. Every piece of text is escaped here; callers pass plain text."""
    content = "".join(f"<p>{html.escape(line)}</p>\n" for line in lines)
    if form_token is not None:  # no action: the form posts back to this very URL, ?t= included
        content += (
            f'<form method="post"><input type="hidden" name="t" value="{html.escape(form_token)}">'
            '<button type="submit">Unsubscribe</button></form>\n'
        )
    body = _PAGE.format(title=html.escape(title), content=content).encode()
    return _Answer(status, body, [("Content-Type", "text/html; charset=utf-8"), *_PAGE_HEADERS, *(headers or [])])


# ---------------------------------------------------------------------------------------------- errors


def _status(exc: XmasError) -> int:
    if isinstance(exc, Unauthorized):
        return 401
    if isinstance(exc, InvalidInput):
        return 400
    if isinstance(exc, StoreUnavailable | MailerUnavailable | Busy):
        return 503
    return 500


def _internal() -> XmasError:
    return XmasError("the server failed to handle this request", _FROM_LOG)


def _public(exc: XmasError) -> XmasError:
    """What the client may read: the error itself for bad input, a generic one for what fails on our side."""
    if isinstance(exc, InvalidInput):
        return exc
    if isinstance(exc, Busy):
        return Busy("another enrollment is being written", "retry in a few seconds; a retry is safe")
    if isinstance(exc, StoreUnavailable | MailerUnavailable):
        return type(exc)("the campaign's store or mailer cannot be reached", "retry in a few seconds; a retry is safe")
    if isinstance(exc, ConfigError):
        return ConfigError("the server is not configured correctly", _FROM_LOG)
    return _internal()


def _error_page(status: int) -> _Answer:
    """The unsubscribe routes' error pages say nothing specific: no address, no detail."""
    if status == 400:
        return _page(
            400,
            "This link does not work",
            [
                "The unsubscribe link is incomplete or was changed on its way.",
                "Open the link from the email again, or reply to the email and ask to be removed.",
            ],
        )
    if status == 503:
        return _page(503, "Please try again", ["We could not complete this just now. Try again in a minute."])
    if status >= 500:
        return _page(
            status,
            "Something went wrong",
            ["We could not complete this on our side. Reply to the email and ask to be removed."],
        )
    return _page(status, HTTPStatus(status).phrase, ["This address does not accept that request."])


def _render_error(status: int, error: XmasError, as_html: bool, headers: list[tuple[str, str]]) -> _Answer:
    if status == 503:
        headers = [*headers, ("Retry-After", RETRY_AFTER)]
    if as_html:
        page = _error_page(status)
        return _Answer(page.status, page.body, [*page.headers, *headers])
    return _json(status, error_json(error), headers)


# ---------------------------------------------------------------------------------------------- bodies


def _body(req: _Request, *, required: bool, json_only: bool = False) -> bytes:
    """The request body, after the checks that need only the headers: 411, 413, 415."""
    length = req.header("Content-Length").strip()
    if req.header("Transfer-Encoding"):
        if length:  # two framings for one body: a request smuggling attempt, or a broken proxy
            raise _Refused(
                400,
                InvalidInput(
                    "the request has both Transfer-Encoding and Content-Length",
                    "send the body with a Content-Length header only",
                ),
            )
        raise _Refused(
            411, InvalidInput("chunked request bodies are not accepted", "send the body with a Content-Length header")
        )
    if not length and required:
        raise _Refused(
            411, InvalidInput("the request has no Content-Length header", "send the body with a Content-Length header")
        )
    if length and not (length.isascii() and length.isdigit()):
        raise _Refused(400, InvalidInput("Content-Length is not a number", "send the body's length in bytes"))
    digits = length.lstrip("0")
    if len(digits) > 9 or int(digits or "0") > MAX_BODY:  # decided from the header: the body stays unread
        raise _Refused(
            413,
            InvalidInput(
                f"the request body is larger than the limit of {MAX_BODY} bytes",
                "send one enrollment per request",
                [("(body)", f"larger than {MAX_BODY} bytes")],
            ),
        )
    if json_only and req.header("Content-Type").partition(";")[0].strip().lower() != "application/json":
        raise _Refused(
            415, InvalidInput("the request body must be JSON", "send it with Content-Type: application/json")
        )
    size = int(digits or "0")
    stream = req.environ["wsgi.input"]
    chunks: list[bytes] = []
    left = size
    try:
        while left > 0 and (chunk := stream.read(left)):
            chunks.append(chunk)
            left -= len(chunk)
    except OSError:  # the client went away, or stalled past the server's timeout
        pass
    if left > 0:
        raise _Refused(
            400,
            InvalidInput(
                f"the request body ended after {size - left} of {size} bytes",
                "send the whole body that Content-Length announces",
            ),
        )
    return b"".join(chunks)


def _parse_json(body: bytes) -> Any:
    """The same bounded reader as `xmas enroll --payload`: UTF-8, one value, no NaN, bounded depth and numbers."""
    return jsonin.loads(body, field="(body)", what="the request body")


# ---------------------------------------------------------------------------------------------- engine


@contextmanager
def _engine(req: _Request) -> Iterator[Engine]:
    engine = engine_from_config(req.config, None, req.env)  # a bad XMAS_NOW is a ConfigError: the server's fault
    try:
        yield engine
    finally:
        engine.close()


def _same(given: str, secret: str) -> bool:
    """Constant-time comparison of a credential from the request (a WSGI latin-1 string) with a secret."""
    return hmac.compare_digest(given.encode("latin-1", "replace"), secret.encode("utf-8", "surrogateescape"))


def _enroll(req: _Request, sequence: str) -> _Answer:
    raw = _parse_json(_body(req, required=True, json_only=True))
    with _engine(req) as engine:
        result = core.enroll(engine, sequence, raw)
    return _json(200, result.to_json())


# ---------------------------------------------------------------------------------------------- routes


def _kestra_enroll(req: _Request, *, sequence: str, suffix: str, key: str, secret: str) -> _Answer:
    if not _same(key, secret):
        raise _Refused(
            401,
            Unauthorized(
                "wrong webhook key in the URL", f"use the key set in XMAS_WEBHOOK_KEY_{suffix} or XMAS_WEBHOOK_KEY"
            ),
        )
    return _enroll(req, sequence)


def _check_bearer(req: _Request, secret: str) -> None:
    scheme, _, token = req.header("Authorization").strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip() or not _same(token.strip(), secret):
        raise _Refused(
            401,
            Unauthorized("missing or wrong bearer token", "send Authorization: Bearer <the value of XMAS_API_TOKEN>"),
            [("WWW-Authenticate", 'Bearer realm="xmas"')],
        )


def _bearer_enroll(req: _Request, *, sequence: str, secret: str) -> _Answer:
    _check_bearer(req, secret)
    return _enroll(req, sequence)


def _bearer_event(req: _Request, *, name: str, secret: str) -> _Answer:
    """POST /events/NAME {"email", "at"?, "data"?, "key"?}: what `xmas event` records."""
    from .events import record_from_request

    _check_bearer(req, secret)
    raw = _parse_json(_body(req, required=True, json_only=True))
    with _engine(req) as engine:
        result = record_from_request(engine, name, raw)
    return _json(200, result.to_json())


def _token(req: _Request, form: Mapping[str, list[str]]) -> tuple[str, str]:
    """The unsubscribe token (from ?t=, else the form's t) and the address it was signed for; 400 otherwise."""
    token = (req.query().get("t") or form.get("t") or [""])[0]
    email = read_token(check_secret(req.env.get("XMAS_SECRET") or None), token) if token else None
    if email is None:
        raise _Refused(400, InvalidInput("invalid unsubscribe token", "open the link from the email again"))
    return token, email


def _unsubscribe_page(req: _Request) -> _Answer:
    token, _ = _token(req, {})
    company = load_campaign(config_path(req.config, req.env), dict(req.env)).sender.company_name
    return _page(200, "Unsubscribe", [f"Stop all emails from {company}?"], form_token=token)


def _unsubscribe(req: _Request) -> _Answer:
    body = _body(req, required=False)  # RFC 8058: List-Unsubscribe=One-Click; the page's form sends t=
    form = parse_qs(body.decode("utf-8", "replace")) if body else {}
    _, email = _token(req, form)
    one_click = form.get("List-Unsubscribe") == ["One-Click"]
    with _engine(req) as engine:
        core.unsubscribe(engine, email, "unsubscribed (one-click)" if one_click else "unsubscribed (web page)")
        company = engine.campaign.sender.company_name
    return _page(200, "You are unsubscribed", [f"{company} will not email you again."])


def _resend_webhook(req: _Request) -> _Answer:
    body = _body(req, required=True)
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
        outcome = handle_resend_webhook(engine, payload, headers, req.env.get("RESEND_WEBHOOK_SECRET") or None)
        document: dict[str, Any] = outcome.to_json()
    return _json(200, document)


def _calendly_webhook(req: _Request, *, key: str) -> _Answer:
    body = _body(req, required=True)  # verified as received: the signature covers the raw bytes
    with _engine(req) as engine:  # the engine's clock (XMAS_NOW) judges the signature's age
        outcome = handle_calendly_webhook(engine, body, req.header(SIGNATURE_HEADER), key)
    return _json(outcome.status, outcome.document)


def _health(req: _Request) -> _Answer:
    with _engine(req) as engine:
        engine.store.get_contact("healthz@example.invalid")  # a real read: the store answers
    return _json(200, {"ok": True})


Handler = Callable[[_Request], _Answer]


@dataclass(frozen=True)
class _Route:
    methods: dict[str, Handler]
    html: bool = False


def _route(req: _Request) -> _Route | None:
    """The route for this path, or None (404). A route whose secret is not set does not exist."""
    path, env = req.path, req.env
    if path == "/healthz":
        return _Route({"GET": _health})
    if path == "/unsubscribe":
        return _Route({"GET": _unsubscribe_page, "POST": _unsubscribe}, html=True)
    if path == "/webhooks/resend":
        return _Route({"POST": _resend_webhook})
    if path == "/webhooks/calendly":
        signing_key = env.get("CALENDLY_WEBHOOK_SIGNING_KEY") or ""
        return _Route({"POST": partial(_calendly_webhook, key=signing_key)}) if signing_key else None
    if path.startswith("/enroll/"):
        sequence, token = path.removeprefix("/enroll/"), env.get("XMAS_API_TOKEN") or ""
        if not sequence or "/" in sequence or not token:
            return None
        return _Route({"POST": partial(_bearer_enroll, sequence=sequence, secret=token)})
    if path.startswith("/events/"):
        name, token = path.removeprefix("/events/"), env.get("XMAS_API_TOKEN") or ""
        if not name or "/" in name or not token:
            return None
        return _Route({"POST": partial(_bearer_event, name=name, secret=token)})
    if path.startswith(KESTRA_PREFIX):
        name, _, key = path.removeprefix(KESTRA_PREFIX).partition("/")
        if name not in HANDLERS or not key or "/" in key:
            return None
        sequence, suffix = HANDLERS[name]
        secret = env.get(f"XMAS_WEBHOOK_KEY_{suffix}") or env.get("XMAS_WEBHOOK_KEY") or ""
        if not secret:
            return None
        return _Route({"POST": partial(_kestra_enroll, sequence=sequence, suffix=suffix, key=key, secret=secret)})
    return None


def _answer(req: _Request) -> _Answer:
    route = _route(req)
    if route is None:
        return _json(404, error_json(NotFound("no such endpoint", "check the URL and the method")))
    handler = route.methods.get(req.method)
    if handler is None:
        allow = [("Allow", ", ".join(route.methods))]
        return _render_error(
            405,
            InvalidInput(f"{req.method} is not allowed here", f"use {' or '.join(route.methods)}"),
            route.html,
            allow,
        )
    try:
        return handler(req)
    except _Refused as refused:
        return _render_error(refused.status, refused.error, route.html, refused.headers)
    except XmasError as exc:
        status = _status(exc)
        if status >= 500:
            req.log(f"xmas web: {req.method} {redact(req.path)}: {type(exc).__name__}: {exc}")
        return _render_error(status, _public(exc), route.html, [])
    except Exception:
        req.log(f"xmas web: {req.method} {redact(req.path)} failed:\n{traceback.format_exc()}")
        return _render_error(500, _internal(), route.html, [])


def make_app(config: str | None = None, env: Mapping[str, str] | None = None) -> WSGIApplication:
    """The WSGI application. `config` is campaign.toml's path (default: $XMAS_CONFIG, then ./campaign.toml);
    `env` (default os.environ) is read on every request, so secrets can change without a restart."""

    def application(environ: WSGIEnvironment, start_response: StartResponse) -> list[bytes]:
        answer = _answer(_Request(environ, os.environ if env is None else env, config))
        headers = [
            *answer.headers,
            ("Content-Length", str(len(answer.body))),
            ("Cache-Control", "no-store"),
            ("X-Content-Type-Options", "nosniff"),
        ]
        start_response(f"{answer.status} {HTTPStatus(answer.status).phrase}", headers)
        return [answer.body]

    return application


application = make_app()  # for WSGI servers (gunicorn xmas_cli.web:application); config from XMAS_CONFIG


# ------------------------------------------------------------------------------------------------ logs

_IN_LOGS = re.compile(r"(/handlers/[^/\s]+/)[^\s?#\"]+|([?&]t=)[^&\s#\"]+")


def redact(text: str) -> str:
    """Access-log lines without the webhook keys and unsubscribe tokens that URLs carry."""
    return _IN_LOGS.sub(lambda m: (m.group(1) or m.group(2)) + "***", text)
