"""The HTML pages: one small template, the unsubscribe routes' error pages and their two pages, and the
choice between an error page and a JSON error."""

from __future__ import annotations

import html
from http import HTTPStatus

from ..errors import XmasError, error_json
from .request import RETRY_AFTER, Answer, json_answer

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


def page(
    status: int,
    title: str,
    lines: list[str],
    form_token: str | None = None,
    headers: list[tuple[str, str]] | None = None,
) -> Answer:
    """A small HTML page. Every piece of text is escaped here; callers pass plain text."""
    content = "".join(f"<p>{html.escape(line)}</p>\n" for line in lines)
    if form_token is not None:  # no action: the form posts back to this very URL, ?t= included
        content += (
            f'<form method="post"><input type="hidden" name="t" value="{html.escape(form_token)}">'
            '<button type="submit">Unsubscribe</button></form>\n'
        )
    body = _PAGE.format(title=html.escape(title), content=content).encode()
    return Answer(status, body, [("Content-Type", "text/html; charset=utf-8"), *_PAGE_HEADERS, *(headers or [])])


def unsubscribe_page(token: str, company: str) -> Answer:
    """GET /unsubscribe: a question and a button that posts the token back; nothing changes yet."""
    return page(200, "Unsubscribe", [f"Stop all emails from {company}?"], form_token=token)


def unsubscribed_page(company: str) -> Answer:
    return page(200, "You are unsubscribed", [f"{company} will not email you again."])


# ---------------------------------------------------------------------------------------------- errors


def error_page(status: int) -> Answer:
    """The unsubscribe routes' error pages say nothing specific: no address, no detail."""
    if status == 400:
        return page(
            400,
            "This link does not work",
            [
                "The unsubscribe link is incomplete or was changed on its way.",
                "Open the link from the email again, or reply to the email and ask to be removed.",
            ],
        )
    if status == 503:
        return page(503, "Please try again", ["We could not complete this just now. Try again in a minute."])
    if status >= 500:
        return page(
            status,
            "Something went wrong",
            ["We could not complete this on our side. Reply to the email and ask to be removed."],
        )
    return page(status, HTTPStatus(status).phrase, ["This address does not accept that request."])


def render_error(status: int, error: XmasError, as_html: bool, headers: list[tuple[str, str]]) -> Answer:
    if status == 503:
        headers = [*headers, ("Retry-After", RETRY_AFTER)]
    if as_html:
        shown = error_page(status)
        return Answer(shown.status, shown.body, [*shown.headers, *headers])
    return json_answer(status, error_json(error), headers)
