"""The pure classification of a received email (core/replies.py): a person, an automatic reply, a bounce."""

from __future__ import annotations

import pytest

from xmas_cli.core.replies import AUTO_REPLY, BOUNCE, HUMAN, Verdict, classify, header_map


@pytest.mark.parametrize(
    ("headers", "sender", "subject", "verdict"),
    [
        ({}, "ada@example.com", "Re: your offer", Verdict(HUMAN, "")),
        ({"auto-submitted": "no"}, "ada@example.com", "Re: hi", Verdict(HUMAN, "")),
        ({"x-auto-response-suppress": "All"}, "ada@example.com", "Re: hi", Verdict(HUMAN, "")),  # Outlook, a person
        (
            {"auto-submitted": "Auto-Replied"},
            "ada@example.com",
            "Re: hi",
            Verdict(AUTO_REPLY, "Auto-Submitted: auto-replied"),
        ),
        (
            {"auto-submitted": "auto-generated; owner-email=x@example.com"},
            "ada@example.com",
            "hi",
            Verdict(AUTO_REPLY, "Auto-Submitted: auto-generated"),
        ),
        (
            {"auto-submitted": "auto-notified"},
            "a@example.com",
            "x",
            Verdict(AUTO_REPLY, "Auto-Submitted: auto-notified"),
        ),
        ({"x-autorespond": "vacation"}, "a@example.com", "x", Verdict(AUTO_REPLY, "X-Autorespond: vacation")),
        ({"x-autoreply": "no"}, "a@example.com", "x", Verdict(HUMAN, "")),
        ({"precedence": "bulk"}, "a@example.com", "x", Verdict(AUTO_REPLY, "Precedence: bulk")),
        ({"list-id": "<news.example.com>"}, "a@example.com", "x", Verdict(AUTO_REPLY, "List-ID: <news.example.com>")),
        (
            {"x-ms-exchange-inbox-rules-loop": "a@example.com"},
            "a@example.com",
            "x",
            Verdict(AUTO_REPLY, "X-MS-Exchange-Inbox-Rules-Loop: a@example.com"),
        ),
        (
            {"return-path": "<>"},
            "a@example.com",
            "Away",
            Verdict(AUTO_REPLY, "Return-Path: <> (a null envelope sender)"),
        ),
        ({}, "a@example.com", "Automatic reply: hi", Verdict(AUTO_REPLY, "subject 'Automatic reply: hi'")),
        ({}, "a@example.com", "Réponse automatique", Verdict(AUTO_REPLY, "subject 'Réponse automatique'")),
        ({}, "MAILER-DAEMON@mx.example.com", "Undelivered Mail", Verdict(BOUNCE, "sent by MAILER-DAEMON")),
        ({"from": "Mail System <postmaster@example.com>"}, "x@example.com", "x", Verdict(BOUNCE, "sent by postmaster")),
        (
            {"content-type": "multipart/report; report-type=delivery-status; boundary=b"},
            "a@example.com",
            "x",
            Verdict(BOUNCE, "Content-Type: multipart/report; report-type=delivery-status"),
        ),
        ({}, "a@example.com", "Undeliverable: hello", Verdict(BOUNCE, "subject 'Undeliverable: hello'")),
        ({}, "a@example.com", "Re: out of office tomorrow?", Verdict(HUMAN, "")),  # only a prefix counts
    ],
)
def test_classify(headers: dict[str, str], sender: str, subject: str, verdict: Verdict) -> None:
    assert classify(header_map(headers), sender, subject) == verdict


def test_header_map_lowers_names_and_joins_repeated_headers() -> None:
    raw = {"Auto-Submitted": "auto-replied", "Received": ["a", "b"], "X-Count": 3, "Bad": {"x": 1}}
    assert header_map(raw) == {"auto-submitted": "auto-replied", "received": "a, b", "x-count": "3"}
    assert header_map(None) == {} and header_map(["x"]) == {}
