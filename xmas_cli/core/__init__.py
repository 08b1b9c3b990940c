"""The pure core: the rules of a campaign, as plain functions of their inputs.

Lives here: the campaign's models (campaign.py), the records (model.py), durations, send windows, consent, the
schedule and the frequency cap, the row rules (rows.py: live, dead, due, problem rows, unknown sequences, damaged
rows), variables, rendering and composing an email, the website's payloads, the bounded JSON reader, unsubscribe
tokens, subject variants, the batch journal's format, delivery-event rules and the report's numbers.

May import: the standard library's pure parts, pydantic, jinja2 (sandboxed), `xmas_cli.errors`, and other core
modules. Never a store, a mailer, a command, the web, the tick, the engine, inbound, report, starter or backends;
never the clock (`datetime.now`), the disk, the network or the environment. tests/test_architecture.py holds this
rule.
"""
