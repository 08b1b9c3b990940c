"""Figures on the PostgreSQL store: an idle tick and `xmas status` on a million rows, and a drain of due emails by 1,
2 and 4 tick runners at once through Resend batches (tests/resend_emulator.py), checked email by email.

The server is XMAS_BENCH_DATABASE_URL, else XMAS_TEST_DATABASE_URL, else postgresql://postgres@127.0.0.1:5432/test
(read by this process; the children get only the DSN of their schema). Every measure works in a schema of its own
(`xmas_bench_…`, every connection's search_path), created with `xmas db migrate` and dropped at its end.

Where the time goes is measured from /proc: the runners' CPU is their own rusage (os.wait4), the server's is the
CPU of the postmaster's children (live ones from /proc/PID/stat, ended ones from the postmaster's cutime/cstime),
the emulator's is this process's (it runs in a thread here), and the machine's from /proc/stat.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from support import (
    PAYLOADS,
    PREFIXES,
    Context,
    Finished,
    Result,
    Row,
    Running,
    Shell,
    Spread,
    address,
    after,
    enroll_seed,
    load_average,
    new_campaign,
    set_keys,
    shipped_tick_time,
    use_test_emulators,
    xmas_command,
)

if TYPE_CHECKING:
    import psycopg

DEFAULT_DSN = "postgresql://postgres@127.0.0.1:5432/test"
IDLE_NOW = after(hours=60)  # as sqlite_figures: the rows due before this are Sent; none is due at it
QUICK_ROWS = 100_000  # --quick: at least this many rows (run.py's --rows, else 1,000,000, when not quick)
RESEND_KEY = "re_bench_key_for_xmas"
EMULATOR_RATE = 1000.0  # requests/s at the emulator (burst as many): far above what the runners ask for
RUNNERS = (1, 2, 4)
DRAIN_EMAILS, QUICK_DRAIN_EMAILS = 20_000, 4_000
MAX_ROUNDS = 40
IN_PROCESS_RUNS = 10
USAGE_MARK = "xmas-bench-usage:"
# Peak RSS of a child is at least this process's RSS when it forked (Linux keeps the pre-exec high-water mark in
# ru_maxrss), and this process grows (the emulator keeps every email it accepted). So `xmas` is started through a
# small launcher, a fresh `python -I -S` that forks and execs it, reaps it with wait4 and reports its own peak RSS
# and CPU on stderr.
LAUNCHER = f"""import json, os, sys
pid = os.fork()
if pid == 0:
    try:
        os.execv(sys.argv[1], sys.argv[1:])
    finally:
        os._exit(127)
_, status, usage = os.wait4(pid, 0)
found = {{"rss_kb": usage.ru_maxrss, "cpu": usage.ru_utime + usage.ru_stime}}
sys.stderr.write("\\n{USAGE_MARK} " + json.dumps(found) + "\\n")
sys.exit(os.waitstatus_to_exitcode(status))
"""


def base_dsn() -> str:
    for name in ("XMAS_BENCH_DATABASE_URL", "XMAS_TEST_DATABASE_URL"):
        value = os.environ.get(name, "").strip()
        if value:
            return value
    return DEFAULT_DSN


def launched(args: Sequence[str]) -> list[str]:
    """`xmas ARGS` started through LAUNCHER."""
    return [sys.executable, "-I", "-S", "-c", LAUNCHER, *xmas_command(), *args]


def own_usage(done: Finished) -> tuple[float, float]:
    """(peak RSS in MB, CPU seconds) of the `xmas` a launcher ran, as it reported them."""
    for line in reversed(done.stderr.splitlines()):
        if line.startswith(USAGE_MARK):
            found = json.loads(line.removeprefix(USAGE_MARK))
            return float(found["rss_kb"]) / 1024, float(found["cpu"])
    raise RuntimeError(f"no usage line from the launcher: {done.describe()}")


def own_rss(shell: Shell, args: Sequence[str], runs: int) -> list[float]:
    """Peak RSS in MB of `xmas ARGS` alone, `runs` times (each required to exit 0)."""
    found = []
    for _ in range(runs):
        done = shell.run(launched(args))
        if done.code != 0:
            raise RuntimeError(done.describe())
        found.append(own_usage(done)[0])
    return found


def connect(dsn: str) -> psycopg.Connection[Any]:
    import psycopg

    return psycopg.connect(dsn, autocommit=True, connect_timeout=10)


# ------------------------------------------------------------------------------------ schemas and campaigns


@dataclass
class PgProject:
    """A campaign folder on the PostgreSQL store, in a schema of its own, and a shell with XMAS_DATABASE_URL."""

    folder: Path
    shell: Shell
    dsn: str
    schema: str

    @property
    def toml(self) -> Path:
        return self.folder / "campaign.toml"

    def scalar(self, sql: str, params: Mapping[str, Any] | tuple[Any, ...] = ()) -> Any:
        with connect(self.dsn) as conn:
            found = conn.execute(sql, params).fetchone()  # type: ignore[arg-type]
        return found[0] if found else None

    def count(self, sql: str, params: Mapping[str, Any] | tuple[Any, ...] = ()) -> int:
        return int(self.scalar(sql, params) or 0)


@contextmanager
def pg_project(ctx: Context, name: str) -> Iterator[PgProject]:
    """A fresh schema migrated by `xmas db migrate` (through the CLI), a campaign folder using it; the schema is
    dropped at the end whatever happened."""
    base = base_dsn()
    schema = f"xmas_bench_{name.replace('-', '_')}_{uuid.uuid4().hex[:8]}"
    try:
        with connect(base) as conn:
            conn.execute(f"CREATE SCHEMA {schema}")
    except Exception as exc:
        raise RuntimeError(f"PostgreSQL at {base} (XMAS_BENCH_DATABASE_URL): {exc}") from None
    try:
        from xmas_cli.stores.pg_connections import in_schema

        dsn = in_schema(base, schema)
        folder = ctx.folder(name)
        toml = new_campaign(folder)
        set_keys(toml, "store", {"backend": "postgres"})
        shell = ctx.shell(folder, {"XMAS_DATABASE_URL": dsn})
        shell.ok("db", "migrate")
        yield PgProject(folder, shell, dsn, schema)
    finally:
        with connect(base) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


def clone_pg_contacts(dsn: str, seeds: Mapping[str, str], copies: range) -> None:
    """The SQL twin of support.clone_sqlite_contacts: copy every row the seed enrollments wrote (any table of the
    schema with an `email` column), once per number in `copies`, with the seed's address replaced by that number's
    address (support.address) in every text and jsonb value. One INSERT … SELECT over generate_series per table and
    seed, in one transaction: a million rows in well under a minute, the product's own rows but for the address."""
    from psycopg import sql

    if not copies:
        return
    if copies.step != 1:
        raise ValueError("copies must be a plain range")
    with connect(dsn) as conn, conn.transaction():
        tables = [
            r[0]
            for r in conn.execute(
                "SELECT table_name FROM information_schema.columns WHERE table_schema = current_schema() "
                "AND column_name = 'email' ORDER BY table_name"
            ).fetchall()
        ]
        for table in tables:
            columns = conn.execute(
                "SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = current_schema() "
                "AND table_name = %s ORDER BY ordinal_position",
                (table,),
            ).fetchall()
            for seed, sequence in seeds.items():
                domain = "@" + address(sequence, 0).split("@", 1)[1]  # support.address: PREFIX + 7 digits + domain
                new = sql.SQL("({} || lpad(g.n::text, 7, '0') || {})").format(
                    sql.Literal(PREFIXES[sequence]), sql.Literal(domain)
                )
                values = [_renamed_value(sql, name, kind, sql.Literal(seed), new) for name, kind in columns]
                statement = sql.SQL(
                    "INSERT INTO {table} ({columns}) SELECT {values} FROM {table} AS s "
                    "CROSS JOIN generate_series({low}, {high}) AS g(n) WHERE s.email = {seed}"
                ).format(
                    table=sql.Identifier(table),
                    columns=sql.SQL(", ").join(sql.Identifier(name) for name, _ in columns),
                    values=sql.SQL(", ").join(values),
                    low=sql.Literal(copies.start),
                    high=sql.Literal(copies.stop - 1),
                    seed=sql.Literal(seed),
                )
                conn.execute(statement)
        last = address(next(iter(seeds.values())), copies.stop - 1)  # the SQL address is support.address's
        if not conn.execute("SELECT 1 FROM contacts WHERE email = %s", (last,)).fetchone():
            raise RuntimeError(f"clone_pg_contacts: no contact {last} after copying")


def _renamed_value(sql: Any, name: str, kind: str, seed: Any, new: Any) -> Any:
    column = sql.SQL("s.{}").format(sql.Identifier(name))
    if kind == "text":
        return sql.SQL("replace({}, {}, {})").format(column, seed, new)
    if kind == "jsonb":
        return sql.SQL("replace({}::text, {}, {})::jsonb").format(column, seed, new)
    return column


def mark_sent_before(project: PgProject, moment: str) -> None:
    """Every Scheduled row due before `moment` as a tick would have left it: Sent (as sqlite_figures.population)."""
    with connect(project.dsn) as conn:
        conn.execute(
            "UPDATE emails SET state = 'Sent', sent_at = due, attempts = 1, message_id = '<bench-' || id || '>' "
            "WHERE state = 'Scheduled' AND due <= %s",
            (moment,),
        )


def vacuum(project: PgProject) -> None:
    """What autovacuum does to a table that grew: statistics and the visibility map, so plans are the settled
    ones."""
    with connect(project.dsn) as conn:
        conn.execute("VACUUM (ANALYZE) emails")
        conn.execute("VACUUM (ANALYZE) contacts")


def state_counts(project: PgProject) -> str:
    with connect(project.dsn) as conn:
        found = conn.execute("SELECT state, COUNT(*) FROM emails GROUP BY state ORDER BY 2 DESC").fetchall()
    return ", ".join(f"{count:,} {state}" for state, count in found)


def table_sizes(project: PgProject) -> str:
    with connect(project.dsn) as conn:
        found = conn.execute(
            "SELECT pg_size_pretty(pg_table_size('emails')), pg_size_pretty(pg_indexes_size('emails'))"
        ).fetchone()
    assert found is not None
    return f"emails table {found[0]}, its indexes {found[1]}"


# ------------------------------------------------------------------------------------ where the CPU goes


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: int | str) -> list[str]:
    """/proc/PID/stat after the command name (which may hold spaces): fields 3 (state) onwards."""
    text = Path(f"/proc/{pid}/stat").read_text()
    return text.rsplit(")", 1)[1].split()


def _postmaster(conn: psycopg.Connection[Any]) -> int | None:
    """The server's main process, when it runs on this machine (the parent of our backend)."""
    found = conn.execute("SELECT pg_backend_pid()").fetchone()
    try:
        backend = int(found[0]) if found else 0
        parent = int(_stat_fields(backend)[1])
        if "postgres" in Path(f"/proc/{parent}/comm").read_text() + Path(f"/proc/{parent}/cmdline").read_text():
            return parent
    except (OSError, ValueError, IndexError):
        pass
    return None


def server_cpu(postmaster: int | None) -> float | None:
    """CPU seconds the server has used: its live processes' own, plus what ended ones left in the postmaster's
    cutime/cstime. A difference of two readings is the server's CPU in between (the other databases' work too)."""
    if postmaster is None:
        return None
    try:
        own = _stat_fields(postmaster)
        ticks = sum(int(own[i]) for i in (11, 12, 13, 14))
    except (OSError, ValueError, IndexError):
        return None
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = _stat_fields(entry.name)
            if int(fields[1]) == postmaster:
                ticks += sum(int(fields[i]) for i in (11, 12, 13, 14))
        except (OSError, ValueError, IndexError):
            continue  # it ended meanwhile: its time is in the postmaster's cutime now
    return ticks / CLOCK_TICKS


def machine_busy() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, all cores (/proc/stat; idle and iowait are not
    busy)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    total = sum(fields[:8])  # guest time is already in user
    return (total - fields[3] - fields[4]) / CLOCK_TICKS, total / CLOCK_TICKS


def own_rss_now() -> float:
    """This process's resident memory now, in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@dataclass
class CpuMeter:
    """CPU used between start() and stop(): by the server, by this process (the emulator) and by the machine."""

    postmaster: int | None
    readings: dict[str, float | None] = field(default_factory=dict)

    def start(self) -> None:
        busy, total = machine_busy()
        self.readings.update(server=server_cpu(self.postmaster), own=own_cpu(), busy=busy, total=total)

    def stop(self) -> dict[str, float | None]:
        busy, total = machine_busy()
        server = server_cpu(self.postmaster)
        before = self.readings
        return {
            "server": None if server is None or before["server"] is None else server - before["server"],
            "emulator": own_cpu() - (before["own"] or 0.0),
            "busy": busy - (before["busy"] or 0.0),
            "total": total - (before["total"] or 0.0),
        }


# ------------------------------------------------------------------------------ 12. idle tick, status at 1M


def pg_rows(ctx: Context) -> int:
    return max(ctx.status_rows, QUICK_ROWS) if ctx.quick else ctx.status_rows


def in_process(project: PgProject) -> list[Row]:
    """The store's idle-tick queries and a whole idle tick, in this process (no start-up), as figure 10 does for
    SQLite: what the server spends of the idle tick and of `xmas status`."""
    from xmas_cli.backends import engine_from_config
    from xmas_cli.tick.run import tick

    now = datetime.fromisoformat(IDLE_NOW)
    engine = engine_from_config(str(project.toml), now=IDLE_NOW, env=project.shell.env)
    store: Any = engine.store
    runner = f"bench:{os.getpid()}:in-process"
    until = now + timedelta(minutes=2)
    measures: dict[str, Callable[[], object]] = {
        "claim_due (the due query: claims nothing)": lambda: store.claim_due(now, 100, runner, until),
        "open_batches": lambda: store.open_batches(),
        "finish (end the runner's claims and leases)": lambda: store.finish(runner),
        "idle tick (claims, batches, finish), in-process": lambda: tick(engine),
        "summary (what `xmas status` asks)": lambda: store.summary(now),
    }
    times: dict[str, list[float]] = {name: [] for name in measures}
    try:
        for name, call in measures.items():
            call()  # warm-up: the pool's connection, the server's plan and cache
            for _ in range(IN_PROCESS_RUNS):
                started = time.perf_counter()
                found = call()
                times[name].append(time.perf_counter() - started)
                if name.startswith("claim_due") and found:
                    raise RuntimeError(f"{len(found)} rows due at {IDLE_NOW}: the population is not idle")
    finally:
        engine.close()
        store.pool.close()  # its schema is dropped at the end of the figure
    return [Row(f"  in-process, PostgreSQL: {name}", Spread.of(t).show("ms", 1, 1000)) for name, t in times.items()]


def idle_postgres_figure(ctx: Context) -> Result:
    rows_wanted = pg_rows(ctx)
    budget = 30.0 if ctx.quick else 120.0
    tick = ("tick", "--now", IDLE_NOW)
    status = ("status", "--now", IDLE_NOW)
    with pg_project(ctx, "idle-postgres") as project:
        shell = project.shell
        for sequence in PAYLOADS:
            enroll_seed(shell, sequence)
        mark_sent_before(project, IDLE_NOW)
        small_rows = project.count("SELECT COUNT(*) FROM emails")
        shell.ok(*tick)  # warm-up
        small = shell.repeat(tick, ctx.runs)
        small_rss = Spread.of(own_rss(shell, tick, ctx.runs))
        small_status = shell.repeat(status, ctx.runs, budget)
        started = time.perf_counter()
        sets = -(-rows_wanted // small_rows)
        clone_pg_contacts(project.dsn, {address(s, 0): s for s in PAYLOADS}, range(1, sets))
        cloned = time.perf_counter() - started
        vacuum(project)
        built = time.perf_counter() - started
        total_rows = project.count("SELECT COUNT(*) FROM emails")
        contacts = project.count("SELECT COUNT(*) FROM contacts")
        print(f"  built {total_rows:,} rows in {built:.1f} s (copies {cloned:.1f} s)", file=sys.stderr)
        shell.ok(*tick)  # warm-up
        big = shell.repeat(tick, ctx.runs)
        rss = Spread.of(own_rss(shell, tick, ctx.runs))
        parent_rss = own_rss_now()
        big_status = shell.repeat(status, ctx.runs, budget)
        probe = shell.ok(*tick, "--json")
        due = json.loads(probe.stdout).get("due")
        counts, sizes = state_counts(project), table_sizes(project)
        queries = in_process(project)
    wall, direct_rss = Spread.of(r.wall for r in big), Spread.of(r.rss_mb for r in big)
    status_wall = Spread.of(r.wall for r in big_status)
    small_wall = Spread.of(r.wall for r in small)
    rows = [
        Row(f"idle tick, PostgreSQL, {total_rows:,} rows: wall time", wall.show("s")),
        Row(f"idle tick, PostgreSQL, {total_rows:,} rows: peak RSS", rss.show("MB", 1)),
        Row(f"`xmas status`, PostgreSQL, {total_rows:,} rows", status_wall.show("s")),
        Row(
            f"  the same on {small_rows} rows (start-up and connection): idle tick / peak RSS / status",
            f"{small_wall.show('s')} / {small_rss.show('MB', 1)} / {Spread.of(r.wall for r in small_status).show('s')}",
        ),
        *queries,
    ]
    method = (
        f"A schema of its own on {describe_base()} (`xmas db migrate`), one contact per sequence enrolled through "
        f"the CLI at T0 and its rows due before {IDLE_NOW} marked Sent ({small_rows} rows): the idle tick and "
        f"`xmas status` measured there first (start-up and connection only). Then every row of the seeds (emails, "
        f"contacts) copied {sets - 1:,} times with one INSERT … SELECT generate_series per table and seed, the "
        f"address replaced in every text and jsonb value, and VACUUM (ANALYZE) as autovacuum would: "
        f"{total_rows:,} rows ({counts}) and {contacts:,} contacts, {sizes}, built in {built:.0f} s. "
        f"`xmas tick --now {IDLE_NOW}` (nothing due: its --json said {due} due): {ctx.runs} runs after a warm-up, "
        "each a fresh child; peak RSS from as many more runs started through a small launcher that reports the "
        "tick's own ru_maxrss (a direct child's ru_maxrss is at least this process's RSS when it forked: "
        f"{direct_rss.median:.1f} MB read that way here, this process being {parent_rss:.0f} MB); "
        f"`xmas status --now {IDLE_NOW}`: up to {ctx.runs} runs, fewer when one more would end past {budget:g} s "
        f"({len(big_status)} here). The in-process rows call the store's "
        f"methods and the engine's tick in this process on the same schema ({IN_PROCESS_RUNS} runs after a warm-up "
        "each): the server's share, without start-up. The schema is dropped at the end."
    )
    return Result(rows, method)


def describe_base() -> str:
    from xmas_cli.stores.pg_connections import describe_dsn

    return describe_dsn(base_dsn())


# ---------------------------------------------------------------------- 13. drain with concurrent runners


def mailer_rate_ceiling() -> float:
    """The most `[mailer] requests_per_second` allows (MailerConfig's bound)."""
    from xmas_cli.core.campaign import MailerConfig

    for bound in MailerConfig.model_fields["requests_per_second"].metadata:
        limit = getattr(bound, "le", None)
        if limit is not None:
            return float(limit)
    return 100.0


@dataclass(frozen=True)
class RunnerTick:
    round: int
    now: str
    done: Finished  # the launcher's: exit code, output, wall time (its own start, some 20 ms, included)

    @property
    def rss_mb(self) -> float:
        return own_usage(self.done)[0]

    @property
    def cpu(self) -> float:
        """The tick's own CPU (the launcher's left out)."""
        return own_usage(self.done)[1]

    @property
    def report(self) -> dict[str, Any]:
        try:
            found = json.loads(self.done.stdout)
        except json.JSONDecodeError:
            return {}
        return found if isinstance(found, dict) else {}

    @property
    def sent_ids(self) -> list[str]:
        return [o["id"] for o in self.report.get("outcomes", []) if o.get("action") == "sent"]

    @property
    def actions(self) -> Counter[str]:
        return Counter(str(o.get("action")) for o in self.report.get("outcomes", []))


TABLE_STATS = ("seq_scan", "seq_tup_read", "idx_scan", "n_tup_upd", "n_tup_hot_upd")


@dataclass
class Drain:
    runners: int
    repetition: int
    emails: int
    ticks: list[RunnerTick]
    wall: float
    cpu: dict[str, float | None]
    idle_cpu: float  # one tick's CPU when nothing is due (start-up, connection, the idle queries)
    table: dict[str, int]  # pg_stat_user_tables of `emails`, over the drain
    emulator_requests: Counter[str]
    load: str  # load average when the drain started
    checks: list[str]  # what was checked, all passed (a failure raises)

    @property
    def rounds(self) -> int:
        return max(t.round for t in self.ticks)

    @property
    def sent(self) -> int:
        return sum(len(t.sent_ids) for t in self.ticks)

    @property
    def rate(self) -> float:
        return self.sent / self.wall

    @property
    def runner_cpu(self) -> float:
        return sum(t.cpu for t in self.ticks)

    @property
    def net_ms_per_email(self) -> float:
        """The runners' CPU less each tick's start-up (an idle tick's CPU), per email."""
        return 1000 * (self.runner_cpu - len(self.ticks) * self.idle_cpu) / max(1, self.sent)

    @property
    def others(self) -> float | None:
        """Busy CPU of the machine that neither the runners, the server nor this process used."""
        busy, server, emulator = self.cpu.get("busy"), self.cpu.get("server"), self.cpu.get("emulator")
        if busy is None or server is None or emulator is None:
            return None
        return max(0.0, busy - self.runner_cpu - server - emulator)


def start_round(shell: Shell, runners: int, now: str, number: int) -> list[RunnerTick]:
    """`runners` ticks started at once with the same --now, each reaped by its own thread (so each one's wall time
    ends when it does)."""
    timeout = 60.0 * 4 + 120  # a tick sends within its minute
    started: list[Running] = [shell.start(launched(["tick", "--now", now, "--json"])) for _ in range(runners)]
    results: list[RunnerTick | None] = [None] * runners

    def reap(index: int) -> None:
        results[index] = RunnerTick(number, now, started[index].wait(timeout=timeout))

    waiters = [threading.Thread(target=reap, args=(i,)) for i in range(runners)]
    for waiter in waiters:
        waiter.start()
    for waiter in waiters:
        waiter.join()
    done = [r for r in results if r is not None]
    if len(done) != runners:
        raise RuntimeError(f"round {number}: {runners - len(done)} runner(s) not reaped")
    return done


def table_stats(conn: psycopg.Connection[Any]) -> dict[str, int]:
    """The server's counters for this schema's `emails` table (flushed by each backend as it ends)."""
    columns = ", ".join(f"COALESCE({name}, 0)" for name in TABLE_STATS)
    found = conn.execute(
        f"SELECT {columns} FROM pg_stat_user_tables WHERE schemaname = current_schema() AND relname = 'emails'"
    ).fetchone()
    return dict(zip(TABLE_STATS, (int(v) for v in found or (0,) * len(TABLE_STATS)), strict=True))


def drain(ctx: Context, runners: int, emails: int, repetition: int) -> Drain:
    """A fresh schema with `emails` lead-nurture contacts whose first email is due at T0, a fresh emulator; rounds
    of `runners` ticks until nothing is due; then every email checked at the emulator and in the store."""
    use_test_emulators()
    from resend_emulator import ResendEmulator

    with pg_project(ctx, f"drain-postgres-{runners}") as project:
        # the tick's sending time stays as shipped
        set_keys(project.toml, "mailer", {"backend": "resend", "requests_per_second": mailer_rate_ceiling()})
        seed = address("lead-nurture", 0)
        enroll_seed(project.shell, "lead-nurture", 0)
        clone_pg_contacts(project.dsn, {seed: "lead-nurture"}, range(1, emails))
        vacuum(project)
        first_now = after(minutes=1)
        expected = {
            (r[0], int(r[1])): r[2]
            for r in _fetch(
                project,
                "SELECT email, step, id FROM emails WHERE state = 'Scheduled' AND due <= %s",
                (first_now,),
            )
        }
        if len(expected) != emails:
            raise RuntimeError(f"{len(expected)} emails due at {first_now}, not {emails}: the set-up is wrong")
        with ResendEmulator(api_key=RESEND_KEY, rate_limit=EMULATOR_RATE) as emu, connect(project.dsn) as watch:
            env = {"RESEND_API_KEY": RESEND_KEY, "RESEND_API_URL": emu.base_url}
            shell = Shell(project.folder, {**project.shell.env, **env}, project.shell.logs)
            meter = CpuMeter(_postmaster(watch))
            ticks: list[RunnerTick] = []
            stats_before = table_stats(watch)
            load = load_average()
            meter.start()
            began = time.monotonic()
            for number in range(1, MAX_ROUNDS + 1):
                now = after(minutes=number)
                done = start_round(shell, runners, now, number)
                ticks.extend(done)
                failed = [t.done.describe() for t in done if t.done.code != 0]
                if failed:
                    raise RuntimeError(f"{runners} runner(s), round {number}: " + "; ".join(failed))
                left = _due_left(watch, after(minutes=number + 1))
                if not left:
                    break
                if not any(t.sent_ids for t in done):
                    raise RuntimeError(f"{runners} runner(s), round {number}: nothing sent, {left} still due")
            else:
                raise RuntimeError(f"{runners} runner(s): still due after {MAX_ROUNDS} rounds")
            wall = time.monotonic() - began
            cpu = meter.stop()
            stats_after = table_stats(watch)
            idle = shell.ok("tick", "--now", after(minutes=len(ticks) + 2), "--json")
            sent, requests = emu.sent, emu.requests
        checks = check_drain(project, expected, sent, ticks)
    statuses = Counter(f"{r['method']} {r['path']} → {r['status']}" for r in requests)
    table = {name: stats_after[name] - stats_before[name] for name in TABLE_STATS}
    return Drain(runners, repetition, emails, ticks, wall, cpu, idle.cpu, table, statuses, load, checks)


def _fetch(project: PgProject, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    with connect(project.dsn) as conn:
        return list(conn.execute(sql, params).fetchall())


def _due_left(conn: psycopg.Connection[Any], moment: str) -> int:
    found = conn.execute(
        "SELECT COUNT(*) FROM emails WHERE state = 'Scheduled' AND due <= %s", (moment,)
    ).fetchone()  # retries (due moved a minute or more on) are due at the next rounds' --now
    return int(found[0]) if found else 0


def check_drain(
    project: PgProject, expected: dict[tuple[str, int], str], sent: list[dict[str, Any]], ticks: list[RunnerTick]
) -> list[str]:
    """Every expected email arrived at the emulator exactly once, none else did; the store recorded each Sent with
    the emulator's id; the runners' reports agree. Raises with the particulars otherwise."""
    problems: list[str] = []
    arrived: Counter[tuple[str, int]] = Counter()
    for message in sent:
        step = next((t.get("value") for t in message.get("tags", []) if t.get("name") == "step"), None)
        for recipient in message.get("to", []):
            arrived[(recipient.lower(), int(step) if step is not None else -1)] += 1
    twice = {k: n for k, n in arrived.items() if n > 1}
    missing = sorted(k for k in expected if arrived[k] == 0)
    unexpected = sorted(k for k in arrived if k not in expected)
    if twice:
        problems.append(f"{len(twice)} emails arrived more than once, e.g. {sorted(twice.items())[:5]}")
    if missing:
        problems.append(f"{len(missing)} emails never arrived, e.g. {missing[:5]}")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected emails arrived, e.g. {unexpected[:5]}")
    if len(sent) != len(expected):
        problems.append(f"the emulator accepted {len(sent)} messages for {len(expected)} emails")
    ids = list(expected.values())
    stored = _fetch(project, "SELECT id, state, message_id, last_error FROM emails WHERE id = ANY(%s)", (ids,))
    not_sent = [(r[0], r[1], r[3]) for r in stored if r[1] != "Sent"]
    if not_sent or len(stored) != len(ids):
        problems.append(f"{len(not_sent)} rows not Sent in the store (of {len(stored)}), e.g. {not_sent[:5]}")
    emulator_ids = Counter(str(m["id"]) for m in sent)
    stored_ids = Counter(str(r[2]) for r in stored)
    if stored_ids != emulator_ids:
        problems.append(
            f"message ids: {sum((stored_ids - emulator_ids).values())} in the store but not at the emulator, "
            f"{sum((emulator_ids - stored_ids).values())} at the emulator but not in the store"
        )
    open_batches = _fetch(project, "SELECT key, attempts, last_error FROM batches")
    if open_batches:
        problems.append(f"{len(open_batches)} batches still open, e.g. {open_batches[:3]}")
    reported = Counter(i for t in ticks for i in t.sent_ids)
    if sorted(reported) != sorted(ids) or any(n > 1 for n in reported.values()):
        doubles = sum(1 for n in reported.values() if n > 1)
        problems.append(
            f"the runners reported {sum(reported.values())} sends of {len(reported)} rows ({doubles} reported by "
            f"two ticks) for {len(ids)} rows"
        )
    others: Counter[str] = Counter()
    for t in ticks:
        others.update({action: n for action, n in t.actions.items() if action != "sent"})
    if others:
        problems.append(f"outcomes other than sent: {dict(others)}")
    if problems:
        raise RuntimeError(
            f"DRAIN CHECK FAILED ({max(t.round for t in ticks)} rounds of ticks): " + " | ".join(problems)
        )
    return [
        f"{len(expected):,} emails each arrived exactly once at the emulator (recipient and step tag), none else",
        "every row Sent in the store with the emulator's message id, each id once",
        "no batch left open; the runners' --json reports name each row once, all `sent`",
    ]


def drain_postgres_figure(ctx: Context) -> Result:
    emails = QUICK_DRAIN_EMAILS if ctx.quick else DRAIN_EMAILS
    drains: dict[int, list[Drain]] = {runners: [] for runners in RUNNERS}
    for repetition in range(1, ctx.runs + 1):  # the runner counts side by side, so the machine's load hits each
        for runners in RUNNERS:
            done = drain(ctx, runners, emails, repetition)
            drains[runners].append(done)
            print(
                f"  run {repetition}, {runners} runner(s): {done.sent:,} emails in {done.wall:.1f} s, "
                f"{done.rate:.0f}/s, {done.rounds} round(s) (load {done.load})",
                file=sys.stderr,
                flush=True,
            )
    single = drains[RUNNERS[0]]
    rows = []
    for runners, runs in drains.items():
        rate = Spread.of(d.rate for d in runs)
        scaling = Spread.of(d.rate / one.rate for d, one in zip(runs, single, strict=True))
        rows.append(
            Row(
                f"drain of {emails:,} due emails, PostgreSQL + Resend batches, {runners} runner"
                f"{'s' if runners > 1 else ''} at once: emails/s",
                rate.show("emails/s", 0) + (f"; ×{scaling.show('', 2)} of 1 runner" if runners > 1 else ""),
            )
        )
    for runners, runs in drains.items():
        rows.append(Row(f"  {runners} runner(s): CPU over the drain (medians)", cpu_split(runs)))
    total = sum(len(runs) for runs in drains.values())
    rows.append(
        Row(
            "drain, PostgreSQL: every email arrived exactly once (counted at the emulator)",
            f"yes, in all {total} drains of {emails:,} emails",
            "each once, none missing",
            True,
        )
    )
    method = (
        f"For 1, 2 and 4 runners, each drain on a fresh schema ({describe_base()}): {emails:,} lead-nurture contacts "
        "enrolled at T0 (one through `xmas enroll`, the others copies of its rows and contact made in SQL as in "
        'figure 12), so each has one email due; `[mailer] backend = "resend"` with `requests_per_second = '
        f"{mailer_rate_ceiling():g}` (the most MailerConfig allows, per runner), {shipped_tick_time()}, "
        f"`[tick] slice` as shipped; tests/resend_emulator.py at {EMULATOR_RATE:g} requests/s (burst as "
        "many), a new one per drain. A round starts that many `xmas tick --now T --json` processes at once, with "
        "the same T, and waits for all; the next round's T is one minute later, until nothing is due. Emails/s = "
        "emails sent ÷ the drain's wall time (first start to last exit); the ratio to 1 runner is taken within each "
        f'repetition. {ctx.runs} repetitions of 1, 2, 4 runners in turn. CPU: the runners\' own (wait4; "net" '
        "less one idle tick's CPU per process: start-up and connection), the server's (its processes, /proc: "
        "other databases' work included), the emulator's (this process's rusage: it runs in a thread here), and "
        "the rest of the machine's busy time (/proc/stat: other processes on the machine). Each drain is then "
        "checked, or the figure fails: " + "; ".join(single[0].checks) + "."
    )
    details = [
        "| run | runners | rounds | sent | wall | emails/s | runners' CPU (net ms/email) | PostgreSQL CPU | "
        "emulator CPU | other CPU | load at start | `emails`: seq scans (rows read), index scans, updates (HOT) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for d in sorted((d for runs in drains.values() for d in runs), key=lambda d: (d.repetition, d.runners)):
        server, others = d.cpu.get("server"), d.others
        details.append(
            f"| {d.repetition} | {d.runners} | {d.rounds} | {d.sent:,} | {d.wall:.1f} s | {d.rate:.0f} | "
            f"{d.runner_cpu:.1f} s ({d.net_ms_per_email:.2f}) | "
            f"{'—' if server is None else f'{server:.1f} s'} | {d.cpu.get('emulator') or 0:.1f} s | "
            f"{'—' if others is None else f'{others:.1f} s'} | {d.load} | "
            f"{d.table['seq_scan']} ({d.table['seq_tup_read']:,}), {d.table['idx_scan']:,}, "
            f"{d.table['n_tup_upd']:,} ({d.table['n_tup_hot_upd']:,}) |"
        )
    last = [runs[-1] for runs in drains.values()]
    details.extend(
        [
            "",
            f"Each tick of the last repetition ({ctx.runs}):",
            "",
            "| runners | round | --now | runner | sent | wall | CPU | peak RSS | exit |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
    )
    for d in last:
        for number in range(1, d.rounds + 1):
            for index, t in enumerate((t for t in d.ticks if t.round == number), 1):
                details.append(
                    f"| {d.runners} | {number} | {t.now} | {index} | {len(t.sent_ids):,} | {t.done.wall:.1f} s | "
                    f"{t.cpu:.1f} s | {t.rss_mb:.0f} MB | {t.done.code} |"
                )
    details.extend(["", "Requests at the emulator, last repetition:", ""])
    details.extend(
        f"- {d.runners} runner(s): " + ", ".join(f"{n} {kind}" for kind, n in d.emulator_requests.items()) for d in last
    )
    return Result(rows, method, details)


def cpu_split(runs: list[Drain]) -> str:
    """`runners 14.2 s (0.61 ms/email net of start-up), PostgreSQL 3.1 s, emulator 0.9 s, other processes 0.4 s;
    1.93 of 2 cores busy`: medians over the repetitions."""

    def median(values: list[float | None]) -> float | None:
        known = [v for v in values if v is not None]
        return Spread.of(known).median if known else None

    runner = median([d.runner_cpu for d in runs]) or 0.0
    net = median([d.net_ms_per_email for d in runs]) or 0.0
    server = median([d.cpu.get("server") for d in runs])
    emulator = median([d.cpu.get("emulator") for d in runs]) or 0.0
    others = median([d.others for d in runs])
    busy = median([(d.cpu["busy"] or 0.0) / d.wall for d in runs])
    parts = [
        f"runners {runner:.1f} s ({net:.2f} ms/email net of start-up)",
        f"PostgreSQL {server:.1f} s" if server is not None else "PostgreSQL not measured (not on this host)",
        f"emulator {emulator:.1f} s",
    ]
    if others is not None:
        parts.append(f"other processes {others:.1f} s")
    return ", ".join(parts) + (f"; {busy:.2f} of {os.cpu_count() or 1} cores busy" if busy is not None else "")
