"""The website's way in: one WSGI application (standard library only) over the engine calls the CLI makes.

    POST /api/v1/executions/webhook/christmas/handlers/{handler}/{key}   the old Kestra webhooks: enroll
    POST /enroll/{sequence}            enroll in any sequence; Authorization: Bearer $XMAS_API_TOKEN
    POST /events/{name}                record what a contact did (inbound/events.py); the same bearer token
    GET  /unsubscribe?t=TOKEN          a confirm page that changes nothing (mail scanners prefetch links)
    POST /unsubscribe?t=TOKEN          unsubscribe (RFC 8058 one-click, or the page's button)
    POST /webhooks/resend              bounces, complaints and replies, signed the Svix way (inbound/resend_events.py)
    POST /webhooks/calendly            bookings, cancellations and no-shows, signed by Calendly (inbound/calendly.py)
    GET  /healthz                      the store answers

Every answer is built whole before `start_response`, so a failure can never follow a half-sent success, and
a retry after a 503 is safe: enrollment rows have deterministic ids. Secrets come from the environment, read
per request; none is ever echoed, and details of server-side failures go to `wsgi.errors` only.

The package: request.py (the request, its body and limits, answers, error → status), pages.py (the HTML),
routes.py (the route table and its handlers); here, the application that ties them together. server.py (`xmas
serve`) and cgi.py (`xmas-cgi`) run it.

May import: core, the ports (stores/base.py), engine, inbound, backends (the wiring), config, errors, clock. Never
a store or a mailer itself, commands, tick, report or starter.
"""

from __future__ import annotations

import os
import re
import traceback
from collections.abc import Mapping
from http import HTTPStatus
from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

from ..errors import InvalidInput, NotFound, XmasError, error_json
from .pages import render_error
from .request import (
    JSON_TYPE,
    MAX_BODY,
    Answer,
    Refused,
    Request,
    internal_error,
    json_answer,
    json_bytes,
    public_error,
    status_of,
)
from .routes import KESTRA_PREFIX, route

__all__ = ["JSON_TYPE", "KESTRA_PREFIX", "MAX_BODY", "application", "json_bytes", "make_app", "redact"]


def _answer(req: Request) -> Answer:
    found = route(req)
    if found is None:
        return json_answer(404, error_json(NotFound("no such endpoint", "check the URL and the method")))
    handler = found.methods.get(req.method)
    if handler is None:
        allow = [("Allow", ", ".join(found.methods))]
        return render_error(
            405,
            InvalidInput(f"{req.method} is not allowed here", f"use {' or '.join(found.methods)}"),
            found.html,
            allow,
        )
    try:
        return handler(req)
    except Refused as refused:
        return render_error(refused.status, refused.error, found.html, refused.headers)
    except XmasError as exc:
        status = status_of(exc)
        if status >= 500:
            req.log(f"xmas web: {req.method} {redact(req.path)}: {type(exc).__name__}: {exc}")
        return render_error(status, public_error(exc), found.html, [])
    except Exception:
        req.log(f"xmas web: {req.method} {redact(req.path)} failed:\n{traceback.format_exc()}")
        return render_error(500, internal_error(), found.html, [])


def make_app(config: str | None = None, env: Mapping[str, str] | None = None) -> WSGIApplication:
    """The WSGI application. `config` is campaign.toml's path (default: $XMAS_CONFIG, then ./campaign.toml);
    `env` (default os.environ) is read on every request, so secrets can change without a restart."""

    def application(environ: WSGIEnvironment, start_response: StartResponse) -> list[bytes]:
        answer = _answer(Request(environ, os.environ if env is None else env, config))
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
