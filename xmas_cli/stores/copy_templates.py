"""A store copy's templates: read from the source's folder (byte for byte) or its own records (Notion), and
written to the target's folder or records, never over a different one."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, cast

from ..core.model import Template
from ..errors import RenderError, StoreUnavailable
from .copy_records import Item, Source, Target
from .files import FileTemplates, parse_template_source, template_source

_FILE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")  # as notion_admin.pull_templates accepts


class _TemplatePages(Protocol):
    """A store whose templates are its own records (Notion): `save_template(t, None)` creates one, Active."""

    def list_templates(self) -> list[Template]: ...
    def save_template(self, template: Template, page: dict[str, Any] | None) -> str: ...


# ------------------------------------------------------------------------------------------ templates


@dataclass(frozen=True)
class SourceTemplate:
    id: str
    data: bytes  # the file: as read from the source's folder, or the template written in the file format
    template: Template | None  # as the store reads it; None when the file cannot be read (problem says why)
    problem: str = ""


def _folder_of(store: object) -> Path | None:
    templates = getattr(store, "templates", None)
    return templates.folder if isinstance(templates, FileTemplates) else None


def read_templates(source: Source) -> tuple[list[SourceTemplate], list[Item]]:
    """The source's templates (its folder's `*.html` files, byte for byte; or its own records), and those left out."""
    found: list[SourceTemplate] = []
    left: list[Item] = []
    if (folder := _folder_of(source)) is not None:
        for path in sorted(folder.glob("*.html")) if folder.is_dir() else []:
            try:
                data = path.read_bytes()
            except OSError as exc:
                raise StoreUnavailable(f"cannot read {path}: {exc.strerror}", "check the templates folder") from None
            try:  # read as FileTemplates reads it (universal newlines), for a target that keeps subject and body
                text = data.decode("utf-8").replace("\r\n", "\n").replace("\r", "\n")
                found.append(SourceTemplate(path.stem, data, parse_template_source(path.stem, text, str(path))))
            except UnicodeDecodeError:
                found.append(SourceTemplate(path.stem, data, None, "it is not UTF-8 text"))
            except RenderError as exc:
                found.append(SourceTemplate(path.stem, data, None, exc.message))
        return found, left
    for t in source.list_templates():
        why = (
            "not a usable file name (letters, digits, _ . - only)"
            if not _FILE_NAME.match(t.id)
            else "not Active at the source"
            if not t.active
            else "it has no subject line"
            if not t.subject
            else ""
        )
        if why:
            left.append(Item("templates", t.id, "skipped", why))
        else:
            found.append(SourceTemplate(t.id, template_source(t).encode("utf-8"), t))
    return found, left


class TemplateSink(Protocol):
    where: str

    def compare(self, t: SourceTemplate) -> str:
        """absent | same | different"""
        ...

    def write(self, t: SourceTemplate) -> None: ...

    def refresh(self) -> None:
        """Read again what the target holds (after writing)."""
        ...


class FolderSink:
    """A templates folder (SQLite, PostgreSQL): the file written byte for byte, never over a different one."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.where = str(folder)

    def compare(self, t: SourceTemplate) -> str:
        path = self.folder / f"{t.id}.html"
        if not path.is_file():
            return "absent"
        return "same" if path.read_bytes() == t.data else "different"

    def write(self, t: SourceTemplate) -> None:
        path = self.folder / f"{t.id}.html"
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            path.write_bytes(t.data)
        except OSError as exc:
            raise StoreUnavailable(f"cannot write {path}: {exc.strerror}", "check the templates folder") from None

    def refresh(self) -> None:
        pass  # every compare reads the file


class PagesSink:
    """A store's own template records (Notion): created Active, as `templates push` creates them."""

    def __init__(self, store: _TemplatePages, where: str) -> None:
        self.store = store
        self.where = where
        self._held: dict[str, Template] | None = None

    def _existing(self) -> dict[str, Template]:
        if self._held is None:
            self._held = {t.id: t for t in self.store.list_templates()}
        return self._held

    def compare(self, t: SourceTemplate) -> str:
        held = self._existing().get(t.id)
        if held is None:
            return "absent"
        same = t.template is not None and (held.subject, held.html) == (t.template.subject, t.template.html)
        return "same" if same else "different"

    def write(self, t: SourceTemplate) -> None:
        assert t.template is not None  # the plan skips a file that cannot be read
        self.store.save_template(t.template, None)

    def refresh(self) -> None:
        self._held = None


def template_sink(target: Target) -> TemplateSink | None:
    """Where the target keeps templates: its own records (Notion), or the folder its store reads."""
    if callable(getattr(target, "save_template", None)):
        return PagesSink(cast(_TemplatePages, target), target.description)
    own = _folder_of(target)
    return FolderSink(own) if own is not None else None
