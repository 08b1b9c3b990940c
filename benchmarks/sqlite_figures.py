"""Figures on the embedded default (SQLite store; outbox mailer, or Resend through its emulator)."""

from __future__ import annotations

import hashlib
import shutil
import sqlite3
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from support import (
    PAYLOADS,
    T0,
    Context,
    Finished,
    Result,
    Row,
    Shell,
    Spread,
    address,
    after,
    at,
    clone_sqlite_contacts,
    enroll_seed,
    new_campaign,
    set_keys,
    shipped_tick_time,
    use_test_emulators,
    xmas_command,
)

HEAVY_MODULES = ("notion_client", "httpx", "resend", "jinja2")
IDLE_NOW = after(hours=60)  # the population's rows due before this are Sent; none is due at it
IDLE_ROWS = 100_000
SEND_NOW = after(minutes=1)  # each lead-nurture contact's first email is due (T0); its next one two days later
RESEND_KEY = "re_bench_key_for_xmas"
DB = Path(".xmas") / "xmas.db"


def require(done: Finished, codes: Sequence[int] = (0,)) -> Finished:
    if done.code not in codes:
        raise RuntimeError(done.describe())
    return done


# ------------------------------------------------------------------------------------ seeds and copies


def seed_campaign(ctx: Context, sequences: Sequence[str]) -> Path:
    """A campaign folder with one contact enrolled through the CLI in each sequence (at T0); made once per run."""
    key = "seed:" + ",".join(sequences)
    if key not in ctx.memo:
        folder = ctx.folder("seed")
        new_campaign(folder)
        shell = ctx.shell(folder)
        for sequence in sequences:
            enroll_seed(shell, sequence)
        ctx.memo[key] = folder
    return ctx.memo[key]


def lead_campaign(ctx: Context, contacts: int, name: str) -> Path:
    """A campaign folder whose db holds `contacts` lead-nurture enrollments made at T0 (the first one through the
    CLI, the others copies of its rows): `contacts` first emails are due from T0 on."""
    folder = ctx.folder(name)
    shutil.copytree(seed_campaign(ctx, ["lead-nurture"]), folder)
    clone_sqlite_contacts(folder / DB, {address("lead-nurture", 0): "lead-nurture"}, range(1, contacts))
    return folder


def content_digest(db: Path) -> str:
    """A digest of a db's schema and rows: the same product writes the same seed db (its clock is --now)."""
    con = sqlite3.connect(db)
    try:
        dump = "\n".join(con.iterdump())
    finally:
        con.close()
    return hashlib.sha256(dump.encode()).hexdigest()[:12]


def population(ctx: Context, rows: int) -> Path:
    """A SQLite db of at least `rows` email rows in the schema the store creates: one contact per sequence enrolled
    through the CLI, copied until there are enough, and every row due before IDLE_NOW marked Sent. Built once and
    kept in the cache folder, named by row count and by what the seeds wrote (so a change of schema or of row
    format builds it anew)."""
    seeds = seed_campaign(ctx, list(PAYLOADS))
    seed_db = seeds / DB
    cached = ctx.cache / f"population-{rows}-{content_digest(seed_db)}.db"
    if cached.exists():
        return cached
    ctx.cache.mkdir(parents=True, exist_ok=True)
    partial = cached.with_suffix(".partial")
    shutil.copy(seed_db, partial)
    per_set = _count(partial, "SELECT COUNT(*) FROM emails")
    sets = -(-rows // per_set)
    started = time.perf_counter()
    clone_sqlite_contacts(partial, {address(s, 0): s for s in PAYLOADS}, range(1, sets))
    con = sqlite3.connect(partial)
    with con:
        con.execute(
            "UPDATE emails SET state = 'Sent', sent_at = due, attempts = 1, message_id = '<bench-' || id || '>' "
            "WHERE state = 'Scheduled' AND due <= ?",
            (IDLE_NOW,),
        )
    con.close()
    partial.rename(cached)
    print(f"  built {cached.name} ({sets * per_set} rows) in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    return cached


def _count(db: Path, sql: str) -> int:
    con = sqlite3.connect(db)
    try:
        return int(con.execute(sql).fetchone()[0])
    finally:
        con.close()


def idle_campaign(ctx: Context, name: str, rows: int = IDLE_ROWS) -> Path:
    """A campaign folder holding a copy of the population db: `rows` rows, none due at IDLE_NOW."""
    folder = ctx.folder(name)
    new_campaign(folder)
    (folder / DB).parent.mkdir(mode=0o700)
    shutil.copy(population(ctx, rows), folder / DB)
    return folder


def state_counts(db: Path) -> str:
    con = sqlite3.connect(db)
    try:
        found = con.execute("SELECT state, COUNT(*) FROM emails GROUP BY state ORDER BY 2 DESC").fetchall()
    finally:
        con.close()
    return ", ".join(f"{count:,} {state}" for state, count in found)


# ------------------------------------------------------------------------------------------ 1. --help


def help_figure(ctx: Context) -> Result:
    python = sys.executable
    commands = {
        "python -c pass": [python, "-c", "pass"],
        'python -c "import typer"': [python, "-c", "import typer"],
        "xmas --help": [*xmas_command(), "--help"],
    }
    shell = ctx.shell(ctx.work)
    walls: dict[str, list[float]] = {name: [] for name in commands}
    for args in commands.values():
        require(shell.run(args))  # warm-up: bytecode caches written
    for _ in range(ctx.runs):
        for name, args in commands.items():
            walls[name].append(require(shell.run(args)).wall)
    help_wall = Spread.of(walls["xmas --help"])
    ratios = Spread.of(h / t for h, t in zip(walls["xmas --help"], walls['python -c "import typer"'], strict=True))
    rows = [
        Row("`xmas --help` wall time", help_wall.show("s"), "< 0.3 s", help_wall.median < 0.3),
        Row('`xmas --help` ÷ `python -c "import typer"`', ratios.show("×"), "≤ 2×", ratios.median <= 2),
        Row('`python -c "import typer"` wall time', Spread.of(walls['python -c "import typer"']).show("s")),
        Row("`python -c pass` wall time", Spread.of(walls["python -c pass"]).show("s")),
    ]
    method = (
        f"The three commands run in turn, {ctx.runs} rounds after one warm-up round; wall time from fork to exit of "
        "each child. The ratio is taken within each round (the same moment's load), then its median and range."
    )
    return Result(rows, method)


# ------------------------------------------------------------------------------------ 2. idle tick


def import_times(stderr: str) -> dict[str, int]:
    """Module → cumulative import time in µs, from `python -X importtime` output (which also lists the imports
    that failed, e.g. Windows-only modules)."""
    found: dict[str, int] = {}
    for line in stderr.splitlines():
        parts = line.removeprefix("import time:").split("|")
        if not line.startswith("import time:") or len(parts) != 3 or not parts[1].strip().isdigit():
            continue
        found[parts[2].strip()] = int(parts[1])
    return found


def imported_packages(times: dict[str, int]) -> set[str]:
    return {name.split(".")[0] for name in times}


def third_party(packages: set[str]) -> list[str]:
    """The packages that are not Python's own (nor the import system's, e.g. an editable install's finder)."""
    return sorted(p for p in packages if p not in sys.stdlib_module_names and not p.startswith("_") and p != "site")


def slowest_packages(times: dict[str, int], count: int = 8) -> str:
    top = sorted(((us, name) for name, us in times.items() if "." not in name), reverse=True)[:count]
    return ", ".join(f"{name} {us / 1000:.0f} ms" for us, name in top)


def idle_sqlite_figure(ctx: Context) -> Result:
    folder = idle_campaign(ctx, "idle-sqlite")
    shell = ctx.shell(folder)
    tick = ("tick", "--now", IDLE_NOW)
    shell.ok(*tick)  # warm-up
    runs = shell.repeat(tick, ctx.runs)
    probe = require(shell.run([sys.executable, "-X", "importtime", *xmas_command(), *tick, "--json"]))
    times = import_times(probe.stderr)
    heavy = sorted(imported_packages(times) & set(HEAVY_MODULES))
    due = '"due": 0' in probe.stdout
    wall, rss = Spread.of(r.wall for r in runs), Spread.of(r.rss_mb for r in runs)
    rows = [
        Row("idle tick, SQLite: wall time", wall.show("s"), "< 0.3 s", wall.median < 0.3),
        Row("idle tick, SQLite: peak RSS", rss.show("MB", 1), "< 35 MB", rss.median < 35),
        Row(
            "idle tick, SQLite: " + "/".join(HEAVY_MODULES) + " imported",
            ", ".join(heavy) or "none",
            "none",
            not heavy,
        ),
    ]
    method = (
        f"`xmas tick --now {IDLE_NOW}` in a campaign folder whose db holds {IDLE_ROWS:,} rows "
        f"({state_counts(folder / DB)}), none due: {ctx.runs} runs after a warm-up, each a fresh child; peak RSS is "
        "that child's ru_maxrss (os.wait4). The imports come from one more run under `python -X importtime`"
        f"{'' if due else ' (its --json answer did not say 0 due: check)'}."
    )
    packages = imported_packages(times)
    details = [
        f"Slowest top-level imports (cumulative, under -X importtime): {slowest_packages(times)}.",
        "",
        f"{len(packages)} top-level modules imported (or tried: -X importtime lists failed imports too); those not "
        f"from the standard library: {', '.join(third_party(packages))}.",
    ]
    return Result(rows, method, details)


# ------------------------------------------------------------------------------------ 4, 5. CPU per email


@dataclass(frozen=True)
class SendRun:
    busy: Finished
    idle: Finished
    sent: int

    @property
    def per_email(self) -> float:
        return (self.busy.cpu - self.idle.cpu) / max(1, self.sent)


def sent_rows(folder: Path) -> int:
    return _count(folder / DB, "SELECT COUNT(*) FROM emails WHERE state = 'Sent'")


def send_runs(
    ctx: Context, template: Path, env: dict[str, str], before_each: Callable[[], object] = lambda: None
) -> list[SendRun]:
    """On a fresh copy of `template` each time: one tick that sends every due email, then an idle tick. Emails
    sent are the rows the tick recorded as Sent."""
    contacts = _count(template / DB, "SELECT COUNT(*) FROM contacts")
    tick = ("tick", "--now", SEND_NOW, "--limit", str(contacts))
    runs = []
    for _ in range(ctx.runs):
        folder = ctx.folder(template.name + "-run")
        shutil.copytree(template, folder)
        shell = Shell(folder, env, ctx.work / "logs")
        before_each()
        before = sent_rows(folder)
        busy = shell.ok(*tick)
        sent = sent_rows(folder) - before
        idle = shell.ok(*tick)
        runs.append(SendRun(busy, idle, sent))
        shutil.rmtree(folder)
    return runs


def send_rows(name: str, runs: list[SendRun], goal_ms: float) -> list[Row]:
    per_email = Spread.of(r.per_email for r in runs)
    busy, idle = Spread.of(r.busy.cpu for r in runs), Spread.of(r.idle.cpu for r in runs)
    sent = Spread.of(r.sent for r in runs)
    return [
        Row(
            f"CPU per email, {name}",
            per_email.show("ms", 2, 1000),
            f"≤ {goal_ms:g} ms",
            per_email.median * 1000 <= goal_ms,
        ),
        Row(f"  {name}: CPU of the sending tick / of an idle tick", f"{busy.show('s')} / {idle.show('s')}"),
        Row(f"  {name}: emails sent per tick", sent.show("", 0)),
    ]


def send_template(ctx: Context, name: str) -> Path:
    contacts = 200 if ctx.quick else 1000
    folder = lead_campaign(ctx, contacts, name)
    set_keys(folder / "campaign.toml", "tick", {"budget_seconds": 600})
    return folder


def cpu_outbox_figure(ctx: Context) -> Result:
    template = send_template(ctx, "cpu-outbox")
    runs = send_runs(ctx, template, ctx.shell(template).env)
    method = (
        f"{runs[0].sent} lead-nurture contacts enrolled at T0 (one through `xmas enroll --payload`, the others copies "
        "of its rows written with sqlite3), `[tick] budget_seconds = 600`; `xmas tick --now T0+1m --limit N` sends "
        "them all, then the same tick again finds nothing due. CPU per email = (CPU of the sending tick − CPU of "
        "the idle tick) ÷ rows the tick recorded Sent: the idle tick's start-up cost is subtracted. "
        f"{ctx.runs} runs, each on a fresh copy."
    )
    return Result(send_rows("SQLite + outbox", runs, 2), method)


def cpu_resend_figure(ctx: Context) -> Result:
    use_test_emulators()
    from resend_emulator import ResendEmulator

    template = send_template(ctx, "cpu-resend")
    set_keys(template / "campaign.toml", "mailer", {"backend": "resend", "requests_per_second": 100})
    with ResendEmulator(api_key=RESEND_KEY, rate_limit=1000.0) as emu:
        env = ctx.shell(template, {"RESEND_API_KEY": RESEND_KEY, "RESEND_API_URL": emu.base_url}).env
        runs = send_runs(ctx, template, env, emu.reset)  # each run's idempotency keys are new to the emulator
        requests, delivered = len(emu.requests), len(emu.sent)  # of the last run
    method = (
        'As the outbox figure, with `[mailer] backend = "resend"`, `requests_per_second = 100`, against '
        "tests/resend_emulator.py (rate limit raised to 1000 requests/s, cleared before each run) through "
        f"RESEND_API_URL. The last run made {requests} requests (batches of up to 100) and the emulator accepted "
        f"{delivered} emails."
    )
    return Result(send_rows("SQLite + Resend batches", runs, 1), method)


# -------------------------------------------------------------------------------------------- 8. status


def status_figure(ctx: Context) -> Result:
    db = population(ctx, ctx.status_rows)
    folder = ctx.folder("status")
    toml = new_campaign(folder)
    set_keys(toml, "store", {"path": str(db)})
    shell = ctx.shell(folder)
    budget = 30.0 if ctx.quick else 120.0
    runs = shell.repeat(("status", "--now", IDLE_NOW), ctx.runs, budget)
    wall = Spread.of(r.wall for r in runs)
    measure = f"`xmas status`, SQLite, {_count(db, 'SELECT COUNT(*) FROM emails'):,} rows"
    rows = [Row(measure, wall.show("s"), "< 1 s", wall.median < 1)]
    method = (
        f"`xmas status --now {IDLE_NOW}` on a db of {state_counts(db)} rows and "
        f"{_count(db, 'SELECT COUNT(*) FROM contacts'):,} contacts: one contact per sequence enrolled through the CLI, "
        "its rows copied with sqlite3 (every table the store created, the address replaced), rows due before now "
        f"marked Sent. Built once and kept in {ctx.cache}. Up to {ctx.runs} runs, fewer when one more would end "
        f"past {budget:g} s: {len(runs)} here (no warm-up run)."
    )
    return Result(rows, method)


# -------------------------------------------------------------------------------------------- 9. enroll


def enroll_figure(ctx: Context) -> Result:
    folder = ctx.folder("enroll")
    new_campaign(folder)
    shell = ctx.shell(folder)
    enroll_seed(shell, "assessment", 0)  # warm-up: creates the db
    runs = [enroll_seed(shell, "assessment", n) for n in range(1, ctx.runs + 1)]
    wall = Spread.of(r.wall for r in runs)
    rows = [Row("`xmas enroll` (SQLite), wall time per call", wall.show("s"), "< 0.3 s", wall.median < 0.3)]
    method = (
        f"`xmas enroll assessment --payload FILE --now {at(T0)} --json`, a new contact each call, {ctx.runs} calls "
        "after a warm-up call that created the db."
    )
    return Result(rows, method)


# ------------------------------------------------------------- 10, 11. the old bench/ scripts' figures


def due_query_figure(ctx: Context) -> Result:
    """bench/idle_tick.py: the due query and a whole idle tick, in-process, at 100,000 rows."""
    from xmas_cli.backends import engine_from_config
    from xmas_cli.tick.run import tick

    folder = idle_campaign(ctx, "due-query")
    repeat = 10 if ctx.quick else 50
    now = datetime.fromisoformat(IDLE_NOW)
    engine = engine_from_config(str(folder / "campaign.toml"), now=IDLE_NOW, env=ctx.shell(folder).env)
    query, idle = [], []
    try:
        for _ in range(repeat):
            started = time.perf_counter()
            found = list(engine.store.due_emails(now))
            query.append(time.perf_counter() - started)
            started = time.perf_counter()
            report = tick(engine)
            idle.append(time.perf_counter() - started)
            if found or report.due:
                raise RuntimeError(f"{len(found)} rows due at {IDLE_NOW}: the population is not idle")
    finally:
        engine.close()
    query_spread, idle_spread = Spread.of(query), Spread.of(idle)
    rows = [
        Row(f"due query, in-process, {IDLE_ROWS:,} rows", query_spread.show("ms", 3, 1000)),
        Row("idle tick (lock, batch journal, due query), in-process", idle_spread.show("ms", 3, 1000)),
    ]
    method = (
        "What bench/idle_tick.py measured: the store's due query and the engine's whole tick, in this process (no "
        f"start-up), {repeat} times each on the idle db of figure 2."
    )
    return Result(rows, method)


def backlog_figure(ctx: Context) -> Result:
    """bench/backlog.py: a backlog drains a bounded slice per tick, each tick its own process."""
    contacts, budget = (500, 1.0) if ctx.quick else (12_000, None)  # full: the tick's time as shipped
    folder = lead_campaign(ctx, contacts, "backlog")
    if budget is not None:
        set_keys(folder / "campaign.toml", "tick", {"budget_seconds": budget})
    timing = f"`[tick] budget_seconds = {budget:g}`" if budget is not None else shipped_tick_time()
    shell = ctx.shell(folder)
    ticks: list[tuple[Finished, int]] = []
    while sent_rows(folder) < contacts and len(ticks) < 100:
        before = sent_rows(folder)
        done = shell.xmas("tick", "--now", SEND_NOW)
        ticks.append((done, sent_rows(folder) - before))
        if ticks[-1][1] == 0:
            break
    sent = sum(n for _, n in ticks)
    cpu = sum(t.cpu for t, _ in ticks)
    longest = max(t.wall for t, _ in ticks)
    drained = sent == contacts and all(n > 0 for _, n in ticks)
    rows = [
        Row(
            f"backlog of {contacts:,} due emails, " + (f"budget {budget:g} s" if budget else "the minute as shipped"),
            f"{sent:,} sent in {len(ticks)} ticks, {min(n for _, n in ticks):,}–{max(n for _, n in ticks):,} a tick, "
            f"longest tick {longest:.1f} s, exit codes {sorted({t.code for t, _ in ticks})}",
            "drains; every tick sends; each < 60 s",
            drained and longest < 60,
        ),
        Row("  backlog: CPU per email (whole ticks, start-up included)", f"{1000 * cpu / max(1, sent):.2f} ms"),
    ]
    method = (
        f"What bench/backlog.py measured, with real processes: {contacts:,} lead-nurture contacts enrolled as in "
        f"figure 4 (all due), {timing}, then `xmas tick --now T0+1m` again and again "
        "until every email is recorded Sent (or a tick sends nothing)."
    )
    details = [
        "| tick | sent | wall | CPU | exit |",
        "|---|---|---|---|---|",
        *(f"| {n} | {count} | {t.wall:.1f} s | {t.cpu:.1f} s | {t.code} |" for n, (t, count) in enumerate(ticks, 1)),
    ]
    failed = [f"- tick {n}: {t.describe()}" for n, (t, _) in enumerate(ticks, 1) if t.code]
    if failed:
        details.extend(["", *failed])
    return Result(rows, method, details)
