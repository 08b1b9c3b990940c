"""What every figure of run.py needs: child processes measured one by one, a clean environment, campaign folders,
enrollments cloned in bulk, and medians with their spread.

Each `xmas` runs as its own process, like cron or the website runs it. Its wall time is taken around fork and exit,
and its CPU time and peak RSS come from os.wait4() of that one child: nothing else the benchmark does is counted.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parents[1]
TESTS = ROOT / "tests"
SECRET = "bench-secret-0123456789abcdef"
SCRUBBED_PREFIXES = ("XMAS_", "NOTION_", "RESEND_", "CALENDLY_")
T0 = datetime(2026, 12, 1, 10, 30, tzinfo=UTC)  # every enrollment's "now"; ticks and status run later than this


def at(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def after(**delta: float) -> str:
    """T0 plus a delta, as the --now argument."""
    return at(T0 + timedelta(**delta))


def use_test_emulators() -> None:
    """The emulators live in tests/ and import each other as plain modules."""
    if str(TESTS) not in sys.path:
        sys.path.insert(0, str(TESTS))


# --------------------------------------------------------------------------------------------- numbers


@dataclass(frozen=True)
class Spread:
    """Several runs of one measure."""

    values: tuple[float, ...]

    @classmethod
    def of(cls, values: Iterable[float]) -> Spread:
        found = tuple(values)
        if not found:
            raise ValueError("no values")
        return cls(found)

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    @property
    def low(self) -> float:
        return min(self.values)

    @property
    def high(self) -> float:
        return max(self.values)

    def show(self, unit: str, digits: int = 2, scale: float = 1.0) -> str:
        """The median, then the range and the count: `0.41 s (0.39 to 0.45, 5 runs)` with an en dash for "to"."""
        median, low, high = (f"{v * scale:.{digits}f}" for v in (self.median, self.low, self.high))
        value = f"{median} {unit}" if unit else median
        if len(self.values) == 1:
            return f"{value} (1 run)"
        return f"{value} ({low}–{high}, {len(self.values)} runs)"


# -------------------------------------------------------------------------------------------- results


@dataclass
class Row:
    """One line of the results table."""

    measure: str
    value: str
    goal: str = "—"
    met: bool | None = None  # None: no goal


@dataclass
class Result:
    """What a figure found: its table rows, how it was measured, and details (markdown lines)."""

    rows: list[Row]
    method: str
    details: list[str] = field(default_factory=list)


@dataclass
class Context:
    """The options of this run, and where its files go."""

    quick: bool
    runs: int
    status_rows: int
    work: Path  # removed at the end
    cache: Path  # kept between runs (the big SQLite files)
    memo: dict[str, Path] = field(default_factory=dict)
    load_at_start: str = field(default_factory=lambda: load_average())

    def folder(self, name: str) -> Path:
        """A path under the work folder, `NAME-1` or the next number free (the folder itself is not made)."""
        number = 1
        while (self.work / f"{name}-{number}").exists():
            number += 1
        return self.work / f"{name}-{number}"

    def shell(self, cwd: Path, extra: Mapping[str, str] | None = None) -> Shell:
        return Shell(cwd, clean_env(extra), self.work / "logs")


# ------------------------------------------------------------------------------------------- processes


def xmas_command() -> list[str]:
    """The `xmas` console script of this interpreter's environment (pyproject.toml's [project.scripts])."""
    script = shutil.which("xmas", path=str(Path(sys.executable).parent))
    if script is None:
        raise SystemExit(f"no `xmas` next to {sys.executable}: activate the venv and `pip install -e .` first")
    return [script]


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """os.environ without any XMAS_*, NOTION_*, RESEND_* or CALENDLY_* variable, then XMAS_SECRET and `extra`."""
    env = {name: value for name, value in os.environ.items() if not name.startswith(SCRUBBED_PREFIXES)}
    env["XMAS_SECRET"] = SECRET
    env.update(extra or {})
    return env


@dataclass(frozen=True)
class Finished:
    """One child process, measured: exit code, wall seconds, CPU seconds (user + sys), peak RSS in MB."""

    args: tuple[str, ...]
    code: int
    wall: float
    cpu: float
    rss_mb: float
    stdout: str
    stderr: str
    started: float  # time.monotonic() at the start
    ended: float

    def describe(self) -> str:
        tail = (self.stderr.strip() or self.stdout.strip())[-400:]
        return f"`{' '.join(self.args)}` exited {self.code}" + (f": {tail}" if tail else "")


class Running:
    """A child started with its output going to files; `wait` reaps it with os.wait4 to read its own rusage."""

    def __init__(self, args: Sequence[str], cwd: Path, env: Mapping[str, str], stdin: str | None, logs: Path) -> None:
        self.args = tuple(args)
        logs.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(dir=logs, prefix="proc-")
        os.close(handle)
        self._out, self._err = Path(name + ".out"), Path(name + ".err")
        self.started = time.monotonic()
        self._wall_start = time.perf_counter()
        with open(self._out, "wb") as out, open(self._err, "wb") as err:
            self.proc = subprocess.Popen(
                list(args),
                cwd=cwd,
                env=dict(env),
                stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                stdout=out,
                stderr=err,
            )
        if stdin is not None:
            self._feed(self.proc.stdin, stdin)

    @staticmethod
    def _feed(pipe: IO[bytes] | None, text: str) -> None:
        assert pipe is not None
        try:
            pipe.write(text.encode())
        except BrokenPipeError:
            pass
        finally:
            pipe.close()

    def terminate(self) -> None:
        """SIGTERM to this one process (by pid), if it still runs."""
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)

    def wait(self, timeout: float = 600.0) -> Finished:
        """Reap the child (killed after `timeout` seconds) and measure it."""
        timer = threading.Timer(timeout, self._kill)
        timer.daemon = True
        timer.start()
        try:
            _, status, usage = os.wait4(self.proc.pid, 0)
        finally:
            timer.cancel()
        wall = time.perf_counter() - self._wall_start
        ended = time.monotonic()
        self.proc.returncode = os.waitstatus_to_exitcode(status)
        out = self._out.read_text(encoding="utf-8", errors="replace")
        err = self._err.read_text(encoding="utf-8", errors="replace")
        self._out.unlink(missing_ok=True)
        self._err.unlink(missing_ok=True)
        return Finished(
            args=self.args,
            code=self.proc.returncode,
            wall=wall,
            cpu=usage.ru_utime + usage.ru_stime,
            rss_mb=usage.ru_maxrss / 1024,  # kB on Linux
            stdout=out,
            stderr=err,
            started=self.started,
            ended=ended,
        )

    def _kill(self) -> None:
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGKILL)


@dataclass
class Shell:
    """Runs commands in one folder with one environment."""

    cwd: Path
    env: dict[str, str]
    logs: Path = field(default_factory=lambda: Path(tempfile.gettempdir()))

    def start(self, args: Sequence[str], stdin: str | None = None) -> Running:
        return Running(args, self.cwd, self.env, stdin, self.logs)

    def run(self, args: Sequence[str], stdin: str | None = None, timeout: float = 600.0) -> Finished:
        return self.start(args, stdin).wait(timeout)

    def xmas(self, *args: str, stdin: str | None = None, timeout: float = 600.0) -> Finished:
        return self.run([*xmas_command(), *args], stdin, timeout)

    def repeat(self, args: Sequence[str], runs: int, budget: float = float("inf")) -> list[Finished]:
        """`xmas ARGS` `runs` times, each required to exit 0; fewer when another run would end past `budget`
        seconds (judged by the last run; at least one run)."""
        done: list[Finished] = []
        started = time.monotonic()
        while len(done) < runs and (not done or time.monotonic() - started + done[-1].wall <= budget):
            done.append(self.ok(*args))
        return done

    def ok(self, *args: str, stdin: str | None = None, codes: Sequence[int] = (0,)) -> Finished:
        """`xmas ARGS`, which must exit with one of `codes`."""
        done = self.xmas(*args, stdin=stdin)
        if done.code not in codes:
            raise RuntimeError(done.describe())
        return done


# --------------------------------------------------------------------------------------------- campaigns


def toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    raise TypeError(f"no TOML form for {value!r} here")


def set_keys(path: Path, section: str, values: Mapping[str, object]) -> None:
    """Set `key = value` in the `[section]` table of a TOML file (replacing the line, or adding it at the end of the
    table), then check the result by parsing it."""
    lines = path.read_text().splitlines()
    header = re.compile(rf"\s*\[{re.escape(section)}\]\s*(#.*)?$")
    start = next((i for i, line in enumerate(lines) if header.match(line)), None)
    if start is None:
        raise ValueError(f"{path.name} has no [{section}] table")
    for key, value in values.items():
        end = next((i for i in range(start + 1, len(lines)) if lines[i].lstrip().startswith("[")), len(lines))
        pattern = re.compile(rf"\s*{re.escape(key)}\s*=")
        found = next((i for i in range(start + 1, end) if pattern.match(lines[i])), None)
        line = f"{key} = {toml_value(value)}"
        if found is None:
            lines.insert(end, line)
        else:
            lines[found] = line
    path.write_text("\n".join(lines) + "\n")
    table: Any = tomllib.loads(path.read_text())
    for part in section.split("."):
        table = table[part]
    for key, value in values.items():
        if table[key] != value:
            raise ValueError(f"{path.name}: [{section}] {key} is {table[key]!r}, not {value!r}")


def shipped_campaign() -> tuple[Path, Path]:
    """The campaign.toml and templates/ that ship with xmas: in the package (xmas_cli/defaults), else at the root
    of the repository (where they were before the package carried them)."""
    try:
        from xmas_cli.defaults import CAMPAIGN, TEMPLATES
    except ImportError:
        return ROOT / "campaign.toml", ROOT / "templates"
    return CAMPAIGN, TEMPLATES


def shipped(section: str, key: str) -> Any:
    """A value of the shipped campaign.toml."""
    return tomllib.loads(shipped_campaign()[0].read_text())[section][key]


def shipped_tick_time() -> str:
    """How long a tick sends as shipped, for a figure's method: `[tick] end_before_next_minute = "2s"` as shipped,
    and the budget when the shipped file sets one."""
    tick = tomllib.loads(shipped_campaign()[0].read_text())["tick"]
    text = f'`[tick] end_before_next_minute = "{tick.get("end_before_next_minute", "2s")}"` as shipped'
    return text + (f", `budget_seconds = {tick['budget_seconds']:g}`" if "budget_seconds" in tick else " (no budget)")


def new_campaign(folder: Path) -> Path:
    """A copy of the shipped campaign.toml and templates/ in a fresh folder; returns the toml's path."""
    campaign, templates = shipped_campaign()
    folder.mkdir(parents=True)
    shutil.copy(campaign, folder / "campaign.toml")
    shutil.copytree(templates, folder / "templates")
    return folder / "campaign.toml"


# ----------------------------------------------------------------------------------------- enrollments

# One payload per sequence, as the website sends it (tests/test_cli_tick.py's people); payload() adds the address.
PAYLOADS: dict[str, dict[str, Any]] = {
    "lead-nurture": {"first_name": "Lena", "business_name": "Lena Nails"},
    "assessment": {
        "first_name": "Sarah",
        "business_name": "Sarah's Salon",
        "red_systems": 2,
        "orange_systems": 1,
        "yellow_systems": 2,
        "green_systems": 3,
        "weakest_system_1": "GPS",
        "weakest_system_2": "Money",
        "revenue_leak_total": 14700,
        "email_1_sent_at": at(T0),
        "email_1_status": "sent",
    },
    "noshow": {"first_name": "Nina", "calendly_event_id": "evt_1", "scheduled_time": at(T0)},
    "postcall": {"first_name": "Paul", "business_name": "Paul's Physio", "call_date": at(T0), "objection": "price"},
    "onboarding": {
        "first_name": "Olivia",
        "business_name": "Olivia Hair",
        "payment_date": at(T0),
        "portal_url": "https://portal.example.org/olivia",
    },
}
PREFIXES = {"lead-nurture": "lead", "assessment": "asmt", "noshow": "nosh", "postcall": "post", "onboarding": "onbd"}


def address(sequence: str, number: int) -> str:
    """`lead0000042@example.com`: every address of one sequence has the same length."""
    return f"{PREFIXES[sequence]}{number:07d}@example.com"


def payload(sequence: str, number: int) -> dict[str, Any]:
    return {"email": address(sequence, number), **PAYLOADS[sequence]}


def enroll_seed(shell: Shell, sequence: str, number: int = 0) -> Finished:
    """`xmas enroll SEQUENCE --payload FILE --now T0` for one contact, through the CLI."""
    path = shell.cwd / f"payload-{sequence}-{number}.json"
    path.write_text(json.dumps(payload(sequence, number)))
    return shell.ok("enroll", sequence, "--payload", str(path), "--now", at(T0), "--json")


def clone_sqlite_contacts(db: Path, seeds: Mapping[str, str], copies: range) -> None:
    """Copy every row the seed enrollments wrote (any table with an `email` column), once per number in `copies`,
    with the seed's address replaced by that number's address in every text value. `seeds` maps each seed address
    to its sequence. The rows are the product's own, byte for byte but for the address: this is how thousands of
    contacts are enrolled in a second."""
    con = sqlite3.connect(db)
    try:
        tables = [name for (name,) in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        with con:
            for table in tables:
                columns = [row[1] for row in con.execute(f"PRAGMA table_info({table})")]
                if "email" not in columns:
                    continue
                marks = ", ".join("?" for _ in seeds)
                rows = con.execute(f"SELECT * FROM {table} WHERE email IN ({marks})", list(seeds)).fetchall()
                insert = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' for _ in columns)})"
                for seed, sequence in seeds.items():
                    own = [row for row in rows if row[columns.index("email")] == seed]
                    con.executemany(insert, _renamed(own, seed, sequence, copies))
    finally:
        con.close()


def _renamed(rows: list[tuple[Any, ...]], seed: str, sequence: str, copies: range) -> Iterable[tuple[Any, ...]]:
    for number in copies:
        new = address(sequence, number)
        for row in rows:
            yield tuple(value.replace(seed, new) if isinstance(value, str) else value for value in row)


# ------------------------------------------------------------------------------------------- machine


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or platform.machine()


def load_average() -> str:
    try:
        return " ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        return "unknown"


def git_revision() -> str:
    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False)
        return done.stdout.strip() if done.returncode == 0 else ""

    head = git("rev-parse", "--short", "HEAD") or "unknown"
    return head + (" + uncommitted changes" if git("status", "--porcelain") else "")
