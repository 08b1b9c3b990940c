"""The frequency cap: a contact running two sequences never gets more marketing emails than `frequency_cap` allows;
the excess waits (its due moved, the reason noted), transactional email neither waits nor counts."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import Cli, replace_once
from test_notion_e2e import Notion, emu, notion, on_notion  # noqa: F401  (emu and notion are fixtures)

pytestmark = pytest.mark.every_store  # the rules hold on SQLite and on PostgreSQL

T = "2026-12-01T15:00:00Z"
NINA = ["--email", "nina@example.com", "--first-name", "Nina"]


def capped(project: Path, cap: str = "1/24h") -> None:
    config = project / "campaign.toml"
    text = replace_once(
        config.read_text(), 'templates_dir = "templates"\n', f'templates_dir = "templates"\nfrequency_cap = "{cap}"\n'
    )
    config.write_text(text)


def two_sequences(xmas: Cli) -> None:
    """A no-show recovery (its first email due 14:55) and, later, a lead nurture (due now): both running."""
    xmas(
        "enroll",
        "noshow",
        *NINA,
        "--calendly-event-id",
        "evt_1",
        "--scheduled-time",
        "2026-12-01T14:50:00Z",
        "--now",
        T,
    )
    xmas("enroll", "lead-nurture", *NINA, "--now", T)


def test_two_sequences_at_once_send_one_email_a_day(xmas: Cli, project: Path) -> None:
    capped(project)
    two_sequences(xmas)
    dry = xmas("tick", "--dry-run", "--now", T)
    assert "frequency cap (1/24h) until 2026-12-02T15:00:00Z" in dry.stdout
    report = xmas.json("tick", "--now", T)
    actions = sorted((o["action"], o["detail"]) for o in report["outcomes"])
    assert [a for a, _ in actions] == ["held", "sent"]  # both due: the one planned first (the no-show's) goes
    assert [o["sequence"] for o in report["outcomes"] if o["action"] == "sent"] == ["noshow"]
    assert actions[0][1] == "frequency cap (1/24h) until 2026-12-02T15:00:00Z"
    [held] = [r for r in xmas.json("show", "nina@example.com")["emails"] if r["note"] and "frequency" in r["note"]]
    assert (held["state"], held["due"]) == ("Scheduled", "2026-12-02T15:00:00Z")
    assert held["note"] == f"frequency cap (1/24h) until 2026-12-02T15:00:00Z: was due {T}"
    # a day later: the no-show's second email is due too; still one a day, never dropped
    sent_per_day = []
    for day in (2, 3, 4, 5):
        result = xmas.json("tick", "--now", f"2026-12-0{day}T15:00:00Z")
        sent_per_day.append(sum(1 for o in result["outcomes"] if o["action"] == "sent"))
    assert sent_per_day == [1, 1, 1, 1]
    states = [r["state"] for r in xmas.json("show", "nina@example.com")["emails"]]
    assert "Cancelled" not in states and "Skipped" not in states


def test_a_cap_of_two_lets_two_through(xmas: Cli, project: Path) -> None:
    capped(project, "2/24h")
    two_sequences(xmas)
    assert "2 sent" in xmas("tick", "--now", T).stdout


def test_transactional_email_neither_waits_nor_counts(xmas: Cli, project: Path) -> None:
    capped(project)
    xmas("enroll", "lead-nurture", *NINA, "--now", T)
    assert "1 sent" in xmas("tick", "--now", T).stdout
    xmas("enroll", "onboarding", *NINA, "--payment-date", "2026-12-01T14:00:00Z", "--now", T)
    assert "1 sent" in xmas("tick", "--now", "2026-12-01T15:01:00Z").stdout  # onboarding #1, within the day


def test_a_bad_cap_is_a_config_error(xmas: Cli, project: Path) -> None:
    capped(project, "often")
    assert "campaign.frequency_cap: 'often' is not a frequency cap: write N/DURATION" in xmas("status", code=3).stderr


def test_the_cap_on_notion(xmas: Cli, notion: Notion, project: Path) -> None:  # noqa: F811
    capped(project)
    two_sequences(xmas)
    assert "1 sent" in xmas("tick", "--now", T).stdout
    [row] = [r for r in notion.rows() if (r["Note"] or "").startswith("frequency cap")]
    assert (row["State"], row["Due"]) == ("Scheduled", "2026-12-02T15:00:00Z")
    assert row["Note"].startswith("frequency cap (1/24h) until 2026-12-02T15:00:00Z")
    assert "1 sent" in xmas("tick", "--now", "2026-12-02T15:00:00Z").stdout


def test_an_email_that_fails_to_render_does_not_use_up_the_cap(xmas: Cli, project: Path) -> None:
    capped(project)
    template = project / "templates" / "noshow_recovery_email_1.html"  # the one served first (planned 14:55)
    template.write_text(template.read_text().replace("{{ first_name }}", "{{ no_such_variable }}", 1))
    two_sequences(xmas)
    report = xmas.json("tick", "--now", T, code=1)
    assert sorted((o["sequence"], o["action"]) for o in report["outcomes"]) == [
        ("lead-nurture", "sent"),
        ("noshow", "failed"),
    ]
