"""The layers hold: each folder imports only what its `__init__` docstring says it may, the core touches no clock,
disk, network or environment, the top of the package stays small and no module grows past 400 lines.

The rules are data (RULES, CORE_*); every check reads the source with `ast` (nothing is imported, so an import
hidden in a function counts as much as one at the top). Each checker also runs on a small offending source
below, so a checker that stopped finding anything would fail here too.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import xmas_cli

PACKAGE = Path(xmas_cli.__file__).resolve().parent
MAX_LINES = 400
MAX_TOP_LEVEL_MODULES = 10

# The folders (and the top-level modules) of xmas_cli, and what each may import of xmas_cli. A name is a folder or
# top-level module ("engine", "clock"), or one module of a folder ("stores.base"). A layer may always import itself.
FOLDERS = ("core", "stores", "mailers", "engine", "tick", "inbound", "report", "starter", "backends", "web", "commands")
RULES: dict[str, frozenset[str]] = {
    "core": frozenset({"errors"}),
    "stores": frozenset({"core", "errors", "clock", "perms", "config"}),
    "mailers": frozenset({"core", "errors", "perms"}),
    "engine": frozenset({"core", "stores.base", "mailers.base", "errors", "clock", "lock", "perms"}),
    "inbound": frozenset({"core", "stores.base", "engine", "errors", "clock", "perms"}),
    "tick": frozenset({"core", "stores.base", "mailers.base", "engine", "inbound", "errors", "clock", "lock"}),
    "report": frozenset({"core", "stores.base", "engine", "errors", "clock"}),
    "backends": frozenset({"core", "stores", "mailers", "engine", "config", "errors", "clock", "lock"}),
    "starter": frozenset(
        {"core", "stores", "mailers", "engine", "tick", "inbound", "report", "backends"}
        | {"config", "errors", "clock", "lock", "perms", "defaults"}
    ),
    "web": frozenset({"core", "stores.base", "engine", "inbound", "backends", "config", "errors", "clock"}),
    "commands": frozenset(
        {"core", "stores", "mailers", "engine", "tick", "inbound", "report", "starter", "backends", "web"}
        | {"config", "errors", "clock", "lock", "perms", "defaults"}
    ),
    # top-level modules and the shipped defaults
    "errors": frozenset(),
    "perms": frozenset(),
    "clock": frozenset({"core", "errors"}),
    "lock": frozenset({"errors", "perms"}),
    "config": frozenset({"core", "errors"}),
    "cgi_main": frozenset({"web"}),
    "defaults": frozenset(),
    "": frozenset(),  # xmas_cli/__init__.py
}

# What the core may import from outside xmas_cli: the standard library's pure parts, pydantic and jinja2. Not
# os, sys, time, io, socket, urllib.request, http, subprocess, shutil, tempfile, sqlite3, logging, threading, random,
# uuid, importlib, email_validator (it can ask DNS), httpx, the SDKs.
CORE_MODULES = frozenset(
    {
        "__future__", "abc", "base64", "binascii", "collections", "collections.abc", "contextvars", "dataclasses",
        "datetime", "decimal", "enum", "functools", "hashlib", "hmac", "html", "html.parser", "itertools", "json",
        "math", "operator", "pathlib", "re", "statistics", "string", "textwrap", "typing", "unicodedata",
        "urllib.parse", "zoneinfo", "pydantic", "pydantic_core", "jinja2", "jinja2.sandbox", "jinja2.meta",
        "jinja2.nodes",
    }
)  # fmt: skip
# Names whose mere use reads the clock, the disk or the environment, or writes somewhere (pathlib is imported for
# the Path type only; datetime and date for their arithmetic).
CORE_CALLS = frozenset({"open", "print", "input", "exec", "eval", "compile", "__import__", "breakpoint"})
CORE_ATTRIBUTES = frozenset(
    {
        "now", "utcnow", "today", "time", "monotonic", "perf_counter", "sleep",  # the clock
        "read_text", "read_bytes", "write_text", "write_bytes", "open", "exists", "is_file", "is_dir", "stat",
        "lstat", "mkdir", "unlink", "rmdir", "touch", "rename", "iterdir", "glob", "rglob", "resolve", "samefile",
        "absolute", "cwd", "home", "expanduser",  # the disk, and the home folder from the environment
        "environ", "getenv", "putenv",  # the environment
    }
)  # fmt: skip

# Modules allowed past MAX_LINES: none. (An entry names the module and who removes it, and the test below fails
# once the module is short again, so an exception cannot outlive its reason.)
KNOWN_LONG: set[str] = set()


@dataclass(frozen=True)
class Source:
    path: str  # relative to xmas_cli/, e.g. "core/schedule.py"
    text: str

    @property
    def module(self) -> str:
        parts = self.path.removesuffix(".py").split("/")
        return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)

    @property
    def layer(self) -> str:
        parts = self.path.removesuffix(".py").split("/")
        return "" if parts == ["__init__"] else parts[0]

    @property
    def package(self) -> str:
        """The package a relative import in this file starts from."""
        return self.module if self.path.endswith("__init__.py") else self.module.rpartition(".")[0]


def sources() -> list[Source]:
    return [
        Source(p.relative_to(PACKAGE).as_posix(), p.read_text(encoding="utf-8"))
        for p in sorted(PACKAGE.rglob("*.py"))
        if "__pycache__" not in p.parts
    ]


def imports(source: Source) -> Iterator[tuple[int, str]]:
    """(line, module) for every import in the file, wherever it is; xmas_cli's own written without the package
    name ("stores.base", "errors"), the rest as written ("os.path")."""
    for node in ast.walk(ast.parse(source.text)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, _own(alias.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                yield node.lineno, _own(node.module or "")
                continue
            base = source.package.split(".") if source.package else []
            base = base[: len(base) - (node.level - 1)] if node.level > 1 else base
            if node.module:
                yield node.lineno, ".".join([*base, node.module])
            else:  # from . import x, y: each a module (or a name) of that package
                for alias in node.names:
                    yield node.lineno, ".".join([*base, alias.name])


def _own(name: str) -> str:
    if name == "xmas_cli":
        return ""
    return name.removeprefix("xmas_cli.") if name.startswith("xmas_cli.") else f"external:{name}"


def import_violations(source: Source) -> list[str]:
    layer = source.layer
    allowed = RULES.get(layer)
    if allowed is None:
        return [f"{source.path}: the folder or module {layer!r} has no import rule in tests/test_architecture.py"]
    out = []
    for line, target in sorted(imports(source)):
        if target.startswith("external:"):
            name = target.removeprefix("external:")
            if layer == "core" and name not in CORE_MODULES:
                out.append(f"{source.path}:{line}: the core imports {name} (only pure stdlib, pydantic, jinja2)")
            continue
        parts = target.split(".")
        if parts[0] == layer or parts[0] in allowed or ".".join(parts[:2]) in allowed:
            continue
        out.append(f"{source.path}:{line}: {layer or 'xmas_cli'} imports xmas_cli.{target}")
    return out


def purity_violations(source: Source) -> list[str]:
    """What in a core module reads the clock, the disk, the network or the environment."""
    out = []
    for node in ast.walk(ast.parse(source.text)):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in CORE_CALLS:
            out.append((node.lineno, f"the core calls {node.func.id}()"))
        elif isinstance(node, ast.Attribute) and node.attr in CORE_ATTRIBUTES:
            out.append((node.lineno, f"the core uses .{node.attr}"))
    return [f"{source.path}:{line}: {what}" for line, what in sorted(out)]


def length_violations(source: Source) -> list[str]:
    lines = source.text.count("\n")
    if lines > MAX_LINES and source.path not in KNOWN_LONG:
        return [f"{source.path}: {lines} lines (at most {MAX_LINES}: split it along a seam)"]
    return []


def _said(word: str, text: str) -> bool:
    """`word` ("stores", "commands") said in `text`, also in the singular ("a store", "a command")."""
    stem = word.removesuffix("s") if word in ("stores", "mailers", "commands") else word
    return re.search(rf"\b{re.escape(stem)}s?\b", text) is not None


def docstring_violations(path: str, docstring: str | None) -> list[str]:
    """A folder's `__init__` docstring says what lives there, what it may import and which folders never."""
    folder = path.split("/")[0]
    if not docstring or "May import:" not in docstring:
        return [f"{path}: the docstring does not say what the folder may import ('May import: ...')"]
    rule = docstring.split("May import:", 1)[1]
    may, _, never = rule.partition("Never")
    out = []
    for name in sorted(RULES[folder]):
        word = "the ports" if name in ("stores.base", "mailers.base") else name
        if not (_said(word, may) or _said(name.replace(".", "/") + ".py", may)):
            out.append(f"{path}: the docstring's 'May import' does not name {name}, which the rule allows")
    for other in FOLDERS:
        if other != folder and other not in RULES[folder] and not _said(other, never):
            out.append(f"{path}: the docstring's 'Never ...' does not name {other}, which the rule forbids")
    return out


# --------------------------------------------------------------------------------------------------- the package


def test_every_folder_imports_only_what_its_rule_allows() -> None:
    assert [v for s in sources() for v in import_violations(s)] == []


def test_the_core_reads_no_clock_disk_network_or_environment() -> None:
    core = [s for s in sources() if s.layer == "core"]
    assert len(core) >= 15  # the checker sees the core's modules (a wrong PACKAGE would pass vacuously)
    assert [v for s in core for v in purity_violations(s)] == []


def test_no_module_is_over_400_lines() -> None:
    assert [v for s in sources() for v in length_violations(s)] == []
    for known in KNOWN_LONG:  # an exception that no longer applies is deleted, not kept "just in case"
        assert (PACKAGE / known).read_text(encoding="utf-8").count("\n") > MAX_LINES, f"remove {known} from KNOWN_LONG"


def test_the_top_of_the_package_holds_at_most_ten_modules() -> None:
    top = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(top) <= MAX_TOP_LEVEL_MODULES, top


def test_every_folder_opens_with_a_docstring_that_states_its_import_rule() -> None:
    folders = sorted(p.parent.name for p in PACKAGE.glob("*/__init__.py"))
    assert set(FOLDERS) | {"defaults"} == set(folders)  # a new folder needs a rule here and a docstring there
    out = []
    for folder in FOLDERS:
        init = PACKAGE / folder / "__init__.py"
        out += docstring_violations(f"{folder}/__init__.py", ast.get_docstring(ast.parse(init.read_text("utf-8"))))
    assert out == []
    assert "May import" in (ast.get_docstring(ast.parse((PACKAGE / "defaults/__init__.py").read_text("utf-8"))) or "")


def capability_violations(source: Source) -> list[str]:
    """A store's ports are chosen once (engine/base.py asks stores/base.py's journal_of and claims_of): nothing
    reads a capability flag, nothing outside stores/ checks which ports a store has, and no store raises
    NotImplementedError for part of a port."""
    out = []
    for node in ast.walk(ast.parse(source.text)):
        if isinstance(node, ast.Attribute) and node.attr in ("supports_batches", "many_runners", "request_rate"):
            out.append((node.lineno, f"reads the capability flag .{node.attr}"))
        elif isinstance(node, ast.Raise) and node.exc is not None and "NotImplementedError" in ast.unparse(node.exc):
            out.append((node.lineno, "raises NotImplementedError"))
        elif (
            source.layer != "stores"
            and isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in ("isinstance", "hasattr", "getattr")
            and any(word in ast.unparse(node) for word in ("BatchJournal", "RunnerClaims", "_batch", "claim_due"))
        ):
            out.append((node.lineno, f"checks which ports a store has: {ast.unparse(node)}"))
    return [f"{source.path}:{line}: {what}" for line, what in sorted(out)]


def rule_copies(source: Source) -> list[str]:
    """The row rules are defined once, in core/rows.py: no other module spells out the dead states (a collection
    holding both Cancelled and Skipped) or the problem test (Failed, or Scheduled with an error) again."""
    if source.path == "core/rows.py":
        return []
    out = []
    for node in ast.walk(ast.parse(source.text)):
        if isinstance(node, ast.Tuple | ast.List | ast.Set):
            named = {ast.unparse(e) for e in node.elts}
            if {"State.CANCELLED", "State.SKIPPED"} <= named or {
                "State.CANCELLED.value",
                "State.SKIPPED.value",
            } <= named:
                out.append(f"{source.path}:{node.lineno}: spells out the dead states (use core/rows.py's DEAD)")
    return out


def test_the_row_rules_are_written_once() -> None:
    assert [v for s in sources() for v in rule_copies(s)] == []
    copy = Source("stores/x.py", "dead = [State.CANCELLED.value, State.SKIPPED.value]\n")
    assert rule_copies(copy) == ["stores/x.py:1: spells out the dead states (use core/rows.py's DEAD)"]
    assert rule_copies(Source("core/rows.py", "DEAD = (State.CANCELLED, State.SKIPPED)\n")) == []


def test_no_store_raises_not_implemented_and_nothing_tests_a_capability_flag() -> None:
    assert [v for s in sources() for v in capability_violations(s)] == []


def test_each_store_implements_whole_ports_only() -> None:
    """Store whole for every store; the batch journal where there are transactions; claims for many runners on
    PostgreSQL only. The ports are runtime-checkable protocols: a method missing is a port not implemented."""
    from xmas_cli.stores.base import BatchJournal, RunnerClaims, Store
    from xmas_cli.stores.notion import NotionStore
    from xmas_cli.stores.postgres import PostgresStore
    from xmas_cli.stores.sqlite import SqliteStore

    def methods(port: type) -> set[str]:
        return {n for n, v in vars(port).items() if callable(v) and not n.startswith("_")} | {
            n for n, v in vars(port).items() if isinstance(v, property)
        }

    every = methods(Store)
    assert {"emails_by_id", "due_emails", "summary", "count_contacts"} <= every
    assert not every & (methods(BatchJournal) | methods(RunnerClaims))  # the ports do not overlap
    ports = {
        store: {
            name
            for name, port in (("journal", BatchJournal), ("claims", RunnerClaims))
            if methods(port) <= set(dir(store))
        }
        for store in (SqliteStore, PostgresStore, NotionStore)
    }
    assert ports == {SqliteStore: {"journal"}, PostgresStore: {"journal", "claims"}, NotionStore: set()}
    for store in (SqliteStore, PostgresStore, NotionStore):
        assert every <= set(dir(store)), f"{store.__name__} lacks {sorted(every - set(dir(store)))}"
        for port in (BatchJournal, RunnerClaims):  # never half a port
            have = methods(port) & set(dir(store))
            assert have in (set(), methods(port)), f"{store.__name__} implements part of {port.__name__}: {have}"


# ------------------------------------------------------------------------------ the checkers can fail: offenders

OFFENDING_CORE = '''
"""A core module that breaks every rule."""
import os
import socket
from datetime import datetime
from pathlib import Path

from ..stores.sqlite import SqliteStore
from ..mailers import outbox
from .. import engine


def bad() -> None:
    import time
    import httpx
    from ..commands.tick import register
    from ..web.routes import ROUTES
    from ..tick.run import run_tick

    datetime.now()
    time.time()
    Path("campaign.toml").read_text()
    open("campaign.toml")
    os.environ.get("XMAS_SECRET")
'''


def test_the_import_checker_reports_a_core_module_that_reaches_out() -> None:
    found = import_violations(Source("core/bad.py", OFFENDING_CORE))
    assert found == [
        "core/bad.py:3: the core imports os (only pure stdlib, pydantic, jinja2)",
        "core/bad.py:4: the core imports socket (only pure stdlib, pydantic, jinja2)",
        "core/bad.py:8: core imports xmas_cli.stores.sqlite",
        "core/bad.py:9: core imports xmas_cli.mailers",
        "core/bad.py:10: core imports xmas_cli.engine",
        "core/bad.py:14: the core imports time (only pure stdlib, pydantic, jinja2)",
        "core/bad.py:15: the core imports httpx (only pure stdlib, pydantic, jinja2)",
        "core/bad.py:16: core imports xmas_cli.commands.tick",
        "core/bad.py:17: core imports xmas_cli.web.routes",
        "core/bad.py:18: core imports xmas_cli.tick.run",
    ]


def test_the_purity_checker_reports_the_clock_the_disk_and_the_environment() -> None:
    assert purity_violations(Source("core/bad.py", OFFENDING_CORE)) == [
        "core/bad.py:20: the core uses .now",
        "core/bad.py:21: the core uses .time",
        "core/bad.py:22: the core uses .read_text",
        "core/bad.py:23: the core calls open()",
        "core/bad.py:24: the core uses .environ",
    ]


@pytest.mark.parametrize(
    ("path", "text", "found"),
    [
        ("engine/x.py", "from ..stores.sqlite import SqliteStore\n", "engine imports xmas_cli.stores.sqlite"),
        ("engine/x.py", "from ..commands import app\n", "engine imports xmas_cli.commands"),
        ("engine/x.py", "from ..tick import run\n", "engine imports xmas_cli.tick"),
        ("stores/x.py", "from ..engine import Engine\n", "stores imports xmas_cli.engine"),
        ("mailers/x.py", "import xmas_cli.stores.base\n", "mailers imports xmas_cli.stores.base"),
        ("web/x.py", "from xmas_cli.commands.tick import register\n", "web imports xmas_cli.commands.tick"),
        ("clock.py", "from .engine import Engine\n", "clock imports xmas_cli.engine"),
    ],
)
def test_the_import_checker_reports_a_layer_that_points_up(path: str, text: str, found: str) -> None:
    assert import_violations(Source(path, text)) == [f"{path}:1: {found}"]
    assert import_violations(Source(path, "from ..core.model import Contact\nfrom ..errors import NotFound\n")) == []


def test_the_capability_checker_reports_a_flag_a_port_check_and_not_implemented() -> None:
    tick = Source(
        "tick/x.py",
        "def f(store, journal):\n"
        "    if store.supports_batches:\n"
        "        pass\n"
        "    if isinstance(store, BatchJournal):\n"
        "        pass\n"
        "    return store.many_runners\n",
    )
    assert capability_violations(tick) == [
        "tick/x.py:2: reads the capability flag .supports_batches",
        "tick/x.py:4: checks which ports a store has: isinstance(store, BatchJournal)",
        "tick/x.py:6: reads the capability flag .many_runners",
    ]
    store = Source("stores/x.py", "class S:\n    def open_batch(self, b):\n        raise NotImplementedError('no')\n")
    assert capability_violations(store) == ["stores/x.py:3: raises NotImplementedError"]
    assert capability_violations(Source("stores/base.py", "x = isinstance(s, BatchJournal)\n")) == []


def test_the_other_checkers_report_an_offender() -> None:
    long = Source("tick/long.py", "x = 1\n" * (MAX_LINES + 1))
    assert length_violations(long) == [f"tick/long.py: {MAX_LINES + 1} lines (at most 400: split it along a seam)"]
    assert length_violations(Source("tick/long.py", "x = 1\n" * MAX_LINES)) == []
    assert import_violations(Source("newfolder/x.py", "")) == [
        "newfolder/x.py: the folder or module 'newfolder' has no import rule in tests/test_architecture.py"
    ]
    assert docstring_violations("engine/__init__.py", "The engine.") == [
        "engine/__init__.py: the docstring does not say what the folder may import ('May import: ...')"
    ]
    vague = docstring_violations("engine/__init__.py", "The engine.\n\nMay import: core. Never commands.")
    assert "engine/__init__.py: the docstring's 'May import' does not name clock, which the rule allows" in vague
    assert "engine/__init__.py: the docstring's 'Never ...' does not name web, which the rule forbids" in vague


# ------------------------------------------------------------------ seams cut so that the core stays pure


def test_a_tilde_path_in_campaign_toml_is_in_the_home_folder_config_reads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Campaign.path no longer calls expanduser (it reads $HOME): config.py reads the home folder once."""
    from xmas_cli.config import load_campaign
    from xmas_cli.defaults import CAMPAIGN

    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    toml = tmp_path / "campaign.toml"
    toml.write_text(CAMPAIGN.read_text(encoding="utf-8"), encoding="utf-8")
    campaign = load_campaign(toml, {})
    assert campaign.path("~/x.db") == tmp_path / "home" / "x.db"
    assert campaign.path("~") == tmp_path / "home"
    assert campaign.path("data/x.db") == tmp_path / "data" / "x.db"
    assert campaign.path("/srv/x.db") == Path("/srv/x.db")
    assert campaign.model_copy(update={"home_dir": None}).path("~/x.db") == tmp_path / "~" / "x.db"
