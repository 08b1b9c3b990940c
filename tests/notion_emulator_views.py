"""The Views API (Notion-Version 2025-09-03) for the Notion emulator: list, create, retrieve, update, delete views,
dashboards and their widgets, as /work/shared/reference/notion-views.md describes them.

Refused as Notion refuses them (400 ``validation_error`` unless said otherwise): not exactly one placement target
(``database_id`` | ``view_id`` | ``create_database``), an unknown body key or configuration key for the view's type,
a configuration whose ``type`` differs from the view's, a missing required configuration key (board ``group_by``,
calendar/timeline ``date_property_id``, chart ``chart_type``), a bad enum value, a property id that is not in the
data source, a filter naming a missing property or a select/status value that is not an option (the message lists
the allowed values), a filter nested deeper than two levels, ``position`` without ``database_id``, ``placement``
without ``view_id``, a dashboard's ``rows`` sent in a request, a dashboard inside a dashboard, a fifth widget in a
row, deleting a database's last view, and changing a view's type. A view that does not exist (or was deleted) is a
404 ``object_not_found``. Creating a database makes one table view, "Default view".

Where the docs leave a choice open, the emulator chose: the default view's ``configuration`` is null; a
``database_id`` listing leaves dashboard widgets out; relative date values are ``today``, ``tomorrow``,
``yesterday``, ``one_week_ago``, ``one_week_from_now``, ``one_month_ago``, ``one_month_from_now``.

Standard library only; installed by ``install(emulator)`` from NotionEmulator.__init__.
"""

from __future__ import annotations

import copy
import re
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from notion_emulator import JSONDict, NotionEmulator

TYPES = ("table", "board", "list", "calendar", "timeline", "gallery", "form", "chart", "map", "dashboard")
BODY_KEYS = frozenset(
    {
        "data_source_id",
        "name",
        "type",
        "database_id",
        "view_id",
        "create_database",
        "filter",
        "sorts",
        "quick_filters",
        "configuration",
        "position",
        "placement",
    }
)
UPDATE_KEYS = frozenset({"name", "filter", "sorts", "quick_filters", "configuration"})
CONFIG_KEYS: dict[str, frozenset[str]] = {
    "table": frozenset(
        {"properties", "group_by", "subtasks", "wrap_cells", "frozen_column_index", "show_vertical_lines"}
    ),
    "board": frozenset(
        {"group_by", "sub_group_by", "properties", "cover", "cover_size", "cover_aspect", "card_layout"}
    ),
    "calendar": frozenset({"date_property_id", "properties", "view_range", "show_weekends"}),
    "timeline": frozenset(
        {
            "date_property_id",
            "end_date_property_id",
            "properties",
            "show_table",
            "table_properties",
            "preference",
            "arrows_by",
            "color_by",
        }
    ),
    "gallery": frozenset({"properties", "cover", "cover_size", "cover_aspect", "card_layout"}),
    "list": frozenset({"properties"}),
    "map": frozenset({"height", "map_by", "properties"}),
    "form": frozenset({"is_form_closed", "anonymous_submissions", "submission_permissions"}),
    "chart": frozenset(
        {
            "chart_type",
            "x_axis",
            "y_axis",
            "x_axis_property_id",
            "y_axis_property_id",
            "value",
            "stack_by",
            "sort",
            "color_theme",
            "height",
            "hide_empty_groups",
            "legend_position",
            "show_data_labels",
            "axis_labels",
            "grid_lines",
            "cumulative",
            "smooth_line",
            "hide_line_fill_area",
            "group_style",
            "y_axis_min",
            "y_axis_max",
            "donut_labels",
            "hide_title",
            "reference_lines",
            "caption",
            "color_by_value",
        }
    ),
    "dashboard": frozenset(),
}
REQUIRED = {"board": ("group_by",), "calendar": ("date_property_id",), "timeline": ("date_property_id",)}
REQUIRED["chart"] = ("chart_type",)
ENUMS = {
    ("chart", "chart_type"): ("column", "bar", "line", "donut", "number"),
    ("calendar", "view_range"): ("week", "month"),
    ("board", "cover_size"): ("small", "medium", "large"),
    ("board", "card_layout"): ("list", "compact"),
    ("map", "height"): ("small", "medium", "large", "extra_large"),
}
GROUP_TYPES = frozenset(
    {
        "select",
        "multi_select",
        "status",
        "person",
        "created_by",
        "last_edited_by",
        "relation",
        "date",
        "created_time",
        "last_edited_time",
        "text",
        "title",
        "url",
        "email",
        "phone_number",
        "number",
        "checkbox",
        "formula",
    }
)
# the property types a group-by type names (Notion says `text`, `person` where the schema says rich_text, people)
GROUPS_OF = {"text": "rich_text", "person": "people"}
DATE_GROUPING = ("relative", "day", "week", "month", "year")
AGGREGATORS = frozenset(
    {
        "count",
        "count_values",
        "sum",
        "average",
        "median",
        "min",
        "max",
        "range",
        "unique",
        "empty",
        "not_empty",
        "percent_empty",
        "percent_not_empty",
        "checked",
        "unchecked",
        "percent_checked",
        "percent_unchecked",
        "earliest_date",
        "latest_date",
        "date_range",
    }
)
RELATIVE_VALUES = frozenset(
    {"today", "tomorrow", "yesterday", "one_week_ago", "one_week_from_now", "one_month_ago", "one_month_from_now"}
)
RELATIVE_OPS = frozenset({"past_week", "past_month", "past_year", "next_week", "next_month", "next_year", "this_week"})
DATE_OPS = frozenset({"equals", "before", "after", "on_or_before", "on_or_after", "is_empty", "is_not_empty"})
TEXT_OPS = frozenset(
    {"equals", "does_not_equal", "contains", "does_not_contain", "starts_with", "ends_with", "is_empty", "is_not_empty"}
)
NUMBER_OPS = frozenset(
    {
        "equals",
        "does_not_equal",
        "greater_than",
        "less_than",
        "greater_than_or_equal_to",
        "less_than_or_equal_to",
        "is_empty",
        "is_not_empty",
    }
)
OPTION_OPS = frozenset({"equals", "does_not_equal", "is_empty", "is_not_empty"})
MAX_WIDGETS_PER_ROW = 4
_ISO = re.compile(r"\d{4}-\d{2}-\d{2}")


def install(emu: NotionEmulator) -> None:
    """Give the emulator its views: the state, and the routes (before the catch-alls of its own)."""
    routes = [
        ("GET", re.compile(r"/v1/views"), lambda p, b, q: list_views(emu, q)),
        ("POST", re.compile(r"/v1/views"), lambda p, b, q: create_view(emu, b)),
        ("GET", re.compile(r"/v1/views/([^/]+)"), lambda p, b, q: render(emu, find(emu, p[0]))),
        ("PATCH", re.compile(r"/v1/views/([^/]+)"), lambda p, b, q: update_view(emu, p[0], b)),
        ("DELETE", re.compile(r"/v1/views/([^/]+)"), lambda p, b, q: delete_view(emu, p[0])),
    ]
    emu._routes[:0] = routes


def default_view(emu: NotionEmulator, database_id: str, data_source_id: str) -> None:
    """The one table view Notion makes with a database."""
    new(emu, database_id, data_source_id, "Default view", "table", None, None, None, None)


# ------------------------------------------------------------------------------------------ helpers


def _errors() -> Any:
    import notion_emulator as ne

    return ne


def invalid(message: str) -> Exception:
    return _errors()._invalid(message)  # type: ignore[no-any-return]


def failed(where: str, expectation: str, value: Any) -> Exception:
    return _errors()._failed(where, expectation, value)  # type: ignore[no-any-return]


def not_found_view(view_id: str) -> Exception:
    return _errors()._not_found("view", view_id)  # type: ignore[no-any-return]


def new_id() -> str:
    return _errors()._new_id()  # type: ignore[no-any-return]


def stamp() -> str:
    ne = _errors()
    return ne._fmt_timestamp(ne._now())  # type: ignore[no-any-return]


def find(emu: NotionEmulator, raw_id: str) -> JSONDict:
    view_id = _errors().normalize_id(raw_id)
    views: dict[str, JSONDict] = emu.views
    if view_id is None or view_id not in views:
        raise not_found_view(raw_id)
    return views[view_id]


def new(
    emu: NotionEmulator,
    database_id: str,
    data_source_id: str | None,
    name: str,
    vtype: str,
    filt: Any,
    sorts: Any,
    quick: Any,
    config: Any,
    dashboard: str | None = None,
) -> JSONDict:
    now = stamp()
    user = {"object": "user", "id": _errors().BOT_USER_ID}
    view: JSONDict = {
        "object": "view",
        "id": new_id(),
        "parent": {"type": "database_id", "database_id": database_id},
        "data_source_id": data_source_id,
        "name": name,
        "type": vtype,
        "filter": filt,
        "sorts": sorts,
        "quick_filters": quick,
        "configuration": config,
        "created_time": now,
        "last_edited_time": now,
        "created_by": user,
        "last_edited_by": user,
    }
    view["url"] = f"https://www.notion.so/{database_id.replace('-', '')}?v={view['id'].replace('-', '')}"
    if dashboard is not None:
        view["dashboard_view_id"] = dashboard
    emu.views[view["id"]] = view
    return view


def render(emu: NotionEmulator, view: JSONDict) -> JSONDict:
    out = copy.deepcopy(view)
    if view["type"] == "dashboard":
        rows = emu.dashboard_rows.get(view["id"], [])
        out["data_source_id"] = None
        out["configuration"] = {
            "type": "dashboard",
            "rows": [
                {
                    "id": f"{view['id']}-row-{i}",
                    "widgets": [
                        {"id": f"{w}-widget", "view_id": w, "width": 12 // len(row), "row_index": i} for w in row
                    ],
                }
                for i, row in enumerate(rows)
            ],
        }
    return out


def list_views(emu: NotionEmulator, query: dict[str, list[str]]) -> JSONDict:
    database: str | None = (query.get("database_id") or [None])[0]  # type: ignore[list-item]
    source: str | None = (query.get("data_source_id") or [None])[0]  # type: ignore[list-item]
    if database is None and source is None:
        raise invalid("query failed validation: one of database_id or data_source_id should be defined.")
    ne = _errors()
    if database is not None:
        database = ne.normalize_id(database)
        if database not in emu._databases:
            raise ne._not_found("database", str(database))
    views: dict[str, JSONDict] = emu.views
    found = [
        v
        for v in views.values()
        if (database is None or (v["parent"]["database_id"] == database and "dashboard_view_id" not in v))
        and (source is None or v["data_source_id"] == ne.normalize_id(source))
    ]
    size = int((query.get("page_size") or ["100"])[0])
    start = int((query.get("start_cursor") or ["0"])[0] or 0)
    page = found[start : start + size]
    more = start + size < len(found)
    return {
        "object": "list",
        "results": [{"object": "view", "id": v["id"]} for v in page],
        "next_cursor": str(start + size) if more else None,
        "has_more": more,
        "type": "view",
        "view": {},
    }


# ------------------------------------------------------------------------------------------ create


def create_view(emu: NotionEmulator, body: JSONDict) -> JSONDict:
    ne = _errors()
    unknown = sorted(set(body) - BODY_KEYS)
    if unknown:
        raise failed(f"body.{unknown[0]}", "should be not present", body[unknown[0]])
    targets = [k for k in ("database_id", "view_id", "create_database") if body.get(k) is not None]
    if len(targets) != 1:
        raise invalid(
            "body failed validation: exactly one of `database_id`, `view_id` or `create_database` should be "
            f"defined, instead were {len(targets)}."
        )
    for key in ("data_source_id", "name", "type"):
        if key not in body:
            raise failed(f"body.{key}", "should be defined", ne._MISSING)
    vtype = body["type"]
    if vtype not in TYPES:
        raise failed("body.type", f"should be one of {', '.join(f'`{t}`' for t in TYPES)}", vtype)
    name = body["name"]
    if not isinstance(name, str) or not name.strip():
        raise failed("body.name", "should be a non-empty string", name)
    ds = emu._data_source(str(body["data_source_id"]))
    if "position" in body and "database_id" not in targets:
        raise invalid("body failed validation: `position` is only allowed with `database_id`.")
    if "placement" in body and "view_id" not in targets:
        raise invalid("body failed validation: `placement` is only allowed with `view_id`.")
    dashboard: str | None = None
    if targets == ["database_id"]:
        database = ne.normalize_id(body["database_id"])
        if database not in emu._databases:
            raise ne._not_found("database", str(body["database_id"]))
    elif targets == ["view_id"]:
        parent = find(emu, str(body["view_id"]))
        if parent["type"] != "dashboard":
            raise invalid("body failed validation: `view_id` should be a dashboard view.")
        if vtype == "dashboard":
            raise invalid("body failed validation: a dashboard cannot be placed inside a dashboard.")
        database, dashboard = parent["parent"]["database_id"], parent["id"]
    else:
        raise invalid("body failed validation: the emulator does not create linked databases (`create_database`).")
    config = check_config(ds, vtype, body.get("configuration"), "body.configuration", create=True)
    filt = check_filter(ds, body.get("filter"), "body.filter", 1) if body.get("filter") is not None else None
    sorts = check_sorts(ds, body.get("sorts"), "body.sorts")
    quick = body.get("quick_filters")
    if quick is not None and not isinstance(quick, dict):
        raise failed("body.quick_filters", "should be an object", quick)
    if dashboard is not None:
        place(emu, dashboard, body.get("placement"))
    view = new(
        emu, str(database), None if vtype == "dashboard" else ds.id, name, vtype, filt, sorts, quick, config, dashboard
    )
    if dashboard is not None:
        rows = emu.dashboard_rows[dashboard]
        target = emu._placing
        if target is None:
            rows.append([view["id"]])
        else:
            rows[target].append(view["id"])
    if vtype == "dashboard":
        emu.dashboard_rows[view["id"]] = []
    return render(emu, view)


def place(emu: NotionEmulator, dashboard: str, placement: Any) -> None:
    """Check a widget's placement; remember the row it joins (None: a new last row)."""
    rows: list[list[str]] = emu.dashboard_rows.setdefault(dashboard, [])
    emu._placing = None
    if placement is None:
        return
    if not isinstance(placement, dict) or placement.get("type") not in ("new_row", "existing_row"):
        raise failed("body.placement.type", "should be `new_row` or `existing_row`", placement)
    index = placement.get("row_index")
    if placement["type"] == "new_row":
        return
    if not isinstance(index, int) or not 0 <= index < len(rows):
        raise failed("body.placement.row_index", f"should be an existing row (0 to {len(rows) - 1})", index)
    if len(rows[index]) >= MAX_WIDGETS_PER_ROW:
        raise invalid(f"A dashboard row holds at most {MAX_WIDGETS_PER_ROW} widgets; row {index} is full.")
    emu._placing = index


# ------------------------------------------------------------------------------------------ validation


def prop_id(ds: Any, raw: Any, where: str) -> Any:
    prop = ds.find(raw)
    if prop is None:
        raise invalid(f"{where}: could not find property with id: {raw}")
    return prop


def check_config(ds: Any, vtype: str, raw: Any, where: str, *, create: bool) -> Any:
    if raw is None:
        if create and vtype in REQUIRED:
            raise failed(f"{where}.{REQUIRED[vtype][0]}", "should be defined", _errors()._MISSING)
        return None
    if not isinstance(raw, dict):
        raise failed(where, "should be an object", raw)
    if raw.get("type") != vtype:
        raise failed(f"{where}.type", f"should be `{vtype}` (the view's type)", raw.get("type"))
    if vtype == "dashboard":
        extra = sorted(k for k in raw if k != "type")
        if extra:
            raise invalid(f"{where}.{extra[0]}: a dashboard's layout is read-only and cannot be sent.")
        return None
    unknown = sorted(set(raw) - CONFIG_KEYS[vtype] - {"type"})
    if unknown:
        raise failed(f"{where}.{unknown[0]}", "should be not present", raw[unknown[0]])
    for key in REQUIRED.get(vtype, ()):
        if raw.get(key) is None:
            raise failed(f"{where}.{key}", "should be defined", _errors()._MISSING)
    for (kind, key), allowed in ENUMS.items():
        if kind == vtype and key in raw and raw[key] not in allowed:
            raise failed(f"{where}.{key}", f"should be one of {', '.join(f'`{a}`' for a in allowed)}", raw[key])
    for key in ("date_property_id", "end_date_property_id", "x_axis_property_id", "y_axis_property_id", "map_by"):
        if raw.get(key) is not None:
            prop = prop_id(ds, raw[key], f"{where}.{key}")
            dates = ("date", "created_time", "last_edited_time", "formula", "rollup")
            if key.startswith(("date", "end_date")) and prop.type not in dates:
                raise invalid(f"{where}.{key}: property {prop.name} is a {prop.type}, not a date")
    for entry in raw.get("properties") or []:
        if not isinstance(entry, dict) or "property_id" not in entry:
            raise failed(f"{where}.properties", "should be a list of `{property_id, ...}`", entry)
        prop_id(ds, entry["property_id"], f"{where}.properties")
    for key in ("group_by", "sub_group_by", "x_axis", "stack_by"):
        if raw.get(key) is not None:
            check_group(ds, raw[key], f"{where}.{key}")
    for key in ("y_axis", "value"):
        if raw.get(key) is not None:
            check_aggregation(ds, raw[key], f"{where}.{key}")
    return copy.deepcopy(raw)


def check_group(ds: Any, raw: Any, where: str) -> None:
    if not isinstance(raw, dict) or raw.get("type") not in GROUP_TYPES:
        raise failed(f"{where}.type", "should be a group-by type (select, status, date, text, person...)", raw)
    prop = prop_id(ds, raw.get("property_id"), f"{where}.property_id")
    want = GROUPS_OF.get(raw["type"], raw["type"])
    if prop.type != want:
        raise invalid(f"{where}: property {prop.name} is a {prop.type}; group-by type `{raw['type']}` needs a {want}")
    if raw["type"] in ("date", "created_time", "last_edited_time") and raw.get("group_by") not in (
        None,
        *DATE_GROUPING,
    ):
        raise failed(f"{where}.group_by", f"should be one of {', '.join(DATE_GROUPING)}", raw.get("group_by"))
    sort = raw.get("sort")
    if sort is not None and (
        not isinstance(sort, dict) or sort.get("type") not in ("manual", "ascending", "descending")
    ):
        raise failed(f"{where}.sort.type", "should be `manual`, `ascending` or `descending`", sort)


def check_aggregation(ds: Any, raw: Any, where: str) -> None:
    if not isinstance(raw, dict) or raw.get("aggregator") not in AGGREGATORS:
        raise failed(f"{where}.aggregator", "should be an aggregator (count, sum, ...)", raw)
    if raw["aggregator"] != "count":
        prop_id(ds, raw.get("property_id"), f"{where}.property_id")


def check_sorts(ds: Any, raw: Any, where: str) -> Any:
    if raw is None:
        return None
    if not isinstance(raw, list):
        raise failed(where, "should be an array", raw)
    for i, sort in enumerate(raw):
        if not isinstance(sort, dict) or sort.get("direction") not in ("ascending", "descending"):
            raise failed(f"{where}[{i}].direction", "should be `ascending` or `descending`", sort)
        if "property" in sort:
            prop_id(ds, sort["property"], f"{where}[{i}].property")
        elif sort.get("timestamp") not in ("created_time", "last_edited_time"):
            raise failed(f"{where}[{i}]", "should name a property or a timestamp", sort)
    return copy.deepcopy(raw)


def check_filter(ds: Any, raw: Any, where: str, depth: int) -> Any:
    if not isinstance(raw, dict):
        raise failed(where, "should be an object", raw)
    for compound in ("and", "or"):
        if compound in raw:
            if depth > 2:
                raise invalid(f"{where}: compound filters nest at most two levels.")
            if not isinstance(raw[compound], list):
                raise failed(f"{where}.{compound}", "should be an array", raw[compound])
            for i, part in enumerate(raw[compound]):
                check_filter(ds, part, f"{where}.{compound}[{i}]", depth + 1)
            return copy.deepcopy(raw)
    prop = prop_id(ds, raw.get("property"), f"{where}.property")
    kinds = [k for k in raw if k not in ("property", "type")]
    if kinds != [prop.type] and not (prop.type == "title" and kinds == ["rich_text"]):
        raise invalid(f"{where}: property {prop.name} is a {prop.type}; the filter says {', '.join(kinds)}")
    condition = raw[kinds[0]]
    if not isinstance(condition, dict) or len(condition) != 1:
        raise failed(f"{where}.{kinds[0]}", "should hold one operator", condition)
    [(op, operand)] = condition.items()
    where_op = f"{where}.{kinds[0]}.{op}"
    if prop.type in ("select", "status", "multi_select"):
        check_options(prop, op, operand, where_op)
    elif prop.type in ("date", "created_time", "last_edited_time"):
        check_date(op, operand, where_op)
    elif prop.type in ("title", "rich_text", "email", "url", "phone_number"):
        if op not in TEXT_OPS:
            raise failed(where_op, "is not a text operator", operand)
    elif prop.type == "number":
        if op not in NUMBER_OPS:
            raise failed(where_op, "is not a number operator", operand)
    elif prop.type == "checkbox" and (op not in ("equals", "does_not_equal") or not isinstance(operand, bool)):
        raise failed(where_op, "should be `equals` or `does_not_equal` with true or false", operand)
    return copy.deepcopy(raw)


def check_options(prop: Any, op: str, operand: Any, where: str) -> None:
    ops = OPTION_OPS | ({"contains", "does_not_contain"} if prop.type == "multi_select" else set())
    if op not in ops:
        raise failed(where, f"is not one of {', '.join(sorted(ops))}", operand)
    if op in ("is_empty", "is_not_empty"):
        if operand is not True:
            raise failed(where, "should be `true`", operand)
        return
    values = operand if isinstance(operand, list) else [operand]
    allowed = [o["name"] for o in prop.options]
    if prop.type == "status":
        allowed += ["To-do", "In progress", "Complete"]
    for value in values:
        if not isinstance(value, str) or value not in allowed:
            raise invalid(f"{where}: {value!r} is not an option of {prop.name}. Allowed values: {', '.join(allowed)}")


def check_date(op: str, operand: Any, where: str) -> None:
    if op in RELATIVE_OPS:
        if operand != {}:
            raise failed(where, "should be `{}`", operand)
        return
    if op not in DATE_OPS:
        raise failed(where, f"is not one of {', '.join(sorted(DATE_OPS | RELATIVE_OPS))}", operand)
    if op in ("is_empty", "is_not_empty"):
        if operand is not True:
            raise failed(where, "should be `true`", operand)
        return
    if isinstance(operand, str) and operand in RELATIVE_VALUES:
        return
    if isinstance(operand, str) and _ISO.match(operand):
        try:
            (datetime.fromisoformat(operand.replace("Z", "+00:00")) if "T" in operand else date.fromisoformat(operand))
            return
        except ValueError:
            pass
    raise failed(where, f"should be an ISO 8601 date or one of {', '.join(sorted(RELATIVE_VALUES))}", operand)


# ------------------------------------------------------------------------------------------ update, delete


def update_view(emu: NotionEmulator, raw_id: str, body: JSONDict) -> JSONDict:
    view = find(emu, raw_id)
    if "type" in body:
        raise invalid("body failed validation: a view's `type` cannot be changed.")
    unknown = sorted(set(body) - UPDATE_KEYS)
    if unknown:
        raise failed(f"body.{unknown[0]}", "should be not present", body[unknown[0]])
    ds = emu._data_sources.get(view["data_source_id"]) if view["data_source_id"] else None
    if "name" in body and (not isinstance(body["name"], str) or not body["name"].strip()):
        raise failed("body.name", "should be a non-empty string", body["name"])
    changes: JSONDict = {}
    if "name" in body:
        changes["name"] = body["name"]
    if "filter" in body:
        changes["filter"] = None if body["filter"] is None else check_filter(ds, body["filter"], "body.filter", 1)
    if "sorts" in body:
        for i, sort in enumerate(body["sorts"] or []):
            if isinstance(sort, dict) and "timestamp" in sort:
                raise failed(f"body.sorts[{i}]", "should name a property (timestamp sorts only on create)", sort)
        changes["sorts"] = check_sorts(ds, body["sorts"], "body.sorts")
    if "configuration" in body and body["configuration"] is not None:
        merged = {**(view["configuration"] or {}), **body["configuration"]}
        for key, value in body["configuration"].items():  # a nullable field set to null is cleared
            if value is None:
                merged.pop(key, None)
        for key in REQUIRED.get(view["type"], ()):
            if key not in body["configuration"]:
                raise failed(f"body.configuration.{key}", "should be defined on every update", _errors()._MISSING)
        changes["configuration"] = check_config(ds, view["type"], merged, "body.configuration", create=False)
    if "quick_filters" in body:
        quick = body["quick_filters"]
        if quick is None:
            changes["quick_filters"] = None
        else:
            kept = dict(view["quick_filters"] or {})
            for key, value in quick.items():
                if value is None:
                    kept.pop(key, None)
                else:
                    kept[key] = value
            changes["quick_filters"] = kept
    view.update(changes)
    view["last_edited_time"] = stamp()
    return render(emu, view)


def delete_view(emu: NotionEmulator, raw_id: str) -> JSONDict:
    view = find(emu, raw_id)
    views: dict[str, JSONDict] = emu.views
    rows: dict[str, list[list[str]]] = emu.dashboard_rows
    if "dashboard_view_id" not in view:
        database = view["parent"]["database_id"]
        tabs = [v for v in views.values() if v["parent"]["database_id"] == database and "dashboard_view_id" not in v]
        if len(tabs) <= 1:
            raise invalid("A database must keep at least one view: this is its last; trash the database instead.")
    else:
        layout = rows.get(view["dashboard_view_id"], [])
        rows[view["dashboard_view_id"]] = [r for r in ([w for w in row if w != view["id"]] for row in layout) if r]
    if view["type"] == "dashboard":
        for row in rows.pop(view["id"], []):
            for widget in row:
                views.pop(widget, None)
    del views[view["id"]]
    return {"object": "view", "id": view["id"], "parent": view["parent"], "type": view["type"]}
