"""`xmas import`: a CSV line as an enrollment payload (pure: the lines come in as text, parsed by the engine).

A column reaches the payload field it names: its header as written, or in lower case with spaces and hyphens as
underscores ("First Name" → first_name), or what `--map column=field` says (`--map Notes=` drops a column).
Columns that name no payload field are left out and reported. Empty cells are absent fields. A field that takes
only a number (red_systems, revenue_leak_total) or a yes/no gets the cell converted, so the payload's own rules
judge it as they judge a website's JSON.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Annotated, Any, Union, get_args, get_origin

from ..errors import InvalidInput
from .payloads import MODELS

_NUMBER = re.compile(r"-?\d+(\.\d+)?")


def _base_types(annotation: Any) -> set[Any]:
    origin = get_origin(annotation)
    if origin is Annotated:
        return _base_types(get_args(annotation)[0])
    if origin is Union or getattr(origin, "__name__", "") == "UnionType":  # Optional[X] or X | None
        return set().union(*(_base_types(a) for a in get_args(annotation)))
    return {annotation} - {type(None)}


def field_types() -> dict[str, type]:
    """Every payload field any sequence takes, with the plain type a CSV cell is converted to (str: none)."""
    out: dict[str, type] = {}
    for model in MODELS.values():
        for name, info in model.model_fields.items():
            kinds = _base_types(info.annotation)
            out.setdefault(name, next((k for k in (bool, int, float) if kinds == {k}), str))
    return out


def normalize(header: str) -> str:
    return re.sub(r"[\s\-]+", "_", header.strip().lower())


def parse_maps(items: Iterable[str]) -> dict[str, str]:
    """`--map column=field` options → {column: field}; an empty field drops the column."""
    known = field_types()
    out: dict[str, str] = {}
    for item in items:
        column, sep, field = item.partition("=")
        field = field.strip()
        if not sep or not column.strip():
            raise InvalidInput(f"--map {item!r} is not COLUMN=FIELD", "write e.g. --map 'E-mail=email'")
        if field and field not in known:
            raise InvalidInput(
                f"--map {item!r}: {field!r} is not a payload field",
                f"map to one of: {', '.join(sorted(known))} (or nothing, to drop the column)",
            )
        out[column.strip()] = field
    return out


def columns_to_fields(headers: Iterable[str], maps: Mapping[str, str]) -> tuple[dict[str, str], list[str]]:
    """{column: field} for the columns that reach the payload, and the columns left out."""
    known = field_types()
    used: dict[str, str] = {}
    ignored: list[str] = []
    for header in headers:
        field = maps[header] if header in maps else header if header in known else normalize(header)
        if field in known:
            used[header] = field
        else:
            ignored.append(header)
    unknown = sorted(set(maps) - set(headers))
    if unknown:
        raise InvalidInput(
            f"--map names column(s) the file does not have: {', '.join(unknown)}",
            f"the file's columns are: {', '.join(headers)}",
        )
    if "email" not in used.values():
        raise InvalidInput("no column gives the email address", "name one `email`, or add --map 'COLUMN=email'")
    return used, ignored


def to_payload(cells: Mapping[str, str | None], used: Mapping[str, str]) -> dict[str, Any]:
    """One CSV line's cells as a payload: empty cells left out, numbers and yes/no converted where the field
    takes only those (anything else is passed as written, for the payload's rules to refuse with their words)."""
    kinds = field_types()
    out: dict[str, Any] = {}
    for column, field in used.items():
        text = (cells.get(column) or "").strip()
        if not text:
            continue
        kind = kinds[field]
        value: Any = text
        if kind is int and re.fullmatch(r"-?\d+", text):
            value = int(text)
        elif kind is float and _NUMBER.fullmatch(text):
            value = float(text)
        elif kind is bool and text.lower() in ("true", "yes", "1", "false", "no", "0"):
            value = text.lower() in ("true", "yes", "1")
        out[field] = value
    return out
