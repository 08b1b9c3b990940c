"""Template names are names of files in templates/, nothing more: `preview` and `send-test` never read (or send)
a file outside the folder, and the HTML preview, which holds a contact's name and address, is private (0600)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from conftest import Cli
from test_cli_tick import enroll, outbox

OUTSIDE = "Subject: private {{ first_name }}\n\n<p>this file is outside templates/</p>\n"
FIX = "use a template's name: letters, digits, _ . - and no leading dot (xmas templates list shows them)"


@pytest.mark.parametrize("name", ["../x", "../../x", "/tmp/x", "sub/../../x", ".hidden"])
def test_preview_and_send_test_refuse_a_name_that_leaves_templates(xmas: Cli, project: Path, name: str) -> None:
    (project / "x.html").write_text(OUTSIDE)  # templates/../x.html
    (project.parent / "x.html").write_text(OUTSIDE)  # templates/../../x.html
    (project / "templates" / ".hidden.html").write_text(OUTSIDE)

    shown = xmas("preview", name, code=2)
    sent = xmas("send-test", name, "--to", "me@example.org", code=2)

    for result in (shown, sent):
        assert result.stderr == f"xmas: error: {name!r} is not a template name in templates/ — {FIX}\n"
        assert "private" not in result.stdout
    assert outbox(project) == []


def test_a_plain_name_still_previews_and_sends(xmas: Cli, project: Path) -> None:
    assert "Subject:" in xmas("preview", "lead_nurture_email_1").stdout
    xmas("send-test", "lead_nurture_email_1", "--to", "me@example.org")
    assert [m["To"] for m in outbox(project)] == ["me@example.org"]


def test_the_html_preview_of_a_contact_is_readable_by_its_owner_only(xmas: Cli, project: Path) -> None:
    enroll(xmas, "lead-nurture", email="lena@example.com")
    old = os.umask(0o022)
    try:
        fresh, existing = project / "fresh.html", project / "existing.html"
        existing.write_text("old")
        existing.chmod(0o644)
        for path in (fresh, existing):
            xmas("preview", "lead_nurture_email_1", "--contact", "lena@example.com", "--html", str(path))
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
            assert "Lena" in path.read_text()
    finally:
        os.umask(old)


def test_an_html_file_that_cannot_be_written_is_exit_2_with_the_fix(xmas: Cli, project: Path) -> None:
    target = project / "missing-folder" / "p.html"
    result = xmas("preview", "lead_nurture_email_1", "--html", str(target), code=2)
    assert result.stderr == (
        f"xmas: error: --html: cannot write {target}: No such file or directory — name a file in a folder you can "
        "write\n"
    )
