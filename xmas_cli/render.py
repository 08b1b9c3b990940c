"""Pure rendering: a Jinja2 sandbox with strict undefined and HTML autoescaping.

A missing variable, a None printed into the email, a sandbox violation or a syntax error raises
RenderError for that email; raw braces never reach a recipient.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import lru_cache
from html.parser import HTMLParser
from typing import Any

import jinja2
from jinja2 import meta
from jinja2.sandbox import ImmutableSandboxedEnvironment

from .errors import RenderError
from .model import Template

SUBJECT_PREFIX = "Subject: "


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


@lru_cache(maxsize=2)
def _environment(autoescape: bool) -> ImmutableSandboxedEnvironment:
    return _Sandbox(
        undefined=jinja2.StrictUndefined,
        autoescape=autoescape,
        finalize=_no_none,
        keep_trailing_newline=True,
    )


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


def _render(source: str, variables: dict[str, Any], autoescape: bool, what: str) -> str:
    try:
        return _environment(autoescape).from_string(source).render(variables)
    except RenderError as exc:
        raise RenderError(f"{what}: {exc.message}", exc.fix) from None
    except jinja2.UndefinedError as exc:
        raise RenderError(f"{what}: {exc.message}", "add the variable to the data or fix its name") from None
    except jinja2.exceptions.SecurityError as exc:
        raise RenderError(f"{what}: blocked by the sandbox ({exc})", "templates may only use plain data") from None
    except jinja2.TemplateSyntaxError as exc:
        raise RenderError(f"{what}: syntax error at line {exc.lineno}: {exc.message}", "fix the template") from None
    except (jinja2.TemplateError, TypeError, ValueError, ArithmeticError, LookupError) as exc:
        raise RenderError(f"{what}: {type(exc).__name__}: {exc}", "fix the template or its data") from None
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


def render(template: Template, variables: dict[str, Any]) -> Rendered:
    subject = _render(template.subject, variables, False, f"template {template.id} subject")
    subject = " ".join(_CONTROLS.sub("", subject).split())  # one line: no header injection
    if not subject:
        raise RenderError(f"template {template.id}: the subject renders empty", "give it a subject")
    html = _CONTROLS.sub("", _render(template.html, variables, True, f"template {template.id} body"))
    return Rendered(subject=subject, html=html, text=html_to_text(html))


class _TextExtractor(HTMLParser):
    BLOCKS = frozenset({"p", "div", "br", "tr", "h1", "h2", "h3", "h4", "li", "table", "hr", "ul", "ol"})
    SKIP = frozenset({"style", "script", "head", "title"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skipping = 0
        self.links: list[str | None] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.SKIP:
            self.skipping += 1
        elif tag == "li":
            self.parts.append("\n- ")
        elif tag in self.BLOCKS:
            self.parts.append("\n")
        if tag == "a":
            self.links.append(dict(attrs).get("href"))

    def handle_endtag(self, tag: str) -> None:
        if tag in self.SKIP:
            self.skipping = max(0, self.skipping - 1)
        elif tag == "a" and self.links:
            href = self.links.pop()
            if href and not href.startswith("mailto:") and href not in "".join(self.parts[-3:]):
                self.parts.append(f" ({href})")
        elif tag in self.BLOCKS and tag != "li":
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.skipping:
            self.parts.append(re.sub(r"\s+", " ", data))


def html_to_text(html: str) -> str:
    """A readable plain-text part: paragraphs kept, links written out, markup dropped."""
    parser = _TextExtractor()
    parser.feed(html)
    parser.close()
    lines = [line.strip() for line in "".join(parser.parts).splitlines()]
    text = "\n".join(lines)
    return re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"
