"""`xmas import FILE.csv --sequence S`: every line validated like an enrollment first; one bad line and nothing is
written (each bad line reported with its line number and field); then the good lines enrolled one by one.

Enrolling is idempotent (an enrollment's key is its identity), so running the same file again creates nothing
new; two lines of the file for the same enrollment are enrolled once (the first), the other reported as a
duplicate.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.csv_import import columns_to_fields, parse_maps, to_payload
from ..core.payloads import validate_payload
from ..core.schedule import enrollment_key
from ..errors import JSON_VERSION, InvalidInput
from .base import Engine
from .enroll import enroll, enrollable

MAX_PROBLEMS = 50  # lines reported when a file has many bad lines (the count is always given)


@dataclass(frozen=True)
class ImportLine:
    line: int  # the line of the file the record starts on (the header is line 1)
    email: str
    key: str
    status: str  # "enrolled" | "already enrolled" | "duplicate" | dry run: "new" | "existing"
    duplicate_of: int | None = None


@dataclass(frozen=True)
class ImportResult:
    file: str
    sequence: str
    dry_run: bool
    lines: list[ImportLine]
    ignored_columns: list[str] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(1 for line in self.lines if line.status == status)

    def summary(self) -> str:
        if self.dry_run:
            parts = [f"{self.count('new')} to enroll", f"{self.count('existing')} already enrolled"]
        else:
            parts = [f"{self.count('enrolled')} enrolled", f"{self.count('already enrolled')} already enrolled"]
        parts.append(f"{self.count('duplicate')} duplicate line(s)")
        verb = "would import" if self.dry_run else "imported"
        return f"{verb} {len(self.lines)} line(s) of {self.file} into {self.sequence}: " + ", ".join(parts)

    def to_json(self) -> dict[str, Any]:
        return {
            "version": JSON_VERSION,
            "ok": True,
            "file": self.file,
            "sequence": self.sequence,
            "dry_run": self.dry_run,
            "ignored_columns": self.ignored_columns,
            "lines": [
                {"line": x.line, "email": x.email, "enrollment_key": x.key, "status": x.status}
                | ({"duplicate_of": x.duplicate_of} if x.duplicate_of else {})
                for x in self.lines
            ],
            "summary": self.summary(),
        }


def _records(path: Path) -> tuple[list[str], list[tuple[int, dict[str, str | None]]]]:
    """The header and each record with the line it starts on."""
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except FileNotFoundError:
        raise InvalidInput(f"{path}: no such file", "give the path of a CSV file") from None
    except OSError as exc:
        raise InvalidInput(f"{path}: cannot be read ({exc.strerror})", "check the path and its permissions") from None
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"{path}: not UTF-8 (byte {exc.start})", "save the file as CSV UTF-8") from None
    reader = csv.DictReader(text.splitlines(keepends=True), strict=True)
    try:
        headers = [h for h in (reader.fieldnames or []) if h is not None]
        out = []
        start = reader.line_num + 1
        for record in reader:
            if None in record:
                raise InvalidInput(
                    f"{path}: line {start} has more cells than the header",
                    "quote cells that contain commas; nothing was written",
                    [(f"line {start}", "too many cells")],
                )
            out.append((start, dict(record)))
            start = reader.line_num + 1
    except csv.Error as exc:
        raise InvalidInput(f"{path}: line {reader.line_num}: {exc}", "fix the CSV; nothing was written") from None
    if not headers:
        raise InvalidInput(f"{path}: the file is empty", "give a CSV file whose first line names the columns")
    return headers, out


def import_csv(
    engine: Engine,
    path: Path,
    sequence_name: str,
    maps: Iterable[str] = (),
    *,
    dry_run: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> ImportResult:
    sequence = enrollable(engine.campaign, sequence_name)
    mapping = parse_maps(maps)
    headers, records = _records(path)
    used, ignored = columns_to_fields(headers, mapping)
    problems: list[tuple[str, str]] = []
    bad = 0
    planned: list[tuple[int, dict[str, Any], str, str]] = []  # (line, payload, key, email)
    for line, cells in records:
        raw = to_payload(cells, used)
        try:
            payload = validate_payload(sequence.payload, raw)
        except InvalidInput as exc:
            bad += 1
            problems += [(f"line {line}: {name}", problem) for name, problem in exc.problems]
            continue
        planned.append((line, raw, enrollment_key(sequence_name, sequence, payload), payload.email))
    if bad:
        shown = problems[:MAX_PROBLEMS] + (
            [("…", f"{len(problems) - MAX_PROBLEMS} more")] if len(problems) > MAX_PROBLEMS else []
        )
        raise InvalidInput(
            f"{path}: {bad} of {len(records)} line(s) are not valid {sequence_name} enrollments",
            "fix the lines listed (or map their columns with --map); nothing was written",
            shown,
        )
    first: dict[str, int] = {}
    lines: list[ImportLine] = []
    for done, (line, raw, key, email) in enumerate(planned, 1):
        if key in first:
            lines.append(ImportLine(line, email, key, "duplicate", first[key]))
        else:
            first[key] = line
            if dry_run:
                status = "existing" if engine.store.emails_for_enrollment(key) else "new"
            else:
                status = "enrolled" if enroll(engine, sequence_name, raw).created else "already enrolled"
            lines.append(ImportLine(line, email, key, status))
        if progress is not None:
            progress(done, len(planned))
    return ImportResult(str(path), sequence_name, dry_run, lines, ignored)
