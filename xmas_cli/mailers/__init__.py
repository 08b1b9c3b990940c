"""Mailers: how rendered emails leave. base.py is the port; outbox.py writes .eml files (the embedded default),
resend.py sends through Resend.

May import: core, errors, perms, and each other. Never a store, the engine, tick, inbound, report, starter,
backends, commands or web.
"""
