"""Run `xmas` as real subprocesses against the emulators, and signal them at exact points.

A chaos test drives the product the way cron does: every `xmas tick` is its own process, with the project folder
as its working directory and an explicit environment (nothing of the developer's `XMAS_*`, `NOTION_*`, `RESEND_*`
or `CALENDLY_*` leaks in). Setup that is not under test (enrolling many contacts) may run in-process instead.

    runner = Xmas(project, {"XMAS_SECRET": ..., "RESEND_API_KEY": ..., "RESEND_API_URL": emu.base_url})
    proc = runner.start(["tick", "--now", "2026-12-01T10:31:00Z"])    # a Popen
    done = runner.finish(proc, timeout=30)                            # a CompletedProcess (stdout, stderr)
    done = runner.run(["status", "--now", ...], timeout=30)

    # SIGKILL the tick while its 3rd request from now is at the emulator, before any answer:
    fired = kill_when(emu, "received", emu.received_count + 3, lambda: proc)

Signals go to the one process `start` created (its pid), never to a process group.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import tomllib
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from conftest import clean_environ
from local_server import RequestHook
from notion_emulator import NotionEmulator
from resend_emulator import ResendEmulator

from xmas_cli.core.tick_config import TickConfig

# What a process needs from the surrounding environment to start at all; nothing else is passed on.
KEPT = ("PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR", "SYSTEMROOT", "VIRTUAL_ENV")


def xmas_command() -> list[str]:
    """The installed `xmas` console script of this interpreter's environment, else the same entry point via -c."""
    script = shutil.which("xmas", path=str(Path(sys.executable).parent))
    if script is not None:
        return [script]
    return [sys.executable, "-c", "from xmas_cli.commands import main; main()"]


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """A minimal copy of os.environ (see KEPT; never an XMAS_/NOTION_/RESEND_/CALENDLY_ variable: conftest's
    clean_environ drops those), plus `extra`."""
    env = {name: value for name, value in clean_environ().items() if name in KEPT or name.startswith("LC_")}
    env.update(extra or {})
    return env


class Xmas:
    """Starts `xmas` subprocesses in one project folder with one environment; stops whatever it started."""

    def __init__(self, project: Path, env: Mapping[str, str]) -> None:
        self.project = project
        self.env = clean_env(env)
        self.command = xmas_command()
        self.started: list[subprocess.Popen[bytes]] = []
        self._logs = Path(tempfile.mkdtemp(prefix="xmas-chaos-"))  # each process's stdout and stderr
        self._log_of: dict[int, Path] = {}

    def start(self, args: Sequence[str], env: Mapping[str, str] | None = None) -> subprocess.Popen[bytes]:
        """Start `xmas ARGS` (cwd = the project). Its output goes to files: read it with :meth:`finish`."""
        log = self._logs / f"{len(self._log_of) + 1:03d}-{'-'.join(args[:1])}"
        with open(log.with_suffix(".out"), "wb") as out, open(log.with_suffix(".err"), "wb") as err:
            proc = subprocess.Popen(
                [*self.command, *args],
                cwd=self.project,
                env={**self.env, **(env or {})},
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
            )
        self._log_of[proc.pid] = log
        self.started.append(proc)
        return proc

    def finish(self, proc: subprocess.Popen[bytes], timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        """Wait for a started process (killed after `timeout`: the test then fails) and collect its output."""
        args = [str(a) for a in proc.args]  # type: ignore[union-attr]
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise AssertionError(f"{' '.join(args[len(self.command) :])} ran over {timeout} s") from None
        log = self._log_of[proc.pid]
        out, err = (log.with_suffix(s).read_text(encoding="utf-8", errors="replace") for s in (".out", ".err"))
        return subprocess.CompletedProcess(["xmas", *args[len(self.command) :]], proc.returncode, out, err)

    def run(
        self, args: Sequence[str], timeout: float = 60.0, env: Mapping[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run `xmas ARGS` to its end."""
        return self.finish(self.start(args, env), timeout)

    def close(self) -> None:
        """Kill (by pid) whatever this runner started and is still running, and remove the output files."""
        for proc in self.started:
            if proc.poll() is None:
                proc.kill()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=5)
        shutil.rmtree(self._logs, ignore_errors=True)


def describe(result: subprocess.CompletedProcess[str]) -> str:
    """A finished command, for assertion messages."""
    args = " ".join(result.args) if isinstance(result.args, list) else str(result.args)
    return f"{args} → exit {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"


# ------------------------------------------------------------------------------------------ signals


class HookedServer(Protocol):
    on_request: RequestHook | None


def add_hook(emu: HookedServer, hook: RequestHook) -> None:
    """Chain `hook` after the emulator's current one."""
    previous = emu.on_request

    def chained(event: str, index: int, method: str, path: str) -> None:
        if previous is not None:
            previous(event, index, method, path)
        hook(event, index, method, path)

    emu.on_request = chained


def kill_when(
    emu: HookedServer,
    event: str,
    index: int,
    proc_getter: Callable[[], subprocess.Popen[Any] | None],
    sig: int = signal.SIGKILL,
) -> threading.Event:
    """Send `sig` to `proc_getter()` when the emulator's request number `index` (see LocalServer: 1-based, counted
    since the emulator started; use ``emu.received_count + n`` for the n-th from now) reaches `event`:

    * ``"received"``: the request is in flight and unanswered. With SIGKILL the emulator goes on only once the
      process is dead, so the request is then applied and its answer goes nowhere.
    * ``"answered"``: the answer is in the process's socket and it has done nothing with it yet: the process is
      stopped (SIGSTOP) when its request is received and gets `sig` once the answer is written (then SIGCONT,
      so that a signal it handles, e.g. SIGTERM, is handled). With SIGKILL it dies before recording anything.

    Returns an Event set once `sig` was sent and, for SIGKILL, the process is gone (set even when no process was
    running any more). Wait for it (``fired.wait(10)``) before looking at the outcome: it is set from the
    emulator's thread. The emulator records the request itself after that for "received": see :func:`answered`."""
    if event not in ("received", "answered"):
        raise ValueError("event is 'received' or 'answered'")
    fired = threading.Event()

    def signal_it(proc: subprocess.Popen[Any] | None, number: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            if proc is not None and proc.poll() is None:
                proc.send_signal(number)

    def hook(seen: str, number: int, method: str, path: str) -> None:
        if number != index or fired.is_set():
            return
        proc = proc_getter()
        if event == "answered" and seen == "received":
            signal_it(proc, signal.SIGSTOP)
            return
        if seen != event:
            return
        signal_it(proc, sig)
        if proc is not None and sig == signal.SIGKILL:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=10)
        elif event == "answered":
            signal_it(proc, signal.SIGCONT)
        fired.set()

    add_hook(emu, hook)
    return fired


def answered(emu: HookedServer, index: int) -> threading.Event:
    """An Event set once the emulator's request number `index` was answered (or its connection dropped)."""
    done = threading.Event()

    def hook(seen: str, number: int, method: str, path: str) -> None:
        if seen == "answered" and number == index:
            done.set()

    add_hook(emu, hook)
    return done


def kill_after(proc: subprocess.Popen[Any], seconds: float, sig: int = signal.SIGKILL) -> threading.Timer:
    """Send `sig` to `proc` after `seconds` if it is still running. Cancel the returned timer to disarm it."""

    def fire() -> None:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(sig)

    timer = threading.Timer(seconds, fire)
    timer.daemon = True
    timer.start()
    return timer


def hold_when(
    emu: HookedServer, event: str, index: int, timeout: float = 30.0
) -> tuple[threading.Event, threading.Event]:
    """Hold request number `index` at `event` until released: returns ``(arrived, release)``. ``"received"`` keeps
    the request in flight (its process waits for an answer, holding whatever it holds, e.g. the tick lock).
    The hold ends by itself after `timeout` seconds."""
    arrived, release = threading.Event(), threading.Event()

    def hook(seen: str, number: int, method: str, path: str) -> None:
        if seen == event and number == index:
            arrived.set()
            release.wait(timeout)

    add_hook(emu, hook)
    return arrived, release


# ------------------------------------------------------------------------------------ campaign.toml


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    raise TypeError(f"no TOML form for {value!r} here")


def set_keys(path: Path, section: str, values: Mapping[str, object]) -> None:
    """Set `key = value` lines in the `[section]` table of a TOML file: an existing key's line is replaced
    (its comment goes), a new key is added at the end of the table. The result is checked by parsing it."""
    lines = path.read_text().splitlines()
    header = re.compile(rf"\s*\[{re.escape(section)}\]\s*(#.*)?$")
    try:
        start = next(i for i, line in enumerate(lines) if header.match(line))
    except StopIteration:
        raise ValueError(f"{path.name} has no [{section}] table") from None
    for key, value in values.items():
        end = next((i for i in range(start + 1, len(lines)) if lines[i].lstrip().startswith("[")), len(lines))
        line = f"{key} = {_toml_value(value)}"
        pattern = re.compile(rf"\s*{re.escape(key)}\s*=")
        found = next((i for i in range(start + 1, end) if pattern.match(lines[i])), None)
        if found is not None:
            lines[found] = line
        else:
            last = end
            while last > start + 1 and not lines[last - 1].strip():
                last -= 1
            lines.insert(last, line)
    path.write_text("\n".join(lines) + "\n")
    table: Any = tomllib.loads(path.read_text())
    for part in section.split("."):
        table = table[part]
    for key, value in values.items():
        assert table[key] == value, f"{path.name}: [{section}] {key} is {table[key]!r}, not {value!r}"


# ------------------------------------------------------------------------------------------ projects


class InProcess(Protocol):
    """tests/conftest.py's Cli: `xmas` in-process through Typer's CliRunner."""

    def __call__(self, *args: str, input: str | None = None, code: int | None = 0) -> Any: ...


RESEND_KEY = "re_chaos_key_for_xmas"
NOTION_TOKEN = "secret_chaos_token"
T0 = datetime(2026, 12, 1, 10, 30, tzinfo=UTC)
# Emails rendered and sent per slice of a tick, where this version of xmas has slices (`[tick] slice`).
TICK_SLICE = 20 if "slice" in TickConfig.model_fields else None


def no_wait(seconds: float) -> None:
    """A Notion client's sleep for set-up against an emulator without a rate limit: it never waits."""


def at(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class ChaosProject:
    path: Path
    resend: ResendEmulator
    notion: NotionEmulator | None
    xmas: Xmas  # subprocesses
    cli: InProcess  # in-process, for setup

    def set(self, section: str, **values: object) -> None:
        """Change keys of campaign.toml's `[section]` (e.g. `set("campaign", testing=True)`)."""
        set_keys(self.path / "campaign.toml", section, values)

    def tick(self, now: datetime, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        return self.xmas.run(["tick", "--now", at(now), *args], timeout=timeout)

    def start_tick(self, now: datetime, *args: str) -> subprocess.Popen[bytes]:
        return self.xmas.start(["tick", "--now", at(now), *args])

    def tick_killed_once_resend_answers(self, now: datetime) -> None:
        """Start a tick at `now` and SIGKILL it once Resend has answered its next request: the provider accepted
        the send, and the tick recorded nothing of it."""
        started: list[subprocess.Popen[bytes]] = []
        resend = self.resend
        fired = kill_when(resend, "answered", resend.received_count + 1, lambda: started[0] if started else None)
        proc = self.start_tick(now)
        started.append(proc)
        killed = self.xmas.finish(proc)
        assert fired.wait(10) and killed.returncode == -signal.SIGKILL, describe(killed)

    def status(self, now: datetime) -> tuple[int, dict[str, Any]]:
        """`xmas status --json` as a subprocess: (exit code, document)."""
        result = self.xmas.run(["status", "--now", at(now), "--json"], timeout=60)
        try:
            return result.returncode, json.loads(result.stdout)
        except json.JSONDecodeError:
            raise AssertionError(describe(result)) from None

    def enroll_leads(self, count: int, now: datetime = T0, prefix: str = "lead", tries: int = 1) -> list[str]:
        """Enroll `count` new contacts in lead-nurture, in-process; returns their addresses.

        As set-up (`tries` = 1), through the engine with one store for all: about 20 ms each on SQLite. On Notion
        that store has a client of its own that does not pace: in-process commands share one client paced at
        `[notion] requests_per_second`, which made 26 enrollments (208 requests) take 22 s, and the emulator has
        no rate limit to keep to unless a test sets one. Under test (`tries` > 1: through faults), each is a CLI
        invocation, paced, and one that exits 4 (the store did not answer) is run again, as the website would."""
        addresses = [f"{prefix}{n:03d}@example.com" for n in range(count)]
        payloads = [
            {"email": address, "first_name": f"Lead{n}", "business_name": f"Shop {n}"}
            for n, address in enumerate(addresses)
        ]
        if tries == 1:
            from xmas_cli import engine as core
            from xmas_cli.backends import engine_from_config

            engine = engine_from_config(str(self.path / "campaign.toml"), at(now))
            if self.notion is not None:
                from xmas_cli.stores.notion import NotionStore, notion_settings

                engine.store.close()
                store = NotionStore(engine.campaign, notion_settings(engine.campaign, os.environ), sleep=no_wait)
                engine = replace(engine, store=store)
            try:
                for payload in payloads:
                    core.enroll(engine, "lead-nurture", payload)
            finally:
                engine.close()
            return addresses
        for payload in payloads:
            for attempt in range(1, tries + 1):
                args = ("enroll", "lead-nurture", "--payload", "-", "--now", at(now))
                result = self.cli(*args, input=json.dumps(payload), code=0 if attempt == tries else None)
                if result.exit_code == 0:
                    break
                assert result.exit_code == 4, f"enroll {payload['email']} exited {result.exit_code}:\n{result.stderr}"
        return addresses

    def status_in_process(self, now: datetime) -> tuple[int, dict[str, Any] | None]:
        """`xmas status --json` in-process (cheap, for loops): (exit code, document or None on an error)."""
        result = self.cli("status", "--now", at(now), "--json", code=None)
        try:
            return result.exit_code, json.loads(result.stdout)
        except json.JSONDecodeError:
            return result.exit_code, None

    def delivered(self) -> Counter[tuple[str, ...]]:
        """Emails accepted by the Resend emulator by (recipient, sequence, step)."""
        return self.resend.deliveries("sequence", "step")


def configure(project: Path, *, notion: bool) -> None:
    """Resend (unpaced, no backoff waits), slices where supported, and the Notion store if asked."""
    path = project / "campaign.toml"
    set_keys(path, "mailer", {"backend": "resend", "requests_per_second": 100, "retry_backoff_seconds": 0})
    if TICK_SLICE is not None:
        set_keys(path, "tick", {"slice": TICK_SLICE})
    if notion:
        set_keys(path, "store", {"backend": "notion"})
        set_keys(path, "notion", {"requests_per_second": 10})
