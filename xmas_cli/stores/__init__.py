"""Stores: where contacts, templates, scheduled emails and events live. base.py is the port the engine is
given; sqlite.py (the embedded default), notion*.py (the Notion databases) and postgres.py (with pg_*.py and the
numbered migrations/) implement it; records.py reads both SQL stores' rows; files.py reads templates from a folder.

May import: core, errors, clock, perms, and each other. Never the engine, tick, inbound, report, commands or web.
"""
