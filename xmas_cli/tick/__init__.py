"""The sending loop `xmas tick` runs: slices of due rows, batches, the journal's replay, signals, its report.

May import: core, the ports (stores/base.py, mailers/base.py), engine, errors, clock, lock. Never commands or web.
"""
