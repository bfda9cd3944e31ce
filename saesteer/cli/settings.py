"""Settings dataclasses as typer commands, in the spirit of sparsify's config-as-CLI (see
:mod:`saesteer.settings`): a field is a flag named after it (``min_freq`` -> ``--min-freq``), its default is
the flag's default and its docstring the flag's help, so each setting is defined once, in the dataclass.
``metadata=cli(...)`` adds more flag names (a short alias, or a former name kept working), a boolean's off
switch, ``min`` / ``max``. Tuple fields are given comma-separated (``--langs en,fr``).

    def run(values, db):                       # values: {field: value}; db: a parameter of its own
        settings = settings_from(MySettings, values)
    app.command("name")(settings_command(MySettings, run, doc="What it does.", after=[param("db", DbOpt, None)]))
"""

from __future__ import annotations

import dataclasses
import inspect
import typing
from collections.abc import Callable, Mapping, Sequence
from typing import Annotated, Any

import typer

from saesteer.settings import field_docs, flag_name, tuple_item


def _default(f: dataclasses.Field[Any]) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return None


def options(
    cls: type, *, exclude: Sequence[str] = (), override: Mapping[str, Any] | None = None
) -> list[inspect.Parameter]:
    """One keyword parameter per field of ``cls`` (but ``exclude``), annotated with its ``typer.Option``.

    ``override`` maps a field to a ready ``Annotated[type, typer.Option(...)]`` (a shared option such as
    ``--model``); its default is still the field's."""
    hints = typing.get_type_hints(cls)
    docs = field_docs(cls)
    out = []
    for f in dataclasses.fields(cls):
        if f.name in exclude or not f.init:
            continue
        default = _default(f)
        item = tuple_item(hints[f.name])
        if override and f.name in override:
            annotation = override[f.name]
        else:
            meta = f.metadata.get("cli", {})
            tp: Any = str if item is not None else hints[f.name]
            if item is not None and default is not None:
                default = ",".join(str(x) for x in default)
            first = flag_name(f.name) + (f"/{meta['off']}" if meta.get("off") else "")
            opt = typer.Option(first, *meta.get("flags", ()), help=meta.get("help") or docs.get(f.name),
                               min=meta.get("min"), max=meta.get("max"))
            annotation = Annotated[tp | None if default is None else tp, opt]
        out.append(inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation))
    return out


def param(name: str, annotation: Any, default: Any = inspect.Parameter.empty) -> inspect.Parameter:
    """A command parameter that is not a settings field (``param("db", DbOpt, None)``)."""
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)


def settings_command(
    cls: type,
    run: Callable[..., None],
    *,
    doc: str,
    exclude: Sequence[str] = (),
    override: Mapping[str, Any] | None = None,
    before: Sequence[inspect.Parameter] = (),
    after: Sequence[inspect.Parameter] = (),
) -> Callable[..., None]:
    """A typer command whose options are ``before``, the fields of ``cls``, then ``after``; it calls
    ``run(values, **other_values)`` where ``values`` maps each field to its (still comma-joined) value."""
    fields = options(cls, exclude=exclude, override=override)
    params = [*before, *fields, *after]
    names = {p.name for p in fields}

    def command(**kwargs: Any) -> None:
        run({k: v for k, v in kwargs.items() if k in names}, **{k: v for k, v in kwargs.items() if k not in names})

    command.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    command.__annotations__ = {p.name: p.annotation for p in params}
    command.__doc__ = doc
    command.__name__ = command.__qualname__ = getattr(run, "__name__", "command")
    return command
