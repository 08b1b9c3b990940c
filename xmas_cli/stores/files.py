"""Templates read from a folder: `<template_id>.html`, first line `Subject: ...` (see render.py)."""

from __future__ import annotations

from pathlib import Path

from ..model import Template
from ..render import parse_template_source, template_source


class FileTemplates:
    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def path(self, template_id: str) -> Path:
        return self.folder / f"{template_id}.html"

    def get(self, template_id: str) -> Template | None:
        path = self.path(template_id)
        if not path.is_file():
            return None
        return parse_template_source(template_id, path.read_text(encoding="utf-8"), str(path))

    def list(self) -> list[Template]:
        if not self.folder.is_dir():
            return []
        return [t for p in sorted(self.folder.glob("*.html")) if (t := self.get(p.stem)) is not None]

    def write(self, template: Template) -> Path:
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.path(template.id)
        path.write_text(template_source(template), encoding="utf-8")
        return path
