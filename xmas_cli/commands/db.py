"""`xmas db migrate`: create or upgrade the PostgreSQL schema ([store] backend = "postgres")."""

from __future__ import annotations

import typer

from ..errors import ConfigError
from .common import AsJson, Config, emit, handled, say
from .env import current

db_app = typer.Typer(help="The PostgreSQL store's schema.", no_args_is_help=True, rich_markup_mode=None)


@db_app.command("migrate")
@handled
def db_migrate(config: Config = None, as_json: AsJson = False) -> None:
    """Create the schema in XMAS_DATABASE_URL's database, or upgrade it to this xmas's version. Numbered
    migrations, each recorded in the database in the transaction that applies it: safe to run twice, and from two
    machines at once (the second waits for the first, then has nothing to do)."""
    from ..backends import config_path
    from ..config import load_campaign
    from ..errors import JSON_VERSION
    from ..stores.pg_connections import database_url, describe_dsn, migrate_database
    from ..stores.pg_schema import LATEST

    environ = current().environ
    path = config_path(config, environ)
    campaign = load_campaign(path, dict(environ))
    if campaign.store.backend != "postgres":
        raise ConfigError(
            f'{path}: [store] backend is "{campaign.store.backend}": there is no database schema to migrate',
            'set backend = "postgres" under [store] and XMAS_DATABASE_URL, then run this again',
        )
    dsn = database_url(environ)
    before, applied = migrate_database(dsn)
    where = describe_dsn(dsn)
    if as_json:
        emit(
            {
                "version": JSON_VERSION,
                "ok": True,
                "database": where,
                "schema_before": before,
                "schema": LATEST,
                "applied": [{"version": a.version, "name": a.name} for a in applied],
            }
        )
        return
    for a in applied:
        say(f"applied {a.version:04d}_{a.name}")
    if applied:
        say(f"{where}: schema version {before} → {LATEST}")
    else:
        say(f"{where}: schema version {LATEST}, up to date")


def register(app: typer.Typer) -> None:
    app.add_typer(db_app, name="db")
