"""The sending loop `xmas tick` runs: run.py (slices of due rows, and what happens to one row), state.py (what a
tick knows while it runs), sending.py (batches through the journal, its replay, outcomes), signals.py, report.py.

May import: core, the ports (stores/base.py, mailers/base.py), engine, inbound (a tick drains the delivery queue),
errors, clock, lock. Never a store or a mailer itself (only their ports), commands, web, report, starter or
backends.
"""
