"""campaign.toml from the disk (and XMAS_TESTING from the environment) → a validated core.campaign.Campaign.

Every error names the file, the key and the fix. The models and their rules are pure and live in core/campaign.py.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from .core.campaign import Campaign
from .errors import ConfigError


def _key_of(loc: tuple[int | str, ...]) -> str:
    parts = [str(p) for p in loc]
    out = ""
    for p in parts:
        out += f"[{p}]" if p.isdigit() else (f".{p}" if out else p)
    return out.replace("from_", "from")


def load_campaign(path: Path, env: dict[str, str] | None = None) -> Campaign:
    env = dict(os.environ) if env is None else env
    if not path.exists():
        raise ConfigError(
            f"{path}: no such file",
            "run xmas from the folder that holds campaign.toml, or pass --config PATH (or set XMAS_CONFIG)",
        )
    try:
        raw: dict[str, Any] = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})", "fix the syntax at that line") from None
    testing = env.get("XMAS_TESTING")
    if testing is not None and testing.strip() != "":
        if testing.strip().lower() not in ("0", "1", "true", "false", "yes", "no"):
            raise ConfigError(f"XMAS_TESTING={testing!r} is not a boolean", "set it to 1 or 0")
        raw.setdefault("campaign", {})["testing"] = testing.strip().lower() in ("1", "true", "yes")
    try:
        where = {"base_dir": path.resolve().parent, "home_dir": Path("~").expanduser()}
        campaign = Campaign.model_validate({**raw, **where})
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            key = _key_of(err["loc"]) or "(top level)"
            msg = err["msg"].removeprefix("Value error, ")
            if err["type"] == "missing":
                msg = "is required: add it"
            elif err["type"] == "extra_forbidden":
                msg = "is not a known key: remove it or check its spelling"
            lines.append(f"{path}: {key}: {msg}")
        raise ConfigError("invalid campaign file:\n  " + "\n  ".join(lines), "fix the keys above") from None
    return campaign
