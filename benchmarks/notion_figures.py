"""Figures on the Notion store, against tests/notion_emulator.py limited to Notion's 3 requests/s."""

from __future__ import annotations

import http.client
import json
import socket
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from support import (
    T0,
    Context,
    Finished,
    Result,
    Row,
    Running,
    Shell,
    Spread,
    address,
    after,
    at,
    enroll_seed,
    new_campaign,
    payload,
    set_keys,
    shipped,
    shipped_tick_time,
    use_test_emulators,
    xmas_command,
)

TOKEN = "secret_bench_token"
RATE = 3.0  # Notion's documented average
BURST = 3  # one second's worth: Notion documents an average of 3/s and "some bursts", not how big
SETUP_PACE = 10  # requests/s while setting up (the most [notion] requests_per_second allows); measures use the shipped
NOTION_VERSION = "2025-09-03"


@dataclass
class NotionProject:
    """A campaign folder on the Notion store, its emulator, and a shell with NOTION_TOKEN and NOTION_BASE_URL."""

    emu: Any  # notion_emulator.NotionEmulator
    folder: Path
    shell: Shell
    seed_requests: str = ""  # what the one enrollment through the CLI asked of Notion

    @property
    def toml(self) -> Path:
        return self.folder / "campaign.toml"

    def pace(self, requests_per_second: float) -> None:
        set_keys(self.toml, "notion", {"requests_per_second": requests_per_second})

    def throttle(self) -> None:
        """From now on: Notion's limit at the emulator, the shipped pace in campaign.toml, requests counted anew."""
        self.pace(shipped("notion", "requests_per_second"))
        self.emu.set_rate_limit(RATE, burst=BURST)
        self.emu.reset_requests()

    def rate_limited(self) -> int:
        return sum(1 for r in self.emu.requests if r["status"] == 429)


@contextmanager
def notion_project(ctx: Context, name: str, contacts: int) -> Iterator[NotionProject]:
    """`xmas notion setup` and `xmas templates push` on a fresh emulator page (unthrottled), then `contacts`
    lead-nurture enrollments at T0: the first through the CLI, the others by replaying its page creates."""
    use_test_emulators()
    from notion_emulator import NotionEmulator

    with NotionEmulator(token=TOKEN, retry_after=1) as emu:
        folder = ctx.folder(name)
        toml = new_campaign(folder)
        set_keys(toml, "store", {"backend": "notion"})
        set_keys(toml, "notion", {"requests_per_second": SETUP_PACE})
        shell = ctx.shell(folder, {"NOTION_TOKEN": TOKEN, "NOTION_BASE_URL": emu.base_url})
        shell.ok("notion", "setup", "--parent", emu.add_page(title="Xmas"))
        shell.ok("templates", "push")
        project = NotionProject(emu, folder, shell)
        if contacts:
            project.seed_requests = clone_notion_contacts(project, contacts)
        yield project


def clone_notion_contacts(project: NotionProject, contacts: int) -> str:
    """Enroll one contact through the CLI, then replay the pages it created (its contact and its rows) for the
    others over HTTP, the address replaced: the product's own requests, without its pace. Returns what the
    enrollment through the CLI asked (see request_kinds)."""
    emu = project.emu
    emu.reset_requests()
    enroll_seed(project.shell, "lead-nurture", 0)
    asked = list(emu.requests)  # a copy: the emulator's list grows with the replays
    if any(r["method"] == "PATCH" for r in asked):
        raise RuntimeError("the seed enrollment updated pages: replaying its creates would not copy it")
    creates = [r["body"] for r in asked if r["method"] == "POST" and r["path"] == "/v1/pages"]
    seed = address("lead-nurture", 0)
    replay(emu.base_url, creates, seed, (address("lead-nurture", n) for n in range(1, contacts)))
    return f"{len(asked)} requests: {request_kinds(asked)}"


def replay(base_url: str, bodies: list[dict[str, Any]], seed: str, addresses: Iterable[str]) -> None:
    split = urlsplit(base_url)
    conn = http.client.HTTPConnection(split.hostname or "127.0.0.1", split.port, timeout=30)
    headers = {
        "Authorization": f"Bearer {TOKEN}",
        "Notion-Version": NOTION_VERSION,
        "Content-Type": "application/json",
    }
    texts = [json.dumps(body) for body in bodies]
    try:
        for new in addresses:
            for text in texts:
                conn.request("POST", "/v1/pages", text.replace(seed, new), headers)
                answer = conn.getresponse()
                data = answer.read()
                if answer.status != 200:
                    raise RuntimeError(f"replaying a page create: {answer.status} {data[:300]!r}")
    finally:
        conn.close()


def request_kinds(requests: list[dict[str, Any]]) -> str:
    """`1 POST /v1/data_sources/…/query, 5 POST /v1/pages`."""
    kinds: dict[str, int] = {}
    for r in requests:
        path = "/".join("…" if len(part) >= 32 else part for part in r["path"].split("/"))
        kind = f"{r['method']} {path}" + (f" → {r['status']}" if r["status"] != 200 else "")
        kinds[kind] = kinds.get(kind, 0) + 1
    return ", ".join(f"{n} {kind}" for kind, n in kinds.items())


# ------------------------------------------------------------------------------------ 3. idle tick


def idle_notion_figure(ctx: Context) -> Result:
    with notion_project(ctx, "idle-notion", contacts=20) as project:
        first = project.shell.ok("tick", "--now", after(minutes=1))  # sends the 20 first emails
        project.throttle()
        project.shell.ok("tick", "--now", after(hours=1))  # warm-up (schema cache)
        counts, walls, kinds = [], [], ""
        for _ in range(ctx.runs):
            time.sleep(1.0)  # cron starts ticks a minute apart: back to back, 2 requests each outrun a 3/s bucket
            project.emu.reset_requests()
            done = project.shell.ok("tick", "--now", after(hours=1))
            counts.append(len(project.emu.requests))
            walls.append(done.wall)
            kinds = request_kinds(project.emu.requests)
    requests, wall = Spread.of(counts), Spread.of(walls)
    rows = [
        # the query of Contacts for actions, fresh unsubscribes and the pause (stores/notion_control.py), the due query
        Row("idle tick, Notion: requests", requests.show("", 0), "≤ 2", requests.high <= 2),
        Row("idle tick, Notion: wall time", wall.show("s"), "< 0.5 s", wall.median < 0.5),
    ]
    method = (
        "Notion store on the emulator (`xmas notion setup`, `xmas templates push`), 20 lead-nurture contacts whose "
        f"first email a tick sent ({first.stdout.strip().splitlines()[-1]}); then the emulator limited to "
        f"{RATE:g} requests/s (burst {BURST}), `[notion] requests_per_second` as shipped "
        f"({shipped('notion', 'requests_per_second')}), and `xmas tick --now T0+1h` (nothing due): {ctx.runs} runs "
        f"after a warm-up, requests counted at the emulator. One run's requests: {kinds}."
    )
    return Result(rows, method)


# -------------------------------------------------------------------------------------- 6. drain


@dataclass(frozen=True)
class CronTick:
    number: int
    began: float  # seconds after the first tick's start
    ended: float
    done: Finished

    @property
    def sent(self) -> int:
        """Emails this tick reports sent (its --json answer; none when it did not run, e.g. exit 5)."""
        try:
            report = json.loads(self.done.stdout)
        except json.JSONDecodeError:
            return 0
        return sum(1 for o in report.get("outcomes", []) if o.get("action") == "sent")


def drain_plan(ctx: Context) -> tuple[int, float, float | None]:
    """Ticks, seconds between their starts, and the tick budget: real minutes with the tick's time as shipped
    (until shortly before the next minute, no budget), or with --quick two half-minute rounds, each tick with a
    budget of 25 s (its --now says a new minute begins, but the next round starts 30 s later)."""
    if ctx.quick:
        return 2, 30.0, 25.0
    return 4, 60.0, None


# A tick on the system clock reads it after python, the config and the store's client are loaded: about half a second
# after cron started it (an idle tick's start-up, figures 2 and 3). The ticks here are given that reading as --now, so
# they reckon their minute (core/tick_config.py) as a tick started by cron would.
CLOCK_READ = 0.5


@dataclass(frozen=True)
class Cron:
    ticks: list[CronTick]
    requests: list[int]  # requests the emulator received in each round (cron minute), in order


def run_cron(project: NotionProject, ticks: int, interval: float) -> Cron:
    """Start `xmas tick --json` every `interval` seconds, as cron does, without waiting for the one before; each
    tick's --now is one minute later than the last. The emulator's requests are counted at each round's start."""
    results: list[CronTick] = []
    start = time.monotonic()
    marks: list[int] = []

    def reap(number: int, running: Running) -> None:
        done = running.wait(timeout=interval * 5)
        results.append(CronTick(number, done.started - start, done.ended - start, done))

    waiters = []
    for number in range(ticks):
        time.sleep(max(0.0, start + number * interval - time.monotonic()))
        marks.append(len(project.emu.requests))
        now = (T0 + timedelta(minutes=2 + number, seconds=CLOCK_READ)).isoformat()  # the system clock's reading
        running = project.shell.start([*xmas_command(), "tick", "--now", now, "--json"])
        waiter = threading.Thread(target=reap, args=(number + 1, running))
        waiter.start()
        waiters.append(waiter)
    time.sleep(max(0.0, start + ticks * interval - time.monotonic()))
    marks.append(len(project.emu.requests))  # the last round's end (a tick still running then counts later)
    for waiter in waiters:
        waiter.join()
    rounds = [after - before for before, after in pairwise(marks)]
    return Cron(sorted(results, key=lambda t: t.number), rounds)


def notion_drain_figure(ctx: Context) -> Result:
    ticks, interval, budget = drain_plan(ctx)
    contacts = int(RATE * interval * ticks) + 100  # more than the ceiling lets through
    with notion_project(ctx, "notion-drain", contacts) as project:
        if budget is not None:
            set_keys(project.toml, "tick", {"budget_seconds": budget})
        project.throttle()
        project.shell.ok("tick", "--now", after(minutes=-1))  # warm-up, nothing due yet (schema cache)
        time.sleep(1.0)  # its requests out of Notion's bucket, as a tick a minute earlier would be
        project.emu.reset_requests()
        print(f"  {ticks} ticks, {interval:g} s apart (real time)", file=sys.stderr)
        cron = run_cron(project, ticks, interval)
        requests, limited = len(project.emu.requests), project.rate_limited()
    results = cron.ticks
    window = max(ticks * interval, max(t.ended for t in results))
    sent = sum(t.sent for t in results)
    emails_rate, requests_rate = sent / window, requests / window
    per_round = [n / interval / RATE for n in cron.requests]
    gaps = [later.began - earlier.ended for earlier, later in pairwise(results)]
    rows = [
        Row(
            "Notion drain: requests/s in each cron minute (fraction of the 3 req/s ceiling)",
            ", ".join(f"{n / interval:.2f} ({share:.2f})" for n, share in zip(cron.requests, per_round, strict=True)),
            "≥ 0.9 each",
            min(per_round) >= 0.9,
        ),
        Row(
            "Notion drain: over all minutes, emails/s and requests/s (fraction of 3 req/s)",
            f"{emails_rate:.2f} emails/s ({emails_rate / RATE:.2f}); {requests_rate:.2f} requests/s "
            f"({requests_rate / RATE:.2f})",
        ),
        Row(
            "Notion drain: each tick's run time → exit code",
            ", ".join(f"{t.done.wall:.1f} s → {t.done.code}" for t in results),
            f"every tick < {interval:g} s, exit 0",
            all(t.done.wall < interval and t.done.code == 0 for t in results),
        ),
        Row(
            "Notion drain: from a tick's end to the next one's start",
            ", ".join(f"{gap:.1f} s" for gap in gaps),
            "> 0 (no overlap)",
            all(gap > 0 for gap in gaps),
        ),
    ]
    quick = " --quick: half-minute rounds, each tick with a budget of 25 s." if ctx.quick else ""
    timing = f"`[tick] budget_seconds = {budget:g}`" if budget is not None else shipped_tick_time()
    method = (
        f"{contacts} lead-nurture contacts due at T0 on the Notion store (one enrolled through the CLI, which made "
        f"{project.seed_requests}; the others replays of its page creates), the emulator at {RATE:g} requests/s "
        f"(burst {BURST}), `[notion] requests_per_second` as shipped ({shipped('notion', 'requests_per_second')}), "
        f"{timing}. {ticks} ticks (`xmas tick --json`) started {interval:g} s apart in real time, like cron (each "
        f"with --now one minute later, at :{CLOCK_READ:04.1f} of its minute, where a tick on the system clock "
        f"would read it after its start-up), each counting what it sent in its own answer; requests counted at the "
        f"emulator in each round, from one start to the next; overall rates over {window:.0f} s (the rounds, or "
        f"until the last tick ended if later). {requests} requests reached the emulator, {limited} answered 429."
        f"{quick}"
    )
    details = [
        "| tick | started | ended | ran | exit | sent | requests in its minute |",
        "|---|---|---|---|---|---|---|",
        *(
            f"| {t.number} | +{t.began:.1f} s | +{t.ended:.1f} s | {t.done.wall:.1f} s | {t.done.code} | {t.sent} "
            f"| {n} |"
            for t, n in zip(results, cron.requests, strict=True)
        ),
    ]
    failed = [f"- tick {t.number}: {t.done.describe()}" for t in results if t.done.code]
    if failed:
        details.extend(["", *failed])
    return Result(rows, method, details)


# -------------------------------------------------------------------------- 7. website enrollments


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_healthy(port: int, server: Running, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise RuntimeError("`xmas serve` exited at start")
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.1)
        finally:
            conn.close()
    raise RuntimeError(f"`xmas serve` did not answer /healthz within {seconds:g} s")


@dataclass(frozen=True)
class Answer:
    status: int
    seconds: float
    body: str


def one_line(body: str) -> str:
    try:
        return json.dumps(json.loads(body), ensure_ascii=False)
    except json.JSONDecodeError:
        return " ".join(body.split())


def post_enrollment(port: int, token: str, number: int) -> Answer:
    body = json.dumps(payload("assessment", number))
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    started = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    try:
        conn.request("POST", "/enroll/assessment", body, headers)
        answer = conn.getresponse()
        body = answer.read().decode("utf-8", "replace")
        return Answer(answer.status, time.perf_counter() - started, body)
    finally:
        conn.close()


def web_enroll_figure(ctx: Context) -> Result:
    enrollments, clients = (6 if ctx.quick else 12), 6
    token = "bench-api-token"
    with notion_project(ctx, "web-enroll", contacts=0) as project:
        project.throttle()
        port = free_port()
        server_env = {**project.shell.env, "XMAS_API_TOKEN": token, "XMAS_NOW": at(T0)}
        server = Shell(project.folder, server_env, project.shell.logs).start(
            [*xmas_command(), "serve", "--host", "127.0.0.1", "--port", str(port)]
        )
        try:
            wait_healthy(port, server)
            project.emu.reset_requests()
            started = time.perf_counter()
            with ThreadPoolExecutor(max_workers=clients) as pool:
                answers = list(pool.map(lambda n: post_enrollment(port, token, n), range(1, enrollments + 1)))
            elapsed = time.perf_counter() - started
        finally:
            server.terminate()
            served = server.wait(timeout=30)
        requests, limited = len(project.emu.requests), project.rate_limited()
    refused = sum(1 for a in answers if a.status == 503)
    written = sum(1 for a in answers if a.status == 200)
    statuses = sorted({a.status for a in answers})
    seconds = Spread.of(a.seconds for a in answers)
    rows = [
        Row(
            f"website enrollments on Notion, {clients} at once: answered 503",
            f"{refused} of {enrollments}",
            "0",
            refused == 0,
        ),
        Row(
            "  … rate-limit (429) retries per enrollment, at the emulator",
            f"{limited / enrollments:.1f} ({limited} of {requests} requests answered 429; {written} enrollments "
            "written)",
            "0",
            limited == 0,
        ),
        Row("  … time per enrollment (client side)", seconds.show("s", 1)),
    ]
    method = (
        f"`xmas serve` on 127.0.0.1 (Notion store, emulator at {RATE:g} requests/s, burst {BURST}, Retry-After 1 s, "
        f"`[notion] requests_per_second` as shipped ({shipped('notion', 'requests_per_second')})); {enrollments} "
        "assessment enrollments POSTed to /enroll/assessment with the bearer token "
        f"by {clients} concurrent http.client clients. Statuses answered: {statuses}; all done in {elapsed:.1f} s."
    )
    refusals = sorted({f"- {a.status}: `{one_line(a.body)[:300]}`" for a in answers if a.status != 200})
    logged = [line for line in served.stderr.splitlines() if "xmas web:" in line or "Traceback" in line]
    details = refusals + (["", "`xmas serve` logged:", "```", *logged[-20:], "```"] if logged else [])
    return Result(rows, method, details)
