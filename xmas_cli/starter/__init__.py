"""First use: `xmas init` (a campaign folder from the packaged defaults) and `xmas demo` (the whole funnel on
the embedded default, on a simulated clock, with plausible delivery events).

May import: everything below the command line: core, engine, tick, inbound, report, stores, mailers, backends,
config, errors, clock, lock, perms, defaults. Never commands or web.
"""
