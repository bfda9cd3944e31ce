"""Entry point: ``saesteer``. Sub-command groups live in their own modules."""

from __future__ import annotations

import logging
import sys
from typing import Annotated

import typer

from saesteer import __version__
from saesteer.cli.common import CacheOpt, DbOpt, HookOpt, JsonOpt, ModelOpt, SaeOpt, err_console

app = typer.Typer(
    name="saesteer",
    help="Steer language models with sparse-autoencoder features: index -> select -> steer -> evaluate -> export.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"saesteer {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log progress details.")] = False,
) -> None:
    from rich.logging import RichHandler

    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING, format="%(message)s",
        handlers=[RichHandler(console=err_console, show_path=False)],
    )


@app.command()
def info(
    model: ModelOpt = "gemma-3-270m",
    sae: SaeOpt = "default",
    hook: HookOpt = None,
    db: DbOpt = None,
    model_cache: CacheOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show the model, the SAE, the cache and the index saesteer would use, with their shapes."""
    from saesteer.cli.info import run_info

    run_info(model=model, sae=sae, hook=hook, db=db, model_cache=model_cache, as_json=as_json)


def _register() -> None:
    """Attach the command groups (each module imports only typer/rich at import time)."""
    import importlib

    for mod, name in [("index", "index"), ("features", "features"), ("steer", "steer"), ("eval", "eval")]:
        try:
            sub = importlib.import_module(f"saesteer.cli.{mod}")
        except ModuleNotFoundError as exc:
            if exc.name != f"saesteer.cli.{mod}":
                raise
            continue
        app.add_typer(sub.app, name=name)
    for mod in ("sql", "quickstart", "auto", "train"):
        try:
            sub = importlib.import_module(f"saesteer.cli.{mod}")
        except ModuleNotFoundError as exc:
            if exc.name != f"saesteer.cli.{mod}":
                raise
            continue
        sub.register(app)


_register()


def main() -> None:
    """Run the CLI; a :class:`~saesteer.errors.SaesteerError` becomes a one-line message and exit code 2."""
    from saesteer.errors import SaesteerError

    try:
        app()
    except SaesteerError as exc:
        from rich.markup import escape

        err_console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except KeyboardInterrupt:
        err_console.print("[yellow]interrupted[/]; nothing half-written was kept")
        sys.exit(130)
