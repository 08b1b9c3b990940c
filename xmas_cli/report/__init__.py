"""`xmas report`: the campaign's numbers (their one definition is core/report_facts.py, counted in SQL where the
store can) and the terminal, JSON and HTML renderings of them.

May import: core, the ports (stores/base.py), engine, errors, clock. Never a store or a mailer itself (only the
port), commands, web, tick, inbound, starter or backends.
"""
