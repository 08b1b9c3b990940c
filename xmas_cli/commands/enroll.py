"""`xmas enroll SEQUENCE`: one subcommand per sequence of campaign.toml, its options taken from the sequence's
payload model (payloads.py), so the help and the validation cannot drift apart.

The sequences are read from campaign.toml when the command line names one (`--config`/`-c`, XMAS_CONFIG, then
./campaign.toml), as plain TOML: listing them costs no validation. The enrollment itself validates everything.
"""

from __future__ import annotations

import inspect
import tomllib
import types
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer.core import TyperGroup

from ..errors import ConfigError, InvalidInput, unknown_sequence
from .common import AsJson, Config, Now, handled, print_cancelled, read_json_source, say, warn, with_engine
from .env import current
from .tables import rows_table

if TYPE_CHECKING:
    from ..core.payloads import Payload
    from ..engine import EnrollResult

METAVARS = {int: "INT", float: "NUMBER", bool: "BOOLEAN", str: "TEXT"}
OWN = ("payload", "config", "now", "as_json", "ctx")
_CONTEXT = {"ignore_unknown_options": True, "allow_extra_args": True, "help_option_names": ["--help", "-h"]}


def _config_in(args: list[str]) -> str | None:
    """The --config/-c value on the command line, wherever it stands."""
    for i, arg in enumerate(args):
        if arg in ("--config", "-c") and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith("--config="):
            return arg.partition("=")[2]
    return None


def sequences_in(config: str | None) -> dict[str, dict[str, Any]]:
    """campaign.toml's [sequences] as written (name → table); ConfigError when it cannot be read."""
    from ..backends import config_path

    path = config_path(config, current().environ)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(
            f"{path}: no such file",
            "run xmas from the folder that holds campaign.toml (xmas init writes one), or pass --config PATH",
        ) from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: cannot be read ({exc})", "fix the file") from None
    sequences = raw.get("sequences")
    return {str(k): v for k, v in sequences.items() if isinstance(v, dict)} if isinstance(sequences, dict) else {}


def _model(kind: object) -> type[Payload] | None:
    from ..core.payloads import MODELS

    return MODELS.get(kind) if isinstance(kind, str) else None


def _base_types(annotation: Any) -> set[Any]:
    """The plain types a field annotation allows, through Optional/Union and Annotated (`Count | None` → {int})."""
    from typing import Union, get_args, get_origin

    origin = get_origin(annotation)
    if origin is Annotated:
        return _base_types(get_args(annotation)[0])
    if origin is Union or isinstance(annotation, types.UnionType):
        return set().union(*(_base_types(a) for a in get_args(annotation)))
    return {annotation} - {type(None)}


def option_type(annotation: Any) -> type:
    """The command-line type of a payload field: int, float or bool when that is all the field takes (so
    `--revenue-leak-total 14700` reaches the model as the number it checks), str for everything else (times,
    addresses, URLs, choices): pydantic checks those."""
    kinds = _base_types(annotation)
    for kind in (bool, int, float):
        if kinds == {kind}:
            return kind
    return str


def _fields(model: type[Payload]) -> list[tuple[str, type, str, bool]]:
    """(field, option type, help, required) for every field of a payload model."""
    return [
        (name, option_type(info.annotation), info.description or "", info.is_required())
        for name, info in model.model_fields.items()
    ]


def option_name(field: str) -> str:
    return "--" + field.replace("_", "-")


def _belongs_to(option: str, sequences: dict[str, dict[str, Any]]) -> list[str]:
    owners = []
    for name, table in sequences.items():
        model = _model(table.get("payload"))
        if model is not None and any(option_name(f) == option for f in model.model_fields):
            owners.append(name)
    return owners


def _refuse_strangers(sequence: str, extra: list[str], known: list[str], sequences: dict[str, dict[str, Any]]) -> None:
    """An option this sequence does not take is an error naming it: never stored, never silently dropped."""
    problems = []
    for i, arg in enumerate(extra):
        option = arg.partition("=")[0]
        if not option.startswith("-"):
            if i == 0 or not extra[i - 1].startswith("-") or "=" in extra[i - 1]:  # not a stranger's value
                problems.append((arg, "an unexpected argument: options take the form --name VALUE"))
            continue
        owners = _belongs_to(option, sequences)
        where = f"it belongs to {', '.join(owners)}" if owners else "no sequence takes it"
        problems.append((option, f"{sequence} does not take {option} ({where})"))
    if problems:
        raise InvalidInput(
            f"{len(problems)} option(s) that {sequence} does not take",
            f"use {sequence}'s own options (xmas enroll {sequence} --help: {', '.join(known)}), "
            "or put extra data in --payload",
            problems,
        )


def _enroll_command(name: str, table: dict[str, Any], sequences: dict[str, dict[str, Any]]) -> Callable[..., None]:
    model = _model(table.get("payload"))
    fields = _fields(model) if model is not None else []

    def run(ctx: typer.Context, **values: Any) -> None:
        from .. import engine as core

        _refuse_strangers(name, list(ctx.args), [option_name(f) for f, *_ in fields], sequences)
        given = {k: v for k, v in values.items() if k not in OWN and v is not None}
        raw: Any = read_json_source(values["payload"], "--payload") if values.get("payload") else {}
        if isinstance(raw, dict):
            raw = {**raw, **given}
        result = with_engine(
            values.get("config"), values.get("now"), lambda e: core.enroll(e, name, raw), needs_secret=True
        )
        if values.get("as_json"):
            from .common import emit

            emit(result.to_json())
            return
        for one in (result, *result.also):
            _print_enrollment(one)

    params = [
        inspect.Parameter("ctx", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=typer.Context),
        _keyword(
            "payload",
            Annotated[
                str | None,
                typer.Option(
                    "--payload",
                    metavar="FILE|-",
                    help="A JSON payload file, or - for stdin; the options below override its fields.",
                ),
            ],
        ),
    ]
    for field, kind, text, required in fields:
        help_text = ("Required. " if required else "") + text
        option = typer.Option(option_name(field), help=help_text, metavar=METAVARS[kind])
        params.append(_keyword(field, Annotated[kind | None, option]))
    params += [_keyword("config", Config), _keyword("now", Now), _keyword("as_json", AsJson, False)]
    run.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    run.__annotations__ = {p.name: p.annotation for p in params}
    run.__doc__ = (
        f"{table.get('description') or 'Enroll a contact.'}\n\n"
        f"One row per email, with its due time ({table.get('payload')} payload). Idempotent: the same enrollment "
        "again refreshes the data and schedules nothing new."
    )
    return handled(run)


def _keyword(name: str, annotation: Any, default: Any = None) -> inspect.Parameter:
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)


def _failing_command(error: Exception) -> Callable[..., None]:
    """A command that only reports why the sequences could not be listed (a missing campaign.toml: exit 3)."""

    def run(ctx: typer.Context, as_json: AsJson = False) -> None:  # --json: the error as a JSON document
        raise error

    return handled(run)


def _single(name: str, fn: Callable[..., None]) -> Any:
    app = typer.Typer(rich_markup_mode=None, add_completion=False)
    app.command(name, context_settings=_CONTEXT)(fn)
    return typer.main.get_command(app)


class SequenceGroup(TyperGroup):
    """The `enroll` group: its subcommands are the sequences of the campaign.toml the command line names."""

    def resolve_command(self, ctx: typer.Context, args: list[str]) -> Any:  # type: ignore[override]
        ctx.meta["xmas.config"] = _config_in(args) or ctx.meta.get("xmas.config")
        return super().resolve_command(ctx, args)

    def _sequences(self, ctx: typer.Context) -> dict[str, dict[str, Any]]:
        return sequences_in(ctx.meta.get("xmas.config"))

    def list_commands(self, ctx: typer.Context) -> list[str]:  # type: ignore[override]
        try:
            return list(self._sequences(ctx))
        except ConfigError:
            return []

    def format_commands(self, ctx: typer.Context, formatter: Any) -> None:  # type: ignore[override]
        """The sequences with their descriptions, read from campaign.toml; or why there are none to list."""
        try:
            sequences = self._sequences(ctx)
        except ConfigError as exc:
            formatter.write_paragraph()
            formatter.write_text(f"Sequences: none listed: {exc}")
            return
        with formatter.section("Sequences (from campaign.toml)"):
            formatter.write_dl([(name, str(table.get("description") or "")) for name, table in sequences.items()])

    def get_command(self, ctx: typer.Context, cmd_name: str) -> Any:  # type: ignore[override]
        try:
            sequences = self._sequences(ctx)
        except ConfigError as exc:
            return _single(cmd_name, _failing_command(exc))
        table = sequences.get(cmd_name)
        if table is None:
            return _single(cmd_name, _failing_command(unknown_sequence(cmd_name, list(sequences))))
        return _single(cmd_name, _enroll_command(cmd_name, table, sequences))


def _print_enrollment(result: EnrollResult) -> None:
    from ..clock import iso

    for warning in result.warnings:
        warn(warning)
    verb = "enrolled" if result.created else "already enrolled (data refreshed, nothing rescheduled)"
    segment = f" · segment {result.contact.segment}" if result.contact.segment else ""
    say(f"{result.contact.email} {verb}: {result.key}{segment}")
    if result.rows:
        title = f"{result.sequence}: anchor {iso(result.anchor)} ({result.anchor_source})"
        current().out.print(rows_table(result.rows, title))
    print_cancelled(result.cancelled)


def register(app: typer.Typer) -> None:
    group = typer.Typer(
        cls=SequenceGroup,
        help="Enroll a contact in a sequence: xmas enroll SEQUENCE --help shows that sequence's fields.",
        no_args_is_help=True,
        rich_markup_mode=None,
    )
    app.add_typer(group, name="enroll")
