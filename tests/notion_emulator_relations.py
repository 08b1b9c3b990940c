"""Relation and rollup properties for the Notion emulator (Notion-Version 2025-09-03), as
/work/shared/reference/notion-views.md describes them.

* A relation names its target by ``data_source_id`` and is ``single_property`` or ``dual_property`` (two-way: the
  twin appears in the target data source, named by ``synced_property_name``, else "Related to <title>"; a taken
  name is refused). Responses show ``{database_id, data_source_id, type, dual_property: {synced_property_id,
  synced_property_name}}``.
* A relation value is a list of ``{"id"}`` of pages of the target data source, at most 100 per request; it replaces
  the value; a two-way relation shows the link on both pages. A page lists at most 25 references, with ``has_more``.
* A rollup names a relation of its own data source (``relation_property_name`` or ``_id``), a property of the related
  data source (``rollup_property_name`` or ``_id``) and a ``function``; it is computed when read and cannot be
  written. Values: ``{"type": "number", "number": N, "function": F}``, ``{"type": "date", "date": {...}}`` or
  ``{"type": "array", "array": [...]}``.

Refused (400 ``validation_error``): a target that is not a data source, a relation value naming a page of another
data source or more than 100 pages, a rollup naming a missing relation or property or an unknown function, a write to
a rollup. Installed by notion_emulator.py's hooks, standard library only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from notion_emulator import JSONDict, NotionEmulator, _DataSource, _Page, _Property

MAX_RELATION_WRITE = 100
MAX_RELATION_SHOWN = 25
FUNCTIONS = frozenset(
    {
        "count",
        "count_values",
        "empty",
        "not_empty",
        "unique",
        "show_unique",
        "percent_empty",
        "percent_not_empty",
        "sum",
        "average",
        "median",
        "min",
        "max",
        "range",
        "earliest_date",
        "latest_date",
        "date_range",
        "checked",
        "unchecked",
        "percent_checked",
        "percent_unchecked",
        "count_per_group",
        "percent_per_group",
        "show_original",
    }
)


def _ne() -> Any:
    import notion_emulator as ne

    return ne


def config(ptype: str, raw: JSONDict, where: str) -> JSONDict:
    """The shape of a relation's or rollup's schema entry (what can be checked without the data sources)."""
    ne = _ne()
    if ptype == "relation":
        kind = raw.get("type", "single_property" if "single_property" in raw else "dual_property")
        if kind not in ("single_property", "dual_property"):
            raise ne._failed(f"{where}.relation.type", "should be `single_property` or `dual_property`", kind)
        if not isinstance(raw.get("data_source_id"), str):
            raise ne._failed(
                f"{where}.relation.data_source_id", "should be defined", raw.get("data_source_id", ne._MISSING)
            )
        out: JSONDict = {"data_source_id": ne.normalize_id(raw["data_source_id"]), "type": kind, kind: {}}
        if kind == "dual_property":
            name = (raw.get("dual_property") or {}).get("synced_property_name")
            out[kind] = {"synced_property_name": name} if name else {}
        return out
    function = raw.get("function")
    if function not in FUNCTIONS:
        raise ne._failed(
            f"{where}.rollup.function", "should be a rollup function (count, sum, latest_date...)", function
        )
    relation = raw.get("relation_property_name") or raw.get("relation_property_id")
    target = raw.get("rollup_property_name") or raw.get("rollup_property_id")
    if not isinstance(relation, str) or not isinstance(target, str):
        raise ne._invalid(f"{where}.rollup: name the relation and the property it rolls up.")
    return {"relation_property_name": relation, "rollup_property_name": target, "function": function}


def check(emu: NotionEmulator, ds: _DataSource, properties: dict[str, _Property]) -> None:
    """Before a schema is applied: relations point at data sources, rollups at a relation and a property there."""
    ne = _ne()
    for prop in properties.values():
        if prop.type == "relation":
            target = emu._data_sources.get(prop.config["data_source_id"])
            if target is None:
                raise ne._not_found("data_source", str(prop.config["data_source_id"]))
            twin = (prop.config.get("dual_property") or {}).get("synced_property_name")
            if twin and "synced_property_id" not in prop.config["dual_property"] and target.find(twin) is not None:
                raise ne._invalid(f'Duplicate property name "{twin}" in the related data source.')
        elif prop.type == "rollup":
            relation = next((p for p in properties.values() if p.name == prop.config["relation_property_name"]), None)
            relation = relation or properties.get(prop.config["relation_property_name"])
            if relation is None or relation.type != "relation":
                raise ne._invalid(f"Rollup {prop.name}: no relation property {prop.config['relation_property_name']}.")
            target = emu._data_sources[relation.config["data_source_id"]]
            rolled = target.find(prop.config["rollup_property_name"])
            if rolled is None:
                raise ne._invalid(f"Rollup {prop.name}: no property {prop.config['rollup_property_name']} to roll up.")
            prop.config.update(
                relation_property_id=relation.id,
                relation_property_name=relation.name,
                rollup_property_id=rolled.id,
                rollup_property_name=rolled.name,
            )


def link(emu: NotionEmulator, ds: _DataSource) -> None:
    """After a schema is applied: a new two-way relation gets its twin in the target data source."""
    ne = _ne()
    db = emu._databases[ds.database_id]
    for prop in list(ds.properties.values()):
        if prop.type != "relation":
            continue
        prop.config["database_id"] = emu._data_sources[prop.config["data_source_id"]].database_id
        dual = prop.config.get("dual_property")
        if dual is None or "synced_property_id" in dual:
            continue
        target = emu._data_sources[prop.config["data_source_id"]]
        name = dual.get("synced_property_name") or f"Related to {ne._plain_text(db.title) or 'Untitled'}"
        twin_id = ne.NotionEmulator._new_property_id(target.properties)
        twin_config = {
            "database_id": db.id,
            "data_source_id": ds.id,
            "type": "dual_property",
            "dual_property": {"synced_property_id": prop.id, "synced_property_name": prop.name},
        }
        target.properties[twin_id] = ne._Property(twin_id, name, "relation", twin_config)
        prop.config["dual_property"] = {"synced_property_id": twin_id, "synced_property_name": name}


def parse(emu: NotionEmulator, prop: _Property, value: Any, where: str) -> list[str]:
    ne = _ne()
    if not isinstance(value, list):
        raise ne._failed(where, "should be an array", value)
    if len(value) > MAX_RELATION_WRITE:
        raise ne._too_long(where, MAX_RELATION_WRITE, len(value))
    ids: list[str] = []
    for i, item in enumerate(value):
        page_id = ne.normalize_id(item.get("id")) if isinstance(item, dict) else None
        page = emu._pages.get(page_id or "")
        if page is None or page.data_source_id != prop.config["data_source_id"]:
            raise ne._invalid(f"{where}[{i}]: {item!r} is not a page of the related data source.")
        if page_id not in ids:
            ids.append(str(page_id))
    return ids


def sync(emu: NotionEmulator, page: _Page, before: dict[str, Any]) -> None:
    """A two-way relation written on `page`: the twin on the related pages follows."""
    if page.data_source_id is None:
        return
    ds = emu._data_sources[page.data_source_id]
    for prop in ds.properties.values():
        dual = prop.config.get("dual_property") if prop.type == "relation" else None
        if not dual or "synced_property_id" not in dual or prop.id not in page.values:
            continue
        old, new = set(before.get(prop.id) or []), set(page.values[prop.id] or [])
        twin = dual["synced_property_id"]
        for other_id in old ^ new:
            other = emu._pages.get(other_id)
            if other is None:
                continue
            linked = list(other.values.get(twin) or [])
            if other_id in new and page.id not in linked:
                linked.append(page.id)
            elif other_id in old and other_id not in new and page.id in linked:
                linked.remove(page.id)
            other.values[twin] = linked


def render(emu: NotionEmulator, page: _Page, prop: _Property) -> tuple[Any, JSONDict]:
    """(value, extra keys of the property entry) of a relation or rollup on `page`."""
    if prop.type == "relation":
        ids = [i for i in page.values.get(prop.id) or [] if i in emu._pages and not emu._pages[i].in_trash]
        return [{"id": i} for i in ids[:MAX_RELATION_SHOWN]], {"has_more": len(ids) > MAX_RELATION_SHOWN}
    return rollup(emu, page, prop), {}


def rollup(emu: NotionEmulator, page: _Page, prop: _Property) -> JSONDict:
    ne = _ne()
    function = prop.config["function"]
    related = [emu._pages[i] for i in page.values.get(prop.config["relation_property_id"]) or [] if i in emu._pages]
    ds = emu._data_sources[page.data_source_id or ""]
    relation = ds.properties[prop.config["relation_property_id"]]
    target = emu._data_sources[relation.config["data_source_id"]].properties[prop.config["rollup_property_id"]]
    values = [emu._effective(p, target) for p in related if not p.in_trash]
    present = [v for v in values if v not in (None, [], False, "")]
    if function in ("earliest_date", "latest_date"):
        starts = [ne._parse_iso(v["start"]) for v in present if isinstance(v, dict)]
        moments = [s for s in starts if s is not None]
        if not moments:
            return {"type": "date", "date": None, "function": function}
        pick = min if function == "earliest_date" else max
        chosen = pick(moments, key=lambda w: w.instant)
        found = next(v for v in present if isinstance(v, dict) and ne._parse_iso(v["start"]) == chosen)
        return {"type": "date", "date": dict(found), "function": function}
    if function in ("show_unique", "show_original"):
        shown = [emu._render_value(target, v) for v in values if v not in (None, [])]
        if function == "show_unique":
            unique: list[Any] = []
            for item in shown:
                if item not in unique:
                    unique.append(item)
            shown = unique
        return {"type": "array", "array": [{"type": target.type, target.type: v} for v in shown], "function": function}
    counts = {
        "count": len(values),
        "count_values": len(present),
        "not_empty": len(present),
        "empty": len(values) - len(present),
        "unique": len({repr(v) for v in present}),
        "checked": sum(1 for v in values if v is True),
        "unchecked": sum(1 for v in values if v is False),
    }
    numbers = [v for v in present if isinstance(v, int | float) and not isinstance(v, bool)]
    if function in counts:
        number: float | None = counts[function]
    elif function == "sum":
        number = sum(numbers)
    elif function in ("min", "max") and numbers:
        number = min(numbers) if function == "min" else max(numbers)
    else:
        number = None
    return {"type": "number", "number": number, "function": function}
