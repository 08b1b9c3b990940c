"""The default campaign that ships inside the package: `xmas init` copies it, `xmas demo` runs it.

May import: the standard library only.
"""

from __future__ import annotations

from pathlib import Path

FOLDER = Path(__file__).resolve().parent
CAMPAIGN = FOLDER / "campaign.toml"
TEMPLATES = FOLDER / "templates"
ENV_EXAMPLE = FOLDER / "env.example"
