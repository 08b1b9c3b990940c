"""xmas: run email nurture campaigns from cron, with Notion or SQLite holding the state."""

__version__ = "0.1.0"
