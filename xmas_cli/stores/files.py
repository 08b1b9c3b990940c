"""Templates read from a folder: `<template_id>.html`, first line `Subject: ...`, an empty line, then the HTML."""

from __future__ import annotations

from pathlib import Path

from ..core.model import TEMPLATE_NAME_FIX, Template, template_file_name
from ..errors import InvalidInput, RenderError

SUBJECT_PREFIX = "Subject: "


def parse_template_source(template_id: str, source: str, origin: str = "") -> Template:
    """The file format: first line `Subject: ...`, one empty line, then the HTML body."""
    first, _, rest = source.partition("\n")
    if not first.startswith(SUBJECT_PREFIX) or not first[len(SUBJECT_PREFIX) :].strip():
        raise RenderError(
            f"template {template_id} ({origin or 'no origin'}) does not start with a 'Subject: ...' line",
            "make the first line 'Subject: <subject>', then an empty line, then the HTML",
        )
    body = rest[1:] if rest.startswith("\n") else rest
    return Template(id=template_id, subject=first[len(SUBJECT_PREFIX) :].strip(), html=body, origin=origin)


def template_source(template: Template) -> str:
    return f"{SUBJECT_PREFIX}{template.subject}\n\n{template.html}"


class FileTemplates:
    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def path(self, template_id: str) -> Path:
        name = template_file_name(template_id)
        if name is None:
            raise InvalidInput(f"{template_id!r} is not a template name in {self.folder}", TEMPLATE_NAME_FIX)
        return self.folder / name

    def get(self, template_id: str) -> Template | None:
        """The template, or None when there is none of that name (`../x` included: nothing outside the folder)."""
        if template_file_name(template_id) is None:
            return None
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


class TemplatesInFolder:
    """The template half of a store that keeps its templates as files in the campaign's folder (SQLite,
    PostgreSQL): only the scheduled emails, contacts and events are in the database."""

    templates: FileTemplates

    def get_template(self, template_id: str) -> Template | None:
        return self.templates.get(template_id)

    def list_templates(self) -> list[Template]:
        return self.templates.list()
