"""The sending loop `xmas tick` runs: slices of due rows, batches, the journal's replay, signals, its report.

May import: core, the ports (stores/base.py, mailers/base.py), engine, inbound (a tick drains the delivery queue),
errors, clock, lock. Never a store or a mailer itself (only their ports), commands, web, report, starter or
backends.
"""
