"""Entry point: ``saesteer``. Sub-command groups live in their own modules."""

from __future__ import annotations

import logging
import sys
from typing import Annotated

import typer

from saesteer import __version__
from saesteer.cli import auto, features, index, info, quickstart, sql, steer, train
from saesteer.cli import eval as eval_cmds
from saesteer.cli.common import err_console

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


# every command module adds its commands with register(app); the order is the order of `saesteer --help`
for _module in (info, sql, quickstart, auto, train, index, features, steer, eval_cmds):
    _module.register(app)


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
