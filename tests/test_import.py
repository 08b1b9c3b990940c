"""`xmas import FILE.csv --sequence S` through the CLI on SQLite and PostgreSQL (and Notion below): all lines valid
or nothing written, bad lines named by line number and field, duplicates enrolled once, the same file twice
creates nothing new."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import Cli
from test_cli_tick import T0, at

from xmas_cli.backends import engine_from_config

pytestmark = pytest.mark.every_store

GOOD = (
    "Email,First Name,Business Name,Red Systems,Notes\n"
    "ada@example.com,Ada,Ada's Bakery,2,met at the fair\n"
    'bob@example.com,Bob,"Bob, Sons & Co",,\n'
    "ADA@example.com,Ada,Ada's Bakery,2,again\n"
)
BAD = GOOD + "not-an-email,Zed,,,\ncid@example.com,Cid,,lots,\n"


def write(project: Path, name: str, text: str) -> Path:
    path = project / name
    path.write_text(text, encoding="utf-8")
    return path


def stored(project: Path) -> tuple[list[str], list[tuple[str, str, int, str]]]:
    engine = engine_from_config(str(project / "campaign.toml"), at(T0))
    try:
        contacts = sorted(c.email for c in engine.store.all_contacts())
        rows = sorted((r.email, r.sequence, r.step, r.state.value) for r in engine.store.all_emails())
        return contacts, rows
    finally:
        engine.close()


def test_good_and_duplicate_lines_are_enrolled_once_and_again_nothing_new(xmas: Cli, project: Path) -> None:
    write(project, "leads.csv", GOOD)
    first = xmas("import", "leads.csv", "--sequence", "lead-nurture", "--now", at(T0))
    assert first.stdout == (
        "columns left out (no payload field): Notes\n"
        "line 4: ada@example.com: the same enrollment as line 2, skipped\n"
        "imported 3 line(s) of leads.csv into lead-nurture: 2 enrolled, 0 already enrolled, 1 duplicate line(s)\n"
    )
    contacts, rows = stored(project)
    assert contacts == ["ada@example.com", "bob@example.com"]
    assert rows == sorted((e, "lead-nurture", n, "Scheduled") for e in contacts for n in range(1, 6))
    engine = engine_from_config(str(project / "campaign.toml"), at(T0))
    try:
        bob = engine.store.get_contact("bob@example.com")
        ada = engine.store.get_contact("ada@example.com")
        assert bob is not None and bob.fields["business_name"] == "Bob, Sons & Co"
        assert ada is not None and ada.fields["red_systems"] == 2
    finally:
        engine.close()

    again = xmas.json("import", "leads.csv", "--sequence", "lead-nurture", "--now", at(T0))
    assert [(x["line"], x["status"]) for x in again["lines"]] == [
        (2, "already enrolled"),
        (3, "already enrolled"),
        (4, "duplicate"),
    ]
    assert stored(project) == (contacts, rows)


def test_a_bad_line_is_named_and_nothing_is_written(xmas: Cli, project: Path) -> None:
    write(project, "leads.csv", BAD)
    result = xmas("import", "leads.csv", "--sequence", "lead-nurture", "--now", at(T0), code=2)
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert lines[0] == (
        "xmas: error: leads.csv: 2 of 5 line(s) are not valid lead-nurture enrollments — fix the lines listed "
        "(or map their columns with --map); nothing was written"
    )
    assert [line.split(":")[0].strip() + ":" + line.split(":")[1] for line in lines[1:]] == [
        "line 5: email",
        "line 6: red_systems",
    ]
    assert stored(project) == ([], [])


def test_map_and_dry_run(xmas: Cli, project: Path) -> None:
    write(project, "people.csv", "E-mail,Name,Shop\ncid@example.com,Cid,Cid's Cakes\n")
    maps = ("--map", "E-mail=email", "--map", "Name=first_name", "--map", "Shop=")
    dry = xmas("import", "people.csv", "--sequence", "lead-nurture", *maps, "--dry-run", "--now", at(T0))
    assert dry.stdout == (
        "columns left out (no payload field): Shop\n"
        "would import 1 line(s) of people.csv into lead-nurture: 1 to enroll, 0 already enrolled, 0 duplicate line(s)\n"
    )
    assert stored(project) == ([], [])
    xmas("import", "people.csv", "--sequence", "lead-nurture", *maps, "--now", at(T0))
    assert stored(project)[0] == ["cid@example.com"]
    wrong = xmas("import", "people.csv", "--sequence", "lead-nurture", "--map", "Mail=email", code=2)
    assert wrong.stderr.startswith("xmas: error: --map names column(s) the file does not have: Mail — ")
    missing = xmas("import", "nope.csv", "--sequence", "lead-nurture", code=2)
    assert missing.stderr == "xmas: error: nope.csv: no such file — give the path of a CSV file\n"
