"""Stored data in a Rich markup string or table cell: control characters made visible (core/display.py), then
markup escaped. Here, beside the commands, because Rich is the terminal's and the core imports no Rich."""

from __future__ import annotations

from ..core.display import visible


def safe(value: object) -> str:
    """`value` for a Rich markup string or table cell: control characters made visible, markup escaped."""
    from rich.markup import escape  # only where Rich prints: a plain line (an idle tick's summary) needs none

    return escape(visible(value))
