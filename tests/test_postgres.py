"""The PostgreSQL store against a real server: its schema and migrations, its refusals, and enrollments from many
web processes at once. (The engine's rules run on it through the every_store tests; many tick runners, a killed
runner and its lease: tests/chaos/test_postgres_runners.py.) Each test has a schema of its own (tests/pg.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pg
import pytest
from conftest import SECRET, Cli, cgi_request, clean_environ, replace_once
from test_cli_enroll import ASSESSMENT

from xmas_cli.stores.pg_schema import LATEST, migrate, migrations

EVERY = list(range(1, LATEST + 1))  # every migration's version
T0 = "2026-12-01T10:30:00Z"
LATER = "2026-12-09T10:30:00Z"  # every assessment email is due
API_TOKEN = "token-0123456789"


def use_postgres(project: Path) -> None:
    path = project / "campaign.toml"
    path.write_text(replace_once(path.read_text(), 'backend = "sqlite"', 'backend = "postgres"'))


@pytest.fixture
def schema(project: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The project on PostgreSQL, in a new schema that no migration has touched yet; yields its DSN."""
    use_postgres(project)
    with pg.fresh_schema(migrated=False) as dsn:
        monkeypatch.setenv("XMAS_DATABASE_URL", dsn)
        yield dsn


def query(dsn: str, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        cursor = conn.execute(sql, params)
        return cursor.fetchall() if cursor.description else []


# ---------------------------------------------------------------------------------------------- the schema


def test_the_migrations_are_numbered_one_by_one_and_latest_is_the_last() -> None:
    found = migrations()
    assert [m.version for m in found] == list(range(1, len(found) + 1)) and found[-1].version == LATEST


def test_a_new_database_is_refused_until_migrated_and_migrating_twice_changes_nothing(xmas: Cli, schema: str) -> None:
    refused = xmas("tick", "--now", T0, code=3)
    assert "has no xmas schema yet" in refused.stderr and "run `xmas db migrate`" in refused.stderr
    first = xmas.json("db", "migrate")
    assert first["schema_before"] == 0 and [a["version"] for a in first["applied"]] == EVERY
    again = xmas.json("db", "migrate")
    assert again["schema_before"] == LATEST and again["applied"] == []
    assert query(schema, "SELECT version FROM xmas_migrations ORDER BY version") == [(v,) for v in EVERY]
    assert "0 due" in xmas("tick", "--now", T0).stdout


@pytest.mark.parametrize("version", range(1, LATEST))
def test_migrating_from_an_earlier_version_keeps_what_it_stored(xmas: Cli, schema: str, version: int) -> None:
    """What a database at `version` holds (copied from a real enrollment, in that version's columns) survives the
    upgrade, and is then sent like anything enrolled since."""
    xmas("db", "migrate")
    xmas("enroll", "assessment", "--payload", "-", "--now", T0, input=json.dumps(ASSESSMENT))
    columns = "id, enrollment_key, email, sequence, step, template, sender, due, state, data"
    rows = query(schema, f"SELECT {columns} FROM emails ORDER BY id")
    contacts = query(schema, "SELECT email, fields, segment, updated_at, consent FROM contacts")
    assert len(rows) == 5 and len(contacts) == 1

    import psycopg
    from psycopg.types.json import Jsonb

    with pg.fresh_schema(migrated=False) as older, psycopg.connect(older, autocommit=True) as conn:
        migrate(conn, upto=version)
        for row in rows:
            conn.execute(f"INSERT INTO emails ({columns}) VALUES ({', '.join(['%s'] * 10)})", [*row[:9], Jsonb(row[9])])
        for c in contacts:
            conn.execute(
                "INSERT INTO contacts (email, fields, segment, updated_at, consent) VALUES (%s, %s, %s, %s, %s)",
                [c[0], Jsonb(c[1]), *c[2:]],
            )
        os.environ["XMAS_DATABASE_URL"] = older  # the fixture's monkeypatch restores it
        behind = xmas("tick", "--now", LATER, code=3)
        assert f"has schema version {version}, this xmas needs {LATEST}" in behind.stderr
        assert "run `xmas db migrate`" in behind.stderr
        upgraded = xmas.json("db", "migrate")
        assert [a["version"] for a in upgraded["applied"]] == list(range(version + 1, LATEST + 1))
        assert query(older, f"SELECT {columns} FROM emails ORDER BY id") == rows  # nothing lost or changed
        status = xmas.json("status", "--now", LATER)
        assert status["counts"]["assessment"] == {"Sent by website": 1, "Scheduled": 4}
        ticked = xmas("tick", "--now", LATER)
        assert ": 1 sent" in ticked.stdout  # catch-up: one email of the enrollment per tick
        assert len(list((xmas.project / ".xmas" / "outbox").glob("*.eml"))) == 1


def test_a_schema_newer_than_this_xmas_is_refused(xmas: Cli, schema: str) -> None:
    xmas("db", "migrate")
    query(schema, "INSERT INTO xmas_migrations (version, name) VALUES (%s, 'from_the_future')", LATEST + 1)
    for args in (("tick", "--now", T0), ("db", "migrate")):
        refused = xmas(*args, code=3)
        assert f"schema version {LATEST + 1}, newer than this xmas knows ({LATEST})" in refused.stderr
        assert "upgrade xmas" in refused.stderr


def test_two_machines_migrating_at_once_apply_each_migration_once(project: Path, schema: str) -> None:
    env = clean_environ({"XMAS_DATABASE_URL": schema, "XMAS_SECRET": SECRET})
    command = [sys.executable, "-c", "from xmas_cli.commands import main; main()", "db", "migrate", "--json"]
    procs = [subprocess.Popen(command, cwd=project, env=env, stdout=subprocess.PIPE, text=True) for _ in range(2)]
    docs = [json.loads(proc.communicate(timeout=60)[0]) for proc in procs]
    applied = sorted(a["version"] for doc in docs for a in doc["applied"])
    assert applied == EVERY and sorted(len(doc["applied"]) for doc in docs) == [0, LATEST]
    assert query(schema, "SELECT COUNT(*) FROM xmas_migrations") == [(LATEST,)]


def test_without_a_database_url_the_variable_is_named(xmas: Cli, project: Path) -> None:
    use_postgres(project)
    refused = xmas("status", code=3)
    assert '[store] backend = "postgres" needs XMAS_DATABASE_URL' in refused.stderr
    assert "export XMAS_DATABASE_URL=postgresql://" in refused.stderr


def test_a_server_that_does_not_answer_is_exit_4_without_the_password(
    xmas: Cli, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_postgres(project)
    monkeypatch.setenv("XMAS_DATABASE_URL", "postgresql://xmas:hunter2@127.0.0.1:1/campaign")
    refused = xmas("tick", code=4)
    assert "cannot connect to PostgreSQL 127.0.0.1:1/campaign" in refused.stderr and "hunter2" not in refused.stderr
    assert "check XMAS_DATABASE_URL" in refused.stderr


def test_a_lease_shorter_than_a_tick_is_refused_naming_the_key(xmas: Cli, project: Path) -> None:
    use_postgres(project)  # refused while reading campaign.toml, before any connection
    path = project / "campaign.toml"
    path.write_text(replace_once(path.read_text(), 'path = ".xmas/xmas.db"', 'path = ".xmas/xmas.db"\nlease = "30s"'))
    refused = xmas("status", code=3)
    assert "store.lease '30s' is shorter than a tick runs" in refused.stderr and "at least 68s" in refused.stderr


def test_the_lease_is_not_checked_where_there_are_no_leases(xmas: Cli, project: Path) -> None:
    """SQLite has no leases (one runner holds the tick lock): a budget longer than the lease is a budget."""
    path = project / "campaign.toml"
    path.write_text(replace_once(path.read_text(), "# budget_seconds = 50", "budget_seconds = 600"))
    xmas("status")  # exit 0 (was 3: "store.lease '2m' is shorter than a tick runs")


# ---------------------------------------------------------------------------------------------- many writers


def cgi_enroll(project: Path, dsn: str, body: bytes) -> subprocess.Popen[bytes]:
    """One website enrollment through `xmas-cgi`, as its own process (a web server's worker)."""
    env = clean_environ(
        {
            **cgi_request(project, "POST", "/enroll/assessment", body),
            "HTTP_AUTHORIZATION": f"Bearer {API_TOKEN}",
            "XMAS_API_TOKEN": API_TOKEN,
            "XMAS_NOW": T0,
            "XMAS_DATABASE_URL": dsn,
        }
    )
    with tempfile.TemporaryFile() as stdin:  # the child keeps its own descriptor of the file
        stdin.write(body)
        stdin.seek(0)
        return subprocess.Popen(
            [sys.executable, "-m", "xmas_cli.web.cgi"], stdin=stdin, env=env, stdout=subprocess.PIPE, cwd=project
        )


def test_twenty_web_enrollments_of_one_contact_at_once_write_its_rows_once(xmas: Cli, schema: str) -> None:
    xmas("db", "migrate")
    body = json.dumps(ASSESSMENT).encode()
    start = threading.Barrier(20)
    procs: list[subprocess.Popen[bytes]] = []
    guard = threading.Lock()

    def launch() -> None:
        start.wait()
        proc = cgi_enroll(xmas.project, schema, body)
        with guard:
            procs.append(proc)

    threads = [threading.Thread(target=launch) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    answers = [proc.communicate(timeout=120)[0] for proc in procs]
    refused = [a[:300] for a in answers if not a.startswith(b"Status: 200")]
    assert refused == []
    docs = [json.loads(a.split(b"\r\n\r\n", 1)[1]) for a in answers]
    assert sorted(d["created"] for d in docs) == [False] * 19 + [True]  # one wrote the rows; 19 found them
    email = ASSESSMENT["email"]
    assert query(schema, "SELECT COUNT(*), COUNT(DISTINCT id) FROM emails WHERE email = %s", email) == [(5, 5)]
    assert query(schema, "SELECT COUNT(*) FROM contacts") == [(1,)]
    assert len({d["enrollment_key"] for d in docs}) == 1
    assert all([r["id"] for r in d["scheduled"]] == [r["id"] for r in docs[0]["scheduled"]] for d in docs)


# ---------------------------------------------------------------------------------------------- moving over, the report


def test_the_demo_copied_into_postgres_reports_the_same_counted_in_sql(xmas: Cli, schema: str) -> None:
    """The demo's campaign (SQLite: deliveries, opens, clicks, an unsubscribe, a booking) copied with `xmas store
    copy`: the report, counted in SQL on PostgreSQL, equals the one counted row by row on SQLite, for every start
    and sequence; and the store's SQL facts equal the row-by-row definition applied to its own rows."""
    project = xmas.project
    xmas("db", "migrate")
    sqlite_campaign = project / "sqlite.toml"
    sqlite_campaign.write_text(
        (project / "campaign.toml").read_text().replace('backend = "postgres"', 'backend = "sqlite"')
    )
    xmas("demo", "--config", str(sqlite_campaign), "--dir", "demo", "--now", T0)
    sqlite_config = str(project / "demo" / "campaign.toml")
    copied = xmas.json("store", "copy", "--config", sqlite_config, "--to-config", str(project / "campaign.toml"))
    assert copied["ok"] and sum(k["copied"] for k in copied["kinds"].values()) == 40, copied  # 7 + 32 + 1

    def report(config: str, *args: str) -> dict[str, Any]:
        doc: dict[str, Any] = xmas.json("report", "--config", config, "--now", "2026-12-31T10:00:00Z", *args)
        del doc["generated_at"]
        return doc

    for args in ((), ("--since", "2026-12-03"), ("--sequence", "onboarding"), ("--since", "2026-12-05T00:00:00Z")):
        on_sqlite, on_postgres = report(sqlite_config, *args), report(str(project / "campaign.toml"), *args)
        assert on_postgres == on_sqlite, args
    whole = report(sqlite_config)
    steps = [s for seq in whole["sequences"] for s in seq["steps"]]
    assert sum(s["sent"] for s in steps) == 20 and sum(s["opened"] for s in steps) > 0  # a report worth comparing
    assert sum(s["unsubscribed"] for s in steps) == 1 and any(f["conversion"] for f in whole["funnel"])

    from datetime import UTC, datetime

    from xmas_cli.backends import engine_from_config
    from xmas_cli.core.report_facts import facts_from_rows
    from xmas_cli.report.build import funnel_of

    engine = engine_from_config(str(project / "campaign.toml"))
    try:
        store, funnel = engine.store, funnel_of(engine)
        for since in (None, datetime(2026, 12, 4, tzinfo=UTC)):
            expected = facts_from_rows(store.all_emails(), store.get_contacts, since, funnel)
            assert store.report_facts(since, funnel) == expected
    finally:
        engine.close()


def test_delivery_events_for_one_email_applied_by_many_workers_at_once_all_count(xmas: Cli, schema: str) -> None:
    """Resend's webhooks for one email can reach several web workers at once: each event is applied with the row
    locked, so 4 workers with 25 opens each make 100 opens, not fewer."""
    from datetime import UTC, datetime

    from xmas_cli.backends import engine_from_config
    from xmas_cli.core.deliveries import DeliveryEvent, apply
    from xmas_cli.core.model import State

    xmas("db", "migrate")
    xmas("enroll", "assessment", "--payload", "-", "--now", T0, input=json.dumps(ASSESSMENT))
    engine = engine_from_config(str(xmas.project / "campaign.toml"))
    try:
        [row] = [r for r in engine.store.all_emails() if r.step == 2]
        engine.store.update_email(row, {"state": State.SENT, "message_id": "re_1", "sent_at": datetime.now(UTC)})
        start = threading.Barrier(4)

        def worker(n: int) -> None:
            start.wait()
            for k in range(25):
                event = DeliveryEvent(f"{n}-{k}", "email.opened", "re_1", datetime(2026, 12, 2, tzinfo=UTC))
                engine.store.update_delivery("re_1", partial(apply, event=event))

        threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert engine.store.emails_by_id([row.id])[row.id].delivery.opens == 100
    finally:
        engine.close()


# ---------------------------------------------------------------------------------------------- runners racing


def test_two_runners_racing_for_one_expired_batch_on_two_connections_exactly_one_takes_it(schema: str) -> None:
    """A runner died holding a batch; its lease has ended; two runners try to take it over at the same instant.
    A third connection holds the batch's row locked until both takeover UPDATEs are waiting on it (seen in
    pg_locks: two backends, so two connections, both in flight), then lets go: exactly one wins, and the batch is
    that one's. (Without the lease condition in PostgresRunners.take_batch both would win and send it twice.)"""
    from datetime import UTC, datetime, timedelta

    import psycopg

    from xmas_cli.stores.postgres import PostgresStore

    with psycopg.connect(schema, autocommit=True) as conn:
        migrate(conn)
    now = datetime(2026, 12, 1, 10, 30, tzinfo=UTC)
    query(
        schema,
        "INSERT INTO batches (key, row_ids, emails, opened_at, owner, lease_until) VALUES (%s, %s, %s, %s, %s, %s)",
        "batch-1", "[]", "[]", now - timedelta(minutes=10), "dead-runner", now - timedelta(minutes=1),
    )  # fmt: skip
    stores = [PostgresStore(schema, Path(tempfile.gettempdir())) for _ in range(2)]
    results: dict[str, bool] = {}
    errors: list[BaseException] = []

    def runner(name: str, store: PostgresStore) -> None:
        try:
            results[name] = store.take_batch("batch-1", name, now, now + timedelta(minutes=5))
        except BaseException as exc:  # reported by the assertion below, not lost in a thread
            errors.append(exc)

    with psycopg.connect(schema) as holder:  # a transaction: the row stays locked until the commit
        holder.execute("SELECT key FROM batches WHERE key = 'batch-1' FOR UPDATE")
        holder_pid = holder.info.backend_pid
        threads = [threading.Thread(target=runner, args=(f"runner-{n}", s)) for n, s in enumerate(stores)]
        for thread in threads:
            thread.start()
        waiting: list[tuple[Any, ...]] = []
        for _ in range(500):  # bounded: at most 10 s for both UPDATEs to queue behind the lock
            waiting = query(
                schema,
                "SELECT DISTINCT pid FROM pg_locks WHERE NOT granted AND pid <> %s "
                "AND pid IN (SELECT pid FROM pg_stat_activity WHERE query LIKE 'UPDATE batches SET owner%%')",
                holder_pid,
            )
            if len(waiting) == 2 or not any(t.is_alive() for t in threads):
                break
            threading.Event().wait(0.02)
        holder.commit()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
    assert len(waiting) == 2, "both takeovers were in flight at once, on two connections"
    assert sorted(results.values()) == [False, True]
    [winner] = [name for name, won in results.items() if won]
    assert query(schema, "SELECT owner, lease_until FROM batches WHERE key = 'batch-1'") == [
        (winner, now + timedelta(minutes=5))
    ]
    # and a lease that has not ended is never taken, however the race goes
    assert (
        stores[0].take_batch("batch-1", "runner-late", now + timedelta(minutes=1), now + timedelta(minutes=9)) is False
    )
