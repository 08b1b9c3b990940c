"""Mailers: how rendered emails leave (outbox files here, Resend in production)."""
