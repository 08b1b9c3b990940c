"""`xmas init`: write a campaign folder to start from, out of the defaults that ship in the package."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from .. import defaults
from ..errors import InvalidInput


@dataclass(frozen=True)
class InitReport:
    folder: Path
    written: list[Path]
    replaced: list[Path]


def _planned(folder: Path) -> list[tuple[Path, Path]]:
    """(source in the package, target in the folder) for every file init writes."""
    files = [(defaults.CAMPAIGN, folder / "campaign.toml"), (defaults.ENV_EXAMPLE, folder / ".env.example")]
    for source in sorted(defaults.TEMPLATES.glob("*.html")):
        files.append((source, folder / "templates" / source.name))
    return files


def init_folder(folder: Path, force: bool = False) -> InitReport:
    """Copy the packaged campaign into `folder`. An existing file is never replaced unless `force`: nothing is
    written at all when one is in the way, so a refused init leaves the folder as it was."""
    planned = _planned(folder)
    existing = [target for _, target in planned if target.exists()]
    if existing and not force:
        shown = ", ".join(str(p) for p in existing[:3]) + (
            f" and {len(existing) - 3} more" if len(existing) > 3 else ""
        )
        raise InvalidInput(
            f"{shown} already exist{'s' if len(existing) == 1 else ''}: nothing was written",
            "choose an empty folder, or pass --force to replace the shipped files (your other files are kept)",
            [(str(p), "exists") for p in existing],
        )
    for bad in (folder, folder / "templates"):
        if bad.exists() and not bad.is_dir():
            raise InvalidInput(f"{bad} is a file, not a folder", "choose another folder")
    (folder / "templates").mkdir(parents=True, exist_ok=True)
    for source, target in planned:
        shutil.copyfile(source, target)
    return InitReport(folder, [t for _, t in planned if t not in existing], existing)
