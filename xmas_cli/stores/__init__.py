"""Stores: where contacts, templates, scheduled emails and events live.

base.py holds the ports: Store (every store, whole), BatchJournal and RunnerClaims (a store has one or not); the row
rules they follow are core/rows.py. sqlite.py is the embedded default (on sqlite_journal.py and sqlite_base.py, with
sqlite_batches.py: the journal's table, which local_journal.py keeps too); postgres.py is for many runners (on
pg_runners.py and pg_base.py, with pg_connections.py, pg_schema.py, pg_budget.py and the numbered migrations/);
notion.py keeps the state in three Notion databases (on notion_templates.py and notion_base.py, with notion_api.py,
notion_records.py, notion_values.py, notion_schema.py and notion_admin.py), and local_journal.py is the tick's
journal where the store has no transactions. records.py reads both SQL stores' rows, report_sql.py counts the report
in SQL, files.py reads templates from a folder, and copy.py (with copy_plan.py, copy_records.py, copy_templates.py)
copies what one store holds into another.

May import: core, errors, clock, perms, config (notion_admin writes the database ids into campaign.toml), and
each other. Never a mailer, the engine, tick, inbound, report, starter, backends, commands or web.
"""
