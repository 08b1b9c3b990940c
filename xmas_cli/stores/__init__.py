"""Stores: where contacts, templates, scheduled emails and events live. base.py is the port the engine is
given; sqlite.py (the embedded default), notion*.py (the Notion databases) and postgres.py (with pg_*.py and the
numbered migrations/) implement it; records.py reads both SQL stores' rows; files.py reads templates from a folder;
copy.py copies what one store holds into another (`xmas store copy`).

May import: core, errors, clock, perms, config (notion_admin writes the database ids into campaign.toml), and
each other. Never a mailer, the engine, tick, inbound, report, starter, backends, commands or web.
"""
