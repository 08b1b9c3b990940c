"""The command line as a new user meets it: xmas init, xmas demo anywhere, one enroll subcommand per sequence,
help that shows what it means, a closed pipe, and a README that names every command and option."""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
from conftest import Cli, clean_environ, replace_once

from xmas_cli.commands import app
from xmas_cli.defaults import CAMPAIGN, ENV_EXAMPLE

README = Path(__file__).resolve().parents[1] / "README.md"
DOCS = README.parent / "docs"


def manual() -> str:
    """The README and every page of docs/: where a command or option must be named."""
    return "\n".join(page.read_text() for page in [README, *sorted(DOCS.glob("*.md"))])


NOSHOW = ["--email", "nina@example.com", "--first-name", "Nina", "--calendly-event-id", "evt_1"]
NOSHOW += ["--scheduled-time", "2026-12-01T10:00:00Z", "--now", "2026-12-01T10:30:00Z"]


def _rows(project: Path) -> int:
    with sqlite3.connect(project / ".xmas" / "xmas.db") as con:
        return int(con.execute("SELECT count(*) FROM emails").fetchone()[0])


# ------------------------------------------------------------------------------------------------ init


def test_init_writes_a_campaign_folder_and_says_what_to_run_next(xmas: Cli, tmp_path: Path) -> None:
    target = tmp_path / "shop"
    out = xmas("init", str(target)).stdout
    assert (target / "campaign.toml").is_file() and (target / ".env.example").is_file()
    assert len(list((target / "templates").glob("*.html"))) == 20  # 19 emails and their layout
    assert "* * * * * cd" in out and "xmas tick" in out  # the crontab line
    assert "xmas templates check" in out and "xmas demo" in out and ".env" in out
    # what it wrote is a working campaign
    assert xmas("templates", "check", "--config", str(target / "campaign.toml")).exit_code == 0


def test_init_never_overwrites_without_force(xmas: Cli, tmp_path: Path) -> None:
    target = tmp_path / "shop"
    target.mkdir()
    (target / "campaign.toml").write_text("# mine\n")
    result = xmas("init", str(target), code=2)
    assert "campaign.toml" in result.stderr and "--force" in result.stderr
    assert (target / "campaign.toml").read_text() == "# mine\n"
    assert not (target / "templates").exists() and not (target / ".env.example").exists()  # nothing written
    (target / "notes.txt").write_text("keep me")
    xmas("init", str(target), "--force")
    assert "[sequences.noshow]" in (target / "campaign.toml").read_text()
    assert (target / "notes.txt").read_text() == "keep me"


def test_env_example_names_every_variable_the_readme_lists_and_holds_no_value() -> None:
    table = (DOCS / "configuration.md").read_text().split("\n## Environment", 1)[1].split("\n## ", 1)[0]
    listed = set(re.findall(r"`((?:XMAS|NOTION|RESEND|CALENDLY)_[A-Z_]+)`", table)) - {"XMAS_WEBHOOK_KEY_"}
    assert len(listed) >= 15
    example = ENV_EXAMPLE.read_text()
    assignments = dict(line.split("=", 1) for line in example.splitlines() if line and not line.startswith("#"))
    assert listed <= set(assignments), listed - set(assignments)
    assert all(value == "" for value in assignments.values())


def test_demo_runs_the_packaged_campaign_in_an_empty_folder(
    xmas: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.chdir(empty)
    out = xmas("demo", "--now", "2026-12-01T09:00:00Z").stdout
    assert f"campaign: {CAMPAIGN.resolve()}" in out  # the packaged campaign (./campaign.toml in a checkout)
    assert re.search(r"20 emails sent; 20 \.eml files in .*xmas-demo", out), out[-400:]


# ------------------------------------------------------------------------------------------------ enroll


def test_enroll_help_shows_only_the_sequences_own_fields_with_the_required_marked(xmas: Cli) -> None:
    out = xmas("enroll", "noshow", "--help").stdout
    for option in ("--calendly-event-id", "--scheduled-time", "--email", "--first-name", "--business-name"):
        assert option in out
    for foreign in ("--red-systems", "--call-date", "--payment-date", "--portal-url"):
        assert foreign not in out
    assert re.search(r"--calendly-event-id TEXT\s+Required\.", out)
    assert not re.search(r"--business-name TEXT\s+Required", out)
    listing = xmas("enroll", "--help").stdout
    assert all(name in listing for name in ("signup", "lead-nurture", "assessment", "noshow", "postcall", "onboarding"))


def test_an_option_of_another_sequence_is_refused_and_nothing_is_written(xmas: Cli, project: Path) -> None:
    result = xmas("enroll", "noshow", *NOSHOW, "--red-systems", "0", code=2)
    assert "--red-systems" in result.stderr and "assessment" in result.stderr
    assert "0: an unexpected" not in result.stderr  # the value went with its option
    assert not (project / ".xmas" / "xmas.db").exists() or _rows(project) == 0
    typo = xmas("enroll", "noshow", *NOSHOW, "--frist-name", "N", code=2)
    assert "--frist-name" in typo.stderr and "no sequence takes it" in typo.stderr
    doc = xmas.json("enroll", "noshow", *NOSHOW, "--red-systems", "0", code=2)
    assert doc["error"]["fields"][0]["field"] == "--red-systems"


def test_a_payload_key_the_sequence_does_not_define_is_kept(xmas: Cli, project: Path) -> None:
    payload = {"email": "nina@example.com", "first_name": "Nina", "utm_source": "newsletter"}
    (project / "p.json").write_text(json.dumps(payload))
    doc = xmas.json(
        "enroll",
        "noshow",
        "--payload",
        "p.json",
        "--calendly-event-id",
        "evt_9",
        "--scheduled-time",
        "2026-12-01T10:00:00Z",
        "--now",
        "2026-12-01T10:30:00Z",
    )
    assert doc["created"]
    with sqlite3.connect(project / ".xmas" / "xmas.db") as con:
        data = [json.loads(d) for (d,) in con.execute("SELECT data FROM emails")]
    assert data and all(d["utm_source"] == "newsletter" for d in data)


def test_a_sequence_added_to_campaign_toml_gets_its_subcommand(xmas: Cli, project: Path) -> None:
    path = project / "campaign.toml"
    extra = (
        '\n[sequences.winback]\ndescription = "Win back a quiet lead."\npayload = "lead"\nkey = ["email"]\n'
        'steps = [{ template = "lead_nurture_email_1", offset = "0h", testing_offset = "0m" }]\n'
    )
    path.write_text(replace_once(path.read_text(), "[sequences.onboarding]", extra + "\n[sequences.onboarding]"))
    assert "Win back a quiet lead." in xmas("enroll", "winback", "--help").stdout
    doc = xmas.json("enroll", "winback", "--email", "w@example.com", "--first-name", "W")
    assert doc["created"] and doc["sequence"] == "winback"


def test_without_a_campaign_toml_enroll_says_so_with_exit_3(
    xmas: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "empty").mkdir()
    monkeypatch.chdir(tmp_path / "empty")
    assert "campaign.toml: no such file" in xmas("enroll", "noshow", "--email", "a@example.com", code=3).stderr
    assert "xmas init" in xmas("enroll", "--help").stdout


# ------------------------------------------------------------------------------------------------ help


def _commands(group: typer.core.TyperGroup, ctx: typer.Context, prefix: str = "") -> Iterator[tuple[str, object]]:
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        assert command is not None
        path = f"{prefix}{name}"
        if isinstance(command, typer.core.TyperGroup):
            yield from _commands(command, typer.Context(command, parent=ctx, info_name=name), path + " ")
        else:
            yield path, command


def all_commands() -> list[tuple[str, object]]:
    root = typer.main.get_command(app)
    assert isinstance(root, typer.core.TyperGroup)
    return list(_commands(root, typer.Context(root, info_name="xmas")))


def test_every_command_and_option_has_help_and_flags_take_no_value(project: Path) -> None:
    commands = all_commands()
    names = {path for path, _ in commands}
    assert {"enroll noshow", "tick", "templates list", "templates check", "init", "notion setup"} <= names
    for path, command in commands:
        assert getattr(command, "help", None), f"xmas {path} has no help"
        for param in getattr(command, "params", []):
            if param.param_type_name == "option":
                assert param.help, f"xmas {path} {param.opts[0]} has no help"


def test_help_shows_the_environment_variables_and_no_value_for_flags(xmas: Cli) -> None:
    out = xmas("tick", "--help").stdout
    assert "[env: XMAS_CONFIG" in out and "[env: XMAS_NOW]" in out
    assert re.search(r"--dry-run\s+Show what", out) and re.search(r"--json\s+Print", out)
    assert "<bool>" not in out


def test_the_readme_or_the_docs_name_every_command_and_option() -> None:
    readme = manual()
    missing = []
    for path, command in all_commands():
        if f"xmas {path}" not in readme:
            missing.append(f"xmas {path}")
        for param in getattr(command, "params", []):
            if param.param_type_name == "option" and param.opts[0] != "--help" and param.opts[0] not in readme:
                missing.append(f"xmas {path} {param.opts[0]}")
    assert not missing, "neither the README nor docs/ mention: " + ", ".join(sorted(set(missing)))


def test_a_closed_pipe_is_not_a_failure(project: Path) -> None:
    env = clean_environ()
    command = [sys.executable, "-c", "from xmas_cli.commands import main; main()", "preview", "christmas_email_2"]
    for args in (command, [*command[:3], "templates", "list"]):
        pipeline = subprocess.Popen(args, cwd=project, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert pipeline.stdout is not None and pipeline.stderr is not None
        first = pipeline.stdout.readline()
        pipeline.stdout.close()  # what `| head -1` does after one line
        code = pipeline.wait(timeout=60)
        stderr = pipeline.stderr.read().decode()
        assert first and code == 0 and stderr == "", (code, stderr)
