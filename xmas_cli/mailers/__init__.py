"""Mailers: how rendered emails leave. base.py is the port; outbox.py writes .eml files (the embedded default),
resend.py sends through Resend.

May import: core, errors, perms, and each other. Never a store, the engine, tick, inbound, report, commands or web.
"""
