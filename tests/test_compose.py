"""One compose step: `xmas preview --row ID` shows byte for byte what `xmas tick` sends for that row."""

from __future__ import annotations

import email
import json
import re
import subprocess
import sys
from email import policy
from email.message import EmailMessage
from html import unescape
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from conftest import Cli, clean_environ
from test_cli_enroll import ASSESSMENT

pytestmark = pytest.mark.every_store  # the rules hold on SQLite and on PostgreSQL


def _sent(project: Path, key: str) -> EmailMessage:
    """The .eml the outbox wrote for the email with this idempotency key (its Message-ID)."""
    found = [
        m
        for path in (project / ".xmas" / "outbox").glob("*.eml")
        if (m := email.message_from_bytes(path.read_bytes(), policy=policy.default))["Message-ID"]
        .strip()
        .startswith(f"<{key}@")
    ]
    assert len(found) == 1 and isinstance(found[0], EmailMessage)
    return found[0]


def test_preview_of_a_row_is_what_the_tick_sends(xmas: Cli, project: Path) -> None:
    xmas.json("enroll", "assessment", "--payload", "-", "--now", "2026-12-01T10:31:00Z", input=json.dumps(ASSESSMENT))
    row_id = "assessment:sarah@sarahssalon.com#2"
    before = xmas.json("preview", "--row", row_id, "--now", "2026-12-01T12:00:00Z")  # a day before it is due
    assert before["template"] == "christmas_email_2" and before["email"]["row_id"] == row_id
    xmas("tick", "--now", "2026-12-02T10:31:00Z")
    sent = _sent(project, before["email"]["idempotency_key"])
    assert sent["Subject"] == before["subject"]
    html = sent.get_body(("html",))
    text = sent.get_body(("plain",))
    assert html is not None and text is not None
    # a MIME body's lines end in CRLF on the wire (RFC 5322); the content is otherwise the same, character for character
    assert html.get_content().replace("\r\n", "\n") == before["html"]
    assert text.get_content().replace("\r\n", "\n") == before["text"]
    assert sent["List-Unsubscribe"] == before["email"]["headers"]["List-Unsubscribe"]
    # and the preview after sending is still the same email (it is rendered as of the row's due time)
    after = xmas.json("preview", "--row", row_id, "--now", "2026-12-20T12:00:00Z")
    assert (after["subject"], after["html"], after["text"]) == (before["subject"], before["html"], before["text"])


def test_preview_of_a_row_refuses_a_wrong_template_or_id(xmas: Cli) -> None:
    xmas.json("enroll", "assessment", "--payload", "-", "--now", "2026-12-01T10:31:00Z", input=json.dumps(ASSESSMENT))
    row = "assessment:sarah@sarahssalon.com#2"
    assert "sends christmas_email_2" in xmas("preview", "christmas_email_3", "--row", row, code=2).stderr
    assert "no scheduled email" in xmas("preview", "--row", "nope#1", code=2).stderr
    assert "no template given" in xmas("preview", code=2).stderr


def _imported(project: Path, *args: str) -> set[str]:
    """The top-level packages a real `xmas ARGS` process imported (run through a wrapper that prints them)."""
    script = (
        "import sys\n"
        "from xmas_cli.commands import app\n"
        "try:\n    app(args=sys.argv[1:])\nexcept SystemExit:\n    pass\n"
        "print('MODULES', ' '.join(sorted({m.split('.')[0] for m in sys.modules})), file=sys.stderr)\n"
    )
    env = clean_environ({"XMAS_SECRET": "test-secret-0123456789abcdef"})
    done = subprocess.run(
        [sys.executable, "-c", script, *args], cwd=project, env=env, capture_output=True, text=True, timeout=60
    )
    line = [x for x in done.stderr.splitlines() if x.startswith("MODULES ")]
    assert line, done.stderr
    return set(line[0].split()[1:])


@pytest.mark.sqlite_only  # the embedded default's start-up: PostgreSQL's tick loads psycopg, as it must
def test_help_and_an_idle_tick_import_nothing_they_do_not_use(project: Path) -> None:
    heavy = {"notion_client", "httpx", "resend", "jinja2"}
    help_modules = _imported(project, "--help")
    assert not help_modules & (heavy | {"pydantic", "rich"}), help_modules & (heavy | {"pydantic", "rich"})
    tick_modules = _imported(project, "tick", "--now", "2026-12-01T10:00:00Z")
    assert "xmas_cli" in tick_modules and not tick_modules & heavy, tick_modules & heavy
    # the check can fail: a tick that sends does load Jinja
    subprocess.run(
        [
            sys.executable,
            "-c",
            "from xmas_cli.commands import main; main()",
            "enroll",
            "lead-nurture",
            "--email",
            "l@example.com",
            "--first-name",
            "L",
            "--now",
            "2026-12-01T10:00:00Z",
        ],
        cwd=project,
        env=clean_environ({"XMAS_SECRET": "test-secret-0123456789abcdef"}),  # enroll checks it before writing
        check=True,
        capture_output=True,
        timeout=60,
    )
    assert "jinja2" in _imported(project, "tick", "--now", "2026-12-01T10:00:00Z")


def test_an_enrollment_dumps_its_payload_once(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from xmas_cli.backends import engine_from_config
    from xmas_cli.core.payloads import Payload
    from xmas_cli.engine import enroll

    calls: list[str] = []
    original = Payload.model_dump

    def counted(self: Payload, **kwargs: Any) -> dict[str, Any]:
        calls.append(type(self).__name__)
        return original(self, **kwargs)

    monkeypatch.setattr(Payload, "model_dump", counted)
    engine = engine_from_config(str(project / "campaign.toml"), "2026-12-01T10:31:00Z")
    try:
        result = enroll(engine, "assessment", dict(ASSESSMENT))
    finally:
        engine.close()
    assert result.created and calls == ["AssessmentPayload"]


# ------------------------------------------------------------------------------ the plain-text part


class _Reference(HTMLParser):
    """The text part as html.parser derived it (until it cost 0.3 ms of an email's 0.5): the oracle the fast
    regular-expression version (core/plaintext.py) must agree with on every shipped template."""

    BLOCKS = frozenset({"p", "div", "br", "tr", "h1", "h2", "h3", "h4", "li", "table", "hr", "ul", "ol"})
    SKIP = frozenset({"style", "script", "head", "title"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skipping = 0
        self.links: list[str | None] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.SKIP:
            self.skipping += 1
        elif tag == "li":
            self.parts.append("\n- ")
        elif tag in self.BLOCKS:
            self.parts.append("\n")
        if tag == "a":
            self.links.append(dict(attrs).get("href"))

    def handle_endtag(self, tag: str) -> None:
        if tag in self.SKIP:
            self.skipping = max(0, self.skipping - 1)
        elif tag == "a" and self.links:
            href = self.links.pop()
            if href and not href.startswith("mailto:") and href not in "".join(self.parts[-3:]):
                self.parts.append(f" ({href})")
        elif tag in self.BLOCKS and tag != "li":
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.skipping:
            self.parts.append(re.sub(r"\s+", " ", data))

    @classmethod
    def text(cls, html: str) -> str:
        parser = cls()
        parser.feed(html)
        parser.close()
        lines = [line.strip() for line in "".join(parser.parts).splitlines()]
        return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip() + "\n"


@pytest.mark.sqlite_only  # rendering only: no store involved
def test_every_shipped_email_has_a_readable_text_part(xmas: Cli, project: Path) -> None:
    templates = sorted(p.stem for p in (project / "templates").glob("*.html") if p.stem != "layout")
    assert len(templates) >= 15
    for template in templates:
        shown = xmas.json("preview", template)
        html, text = shown["html"], shown["text"]
        assert text == _Reference.text(html), template  # the same text as html.parser gave, character for character
        assert not re.search(r"<[a-zA-Z/!]|&[a-z]+;|&#", text), template  # no markup, no entity left
        hrefs = {h for h in re.findall(r'href="([^"]+)"', html) if not h.startswith("mailto:")}
        assert hrefs and all(unescape(h) in text for h in hrefs), template  # every link kept, written out
        found = re.findall(r"<p\b[^>]*>(.*?)</p>", html, re.S)
        paragraphs = [" ".join(unescape(re.sub(r"<[^>]+>", "", re.sub(r"<br\b[^>]*>", " ", p))).split()) for p in found]
        words = " ".join(re.sub(r" \(https?://[^ )]+\)", "", text).split())  # the words, without the addresses
        assert all(p in words for p in paragraphs if p), template  # each paragraph whole, in its words
        assert "\n\n" in text and text.endswith("\n") and not text.startswith("\n")
