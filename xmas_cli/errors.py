"""The project's exceptions. Raised once in the core, rendered once at the edge (CLI or web)."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Documented exit codes (README, "Exit codes")."""

    OK = 0
    FAILURES = 1  # the command ran, but some emails failed or are waiting (tick, templates check)
    INVALID_INPUT = 2  # a bad payload, option, sequence name or unknown contact: nothing was written
    CONFIG = 3  # campaign.toml or an environment variable is wrong
    UNAVAILABLE = 4  # the store or the mailer could not be reached
    BUSY = 5  # another tick (or enrollment) holds the lock: nothing was done
    STOPPED = 6  # tick: stopped by SIGTERM or SIGINT; what was sent is recorded, the next tick goes on


class XmasError(Exception):
    """An error an operator can act on: what happened, and how to fix it."""

    exit_code: ExitCode = ExitCode.FAILURES

    def __init__(self, message: str, fix: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.fix = fix

    def __str__(self) -> str:
        return f"{self.message} — {self.fix}" if self.fix else self.message


class ConfigError(XmasError):
    exit_code = ExitCode.CONFIG


class InvalidInput(XmasError):
    """Bad input. `problems` holds one line per bad field."""

    exit_code = ExitCode.INVALID_INPUT

    def __init__(self, message: str, fix: str = "", problems: list[tuple[str, str]] | None = None) -> None:
        super().__init__(message, fix)
        self.problems: list[tuple[str, str]] = problems or []


class Unauthorized(InvalidInput):
    """A missing or wrong secret, token or signature. Messages never echo the secret."""


class NotFound(InvalidInput):
    """Something named on the command line does not exist (a contact, a template, a sequence)."""


class StoreUnavailable(XmasError):
    exit_code = ExitCode.UNAVAILABLE


class MailerUnavailable(XmasError):
    exit_code = ExitCode.UNAVAILABLE


class Busy(XmasError):
    exit_code = ExitCode.BUSY


class RenderError(XmasError):
    """A template could not be rendered for one email (missing variable, sandbox violation, syntax)."""


def unknown_sequence(name: str, known: list[str]) -> InvalidInput:
    """The one message for a sequence campaign.toml does not have (the CLI and the web routes alike)."""
    return InvalidInput(f"unknown sequence {name!r}", f"use one of: {', '.join(known)} (see campaign.toml)")


JSON_VERSION = 1


def error_json(exc: XmasError) -> dict[str, object]:
    """The JSON answer for an error: the same document from `--json` and from the web routes."""
    problems = exc.problems if isinstance(exc, InvalidInput) else []
    return {
        "version": JSON_VERSION,
        "ok": False,
        "error": {
            "code": int(exc.exit_code),
            "message": exc.message,
            "fix": exc.fix,
            "fields": [{"field": f, "problem": p} for f, p in problems],
        },
    }
