"""What arrives from outside: Resend's webhooks (delivery events, bounces, complaints), Calendly's, the
funnel events a website records, and the durable queue delivery events wait in.

May import: core, the ports (stores/base.py), engine, errors, clock, perms. Never a store or a mailer itself (only
the port), commands, web, tick, report, starter or backends.
"""
