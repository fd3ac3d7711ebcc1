"""Command-line options generated from the request schema, so each default and help text lives
once, in ``packshot.schema``.

``add_options(parser, Model)`` adds one option per field of a pydantic model (GenerateRequest,
SegmentOptions): ``--field-name`` (``-n`` for a one-letter name, or the flags a ``schema.Cli``
declares), help = the field's description + its bounds and default, choices from a ``Literal``,
``--x/--no-x`` for a bool, repeatable for a list. Every option defaults to None, so only what the
user typed reaches the schema and the schema's defaults apply. ``values(args, Model)`` reads them
back as a dict for ``schema.build``. Nested models and ``Cli(skip=True)`` fields get no option.
"""
from __future__ import annotations

import argparse
import types
import typing
from typing import Any

from .common import box, point

VALUE_TYPES = {"point": (point, "X,Y"), "box": (box, "X0,Y0,X1,Y1"), "path": (str, "PATH")}


def _cli(field) -> Any:
    from ..schema import Cli
    return next((m for m in field.metadata if isinstance(m, Cli)), Cli())


def _base(annotation) -> tuple[Any, bool]:
    """(the type without Optional, whether it is a list)."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        annotation = args[0] if len(args) == 1 else str
    if typing.get_origin(annotation) is list:
        return typing.get_args(annotation)[0], True
    return annotation, False


def _option_fields(model):
    """(name, field, Cli, base type, repeatable) of each field that gets an option."""
    from pydantic import BaseModel

    for name, field in model.model_fields.items():
        cli = _cli(field)
        base, repeat = _base(field.annotation)
        if not (cli.skip or (isinstance(base, type) and issubclass(base, BaseModel))):
            yield name, field, cli, base, repeat


def _bounds(name: str, field) -> str:
    """'1 <= n <= 16', '0.0 < scale <= 1.0', from the field's pydantic constraints."""
    lo = hi = ""
    for m in field.metadata:
        lo = f"{m.ge} <= " if getattr(m, "ge", None) is not None else \
            f"{m.gt} < " if getattr(m, "gt", None) is not None else lo
        hi = f" <= {m.le}" if getattr(m, "le", None) is not None else \
            f" < {m.lt}" if getattr(m, "lt", None) is not None else hi
    return f"{lo}{name}{hi}" if lo or hi else ""


def _help(name: str, field, extra: str = "") -> str:
    text = (field.description or "").rstrip(".")
    facts = [f for f in (_bounds(name, field), extra) if f]
    default = field.get_default(call_default_factory=True)
    if default not in (None, [], "") and not isinstance(default, bool):
        facts.append(f"default {default}")
    elif isinstance(default, bool):
        facts.append(f"default {'on' if default else 'off'}")
    text = f"{text} ({'; '.join(facts)})" if facts else text
    return text.replace("%", "%%")  # argparse %-formats help


def _flags(name: str, cli) -> list[str]:
    if cli.flags:
        return list(cli.flags)
    return [f"-{name}"] if len(name) == 1 else [f"--{name.replace('_', '-')}"]


def add_options(parser: argparse.ArgumentParser, model, *, prefix: str = "", title: str | None = None,
                extra_flags: dict[str, tuple[str, ...]] | None = None) -> None:
    """One option per field of ``model``; ``dest`` is ``prefix + field name``."""
    target = parser.add_argument_group(title) if title else parser
    groups: dict[str, Any] = {}
    for name, field, cli, base, repeat in _option_fields(model):
        where = target
        if cli.group:
            if cli.group not in groups:
                groups[cli.group] = target.add_mutually_exclusive_group()
            where = groups[cli.group]
        flags = [*_flags(name, cli), *(extra_flags or {}).get(name, ())]
        kwargs: dict[str, Any] = {"dest": prefix + name, "default": None}
        if base is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
            kwargs["help"] = _help(name, field)
        else:
            vtype, metavar = VALUE_TYPES.get(cli.type or "", (None, None))
            if vtype is None and typing.get_origin(base) is typing.Literal:
                kwargs["choices"] = list(typing.get_args(base))
            elif vtype is None:
                vtype = base if base in (int, float) else str
            if vtype is not None:
                kwargs["type"] = vtype
            kwargs["metavar"] = cli.metavar or metavar or (None if "choices" in kwargs else name.upper())
            if repeat:
                kwargs["action"] = "append"
            kwargs["help"] = _help(name, field, "repeatable" if repeat else "")
        where.add_argument(*flags, **{k: v for k, v in kwargs.items() if v is not None or k == "default"})


def values(args: argparse.Namespace, model, *, prefix: str = "") -> dict[str, Any]:
    """The options the user gave, as ``{field: value}`` (unset ones are left to the schema)."""
    out = {}
    for name, *_ in _option_fields(model):
        value = getattr(args, prefix + name, None)
        if value is not None:
            out[name] = value
    return out
