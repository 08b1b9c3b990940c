"""One layout for every email: templates/layout.html holds the header and the footer (unsubscribe link, postal
address); each shipped template extends it and fills its blocks."""

from __future__ import annotations

import email
import email.policy
from email.message import EmailMessage
from pathlib import Path

import jinja2
import pytest
from conftest import Cli, body_text, replace_once
from jinja2 import nodes

from xmas_cli.config import load_campaign
from xmas_cli.defaults import CAMPAIGN as CAMPAIGN_TOML
from xmas_cli.defaults import TEMPLATES as TEMPLATES_DIR
from xmas_cli.stores.files import parse_template_source

EMAILS = sorted(load_campaign(CAMPAIGN_TOML, {}).template_ids())
UNSUB_LINK = '<a href="{{ unsubscribe_url }}">Unsubscribe</a>'
POSTAL = "{{ company_name }} &middot; {{ sender_address }}"


def _source(template_id: str) -> str:
    return (TEMPLATES_DIR / f"{template_id}.html").read_text(encoding="utf-8")


def _body(template_id: str) -> str:
    return parse_template_source(template_id, _source(template_id)).html


def test_every_shipped_email_extends_the_layout_and_repeats_none_of_its_footer() -> None:
    assert len(EMAILS) == 19 and "layout" not in EMAILS  # no step sends the layout itself
    assert sorted(p.stem for p in TEMPLATES_DIR.glob("*.html")) == sorted([*EMAILS, "layout"])
    layout = _body("layout")
    assert UNSUB_LINK in layout and POSTAL in layout and "<!DOCTYPE html>" in layout
    for template_id in EMAILS:
        body = _body(template_id)
        parsed = jinja2.Environment().parse(body)
        extends = list(parsed.find_all(nodes.Extends))
        assert len(extends) == 1 and isinstance(extends[0].template, nodes.Const), template_id
        assert extends[0].template.value == "layout", template_id
        assert body.startswith('{% extends "layout" %}\n'), template_id
        footer = ("unsubscribe_url", "Unsubscribe</a>", "sender_address", "border-top:1px solid #e5e7eb")
        for markup in (*footer, "<!DOCTYPE", "<body", "</html>", "<title>"):
            assert markup not in body, f"{template_id} repeats the layout's {markup!r}"
        assert {b.name for b in parsed.find_all(nodes.Block)} >= {"title", "body", "reason"}, template_id


def test_the_layout_keeps_each_emails_own_footer_and_sign_off(xmas: Cli) -> None:
    onboarding = xmas.json("preview", "onboarding_phase1_email_1")
    assert "Email preferences: <a href=" in onboarding["html"]  # transactional: not "Don't want these emails?"
    assert "this service email because" in onboarding["html"]
    assert "Don't want these emails? <a href=" in xmas.json("preview", "christmas_email_1")["html"]
    assert "Talk soon," not in xmas.json("preview", "postcall_maybe_email_1")["html"]
    assert "Talk soon,<br>" in xmas.json("preview", "postcall_maybe_email_2")["html"]


def test_editing_the_footer_once_in_the_layout_changes_every_email(xmas: Cli, project: Path) -> None:
    marker = "Registered office, edited once in the layout"
    layout = project / "templates" / "layout.html"
    before = {t: xmas.json("preview", t) for t in EMAILS}
    assert all(marker not in doc["html"] for doc in before.values())
    layout.write_text(replace_once(layout.read_text(), POSTAL, f"{POSTAL} &middot; {marker}"), encoding="utf-8")
    for template_id in EMAILS:
        doc = xmas.json("preview", template_id)
        assert f"&middot; {marker}</p>" in doc["html"], template_id
        assert marker in doc["text"], template_id
        assert doc["subject"] == before[template_id]["subject"]
        # nothing else moved: the email is the old one with the marker added to its footer
        assert doc["html"].replace(f" &middot; {marker}", "") == before[template_id]["html"], template_id


def test_a_layout_that_lost_the_unsubscribe_link_fails_the_check_for_every_email(xmas: Cli, project: Path) -> None:
    ok = xmas.json("templates", "check")
    assert ok["ok"] is True and len(ok["templates"]) == 20
    assert {t["template"]: t["used_by"] for t in ok["templates"]}["layout"] == ["layout of 19 templates"]
    layout = project / "templates" / "layout.html"
    layout.write_text(replace_once(layout.read_text(), UNSUB_LINK, "Unsubscribe"), encoding="utf-8")
    doc = xmas.json("templates", "check", code=1)
    problems = {t["template"]: t["problem"] for t in doc["templates"] if not t["ok"]}
    assert set(problems) == {*EMAILS, "layout"}
    assert all(p.startswith("no unsubscribe link") for p in problems.values()), problems
    assert "its layout 'layout'" in problems["christmas_email_1"]
    out = xmas("templates", "check", code=1).stdout
    assert "20 templates, 20 with problems" in out
    assert all(template_id in out for template_id in EMAILS)


def test_an_email_whose_layout_is_missing_fails_with_a_clear_error(xmas: Cli, project: Path) -> None:
    (project / "templates" / "layout.html").unlink()
    result = xmas("preview", "christmas_email_1", code=1)
    assert "template christmas_email_1 body: extends or includes 'layout', which is not an Active template" in (
        result.stderr
    )
    assert "Traceback" not in result.stderr + result.stdout
    doc = xmas.json("templates", "check", code=1)
    checked = {t["template"]: t for t in doc["templates"]}
    assert checked["layout"]["problem"].startswith("missing from")
    assert checked["layout"]["used_by"] == ["layout of 19 templates"]
    assert all("not an Active template" in checked[t]["problem"] for t in EMAILS)


@pytest.mark.parametrize("where", ["layout", "email"])
def test_a_syntax_error_in_the_layout_or_an_email_is_reported_not_raised(xmas: Cli, project: Path, where: str) -> None:
    path = project / "templates" / ("layout.html" if where == "layout" else "christmas_email_2.html")
    path.write_text(path.read_text() + "{% if %}", encoding="utf-8")
    doc = xmas.json("templates", "check", code=1)
    problems = {t["template"]: t["problem"] for t in doc["templates"] if not t["ok"]}
    assert all("syntax error" in p for p in problems.values()), problems
    assert ("layout" in problems) is (where == "layout") and "christmas_email_2" in problems


def test_every_email_the_demo_sends_has_the_layouts_footer(xmas: Cli, project: Path) -> None:
    result = xmas("demo", "--now", "2026-12-01T09:00:00Z")
    assert "20 emails sent; 20 .eml files in" in result.stdout
    files = sorted((project / "xmas-demo" / ".xmas" / "outbox").glob("*.eml"))
    assert len(files) == 20
    for path in files:
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        html = body_text(message, "html")
        assert html.startswith("<!DOCTYPE html>") and "unsubscribe?t=" in html, path.name
        assert " &middot; " in html and "</html>" in html, path.name


def test_templates_list_names_the_layout_as_such(xmas: Cli) -> None:
    listed = {t["template"]: t for t in xmas.json("templates", "list")["templates"]}
    assert listed["layout"]["used_by"] == ["layout of 19 templates"]
    assert listed["christmas_email_2"]["used_by"] == ["assessment #2"] and listed["christmas_email_2"]["active"]


def test_text_outside_the_blocks_of_an_email_is_an_error_not_lost(xmas: Cli, project: Path) -> None:
    path = project / "templates" / "christmas_email_3.html"
    source = path.read_text()
    assert '{% extends "layout" %}' in source
    path.write_text(
        source.replace('{% extends "layout" %}', '{% extends "layout" %}\n<p>P.S. Early-bird ends Friday</p>', 1)
    )
    failed = xmas("preview", "christmas_email_3", code=1)
    assert "text outside {% block %}" in failed.stderr and "christmas_email_3" in failed.stderr
    check = {t["template"]: t for t in xmas.json("templates", "check", code=1)["templates"]}
    assert "never shown" in str(check["christmas_email_3"]["problem"]) and check["christmas_email_2"]["ok"]
