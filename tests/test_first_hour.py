"""The first hour of a new user, each stumble found then with the test that would have caught it: the docs' enroll
examples, the cron line, tables at 80 columns, a missing XMAS_SECRET, --version, -h, `show`'s data, an .eml's Date."""

from __future__ import annotations

import email
import email.policy
import io
import os
import re
import shlex
import sqlite3
import subprocess
import sys
import tomllib
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest
from conftest import SECRET, Cli
from test_commands import all_commands
from typer.testing import CliRunner

from xmas_cli.commands import app
from xmas_cli.commands.enroll import option_name
from xmas_cli.commands.env import Env, use
from xmas_cli.core.payloads import MODELS

ROOT = Path(__file__).resolve().parents[1]
XMAS = Path(sys.executable).with_name("xmas")
NOW = "2026-12-01T10:30:00Z"
CRON_PATH = "/usr/bin:/bin"  # what cron gives a job (crontab(5))


def db_rows(project: Path, sql: str) -> list[dict[str, Any]]:
    con = sqlite3.connect(project / ".xmas" / "xmas.db")
    con.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in con.execute(sql)]
    finally:
        con.close()


# ------------------------------------------------------------------------------------------------ enroll options


def documented_enroll_commands() -> list[str]:
    """Every `xmas enroll SEQUENCE --option ...` line of the README and docs/ (continuations joined), as written."""
    found = []
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for block in re.findall(r"```bash\n(.*?)\n```", page.read_text(), re.S):
            for line in re.sub(r"\\\n\s*", " ", block).splitlines():
                line = re.sub(r"\s+#(?!\d).*$", "", line).strip()
                if line.startswith("xmas enroll ") and " --email " in line:
                    found.append(line)
    return found


def test_the_docs_enroll_examples_run_as_written_and_store_numbers_as_numbers(xmas: Cli, project: Path) -> None:
    lines = documented_enroll_commands()
    assert any("--revenue-leak-total 14700" in line and "--overall-score 62" in line for line in lines), lines
    for line in lines:
        args = shlex.split(line)[1:]
        result = xmas(*args, "--now", "2026-12-01T10:31:00Z")
        assert " enrolled: " in result.stdout or "already enrolled" in result.stdout, line
    [sarah] = db_rows(project, "SELECT fields FROM contacts WHERE email = 'sarah@example.com'")
    assert '"revenue_leak_total": 14700' in sarah["fields"] and '"overall_score": 62' in sarah["fields"]


def _schema_type(schema: dict[str, Any]) -> str:
    """The JSON Schema type of a field, through anyOf [..., null]: pydantic's own account of what it accepts."""
    kinds = {s.get("type") for s in schema.get("anyOf", [schema])} - {"null"}
    return kinds.pop() if len(kinds) == 1 else "mixed"


def test_every_payload_field_is_an_option_of_the_type_its_model_checks(project: Path) -> None:
    """Each numeric or boolean field of every payload kind is typed so on the command line (a text option hands the
    model "14700", which its strict integers refuse), checked against the model's own JSON Schema."""
    by_kind = {"integer": "int", "number": "float", "boolean": "boolean"}
    sequences = tomllib.loads((project / "campaign.toml").read_text())["sequences"]
    commands = dict(all_commands())
    kinds_seen, checked = set(), 0
    for sequence, table in sequences.items():
        model = MODELS[table["payload"]]
        kinds_seen.add(table["payload"])
        params = {p.opts[0]: p for p in getattr(commands[f"enroll {sequence}"], "params", [])}
        for field, schema in model.model_json_schema()["properties"].items():
            types = {s.get("type") for s in schema.get("anyOf", [schema])} - {"null"}
            expected = by_kind.get(types.pop(), "str") if len(types) == 1 else "str"
            got = params[option_name(field)].type.name
            assert got == expected, f"{sequence}: {option_name(field)} is {got}, the model checks {expected}"
            checked += expected != "str"
    assert kinds_seen == set(MODELS)  # every payload kind is some shipped sequence's
    assert checked >= 6  # assessment's four system counts, revenue leak and score, at least


def test_a_number_option_given_text_is_refused_naming_it(xmas: Cli, project: Path) -> None:
    args = ["enroll", "assessment", "--email", "a@example.com", "--first-name", "A", "--business-name", "B"]
    args += ["--red-systems", "1", "--orange-systems", "1", "--yellow-systems", "1", "--green-systems", "1"]
    result = xmas(*args, "--overall-score", "sixty", code=2)
    assert "--overall-score" in result.stderr and "'sixty' is not a valid int" in result.stderr
    assert not (project / ".xmas" / "xmas.db").exists()


# ------------------------------------------------------------------------------------------------ cron


def test_the_cron_line_init_prints_runs_with_crons_path(tmp_path: Path) -> None:
    """Run `xmas init` as a process, then its crontab line exactly as cron would: /bin/sh, PATH=/usr/bin:/bin."""
    env = {"PATH": CRON_PATH, "HOME": str(tmp_path), "LANG": "C.UTF-8"}
    out = subprocess.run(
        [str(XMAS), "init", "shop"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60, check=True
    ).stdout
    [line] = [x.strip() for x in out.splitlines() if x.strip().startswith("* * * * * ")]
    command = line.removeprefix("* * * * * ")
    assert f" {XMAS} tick " in command  # the xmas that printed it, by its absolute path
    (tmp_path / "shop" / ".env").write_text(f"XMAS_SECRET={SECRET}\nXMAS_NOW={NOW}\n")
    ran = subprocess.run(["/bin/sh", "-c", command], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert ran.returncode == 0, (ran.returncode, ran.stderr, (tmp_path / "shop" / "tick.log").read_text())
    assert (tmp_path / "shop" / "tick.log").read_text() == f"tick {NOW}: 0 due\n"


def test_running_xmas_is_the_started_script_made_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from xmas_cli.commands.setup import running_xmas

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "xmas"
    script.write_text("#!/bin/sh\n")
    script.chmod(0o755)
    link = tmp_path / "xmas"  # a pipx-style link: kept as the path, so it survives an upgrade of what it names
    link.symlink_to(script)
    monkeypatch.chdir(tmp_path)
    assert running_xmas("./xmas", str(bin_dir / "python3")) == str(link)
    assert running_xmas("bin/xmas", "/nowhere/python3") == str(script)
    # started some other way (python -m, a test runner): the xmas beside the interpreter
    assert running_xmas("/usr/lib/python3/pytest", str(bin_dir / "python3")) == str(script)


# ------------------------------------------------------------------------------------------------ 80 columns


def at_width(width: int, *args: str) -> tuple[int, str]:
    """`xmas ARGS` in-process on a console `width` columns wide (COLUMNS, as a user sets it for a pipe)."""
    out = io.StringIO()
    with use(Env(environ={**os.environ, "COLUMNS": str(width)}, stdout=out, stderr=io.StringIO())):
        result = CliRunner().invoke(app, list(args))
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, out.getvalue() + result.stdout


def assert_readable(text: str, width: int) -> None:
    """Every line of every table within `width`, and no cell cut to "…" (titles and plain lines, which may name a
    long path, wrap in the terminal as any text does)."""
    lines = [line for line in text.splitlines() if line[:1] in "┏┃┡│└"]
    assert lines, text
    too_long = [line for line in lines if len(line) > width]
    assert not too_long, "\n".join(too_long)
    assert "…" not in text, text


def test_xmas_demo_at_80_columns_shows_every_address_and_date_whole(tmp_path: Path) -> None:
    env = {**os.environ, "COLUMNS": "80", "PATH": f"{XMAS.parent}:{CRON_PATH}"}
    out = subprocess.run(
        [str(XMAS), "demo", "--now", "2026-12-01T09:00:00Z"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    table = out.split("\ncampaign: ")[0]  # the timeline; the lines after it name paths, however long
    assert_readable(table, 80)
    rows = db_rows(tmp_path / "xmas-demo", "SELECT email, sequence, step, due, sent_at FROM emails")
    assert len(rows) > 20
    lines = table.splitlines()
    for row in rows:  # its line holds the address, the email and the day; the hour follows on it or the next
        day, _, hour = (row["sent_at"] or row["due"])[:16].partition("T")
        at = [
            i
            for i, line in enumerate(lines)
            if f"│ {row['email']} " in line and f" {row['sequence']} #{row['step']} " in line
        ]
        assert at and any(f" {day} " in lines[i] and hour in lines[i] + lines[i + 1] for i in at), row


def _enroll_sample(xmas: Cli) -> None:
    for address in ("olivia.longname@example.com", "sam@example.com"):
        xmas("enroll", "lead-nurture", "--email", address, "--first-name", "O", "--business-name", "B", "--now", NOW)
    xmas("enroll", "assessment", "--payload", "-", "--now", NOW, input=_assessment())
    xmas("event", "booked", "--email", "sarah@example.com", "--at", "2026-12-02T09:00:00Z")


def _assessment() -> str:
    import json

    return json.dumps(
        {
            "email": "sarah@example.com",
            "first_name": "Sarah",
            "business_name": "Sarah's Salon",
            **{"red_systems": 2, "orange_systems": 1, "yellow_systems": 2, "green_systems": 3},
            "revenue_leak_total": 14700,
            "overall_score": 62,
            "email_1_sent_at": NOW,
            "email_1_status": "sent",
        }
    )


def test_status_show_and_tick_at_80_columns_keep_addresses_and_dates_whole(xmas: Cli) -> None:
    _enroll_sample(xmas)
    code, status = at_width(80, "status", "--now", "2026-12-03T10:31:00Z")
    assert code == 0
    assert_readable(status, 80)
    [waiting] = db_rows(Path.cwd(), "SELECT count(*) AS n FROM emails WHERE sequence = 'lead-nurture'")
    assert re.search(rf"│ lead-nurture +│ +{waiting['n']} │ +· │ +· │", status), status  # all still Scheduled
    assert "no email is Sent, Failed, Skipped, Paused" in status  # the columns it left out
    code, shown = at_width(80, "show", "sarah@example.com")
    assert code == 0
    assert_readable(shown, 80)
    assert "│ 2026-12-02T09:00:00Z │ booked │ booked@2026-12-02T09:00:00Z │" in shown  # it fits: as it is
    assert "assessment #2" in shown and "2026-12-02 10:30" in shown and "Sent by website" in shown
    code, ticked = at_width(80, "tick", "--dry-run", "--now", "2026-12-03T10:31:00Z")
    assert code == 0
    assert_readable(ticked, 80)
    assert "olivia.longname@example.com" in ticked and "lead-nurture #1" in ticked and "would-send" in ticked
    code, listed = at_width(80, "templates", "list")
    assert code == 0
    assert_readable(listed, 80)
    assert "│ onboarding_phase1_email_1 │" in listed and "templates/" not in listed  # ids whole; no path column
    # wide enough, the same tables keep every column and ISO 8601 times
    code, wide = at_width(200, "show", "sarah@example.com")
    assert "christmas_email_2" in wide and "2026-12-02T10:30:00Z" in wide and "│ website │" in wide
    assert "templates/christmas_email_2.html" in at_width(200, "templates", "list")[1]


# ------------------------------------------------------------------------------------------------ XMAS_SECRET


def test_a_command_that_signs_links_refuses_to_start_without_xmas_secret(
    xmas: Cli, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("XMAS_SECRET")
    fix = "export XMAS_SECRET=$(python -c 'import secrets; print(secrets.token_urlsafe(32))')"
    for args in (
        ["tick", "--now", NOW],  # nothing is due: it says so now, not when the first email is
        ["tick", "--dry-run", "--now", NOW],
        ["enroll", "lead-nurture", "--email", "l@example.com", "--first-name", "L", "--now", NOW],
        ["serve", "--port", "0"],
    ):
        result = xmas(*args, code=3)
        assert result.stderr.startswith("xmas: error: XMAS_SECRET is not set, or shorter than 16 characters"), args
        assert fix in result.stderr and result.stdout == "", args
    assert not (project / ".xmas").exists()  # nothing opened, nothing written
    monkeypatch.setenv("XMAS_SECRET", "too-short")
    assert "shorter than 16 characters" in xmas("tick", "--now", NOW, code=3).stderr
    monkeypatch.setenv("XMAS_SECRET", SECRET)
    assert xmas("tick", "--now", NOW).stdout == f"tick {NOW}: 0 due\n"


# ------------------------------------------------------------------------------------------------ --version, -h


def test_version_prints_the_installed_version(xmas: Cli) -> None:
    assert xmas("--version").stdout == f"xmas {version('xmas-cli')}\n"


def test_every_command_and_sub_command_answers_h_as_it_answers_help(project: Path) -> None:
    runner = CliRunner()
    paths = [""] + [path for path, _ in all_commands()]
    paths += sorted({" ".join(p.split()[:-1]) for p in paths if " " in p})  # the groups: enroll, templates, ...
    assert {"enroll assessment", "templates check", "db", "store copy"} <= set(paths)
    for path in paths:
        args = path.split()
        short = runner.invoke(app, [*args, "-h"], prog_name="xmas")
        long = runner.invoke(app, [*args, "--help"], prog_name="xmas")
        assert short.exit_code == 0, (path, short.stdout, short.stderr)
        assert short.stdout.startswith(f"Usage: {' '.join(['xmas', *args])} "), (path, short.stdout)
        assert short.stdout == long.stdout, path


# ------------------------------------------------------------------------------------------------ show


def test_show_prints_the_business_and_assessment_data_in_text_and_json(xmas: Cli, project: Path) -> None:
    xmas("enroll", "assessment", "--payload", "-", "--now", NOW, input=_assessment().replace("Sarah's", "[b]Sarah's"))
    con = sqlite3.connect(project / ".xmas" / "xmas.db")  # a person edited the store: a control character in it
    with con:
        con.execute("UPDATE contacts SET fields = json_set(fields, '$.weakest_system_1', 'GPS' || char(27) || '[2J')")
    con.close()
    out = xmas("show", "sarah@example.com").stdout
    data = out.split("data:\n", 1)[1].split("\ntimeline", 1)[0]
    assert data.splitlines() == [
        "  business_name      [b]Sarah's Salon",  # as written: no markup read
        "  red_systems        2",
        "  orange_systems     1",
        "  yellow_systems     2",
        "  green_systems      3",
        r"  weakest_system_1   GPS\x1b[2J",  # the control character shown, not sent to the terminal
        "  revenue_leak_total 14700",
        "  overall_score      62",
    ]
    fields = xmas.json("show", "sarah@example.com")["contact"]["fields"]
    assert fields["revenue_leak_total"] == 14700 and fields["overall_score"] == 62
    assert fields["business_name"] == "[b]Sarah's Salon" and fields["red_systems"] == 2


def test_an_eml_is_dated_when_it_is_sent_not_when_it_was_due(xmas: Cli, project: Path) -> None:
    payload = ["--email", "nina@example.com", "--first-name", "Nina", "--calendly-event-id", "evt_1"]
    xmas("enroll", "noshow", *payload, "--scheduled-time", "2026-12-01T10:00:00Z", "--now", NOW)
    [first] = db_rows(project, "SELECT due FROM emails WHERE step = 1")
    late = datetime(2026, 12, 1, 13, 7, 42, tzinfo=UTC)  # cron was down: sent hours after its due time
    assert first["due"] < "2026-12-01T13:00:00Z"
    xmas("tick", "--now", late.isoformat())
    [path] = (project / ".xmas" / "outbox").glob("*.eml")
    message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert message["Date"] == format_datetime(late)
    assert parsedate_to_datetime(str(message["Date"])) == late
