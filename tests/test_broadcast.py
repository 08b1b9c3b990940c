"""`xmas broadcast` through the CLI on SQLite and PostgreSQL, sent by real ticks through the real resend SDK to the
emulator, which counts what went: who is selected and why not, nobody twice (also after a crash half-way), and
consent, send windows, the frequency cap and unsubscribes as for the sequences."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import SECRET, Cli, clean_environ, replace_once, store_env
from resend_emulator import ResendEmulator
from test_cli_tick import T0, at

from xmas_cli.backends import engine_from_config
from xmas_cli.core.model import Contact

pytestmark = pytest.mark.every_store
XMAS = str(Path(sys.executable).with_name("xmas"))

SPOTS = "Subject: {{ first_name }}, 3 spots left\n\n<p>Hi {{ first_name }}, 3 diagnostic spots are left.</p>\n"
WHERE = "segment = CRITICAL and not booked"


def person(email: str, name: str, red: int) -> str:
    return json.dumps({"email": email, "first_name": name, "business_name": f"{name} Co", "red_systems": red})


@pytest.fixture
def people(xmas: Cli, project: Path) -> None:
    """ada: CRITICAL; bob: CRITICAL and booked; cid: OPTIMIZE; dee: CRITICAL, unsubscribed."""
    (project / "templates" / "spots_left.html").write_text(SPOTS)
    for email, name, red in (("ada", "Ada", 3), ("bob", "Bob", 2), ("cid", "Cid", 0), ("dee", "Dee", 4)):
        body = person(f"{email}@example.com", name, red)
        xmas("enroll", "lead-nurture", "--payload", "-", "--now", at(T0), input=body)
    xmas("event", "booked", "--email", "bob@example.com", "--now", at(T0))
    xmas("unsubscribe", "dee@example.com", "--now", at(T0))


def broadcasts(emu: ResendEmulator) -> Counter[str]:
    return Counter(address for (address, sequence), n in emu.deliveries("sequence").items() for _ in range(n)
                   if sequence == "broadcast")  # fmt: skip


def rows(project: Path, name: str | None = None) -> list[tuple[str, str, str, str | None]]:
    engine = engine_from_config(str(project / "campaign.toml"), at(T0))
    try:
        found = [
            r
            for r in engine.store.all_emails()
            if r.sequence == "broadcast" and name in (None, r.data.get("broadcast"))
        ]
        return sorted((r.email, r.state.value, at(r.due), r.note) for r in found)
    finally:
        engine.close()


def test_dry_run_lists_who_and_why_not_and_writes_nothing(xmas: Cli, people: None, project: Path) -> None:
    out = xmas("broadcast", "spots_left", "--where", WHERE, "--dry-run", "--now", at(T0)).stdout
    assert out == (
        "would get it: ada@example.com\n"
        "not selected: bob@example.com\n"
        "not selected: cid@example.com\n"
        f"skipped: dee@example.com (unsubscribed (operator) {at(T0)})\n"
        f"broadcast spots_left (spots_left) due {at(T0)}: would schedule 1, 0 reached before, 1 unsubscribed, "
        "2 not selected\n"
    )
    assert rows(project) == []


def test_a_broadcast_goes_once_and_never_twice(
    xmas: Cli, people: None, project: Path, resend_api: ResendEmulator
) -> None:
    later = T0 + timedelta(hours=1)
    out = xmas("broadcast", "spots_left", "--where", WHERE, "--now", at(later)).stdout
    assert out.splitlines()[-1] == (
        f"broadcast spots_left (spots_left) due {at(later)}: scheduled 1, 0 reached before, 1 unsubscribed, "
        "2 not selected"
    )
    assert rows(project) == [
        ("ada@example.com", "Scheduled", at(later), "broadcast spots_left"),
        ("dee@example.com", "Skipped", at(later), "contact is unsubscribed"),
    ]
    xmas("tick", "--now", at(later))
    assert broadcasts(resend_api) == Counter({"ada@example.com": 1})
    [sent] = [m for m in resend_api.sent if {"name": "sequence", "value": "broadcast"} in m["tags"]]
    assert sent["subject"] == "Ada, 3 spots left" and "List-Unsubscribe" in sent["headers"]

    again = xmas("broadcast", "spots_left", "--where", WHERE, "--now", at(later + timedelta(minutes=5))).stdout
    assert again.splitlines()[:2] == [
        "not again: ada@example.com (this broadcast's row is there: Sent)",
        "not again: dee@example.com (this broadcast's row is there: Skipped)",
    ]
    assert "scheduled 0, 2 reached before, 0 unsubscribed, 2 not selected" in again
    xmas("tick", "--now", at(later + timedelta(minutes=6)))
    assert broadcasts(resend_api) == Counter({"ada@example.com": 1})
    report = xmas.json("report", "--now", at(later + timedelta(minutes=7)))
    assert [(b["broadcast"], b["template"], b["sent"]) for b in report["broadcasts"]] == [
        ("spots_left", "spots_left", 1)
    ]  # its own line, under its name (tests/test_broadcast_report.py: two of them)
    shown = xmas.json("show", "ada@example.com")
    assert [(e["sequence"], e["template"], e["state"]) for e in shown["emails"] if e["sequence"] == "broadcast"] == [
        ("broadcast", "spots_left", "Sent")
    ]


def test_nobody_enrolls_in_the_broadcast_sequence(xmas: Cli, project: Path) -> None:
    result = xmas("import", "x.csv", "--sequence", "broadcast", code=2)
    assert result.stderr.startswith("xmas: error: unknown sequence 'broadcast' — use one of: signup, lead-nurture")
    (project / "x.csv").write_text("email,first_name\nada@example.com,Ada\n")
    assert xmas("import", "x.csv", "--sequence", "broadcast", code=2).stderr == result.stderr
    assert rows(project) == []


def test_a_reply_cancels_a_pending_broadcast(xmas: Cli, people: None, project: Path) -> None:
    xmas("broadcast", "spots_left", "--where", WHERE, "--at", at(T0 + timedelta(days=1)), "--now", at(T0))
    xmas("event", "replied", "--email", "ada@example.com", "--now", at(T0 + timedelta(hours=2)))
    assert rows(project)[0] == (
        "ada@example.com",
        "Cancelled",
        at(T0 + timedelta(days=1)),
        f"replied at {at(T0 + timedelta(hours=2))}",
    )


def test_the_cap_the_window_and_consent_apply(xmas: Cli, people: None, project: Path) -> None:
    path = project / "campaign.toml"
    text = replace_once(path.read_text(), '# frequency_cap = "1/24h"', 'frequency_cap = "1/24h"')
    path.write_text(text)
    xmas("tick", "--now", at(T0))  # lead-nurture email 1 goes to ada and cid
    xmas("broadcast", "spots_left", "--all", "--now", at(T0 + timedelta(hours=1)))
    xmas("tick", "--now", at(T0 + timedelta(hours=1)))
    held = {e: (state, note) for e, state, _, note in rows(project)}
    assert held["ada@example.com"] == (
        "Scheduled",
        f"frequency cap (1/24h) until {at(T0 + timedelta(days=1))}: was due {at(T0 + timedelta(hours=1))}",
    )
    assert held["dee@example.com"] == ("Skipped", "contact is unsubscribed")

    text = replace_once(path.read_text(), 'frequency_cap = "1/24h"', '# frequency_cap = "1/24h"')
    path.write_text(replace_once(text, '# send_window = "08:00-20:00"', 'send_window = "08:00-20:00"'))
    night = "2026-12-02T04:00:00Z"  # 23:00 in Toronto
    xmas("broadcast", "spots_left", "--all", "--name", "night", "--at", night, "--now", night)
    xmas("tick", "--now", night)
    [(_, _, due, note)] = [r for r in rows(project, "night") if r[0] == "cid@example.com"]
    assert (due, note) == (
        "2026-12-02T13:00:00Z",
        f"window opens 08:00 America/Toronto: was due {night}",
    )

    months = "2027-07-01T12:00:00Z"  # implied consent (6 months) has run out
    dry = xmas("broadcast", "spots_left", "--all", "--name", "summer", "--dry-run", "--now", months).stdout
    assert "would get it: ada@example.com (the tick will skip it: no consent: implied consent expired on " in dry


def _crash_env(project: Path) -> dict[str, str]:
    return clean_environ({"XMAS_CONFIG": str(project / "campaign.toml"), "XMAS_SECRET": SECRET, **store_env()})


def test_a_crash_mid_broadcast_never_sends_twice(project: Path, resend_api: ResendEmulator) -> None:
    count = 400
    (project / "templates" / "spots_left.html").write_text(SPOTS)
    engine = engine_from_config(str(project / "campaign.toml"), at(T0))
    try:
        for n in range(count):
            engine.store.save_contact(Contact(email=f"p{n:03d}@example.com", fields={"first_name": f"P{n}"},
                                              updated_at=T0))  # fmt: skip
    finally:
        engine.close()
    command = [XMAS, "broadcast", "spots_left", "--all", "--now", at(T0)]
    env = {**_crash_env(project), **{k: v for k, v in os.environ.items() if k.startswith("RESEND_")}}
    process = subprocess.Popen(command, cwd=project, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    written = 0
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and process.poll() is None:
        written = len(rows(project))
        if written >= 20:
            process.send_signal(signal.SIGKILL)
            break
        time.sleep(0.01)
    process.wait(timeout=10)
    assert process.returncode == -signal.SIGKILL, "the broadcast finished before it could be killed"
    killed_at = len(rows(project))
    assert 0 < killed_at < count
    runner = subprocess.run([XMAS, "tick", "--now", at(T0)], cwd=project, env=env,
                            capture_output=True, text=True, timeout=120)  # fmt: skip
    assert runner.returncode == 0, runner.stderr
    assert sum(broadcasts(resend_api).values()) == killed_at  # what was written before the crash went out
    again = subprocess.run(command, cwd=project, env=env, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    assert f"scheduled {count - killed_at}, {killed_at} reached before" in again.stdout
    tick = subprocess.run([XMAS, "tick", "--now", at(T0 + timedelta(minutes=1))],
                          cwd=project, env=env, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert tick.returncode == 0, tick.stderr
    sent: Counter[Any] = broadcasts(resend_api)
    assert len(sent) == count and set(sent.values()) == {1}  # everyone once, nobody twice


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (
            ("spots_left",),
            "xmas: error: say whom to send it to — give either --where EXPR or --all, not both and not neither",
        ),
        (("spots_left", "--all", "--where", "booked"), "xmas: error: say whom to send it to — give either --where"),
        (("nope", "--all"), "xmas: error: template 'nope' does not exist in SQLite"),
        (("spots_left", "--where", "segment = "), "xmas: error: --where ends where a value after '=' was expected"),
        (("spots_left", "--where", "segmnt = CRITICAL"), "xmas: error: --where: unknown field 'segmnt' — use one of: "),
        (("spots_left", "--where", "in leads"), "xmas: error: --where: unknown sequence 'leads'"),
        (("spots_left", "--all", "--name", "a b"), "xmas: error: broadcast name 'a b' is not a plain name"),
        (("spots_left", "--all", "--at", "tomorrow"), "xmas: error: --at: 'tomorrow' is not an ISO 8601 time"),
    ],
)
@pytest.mark.sqlite_only
def test_bad_input_is_named_and_writes_nothing(
    xmas: Cli, people: None, project: Path, args: tuple[str, ...], error: str
) -> None:
    result = xmas("broadcast", *args, "--now", at(T0), code=2)
    assert result.stderr.startswith(error) and result.stdout == ""
    assert rows(project) == []
