"""Pure rendering: a Jinja2 sandbox with strict undefined and HTML autoescaping.

A missing variable, a None printed into the email, a sandbox violation or a syntax error raises
RenderError for that email; raw braces never reach a recipient.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import jinja2
from jinja2 import meta, nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment

from ..errors import RenderError
from .model import Template
from .plaintext import html_to_text


@dataclass(frozen=True)
class Rendered:
    subject: str
    html: str
    text: str


def _no_none(value: Any) -> Any:
    if value is None:
        raise RenderError("a variable with no value (None) would be printed", "guard it with {% if name %}")
    return value


MAX_REPEAT = 100_000  # characters or items a `*` may build; a number `**` may reach at most MAX_POWER
MAX_POWER = 10**100


def _too_big_a_power(base: Any, exponent: Any) -> bool:
    if not isinstance(base, int | float) or not isinstance(exponent, int | float):
        return False
    if abs(exponent) > 1000:
        return True
    return abs(base) > 1 and exponent * math.log10(abs(base)) > math.log10(MAX_POWER)


class _Sandbox(ImmutableSandboxedEnvironment):
    """The sandbox, with `*` and `**` bounded: one template line cannot build gigabytes or an endless number."""

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "*":
            for seq, count in ((left, right), (right, left)):
                if isinstance(seq, str | list | tuple) and isinstance(count, int) and len(seq) * count > MAX_REPEAT:
                    raise jinja2.exceptions.SecurityError(f"a repetition longer than {MAX_REPEAT} is not allowed")
        if operator == "**" and _too_big_a_power(left, right):
            raise jinja2.exceptions.SecurityError(f"a power above {MAX_POWER:.0e} is not allowed")
        return super().call_binop(context, operator, left, right)


# The other templates of the store, for `{% extends "layout" %}`: set around each render call (a context variable,
# so threads of the web server each see their own), read by the loader below.
_LOOKUP: ContextVar[Callable[[str], Template | None] | None] = ContextVar("xmas_template_lookup", default=None)


def _lookup(name: str) -> Template | None:
    find = _LOOKUP.get()
    return find(name) if find is not None else None


class _StoreTemplates(jinja2.BaseLoader):
    """`{% extends "layout" %}` names another template of the same store (a file in templates/, a row in Notion).
    Jinja keeps the compiled layout and asks `uptodate` before reusing it, so an edited layout is compiled again."""

    def get_source(self, environment: jinja2.Environment, template: str) -> tuple[str, str, Callable[[], bool]]:
        found = _lookup(template)
        if found is None or not found.active:
            raise jinja2.TemplateNotFound(template)
        source = found.html

        def uptodate() -> bool:
            now = _lookup(template)
            return now is not None and now.html == source

        return source, template, uptodate


@lru_cache(maxsize=2)
def _environment(autoescape: bool) -> ImmutableSandboxedEnvironment:
    return _Sandbox(
        undefined=jinja2.StrictUndefined,
        autoescape=autoescape,
        finalize=_no_none,
        keep_trailing_newline=True,
        loader=_StoreTemplates(),
        auto_reload=True,
    )


@lru_cache(maxsize=1024)
def _compiled(source: str, autoescape: bool) -> jinja2.Template:
    """Compiling is most of a render's cost: each source is compiled once per process (a tick renders the same
    few templates for every email). The key is the source itself, so an edited template is a new entry."""
    environment = _environment(autoescape)
    _refuse_lost_text(environment.parse(source))
    return environment.from_string(source)


def _refuse_lost_text(tree: nodes.Template) -> None:
    """Jinja drops, without a word, whatever a template that extends another has outside its blocks: a sentence
    the business added there would silently never reach anyone. Refuse it, naming the line."""
    extends = next((i for i, node in enumerate(tree.body) if isinstance(node, nodes.Extends)), None)
    if extends is None:
        return
    for index, node in enumerate(tree.body):
        if isinstance(node, nodes.Output) and any(
            not isinstance(part, nodes.TemplateData) or part.data.strip() for part in node.nodes
        ):
            where = (
                "is printed ahead of the layout's page (before its <!doctype html>)"
                if index < extends
                else "is never shown"
            )
            raise RenderError(
                f"line {node.lineno}: text outside {{% block %}} in a template that extends another {where}",
                "move it into one of the layout's blocks, e.g. {% block body %}",
            )


def _line(exc: BaseException, what: str) -> str:
    """`what`, with the template line the error came from when Jinja's traceback names one."""
    tb, line, where = exc.__traceback__, None, None
    while tb is not None:
        name = tb.tb_frame.f_code.co_filename
        if name == "<template>" or _lookup(name) is not None:
            line, where = tb.tb_lineno, name
        tb = tb.tb_next
    if line is None:
        return what
    return f"{what} line {line}" if where == "<template>" else f"{what} ({where} line {line})"


def _render(source: str, variables: dict[str, Any], autoescape: bool, what: str) -> str:
    try:
        return _compiled(source, autoescape).render(variables)
    except RenderError as exc:
        raise RenderError(f"{_line(exc, what)}: {exc.message}", exc.fix) from None
    except jinja2.UndefinedError as exc:
        fix = "add the variable to the data or fix its name"
        raise RenderError(f"{_line(exc, what)}: {exc.message}", fix) from None
    except jinja2.exceptions.SecurityError as exc:
        raise RenderError(
            f"{_line(exc, what)}: blocked by the sandbox ({exc})", "templates may only use plain data"
        ) from None
    except jinja2.TemplateNotFound as exc:
        raise RenderError(
            f"{what}: extends or includes {exc.name!r}, which is not an Active template", "add it, or fix the name"
        ) from None
    except jinja2.TemplateSyntaxError as exc:
        where = f" in {exc.name}" if exc.name else ""
        raise RenderError(
            f"{what}: syntax error{where} at line {exc.lineno}: {exc.message}", "fix the template"
        ) from None
    except (jinja2.TemplateError, TypeError, ValueError, ArithmeticError, LookupError) as exc:
        raise RenderError(f"{_line(exc, what)}: {type(exc).__name__}: {exc}", "fix the template or its data") from None
    except RecursionError:
        raise RenderError(f"{what}: recursion too deep (a macro that calls itself?)", "fix the template") from None


@lru_cache(maxsize=256)
def variables_used(template: Template) -> frozenset[str]:
    """The names a template reads (subject and body), so callers compute costly values only when needed."""
    names: set[str] = set()
    for source in (template.subject, template.html):
        try:
            names |= meta.find_undeclared_variables(_environment(True).parse(source))
        except jinja2.TemplateSyntaxError:
            continue  # render() reports it, with its line
    return frozenset(names)


# C0 and C1 control characters but tab, newline and carriage return: never in an email (stored data may hold them)
_CONTROLS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def render(
    template: Template, variables: dict[str, Any], others: Callable[[str], Template | None] | None = None
) -> Rendered:
    """Subject, HTML and text of one email. `others` finds the templates this one extends or includes by id
    (`{% extends "layout" %}`); without it, a template that extends another fails to render."""
    token = _LOOKUP.set(others)
    try:
        subject = _render(template.subject, variables, False, f"template {template.id} subject")
        subject = " ".join(_CONTROLS.sub("", subject).split())  # one line: no header injection
        if not subject:
            raise RenderError(f"template {template.id}: the subject renders empty", "give it a subject")
        html = _CONTROLS.sub("", _render(template.html, variables, True, f"template {template.id} body"))
    finally:
        _LOOKUP.reset(token)
    return Rendered(subject=subject, html=html, text=html_to_text(html))
