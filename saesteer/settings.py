"""Settings dataclasses that define CLI options (sparsify-style config-as-CLI), without the CLI itself.

A settings dataclass is the single source of its options: a field is a flag named after it (``min_freq`` ->
``--min-freq``), its default is the flag's default, and its docstring (the string literal written under the
field) is the flag's help. :func:`cli` adds CLI-only details in the field's metadata. The typer side is
:mod:`saesteer.cli.settings`; this module imports no CLI library, so any layer may declare its settings.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import itertools
import textwrap
import types
import typing
from collections.abc import Mapping
from functools import cache
from typing import Any

from saesteer.errors import SaesteerError


def cli(
    *flags: str, off: str | None = None, min: float | None = None, max: float | None = None,
    help: str | None = None,
) -> dict[str, Any]:
    """``field(metadata=cli("--width", min=1))``: CLI-only details of a settings field: more flag names (a
    short alias, or a former name kept working), a boolean's off switch (``--use-random/--no-random``), a
    range, a help text instead of the docstring."""
    return {"cli": {"flags": flags, "off": off, "min": min, "max": max, "help": help}}


def flag_name(field: str) -> str:
    """``min_freq`` -> ``--min-freq``."""
    return "--" + field.replace("_", "-")


@cache
def field_docs(cls: type) -> dict[str, str]:
    """The attribute docstrings of a dataclass: the string literal right under each field, on one line."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    body = tree.body[0].body  # type: ignore[attr-defined]
    docs = {}
    for a, b in itertools.pairwise(body):
        if (isinstance(a, ast.AnnAssign) and isinstance(a.target, ast.Name) and isinstance(b, ast.Expr)
                and isinstance(b.value, ast.Constant) and isinstance(b.value.value, str)):
            docs[a.target.id] = " ".join(b.value.value.split())
    return docs


def tuple_item(tp: Any) -> type | None:
    """``int`` for ``tuple[int, ...]`` (also inside ``X | None``), else None."""
    if typing.get_origin(tp) in (types.UnionType, typing.Union):
        inner = [a for a in typing.get_args(tp) if a is not type(None)]
        tp = inner[0] if len(inner) == 1 else tp
    if typing.get_origin(tp) is tuple:
        args = typing.get_args(tp)
        return args[0] if args else str
    return None


def settings_from(cls: type, values: Mapping[str, Any], **given: Any) -> Any:
    """``cls(**values, **given)``, with comma-separated values of tuple fields split and converted."""
    hints = typing.get_type_hints(cls)
    kwargs = dict(given)
    for f in dataclasses.fields(cls):
        if f.name not in values:
            continue
        v = values[f.name]
        item = tuple_item(hints[f.name])
        if item is not None and isinstance(v, str):
            try:
                v = tuple(item(x.strip()) for x in v.split(",") if x.strip())
            except ValueError:
                raise SaesteerError(
                    f"{flag_name(f.name)} must be comma-separated {item.__name__} values, got {v!r}"
                ) from None
        kwargs[f.name] = v
    return cls(**kwargs)
