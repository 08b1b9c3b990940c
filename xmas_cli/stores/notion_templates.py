"""A Notion store's templates: pages of the Email Templates database, read by Template Name (an Active one
preferred), created Active or updated (subject and body only: Status is the business's)."""

from __future__ import annotations

from ..core.model import Template
from .notion_base import BY_CREATION, NotionBase
from .notion_records import (
    JSON,
    prop,
    read_value,
    select_value,
    text_value,
    title_value,
)


class NotionTemplates(NotionBase):
    def template_pages(self, name: str | None = None) -> dict[str, JSON]:
        """Template pages by Template Name (one query: all of them, or those with this name); first one wins,
        preferring an Active one."""
        t = self.props.templates
        body: JSON = {"sorts": BY_CREATION}
        if name is not None:
            body["filter"] = {"property": t.name, "title": {"equals": name}}
        found: dict[str, list[JSON]] = {}
        for page in self._query("templates", body, f"read template {name}" if name else "read the templates"):
            found.setdefault(str(prop(page, t.name) or "").strip(), []).append(page)
        out: dict[str, JSON] = {}
        for key, pages in found.items():
            if not key:
                continue
            active = [p for p in pages if prop(p, t.status) == "Active"] or pages
            if len(pages) > 1:
                chosen = active[0].get("url")
                self.logger.warning("template %s has %d rows in Notion: using %s", key, len(pages), chosen)
            out[key] = active[0]
        return out

    def get_template(self, template_id: str) -> Template | None:
        if template_id not in self._templates:
            page = self.template_pages(template_id).get(template_id)
            self._templates[template_id] = self.records.template(page) if page else None
        return self._templates[template_id]

    def list_templates(self) -> list[Template]:
        found = [self.records.template(p) for p in self.template_pages().values()]
        self._templates.update({t.id: t for t in found})
        return sorted(found, key=lambda t: t.id)

    def save_template(self, template: Template, page: JSON | None) -> str:
        """Create (Status Active) or update (subject and body only: Status is the business's) one template.
        Returns created | updated | unchanged."""
        t = self.props.templates
        what = f"template {template.id}"
        properties = {
            t.subject: text_value(template.subject, f"{what}: subject"),
            t.body: text_value(template.html, f"{what}: body"),
        }
        if page is None:
            self.api.create_page(
                self.schemas.data_source("templates"),
                {t.name: title_value(template.id, f"{what}: name"), **properties, t.status: select_value("Active")},
                find=lambda: self.template_pages(template.id).get(template.id),
                what=f"create {what}",
                kind="templates",
            )
            return "created"
        current = page.get("properties") or {}
        changed = {k: v for k, v in properties.items() if read_value(current.get(k)) != read_value(v)}
        if not changed:
            return "unchanged"
        self.api.update_page(str(page["id"]), changed, what=f"update {what}", kind="templates")
        return "updated"
